package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// A WhatsApp client is offered to the one manager of a channel limited to
// one open client each, and never answered. The next client waits until
// the first one's deal is closed in the CRM and its webhook calls Refresh;
// then Tick offers the waiting client.
func ExampleEngine_Refresh() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil) // users 1 Anna, 2 Boris, 3 Vera; pipeline 10, Unsorted stage 100
	eng, err := engine.New(ctx, engine.Options{
		CRM:    fake,
		Sender: channeltest.NewRecorder(),
		Config: engine.Config{
			Channels: []engine.ChannelConfig{{ID: "wa", Kind: channel.WhatsApp, Pipeline: "10", Stage: "100",
				Features: routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}}},
			Roles: []roles.Assignment{{User: "1", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := func(chatID string) engine.InboundResult {
		r, err := eng.ClientMessage(ctx, channel.Message{ID: "m-" + chatID, Chat: channel.Chat{Channel: "wa", ChatID: chatID},
			Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi"})
		if err != nil {
			fmt.Println(err)
		}
		return r
	}
	abandoned := client("79161234567")
	fmt.Println("first:", abandoned.Outcome)
	fmt.Println("second:", client("79161234568").Outcome)

	// In the CRM, the unanswered deal is closed as lost; its webhook
	// reaches the host, which refreshes the chat.
	if err := fake.CloseDeal(abandoned.Deal, crm.DealLost); err != nil {
		fmt.Println(err)
		return
	}
	r, err := eng.Refresh(ctx, abandoned.Chat)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("refresh:", r.Outcome)

	t, err := eng.Tick(ctx, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range t.Assigned {
		fmt.Println("waiting client", h.Chat.ChatID, "offered to", h.Decision.Offered)
	}
	// Output:
	// first: new_client
	// second: queued
	// refresh: forgotten
	// waiting client 79161234568 offered to [1]
}
