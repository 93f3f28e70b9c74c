package engine_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// The team used by the engine tests:
//
//	1 Anna   manager on wa (receives), manager on tg
//	2 Boris  manager on wa (receives), manager on tg (receives)
//	3 Vera   manager on tg (receives)
//	4 Quinn  quality control on wa and tg
//	5 Sam    supervisor on wa and tg
//	6 Olga   no role (left the team)
//
// wa: WhatsApp, new deals in Unsorted (first responder).
// tg: Telegram, new deals at stage "New" (round robin).
const (
	anna, boris, vera, quinn, sam, olga crm.UserID = "1", "2", "3", "4", "5", "6"
	wa, tg                              channel.ID = "wa", "tg"
)

func testConfig() engine.Config {
	return engine.Config{
		Channels: []engine.ChannelConfig{
			{ID: wa, Kind: channel.WhatsApp, Name: "WhatsApp +7 495", Pipeline: "10", Stage: "100"},
			{ID: tg, Kind: channel.Telegram, Name: "Telegram bot", Pipeline: "10", Stage: "101", Returning: routing.NewDeal},
		},
		Roles: []roles.Assignment{
			{User: anna, Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
			{User: boris, Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
			{User: quinn, Channel: wa, Role: roles.QualityControl},
			{User: sam, Channel: wa, Role: roles.Supervisor},
			{User: anna, Channel: tg, Role: roles.Manager},
			{User: boris, Channel: tg, Role: roles.Manager, ReceivesNewClients: true},
			{User: vera, Channel: tg, Role: roles.Manager, ReceivesNewClients: true},
			{User: quinn, Channel: tg, Role: roles.QualityControl},
			{User: sam, Channel: tg, Role: roles.Supervisor},
		},
		Global: engine.GlobalSettings{
			UnansweredTasks: tasks.Settings{Enabled: true},
			WriteFirstFrom:  map[crm.UserID]channel.ID{sam: wa},
		},
	}
}

// testCatalog is the fixture CRM's users and pipelines.
func testCatalog(t testing.TB) engine.Catalog {
	f := crmtest.NewSeeded(nil)
	f.AddUsers(crm.User{ID: quinn, Active: true}, crm.User{ID: sam, Active: true}, crm.User{ID: olga, Active: true})
	users, err := f.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pipelines, err := f.ListPipelines(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return engine.Catalog{Users: users, Pipelines: pipelines}
}

type fixture struct {
	t      *testing.T
	crm    *crmtest.Fake
	sent   *channeltest.Recorder
	engine *engine.Engine
	clock  *clock
	seq    atomic.Int64
}

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newFixture(t testing.TB, mutate ...func(*engine.Config, *engine.Options)) *fixture {
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixNano())
	f := crmtest.NewSeeded(&crmtest.Options{Now: clk.Now})
	f.AddUsers(
		crm.User{ID: quinn, Name: "Quinn", Active: true},
		crm.User{ID: sam, Name: "Sam", Active: true},
		crm.User{ID: olga, Name: "Olga", Active: true},
	)
	rec := channeltest.NewRecorder(wa, tg)
	cfg := testConfig()
	opt := engine.Options{CRM: f, Sender: rec, Now: clk.Now}
	for _, m := range mutate {
		m(&cfg, &opt)
	}
	opt.Config = cfg
	e, err := engine.New(t.Context(), opt)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	f.ResetCalls()
	fx := &fixture{crm: f, sent: rec, engine: e, clock: clk}
	if tt, ok := t.(*testing.T); ok {
		fx.t = tt
	}
	return fx
}

func (fx *fixture) id() string { return fmt.Sprintf("m%d", fx.seq.Add(1)) }

// in is a client message on ch from chatID.
func (fx *fixture) in(ch channel.ID, chatID, text string) channel.Message {
	return channel.Message{ID: fx.id(), Chat: channel.Chat{Channel: ch, ChatID: chatID},
		Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: text, Time: fx.clock.Now()}
}

func (fx *fixture) out(user crm.UserID, ch channel.ID, chatID, text string) engine.EmployeeMessage {
	return engine.EmployeeMessage{ID: fx.id(), User: user, Chat: channel.Chat{Channel: ch, ChatID: chatID}, Text: text}
}

func (fx *fixture) mustIn(m channel.Message) engine.InboundResult {
	fx.t.Helper()
	r, err := fx.engine.ClientMessage(fx.t.Context(), m)
	if err != nil {
		fx.t.Fatalf("ClientMessage(%s %s): %v", m.Chat, m.ID, err)
	}
	return r
}

func (fx *fixture) mustOut(m engine.EmployeeMessage) engine.OutboundResult {
	fx.t.Helper()
	r, err := fx.engine.EmployeeMessage(fx.t.Context(), m)
	if err != nil {
		fx.t.Fatalf("EmployeeMessage(%s by %s): %v", m.Chat, m.User, err)
	}
	return r
}

func notified(ns []engine.Notification) []crm.UserID {
	out := make([]crm.UserID, len(ns))
	for i, n := range ns {
		out[i] = n.User
	}
	return out
}
