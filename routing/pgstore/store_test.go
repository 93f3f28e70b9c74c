package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/crmbridge/crmbridge/tasks"
	"github.com/jackc/pgx/v5"
)

// freshSchema creates an empty schema name and drops it after the test.
func freshSchema(t *testing.T) string {
	t.Helper()
	pool := testPool(t)
	name := "crmbridge_t_" + randomID()
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	})
	return name
}

func TestOpenMigratesOnceUnderConcurrency(t *testing.T) {
	pool := testPool(t)
	schema := freshSchema(t)
	const instances = 8
	var wg sync.WaitGroup
	errs := make([]error, instances)
	dbs := make([]*pgstore.DB, instances)
	for i := range instances {
		wg.Go(func() {
			dbs[i], errs[i] = pgstore.Open(t.Context(), pool, pgstore.Options{Schema: schema})
		})
	}
	wg.Wait()
	for _, db := range dbs {
		if db != nil {
			t.Cleanup(db.Close)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%d instances opening one fresh schema at once must all succeed: %v", instances, err)
	}
	var v, rows int
	if err := pool.QueryRow(t.Context(), fmt.Sprintf("SELECT max(version), count(*) FROM %s.schema_version", pgx.Identifier{schema}.Sanitize())).Scan(&v, &rows); err != nil {
		t.Fatal(err)
	}
	if v != pgstore.SchemaVersion || rows != 1 {
		t.Errorf("schema_version = %d in %d rows; want %d in 1", v, rows, pgstore.SchemaVersion)
	}
	// Every instance works on the one set of tables.
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	if _, created, err := dbs[0].Account("a").Offer(t.Context(), chat, []crm.UserID{"u"}); err != nil || !created {
		t.Fatalf("Offer: %v, %v", created, err)
	}
	if st, found, err := dbs[instances-1].Account("a").Get(t.Context(), chat); err != nil || !found || st.Offered[0] != "u" {
		t.Errorf("another instance's Get = %+v, %v, %v; want the offer", st, found, err)
	}
	if db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: schema}); err != nil {
		t.Errorf("Open of a schema at the current version must succeed: %v", err)
	} else {
		db.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	pool := testPool(t)
	schema := freshSchema(t)
	db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := pool.Exec(t.Context(), fmt.Sprintf("UPDATE %s.schema_version SET version = version + 1", pgx.Identifier{schema}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: schema}); !errors.Is(err, pgstore.ErrNewerSchema) {
		t.Errorf("Open of a schema migrated by a newer version = %v; want ErrNewerSchema", err)
	}
}

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := pgstore.Open(ctx, nil, pgstore.Options{}); !errors.As(err, new(*pgstore.OptionError)) {
		t.Errorf("Open without a pool = %v; want an *OptionError", err)
	}
	pool := testPool(t)
	for _, o := range []pgstore.Options{{Schema: "a;drop"}, {Schema: "1abc"}, {Retention: -1}, {LockPoll: -1}} {
		var oe *pgstore.OptionError
		if _, err := pgstore.Open(ctx, pool, o); !errors.As(err, &oe) {
			t.Errorf("Open(%+v) = %v; want an *OptionError", o, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pgstore.Open(cctx, pool, pgstore.Options{Schema: freshSchema(t)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled context = %v; want an error matching context.Canceled", err)
	}
}

func TestStreaks(t *testing.T) {
	b := fresh(t)
	s := b("acme").Streaks()
	ctx := t.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	started := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	if _, found, err := s.Get(ctx, chat); err != nil || found {
		t.Fatalf("Get of no streak = %v, %v", found, err)
	}
	st, opened, err := s.Open(ctx, chat, "m1", started)
	if err != nil || !opened || st.Opener != "m1" || !st.Started.Equal(started) || st.Chat != chat {
		t.Fatalf("Open = %+v, %v, %v; want opened by m1 at %v (to the nanosecond)", st, opened, err, started)
	}
	if st, opened, err := s.Open(ctx, chat, "m2", started.Add(time.Minute)); err != nil || opened || st.Opener != "m1" {
		t.Errorf("second Open = %+v, %v, %v; want m1's streak, not opened", st, opened, err)
	}
	if err := s.SetTask(ctx, chat, "m2", "t9"); !errors.Is(err, tasks.ErrStreakClosed) {
		t.Errorf("SetTask by a message that opened nothing = %v; want ErrStreakClosed", err)
	}
	if err := s.SetTask(ctx, chat, "m1", "t1"); err != nil {
		t.Fatal(err)
	}
	if st, found, err := s.Get(ctx, chat); err != nil || !found || st.Task != "t1" {
		t.Errorf("Get after SetTask = %+v, %v, %v", st, found, err)
	}
	if st, found, err := s.Close(ctx, chat); err != nil || !found || st.Task != "t1" || st.Opener != "m1" {
		t.Errorf("Close = %+v, %v, %v; want the streak with its task", st, found, err)
	}
	if _, found, err := s.Close(ctx, chat); err != nil || found {
		t.Errorf("second Close = %v, %v; want nothing found", found, err)
	}
	if err := s.SetTask(ctx, chat, "m1", "t1"); !errors.Is(err, tasks.ErrStreakClosed) {
		t.Errorf("SetTask after Close = %v; want ErrStreakClosed", err)
	}
	if _, _, err := s.Open(ctx, chat, "", started); !errors.Is(err, tasks.ErrInvalid) {
		t.Errorf("Open with an empty opener = %v; want tasks.ErrInvalid", err)
	}
	if st, opened, err := s.Open(ctx, chat, "m3", time.Time{}); err != nil || !opened || !st.Started.IsZero() {
		t.Errorf("Open with a zero start = %+v, %v, %v; want opened, zero start kept", st, opened, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Open(cctx, chat, "m4", started); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled context = %v", err)
	}
}

func TestStreaksOneOpenerUnderConcurrency(t *testing.T) {
	s := fresh(t)("acme").Streaks()
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	const goroutines, rounds = 16, 20
	for r := range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		openers := 0
		for g := range goroutines {
			wg.Go(func() {
				st, opened, err := s.Open(t.Context(), chat, fmt.Sprint("m", r, ".", g), time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if opened {
					mu.Lock()
					openers++
					mu.Unlock()
				} else if st.Opener == "" {
					t.Errorf("Open that did not open returned no streak")
				}
			})
		}
		// A concurrent Close makes Open retry between its statements.
		wg.Go(func() { _, _, _ = s.Close(t.Context(), chat) })
		wg.Wait()
		if openers < 1 || openers > 2 {
			t.Errorf("round %d: %d Opens opened a streak; want 1 (or 2 around the one concurrent Close)", r, openers)
		}
		if _, _, err := s.Close(t.Context(), chat); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReceiptsPurge(t *testing.T) {
	b := fresh(t)
	acme, other := b("acme").Receipts(), b("other").Receipts()
	ctx := t.Context()
	for i := range 5 {
		for _, r := range []pgstore.Receipts{acme, other} {
			if _, _, err := r.Store(ctx, fmt.Sprint("k", i), channel.Receipt{ProviderID: "p"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := acme.Purge(ctx, time.Now().Add(-time.Hour), 10); err != nil || n != 0 {
		t.Errorf("Purge of nothing old enough = %d, %v", n, err)
	}
	total := 0
	for {
		n, err := acme.Purge(ctx, time.Now().Add(time.Hour), 2)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2 {
			t.Errorf("Purge with limit 2 deleted %d", n)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 5 {
		t.Errorf("Purge in a loop deleted %d of 5", total)
	}
	if _, ok, _ := acme.Load(ctx, "k0"); ok {
		t.Errorf("a purged receipt must be gone")
	}
	if _, ok, _ := other.Load(ctx, "k0"); !ok {
		t.Errorf("one account's Purge must leave another's receipts")
	}
	if _, err := acme.Purge(ctx, time.Now(), 0); !errors.Is(err, routing.ErrInvalid) {
		t.Errorf("Purge with limit 0 = %v; want routing.ErrInvalid", err)
	}
}

// TestAccountsIsolatedEverywhere: two accounts whose chats, employees,
// pools, keys and message IDs are textually the same never affect each
// other, in any store.
func TestAccountsIsolatedEverywhere(t *testing.T) {
	b := fresh(t)
	a, o := b("acme"), b("other")
	ctx := t.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	users := []crm.UserID{"u1", "u2"}

	if _, _, err := a.Offer(ctx, chat, users); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, chat, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Claim(ctx, chat, "u2"); !errors.Is(err, routing.ErrNotOffered) {
		t.Errorf("a claim in another account must not see this account's offer: %v", err)
	}
	if _, created, err := o.Offer(ctx, chat, users); err != nil || !created {
		t.Errorf("an offer of the same chat in another account must create its own record: %v, %v", created, err)
	}
	if _, err := o.Claim(ctx, chat, "u2"); err != nil {
		t.Errorf("the other account's claim must be decided on its own record: %v", err)
	}
	if err := o.Release(ctx, chat); err != nil {
		t.Fatal(err)
	}
	if st, found, _ := a.Get(ctx, chat); !found || st.ClaimedBy != "u1" {
		t.Errorf("another account's Release must leave this record: %+v, %v", st, found)
	}

	for range 3 {
		if _, err := a.Pick(ctx, "wa", "", users, routing.LeastRecentlyServed); err != nil {
			t.Fatal(err)
		}
	}
	if turn, err := o.Pick(ctx, "wa", "k", users, routing.LeastRecentlyServed); err != nil || turn.Seq != 1 || turn.User != "u1" {
		t.Errorf("the other account's first pick = %+v, %v; want Seq 1, u1", turn, err)
	}
	if turn, err := a.Pick(ctx, "wa", "k", users, routing.LeastRecentlyServed); err != nil || turn.Repeat {
		t.Errorf("a key held in another account must not be a repeat here: %+v, %v", turn, err)
	}

	if _, _, err := a.Streaks().Open(ctx, chat, "m1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := o.Streaks().Get(ctx, chat); found {
		t.Errorf("one account's streak must not be visible to another")
	}
	if _, found, _ := o.Streaks().Close(ctx, chat); found {
		t.Errorf("another account's Close must not close this streak")
	}
	if _, found, _ := a.Streaks().Get(ctx, chat); !found {
		t.Errorf("the streak must survive another account's Close")
	}

	if _, _, err := a.Receipts().Store(ctx, "key", channel.Receipt{ProviderID: "pa"}); err != nil {
		t.Fatal(err)
	}
	if kept, stored, err := o.Receipts().Store(ctx, "key", channel.Receipt{ProviderID: "po"}); err != nil || !stored || kept.ProviderID != "po" {
		t.Errorf("the same receipt key in another account = %+v, %v, %v; want stored anew", kept, stored, err)
	}
}
