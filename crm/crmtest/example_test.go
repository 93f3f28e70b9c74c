package crmtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// The Fake counts calls and injects faults, so code under test can be
// checked for CRM calls per event and for its error paths.
func ExampleFake() {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	f.FailNext(crmtest.MethodListUsers, 1, crm.ErrRateLimited)

	_, err := f.ListUsers(ctx)
	fmt.Println(errors.Is(err, crm.ErrRateLimited))
	users, _ := f.ListUsers(ctx)
	fmt.Println(len(users), f.Calls(crmtest.MethodListUsers))
	// Output:
	// true
	// 3 2
}
