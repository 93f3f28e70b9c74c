package amocrm_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// engineOnAmo builds the engine on the amoCRM adapter against the fake
// amoCRM server: WhatsApp "wa" places new deals in Unsorted (first
// responder, users 501 and 502); Telegram "tg" at "First contact" (round
// robin), returning clients get a new deal.
func engineOnAmo(t *testing.T) (*engine.Engine, *amocrmtest.Server, *channeltest.Recorder, *time.Time) {
	t.Helper()
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	t.Cleanup(srv.Close)
	return engineOnAmoServer(t, srv)
}

// engineOnAmoServer builds an engine (a fresh process) on an existing
// fake account.
func engineOnAmoServer(t *testing.T, srv *amocrmtest.Server) (*engine.Engine, *amocrmtest.Server, *channeltest.Recorder, *time.Time) {
	t.Helper()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token()), RateLimit: rate.Inf,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	rec := channeltest.NewRecorder()
	e, err := engine.New(t.Context(), engine.Options{CRM: c, Sender: rec, Now: clock, Config: engine.Config{
		Channels: []engine.ChannelConfig{
			{ID: "wa", Kind: channel.WhatsApp, Pipeline: "7001", Stage: "70011"},
			{ID: "tg", Kind: channel.Telegram, Pipeline: "7001", Stage: "70012", Returning: routing.NewDeal},
		},
		Roles: []roles.Assignment{
			{User: "501", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
			{User: "502", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
			{User: "501", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
			{User: "502", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
		},
		Global: engine.GlobalSettings{UnansweredTasks: tasks.Settings{Enabled: true}},
	}})
	if err != nil {
		t.Fatalf("NewEngine on amoCRM: %v", err)
	}
	return e, srv, rec, &now
}

var msgSeq int

func clientMsg(ch channel.ID, chatID string) channel.Message {
	msgSeq++
	return channel.Message{ID: fmt.Sprintf("amo-m%d", msgSeq), Chat: channel.Chat{Channel: ch, ChatID: chatID},
		Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi"}
}

func closeLead(t *testing.T, srv *amocrmtest.Server, id int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPatch, fmt.Sprintf("%s/api/v4/leads/%d", srv.URL(), id),
		strings.NewReader(`{"status_id":142,"pipeline_id":7001}`))
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("closing lead %d: status %d", id, resp.StatusCode)
	}
}

// TestEngineRequestsPerEvent measures the amoCRM requests each engine
// event costs through this adapter on the fake account (the table of the
// package doc), and checks the scenarios' effects there. Limits are the
// measured figures, so a regression fails. Run with -v to print the
// table.
func TestEngineRequestsPerEvent(t *testing.T) {
	e, srv, _, now := engineOnAmo(t)
	ctx := t.Context()
	var report []string
	measure := func(name string, max int, ev func()) {
		t.Helper()
		srv.ResetCounts()
		ev()
		got := srv.TotalRequests()
		keys := make([]string, 0)
		for k, n := range srv.Requests() {
			keys = append(keys, fmt.Sprintf("%s×%d", k, n))
		}
		sort.Strings(keys)
		report = append(report, fmt.Sprintf("%-48s %2d  %s", name, got, strings.Join(keys, ", ")))
		if got > max {
			t.Errorf("%s: %d amoCRM requests; expected at most %d", name, got, max)
		}
	}
	must := func(r engine.InboundResult, err error) engine.InboundResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	var first engine.InboundResult
	measure("new client, Unsorted (first responder), task", 4, func() { first = must(e.ClientMessage(ctx, clientMsg("wa", "79161234567"))) })
	measure("streak: 9 more messages, warm", 0, func() {
		for range 9 {
			must(e.ClientMessage(ctx, clientMsg("wa", "79161234567")))
		}
	})
	measure("claim by reply: accept, responsible, task done", 4, func() {
		if _, err := e.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r1", User: "501", Chat: first.Chat, Text: "hello"}); err != nil {
			t.Fatal(err)
		}
	})
	*now = now.Add(10 * time.Minute)
	measure("live chat, cold (record stale), task", 3, func() { must(e.ClientMessage(ctx, clientMsg("wa", "79161234567"))) })
	measure("live chat, warm", 0, func() { must(e.ClientMessage(ctx, clientMsg("wa", "79161234567"))) })
	measure("reply closing the task", 1, func() {
		if _, err := e.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r2", User: "501", Chat: first.Chat, Text: "sure"}); err != nil {
			t.Fatal(err)
		}
	})
	var rr engine.InboundResult
	measure("new client, round robin, task", 4, func() { rr = must(e.ClientMessage(ctx, clientMsg("tg", "tg-1"))) })

	// A returning client typed with 8 in amoCRM, no open deal, notify policy.
	cid := srv.AddContact(amocrmtest.Contact{Name: "Иван", Responsible: 501, Phones: []string{"8 (903) 555-00-11"}})
	var ret engine.InboundResult
	measure("returning client, notify policy, task", 3, func() { ret = must(e.ClientMessage(ctx, clientMsg("wa", "79035550011"))) })
	if ret.Outcome != engine.OutcomeReturningNotify || string(ret.Contact) != fmt.Sprint(cid) || ret.Responsible != "501" {
		t.Errorf("client typed with 8 in amoCRM: %+v; want returning_notify for contact %d, responsible 501", ret, cid)
	}
	// A returning client whose deal was closed, new-deal policy.
	closeLead(t, srv, mustAtoi(t, string(rr.Deal)))
	if err := e.Invalidate(ctx, rr.Chat); err != nil {
		t.Fatal(err)
	}
	var nd engine.InboundResult
	measure("returning client, new-deal policy (+1: contact follows the new owner)", 4, func() { nd = must(e.ClientMessage(ctx, clientMsg("tg", "tg-1"))) })
	if nd.Outcome != engine.OutcomeReturningNewDeal || nd.Contact != rr.Contact {
		t.Errorf("returning client, new-deal policy: %+v; want a new deal for contact %s", nd, rr.Contact)
	}
	for _, line := range report {
		t.Log(line)
	}

	// Effects in the fake account.
	lead, ok := srv.Lead(mustAtoi(t, string(first.Deal)))
	if !ok || lead.Responsible != 501 || lead.Status != 70012 {
		t.Errorf("lead after 501's claim: %+v; want responsible 501, accepted out of Unsorted", lead)
	}
	if n := len(srv.Contacts()); n != 3 {
		t.Errorf("contacts in amoCRM = %d; want 3 (no duplicates)", n)
	}
}

