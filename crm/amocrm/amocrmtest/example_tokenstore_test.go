package amocrmtest_test

import (
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// tokenDB stands for your database: one table of token records keyed by
// account.
type tokenDB struct {
	mu   sync.Mutex
	rows map[string]*accountTokens
}

// accountTokens is the TokenStore of one account. A real one runs SQL
// keyed by the account (Save as an UPDATE … WHERE version = prev); this
// toy embeds a MemoryStore so that the file compiles and passes the suite.
type accountTokens struct{ amocrm.MemoryStore }

// Account returns the store of the named account.
func (db *tokenDB) Account(name string) amocrm.TokenStore {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.rows[name] == nil {
		db.rows[name] = &accountTokens{}
	}
	return db.rows[name]
}

// testTokenDB runs the conformance suite against tokenDB, on a fresh
// backend per subtest.
func testTokenDB(t *testing.T) {
	amocrmtest.TestTokenStore(t, func(t *testing.T) func(account string) amocrm.TokenStore {
		// With a real database: create an empty schema here and drop it
		// with t.Cleanup.
		db := &tokenDB{rows: map[string]*accountTokens{}}
		return db.Account
	})
}

// A TokenStore's tests run the conformance suite. In your package's tests,
// call amocrmtest.TestTokenStore from a TestXxx function, as testTokenDB
// does:
//
//	func TestTokenDB(t *testing.T) { testTokenDB(t) }
//
// and run it under -race: subtests save and lock from many goroutines.
func ExampleTestTokenStore() {
	var _ func(*testing.T) = testTokenDB
}
