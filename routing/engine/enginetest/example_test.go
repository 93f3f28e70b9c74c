package enginetest_test

import (
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/engine/enginetest"
)

// stateDB stands for your database: one set of tables holding the engine
// state (chat leases, client records, the journal of processed events) of
// every account.
type stateDB struct {
	mu       sync.Mutex
	accounts map[string]*accountState
}

// accountState is one account's engine.State. A real one runs SQL keyed
// by the account; this toy embeds a MemoryState so that the file compiles
// and passes the suite.
type accountState struct{ engine.MemoryState }

// Account returns the State of the named account.
func (db *stateDB) Account(name string) engine.State {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.accounts[name] == nil {
		db.accounts[name] = &accountState{}
	}
	return db.accounts[name]
}

// testStateDB runs the conformance suite against stateDB, on a fresh
// backend per subtest.
func testStateDB(t *testing.T) {
	enginetest.TestState(t, func(t *testing.T) enginetest.Backend {
		// With a real database: create an empty schema here and drop it
		// with t.Cleanup.
		db := &stateDB{accounts: map[string]*accountState{}}
		return db.Account
	})
}

// A State implementation's tests run the conformance suite. In your
// package's tests, call enginetest.TestState from a TestXxx function, as
// testStateDB does:
//
//	func TestStateDB(t *testing.T) { testStateDB(t) }
//
// and run it under -race: subtests race many goroutines on one chat's
// lease.
func ExampleTestState() {
	var _ func(*testing.T) = testStateDB
}
