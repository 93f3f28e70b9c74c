// Command tenants shows one host serving several accounts (tenants), each
// with its own settings, CRM, messenger account, keys and state, on one
// process: webhooks are routed by the account in their path
// (/wazzup/{account}, /amocrm/{account}) to that account's engine.
//
// Engines are created at an account's first event and dropped when it has
// been idle (Host.DropIdle): a host with thousands of accounts keeps
// engines only for those with recent traffic. Creating one costs no CRM
// call, because the account's CRM catalog (users and pipelines) is cached
// with its settings and given to engine.New (engine.Options.Catalog); the
// account's state is kept apart from the engine, so dropping one forgets
// nothing.
//
// It runs on in-memory fakes (crm/crmtest for each account's CRM,
// channel/channeltest for its sender, channel/wazzup/wazzuptest to post
// Wazzup's webhooks) with a fixed clock, needs no credentials, and prints
// what happened:
//
//	go run ./examples/tenants
//
// The two accounts of the demo collide on purpose: the same channel ID, the
// same employee IDs, the same client chat and the same message IDs. Acme
// distributes new clients round robin; Globex offers them to the first
// responder. Each gets its own decision, its own contact and deal in its
// own CRM, and a redelivery in one is not mistaken for the other's message.
//
// # Adapters per account
//
// Each Account carries its own crm.Client and channel.Sender. In production
// they are the account's amoCRM adapter (amocrm.New with the account's
// address and amocrm.NewOAuth over the account's token store, e.g.
// pgstore's db.Account(id).Tokens()) and its Wazzup sender (wazzup.NewSender
// with the account's API key and its own wazzup.NewLimiter, since Wazzup
// limits each key). Build them when the account is connected and keep
// them: unlike the engine, they hold rate limiters and connections that
// should outlive idle spells. The Account's webhook keys let one host tell
// its accounts' deliveries apart and refuse one account's key on another's
// path.
//
// # State in PostgreSQL
//
// The state here is in memory, one set of stores per account (see
// memoryStores in host.go). With package routing/pgstore, one database
// holds every account's state, keyed by account ID:
//
//	db, err := pgstore.Open(ctx, pool, pgstore.Options{})
//	st := db.Account(acct.ID)
//	engine.New(ctx, engine.Options{..., State: st, Claims: st, Rotation: st,
//		Queue: st, Escalations: st, Streaks: st.Streaks()})
//
// Then a dropped engine leaves nothing of its account in the process, and
// any instance of the host may serve any account.
//
// # Testing
//
// main_test.go checks that two accounts with colliding IDs never affect
// each other, also with many concurrent webhooks under the race detector;
// that an idle engine is dropped and re-created without a CRM call and
// without forgetting processed messages; the routing by path and key; and
// that amoCRM's lead webhooks move and free places at once (a handover
// reported as an update, a won deal, the Tick after them), skipping a chat
// on a channel the configuration no longer has.
// bench_test.go measures an idle engine's memory, the cost of creating one,
// and the throughput of events spread over many accounts.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tenants:", err)
		os.Exit(1)
	}
}

// The IDs both demo accounts use.
const (
	sharedChannel channel.ID = "ch-1"
	clientChat    string     = "79161234567"
)

// clock is the demo's clock, advanced by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// demoAccount builds an account over a fresh fake CRM: its catalog is
// listed once, here, as a host does when an account is connected.
func demoAccount(ctx context.Context, id string, stage crm.StageID, returning routing.ReturningPolicy) (Account, *crmtest.Fake, *channeltest.Recorder, error) {
	f := crmtest.NewSeeded(nil)
	users, err := f.ListUsers(ctx)
	if err != nil {
		return Account{}, nil, nil, err
	}
	pipes, err := f.ListPipelines(ctx)
	if err != nil {
		return Account{}, nil, nil, err
	}
	rec := channeltest.NewRecorder()
	return Account{
		ID: id,
		Config: engine.Config{
			Channels: []engine.ChannelConfig{{ID: sharedChannel, Kind: channel.WhatsApp, Pipeline: "10", Stage: stage, Returning: returning}},
			Roles: []roles.Assignment{
				{User: "1", Channel: sharedChannel, Role: roles.Manager, ReceivesNewClients: true},
				{User: "2", Channel: sharedChannel, Role: roles.Manager, ReceivesNewClients: true},
			},
		},
		Catalog:      engine.Catalog{Users: users, Pipelines: pipes},
		CRM:          f,
		Sender:       rec,
		WazzupKey:    id + "-wazzup-key",
		AmoCRMSecret: id + "-amocrm-secret",
	}, f, rec, nil
}

