package amocrm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

func newOAuth(t *testing.T, srv *amocrmtest.Server, store amocrm.TokenStore, mutate func(*amocrm.OAuthConfig)) *amocrm.OAuth {
	t.Helper()
	cfg := amocrm.OAuthConfig{
		BaseURL:      srv.URL(),
		ClientID:     amocrmtest.DefaultClientID,
		ClientSecret: amocrmtest.DefaultClientSecret,
		RedirectURI:  amocrmtest.DefaultRedirectURI,
		Hosts:        []string{"127.0.0.1", "localhost"},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	o, err := amocrm.NewOAuth(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func expiredPair(srv *amocrmtest.Server) amocrm.TokenPair {
	return amocrm.TokenPair{AccessToken: "expired-access", RefreshToken: srv.RefreshToken(), Expiry: time.Now().Add(-time.Hour)}
}

// Many goroutines needing a token at once cause exactly one refresh.
func TestOAuthSingleRefresh(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(expiredPair(srv))
	o := newOAuth(t, srv, store, nil)
	const n = 64
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			toks[i], errs[i] = o.Token(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] || toks[0] == "expired-access" {
			t.Fatalf("goroutine %d: token %q err %v; want the one refreshed token", i, toks[i], errs[i])
		}
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	saved, _ := store.Load(t.Context())
	if saved.Pair.AccessToken != toks[0] || saved.Pair.RefreshToken != srv.RefreshToken() || !saved.Pair.Expiry.After(time.Now()) {
		t.Errorf("store holds %#v, want the new pair", saved)
	}
}

// After a 401 many concurrent requests share one refresh and all succeed.
func TestOAuthRefreshOn401(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(expiredPair(srv))
	o := newOAuth(t, srv, store, nil)
	c, _ := newClient(t, srv, func(opt *amocrm.Options) { opt.Tokens = o })
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.ExpireAccessTokens() // amoCRM revoked the access token early
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.ListPipelines(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 2 {
		t.Errorf("refreshes = %d, want 2 (initial + one after the 401s)", got)
	}
}

func TestOAuthRevokedRefreshToken(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(amocrm.TokenPair{RefreshToken: "spent-refresh-token-XYZ"})
	o := newOAuth(t, srv, store, nil)
	c, _ := newClient(t, srv, func(opt *amocrm.Options) { opt.Tokens = o })
	_, err := c.ListUsers(t.Context())
	if !errors.Is(err, crm.ErrUnauthorized) || crm.Temporary(err) || !strings.Contains(err.Error(), "Token has been revoked") {
		t.Fatalf("err = %v, want ErrUnauthorized with the server's hint", err)
	}
	if strings.Contains(err.Error(), "spent-refresh-token-XYZ") || strings.Contains(err.Error(), amocrmtest.DefaultClientSecret) {
		t.Errorf("error leaks a secret: %v", err)
	}
	if srv.Requests()["GET /api/v4/users"] != 0 {
		t.Errorf("no API request expected without a token")
	}
}

// A caller giving up does not abort the refresh: the spent refresh token's
// successor is kept and saved, and the next caller reuses it.
func TestOAuthRefreshSurvivesCanceledCaller(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(expiredPair(srv))
	o := newOAuth(t, srv, store, nil)
	srv.SetLatency(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := o.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	tok, err := o.Token(t.Context()) // waits for the refresh in flight
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := store.Load(t.Context())
	if saved.Pair.AccessToken != tok || saved.Pair.RefreshToken != srv.RefreshToken() {
		t.Errorf("store %#v does not hold the refreshed pair", saved)
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
}

type failingStore struct {
	amocrm.MemoryStore
	fail error
}

func (f *failingStore) Save(ctx context.Context, prev int64, p amocrm.TokenPair) (amocrm.TokenRecord, error) {
	return amocrm.TokenRecord{}, f.fail
}

func TestOAuthStoreSaveFails(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := &failingStore{fail: errors.New("disk full")}
	_, _ = store.MemoryStore.Save(t.Context(), 0, expiredPair(srv))
	o := newOAuth(t, srv, store, nil)
	if _, err := o.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the store failure reported", err)
	}
	// The new pair is kept in memory: no second refresh (it would be refused).
	if _, err := o.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
}

func TestOAuthUsesFreshStoredToken(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(amocrm.TokenPair{AccessToken: srv.Token(), RefreshToken: "r", Expiry: time.Now().Add(time.Hour)})
	o := newOAuth(t, srv, store, nil)
	tok, err := o.Token(t.Context())
	if err != nil || tok != srv.Token() {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	if srv.TotalRequests() != 0 {
		t.Errorf("a fresh stored token needs no refresh: %v", srv.Requests())
	}
}

func TestNewOAuthValidation(t *testing.T) {
	store := amocrm.NewMemoryStore(amocrm.TokenPair{})
	tests := []struct {
		cfg   amocrm.OAuthConfig
		store amocrm.TokenStore
		field string
	}{
		{amocrm.OAuthConfig{ClientID: "i", ClientSecret: "s", RedirectURI: "https://h/r"}, store, "OAuthConfig.BaseURL"},
		{amocrm.OAuthConfig{BaseURL: "https://a.amocrm.ru", ClientSecret: "s", RedirectURI: "https://h/r"}, store, "OAuthConfig.ClientID"},
		{amocrm.OAuthConfig{BaseURL: "https://a.amocrm.ru", ClientID: "i", RedirectURI: "https://h/r"}, store, "OAuthConfig.ClientSecret"},
		{amocrm.OAuthConfig{BaseURL: "https://a.amocrm.ru", ClientID: "i", ClientSecret: "s"}, store, "OAuthConfig.RedirectURI"},
		{amocrm.OAuthConfig{BaseURL: "https://a.amocrm.ru", ClientID: "i", ClientSecret: "s", RedirectURI: "/relative"}, store, "OAuthConfig.RedirectURI"},
		{amocrm.OAuthConfig{BaseURL: "https://a.amocrm.ru", ClientID: "i", ClientSecret: "s", RedirectURI: "https://h/r"}, nil, "store"},
	}
	for _, tt := range tests {
		_, err := amocrm.NewOAuth(tt.cfg, tt.store)
		var oe *amocrm.OptionError
		if !errors.As(err, &oe) || oe.Field != tt.field {
			t.Errorf("NewOAuth: err = %v, want *OptionError on %s", err, tt.field)
		}
		if err != nil && strings.Contains(err.Error(), "s\"") {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
}

// Secrets never appear in errors or in formatted values.
func TestSecretsNeverPrinted(t *testing.T) {
	const (
		longLived = "SECRET-long-lived-token-1"
		access    = "SECRET-access-token-2"
		refresh   = "SECRET-refresh-token-3"
		secret    = "SECRET-client-secret-4"
	)
	srv := newFake(t, amocrmtest.Options{Token: longLived, ClientSecret: secret, RefreshToken: refresh})
	var errs []error
	// Wrong long-lived token → 401.
	bad, _ := newClient(t, srv, func(o *amocrm.Options) { o.Tokens = amocrm.StaticToken("SECRET-wrong-token-5") })
	_, err := bad.ListUsers(t.Context())
	errs = append(errs, err)
	// Wrong client secret on refresh.
	o1 := newOAuth(t, srv, amocrm.NewMemoryStore(amocrm.TokenPair{AccessToken: access, RefreshToken: refresh, Expiry: time.Now().Add(-time.Hour)}),
		func(c *amocrm.OAuthConfig) { c.ClientSecret = "SECRET-wrong-secret-6" })
	_, err = o1.Token(t.Context())
	errs = append(errs, err)
	// Blocked account, with tokens in play.
	good, _ := newClient(t, srv, func(o *amocrm.Options) { o.Tokens = amocrm.StaticToken(longLived) })
	srv.Block(true)
	_, err = good.CreateContact(t.Context(), crm.NewContact{Name: "x"})
	errs = append(errs, err)
	o2 := newOAuth(t, srv, amocrm.NewMemoryStore(amocrm.TokenPair{AccessToken: access, RefreshToken: refresh}), func(c *amocrm.OAuthConfig) { c.ClientSecret = secret })
	_, err = o2.Refresh(t.Context(), access)
	errs = append(errs, err)
	srv.Block(false)
	// Server errors and validation errors.
	srv.FailNext("*", 1, 500)
	_, err = good.CreateContact(t.Context(), crm.NewContact{Name: "x"})
	errs = append(errs, err)
	_, err = good.CreateContact(t.Context(), crm.NewContact{Name: "x", Responsible: "999"})
	errs = append(errs, err)

	secrets := []string{longLived, access, refresh, secret, "SECRET-wrong-token-5", "SECRET-wrong-secret-6", "SECRET"}
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: expected an error", i)
			continue
		}
		for _, s := range secrets {
			if msg := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(msg, s) {
				t.Errorf("case %d: error %q contains secret %q", i, msg, s)
			}
		}
	}
	opt := amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(longLived)}
	pair := amocrm.TokenPair{AccessToken: access, RefreshToken: refresh}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", opt, opt, opt, opt.Tokens), fmt.Sprintf("%v %+v %#v %s", pair, pair, pair, pair)} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("formatted value leaks a secret: %s", s)
		}
	}
}

// A process that took the refresh lock and died holds it only until it
// expires; then another process refreshes.
func TestOAuthDeadLockHolder(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	store := amocrm.NewMemoryStore(expiredPair(srv))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	if ok, _ := store.Lock(t.Context(), 1, "dead-process", clock(), clock().Add(time.Minute)); !ok {
		t.Fatal("lock refused")
	}
	polls := 0
	o := newOAuth(t, srv, store, func(c *amocrm.OAuthConfig) {
		c.Now = clock
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			now = now.Add(d) // waiting moves the clock
			polls++
			mu.Unlock()
			return ctx.Err()
		}
	})
	tok, err := o.Token(t.Context())
	if err != nil || tok == "expired-access" {
		t.Fatalf("Token = %q, %v; want a refreshed token once the dead holder's lock expired", tok, err)
	}
	if polls < 100 || polls > 125 {
		t.Errorf("polls = %d; want about a minute of 500 ms polls", polls)
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 1 {
		t.Errorf("refreshes = %d; want 1", got)
	}
}
