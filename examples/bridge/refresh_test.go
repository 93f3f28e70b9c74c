package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm/amocrm"
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
	capacityConfig(t, f)
	b, logs := startBridge(t, f.env, startOptions{})
	ctx := t.Context()
	leads := threeClients(t, f, b)
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

// capacityConfig writes a configuration where each of 501 and 502 holds
// one client at most and the others wait in the queue.
func capacityConfig(t *testing.T, f *fakes) {
	t.Helper()
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
}

// postAmo posts an amoCRM webhook body to the bridge and returns the
// answer's status and Retry-After.
func postAmo(t *testing.T, b *bridge, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.Post(b.baseURL+amocrmPath+"?secret="+testAmoSecret, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// failingWazzup sits in front of the fake Wazzup and answers the next n
// POST /v3/contacts with 401 (an API key refused: Wazzup's common errors
// page), so a push to Wazzup fails.
func failingWazzup(t *testing.T, wz http.Handler) (url string, failNext func(n int)) {
	t.Helper()
	var mu sync.Mutex
	left := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := r.Method == http.MethodPost && r.URL.Path == "/v3/contacts" && left > 0
		if fail {
			left--
		}
		mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"unauthorized","description":"test: key refused"}`)
			return
		}
		wz.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func(n int) { mu.Lock(); left = n; mu.Unlock() }
}

// TestAmoCRMUpdateHandsOver: an account subscribed to deal updates alone
// hears of a handover as leads[update]. The bridge refreshes the chat:
// the client's place under the capacity limit moves to the new owner, and
// the Tick that follows gives the old owner's freed place to the waiting
// client. The new owner's push to Wazzup fails once and is made by the
// retry. The delivery names the deal twice (an update and a responsible
// change arrive together): the chat is refreshed once for it. It runs
// also with no owner recorded as pushed for the chat (as after a first
// push of it that failed): the failed push is made by the retry all the
// same, though the retry finds nothing changed in amoCRM.
func TestAmoCRMUpdateHandsOver(t *testing.T) {
	t.Run("pushed before", func(t *testing.T) { testUpdateHandsOver(t, false) })
	t.Run("never pushed", func(t *testing.T) { testUpdateHandsOver(t, true) })
}

func testUpdateHandsOver(t *testing.T, forgetPushed bool) {
	f := newFakes(t)
	capacityConfig(t, f)
	wzURL, failNext := failingWazzup(t, f.wazzup)
	f.env[envWazzupBaseURL] = wzURL
	b, logs := startBridge(t, f.env, startOptions{refreshBackoff: noBackoff})
	ctx := t.Context()
	leads := threeClients(t, f, b)
	handed, waiting := leads[0], leads[2]
	amo, err := amocrm.New(amocrm.Options{BaseURL: f.amo.URL(), Tokens: amocrm.StaticToken(f.amo.Token()), RateLimit: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	if err := amo.SetResponsible(ctx, crmDeal(handed.ID), "502"); err != nil { // in amoCRM's interface
		t.Fatal(err)
	}

	if forgetPushed {
		b.chats.mu.Lock()
		b.chats.info = map[channel.Chat]chatInfo{}
		b.chats.mu.Unlock()
	}
	failNext(1)
	id := strconv.Itoa(handed.ID)
	form := url.Values{
		"leads[update][0][id]":                           {id},
		"leads[update][0][responsible_user_id]":          {"502"},
		"leads[update][0][status_id]":                    {strconv.Itoa(handed.Status)},
		"leads[update][0][pipeline_id]":                  {strconv.Itoa(handed.Pipeline)},
		"leads[responsible][0][id]":                      {id},
		"leads[responsible][0][responsible_user_id]":     {"502"},
		"leads[responsible][0][old_responsible_user_id]": {"501"},
	}
	if s, _ := postAmo(t, b, form); s != http.StatusOK {
		t.Fatalf("amoCRM webhook: %d", s)
	}
	flushRefreshes(t, b)

	var outcomes []any
	for _, r := range logs.records(t, "chat refreshed") {
		outcomes = append(outcomes, r["outcome"])
	}
	if len(outcomes) != 2 || outcomes[0] != "responsible_changed" || outcomes[1] != "refreshed" {
		t.Errorf("refresh outcomes %v; want [responsible_changed (its push failed) refreshed (the retry)]", outcomes)
	}
	if r := logs.records(t, "amocrm refresh failed"); len(r) != 1 {
		t.Errorf("%d failed refreshes logged, want 1 (the push)", len(r))
	}
	if r := logs.records(t, "wazzup push made again after a failed one"); len(r) != 1 || r[0]["responsible"] != "502" {
		t.Errorf("pushes made again %v; want one, of 502", r)
	}
	if r := logs.records(t, "queue"); len(r) != 1 || r[0]["responsible"] != "501" {
		t.Errorf("handovers from the queue %v; want one, to 501 (the place the handover freed)", r)
	}
	if l, _ := f.amo.Lead(waiting.ID); l.Responsible != 501 {
		t.Errorf("the waiting client's lead is %d's; want 501's", l.Responsible)
	}
	owners := map[string]string{}
	for _, c := range f.wazzup.Contacts() {
		owners[c.ID] = c.ResponsibleUserID
	}
	if got := owners[strconv.Itoa(handed.Contacts[0])]; got != "502" {
		t.Errorf("wazzup shows the handed client as %q's; want 502's (%v)", got, owners)
	}
	if got := owners[strconv.Itoa(waiting.Contacts[0])]; got != "501" {
		t.Errorf("wazzup shows the waiting client as %q's; want 501's (%v)", got, owners)
	}

	// amoCRM delivers the same webhook again: nothing more to do, and
	// nothing is pushed again.
	before := f.wazzup.Requests()
	if s, _ := postAmo(t, b, form); s != http.StatusOK {
		t.Fatalf("amoCRM webhook again: %d", s)
	}
	flushRefreshes(t, b)
	if n := f.wazzup.Requests() - before; n != 0 {
		t.Errorf("the redelivery made %d Wazzup requests, want 0", n)
	}
	if t.Failed() {
		t.Log(logs)
	}
}

// TestAmoCRMQueueFull: while the refresher's queue is full, a delivery
// asking for more is answered 503 with Retry-After, so amoCRM delivers
// it again; delivered again once the queue has room, it is applied.
func TestAmoCRMQueueFull(t *testing.T) {
	f := newFakes(t)
	entered, release := make(chan struct{}, 10), make(chan struct{})
	var once sync.Once
	b, logs := startBridge(t, f.env, startOptions{refreshQueue: 1, refreshHook: func(ctx context.Context, _ channel.Chat) {
		first := false
		once.Do(func() { first = true })
		if first {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	threeClients(t, f, b)
	status := func(l amocrmtest.Lead) url.Values {
		return url.Values{"leads[status][0][id]": {strconv.Itoa(l.ID)}, "leads[status][0][status_id]": {strconv.Itoa(l.Status)},
			"leads[status][0][pipeline_id]": {strconv.Itoa(l.Pipeline)}}
	}
	leads := f.amo.Leads()
	if s, _ := postAmo(t, b, status(leads[0])); s != http.StatusOK {
		t.Fatalf("first delivery: %d", s)
	}
	<-entered // the worker holds the first chat: the queue is empty
	if s, _ := postAmo(t, b, status(leads[1])); s != http.StatusOK {
		t.Fatalf("second delivery (fills the queue): %d", s)
	}
	if s, ra := postAmo(t, b, status(leads[2])); s != http.StatusServiceUnavailable || ra == "" {
		t.Errorf("third delivery: %d, Retry-After %q; want 503 with Retry-After", s, ra)
	}
	if s, _ := postAmo(t, b, status(leads[1])); s != http.StatusOK {
		t.Errorf("the second delivered again (its chat already waits): %d, want 200", s)
	}
	close(release)
	flushRefreshes(t, b)
	if s, _ := postAmo(t, b, status(leads[2])); s != http.StatusOK {
		t.Errorf("third delivered again: %d, want 200", s)
	}
	flushRefreshes(t, b)
	if r := logs.records(t, "chat refreshed"); len(r) != 3 {
		t.Errorf("%d chats refreshed, want 3", len(r))
	}
}

// TestShutdownDrainsRefreshes: the chats amoCRM's webhooks queued are
// refreshed before the bridge's shutdown returns, within a budget of
// their own: even when BRIDGE_SHUTDOWN_TIMEOUT is spent before they start.
func TestShutdownDrainsRefreshes(t *testing.T) {
	t.Run("default", func(t *testing.T) { testShutdownDrainsRefreshes(t, "") })
	t.Run("shutdown timeout spent", func(t *testing.T) { testShutdownDrainsRefreshes(t, "1ns") })
}

func testShutdownDrainsRefreshes(t *testing.T, shutdownTimeout string) {
	f := newFakes(t)
	if shutdownTimeout != "" {
		f.env[envShutdownTimeout] = shutdownTimeout
	}
	s, err := loadSettings(nil, envOf(f.env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}, 10), make(chan struct{})
	var once sync.Once
	logs := newOutput()
	b, err := startWith(t.Context(), s, testLogger(logs), io.Discard, startOptions{batchWindow: demoBatchWindow, amoRate: rate.Inf,
		refreshHook: func(ctx context.Context, _ channel.Chat) {
			first := false
			once.Do(func() { first = true })
			if first {
				entered <- struct{}{}
				<-release
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i, chat := range []string{"79161234567", "79161234568"} {
		if err := f.wazzup.PostMessages(ctx, b.baseURL+wazzupPath, f.message("m-"+strconv.Itoa(i), chat, "Hello")); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range f.amo.Leads() {
		if s, _ := postAmo(t, b, url.Values{"leads[update][0][id]": {strconv.Itoa(l.ID)}}); s != http.StatusOK {
			t.Fatalf("delivery %d: %d", i, s)
		}
		if i == 0 {
			<-entered // the worker holds the first chat; the second waits
		}
	}
	done := make(chan error, 1)
	go func() { done <- b.shutdown() }()
	close(release)
	if err := <-done; err != nil && (shutdownTimeout == "" || strings.Contains(err.Error(), "amoCRM refreshes")) {
		t.Fatalf("shutdown: %v", err) // a spent shutdown timeout may cut the notifier, never the refreshes
	}
	if r := logs.records(t, "chat refreshed"); len(r) != 2 {
		t.Errorf("%d chats refreshed by the end of the shutdown, want 2:\n%s", len(r), logs)
	}
}

// TestAmoCRMRefreshOutlastsOutage: amoCRM refuses the refresher's reads
// for longer than five tries (an HTML 403, as amoCRM answers an API
// access it has blocked: the amocrm package's BlockedError, which its
// client does not retry), then answers again. The refresh of the won
// deal's chat is tried until it passes, so the place it frees goes to the
// waiting client: amoCRM was answered 200 and does not deliver the
// webhook again, and the closed deal's client may never write again.
func TestAmoCRMRefreshOutlastsOutage(t *testing.T) {
	f := newFakes(t)
	capacityConfig(t, f)
	target, err := url.Parse(f.amo.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	refuse := 0 // GETs of amoCRM's API still to refuse
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := refuse > 0 && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v4/")
		if fail {
			refuse--
		}
		mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<html><body>403 Forbidden</body></html>")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.env[envAmoBaseURL] = srv.URL
	b, logs := startBridge(t, f.env, startOptions{refreshBackoff: noBackoff})
	leads := threeClients(t, f, b)
	won, waiting := leads[0], leads[2]
	closeLead(t, f, won.ID)
	mu.Lock()
	refuse = 4 * refreshAlarm
	mu.Unlock()
	form := url.Values{
		"leads[status][0][id]":            {strconv.Itoa(won.ID)},
		"leads[status][0][status_id]":     {strconv.Itoa(amocrmtest.WonStatusID)},
		"leads[status][0][pipeline_id]":   {strconv.Itoa(won.Pipeline)},
		"leads[status][0][old_status_id]": {strconv.Itoa(won.Status)},
	}
	if s, _ := postAmo(t, b, form); s != http.StatusOK {
		t.Fatalf("amoCRM webhook: %d", s)
	}
	flushRefreshes(t, b)
	mu.Lock()
	left := refuse
	mu.Unlock()
	if left != 0 {
		t.Fatalf("%d refusals left: the refresh stopped trying before amoCRM answered again", left)
	}
	if r := logs.records(t, "amocrm refresh still failing; tried again until it passes"); len(r) != 1 {
		t.Errorf("%d alarms logged, want 1 (the fifth failed try)", len(r))
	}
	if r := logs.records(t, "queue"); len(r) != 1 || r[0]["responsible"] != "501" {
		t.Errorf("handovers from the queue %v; want one, to 501 (the won deal's place)", r)
	}
	if l, _ := f.amo.Lead(waiting.ID); l.Responsible != 501 {
		t.Errorf("the waiting client's lead is %d's; want 501's", l.Responsible)
	}
}

// threeClients delivers a first message from three new clients and
// returns the leads made: with capacityConfig, the first two go to 501
// and 502 and the third waits.
func threeClients(t *testing.T, f *fakes, b *bridge) []amocrmtest.Lead {
	t.Helper()
	for i, chat := range []string{"79161234567", "79161234568", "79161234569"} {
		if err := f.wazzup.PostMessages(t.Context(), b.baseURL+wazzupPath, f.message("m-"+strconv.Itoa(i), chat, "Hello")); err != nil {
			t.Fatal(err)
		}
	}
	leads := f.amo.Leads()
	if len(leads) != 3 || leads[0].Responsible != 501 || leads[1].Responsible != 502 {
		t.Fatalf("leads = %+v; want the first two to 501 and 502, the third waiting", leads)
	}
	return leads
}
