package wazzuptest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

// A wazzup.Sender pointed at the fake sends one POST /v3/message; the
// fake keeps what Wazzup would have received.
func ExampleServer() {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")

	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	rc, err := sender.Send(context.Background(), channel.Outgoing{
		Chat:           channel.Chat{Channel: wa, ChatID: "79161234567"},
		Text:           "Добрый день! Чем помочь?",
		Author:         channel.Author{Kind: channel.AuthorEmployee, UserID: "501"},
		IdempotencyKey: "reply-1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	m := srv.Sent()[0]
	fmt.Println(m.MessageID == rc.ProviderID, m.ChatType, m.ChatID, m.CrmUserID, m.CrmMessageID)
	fmt.Println(m.Text)
	fmt.Println("delivered:", srv.Delivered())
	// Output:
	// true whatsapp 79161234567 501 reply-1
	// Добрый день! Чем помочь?
	// delivered: 1
}

// Wazzup refuses a crmMessageId it saw in the last 60 seconds without
// saying which message it was. Two processes, each with its own receipt
// store, send one key: the second learns it was a duplicate, and nothing
// goes out twice. After the window the fake accepts the key again, as
// Wazzup does: hosts that retry later share a durable ReceiptStore.
func ExampleServer_idempotencyWindow() {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	srv := wazzuptest.NewServer(wazzuptest.Options{Now: func() time.Time { return now }})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	m := channel.Outgoing{
		Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}, Text: "Заказ готов", IdempotencyKey: "order-7"}

	send := func() {
		// A new Sender stands for another process: its receipts are its own.
		s, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
		if err != nil {
			fmt.Println(err)
			return
		}
		rc, err := s.Send(context.Background(), m)
		fmt.Printf("duplicate %t, provider ID known %t, err %v, delivered %d\n",
			rc.Duplicate, rc.ProviderID != "", err, srv.Delivered())
	}
	send()
	send()
	now = now.Add(wazzuptest.DefaultIdempotencyWindow + time.Second)
	send()
	// Output:
	// duplicate false, provider ID known true, err <nil>, delivered 1
	// duplicate true, provider ID known false, err <nil>, delivered 1
	// duplicate false, provider ID known true, err <nil>, delivered 2
}

// FailNext answers the next sends as Wazzup does when it fails; the
// Sender retries transient failures with the same crmMessageId, and
// classifies what it cannot retry with the channel sentinels.
func ExampleServer_FailNext() {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL,
		MaxAttempts: 2, Backoff: func(int) time.Duration { return 0 }})
	if err != nil {
		fmt.Println(err)
		return
	}
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}

	srv.FailNext(1, channel.ErrRateLimited) // one 429, then the retry passes
	_, err = sender.Send(context.Background(), channel.Outgoing{Chat: chat, Text: "hi", IdempotencyKey: "k1"})
	fmt.Println(err, srv.Delivered())

	srv.FailNext(1, channel.ErrRejected) // 400 BAD_CONTACT: not retried
	_, err = sender.Send(context.Background(), channel.Outgoing{Chat: chat, Text: "hi", IdempotencyKey: "k2"})
	fmt.Println(errors.Is(err, channel.ErrRejected), srv.Delivered())
	// Output:
	// <nil> 1
	// true 1
}

// ClientWrites posts to the host's webhook handler what Wazzup sends
// when a client writes; PostStatus tells it the answer was read.
func ExampleServer_ClientWrites() {
	ctx := context.Background()
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}

	var answer channel.Receipt
	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{}, wazzup.EventHandlerFunc(
		func(ctx context.Context, ev wazzup.Events) error {
			for _, m := range ev.Messages {
				fmt.Printf("%s from %s in chat %s: %s\n", m.Direction, m.Phone, m.Chat.ChatID, m.Text)
			}
			for _, s := range ev.Statuses {
				fmt.Println("answer", s.Status, s.MessageID == answer.ProviderID)
			}
			return nil
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	if _, err := srv.ClientWrites(ctx, hookSrv.URL, wa, "79161234567", "Сколько стоит доставка?"); err != nil {
		fmt.Println(err)
		return
	}
	answer, err = sender.Send(ctx, channel.Outgoing{
		Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}, Text: "300 ₽", IdempotencyKey: "answer-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.PostStatus(ctx, hookSrv.URL, answer.ProviderID, "read"); err != nil {
		fmt.Println(err)
		return
	}
	// Output:
	// inbound from +79161234567 in chat 79161234567: Сколько стоит доставка?
	// answer read true
}
