package crm_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// A contact whose phone was typed by hand is found by its E.164 number.
func ExampleClient_findContactsByPhone() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil)
	fake.AddContact(crm.Contact{Name: "Иван", Phones: []string{"8 (916) 123-45-67"}, Responsible: "2"})

	var c crm.Client = fake
	found, err := c.FindContactsByPhone(ctx, "+79161234567")
	fmt.Println(len(found), found[0].Name, found[0].Responsible, err)
	// Output: 1 Иван 2 <nil>
}

// LatestOpen picks the deal that counts for a returning client.
func ExampleLatestOpen() {
	t := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	deals := []crm.Deal{
		{ID: "1", Status: crm.DealWon, UpdatedAt: t.Add(time.Hour)},
		{ID: "2", Status: crm.DealOpen, UpdatedAt: t},
		{ID: "3", Status: crm.DealOpen, UpdatedAt: t.Add(time.Minute)},
	}
	d, ok := crm.LatestOpen(deals)
	fmt.Println(d.ID, ok)
	_, ok = crm.LatestOpen(deals[:1])
	fmt.Println(ok)
	// Output:
	// 3 true
	// false
}

// Helpers use an optional capability when the adapter has it and fall
// back (or report errors.ErrUnsupported) when it does not.
func ExampleAddNote() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil)
	d, _, _ := fake.CreateDeal(ctx, crm.NewDeal{Pipeline: "10", Stage: "101", NewContact: &crm.NewContact{Name: "x"}})

	fmt.Println(crm.AddNote(ctx, fake, crm.Note{Deal: d.ID, Text: "called back"}))
	err := crm.AddNote(ctx, crmtest.Minimal(fake), crm.Note{Deal: d.ID, Text: "called back"})
	fmt.Println(errors.Is(err, errors.ErrUnsupported))
	// Output:
	// <nil>
	// true
}

// Adapters classify failures with the sentinels; Temporary says whether a
// retry may help.
func ExampleTemporary() {
	err := fmt.Errorf("amocrm: GET /api/v4/leads: %w", &crm.RetryAfterError{RetryAfter: 2 * time.Second, Err: crm.ErrRateLimited})
	wait, _ := crm.RetryAfter(err)
	fmt.Println(crm.Temporary(err), errors.Is(err, crm.ErrRateLimited), wait)
	fmt.Println(crm.Temporary(crm.ErrUnauthorized))
	// Output:
	// true true 2s
	// false
}
