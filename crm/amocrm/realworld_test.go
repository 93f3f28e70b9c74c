package amocrm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// Tests of the behaviours where real accounts differ from what the
// adapter used to assume: each fails on the adapter before the fix.

// An account without API filtering ignores filter[id] and answers other
// clients' leads; ListDeals must return only the contact's own.
func TestListDealsOnlyTheContactsLeads(t *testing.T) {
	for _, filter := range []bool{false, true} {
		t.Run(fmt.Sprintf("APIFilter=%v", filter), func(t *testing.T) {
			srv := newFake(t, amocrmtest.Options{APIFilter: filter})
			c, _ := newClient(t, srv, func(o *amocrm.Options) { o.SearchReuse = -1 })
			ctx := t.Context()
			mine := srv.AddContact(amocrmtest.Contact{Name: "mine"})
			other := srv.AddContact(amocrmtest.Contact{Name: "other"})
			var want []crm.DealID
			for i := range 3 {
				d, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: fmt.Sprint("m", i), Pipeline: "7001", Stage: "70012", Contact: cid(mine)})
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, d.ID)
				if _, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: fmt.Sprint("o", i), Pipeline: "7001", Stage: "70012", Contact: cid(other)}); err != nil {
					t.Fatal(err)
				}
			}
			srv.ResetCounts()
			deals, err := c.ListDeals(ctx, cid(mine))
			if err != nil {
				t.Fatal(err)
			}
			var got []crm.DealID
			for _, d := range deals {
				got = append(got, d.ID)
				if !slices.Contains(d.Contacts, cid(mine)) {
					t.Errorf("deal %s returned for contact %s does not list it: %v", d.ID, cid(mine), d.Contacts)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("ListDeals = %v; want exactly the contact's deals %v", got, want)
			}
			reqs := srv.Requests()
			if filter && (reqs["GET /api/v4/leads"] != 1 || reqs["GET /api/v4/leads/{id}"] != 0) {
				t.Errorf("with API filtering the leads must be read in one filtered list; requests %v", reqs)
			}
			if !filter && (reqs["GET /api/v4/leads"] != 0 || reqs["GET /api/v4/leads/{id}"] != 3) {
				t.Errorf("without API filtering each lead must be read by id; requests %v", reqs)
			}
		})
	}
}

