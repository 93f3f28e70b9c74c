package routingtest_test

import (
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/routingtest"
)

// routingDB stands for your database: one set of tables holding the
// routing state of every account.
type routingDB struct {
	mu       sync.Mutex
	accounts map[string]*accountState
}

// accountState is one account's view of routingDB: its claims, rotation
// pools, waiting queues and escalation watches. A real one runs SQL keyed
// by the account; this toy embeds the in-memory stores so that the file
// compiles and passes the suites.
type accountState struct {
	routing.MemoryClaims
	routing.MemoryRotation
	routing.MemoryQueue
	routing.MemoryEscalations
}

// newRoutingDB returns an empty backend. With a real database: create an
// empty schema here and drop it with t.Cleanup.
func newRoutingDB(t *testing.T) *routingDB {
	return &routingDB{accounts: map[string]*accountState{}}
}

// Account returns the state of the named account.
func (db *routingDB) Account(name string) *accountState {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.accounts[name] == nil {
		db.accounts[name] = &accountState{}
	}
	return db.accounts[name]
}

// testRoutingDB runs the four conformance suites against routingDB, each
// subtest on a fresh backend.
func testRoutingDB(t *testing.T) {
	t.Run("Claims", func(t *testing.T) {
		routingtest.TestClaimStore(t, func(t *testing.T) func(string) routing.ClaimStore {
			db := newRoutingDB(t)
			return func(account string) routing.ClaimStore { return db.Account(account) }
		})
	})
	t.Run("Rotation", func(t *testing.T) {
		routingtest.TestRotationStore(t, func(t *testing.T) func(string) routing.RotationStore {
			db := newRoutingDB(t)
			return func(account string) routing.RotationStore { return db.Account(account) }
		})
	})
	t.Run("Queue", func(t *testing.T) {
		routingtest.TestQueueStore(t, func(t *testing.T) func(string) routing.QueueStore {
			db := newRoutingDB(t)
			return func(account string) routing.QueueStore { return db.Account(account) }
		})
	})
	t.Run("Escalations", func(t *testing.T) {
		routingtest.TestEscalationStore(t, func(t *testing.T) func(string) routing.EscalationStore {
			db := newRoutingDB(t)
			return func(account string) routing.EscalationStore { return db.Account(account) }
		})
	})
}

// A backend keeping the routing state of many accounts runs the suites of
// the stores it implements. In your package's tests, call them from a
// TestXxx function, as testRoutingDB does:
//
//	func TestRoutingDB(t *testing.T) { testRoutingDB(t) }
//
// and run it under -race: the suites race 64 goroutines on one claim, one
// pool and one queue.
func Example() {
	var _ func(*testing.T) = testRoutingDB
}
