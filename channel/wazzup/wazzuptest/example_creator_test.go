package wazzuptest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"

	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

// crmCreator stands for the host's wazzup.Creator: it creates in the CRM
// the contacts and deals Wazzup asks for, and answers with them.
type crmCreator struct{ ids atomic.Int64 }

// CreateContact creates the client's contact in the CRM.
func (c *crmCreator) CreateContact(ctx context.Context, req wazzup.ContactRequest) (wazzup.Contact, error) {
	return wazzup.Contact{ID: fmt.Sprint("contact-", c.ids.Add(1)), ResponsibleUserID: req.ResponsibleUserID,
		Name: req.Name, Chats: req.Chats}, nil
}

// CreateDeal creates a deal for the contacts in the CRM.
func (c *crmCreator) CreateDeal(ctx context.Context, req wazzup.DealRequest) (wazzup.Deal, error) {
	return wazzup.Deal{ID: fmt.Sprint("deal-", c.ids.Add(1)), ResponsibleUserID: req.ResponsibleUserID,
		Name: "New client", URI: "https://crm.example/deals", Contacts: req.Contacts}, nil
}

// RequestContact posts the createContact webhook Wazzup sends for a new
// client and expects the created contact in the answer, as Wazzup does;
// the contact is then known to the fake account.
func ExampleServer_RequestContact() {
	ctx := context.Background()
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{Creator: &crmCreator{}}, wazzup.EventHandlerFunc(
		func(context.Context, wazzup.Events) error { return nil }))
	if err != nil {
		fmt.Println(err)
		return
	}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	c, err := srv.RequestContact(ctx, hookSrv.URL, wazzuptest.ContactCreation{
		ResponsibleUserID: "ann", Name: "Иван", Source: "auto",
		ContactData: []wazzuptest.ContactChat{{ChatType: "whatsapp", ChatID: "79161234567"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := srv.RequestDeal(ctx, hookSrv.URL, wazzuptest.DealCreation{
		ResponsibleUserID: "ann", Contacts: []string{c.ID}, Source: "auto"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.ID, c.ResponsibleUserID, c.ContactData[0].ChatID)
	fmt.Println(d.ID, d.Contacts)
	fmt.Println(len(srv.Contacts()), len(srv.Deals()))
	// Output:
	// contact-1 ann 79161234567
	// deal-2 [contact-1]
	// 1 1
}
