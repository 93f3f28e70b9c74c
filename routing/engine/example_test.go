package engine_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// A new WhatsApp client lands in Unsorted and is offered to two managers;
// the first reply claims it and the other manager's reply is refused.
func ExampleEngine() {
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil) // users 1 Anna, 2 Boris, 3 Vera; pipeline 10, Unsorted stage 100
	eng, err := engine.New(ctx, engine.Options{
		CRM:    fake,
		Sender: channeltest.NewRecorder(),
		Config: engine.Config{
			Channels: []engine.ChannelConfig{{ID: "wa", Kind: channel.WhatsApp, Pipeline: "10", Stage: "100"}},
			Roles: []roles.Assignment{
				{User: "1", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
				{User: "2", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
			},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	in, _ := eng.ClientMessage(ctx, channel.Message{ID: "wamid.1", Chat: chat, Direction: channel.Inbound,
		Author: channel.Author{Kind: channel.AuthorClient}, Text: "Здравствуйте"})
	fmt.Println(in.Outcome, len(in.Notify), "notified")

	out, _ := eng.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r1", User: "2", Chat: chat, Text: "Добрый день!"})
	fmt.Println("claimed by", out.Responsible, out.Claimed)

	_, err = eng.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r2", User: "1", Chat: chat, Text: "Здравствуйте!"})
	var ce *routing.ClaimedError
	fmt.Println(errors.Is(err, engine.ErrForbidden), errors.As(err, &ce) && ce.Winner == "2")
	fmt.Println("CRM responsible:", fake.Deals()[0].Responsible)
	// Output:
	// new_client 2 notified
	// claimed by 2 true
	// true true
	// CRM responsible: 2
}
