package crmtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/phone"
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

// Faults queue up per method: the code under test sees a rate limit, then
// an outage, then success, and the Fake counts every call, failed ones
// included.
func ExampleFake_FailNext() {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	f.FailNext(crmtest.MethodCreateDeal, 1, crm.ErrRateLimited)
	f.FailNext(crmtest.MethodCreateDeal, 1, crm.ErrUnavailable)

	nd := crm.NewDeal{Name: "WhatsApp", Pipeline: "10", Stage: "101",
		NewContact: &crm.NewContact{Name: "Иван", Phones: []string{"+79161234567"}}}
	for {
		_, _, err := f.CreateDeal(ctx, nd)
		if err == nil {
			break
		}
		fmt.Println("temporary:", crm.Temporary(err),
			errors.Is(err, crm.ErrRateLimited), errors.Is(err, crm.ErrUnavailable))
	}
	fmt.Println("deals:", len(f.Deals()), "calls:", f.CallCounts())
	// Output:
	// temporary: true true false
	// temporary: true false true
	// deals: 1 calls: map[CreateDeal:3]
}

// A contact seeded as typed by hand keeps its phone as written; lookups
// by E.164 find it while the "numbers written with 8 count as +7" rule is
// on, and a view with the rule off does not.
func ExampleFake_WithPhoneOptions() {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	c := f.AddContact(crm.Contact{Name: "Иван", Phones: []string{"8 (916) 123-45-67"}})
	fmt.Println(c.ID != "", c.Phones)

	on, _ := f.FindContactsByPhone(ctx, "+79161234567")
	off, _ := f.WithPhoneOptions(phone.Options{DisableEightAsSeven: true}).FindContactsByPhone(ctx, "+79161234567")
	fmt.Println(len(on), len(off))
	// Output:
	// true [8 (916) 123-45-67]
	// 1 0
}
