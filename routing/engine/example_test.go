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

// Settings change while the engine runs: a manager switches "receives new
// clients" off, and the next new client goes to the colleague.
func ExampleEngine_Update() {
	ctx := context.Background()
	cfg := engine.Config{
		Channels: []engine.ChannelConfig{{ID: "tg", Kind: channel.Telegram, Pipeline: "10", Stage: "101"}},
		Roles: []roles.Assignment{
			{User: "1", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
			{User: "2", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
		},
	}
	eng, err := engine.New(ctx, engine.Options{CRM: crmtest.NewSeeded(nil), Sender: channeltest.NewRecorder(), Config: cfg})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := func(id string) {
		r, err := eng.ClientMessage(ctx, channel.Message{ID: id, Chat: channel.Chat{Channel: "tg", ChatID: id},
			Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(id, "→", r.Responsible)
	}
	client("a")
	client("b")

	cfg.Roles[0].ReceivesNewClients = false // user 1 goes on leave
	if err := eng.Update(cfg, nil); err != nil {
		fmt.Println(err)
		return
	}
	client("c")
	client("d")
	// Output:
	// a → 1
	// b → 2
	// c → 2
	// d → 2
}

// Why a decision was taken, rendered on demand.
func ExampleExplanation() {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{CRM: crmtest.NewSeeded(nil), Sender: channeltest.NewRecorder(), Config: engine.Config{
		Channels: []engine.ChannelConfig{{ID: "tg", Kind: channel.Telegram, Pipeline: "10", Stage: "101"}},
		Roles:    []roles.Assignment{{User: "3", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := eng.ClientMessage(ctx, channel.Message{ID: "m1", Chat: channel.Chat{Channel: "tg", ChatID: "vera_client"},
		Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range r.Why.Steps {
		fmt.Println("-", s)
	}
	// Output:
	// - new client: no contact in the CRM
	// - to 3: round_robin chat tg/vera_client: pick #1 (chosen never served before); eligible 3
	// - created contact 1001 and deal 1002 at pipeline 10 stage 101
}
