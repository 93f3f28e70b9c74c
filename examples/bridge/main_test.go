package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// waitFor bounds every wait of these tests on the program's progress.
const waitFor = 10 * time.Second

// envOf returns an environment lookup over m, for run's env parameter.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// output collects what the program writes and lets a test wait for a line.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return n, err
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// wait returns the last submatch of re once the output matches it.
func (o *output) wait(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		o.mu.Lock()
		m := re.FindStringSubmatch(o.buf.String())
		ch := o.changed
		o.mu.Unlock()
		if m != nil {
			return m[len(m)-1]
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("output never matched %v:\n%s", re, o.String())
		}
	}
}

// records returns the JSON log records whose msg is msg.
func (o *output) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(o.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

var (
	listening = regexp.MustCompile(`"msg":"listening","addr":"(http://[0-9.:]+)"`)
	serving   = regexp.MustCompile(`("msg":"serving until SIGINT or SIGTERM")`)
)

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestRunDemo runs the program as `go run .` does, with an empty
// environment, and checks what it prints and logs.
func TestRunDemo(t *testing.T) {
	stdout, logs := newOutput(), newOutput()
	if err := run(t.Context(), nil, envOf(nil), stdout, logs); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, stdout, logs)
	}
	got := stdout.String()
	for _, want := range []string{
		`"claimed":true,"responsible":"502"`,
		`403 {"error":"engine: 501 (manager) may not write`,
		`"winner":"502"`,
		"notification to 501: new client: assigned by round_robin (client_message)",
		"notification to 502: responsible for the open deal (client_message)",
		"Wazzup's window shows Boris's chat to [502]; the rules allow [502]",
		`as CRM user 502: "Yes! Come for a test drive tomorrow?"`,
		"fake Wazzup: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if r := logs.records(t, "stopped"); len(r) != 1 {
		t.Errorf("the log does not end with stopped")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nlogs:\n%s", got, logs)
	}
}

