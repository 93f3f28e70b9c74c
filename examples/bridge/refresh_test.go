package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// TestAmoCRMDealClosedFreesPlace: on a channel where each manager holds
// one client at most and the others wait, a lead won in amoCRM and
// reported by its status webhook frees its manager's place at once: the
// waiting client is handed to them without any message from the closed
// deal's client. A second delivery of the webhook has no second effect.
// It runs on the memory state, and on PostgreSQL when CRMBRIDGE_PG_DSN is
// set.
func TestAmoCRMDealClosedFreesPlace(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testDealClosedFreesPlace(t, "", "status") })
	// An account subscribed to deal updates alone hears of the close as
	// an update carrying the won status.
	t.Run("memory_update_event", func(t *testing.T) { testDealClosedFreesPlace(t, "", "update") })
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv(envPGDSN)
		if dsn == "" {
			t.Skip("set " + envPGDSN + " or run: bash ../../.ci/postgres.sh go test ./...")
		}
		testDealClosedFreesPlace(t, dsn, "status")
	})
}

func testDealClosedFreesPlace(t *testing.T, dsn, action string) {
	f := newFakes(t)
	if dsn != "" {
		f.env[envPGDSN] = dsn
		f.env[envAccount] = fmt.Sprintf("bridge-refresh-%d", time.Now().UnixNano())
	}
	cfg := engine.Config{
		Channels: []engine.ChannelConfig{{ID: f.ch, Kind: channel.WhatsApp, Name: "Sales", Pipeline: "7001", Stage: "70012",
			Features: routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}}},
		Roles: []roles.Assignment{
			{User: "501", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
			{User: "502", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.env[envConfig], data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, logs := startBridge(t, f.env, startOptions{})
	ctx, hook := t.Context(), b.baseURL+wazzupPath
	for i, chat := range []string{"79161234567", "79161234568", "79161234569"} {
		if err := f.wazzup.PostMessages(ctx, hook, f.message("m-"+strconv.Itoa(i), chat, "Hello")); err != nil {
			t.Fatal(err)
		}
	}
	leads := f.amo.Leads()
	if len(leads) != 3 || leads[0].Responsible != 501 || leads[1].Responsible != 502 {
		t.Fatalf("leads = %+v; want the first two to 501 and 502, the third waiting", leads)
	}
	waiting, won := leads[2], leads[0]
	b.tick(ctx, time.Now())
	if r := logs.records(t, "queue"); len(r) != 0 {
		t.Fatalf("a Tick before the close handed over %v; want nobody (both managers at their limit)", r)
	}

	// A manager wins the first lead in amoCRM.
	closeLead(t, f, won.ID)

	key := func(field string) string { return "leads[" + action + "][0][" + field + "]" }
	form := url.Values{
		key("id"):          {strconv.Itoa(won.ID)},
		key("status_id"):   {"142"},
		key("pipeline_id"): {strconv.Itoa(won.Pipeline)},
	}
	if action == "status" {
		form.Set(key("old_status_id"), strconv.Itoa(won.Status))
		form.Set(key("old_pipeline_id"), strconv.Itoa(won.Pipeline))
	}
	deliver := func() {
		t.Helper()
		resp, err := http.Post(b.baseURL+amocrmPath+"?secret="+testAmoSecret, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("amoCRM webhook: %d", resp.StatusCode)
		}
	}
	handedOver := func() {
		t.Helper()
		r := logs.records(t, "queue")
		if len(r) != 1 || r[0]["responsible"] != "501" {
			t.Errorf("handovers from the queue %v; want one, to 501 (the freed place)", r)
		}
		if l, _ := f.amo.Lead(waiting.ID); l.Responsible != 501 {
			t.Errorf("the waiting client's lead is %d's; want 501's", l.Responsible)
		}
	}
	f.amo.ResetCounts()
	deliver()
	flushRefreshes(t, b)
	handedOver()
	t.Logf("amoCRM requests for the first delivery (refresh of a deal read open before, then the handover): %v", f.amo.Requests())
	f.amo.ResetCounts()
	deliver() // amoCRM delivers again
	flushRefreshes(t, b)
	handedOver()
	t.Logf("amoCRM requests for the second delivery (refresh only): %v", f.amo.Requests())
	var outcomes []any
	for _, r := range logs.records(t, "chat refreshed") {
		outcomes = append(outcomes, r["outcome"])
	}
	if len(outcomes) != 2 || outcomes[0] != "forgotten" || outcomes[1] != "refreshed" {
		t.Errorf("refresh outcomes %v; want [forgotten refreshed]", outcomes)
	}
	if l, _ := f.amo.Lead(won.ID); l.Responsible != 501 || l.Status != amocrmtest.WonStatusID {
		t.Errorf("the won lead is now %+v; want it left won with 501", l)
	}
}

// closeLead marks the lead won in the fake amoCRM, as a manager does in
// amoCRM's interface (no webhook is sent).
func closeLead(t *testing.T, f *fakes, id int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, f.amo.URL()+"/api/v4/leads/"+strconv.Itoa(id), strings.NewReader(`{"status_id":142}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.amo.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.amo.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l, _ := f.amo.Lead(id); l.Status != amocrmtest.WonStatusID {
		t.Fatalf("lead %d status %d after the PATCH; want won", id, l.Status)
	}
}

// flushRefreshes waits until the bridge has applied the amoCRM webhooks
// it answered.
func flushRefreshes(t *testing.T, b *bridge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if err := b.refresher.flush(ctx); err != nil {
		t.Fatalf("refreshes not applied: %v", err)
	}
}