// run is the demo, printing to w.
func run(ctx context.Context, w io.Writer) error {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	h := NewHost(Options{IdleAfter: 10 * time.Minute, Now: clk.now, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	type demoTenant struct {
		name   string
		crm    *crmtest.Fake
		wazzup *wazzuptest.Server
	}
	var ts []demoTenant
	for _, a := range []struct {
		id    string
		stage crm.StageID
	}{{"acme", "101"}, {"globex", "100"}} {
		acct, f, _, err := demoAccount(ctx, a.id, a.stage, routing.NewDeal)
		if err != nil {
			return err
		}
		if err := h.Add(acct); err != nil {
			return err
		}
		// Each account's Wazzup posts with that account's key.
		wz := wazzuptest.NewServer(wazzuptest.Options{CRMKey: acct.WazzupKey, Now: clk.now,
			Channels: []wazzuptest.Channel{{ID: sharedChannel, Transport: "whatsapp", PlainID: "79000000001"}}})
		defer wz.Close()
		ts = append(ts, demoTenant{a.id, f, wz})
	}
	post := func(t demoTenant, id, text string) error {
		return t.wazzup.PostMessages(ctx, srv.URL+"/wazzup/"+t.name, wazzuptest.WebhookMessage{
			MessageID: id, DateTime: clk.now().Format("2006-01-02T15:04:05.000Z"), ChannelID: string(sharedChannel),
			ChatType: "whatsapp", ChatID: clientChat, Type: "text", Status: "inbound", Text: text})
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	deals := func() string {
		var parts []string
		for _, t := range ts {
			for _, d := range t.crm.Deals() {
				parts = append(parts, fmt.Sprintf("%s: deal %s at stage %s, responsible %q", t.name, d.ID, d.Stage, d.Responsible))
			}
		}
		return strings.Join(parts, "\n   ")
	}
	crmCalls := func() int {
		n := 0
		for _, t := range ts {
			n += t.crm.TotalCalls()
		}
		return n
	}

	p("== 1. the same client writes the same message ID to both accounts, on the same channel ID\n")
	for _, t := range ts {
		if err := post(t, "m-1", "Hello"); err != nil {
			return err
		}
	}
	p("   %s\n", deals())
	p("   engines live: %d, created so far: %d\n", h.Live(), h.created.Load())

	p("== 2. an hour of silence: both engines are dropped\n")
	clk.t = clk.t.Add(time.Hour)
	p("   dropped %d, live %d\n", h.DropIdle(clk.now()), h.Live())

	p("== 3. acme's Wazzup delivers m-1 again: a new engine, no CRM call, and m-1 is still known\n")
	before := crmCalls()
	if err := post(ts[0], "m-1", "Hello"); err != nil {
		return err
	}
	p("   CRM calls to re-create the engine and answer the redelivery: %d; acme's deals: %d\n", crmCalls()-before, len(ts[0].crm.Deals()))
	p("   engines live: %d, created so far: %d\n", h.Live(), h.created.Load())

	p("== 4. acme's employee 1 replies to the client; who sees the chat in each account\n")
	chat := channel.Chat{Channel: sharedChannel, ChatID: clientChat}
	err := h.Use(ctx, "acme", func(e *engine.Engine) error {
		_, err := e.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r-1", User: "1", Chat: chat, Text: "Hi!"})
		return err
	})
	if err != nil {
		return err
	}
	for _, t := range ts {
		err := h.Use(ctx, t.name, func(e *engine.Engine) error {
			for _, u := range []crm.UserID{"1", "2"} {
				ok, why, err := e.CanView(ctx, u, chat)
				if err != nil {
					return err
				}
				p("   %s: employee %s sees the chat: %v (%s)\n", t.name, u, ok, why)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
