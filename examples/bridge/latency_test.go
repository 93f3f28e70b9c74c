package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// TestAmoCRMDeliveryLatency measures how long one amoCRM delivery
// reporting 20 leads won waits for its answer, with the adapter paced at
// amoCRM's 7 requests per second, and how long the refreshes take after
// it. It takes about ten seconds: run it with CRMBRIDGE_LONG=1.
func TestAmoCRMDeliveryLatency(t *testing.T) {
	if os.Getenv("CRMBRIDGE_LONG") == "" {
		t.Skip("set CRMBRIDGE_LONG=1: it runs at amoCRM's real pace")
	}
	const n = 20
	f := newFakes(t)
	cfg := engine.Config{
		Channels: []engine.ChannelConfig{{ID: f.ch, Kind: channel.WhatsApp, Name: "Sales", Pipeline: "7001", Stage: "70012",
			Features: routing.Features{Capacity: n, WhenNobody: routing.QueueWhenNobody}}},
		Roles: []roles.Assignment{
			{User: "501", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
			{User: "502", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
		},
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(f.env[envConfig], data, 0o600); err != nil {
		t.Fatal(err)
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	b, _ := startBridge(t, f.env, startOptions{amoLimiter: lim})
	ctx := t.Context()
	for i := range n {
		if err := f.wazzup.PostMessages(ctx, b.baseURL+wazzupPath, f.message("m-"+strconv.Itoa(i), "7916123"+strconv.Itoa(4000+i), "Hello")); err != nil {
			t.Fatal(err)
		}
	}
	leads := f.amo.Leads()
	if len(leads) != n {
		t.Fatalf("%d leads, want %d", len(leads), n)
	}
	form := url.Values{}
	for i, l := range leads {
		closeLead(t, f, l.ID)
		k := func(field string) string { return "leads[status][" + strconv.Itoa(i) + "][" + field + "]" }
		form.Set(k("id"), strconv.Itoa(l.ID))
		form.Set(k("status_id"), "142")
		form.Set(k("pipeline_id"), strconv.Itoa(l.Pipeline))
		form.Set(k("old_status_id"), strconv.Itoa(l.Status))
	}
	lim.SetLimit(7) // amoCRM's pace from here on
	f.amo.ResetCounts()
	start := time.Now()
	resp, err := http.Post(b.baseURL+amocrmPath+"?secret="+testAmoSecret, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	answered := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("amoCRM webhook: %d", resp.StatusCode)
	}
	flushRefreshes(t, b)
	t.Logf("one delivery of %d won leads: answered %d in %v; applied after %v; %d amoCRM requests",
		n, resp.StatusCode, answered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), f.amo.TotalRequests())
}
