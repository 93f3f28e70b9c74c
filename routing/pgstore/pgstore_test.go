package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/crmbridge/crmbridge/routing/routingtest"
	"github.com/crmbridge/crmbridge/tasks"
	"github.com/crmbridge/crmbridge/tasks/taskstest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DSNEnv names the environment variable holding the test server's DSN.
const DSNEnv = "CRMBRIDGE_PG_DSN"

var shared struct {
	once sync.Once
	pool *pgxpool.Pool
	db   *pgstore.DB
	err  error
}

// testPool returns a pool on the test server, or skips the test.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skipf("no PostgreSQL server: set %s to a DSN such as postgres://user@127.0.0.1:5432/db?sslmode=disable (the tests create schemas there), or run `bash ../../.ci/postgres.sh go test ./...` in routing/pgstore to start a throwaway server", DSNEnv)
	}
	shared.once.Do(func() {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			shared.err = err
			return
		}
		cfg.MaxConns = 32
		shared.pool, shared.err = pgxpool.NewWithConfig(context.Background(), cfg)
		if shared.err == nil {
			shared.err = shared.pool.Ping(context.Background())
		}
	})
	if shared.err != nil {
		t.Fatalf("connecting to %s: %v", DSNEnv, shared.err)
	}
	return shared.pool
}

// testDB returns the store on the shared test schema.
func testDB(t testing.TB) *pgstore.DB {
	t.Helper()
	pool := testPool(t)
	dbOnce.Do(func() {
		shared.db, dbErr = pgstore.Open(context.Background(), pool, pgstore.Options{Schema: "crmbridge_test"})
	})
	if dbErr != nil {
		t.Fatalf("Open: %v", dbErr)
	}
	return shared.db
}

var (
	dbOnce sync.Once
	dbErr  error
)

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fresh gives each subtest accounts of its own on the shared schema: a
// fresh backend without creating tables.
func fresh(t *testing.T) func(account string) *pgstore.Account {
	db := testDB(t)
	run := randomID() + "/"
	return func(account string) *pgstore.Account { return db.Account(run + account) }
}

func TestClaimStore(t *testing.T) {
	routingtest.TestClaimStore(t, func(t *testing.T) func(string) routing.ClaimStore {
		b := fresh(t)
		return func(account string) routing.ClaimStore { return b(account) }
	})
}

func TestRotationStore(t *testing.T) {
	routingtest.TestRotationStore(t, func(t *testing.T) func(string) routing.RotationStore {
		b := fresh(t)
		return func(account string) routing.RotationStore { return b(account) }
	})
}

// TestRotationStoreAcrossInstances runs the suite on stores whose calls
// go in turn to four instances (DBs, each with its own in-process pool
// locks) on one database: concurrent picks, holds and reassignments meet
// only at the database's locks, as on hosts behind a load balancer.
func TestRotationStoreAcrossInstances(t *testing.T) {
	pool := testPool(t)
	dbs := make([]*pgstore.DB, 4)
	for i := range dbs {
		db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: "crmbridge_test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs[i] = db
	}
	routingtest.TestRotationStore(t, func(t *testing.T) func(string) routing.RotationStore {
		run := randomID() + "/"
		return func(account string) routing.RotationStore {
			s := &spread{}
			for _, db := range dbs {
				s.on = append(s.on, db.Account(run+account))
			}
			return s
		}
	})
}

// spread is one account's RotationStore on several instances: each call
// goes to the next one.
type spread struct {
	calls atomic.Uint64
	on    []*pgstore.Account
}

func (s *spread) next() *pgstore.Account { return s.on[s.calls.Add(1)%uint64(len(s.on))] }

func (s *spread) Pick(ctx context.Context, pool, key string, eligible []crm.UserID, choose routing.Chooser) (routing.Turn, error) {
	return s.next().Pick(ctx, pool, key, eligible, choose)
}

func (s *spread) Reassign(ctx context.Context, pool, key string, eligible []crm.UserID, choose routing.Chooser) (routing.Turn, error) {
	return s.next().Reassign(ctx, pool, key, eligible, choose)
}

func (s *spread) Hold(ctx context.Context, pool, key string, user crm.UserID) (crm.UserID, error) {
	return s.next().Hold(ctx, pool, key, user)
}