// startDemo starts the demo bridge and stops it at the end of the test.
func startDemo(t *testing.T) (*bridge, *output) {
	t.Helper()
	s, err := loadSettings(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := newOutput()
	b, err := startWith(t.Context(), s, testLogger(logs), io.Discard, startOptions{notifyBackoff: noBackoff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, logs
}

func noBackoff(int) time.Duration { return 0 }

// TestDemoEffects runs the demo script and checks what reached the fakes
// and the notifications' receiver rather than what was printed.
func TestDemoEffects(t *testing.T) {
	b, logs := startDemo(t)
	if err := b.demo(t.Context()); err != nil {
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	leads := b.fakeAmo.Leads()
	if len(leads) != 2 {
		t.Fatalf("leads = %+v, want 2 (one per new client; none for the retry or the group)", leads)
	}
	water, cars := leads[0], leads[1]
	if water.Pipeline != 7001 || water.Status != 70012 || water.Responsible != 502 {
		t.Errorf("water lead = %+v, want pipeline 7001, status 70012, responsible 502 (handed over in amoCRM)", water)
	}
	// The claim accepts the Unsorted entry, which moves the lead to the
	// pipeline's first ordinary stage (see crm/amocrm).
	if cars.Pipeline != 7002 || cars.Status != 70022 || cars.Responsible != 502 {
		t.Errorf("car lead = %+v, want pipeline 7002, accepted from Unsorted to 70022, responsible 502 (the claimer)", cars)
	}
	if c := b.fakeAmo.Contacts(); len(c) != 2 || c[0].Name != "Anna" || c[1].Name != "Boris" {
		t.Errorf("contacts = %+v, want Anna and Boris", c)
	}

	// Tasks: Anna's is open (nobody answered), Boris's completed by 502.
	var completed []bool
	for _, r := range logs.records(t, "client message") {
		if r["task_created"] != true {
			continue
		}
		n, _ := strconv.Atoi(r["task"].(string))
		task, ok := b.fakeAmo.Task(n)
		if !ok {
			t.Fatalf("task %v not in the fake", r["task"])
		}
		completed = append(completed, task.Completed)
	}
	if len(completed) != 2 || completed[0] || !completed[1] {
		t.Errorf("tasks completed = %v, want [false true]", completed)
	}

	// The group message: logged with outcome group, nothing notified.
	var group int
	for _, r := range logs.records(t, "client message") {
		if r["outcome"] == string(engine.OutcomeGroup) {
			group++
			if r["notify"] != 0.0 || r["contact"] != "" {
				t.Errorf("group message record = %v, want no contact and nobody notified", r)
			}
		}
	}
	if group != 1 {
		t.Errorf("%d group messages logged, want 1", group)
	}

	// Notifications reached the outgoing webhook, once each (the retried
	// Wazzup webhook notified nobody again).
	var got []string
	for _, n := range b.inbox.notifications() {
		got = append(got, n.User+" "+n.Reason)
	}
	want := []string{
		"501 new client: assigned by round_robin",
		"501 responsible for the open deal",
		"501 new client: offered, the first reply claims it",
		"502 new client: offered, the first reply claims it",
		"502 responsible for the open deal", // after the amoCRM webhook
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Wazzup: both contacts pushed with their owner; Boris's chat shown to
	// 502 only, as the rules say.
	wc := b.fakeWazzup.Contacts()
	if len(wc) != 2 || wc[0].ResponsibleUserID != "502" || wc[1].ResponsibleUserID != "502" {
		t.Errorf("wazzup contacts = %+v, want Anna's and Boris's, both 502's", wc)
	}
	boris := channel.Chat{Channel: b.s.Config.Channels[1].ID, ChatID: "79035550101"}
	if v := b.fakeWazzup.Viewers(boris); strings.Join(v, ",") != "502" {
		t.Errorf("wazzup shows Boris's chat to %v, want [502]", v)
	}

	sent := b.fakeWazzup.Sent()
	if len(sent) != 1 || sent[0].CrmUserID != "502" || sent[0].CrmMessageID != "demo-out-1" {
		t.Errorf("sent = %+v, want the one reply of 502", sent)
	}

	// Metrics: the engine's, the CRM's and the bridge's own.
	resp, err := http.Get(b.baseURL + metricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`crmbridge_engine_events_total{`,
		`crmbridge_crm_calls_total{`,
		`crmbridge_channel_sends_total{`,
		`crmbridge_bridge_notifications_total{`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}

// fakes are a fake amoCRM and a fake Wazzup with one round-robin WhatsApp
// channel, and the environment of a bridge given "credentials" for them.
type fakes struct {
	amo    *amocrmtest.Server
	wazzup *wazzuptest.Server
	ch     channel.ID
	env    map[string]string
}

const (
	testHookKey   = "test-webhook-key"
	testAPIKey    = "test-api-key"
	testAmoSecret = "test-amocrm-secret"
)

func newFakes(t *testing.T) *fakes {
	t.Helper()
	f := &fakes{ch: "11111111-2222-4333-8444-555555555555"}
	f.amo = amocrmtest.NewServer(amocrmtest.Options{})
	t.Cleanup(f.amo.Close)
	f.wazzup = wazzuptest.NewServer(wazzuptest.Options{CRMKey: testHookKey,
		Channels: []wazzuptest.Channel{{ID: f.ch, Transport: "whatsapp", PlainID: "79000000009"}}})
	t.Cleanup(f.wazzup.Close)

	cfg := engine.Config{
		Channels: []engine.ChannelConfig{{ID: f.ch, Kind: channel.WhatsApp, Name: "Sales", Pipeline: "7001", Stage: "70012"}},
		Roles: []roles.Assignment{
			{User: "501", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
			{User: "502", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "routing.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f.env = map[string]string{
		envAddr:          "127.0.0.1:0",
		envConfig:        path,
		envAPIKey:        testAPIKey,
		envAmoBaseURL:    f.amo.URL(),
		envAmoToken:      f.amo.Token(),
		envAmoHookSecret: testAmoSecret,
		envWazzupAPIKey:  f.wazzup.APIKey,
		envWazzupBaseURL: f.wazzup.URL,
		envWazzupHookKey: testHookKey,
	}
	return f
}

// message is a client's WhatsApp message as Wazzup posts it.
func (f *fakes) message(id, chatID, text string) wazzuptest.WebhookMessage {
	return wazzuptest.WebhookMessage{MessageID: id, ChannelID: string(f.ch), ChatType: "whatsapp", ChatID: chatID,
		Type: "text", Status: "inbound", Text: text}
}

// startBridge starts the bridge on env and stops it at the end of the test.
func startBridge(t *testing.T, env map[string]string, so startOptions) (*bridge, *output) {
	t.Helper()
	s, err := loadSettings(nil, envOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.Demo {
		t.Fatal("credentials given, but the demo was selected")
	}
	if so.batchWindow == 0 {
		so.batchWindow = demoBatchWindow
	}
	so.amoRate = rate.Inf // the fake has no limit
	logs := newOutput()
	b, err := startWith(t.Context(), s, testLogger(logs), io.Discard, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, logs
}

// TestWebhookPolicy checks what Wazzup hears back for each kind of event,
// and that a failed event is finished by its redelivery without doubling.
func TestWebhookPolicy(t *testing.T) {
	f := newFakes(t)
	b, logs := startBridge(t, f.env, startOptions{})
	hook := b.baseURL + wazzupPath
	ctx := t.Context()

	// An unknown channel cannot get better: acknowledged with 200.
	bad := f.message("m-bad", "79160000001", "hi")
	bad.ChannelID = "no-such-channel"
	if err := f.wazzup.PostMessages(ctx, hook, bad); err != nil {
		t.Errorf("unknown channel: %v, want 200 (acknowledged)", err)
	}
	if r := logs.records(t, "wazzup message rejected by the engine (acknowledged)"); len(r) != 1 {
		t.Errorf("unknown channel not logged:\n%s", logs)
	}
	// An item the decoder cannot read is logged, its neighbour processed.
	if err := f.wazzup.PostWebhook(ctx, hook, map[string]any{"messages": []any{"not an object"}}); err != nil {
		t.Errorf("rejected item: %v, want 200", err)
	}
	if r := logs.records(t, "wazzup item rejected"); len(r) != 1 || r[0]["item"] != "messages[0]" {
		t.Errorf("rejected item logged as %v", r)
	}

	// The CRM fails while creating the deal: 500, so Wazzup delivers again.
	// crmbatch looks for the deal after a failed create and sends it
	// again once: fail both.
	f.amo.FailNext("POST /api/v4/leads/complex", 2, http.StatusInternalServerError)
	m := f.message("m-1", "79161234567", "Hello")
	err := f.wazzup.PostMessages(ctx, hook, m)
	if we, ok := errors.AsType[*wazzuptest.WebhookError](err); !ok || we.Status != http.StatusInternalServerError {
		t.Fatalf("CRM failure: %v, want a 500 answer", err)
	}
	// The redeliveries finish the work: one contact, one deal.
	for range 2 {
		if err := f.wazzup.PostMessages(ctx, hook, m); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
	}
	if leads, contacts := f.amo.Leads(), f.amo.Contacts(); len(leads) != 1 || len(contacts) != 1 || leads[0].Responsible != 501 {
		t.Errorf("after redeliveries: leads %+v, contacts %+v; want one each, for 501", leads, contacts)
	}
	dups := 0
	for _, r := range logs.records(t, "client message") {
		if r["duplicate"] == true {
			dups++
		}
	}
	if dups != 1 {
		t.Errorf("%d duplicates logged, want 1", dups)
	}
	if c := f.wazzup.Contacts(); len(c) != 1 || c[0].ResponsibleUserID != "501" {
		t.Errorf("wazzup contacts = %+v, want the client, 501's", c)
	}

	// A group message creates nothing.
	before := len(f.amo.Leads())
	if _, err := f.wazzup.GroupWrites(ctx, hook, f.ch, "79132123789-1581764243", "Gleb", "hi all"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.amo.Leads()); n != before {
		t.Errorf("a group message created %d leads", n-before)
	}

	// An echo typed on the phone by someone the CRM cannot name, and a
	// status: acknowledged.
	echo := f.message("m-echo", "79161234567", "typed on the phone")
	echo.IsEcho, echo.Status = true, "sent"
	if err := f.wazzup.PostMessages(ctx, hook, echo); err != nil {
		t.Errorf("echo: %v, want 200", err)
	}
	if err := f.wazzup.PostStatus(ctx, hook, "m-echo", "delivered"); err != nil {
		t.Errorf("status: %v, want 200", err)
	}
	if r := logs.records(t, "wazzup status"); len(r) != 1 || r[0]["status"] != "delivered" {
		t.Errorf("status logged as %v", r)
	}

	// Without the bearer key Wazzup's requests are refused.
	resp, err := http.Post(hook, "application/json", strings.NewReader(`{"test":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("webhook without the key: %d, want 401", resp.StatusCode)
	}
	if err := f.wazzup.PostTest(ctx, hook); err != nil {
		t.Errorf("subscription test with the key: %v", err)
	}
}

// postJSON posts v to url with the bearer key and returns the status and
// the decoded answer.
func postJSON(t *testing.T, url, key string, v any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, ans
}

// TestReplies checks the employees' endpoint: its key, its answers, and
// that a retry with the same ID sends nothing again.
func TestReplies(t *testing.T) {
	f := newFakes(t)
	b, _ := startBridge(t, f.env, startOptions{})
	url := b.baseURL + repliesPath
	if err := f.wazzup.PostMessages(t.Context(), b.baseURL+wazzupPath, f.message("m-1", "79161234567", "Hello")); err != nil {
		t.Fatal(err)
	}
	ok := replyRequest{ID: "r-1", User: "501", Channel: string(f.ch), ChatID: "79161234567", Text: "Hi!"}

	if s, _ := postJSON(t, url, "", ok); s != http.StatusUnauthorized {
		t.Errorf("without the key: %d, want 401", s)
	}
	if s, _ := postJSON(t, url, testAPIKey, map[string]string{"id": "x", "usr": "501"}); s != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", s)
	}
	noText := ok
	noText.ID, noText.Channel = "r-0", "no-such-channel"
	if s, _ := postJSON(t, url, testAPIKey, noText); s != http.StatusBadRequest {
		t.Errorf("unknown channel: %d, want 400", s)
	}
	other := ok
	other.ID, other.User = "r-2", "502"
	if s, ans := postJSON(t, url, testAPIKey, other); s != http.StatusForbidden {
		t.Errorf("502 writing to 501's client: %d %v, want 403", s, ans)
	}
	for i, wantDup := range []bool{false, true} {
		s, ans := postJSON(t, url, testAPIKey, ok)
		if s != http.StatusOK || ans["duplicate"] != wantDup || ans["outcome"] != "sent" {
			t.Errorf("reply %d: %d %v, want 200, sent, duplicate %v", i, s, ans, wantDup)
		}
	}
	if n := len(f.wazzup.Sent()); n != 1 {
		t.Errorf("wazzup sent %d messages, want 1", n)
	}
}

// TestAmoCRMWebhook: a deal handed over in amoCRM reaches the engine at the
// chat's next message when amoCRM's webhook reports it; without the
// webhook the engine trusts its record (CacheTTL).
func TestAmoCRMWebhook(t *testing.T) {
	f := newFakes(t)
	b, logs := startBridge(t, f.env, startOptions{})
	ctx, hook := t.Context(), b.baseURL+wazzupPath
	amo, err := amocrm.New(amocrm.Options{BaseURL: f.amo.URL(), Tokens: amocrm.StaticToken(f.amo.Token()), RateLimit: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	// Two new clients: round robin gives one to 501, the other to 502.
	for i, chat := range []string{"79161234567", "79161234568"} {
		if err := f.wazzup.PostMessages(ctx, hook, f.message("m-"+strconv.Itoa(i), chat, "Hello")); err != nil {
			t.Fatal(err)
		}
	}
	leads := f.amo.Leads()
	if len(leads) != 2 || leads[0].Responsible != 501 || leads[1].Responsible != 502 {
		t.Fatalf("leads = %+v", leads)
	}
	// In amoCRM, each deal is handed to the other manager.
	for _, l := range leads {
		to := map[int]string{501: "502", 502: "501"}[l.Responsible]
		if err := amo.SetResponsible(ctx, crmDeal(l.ID), crmUser(to)); err != nil {
			t.Fatal(err)
		}
	}
	// Only the first deal's change is reported.
	form := url.Values{
		"leads[responsible][0][id]":                      {strconv.Itoa(leads[0].ID)},
		"leads[responsible][0][responsible_user_id]":     {"502"},
		"leads[responsible][0][old_responsible_user_id]": {"501"},
	}
	post := func(secret string) int {
		resp, err := http.Post(b.baseURL+amocrmPath+"?secret="+secret, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("wrong"); s != http.StatusForbidden {
		t.Errorf("wrong secret: %d, want 403", s)
	}
	if s := post(testAmoSecret); s != http.StatusOK {
		t.Fatalf("amoCRM webhook: %d", s)
	}
	flushRefreshes(t, b)
	for i, chat := range []string{"79161234567", "79161234568"} {
		if err := f.wazzup.PostMessages(ctx, hook, f.message("again-"+strconv.Itoa(i), chat, "Anyone?")); err != nil {
			t.Fatal(err)
		}
	}
	var got []any
	for _, r := range logs.records(t, "client message") {
		if strings.HasPrefix(r["message"].(string), "again-") {
			got = append(got, r["responsible"])
		}
	}
	if len(got) != 2 || got[0] != "502" || got[1] != "502" {
		t.Errorf("responsible after the handover = %v, want [502 (re-read after the webhook) 502 (the cached record: no webhook)]", got)
	}
	if r := logs.records(t, "amocrm event"); len(r) != 1 || r[0]["chats_to_refresh"] != 1.0 || r[0]["chats_invalidated"] != 0.0 {
		t.Errorf("amocrm event logged as %v, want one chat to refresh", r)
	}
	if r := logs.records(t, "chat refreshed"); len(r) != 1 || r[0]["outcome"] != "responsible_changed" || r[0]["responsible"] != "502" {
		t.Errorf("chat refreshed logged as %v, want the handover to 502", r)
	}
}

// TestHealth: the health check reports the store and the CRM token.
func TestHealth(t *testing.T) {
	f := newFakes(t)
	var broken failingTokens
	b, _ := startBridge(t, f.env, startOptions{tokens: &broken})
	get := func() (int, map[string]any) {
		resp, err := http.Get(b.baseURL + healthPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans map[string]any
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans
	}
	if s, ans := get(); s != http.StatusOK || ans["store"] != "memory" {
		t.Errorf("healthy: %d %v", s, ans)
	}
	broken.set(amocrm.ErrReauthorize)
	s, ans := get()
	checks, _ := ans["checks"].(map[string]any)
	if s != http.StatusServiceUnavailable || checks["state"] != "ok" || !strings.Contains(checks["crm_token"].(string), "authorized again") {
		t.Errorf("token revoked: %d %v, want 503 naming the token", s, ans)
	}
}

// failingTokens is the long-lived test token until set makes it fail.
type failingTokens struct {
	mu  sync.Mutex
	err error
}

func (f *failingTokens) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

func (f *failingTokens) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return amocrmtest.DefaultToken, f.err
}

// blockingProxy sits in front of the fake amoCRM and holds the first
// contact search until release is closed, so that a webhook stays in
// flight as long as a test needs.
func blockingProxy(t *testing.T, amo *amocrmtest.Server) (proxyURL string, entered <-chan struct{}, release func()) {
	t.Helper()
	target, err := url.Parse(amo.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	in, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/v4/contacts" && r.URL.Query().Get("query") != "" {
			first := false
			once.Do(func() { first = true })
			if first {
				close(in)
				<-rel
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var releaseOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(rel) }) }
	t.Cleanup(release) // runs before srv.Close
	return srv.URL, in, release
}

// TestSignalShutsDownGracefully runs the program serving with credentials,
// cancels its context while a webhook is in flight (what SIGTERM does in
// main), and checks that the webhook is still answered 200 and applied,
// that run returns nil, and that the port is closed.
func TestSignalShutsDownGracefully(t *testing.T) {
	f := newFakes(t)
	proxyURL, entered, release := blockingProxy(t, f.amo)
	f.env[envAmoBaseURL] = proxyURL

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := newOutput()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(f.env), io.Discard, logs) }()
	base := logs.wait(t, listening)
	logs.wait(t, serving)

	posted := make(chan error, 1)
	go func() {
		posted <- f.wazzup.PostMessages(context.Background(), base+wazzupPath, f.message("m-1", "79161234567", "Hello"))
	}()
	select {
	case <-entered: // the webhook is being processed: the engine waits on the CRM
	case <-time.After(waitFor):
		t.Fatal("the webhook never reached the CRM")
	}
	cancel() // SIGTERM
	logs.wait(t, regexp.MustCompile(`("msg":"shutting down")`))
	release()

	if err := <-posted; err != nil {
		t.Errorf("the webhook in flight during shutdown: %v, want 200", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(waitFor):
		t.Fatal("run did not return after cancellation")
	}
	if leads := f.amo.Leads(); len(leads) != 1 {
		t.Errorf("leads = %+v, want the one deal of the webhook in flight", leads)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped record:\n%s", logs)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://")); err == nil {
		c.Close()
		t.Error("the port still accepts connections after run returned")
	}
}

// TestShutdownTimeout: a request still running when BRIDGE_SHUTDOWN_TIMEOUT
// expires is cut, and run reports it.
func TestShutdownTimeout(t *testing.T) {
	f := newFakes(t)
	proxyURL, entered, _ := blockingProxy(t, f.amo) // never released during the test
	f.env[envAmoBaseURL] = proxyURL
	f.env[envShutdownTimeout] = "50ms"

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := newOutput()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(f.env), io.Discard, logs) }()
	base := logs.wait(t, listening)
	posted := make(chan error, 1)
	go func() {
		posted <- f.wazzup.PostMessages(context.Background(), base+wazzupPath, f.message("m-1", "79161234567", "Hello"))
	}()
	select {
	case <-entered:
	case <-time.After(waitFor):
		t.Fatal("the webhook never reached the CRM")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("run: %v, want a shutdown error matching context.DeadlineExceeded", err)
		}
	case <-time.After(waitFor):
		t.Fatal("run did not return after the shutdown timeout")
	}
	if err := <-posted; err == nil {
		t.Error("the cut webhook was answered 200; Wazzup would not deliver it again")
	}
}

// TestDemoServe runs the demo with -serve: it keeps serving after the
// script until the context is cancelled.
func TestDemoServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, logs := newOutput(), newOutput()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-serve"}, envOf(map[string]string{envAddr: "127.0.0.1:0"}), stdout, logs)
	}()
	base := logs.wait(t, listening)
	logs.wait(t, serving)

	resp, err := http.Get(base + healthPath)
	if err != nil {
		t.Fatalf("healthz after the demo: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("run did not return after cancellation")
	}
	if !strings.Contains(stdout.String(), "what reached the fakes") {
		t.Errorf("the demo did not run before serving:\n%s", stdout)
	}
}

func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, demoConfigJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.json")
	if err := os.WriteFile(typo, []byte(`{"channels": [], "rolez": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := func(extra map[string]string) map[string]string {
		m := map[string]string{envAmoBaseURL: "https://example.amocrm.ru", envAmoToken: "t", envWazzupAPIKey: "k", envConfig: good}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		demo    bool
		addr    string
		dsn     string
		timeout time.Duration
		// refreshTimeout 0: defaultRefreshTimeout
		refreshTimeout time.Duration
		wantErr        []string // substrings of the error
	}{
		{name: "nothing: demo", demo: true, addr: defaultDemoAddr, timeout: defaultShutdownTimeout},
		{name: "demo -serve", args: []string{"-serve"}, demo: true, addr: defaultServeAddr, timeout: defaultShutdownTimeout},
		{name: "demo on a chosen address", env: map[string]string{envAddr: "127.0.0.1:9999"}, demo: true, addr: "127.0.0.1:9999", timeout: defaultShutdownTimeout},
		{name: "credentials", env: creds(nil), addr: defaultServeAddr, timeout: defaultShutdownTimeout},
		{name: "dsn from the environment", env: creds(map[string]string{envPGDSN: "postgres://a"}), addr: defaultServeAddr, dsn: "postgres://a", timeout: defaultShutdownTimeout},
		{name: "dsn flag wins", args: []string{"-dsn", "postgres://b"}, env: creds(map[string]string{envPGDSN: "postgres://a"}), addr: defaultServeAddr, dsn: "postgres://b", timeout: defaultShutdownTimeout},
		{name: "shutdown timeout", env: creds(map[string]string{envShutdownTimeout: "3s"}), addr: defaultServeAddr, timeout: 3 * time.Second},
		{name: "bad shutdown timeout", env: creds(map[string]string{envShutdownTimeout: "soon"}), wantErr: []string{envShutdownTimeout}},
		{name: "refresh shutdown timeout", env: creds(map[string]string{envRefreshTimeout: "30s"}), addr: defaultServeAddr, timeout: defaultShutdownTimeout, refreshTimeout: 30 * time.Second},
		{name: "bad refresh shutdown timeout", env: creds(map[string]string{envRefreshTimeout: "-1s"}), wantErr: []string{envRefreshTimeout}},
		{name: "negative tick", env: creds(map[string]string{envTick: "-1s"}), wantErr: []string{envTick}},
		{name: "bad log level", env: creds(map[string]string{envLogLevel: "loud"}), wantErr: []string{envLogLevel}},
		{name: "relative notify URL", env: creds(map[string]string{envNotifyURL: "/hook"}), wantErr: []string{envNotifyURL}},
		{name: "token missing", env: creds(map[string]string{envAmoToken: ""}), wantErr: []string{"missing " + envAmoToken, envAmoClientID}},
		{name: "oauth", env: creds(map[string]string{envAmoToken: "", envAmoClientID: "i", envAmoClientSecret: "s", envAmoRedirectURI: "https://x/cb"}), addr: defaultServeAddr, timeout: defaultShutdownTimeout},
		{name: "oauth without its secret", env: creds(map[string]string{envAmoToken: "", envAmoClientID: "i", envAmoRedirectURI: "https://x/cb"}), wantErr: []string{"missing " + envAmoClientSecret}},
		{name: "token and oauth", env: creds(map[string]string{envAmoClientID: "i"}), wantErr: []string{envAmoToken + " and the OAuth settings"}},
		{name: "only a code", env: map[string]string{envAmoAuthCode: "c"}, wantErr: []string{envAmoBaseURL, envAmoClientID}},
		{name: "only the Wazzup key", env: map[string]string{envWazzupAPIKey: "k"}, wantErr: []string{envAmoBaseURL + ", " + envAmoToken}},
		{name: "config missing", env: creds(map[string]string{envConfig: ""}), wantErr: []string{"missing " + envConfig}},
		{name: "config unreadable", env: creds(map[string]string{envConfig: filepath.Join(dir, "none.json")}), wantErr: []string{envConfig, "no such file"}},
		{name: "config with an unknown field", env: creds(map[string]string{envConfig: typo}), wantErr: []string{envConfig, `unknown field "rolez"`}},
		{name: "config without credentials", env: map[string]string{envConfig: good}, wantErr: []string{envConfig + " is set"}},
		{name: "stray argument", args: []string{"now"}, wantErr: []string{"unexpected arguments"}},
		{name: "unknown flag", args: []string{"-demo"}, wantErr: []string{"not defined"}},
		{name: "help", args: []string{"-h"}, wantErr: []string{flag.ErrHelp.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadSettings(tt.args, envOf(tt.env), io.Discard)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one mentioning %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Demo != tt.demo || s.Addr != tt.addr || s.ShutdownTimeout != tt.timeout || s.DSN != tt.dsn {
				t.Errorf("got demo %v, addr %q, timeout %v, dsn %q; want %v, %q, %v, %q",
					s.Demo, s.Addr, s.ShutdownTimeout, s.DSN, tt.demo, tt.addr, tt.timeout, tt.dsn)
			}
			if want := cmp.Or(tt.refreshTimeout, defaultRefreshTimeout); s.RefreshShutdownTimeout != want {
				t.Errorf("refresh shutdown timeout %v, want %v", s.RefreshShutdownTimeout, want)
			}
			if len(s.Config.Channels) != 2 {
				t.Errorf("config has %d channels, want the 2 of demo-config.json", len(s.Config.Channels))
			}
		})
	}
}

// TestStartErrors: a configuration the CRM refuses, and a busy address,
// stop the program before it serves, with errors naming the cause.
func TestStartErrors(t *testing.T) {
	f := newFakes(t)
	s, err := loadSettings(nil, envOf(f.env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(io.Discard)

	bad := s
	bad.Config.Channels = []engine.ChannelConfig{{ID: f.ch, Kind: channel.WhatsApp, Pipeline: "7001", Stage: "142"}}
	if _, err := start(t.Context(), bad, log, io.Discard); !errors.Is(err, routing.ErrInvalid) {
		t.Errorf("a won stage for new deals: %v, want an error matching routing.ErrInvalid", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := s
	busy.Addr = ln.Addr().String()
	if _, err := start(t.Context(), busy, log, io.Discard); err == nil || !strings.Contains(err.Error(), envAddr) {
		t.Errorf("a busy address: %v, want an error naming %s", err, envAddr)
	}
}

func crmDeal(id int) crm.DealID    { return crm.DealID(strconv.Itoa(id)) }
func crmUser(id string) crm.UserID { return crm.UserID(id) }

// TestTickEscalates: Engine.Tick, run by the bridge's timer, passes a
// client nobody answered to the next manager, notifies them through the
// outgoing webhook and pushes the new owner to Wazzup.
func TestTickEscalates(t *testing.T) {
	f := newFakes(t)
	in := newInbox()
	t.Cleanup(in.srv.Close)
	f.env[envNotifyURL] = in.srv.URL
	cfg := engine.Config{
		Channels: []engine.ChannelConfig{{ID: f.ch, Kind: channel.WhatsApp, Pipeline: "7001", Stage: "70012",
			Features: routing.Features{Escalation: routing.Escalation{After: routing.Duration(time.Minute)}}}},
		Roles: []roles.Assignment{
			{User: "501", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
			{User: "502", Channel: f.ch, Role: roles.Manager, ReceivesNewClients: true},
		},
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(f.env[envConfig], data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, logs := startBridge(t, f.env, startOptions{notifyBackoff: noBackoff})
	if err := f.wazzup.PostMessages(t.Context(), b.baseURL+wazzupPath, f.message("m-1", "79161234567", "Hello")); err != nil {
		t.Fatal(err)
	}
	b.tick(t.Context(), time.Now().Add(2*time.Minute))
	if err := b.notifier.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range in.notifications() {
		got = append(got, n.Event+" "+n.User)
	}
	if strings.Join(got, ", ") != "client_message 501, escalation 502" {
		t.Errorf("notifications = %v, want the new client to 501, then its escalation to 502", got)
	}
	if l := f.amo.Leads(); len(l) != 1 || l[0].Responsible != 502 {
		t.Errorf("leads = %+v, want the deal handed to 502", l)
	}
	if c := f.wazzup.Contacts(); len(c) != 1 || c[0].ResponsibleUserID != "502" {
		t.Errorf("wazzup contacts = %+v, want the client pushed as 502's", c)
	}
	if t.Failed() {
		t.Log(logs)
	}
}

// TestOAuth: with the OAuth integration's keys, the authorization code is
// exchanged at the first start, the bridge works on the tokens it got, and
// without a code and with nothing stored it refuses to start, saying what
// to give.
func TestOAuth(t *testing.T) {
	f := newFakes(t)
	delete(f.env, envAmoToken)
	f.env[envAmoClientID] = amocrmtest.DefaultClientID
	f.env[envAmoClientSecret] = amocrmtest.DefaultClientSecret
	f.env[envAmoRedirectURI] = amocrmtest.DefaultRedirectURI

	s, err := loadSettings(nil, envOf(f.env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := start(t.Context(), s, testLogger(io.Discard), io.Discard); !errors.Is(err, amocrm.ErrReauthorize) || !strings.Contains(err.Error(), envAmoAuthCode) {
		t.Errorf("no code, nothing stored: %v, want ErrReauthorize naming %s", err, envAmoAuthCode)
	}

	f.env[envAmoAuthCode] = f.amo.AuthorizationCode()
	b, _ := startBridge(t, f.env, startOptions{})
	if err := f.wazzup.PostMessages(t.Context(), b.baseURL+wazzupPath, f.message("m-1", "79161234567", "Hello")); err != nil {
		t.Fatal(err)
	}
	if l := f.amo.Leads(); len(l) != 1 {
		t.Errorf("leads = %+v, want the new client's deal, made with the OAuth tokens", l)
	}
	resp, err := http.Get(b.baseURL + healthPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health with OAuth tokens: %d", resp.StatusCode)
	}
}

// TestHelpHidesDSN: -h prints the flags' defaults; the DSN from the
// environment, which may hold a password, is not one of them.
func TestHelpHidesDSN(t *testing.T) {
	var out bytes.Buffer
	_, err := loadSettings([]string{"-h"}, envOf(map[string]string{envPGDSN: "postgres://u:s3cret@db/x"}), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("-h printed the DSN:\n%s", &out)
	}
}
