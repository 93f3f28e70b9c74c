package channel_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
)

// A Sender is idempotent on the key: a retried send goes out once.
func ExampleSender() {
	ctx := context.Background()
	var s channel.Sender = channeltest.NewRecorder("wa-1")
	m := channel.Outgoing{
		Chat:           channel.Chat{Channel: "wa-1", ChatID: "79161234567"},
		Text:           "Добрый день!",
		Author:         channel.Author{Kind: channel.AuthorEmployee, UserID: "1"},
		IdempotencyKey: "reply-42",
	}
	first, _ := s.Send(ctx, m)
	again, _ := s.Send(ctx, m)
	fmt.Println(first.ProviderID, first.Duplicate)
	fmt.Println(again.ProviderID, again.Duplicate)
	// Output:
	// rec-1 false
	// rec-1 true
}

// Validate names the missing field.
func ExampleOutgoing_Validate() {
	err := channel.Outgoing{Chat: channel.Chat{Channel: "wa-1", ChatID: "7916"}, Text: "hi"}.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, channel.ErrInvalid))
	// Output:
	// channel: invalid message: IdempotencyKey is empty
	// true
}