// amoCRM wants a result with is_completed.
func TestCompleteTaskSendsResult(t *testing.T) {
	for _, result := range []string{"", "Client answered in WhatsApp"} {
		srv := newFake(t, amocrmtest.Options{})
		c, _ := newClient(t, srv, func(o *amocrm.Options) { o.TaskResult = result })
		ct := srv.AddContact(amocrmtest.Contact{Name: "t"})
		task, err := c.CreateTask(t.Context(), crm.NewTask{Contact: cid(ct), Text: "call back", Deadline: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CompleteTask(t.Context(), task.ID); err != nil {
			t.Fatalf("CompleteTask: %v", err)
		}
		want := result
		if want == "" {
			want = amocrm.DefaultTaskResult
		}
		if got, _ := srv.Task(mustAtoi(t, string(task.ID))); !got.Completed || got.Result != want {
			t.Errorf("task after CompleteTask: %+v; want completed with result %q", got, want)
		}
	}
}

// A client whose deal waits in Unsorted is invisible to contact search;
// a follow-up (after a restart: a new Client) must find the entry's
// contact, not create a second one.
func TestUnsortedClientFoundAgain(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	first, _ := newClient(t, srv, nil)
	ctx := t.Context()
	tg := crm.Identity{Kind: "telegram", Value: "ivan_p"}
	d, ct, err := first.CreateDeal(ctx, crm.NewDeal{Name: "new", Pipeline: "7001", Stage: "70011",
		NewContact: &crm.NewContact{Name: "Ivan", Phones: []string{"8 (916) 123-45-67"}, Identities: []crm.Identity{tg}}})
	if err != nil {
		t.Fatal(err)
	}
	if u := srv.Unsorted(); len(u) != 1 || strings.Contains(u[0].SourceUID, "9161234567") || strings.Contains(u[0].SourceUID, "ivan_p") {
		t.Fatalf("Unsorted entries %+v: want one, whose source_uid does not show the phone or identity", u)
	}
	restarted, _ := newClient(t, srv, nil)
	byPhone, err := restarted.FindContactsByPhone(ctx, "+79161234567")
	if err != nil || len(byPhone) != 1 || byPhone[0].ID != ct.ID {
		t.Fatalf("FindContactsByPhone of a client in Unsorted = %v, %v; want contact %s", byPhone, err, ct.ID)
	}
	byID, err := restarted.FindContactsByIdentity(ctx, tg)
	if err != nil || len(byID) != 1 || byID[0].ID != ct.ID {
		t.Fatalf("FindContactsByIdentity of a client in Unsorted = %v, %v; want contact %s", byID, err, ct.ID)
	}
	deals, err := restarted.ListDeals(ctx, ct.ID)
	if err != nil || len(deals) != 1 || deals[0].ID != d.ID || deals[0].Stage != "70011" {
		t.Fatalf("ListDeals of the Unsorted client = %+v, %v; want deal %s in Unsorted", deals, err, d.ID)
	}
	if none, _ := restarted.FindContactsByPhone(ctx, "+79161234568"); len(none) != 0 {
		t.Errorf("another number must not find the Unsorted client: %v", none)
	}
	// Once claimed (accepted), the contact is found by search.
	if err := restarted.SetResponsible(ctx, d.ID, "502"); err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	again, _ := newClient(t, srv, nil)
	found, err := again.FindContactsByPhone(ctx, "+79161234567")
	if err != nil || len(found) != 1 || found[0].ID != ct.ID || found[0].Responsible != "502" {
		t.Errorf("after the claim: %+v, %v; want contact %s with responsible 502", found, err, ct.ID)
	}
	if srv.Requests()["GET /api/v4/leads/unsorted"] != 0 {
		t.Errorf("an accepted client is found by search alone; requests %v", srv.Requests())
	}
}

func installOAuth(t *testing.T, srv *amocrmtest.Server, store amocrm.TokenStore, mutate func(*amocrm.OAuthConfig)) *amocrm.OAuth {
	t.Helper()
	o := newOAuth(t, srv, store, mutate)
	if err := o.Exchange(t.Context(), srv.AuthorizationCode(), ""); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return o
}

// The install flow: the first authorization code becomes the stored
// pair; amoCRM requires the registered redirect_uri on it.
func TestOAuthExchange(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := &amocrm.MemoryStore{}
	o := newOAuth(t, srv, store, nil)
	if _, err := o.Token(t.Context()); !errors.Is(err, amocrm.ErrReauthorize) {
		t.Fatalf("Token before any authorization = %v; want ErrReauthorize", err)
	}
	code := srv.AuthorizationCode()
	host := strings.TrimPrefix(srv.URL(), "http://")
	if err := o.Exchange(t.Context(), code, host); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rec, _ := store.Load(t.Context())
	if rec.Version != 1 || rec.Pair.RefreshToken != srv.RefreshToken() || rec.Pair.BaseURL != srv.URL() {
		t.Errorf("store after Exchange: %v; want version 1 with the issued pair and the account address", rec)
	}
	c, _ := newClient(t, srv, func(opt *amocrm.Options) { opt.Tokens = o })
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Errorf("API call with the exchanged token: %v", err)
	}
	if err := o.Exchange(t.Context(), code, ""); !errors.Is(err, crm.ErrUnauthorized) {
		t.Errorf("a code exchanged twice = %v; want ErrUnauthorized", err)
	}
	before := srv.TotalRequests()
	if err := o.Exchange(t.Context(), srv.AuthorizationCode(), "evil.example.com"); !errors.Is(err, crm.ErrInvalid) {
		t.Errorf("Exchange with a referer outside amoCRM = %v; want ErrInvalid", err)
	}
	if srv.TotalRequests() != before {
		t.Errorf("the client secret must not be sent to a foreign host")
	}
	wrong := newOAuth(t, srv, &amocrm.MemoryStore{}, func(c *amocrm.OAuthConfig) { c.RedirectURI = "https://other.example/cb" })
	if err := wrong.Exchange(t.Context(), srv.AuthorizationCode(), ""); err == nil || !strings.Contains(err.Error(), "Redirect URI") {
		t.Errorf("Exchange with another redirect_uri = %v; want amoCRM's refusal", err)
	}
}

// A refresh whose answer is lost spends the refresh token: the next
// refresh is refused, and the error tells the host to authorize again.
func TestOAuthLostRefreshAnswer(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(expiredPair(srv))
	o := newOAuth(t, srv, store, nil)
	srv.LoseNextAnswers("POST /oauth2/access_token", 1)
	_, err := o.Token(t.Context())
	if !errors.Is(err, crm.ErrUnavailable) || !strings.Contains(err.Error(), "spent") {
		t.Fatalf("Token with the answer lost = %v; want ErrUnavailable saying the refresh token may be spent", err)
	}
	_, err = o.Token(t.Context())
	var re *amocrm.RevokedError
	if !errors.As(err, &re) || !errors.Is(err, amocrm.ErrReauthorize) || !errors.Is(err, crm.ErrUnauthorized) || !strings.Contains(err.Error(), "OAuth.Exchange") {
		t.Fatalf("Token after the lost answer = %v; want a *RevokedError (ErrReauthorize) telling to authorize again", err)
	}
	// The recovery: a new authorization code.
	if err := o.Exchange(t.Context(), srv.AuthorizationCode(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Token(t.Context()); err != nil {
		t.Errorf("Token after re-authorizing: %v", err)
	}
}

// Two processes sharing a store: exactly one refreshes, the other uses
// its result.
func TestOAuthProcessesShareOneRefresh(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(expiredPair(srv))
	poll := func(ctx context.Context, d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	}
	procs := []*amocrm.OAuth{
		newOAuth(t, srv, store, func(c *amocrm.OAuthConfig) { c.Sleep = poll }),
		newOAuth(t, srv, store, func(c *amocrm.OAuthConfig) { c.Sleep = poll }),
		newOAuth(t, srv, store, func(c *amocrm.OAuthConfig) { c.Sleep = poll }),
	}
	var wg sync.WaitGroup
	toks := make([]string, 3*16)
	errs := make([]error, len(toks))
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = procs[i%3].Token(t.Context()) })
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("process %d: %q, %v; want every process to use the one refreshed token", i%3, toks[i], errs[i])
		}
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 1 {
		t.Errorf("refreshes across processes = %d; want 1", got)
	}
}

