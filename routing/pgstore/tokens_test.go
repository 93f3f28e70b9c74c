package pgstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestOAuthInstancesShareOneRefresh: three host instances, each with its
// own pool and DB on one database, need a token at once while the stored
// one is expired. amoCRM's refresh tokens are single-use: exactly one
// instance refreshes, and every caller on every instance uses its result.
func TestOAuthInstancesShareOneRefresh(t *testing.T) {
	dsn := testPool(t).Config().ConnString()
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	t.Cleanup(srv.Close)
	account := "oauth-" + randomID()
	poll := func(ctx context.Context, d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	}
	var procs []*amocrm.OAuth
	for i := range 3 {
		pool, err := pgxpool.New(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: "crmbridge_test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		store := db.Account(account).Tokens()
		if i == 0 {
			expired := amocrm.TokenPair{AccessToken: "expired-access", RefreshToken: srv.RefreshToken(), Expiry: time.Now().Add(-time.Hour)}
			if _, err := store.Save(t.Context(), 0, expired); err != nil {
				t.Fatal(err)
			}
		}
		o, err := amocrm.NewOAuth(amocrm.OAuthConfig{BaseURL: srv.URL(), ClientID: amocrmtest.DefaultClientID,
			ClientSecret: amocrmtest.DefaultClientSecret, RedirectURI: amocrmtest.DefaultRedirectURI,
			Hosts: []string{"127.0.0.1", "localhost"}, Sleep: poll}, store)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, o)
	}
	toks := make([]string, 3*16)
	errs := make([]error, len(toks))
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = procs[i%3].Token(t.Context()) })
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] || toks[i] == "expired-access" {
			t.Fatalf("instance %d: %q, %v; want every instance to use the one refreshed token", i%3, toks[i], errs[i])
		}
	}
	if got := srv.Requests()["POST /oauth2/access_token"]; got != 1 {
		t.Errorf("refreshes across instances = %d; want exactly 1 (refresh tokens are single-use)", got)
	}
}
