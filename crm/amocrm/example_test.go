package amocrm_test

import (
	"context"
	"fmt"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// A client on the fake server finds a contact typed as "8 (916) …" by its
// E.164 number, so no duplicate is created, and opens a deal in Unsorted.
func Example() {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	defer srv.Close()
	srv.AddContact(amocrmtest.Contact{Name: "Ivan", Phones: []string{"8 (916) 123-45-67"}})

	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token())})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	found, err := c.FindContactsByPhone(ctx, "+79161234567")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(found[0].Name, found[0].Phones)

	deal, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "WhatsApp", Pipeline: "7001", Stage: "70011", Contact: found[0].ID})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(deal.Stage, deal.Status)
	fmt.Println(srv.Requests()["POST /api/v4/leads/unsorted/forms"])
	// Output:
	// Ivan [8 (916) 123-45-67]
	// 70011 open
	// 1
}