func (s *spread) Free(ctx context.Context, pool, key string) (crm.UserID, bool, error) {
	return s.next().Free(ctx, pool, key)
}

func (s *spread) Members(ctx context.Context, pool string, users []crm.UserID) ([]routing.Member, error) {
	return s.next().Members(ctx, pool, users)
}

func TestReceiptStore(t *testing.T) {
	wazzuptest.TestReceiptStore(t, func(t *testing.T) wazzup.ReceiptStore {
		return fresh(t)("acme").Receipts()
	})
}

// TestTokenStore runs the suite, whose callers share one fake clock, on a
// DB of its own per subtest whose token lock reads the database's clock
// moved to that fake clock: the suite's "two minutes later" is two
// minutes later for the database too.
func TestTokenStore(t *testing.T) {
	amocrmtest.TestTokenStore(t, func(t *testing.T) func(string) amocrm.TokenStore {
		db, err := pgstore.Open(t.Context(), testPool(t), pgstore.Options{Schema: "crmbridge_test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		run := randomID() + "/"
		return func(account string) amocrm.TokenStore {
			return suiteClockTokens{db.Account(run + account).Tokens(), db}
		}
	})
}

// suiteClockTokens moves its DB's clock for the token lock to the
// caller's before each Lock.
type suiteClockTokens struct {
	pgstore.Tokens
	db *pgstore.DB
}

func (s suiteClockTokens) Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error) {
	pgstore.SetTokenClock(s.db, time.Until(now))
	return s.Tokens.Lock(ctx, v, owner, now, until)
}

func TestQueueStore(t *testing.T) {
	routingtest.TestQueueStore(t, func(t *testing.T) func(string) routing.QueueStore {
		b := fresh(t)
		return func(account string) routing.QueueStore { return b(account) }
	})
}

func TestEscalationStore(t *testing.T) {
	routingtest.TestEscalationStore(t, func(t *testing.T) func(string) routing.EscalationStore {
		b := fresh(t)
		return func(account string) routing.EscalationStore { return b(account) }
	})
}

// TestAdvanceWatchWithoutSince checks the case the shared suite does not
// reach: a watch started with a zero Since, stored as NULL, which Advance
// must still match (NULL = NULL is not true in SQL), and which a copy
// carrying a Since must not.
func TestAdvanceWatchWithoutSince(t *testing.T) {
	a := fresh(t)("acme")
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	w, _, err := a.Start(t.Context(), routing.Watch{Chat: c, Due: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Since.IsZero() {
		t.Fatalf("Start returned Since %v; want zero", w.Since)
	}
	withSince := w
	withSince.Since = t0
	if err := a.Advance(t.Context(), withSince, t0.Add(time.Hour)); !errors.Is(err, routing.ErrStaleWatch) {
		t.Errorf("Advance of a copy with a Since, stored without: %v; want ErrStaleWatch", err)
	}
	if err := a.Advance(t.Context(), w, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Advance of the watch as started: %v", err)
	}
	ws, err := a.DueBy(t.Context(), t0.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Done != 1 || !ws[0].Since.IsZero() || !ws[0].Due.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("after Advance: %+v; want Done 1, no Since, Due +2m", ws)
	}
	if err := a.Advance(t.Context(), ws[0], time.Time{}); err != nil {
		t.Fatalf("Advance with a zero due: %v", err)
	}
	if ws, _ := a.DueBy(t.Context(), t0.Add(time.Hour), 10); len(ws) != 0 {
		t.Errorf("after the last Advance: %+v; want no watch", ws)
	}

	// A watch with a Since is not matched by a copy without one.
	d := channel.Chat{Channel: "wa", ChatID: "79167654321"}
	v, _, err := a.Start(t.Context(), routing.Watch{Chat: d, Since: t0, Due: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	noSince := v
	noSince.Since = time.Time{}
	if err := a.Advance(t.Context(), noSince, t0.Add(time.Hour)); !errors.Is(err, routing.ErrStaleWatch) {
		t.Errorf("Advance of a copy without a Since, stored with: %v; want ErrStaleWatch", err)
	}
}

func TestStreakStore(t *testing.T) {
	taskstest.TestStore(t, func(t *testing.T) taskstest.Backend {
		b := fresh(t)
		return func(account string) tasks.Store { return b(account).Streaks() }
	})
}
