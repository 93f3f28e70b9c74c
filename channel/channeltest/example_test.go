package channeltest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
)

// The Recorder keeps what would have been sent; a second Send with the
// same idempotency key sends nothing and returns the first receipt.
func ExampleRecorder() {
	ctx := context.Background()
	r := channeltest.NewRecorder("wa-1")
	m := channel.Outgoing{
		Chat:           channel.Chat{Channel: "wa-1", ChatID: "79161234567"},
		Text:           "Добрый день! Чем помочь?",
		Author:         channel.Author{Kind: channel.AuthorEmployee, UserID: "2"},
		IdempotencyKey: "reply-1",
	}
	first, _ := r.Send(ctx, m)
	again, _ := r.Send(ctx, m)
	fmt.Println(first.ProviderID, first.Duplicate)
	fmt.Println(again.ProviderID, again.Duplicate)
	for _, s := range r.Sent() {
		fmt.Printf("%s by %s: %s\n", s.Chat, s.Author.UserID, s.Text)
	}
	fmt.Println("calls:", r.Calls(), "sent:", len(r.Sent()))
	// Output:
	// rec-1 false
	// rec-1 true
	// wa-1/79161234567 by 2: Добрый день! Чем помочь?
	// calls: 2 sent: 1
}

// FailNext makes the code under test meet a provider outage; a retry with
// the same key then goes out once.
func ExampleRecorder_FailNext() {
	ctx := context.Background()
	r := channeltest.NewRecorder()
	r.FailNext(1, channel.ErrUnavailable)
	m := channel.Outgoing{
		Chat:           channel.Chat{Channel: "tg-1", ChatID: "ivan_petrov"},
		Text:           "Ваш заказ готов",
		IdempotencyKey: "order-ready-7",
	}
	_, err := r.Send(ctx, m)
	fmt.Println(errors.Is(err, channel.ErrUnavailable), channel.Temporary(err))
	rc, err := r.Send(ctx, m)
	fmt.Println(rc.ProviderID, err)
	fmt.Println("calls:", r.Calls(), "sent:", len(r.Sent()))
	// Output:
	// true true
	// rec-1 <nil>
	// calls: 2 sent: 1
}

// A Recorder given its channels refuses the others, as a provider refuses
// a channel its account does not have.
func ExampleNewRecorder() {
	r := channeltest.NewRecorder("wa-1")
	_, err := r.Send(context.Background(), channel.Outgoing{
		Chat: channel.Chat{Channel: "wa-2", ChatID: "79161234567"}, Text: "hi", IdempotencyKey: "k"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, channel.ErrNotFound), len(r.Sent()))
	// Output:
	// channeltest: Send: channel "wa-2": channel: unknown channel or chat
	// true 0
}

// Failing stands in for a provider that refuses everything, such as one
// whose API key was revoked.
func ExampleFailing() {
	s := channeltest.Failing(channel.ErrUnauthorized)
	_, err := s.Send(context.Background(), channel.Outgoing{})
	fmt.Println(errors.Is(err, channel.ErrUnauthorized), channel.Temporary(err))
	// Output:
	// true false
}
