package engine_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// The exactly-once guarantees against the real adapter and the fake
// amoCRM server, whose answers can be lost after the work is done (the
// connection closes without a response) and which keeps task deadlines
// to the second.
func TestExactlyOnceOnAmoCRM(t *testing.T) {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	t.Cleanup(srv.Close)
	now := time.Date(2026, 11, 24, 9, 0, 0, 123_000_000, time.UTC)
	client, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token()), RateLimit: rate.Inf,
		Sleep: func(context.Context, time.Duration) error { return nil }, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	start := func() *engine.Engine { // a fresh process: new in-memory state
		e, err := engine.New(t.Context(), engine.Options{CRM: client, Sender: channeltest.NewRecorder(), Now: func() time.Time { return now },
			Config: engine.Config{
				Channels: []engine.ChannelConfig{{ID: "tg", Kind: channel.Telegram, Pipeline: "7001", Stage: "70012", Returning: routing.NewDeal}},
				Roles: []roles.Assignment{
					{User: "501", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
					{User: "502", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
				},
				Global: engine.GlobalSettings{UnansweredTasks: tasks.Settings{Enabled: true}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ctx := t.Context()
	sent := map[string]time.Time{} // a redelivery carries the message's first time
	msg := func(id string) channel.Message {
		if _, ok := sent[id]; !ok {
			sent[id] = now
		}
		return channel.Message{ID: id, Chat: channel.Chat{Channel: "tg", ChatID: "amo-client"}, Direction: channel.Inbound,
			Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi", Time: sent[id]}
	}
	tasksOf := func(deal crm.DealID) (open, all int) {
		ts, err := client.ListTasks(ctx, crm.TaskFilter{Deal: deal})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			if !tk.Done {
				open++
			}
		}
		return open, len(ts)
	}

	// The task's answer is lost: the redelivery finds it.
	e := start()
	srv.LoseNextAnswers("POST /api/v4/tasks", 1)
	if _, err := e.ClientMessage(ctx, msg("m1")); err == nil {
		t.Fatal("first delivery succeeded; want the lost answer's error")
	}
	r, err := e.ClientMessage(ctx, msg("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if open, all := tasksOf(r.Deal); open != 1 || all != 1 || len(srv.Leads()) != 1 {
		t.Fatalf("after the lost answer: %d open of %d tasks, %d leads; want 1, 1, 1", open, all, len(srv.Leads()))
	}

	// A restart, then the same message again: nothing new.
	e = start()
	if r2, err := e.ClientMessage(ctx, msg("m1")); err != nil || r2.TaskCreated || r2.DealCreated {
		t.Fatalf("after a restart: %+v, %v; want nothing created", r2, err)
	}
	if open, all := tasksOf(r.Deal); open != 1 || all != 1 || len(srv.Leads()) != 1 {
		t.Fatalf("after a restart: %d open of %d tasks, %d leads; want 1, 1, 1", open, all, len(srv.Leads()))
	}

	// The reply closes the task; after another restart the old message
	// opens nothing, and a new one opens a new task.
	now = now.Add(time.Minute)
	if _, err := e.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "reply", User: r.Responsible, Chat: r.Chat, Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	e = start()
	if r3, err := e.ClientMessage(ctx, msg("m1")); err != nil || r3.TaskCreated {
		t.Fatalf("old message after the reply and a restart: %+v, %v; want no task", r3, err)
	}
	now = now.Add(time.Minute)
	if r4, err := e.ClientMessage(ctx, msg("m2")); err != nil || !r4.TaskCreated {
		t.Fatalf("new message after the reply: %+v, %v; want a new task", r4, err)
	}
	if open, all := tasksOf(r.Deal); open != 1 || all != 2 {
		t.Errorf("at the end: %d open of %d tasks; want 1 of 2", open, all)
	}

	// A new client whose lead-and-contact creation answer was lost: the
	// redelivery finds both and creates neither again.
	leads, contacts := len(srv.Leads()), len(srv.Contacts())
	lost := channel.Message{ID: "n1", Chat: channel.Chat{Channel: "tg", ChatID: "amo-new"}, Direction: channel.Inbound,
		Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi", Time: now}
	srv.LoseNextAnswers("POST /api/v4/leads/complex", 1)
	if _, err := e.ClientMessage(ctx, lost); err == nil {
		t.Fatal("first delivery of the new client succeeded; want the lost answer's error")
	}
	rn, err := e.ClientMessage(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Leads()) != leads+1 || len(srv.Contacts()) != contacts+1 || rn.Outcome != engine.OutcomeNewClient || rn.DealCreated {
		t.Errorf("after the lost creation: leads %d→%d, contacts %d→%d, %v (deal created %v); want one each, found, outcome new_client",
			leads, len(srv.Leads()), contacts, len(srv.Contacts()), rn.Outcome, rn.DealCreated)
	}
}
