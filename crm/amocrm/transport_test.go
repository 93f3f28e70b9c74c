package amocrm_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

func TestRetries(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		endpoint  string
		fails     int
		status    int
		call      func(c *amocrm.Client) error
		opt       func(*amocrm.Options)
		want      error // nil: success
		wantReqs  int
		wantWaits []time.Duration
	}{
		{"429 on a create is retried", "POST /api/v4/contacts", 2, 429, createContact, nil, nil, 3, []time.Duration{s, 2 * s}},
		{"429 beyond MaxRetries", "POST /api/v4/contacts", 4, 429, createContact, nil, crm.ErrRateLimited, 4, []time.Duration{s, 2 * s, 4 * s}},
		{"429 within the budget only", "GET /api/v4/users", 5, 429, listUsers,
			func(o *amocrm.Options) { o.MaxRetries = 10; o.RetryBudget = 4 * s }, crm.ErrRateLimited, 3, []time.Duration{s, 2 * s}},
		{"503 on a create is not retried", "POST /api/v4/contacts", 1, 503, createContact, nil, crm.ErrUnavailable, 1, nil},
		{"500 on a create is not retried", "POST /api/v4/leads/complex", 1, 500, createDeal, nil, crm.ErrUnavailable, 1, nil},
		{"502 HTML on a list is retried", "GET /api/v4/users", 2, 502, listUsers, nil, nil, 3, []time.Duration{s, 2 * s}},
		{"503 on CompleteTask is retried", "PATCH /api/v4/tasks/{id}", 1, 503, completeTask, nil, nil, 2, []time.Duration{s}},
		{"503 on a search beyond MaxRetries", "GET /api/v4/contacts", 9, 503, findPhone, nil, crm.ErrUnavailable, 4, []time.Duration{s, 2 * s, 4 * s}},
		{"NoRetries", "GET /api/v4/users", 1, 429, listUsers, func(o *amocrm.Options) { o.MaxRetries = amocrm.NoRetries }, crm.ErrRateLimited, 1, nil},
		{"custom backoff", "GET /api/v4/users", 2, 503, listUsers,
			func(o *amocrm.Options) {
				o.Backoff = func(a int) time.Duration { return time.Duration(a+1) * time.Millisecond }
			}, nil, 3,
			[]time.Duration{time.Millisecond, 2 * time.Millisecond}},
		{"HTML 403 is a block, not retried", "GET /api/v4/users", 1, 403, listUsers, nil, crm.ErrUnauthorized, 1, nil},
		{"404", "PATCH /api/v4/tasks/{id}", 1, 404, completeTask, nil, crm.ErrNotFound, 1, nil},
		{"401 with a static token is final", "GET /api/v4/users", 1, 401, listUsers, nil, crm.ErrUnauthorized, 1, nil},
		{"402 payment required", "GET /api/v4/users", 1, 402, listUsers, nil, crm.ErrUnauthorized, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, amocrmtest.Options{})
			c, sl := newClient(t, srv, tt.opt)
			srv.AddContact(amocrmtest.Contact{Name: "x", Phones: []string{"+79161234567"}})
			prepare(t, c, tt.endpoint)
			srv.ResetCounts()
			srv.FailNext(tt.endpoint, tt.fails, tt.status)
			err := tt.call(c)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := srv.Requests()[tt.endpoint]; got != tt.wantReqs {
				t.Errorf("%s requests = %d, want %d (%v)", tt.endpoint, got, tt.wantReqs, srv.Requests())
			}
			if got := sl.Waits(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
		})
	}
}

var taskForRetry struct {
	mu sync.Mutex
	id map[*amocrm.Client]crm.TaskID
}

