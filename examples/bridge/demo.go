package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// demoConfigJSON is the demo's routing configuration, also a sample for
// BRIDGE_CONFIG. Its pipelines, stages and users are those the fake amoCRM
// is seeded with (amocrmtest.DefaultPipelines, DefaultUsers):
//
//   - "Water delivery" creates deals at pipeline 7001, stage 70012 ("First
//     contact"): round robin between managers 501 and 502; a returning
//     client whose deals are all closed gets a new deal.
//   - "Car showroom" creates deals at pipeline 7002, stage 70021
//     (Unsorted): first responder, offered to 501 (manager) and 502
//     (supervisor); a returning client's responsible user decides.
//   - Unanswered messages make a task, due in an hour.
//
//go:embed demo-config.json
var demoConfigJSON []byte

// demoChannels are the fake Wazzup account's channels: the configured ones.
func demoChannels(cfg engine.Config) []wazzuptest.Channel {
	chs := make([]wazzuptest.Channel, len(cfg.Channels))
	for i, c := range cfg.Channels {
		chs[i] = wazzuptest.Channel{ID: c.ID, Transport: string(c.Kind), PlainID: fmt.Sprintf("7900000000%d", i+1)}
	}
	return chs
}

// demo plays a short script against the running bridge: the fake Wazzup
// posts webhooks to the bridge's URL as the real one would, and an employee
// answers through the engine. Each step prints what the bridge decided; the
// end prints what reached the fake servers.
func (b *bridge) demo(ctx context.Context) error {
	hook := b.baseURL + webhookPath
	water, cars := b.s.Config.Channels[0].ID, b.s.Config.Channels[1].ID
	anna := channel.Chat{Channel: water, ChatID: "79161234567"}
	boris := channel.Chat{Channel: cars, ChatID: "79035550101"}

	step := func(n int, what string) { b.out.printf("\n== %d. %s\n", n, what) }
	clientWrites := func(id string, chat channel.Chat, name, text string) error {
		return b.fakeWazzup.PostMessages(ctx, hook, wazzuptest.WebhookMessage{
			MessageID: id,
			DateTime:  time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			ChannelID: string(chat.Channel),
			ChatType:  "whatsapp",
			ChatID:    chat.ChatID,
			Type:      "text",
			Status:    "inbound",
			Contact:   &wazzuptest.WebhookContact{Name: name},
			Text:      text,
		})
	}

	step(1, "a new client writes to the water delivery (round robin)")
	if err := clientWrites("demo-in-1", anna, "Anna", "Hello! Do you deliver to Khimki?"); err != nil {
		return fmt.Errorf("demo step 1: %w", err)
	}
	step(2, "she writes again before anyone answers")
	if err := clientWrites("demo-in-2", anna, "Anna", "Two 19-litre bottles, please."); err != nil {
		return fmt.Errorf("demo step 2: %w", err)
	}
	step(3, "Wazzup delivers the first webhook again (a retry)")
	if err := clientWrites("demo-in-1", anna, "Anna", "Hello! Do you deliver to Khimki?"); err != nil {
		return fmt.Errorf("demo step 3: %w", err)
	}
	step(4, "a new client writes to the car showroom (first responder)")
	if err := clientWrites("demo-in-3", boris, "Boris", "Is the red one still available?"); err != nil {
		return fmt.Errorf("demo step 4: %w", err)
	}

	step(5, "supervisor 502 answers him through the engine; the Wazzup Sender sends it")
	reply := engine.EmployeeMessage{ID: "demo-out-1", User: "502", Chat: boris, Text: "Yes! Come for a test drive tomorrow?"}
	res, err := b.engine.EmployeeMessage(ctx, reply)
	if err != nil {
		return fmt.Errorf("demo step 5: %w", err)
	}
	b.out.outbound("user 502", reply, res)

	step(6, "Wazzup echoes the sent message back to the webhook")
	sent := b.fakeWazzup.Sent()
	if len(sent) == 0 {
		return errors.New("demo step 6: the fake Wazzup received no message")
	}
	if err := b.fakeWazzup.Echo(ctx, hook, sent[len(sent)-1]); err != nil {
		return fmt.Errorf("demo step 6: %w", err)
	}

	step(7, "manager 501 may not answer Boris any more")
	late := engine.EmployeeMessage{ID: "demo-out-2", User: "501", Chat: boris, Text: "Hi, I can help too"}
	_, err = b.engine.EmployeeMessage(ctx, late)
	var claimed *routing.ClaimedError
	if !errors.As(err, &claimed) {
		return fmt.Errorf("demo step 7: want a refusal naming the winner, got %v", err)
	}
	b.out.block(fmt.Sprintf("user 501 to client %s: %q", boris.ChatID, late.Text),
		[2]string{"refused", err.Error()}, [2]string{"winner", string(claimed.Winner)})

	b.summary()
	return nil
}

// summary prints what the fake servers hold and how many requests they got.
func (b *bridge) summary() {
	b.out.printf("\n== what reached the fake servers\n")
	for _, l := range b.fakeAmo.Leads() {
		b.out.printf("amoCRM lead %d: pipeline %d, status %d, responsible %d, contacts %v\n",
			l.ID, l.Pipeline, l.Status, l.Responsible, l.Contacts)
	}
	for _, c := range b.fakeAmo.Contacts() {
		b.out.printf("amoCRM contact %d: %q, phones %v, responsible %d\n", c.ID, c.Name, c.Phones, c.Responsible)
	}
	for _, id := range b.out.createdTasks() {
		n, _ := strconv.Atoi(string(id))
		t, ok := b.fakeAmo.Task(n)
		if !ok {
			continue
		}
		state := "open"
		if t.Completed {
			state = "completed"
		}
		b.out.printf("amoCRM task %d on %s %d for %d: %q, %s\n", t.ID, t.EntityType, t.EntityID, t.Responsible, t.Text, state)
	}
	for _, m := range b.fakeWazzup.Sent() {
		b.out.printf("Wazzup sent %s to %s as CRM user %s: %q\n", m.MessageID, m.ChatID, m.CrmUserID, m.Text)
	}
	reqs := b.fakeAmo.Requests()
	b.out.printf("fake amoCRM: %d requests\n", b.fakeAmo.TotalRequests())
	for _, k := range slices.Sorted(maps.Keys(reqs)) {
		b.out.printf("    %3d %s\n", reqs[k], k)
	}
	b.out.printf("fake Wazzup: %d API requests, %d messages delivered\n", b.fakeWazzup.Requests(), b.fakeWazzup.Delivered())
}
