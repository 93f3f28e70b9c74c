package taskstest_test

import (
	"testing"

	"github.com/crmbridge/crmbridge/tasks"
	"github.com/crmbridge/crmbridge/tasks/taskstest"
)

// An implementation runs the suite from its own test, with one fresh
// backend per subtest; here every account gets its own MemoryStore.
func ExampleTestStore() {
	_ = func(t *testing.T) {
		taskstest.TestStore(t, func(t *testing.T) taskstest.Backend {
			accounts := map[string]*tasks.MemoryStore{}
			return func(account string) tasks.Store {
				if accounts[account] == nil {
					accounts[account] = &tasks.MemoryStore{}
				}
				return accounts[account]
			}
		})
	}
	// Output:
}