// prepare creates what a call needs before failures are injected.
func prepare(t *testing.T, c *amocrm.Client, endpoint string) {
	t.Helper()
	switch endpoint {
	case "PATCH /api/v4/tasks/{id}":
		ct, err := c.CreateContact(t.Context(), crm.NewContact{Name: "t"})
		if err != nil {
			t.Fatal(err)
		}
		tk, err := c.CreateTask(t.Context(), crm.NewTask{Contact: ct.ID, Text: "t", Deadline: time.Unix(2e9, 0)})
		if err != nil {
			t.Fatal(err)
		}
		taskForRetry.mu.Lock()
		if taskForRetry.id == nil {
			taskForRetry.id = map[*amocrm.Client]crm.TaskID{}
		}
		taskForRetry.id[c] = tk.ID
		taskForRetry.mu.Unlock()
	case "POST /api/v4/leads/complex":
		if _, err := c.ListPipelines(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func createContact(c *amocrm.Client) error {
	_, err := c.CreateContact(context.Background(), crm.NewContact{Name: "r"})
	return err
}

func createDeal(c *amocrm.Client) error {
	_, _, err := c.CreateDeal(context.Background(), crm.NewDeal{Pipeline: "7001", Stage: "70012", NewContact: &crm.NewContact{Name: "r"}})
	return err
}

func listUsers(c *amocrm.Client) error {
	_, err := c.ListUsers(context.Background())
	return err
}

func findPhone(c *amocrm.Client) error {
	_, err := c.FindContactsByPhone(context.Background(), "+79161234567")
	return err
}

func completeTask(c *amocrm.Client) error {
	taskForRetry.mu.Lock()
	id := taskForRetry.id[c]
	taskForRetry.mu.Unlock()
	return c.CompleteTask(context.Background(), id)
}

func TestBlockedAccount(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, sl := newClient(t, srv, nil)
	srv.Block(true)
	_, err := c.ListPipelines(t.Context())
	var be *amocrm.BlockedError
	if !errors.As(err, &be) || !errors.Is(err, crm.ErrUnauthorized) || crm.Temporary(err) {
		t.Fatalf("err = %v, want *BlockedError matching ErrUnauthorized", err)
	}
	if srv.TotalRequests() != 1 || len(sl.Waits()) != 0 {
		t.Errorf("a block must not be retried: %v requests, waits %v", srv.Requests(), sl.Waits())
	}
	srv.Block(false)
	if _, err := c.ListPipelines(t.Context()); err != nil {
		t.Errorf("after unblocking: %v", err)
	}
}

// The fake's own limiter answers 429 above its rate; the adapter backs off
// (the injected Sleep moves the shared fake clock) and gets through.
func TestServerRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := newFake(t, amocrmtest.Options{Now: clock, RateLimit: 7, RateBurst: 7})
	c, sl := newClient(t, srv, nil)
	sl.advance = func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	for i := range 10 {
		if _, err := c.ListUsers(t.Context()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := srv.TotalRequests(); got != 11 {
		t.Errorf("requests = %d, want 11 (7 + one 429 + 3)", got)
	}
	if got := sl.Waits(); !slices.Equal(got, []time.Duration{time.Second}) {
		t.Errorf("waits = %v, want one 1 s backoff", got)
	}
	// With the clock frozen the 429s persist and the budget runs out.
	sl.advance = nil
	srv.SetRateLimit(1, 1)
	_, _ = c.ListUsers(t.Context())
	_, err := c.ListUsers(t.Context())
	if !errors.Is(err, crm.ErrRateLimited) || !crm.Temporary(err) {
		t.Errorf("err = %v, want ErrRateLimited", err)
	}
}

// A limiter given in Options is the one the client draws from (so Clients
// of one account can share it). Checked on the limiter's tokens, not on
// wall time.
func TestClientLimiterShared(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	lim := rate.NewLimiter(rate.Limit(0.001), 3)
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.Limiter = lim })
	before := lim.TokensAt(time.Now())
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := lim.TokensAt(time.Now()); after >= before {
		t.Errorf("the shared limiter was not used: tokens %v → %v", before, after)
	}
}

func TestTimeouts(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, sl := newClient(t, srv, func(o *amocrm.Options) {
		o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
		o.MaxRetries = 1
	})
	srv.SetLatency(time.Minute)
	_, err := c.ListUsers(t.Context())
	if !errors.Is(err, crm.ErrUnavailable) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("ListUsers err = %v, want ErrUnavailable (timeout)", err)
	}
	_, cerr := c.CreateContact(t.Context(), crm.NewContact{Name: "slow"})
	if !errors.Is(cerr, crm.ErrUnavailable) {
		t.Errorf("CreateContact err = %v", cerr)
	}
	got := srv.Requests()
	if got["GET /api/v4/users"] != 2 || got["POST /api/v4/contacts"] != 1 {
		t.Errorf("requests = %v: a safe list is retried once, a create never", got)
	}
	if len(sl.Waits()) != 1 {
		t.Errorf("waits = %v", sl.Waits())
	}
}

func TestContextCanceled(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ListUsers(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ListUsers: %v", err)
	}
	// Cancelled while the server is slow.
	srv.SetLatency(time.Minute)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel2()
	_, err := c.FindContactsByPhone(ctx2, "+79161234567")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, crm.ErrUnavailable) {
		t.Errorf("FindContactsByPhone: %v, want only context.DeadlineExceeded", err)
	}
	// A backoff cut short by the context.
	srv.SetLatency(0)
	c2, _ := newClient(t, srv, func(o *amocrm.Options) {
		o.Sleep = nil
		o.Backoff = func(int) time.Duration { return time.Hour }
		o.RetryBudget = 2 * time.Hour
	})
	srv.FailNext("GET /api/v4/users", 1, 429)
	ctx3, cancel3 := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel3()
	if _, err := c2.ListUsers(ctx3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ListUsers during backoff: %v", err)
	}
}

