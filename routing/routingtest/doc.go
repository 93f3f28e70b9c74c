// Package routingtest holds conformance suites for the state stores of
// package routing. A store for a shared database runs them in its own
// tests, so that it keeps the same guarantees as the in-memory stores:
//
//	func TestRotation(t *testing.T) {
//		routingtest.TestRotationStore(t, func(t *testing.T) func(string) routing.RotationStore {
//			db := openFreshDatabase(t) // cleanup through t.Cleanup
//			return func(account string) routing.RotationStore { return db.Account(account) }
//		})
//	}
//
// # Rules
//
// Each suite takes a factory called once per subtest: it builds a fresh
// backend and returns a function giving the store of a named account on
// it. Every subtest but the isolation one uses one account; the isolation
// subtest uses two accounts with textually identical chats, users, pools
// and keys and checks that neither sees nor changes the other's state.
// Failures name the contract clause that was broken; checks continue
// after a failure unless the rest depends on it.
//
// # Testing
//
// Run the suites under -race: they race 64 goroutines on one claim, on one
// pool, on one queue. The package's own tests run every suite against the
// in-memory stores and show that each suite fails against deliberately
// broken stores (a child test process per broken store).
package routingtest