// A client still in Unsorted who writes again after a restart is found
// through the entry: no second contact, no second entry.
func TestEngineUnsortedClientAfterRestart(t *testing.T) {
	e, srv, _, _ := engineOnAmo(t)
	ctx := t.Context()
	r := must1(t)(e.ClientMessage(ctx, clientMsg("wa", "79990001122")))
	e2, _, _, _ := engineOnAmoServer(t, srv)
	r2 := must1(t)(e2.ClientMessage(ctx, clientMsg("wa", "79990001122")))
	if r2.Contact != r.Contact || r2.Deal != r.Deal {
		t.Errorf("after a restart: %+v; want contact %s and deal %s again", r2, r.Contact, r.Deal)
	}
	if n, u := len(srv.Contacts()), len(srv.Unsorted()); n != 1 || u != 1 {
		t.Errorf("contacts %d, Unsorted entries %d; want 1 and 1", n, u)
	}
}

func must1(t *testing.T) func(engine.InboundResult, error) engine.InboundResult {
	return func(r engine.InboundResult, err error) engine.InboundResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestEngineReturningNewDealOnAmo(t *testing.T) {
	e, srv, _, _ := engineOnAmo(t)
	ctx := t.Context()
	r, err := e.ClientMessage(ctx, clientMsg("tg", "tg-9"))
	if err != nil {
		t.Fatal(err)
	}
	closeLead(t, srv, mustAtoi(t, string(r.Deal)))
	if err := e.Invalidate(ctx, r.Chat); err != nil {
		t.Fatal(err)
	}
	r2, err := e.ClientMessage(ctx, clientMsg("tg", "tg-9"))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Outcome != engine.OutcomeReturningNewDeal || r2.Contact != r.Contact || r2.Deal == r.Deal {
		t.Errorf("returning client on amoCRM: %+v; want a new deal for contact %s", r2, r.Contact)
	}
	if n := len(srv.Leads()); n != 2 {
		t.Errorf("leads = %d; want 2", n)
	}
}
