package crmtest_test

import (
	"testing"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/phone"
)

// myCRM stands for your adapter. A real one calls its CRM's API; this toy
// wraps the Fake so that the file compiles and passes the suite.
type myCRM struct{ crm.Client }

// testMyCRM runs the conformance suite against myCRM, on a fresh backend
// per subtest.
func testMyCRM(t *testing.T) {
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		// The backend: a sandbox account or a fake of your CRM's API,
		// holding an active user and a pipeline with an Unsorted and an
		// open stage. Register its teardown with t.Cleanup.
		backend := crmtest.NewSeeded(nil)
		return crmtest.Harness{
			Client: myCRM{backend},
			// Make the backend fail the next n calls of op the way your
			// adapter must report as want (429 for crm.ErrRateLimited…).
			FailNext: backend.FailNext,
			// The same backend, read with "8 counts as +7" off.
			PhoneRuleOff: func(*testing.T) crm.Client {
				return myCRM{backend.WithPhoneOptions(phone.Options{DisableEightAsSeven: true})}
			},
		}
	})
}

// An adapter's tests run the conformance suite. In your package's tests,
// call crmtest.TestAdapter from a TestXxx function, as testMyCRM does:
//
//	func TestMyCRM(t *testing.T) { testMyCRM(t) }
//
// and run it under -race: one subtest calls the adapter from many
// goroutines. Leave FailNext or PhoneRuleOff nil to skip the subtests
// that need them.
func ExampleTestAdapter() {
	var _ func(*testing.T) = testMyCRM
}
