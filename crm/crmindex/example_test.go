package crmindex_test

import (
	"context"
	"fmt"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmindex"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/phone"
)

// An Index wraps the CRM client the engine uses. After a Sync, a client's
// number is found however it was typed into the CRM, without a request.
func Example() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil) // stands for the amoCRM adapter
	fake.AddContact(crm.Contact{Name: "Ivan", Phones: []string{"8 (916) 123-45-67"}})

	idx := crmindex.New(fake, crmindex.Options{Phone: phone.Options{}}) // the engine's phone options
	pass, err := idx.Sync(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("synced", pass.Contacts, "contacts in", fake.Calls(crmtest.MethodListContacts), "page")

	found, _ := idx.FindContactsByPhone(ctx, "+79161234567") // WhatsApp chat 79161234567
	fmt.Println(found[0].Name, "found with", fake.Calls(crmtest.MethodFindContactsByPhone), "searches")

	// A contact-updated webhook: the number changed.
	ivan := found[0]
	ivan.Phones = []string{"+7 903 765 43 21"}
	idx.Apply(ivan)
	found, _ = idx.FindContactsByPhone(ctx, "+79037654321")
	fmt.Println(found[0].Name, "found by the new number")
	// Output:
	// synced 1 contacts in 1 page
	// Ivan found with 0 searches
	// Ivan found by the new number
}

// CatchUp is the periodic safety net under the webhooks. The host drives
// it, for example from a ticker; here twice by hand.
func ExampleIndex_CatchUp() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil)
	idx := crmindex.New(fake, crmindex.Options{})
	if _, err := idx.CatchUp(ctx); err != nil { // before any Sync: a full one
		panic(err)
	}
	fake.AddContact(crm.Contact{Name: "typed by hand", Phones: []string{"8 912 345-67-89"}})
	pass, err := idx.CatchUp(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("caught up", pass.Contacts, "contact; full:", pass.Full)
	found, _ := idx.FindContactsByPhone(ctx, "+79123456789")
	fmt.Println(found[0].Name)
	// Output:
	// caught up 1 contact; full: false
	// typed by hand
}

// On a Telegram channel the engine finds clients by messenger identity:
// after a Sync those lookups are answered from the index too.
func ExampleIndex_FindContactsByIdentity() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil)
	fake.AddContact(crm.Contact{Name: "Olga", Identities: []crm.Identity{{Kind: "telegram", Value: "5012345678"}}})

	idx := crmindex.New(fake, crmindex.Options{})
	if _, err := idx.Sync(ctx); err != nil {
		panic(err)
	}
	found, _ := idx.FindContactsByIdentity(ctx, crm.Identity{Kind: "telegram", Value: "5012345678"})
	fmt.Println(found[0].Name, "found with", fake.Calls(crmtest.MethodFindContactsByIdentity), "searches")
	// Output:
	// Olga found with 0 searches
}
