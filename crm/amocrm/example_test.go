package amocrm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

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

// The install flow: the redirect after an administrator authorizes the
// integration brings a code and the account's host (referer); Exchange
// turns them into the first pair, kept in the store with the address.
func ExampleOAuth_Exchange() {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	defer srv.Close()
	store := &amocrm.MemoryStore{} // a database-backed TokenStore in production
	o, err := amocrm.NewOAuth(amocrm.OAuthConfig{
		BaseURL:      srv.URL(),
		ClientID:     amocrmtest.DefaultClientID,
		ClientSecret: amocrmtest.DefaultClientSecret,
		RedirectURI:  amocrmtest.DefaultRedirectURI, // exactly as registered
	}, store)
	if err != nil {
		fmt.Println(err)
		return
	}
	code, referer := srv.AuthorizationCode(), "" // from the redirect's query; "" = BaseURL
	if err := o.Exchange(context.Background(), code, referer); err != nil {
		fmt.Println(err)
		return
	}
	rec, _ := store.Load(context.Background())
	fmt.Println(rec.Version, rec.Pair.BaseURL == srv.URL())
	fmt.Printf("%v\n", rec.Pair.AccessToken != "")
	fmt.Printf("%+v\n", amocrm.TokenPair{AccessToken: "secret", RefreshToken: "secret"})
	// Output:
	// 1 true
	// true
	// amocrm.TokenPair{redacted, expiry 0001-01-01T00:00:00Z, base }
}

// A webhook handler hands decoded events to the host, which forgets what
// it knows of the deals and contacts concerned.
func ExampleWebhookHandler() {
	h, err := amocrm.NewWebhookHandler(amocrm.WebhookOptions{
		Secret: "long-random-string", // registered as https://host/amocrm/hook?secret=long-random-string
		Handle: func(ctx context.Context, events []amocrm.WebhookEvent) error {
			for _, ev := range events {
				switch ev.Kind {
				case amocrm.DealResponsibleChanged:
					fmt.Println(ev.Kind, ev.Deal.ID, ev.OldResponsible, "→", ev.Deal.Responsible)
				case amocrm.ContactUpdated:
					fmt.Println(ev.Kind, ev.Contact.ID, ev.Contact.Phones)
				}
			}
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	body := "leads[responsible][0][id]=31926520&leads[responsible][0][responsible_user_id]=938348" +
		"&leads[responsible][0][old_responsible_user_id]=102525" +
		"&contacts[update][0][id]=42&contacts[update][0][custom_fields][0][code]=PHONE" +
		"&contacts[update][0][custom_fields][0][values][0][value]=%2B79161234567&account[subdomain]=example"
	req := httptest.NewRequest(http.MethodPost, "/amocrm/hook?secret=long-random-string", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// contact updated 42 [+79161234567]
	// deal responsible changed 31926520 102525 → 938348
	// 200
}