// A renamed account: the refresh at the old address fails, the adapter
// asks amoCRM's shared domain for the new one, refreshes there, and every
// request follows.
func TestOAuthRenamedAccount(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := &amocrm.MemoryStore{}
	o := installOAuth(t, srv, store, nil)
	c, _ := newClient(t, srv, func(opt *amocrm.Options) { opt.Tokens = o })
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	newHost := "localhost:" + u.Port()
	srv.RenameAccount(newHost)
	srv.ExpireAccessTokens()
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatalf("ListUsers after the rename: %v", err)
	}
	if got := c.BaseURL(); got != "http://"+newHost {
		t.Errorf("Client.BaseURL after the rename = %q; want http://%s", got, newHost)
	}
	if rec, _ := store.Load(t.Context()); rec.Pair.BaseURL != "http://"+newHost {
		t.Errorf("the stored pair must carry the new address; got %v", rec)
	}
	if srv.Requests()["GET /oauth2/account/current/subdomain"] != 1 {
		t.Errorf("requests %v; want one subdomain lookup", srv.Requests())
	}
}

// Every type holding a secret redacts it in every format verb.
func TestSecretsRedactedInEveryVerb(t *testing.T) {
	const (
		access  = "SECRET-access"
		refresh = "SECRET-refresh"
		secret  = "SECRET-client-secret"
		static  = "SECRET-long-lived"
	)
	srv := newFake(t, amocrmtest.Options{Token: static, ClientSecret: secret})
	pair := amocrm.TokenPair{AccessToken: access, RefreshToken: refresh}
	store := amocrm.NewMemoryStore(pair)
	cfg := amocrm.OAuthConfig{BaseURL: srv.URL(), ClientID: "id", ClientSecret: secret, RedirectURI: amocrmtest.DefaultRedirectURI}
	o, err := amocrm.NewOAuth(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = o.Token(t.Context()) // loads the pair into o
	viaOAuth, _ := newClient(t, srv, func(opt *amocrm.Options) { opt.Tokens = o })
	viaStatic, _ := newClient(t, srv, func(opt *amocrm.Options) { opt.Tokens = amocrm.StaticToken(static) })
	rec, _ := store.Load(t.Context())
	hook, err := amocrm.NewWebhookHandler(amocrm.WebhookOptions{Secret: "SECRET-hook", Handle: func(context.Context, []amocrm.WebhookEvent) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"WebhookHandler": hook,
		"Client(OAuth)":  viaOAuth, "Client(static)": viaStatic, "OAuth": o, "OAuthConfig": cfg, "*OAuthConfig": &cfg,
		"MemoryStore": store, "TokenRecord": rec, "TokenPair": pair, "*TokenPair": &pair, "StaticToken": amocrm.StaticToken(static),
		"Options":        amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(static)},
		"struct":         struct{ C *amocrm.Client }{viaStatic},
		"WebhookOptions": amocrm.WebhookOptions{Secret: "SECRET-hook"},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, "SECRET") || strings.Contains(strings.ToUpper(out), strings.ToUpper(fmt.Sprintf("%x", "SECRET"))) {
				t.Errorf("%s printed with %s shows a secret: %s", name, verb, out)
			}
		}
	}
}

