package pgstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/jackc/pgx/v5"
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

// previousRelease holds the token statements of the release before the
// refresh lock judged expiry by the database's clock, verbatim: during a
// rolling upgrade, instances still running it share the tokens table
// with instances of this version. They know nothing of the columns added
// since, and leave them as they are.
var previousRelease = struct{ lockToken, saveToken, unlockToken string }{
	saveToken: `UPDATE {s}.tokens SET access_token = $2, refresh_token = $3, expiry_ns = $4, base_url = $5,
	version = version + 1, locked_until_ns = NULL, owner = ''
WHERE account = $1 AND version = $6`,
	lockToken: `UPDATE {s}.tokens SET locked_until_ns = $5, owner = $3
WHERE account = $1 AND version = $2 AND (owner = $3 OR locked_until_ns IS NULL OR locked_until_ns <= $4)`,
	unlockToken: `UPDATE {s}.tokens SET locked_until_ns = NULL, owner = ''
WHERE account = $1 AND version = $2 AND owner = $3`,
}

// TestTokenLockDuringUpgrade: instances of the previous release (whose
// statements are run verbatim) and of this version share one tokens row.
// A lock the previous release took is live, for this version, until its
// until by the caller's clock, the rule the previous release itself
// applies; whatever an earlier lock of this version left in the row.
func TestTokenLockDuringUpgrade(t *testing.T) {
	pool := testPool(t)
	schema := freshSchema(t)
	db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	sch := pgx.Identifier{schema}.Sanitize()
	ctx := t.Context()
	const ttl = time.Minute
	// The server runs on this host: its clock is close to time.Now().
	t0 := time.Now()

	setup := func(t *testing.T) (pgstore.Tokens, []byte, int64) {
		t.Helper()
		account := randomID()
		store := db.Account(account).Tokens()
		rec, err := store.Save(ctx, 0, amocrm.TokenPair{AccessToken: "access", RefreshToken: "refresh"})
		if err != nil {
			t.Fatal(err)
		}
		return store, []byte(account), rec.Version
	}
	oldLock := func(t *testing.T, account []byte, v int64, owner string, now, until time.Time) bool {
		t.Helper()
		tag, err := pool.Exec(ctx, strings.ReplaceAll(previousRelease.lockToken, "{s}", sch), account, v, []byte(owner), now.UnixNano(), until.UnixNano())
		if err != nil {
			t.Fatalf("the previous release's Lock by %s: %v", owner, err)
		}
		return tag.RowsAffected() == 1
	}
	oldExec := func(t *testing.T, q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, strings.ReplaceAll(q, "{s}", sch), args...); err != nil {
			t.Fatal(err)
		}
	}
	lock := func(t *testing.T, store pgstore.Tokens, v int64, owner string, now time.Time, d time.Duration) bool {
		t.Helper()
		ok, err := store.Lock(ctx, v, owner, now, now.Add(d))
		if err != nil {
			t.Fatalf("Lock by %s: %v", owner, err)
		}
		return ok
	}

	t.Run("a lock of the previous release holds off a new Lock until its until", func(t *testing.T) {
		store, account, v := setup(t)
		if !oldLock(t, account, v, "old-host", t0, t0.Add(ttl)) {
			t.Fatal("the previous release's Lock of a free version refused")
		}
		if lock(t, store, v, "new-host", t0.Add(ttl/2), ttl) {
			t.Errorf("a Lock took the previous release's lock while it was live by its until")
		}
		if !lock(t, store, v, "new-host", t0.Add(ttl), ttl) {
			t.Errorf("a Lock was refused the previous release's lock once its until had passed")
		}
	})

	t.Run("a lock of the previous release over the expired lock of this version still holds", func(t *testing.T) {
		store, account, v := setup(t)
		// A lock of no duration: expired by the database's clock at once,
		// as one whose holder died, and due by its until at t0.
		if !lock(t, store, v, "new-host", t0, 0) {
			t.Fatal("Lock of a free version refused")
		}
		if !oldLock(t, account, v, "old-host", t0.Add(time.Second), t0.Add(ttl)) {
			t.Fatal("the previous release's Lock of an expired lock refused")
		}
		if lock(t, store, v, "other-new-host", t0.Add(2*time.Second), ttl) {
			t.Errorf("a Lock took the previous release's live lock, judging by the expiry of the lock it replaced")
		}
		if !lock(t, store, v, "other-new-host", t0.Add(ttl), ttl) {
			t.Errorf("a Lock was refused the previous release's lock once its until had passed")
		}
	})

	t.Run("a Save of the previous release releases the lock of this version", func(t *testing.T) {
		store, account, v := setup(t)
		if !lock(t, store, v, "new-host", t0, ttl) {
			t.Fatal("Lock of a free version refused")
		}
		oldExec(t, previousRelease.saveToken, account, []byte("access2"), []byte("refresh2"), nil, []byte(""), v)
		if !lock(t, store, v+1, "other-new-host", t0, ttl) {
			t.Errorf("a Lock of the version the previous release saved was refused: the lock of the version before held it")
		}
		if err := store.Unlock(ctx, v+1, "other-new-host"); err != nil {
			t.Fatal(err)
		}
		if !oldLock(t, account, v+1, "old-host", t0, t0.Add(ttl)) {
			t.Fatal("the previous release's Lock of a free version refused")
		}
		if lock(t, store, v+1, "other-new-host", t0.Add(ttl/2), ttl) {
			t.Errorf("a Lock took the previous release's lock while it was live by its until")
		}
	})

	t.Run("an Unlock of the previous release frees its lock", func(t *testing.T) {
		store, account, v := setup(t)
		if !oldLock(t, account, v, "old-host", t0, t0.Add(ttl)) {
			t.Fatal("the previous release's Lock of a free version refused")
		}
		oldExec(t, previousRelease.unlockToken, account, v, []byte("old-host"))
		if !lock(t, store, v, "new-host", t0, ttl) {
			t.Errorf("a Lock was refused a lock the previous release had released")
		}
	})

	t.Run("the previous release judges a lock of this version by its until", func(t *testing.T) {
		store, account, v := setup(t)
		if !lock(t, store, v, "new-host", t0, ttl) {
			t.Fatal("Lock of a free version refused")
		}
		if oldLock(t, account, v, "old-host", t0.Add(ttl/2), t0.Add(ttl/2+ttl)) {
			t.Errorf("the previous release took a lock live by its until")
		}
		if !oldLock(t, account, v, "old-host", t0.Add(ttl), t0.Add(2*ttl)) {
			t.Errorf("the previous release was refused a lock whose until had passed")
		}
	})
}