func TestSetBaseURL(t *testing.T) {
	a := newFake(t, amocrmtest.Options{})
	b := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, a, nil)
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.SetBaseURL(b.URL() + "/"); err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != b.URL() {
		t.Errorf("BaseURL = %q, want %q", c.BaseURL(), b.URL())
	}
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a.TotalRequests() != 1 || b.TotalRequests() != 1 {
		t.Errorf("requests: old %d, new %d; want 1 and 1", a.TotalRequests(), b.TotalRequests())
	}
	if err := c.SetBaseURL("ftp://x"); err == nil || c.BaseURL() != b.URL() {
		t.Errorf("a bad URL must be refused and leave the old one; err %v, URL %s", err, c.BaseURL())
	}
}

func TestNewValidation(t *testing.T) {
	tok := amocrm.StaticToken("t")
	tests := []struct {
		name  string
		opt   amocrm.Options
		field string
	}{
		{"no base URL", amocrm.Options{Tokens: tok}, "Options.BaseURL"},
		{"bad scheme", amocrm.Options{BaseURL: "ftp://a.amocrm.ru", Tokens: tok}, "Options.BaseURL"},
		{"path", amocrm.Options{BaseURL: "https://a.amocrm.ru/api/v4", Tokens: tok}, "Options.BaseURL"},
		{"user info", amocrm.Options{BaseURL: "https://u:p@a.amocrm.ru", Tokens: tok}, "Options.BaseURL"},
		{"no host", amocrm.Options{BaseURL: "https://", Tokens: tok}, "Options.BaseURL"},
		{"no tokens", amocrm.Options{BaseURL: "https://a.amocrm.ru"}, "Options.Tokens"},
		{"empty token", amocrm.Options{BaseURL: "https://a.amocrm.ru", Tokens: amocrm.StaticToken("")}, "Options.Tokens"},
		{"negative rate", amocrm.Options{BaseURL: "https://a.amocrm.ru", Tokens: tok, RateLimit: -1}, "Options.RateLimit"},
		{"negative burst", amocrm.Options{BaseURL: "https://a.amocrm.ru", Tokens: tok, Burst: -1}, "Options.Burst"},
		{"negative budget", amocrm.Options{BaseURL: "https://a.amocrm.ru", Tokens: tok, RetryBudget: -1}, "Options.RetryBudget"},
		{"negative field id", amocrm.Options{BaseURL: "https://a.amocrm.ru", Tokens: tok, IdentityFieldID: -1}, "Options.IdentityFieldID"},
	}
	for _, tt := range tests {
		_, err := amocrm.New(tt.opt)
		var oe *amocrm.OptionError
		if !errors.As(err, &oe) || oe.Field != tt.field || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: err = %v, want *OptionError on %s", tt.name, err, tt.field)
		}
	}
	if _, err := amocrm.New(amocrm.Options{BaseURL: "https://a.kommo.com", Tokens: tok}); err != nil {
		t.Errorf("minimal options: %v", err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := amocrm.DefaultBackoff(i); got != w {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", i, got, w)
		}
	}
}
