package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
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

func TestReceiptStore(t *testing.T) {
	wazzuptest.TestReceiptStore(t, func(t *testing.T) wazzup.ReceiptStore {
		return fresh(t)("acme").Receipts()
	})
}

func TestTokenStore(t *testing.T) {
	amocrmtest.TestTokenStore(t, func(t *testing.T) func(string) amocrm.TokenStore {
		b := fresh(t)
		return func(account string) amocrm.TokenStore { return b(account).Tokens() }
	})
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

func TestStreakStore(t *testing.T) {
	taskstest.TestStore(t, func(t *testing.T) taskstest.Backend {
		b := fresh(t)
		return func(account string) tasks.Store { return b(account).Streaks() }
	})
}
