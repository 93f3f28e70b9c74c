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
