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

// TestTokenLockUsesDatabaseClock: two instances whose clocks disagree by
// more than the refresh lock's duration, each way. The lock lives for the
// duration its caller asked, by the database's clock, so neither instance
// takes the other's live lock, and a lock whose time is up by the
// database's clock is free whatever the holder's clock said.
func TestTokenLockUsesDatabaseClock(t *testing.T) {
	store := fresh(t)("acme").Tokens()
	ctx := t.Context()
	rec, err := store.Save(ctx, 0, amocrm.TokenPair{AccessToken: "access", RefreshToken: "refresh"})
	if err != nil {
		t.Fatal(err)
	}
	const ttl, skew = time.Minute, 10 * time.Minute
	// The server runs on this host: its clock is close to time.Now().
	onTime := time.Now()
	behind, ahead := onTime.Add(-skew), onTime.Add(skew)
	lock := func(owner string, now time.Time, d time.Duration) bool {
		t.Helper()
		ok, err := store.Lock(ctx, rec.Version, owner, now, now.Add(d))
		if err != nil {
			t.Fatalf("Lock by %s: %v", owner, err)
		}
		return ok
	}

	if !lock("slow-host", behind, ttl) {
		t.Fatal("Lock of a free version refused")
	}
	if lock("fast-host", ahead, ttl) {
		t.Errorf("a host whose clock is %v ahead took a lock live for another %v by the database's clock", 2*skew, ttl)
	}
	if lock("right-host", onTime, ttl) {
		t.Errorf("a host with the right time took a lock live for another %v by the database's clock", ttl)
	}
	if got, err := store.Load(ctx); err != nil || !got.LockedUntil.Equal(behind.Add(ttl)) {
		t.Errorf("Load = %v, %v; want LockedUntil %v, the holder's until as its clock gave it", got.LockedUntil, err, behind.Add(ttl))
	}
	if err := store.Unlock(ctx, rec.Version, "slow-host"); err != nil {
		t.Fatal(err)
	}

	// A lock of no duration ends when the database grants it, though its
	// until is ten minutes away by the slow host's clock.
	if !lock("fast-host", ahead, 0) {
		t.Fatal("Lock of a released version refused")
	}
	if !lock("slow-host", behind, ttl) {
		t.Errorf("a lock of no duration by the database's clock still held off another host, whose clock is %v behind the holder's", 2*skew)
	}
	if lock("fast-host", ahead, ttl) {
		t.Errorf("a host whose clock is %v ahead took a lock live for another %v by the database's clock", 2*skew, ttl)
	}
}
