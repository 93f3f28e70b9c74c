package amocrmtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// An amocrm.Client pointed at the fake creates a deal with a new contact
// in one request; the fake holds the lead and the contact as amoCRM would.
func ExampleServer() {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	defer srv.Close()
	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token())})
	if err != nil {
		fmt.Println(err)
		return
	}
	deal, contact, err := c.CreateDeal(context.Background(), crm.NewDeal{
		Name: "WhatsApp +79161234567", Pipeline: "7001", Stage: "70012", Responsible: "501",
		NewContact: &crm.NewContact{Name: "Иван", Phones: []string{"+79161234567"}, Responsible: "501"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(deal.Stage, contact.Phones)

	lead := srv.Leads()[0]
	fmt.Println(lead.Name, lead.Pipeline, lead.Status, lead.Responsible)
	held, _ := srv.Contact(lead.Contacts[0])
	fmt.Println(held.Name, held.Fields["PHONE"])
	fmt.Println(srv.Requests()["POST /api/v4/leads/complex"])
	// Output:
	// 70012 [+79161234567]
	// WhatsApp +79161234567 7001 70012 501
	// Иван [+79161234567]
	// 1
}

// amoCRM's contact search is a text search: "+79161234567" does not find
// a number typed as "89161234567", while its national digits do. That is
// why the adapter searches the digits and matches phones itself.
func ExampleServer_AddContact() {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	defer srv.Close()
	srv.AddContact(amocrmtest.Contact{Name: "Иван", Phones: []string{"89161234567"}})

	for _, q := range []string{"+79161234567", "9161234567"} {
		req, _ := http.NewRequest("GET", srv.URL()+"/api/v4/contacts?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		var page struct {
			Embedded struct {
				Contacts []struct{ Name string } `json:"contacts"`
			} `json:"_embedded"`
		}
		if resp.StatusCode == http.StatusOK {
			_ = json.NewDecoder(resp.Body).Decode(&page)
		}
		resp.Body.Close()
		fmt.Println(q, resp.StatusCode, len(page.Embedded.Contacts))
	}
	// Output:
	// +79161234567 204 0
	// 9161234567 200 1
}

// Without the account's API filtering, amoCRM ignores filter[...] on lead
// lists and answers every lead; the fake does the same unless
// Options.APIFilter is set.
func ExampleOptions_apiFilter() {
	for _, filtering := range []bool{false, true} {
		srv := amocrmtest.NewServer(amocrmtest.Options{APIFilter: filtering})
		c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token()),
			RateLimit: rate.Inf}) // the fake sets no limit
		if err != nil {
			fmt.Println(err)
			return
		}
		var first crm.Deal
		for i := range 3 {
			d, _, err := c.CreateDeal(context.Background(), crm.NewDeal{
				Name: fmt.Sprint("deal ", i), Pipeline: "7001", Stage: "70012",
				NewContact: &crm.NewContact{Name: fmt.Sprint("client ", i)}})
			if err != nil {
				fmt.Println(err)
				return
			}
			if i == 0 {
				first = d
			}
		}

		req, _ := http.NewRequest("GET", srv.URL()+"/api/v4/leads?filter[id]="+string(first.ID), nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		var page struct {
			Embedded struct {
				Leads []struct{ ID int } `json:"leads"`
			} `json:"_embedded"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		fmt.Printf("API filtering %t: filter[id] answered %d of 3 leads\n", filtering, len(page.Embedded.Leads))
		srv.Close()
	}
	// Output:
	// API filtering false: filter[id] answered 3 of 3 leads
	// API filtering true: filter[id] answered 1 of 3 leads
}

// A blocked account answers every request with nginx's HTML 403; the
// adapter reports it as a *BlockedError matching crm.ErrUnauthorized, and
// does not retry.
func ExampleServer_Block() {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	defer srv.Close()
	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token())})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv.Block(true)
	_, err = c.ListUsers(context.Background())
	var blocked *amocrm.BlockedError
	fmt.Println(errors.As(err, &blocked), errors.Is(err, crm.ErrUnauthorized), srv.TotalRequests())
	// Output:
	// true true 1
}

// A deal created in the Unsorted stage becomes an Unsorted entry, whose
// contact amoCRM's search does not show until the entry is accepted. The
// adapter finds it through the pending entries, and a claim accepts the
// entry into the first ordinary stage with the claimer responsible.
func ExampleServer_Unsorted() {
	ctx := context.Background()
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	defer srv.Close()
	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token()),
		RateLimit: rate.Inf})
	if err != nil {
		fmt.Println(err)
		return
	}
	deal, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "WhatsApp", Pipeline: "7001", Stage: "70011",
		NewContact: &crm.NewContact{Name: "Иван", Phones: []string{"+79161234567"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	e := srv.Unsorted()[0]
	fmt.Println(e.SourceName, e.Category, e.Accepted)

	found, err := c.FindContactsByPhone(ctx, "+79161234567")
	fmt.Println(len(found), err)

	if err := c.SetResponsible(ctx, deal.ID, "502"); err != nil {
		fmt.Println(err)
		return
	}
	lead, _ := srv.Lead(e.Lead)
	fmt.Println(srv.Unsorted()[0].Accepted, lead.Status, lead.Responsible)
	// Output:
	// crmbridge forms false
	// 1 <nil>
	// true 70012 502
}