// An unreachable account keeps the cause in the error chain and the log,
// never a token.
func TestUnreachableKeepsCause(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := amocrm.New(amocrm.Options{BaseURL: "http://127.0.0.1:1", Tokens: amocrm.StaticToken("SECRET-token"),
		MaxRetries: 1, Sleep: func(context.Context, time.Duration) error { return nil }, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindContactsByPhone(t.Context(), "+79161234567")
	if !errors.Is(err, crm.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v; want ErrUnavailable with the connection refused cause in the chain", err)
	}
	out := logs.String()
	for _, want := range []string{"op=FindContactsByPhone", "http_method=GET", "path=/api/v4/contacts", "attempt=1", "attempt=2", "status=0", "duration=", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, "9161234567") {
		t.Errorf("log shows a token or the searched phone:\n%s", out)
	}
}

func TestListContacts(t *testing.T) {
	for _, filter := range []bool{false, true} {
		t.Run(fmt.Sprintf("APIFilter=%v", filter), func(t *testing.T) {
			now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			clock := &now
			var mu sync.Mutex
			srv := newFake(t, amocrmtest.Options{APIFilter: filter, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return *clock }})
			c, _ := newClient(t, srv, nil)
			for i := range 7 {
				srv.AddContact(amocrmtest.Contact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("+7916000000%d", i)}})
			}
			mu.Lock()
			now = now.Add(time.Hour)
			mu.Unlock()
			late := srv.AddContact(amocrmtest.Contact{Name: "late"})
			seen := map[crm.ContactID]int{}
			for ct, err := range crm.AllContacts(t.Context(), c, crm.ContactQuery{Limit: 3}) {
				if err != nil {
					t.Fatal(err)
				}
				seen[ct.ID]++
			}
			if len(seen) != 8 {
				t.Errorf("AllContacts visited %d contacts; want 8", len(seen))
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("contact %s visited %d times", id, n)
				}
			}
			var since []crm.ContactID
			for ct, err := range crm.AllContacts(t.Context(), c, crm.ContactQuery{UpdatedSince: now}) {
				if err != nil {
					t.Fatal(err)
				}
				since = append(since, ct.ID)
			}
			if !slices.Equal(since, []crm.ContactID{cid(late)}) {
				t.Errorf("UpdatedSince: %v; want only %d", since, late)
			}
			if _, err := c.ListContacts(t.Context(), crm.ContactQuery{Cursor: "bogus"}); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("a foreign cursor = %v; want ErrInvalid", err)
			}
		})
	}
}

// The conformance run's phone rule switch: a client with the rule off.
func phoneRuleOff(srv *amocrmtest.Server) func(t *testing.T) crm.Client {
	return func(t *testing.T) crm.Client {
		c, _ := newClient(t, srv, func(o *amocrm.Options) { o.Phone.DisableEightAsSeven = true; o.MaxRetries = amocrm.NoRetries })
		return c
	}
}

// An account whose pipelines have no Unsorted stage is not asked for
// Unsorted entries when a search finds nobody (pipelines cached).
func TestNoUnsortedLookupWithoutInbox(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{Pipelines: []amocrmtest.Pipeline{{ID: 1, Name: "Sales", Main: true, Statuses: []amocrmtest.Status{{ID: 11, Name: "New"}}}}})
	c, _ := newClient(t, srv, nil)
	if _, err := c.ListPipelines(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	if found, err := c.FindContactsByPhone(t.Context(), "+79161234567"); err != nil || len(found) != 0 {
		t.Fatalf("FindContactsByPhone = %v, %v", found, err)
	}
	if got := srv.Requests(); got["GET /api/v4/leads/unsorted"] != 0 || srv.TotalRequests() != 1 {
		t.Errorf("requests %v; want the search alone", got)
	}
}
