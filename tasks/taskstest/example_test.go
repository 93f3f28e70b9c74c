package taskstest_test

import (
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/tasks"
	"github.com/crmbridge/crmbridge/tasks/taskstest"
)

// streakDB stands for your database: one table holding the streaks of
// unanswered messages of every account.
type streakDB struct {
	mu       sync.Mutex
	accounts map[string]*accountStreaks
}

// accountStreaks is one account's tasks.Store. A real one runs SQL keyed
// by the account; this toy embeds a MemoryStore so that the file compiles
// and passes the suite.
type accountStreaks struct{ tasks.MemoryStore }

// Account returns the Store of the named account.
func (db *streakDB) Account(name string) tasks.Store {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.accounts[name] == nil {
		db.accounts[name] = &accountStreaks{}
	}
	return db.accounts[name]
}

// testStreakDB runs the conformance suite against streakDB, on a fresh
// backend per subtest.
func testStreakDB(t *testing.T) {
	taskstest.TestStore(t, func(t *testing.T) taskstest.Backend {
		// With a real database: create an empty schema here and drop it
		// with t.Cleanup.
		db := &streakDB{accounts: map[string]*accountStreaks{}}
		return db.Account
	})
}

// A Store implementation's tests run the conformance suite. In your
// package's tests, call taskstest.TestStore from a TestXxx function, as
// testStreakDB does:
//
//	func TestStreakDB(t *testing.T) { testStreakDB(t) }
//
// and run it under -race: subtests race many goroutines on one chat.
func ExampleTestStore() {
	var _ func(*testing.T) = testStreakDB
}
