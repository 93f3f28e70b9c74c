package wazzup_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

// A Sender and a webhook Handler wired against the fake Wazzup API: a
// client writes, the host answers once, a retry of the answer sends
// nothing.
func Example() {
	ctx := context.Background()
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")

	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
	if err != nil {
		panic(err)
	}
	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{}, wazzup.EventHandlerFunc(
		func(ctx context.Context, ev wazzup.Events) error {
			for _, m := range ev.Messages {
				fmt.Printf("%s from %s: %s\n", m.Direction, m.Phone, m.Text)
			}
			return nil
		}))
	if err != nil {
		panic(err)
	}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	if _, err := srv.ClientWrites(ctx, hookSrv.URL, wa, "79161234567", "How much?"); err != nil {
		panic(err)
	}
	answer := channel.Outgoing{
		Chat:           channel.Chat{Channel: wa, ChatID: "79161234567"},
		Text:           "100 ₽",
		Author:         channel.Author{Kind: channel.AuthorEmployee, UserID: "42"},
		IdempotencyKey: "answer-1",
	}
	first, err := sender.Send(ctx, answer)
	if err != nil {
		panic(err)
	}
	again, err := sender.Send(ctx, answer)
	if err != nil {
		panic(err)
	}
	fmt.Println("duplicate:", first.Duplicate, again.Duplicate, "same ID:", first.ProviderID == again.ProviderID)
	fmt.Println("delivered:", srv.Delivered(), "by CRM user", srv.Sent()[0].CrmUserID)
	// Output:
	// inbound from +79161234567: How much?
	// duplicate: false true same ID: true
	// delivered: 1 by CRM user 42
}

// Wazzup's refusals keep their vendor code and match a channel sentinel.
func ExampleAPIError() {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
	if err != nil {
		panic(err)
	}
	srv.FailNextWith(1, 400, "BAD_CONTACT", "Number may not be on WhatsApp")
	_, err = sender.Send(context.Background(), channel.Outgoing{
		Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}, Text: "hi", IdempotencyKey: "k"})

	var apiErr *wazzup.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	fmt.Println("rejected:", errors.Is(err, channel.ErrRejected), "temporary:", channel.Temporary(err))
	// Output:
	// 400 BAD_CONTACT
	// rejected: true temporary: false
}

// A group chat's message reaches the host marked Group: a member wrote,
// not a client, so nothing names a client.
func ExampleHandler_groupChat() {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{}, wazzup.EventHandlerFunc(
		func(ctx context.Context, ev wazzup.Events) error {
			for i, m := range ev.Messages {
				fmt.Printf("group %t, chat %s, %s, phone %q, member %q\n",
					m.Group, m.Chat.ChatID, ev.Details[i].ChatType, m.Phone, ev.Details[i].ContactName)
			}
			return nil
		}))
	if err != nil {
		panic(err)
	}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	if _, err := srv.GroupWrites(context.Background(), hookSrv.URL, wa, "79132123789-1581764243", "Анна", "hi all"); err != nil {
		panic(err)
	}
	// Output:
	// group true, chat 79132123789-1581764243, whatsgroup, phone "", member "Анна"
}

// After the first responder claimed a chat, SyncChat makes them the
// client's responsible user in Wazzup: the chat disappears for the other
// sales reps, as the routing rules say.
func ExampleAccount_SyncChat() {
	ctx := context.Background()
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	team := []wazzup.Member{
		{User: wazzup.User{ID: "ann", Name: "Ann"}, Channel: wa, Role: wazzup.RoleSalesRep, ReceivesNewClients: true},
		{User: wazzup.User{ID: "bob", Name: "Bob"}, Channel: wa, Role: wazzup.RoleSalesRep, ReceivesNewClients: true},
		{User: wazzup.User{ID: "eve", Name: "Eve"}, Channel: wa, Role: wazzup.RoleManager},
	}
	for _, m := range team { // as set in Wazzup's integration settings
		srv.SetRole(wa, m.User.ID, wazzuptest.Role(m.Role), m.ReceivesNewClients)
	}
	account, err := wazzup.NewAccount(wazzup.AccountOptions{
		Options: wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL}, Team: team})
	if err != nil {
		panic(err)
	}
	if err := account.SyncTeam(ctx); err != nil {
		panic(err)
	}
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	fmt.Println("offered:", srv.Viewers(chat))

	err = account.SyncChat(ctx, wazzup.ChatSync{
		Chat: chat, Kind: channel.WhatsApp,
		ContactID: "contact-7", ContactName: "Client", Responsible: "bob",
		Deals:   []wazzup.Deal{{ID: "lead-9", ResponsibleUserID: "bob", Name: "New lead", URI: "https://crm.example/leads/9"}},
		Viewers: []string{"bob", "eve"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed by bob:", srv.Viewers(chat))
	// Output:
	// offered: [ann bob eve]
	// claimed by bob: [bob eve]
}
