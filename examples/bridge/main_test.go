package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
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

// output collects what the program prints and lets a test wait for a line.
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

// wait returns the first submatch of re once the output matches it.
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

var listening = regexp.MustCompile(`listening on (http://[0-9.:]+);`)

// TestRunDemo runs the program as `go run ./examples/bridge` does, with an
// empty environment, and checks what it prints.
func TestRunDemo(t *testing.T) {
	out := newOutput()
	if err := run(t.Context(), nil, envOf(nil), out); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	got := out.String()
	for _, want := range []string{
		"no credentials given: demo against a fake amoCRM",
		// 1: a new client on the round-robin channel goes to 501.
		"outcome:     new_client\n    created:     contact",
		"responsible: 501\n    notify:      501 (new client: assigned by round_robin)",
		// 2: the second message of the streak goes to the deal's responsible.
		"outcome:     open_deal",
		"unanswered streak already has task",
		// 3: the retried webhook has no second effect.
		"new_client (a redelivery: nothing done again)",
		// 4: the first-responder channel offers the chat to both.
		"responsible: nobody yet: the first to reply wins",
		"502 (new client: offered, the first reply claims it)",
		// 5: the reply claims the chat and completes the task.
		"claimed:     yes: the chat is now 502's",
		// 6: the echo of the engine's own send has no second effect.
		"echo of a message the engine sent: already applied",
		// 7: the loser is refused, naming the winner.
		"winner:      502",
		`as CRM user 502: "Yes! Come for a test drive tomorrow?"`,
		"fake Wazzup: 1 API requests, 1 messages delivered",
		"stopped\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

// TestDemoEffects runs the demo script and checks what reached the fake
// servers rather than what was printed.
func TestDemoEffects(t *testing.T) {
	s, err := loadSettings(nil, envOf(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	out := newOutput()
	b, err := start(t.Context(), s, newReport(out))
	if err != nil {
		t.Fatal(err)
	}
	defer b.shutdown()
	if err := b.demo(t.Context()); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}

	leads := b.fakeAmo.Leads()
	if len(leads) != 2 {
		t.Fatalf("leads = %+v, want 2 (one per new client, none for the retry)", leads)
	}
	water, cars := leads[0], leads[1]
	if water.Pipeline != 7001 || water.Status != 70012 || water.Responsible != 501 {
		t.Errorf("water lead = %+v, want pipeline 7001, status 70012, responsible 501", water)
	}
	// The claim accepts the Unsorted entry, which moves the lead to the
	// pipeline's first ordinary stage (see crm/amocrm).
	if cars.Pipeline != 7002 || cars.Status != 70022 || cars.Responsible != 502 {
		t.Errorf("car lead = %+v, want pipeline 7002, accepted from Unsorted to 70022, responsible 502 (the claimer)", cars)
	}
	if u := b.fakeAmo.Unsorted(); len(u) != 1 || u[0].Lead != cars.ID {
		t.Errorf("unsorted entries = %+v, want one for lead %d", u, cars.ID)
	}
	if c := b.fakeAmo.Contacts(); len(c) != 2 || c[0].Name != "Anna" || c[1].Name != "Boris" {
		t.Errorf("contacts = %+v, want Anna and Boris", c)
	}

	tasks := b.out.createdTasks()
	if len(tasks) != 2 {
		t.Fatalf("tasks = %v, want one per unanswered streak (2)", tasks)
	}
	var completed []bool
	for _, id := range tasks {
		n, err := strconv.Atoi(string(id))
		if err != nil {
			t.Fatal(err)
		}
		task, ok := b.fakeAmo.Task(n)
		if !ok {
			t.Fatalf("task %s not in the fake", id)
		}
		completed = append(completed, task.Completed)
	}
	if completed[0] || !completed[1] {
		t.Errorf("tasks completed = %v, want Anna's open (nobody answered) and Boris's completed (502 replied)", completed)
	}

	sent := b.fakeWazzup.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent = %+v, want the one reply", sent)
	}
	want := wazzuptest.SentMessage{ChannelID: s.Config.Channels[1].ID, ChatType: "whatsapp", ChatID: "79035550101",
		Text: "Yes! Come for a test drive tomorrow?", CrmUserID: "502", CrmMessageID: "demo-out-1"}
	got := sent[0]
	got.MessageID, got.Time, got.ClearUnanswered = "", time.Time{}, nil
	if got != want {
		t.Errorf("sent %+v, want %+v", got, want)
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

const testHookKey = "test-webhook-key"

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
		envAmoBaseURL:    f.amo.URL(),
		envAmoToken:      f.amo.Token(),
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
func startBridge(t *testing.T, env map[string]string) (*bridge, *output) {
	t.Helper()
	s, err := loadSettings(nil, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Demo {
		t.Fatal("credentials given, but the demo was selected")
	}
	out := newOutput()
	b, err := start(t.Context(), s, newReport(out))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, out
}

// TestWebhookPolicy checks what Wazzup hears back for each kind of event,
// and that a failed event is finished by its redelivery without doubling.
func TestWebhookPolicy(t *testing.T) {
	f := newFakes(t)
	b, out := startBridge(t, f.env)
	hook := b.baseURL + webhookPath
	ctx := t.Context()

	// An unknown channel cannot get better: acknowledged with 200.
	bad := f.message("m-bad", "79160000001", "hi")
	bad.ChannelID = "no-such-channel"
	if err := f.wazzup.PostMessages(ctx, hook, bad); err != nil {
		t.Errorf("unknown channel: %v, want 200 (acknowledged)", err)
	}
	if !strings.Contains(out.String(), "rejected:") || !strings.Contains(out.String(), "unknown channel") {
		t.Errorf("unknown channel not reported:\n%s", out)
	}

	// The CRM fails while creating the deal: 500, so Wazzup delivers again.
	f.amo.FailNext("POST /api/v4/leads/complex", 1, http.StatusInternalServerError)
	m := f.message("m-1", "79161234567", "Hello")
	err := f.wazzup.PostMessages(ctx, hook, m)
	if we, ok := errors.AsType[*wazzuptest.WebhookError](err); !ok || we.Status != http.StatusInternalServerError {
		t.Fatalf("CRM failure: %v, want a 500 answer", err)
	}
	if !strings.Contains(out.String(), "failed:") {
		t.Errorf("failure not reported:\n%s", out)
	}
	// The redelivery finishes the work: one contact, one deal.
	if err := f.wazzup.PostMessages(ctx, hook, m); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if err := f.wazzup.PostMessages(ctx, hook, m); err != nil {
		t.Fatalf("second redelivery: %v", err)
	}
	if leads, contacts := f.amo.Leads(), f.amo.Contacts(); len(leads) != 1 || len(contacts) != 1 || leads[0].Responsible != 501 {
		t.Errorf("after redeliveries: leads %+v, contacts %+v; want one each, for 501", leads, contacts)
	}
	if n := strings.Count(out.String(), "a redelivery: nothing done again"); n != 1 {
		t.Errorf("%d duplicates reported, want 1:\n%s", n, out)
	}

	// An echo by an employee the CRM cannot name, in a chat with no open
	// task, and a status are acknowledged without any CRM request.
	before := f.amo.TotalRequests()
	echo := f.message("m-echo", "79161234567", "typed on the phone")
	echo.IsEcho, echo.Status = true, "sent"
	if err := f.wazzup.PostMessages(ctx, hook, echo); err != nil {
		t.Errorf("echo: %v, want 200", err)
	}
	if err := f.wazzup.PostStatus(ctx, hook, "m-echo", "delivered"); err != nil {
		t.Errorf("status: %v, want 200", err)
	}
	if got := f.amo.TotalRequests(); got != before {
		t.Errorf("echo and status made %d CRM requests, want none", got-before)
	}
	if s := out.String(); !strings.Contains(s, "an employee the CRM cannot name") || !strings.Contains(s, "status of sent message m-echo: delivered") {
		t.Errorf("echo or status not reported:\n%s", s)
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
	if !strings.Contains(out.String(), "level=WARN msg=\"wazzup webhook: rejected\" status=401") {
		t.Errorf("the refused request was not logged:\n%s", out)
	}
	if err := f.wazzup.PostTest(ctx, hook); err != nil {
		t.Errorf("subscription test with the key: %v", err)
	}
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
		if r.Method == http.MethodGet && r.URL.Path == "/api/v4/contacts" {
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
	out := newOutput()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(f.env), out) }()
	base := out.wait(t, listening)
	out.wait(t, regexp.MustCompile(`(serving until SIGINT or SIGTERM)`))

	posted := make(chan error, 1)
	go func() {
		posted <- f.wazzup.PostMessages(context.Background(), base+webhookPath, f.message("m-1", "79161234567", "Hello"))
	}()
	select {
	case <-entered: // the webhook is being processed: the engine waits on the CRM
	case <-time.After(waitFor):
		t.Fatal("the webhook never reached the CRM")
	}
	cancel() // SIGTERM
	out.wait(t, regexp.MustCompile(`(shutting down)`))
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
	if !strings.HasSuffix(out.String(), "stopped\n") {
		t.Errorf("output does not end with stopped:\n%s", out)
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
	out := newOutput()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(f.env), out) }()
	base := out.wait(t, listening)
	posted := make(chan error, 1)
	go func() {
		posted <- f.wazzup.PostMessages(context.Background(), base+webhookPath, f.message("m-1", "79161234567", "Hello"))
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
	out := newOutput()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve"}, envOf(map[string]string{envAddr: "127.0.0.1:0"}), out) }()
	base := out.wait(t, listening)
	out.wait(t, regexp.MustCompile(`(serving until SIGINT or SIGTERM)`))

	resp, err := http.Get(base + "/healthz")
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
	if !strings.Contains(out.String(), "what reached the fake servers") {
		t.Errorf("the demo did not run before serving:\n%s", out)
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
		timeout time.Duration
		wantErr []string // substrings of the error
	}{
		{name: "nothing: demo", demo: true, addr: defaultDemoAddr, timeout: defaultShutdownTimeout},
		{name: "demo -serve", args: []string{"-serve"}, demo: true, addr: defaultServeAddr, timeout: defaultShutdownTimeout},
		{name: "demo on a chosen address", env: map[string]string{envAddr: "127.0.0.1:9999"}, demo: true, addr: "127.0.0.1:9999", timeout: defaultShutdownTimeout},
		{name: "credentials", env: creds(nil), addr: defaultServeAddr, timeout: defaultShutdownTimeout},
		{name: "shutdown timeout", env: creds(map[string]string{envShutdownTimeout: "3s"}), addr: defaultServeAddr, timeout: 3 * time.Second},
		{name: "bad shutdown timeout", env: creds(map[string]string{envShutdownTimeout: "soon"}), wantErr: []string{envShutdownTimeout}},
		{name: "negative shutdown timeout", env: creds(map[string]string{envShutdownTimeout: "-1s"}), wantErr: []string{envShutdownTimeout}},
		{name: "token missing", env: creds(map[string]string{envAmoToken: ""}), wantErr: []string{"missing " + envAmoToken}},
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
			s, err := loadSettings(tt.args, envOf(tt.env), &bytes.Buffer{})
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
			if s.Demo != tt.demo || s.Addr != tt.addr || s.ShutdownTimeout != tt.timeout {
				t.Errorf("got demo %v, addr %q, timeout %v; want %v, %q, %v", s.Demo, s.Addr, s.ShutdownTimeout, tt.demo, tt.addr, tt.timeout)
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
	s, err := loadSettings(nil, envOf(f.env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}

	bad := s
	bad.Config.Channels = []engine.ChannelConfig{{ID: f.ch, Kind: channel.WhatsApp, Pipeline: "7001", Stage: "142"}}
	if _, err := start(t.Context(), bad, newReport(&bytes.Buffer{})); !errors.Is(err, routing.ErrInvalid) {
		t.Errorf("a won stage for new deals: %v, want an error matching routing.ErrInvalid", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := s
	busy.Addr = ln.Addr().String()
	if _, err := start(t.Context(), busy, newReport(&bytes.Buffer{})); err == nil || !strings.Contains(err.Error(), envAddr) {
		t.Errorf("a busy address: %v, want an error naming %s", err, envAddr)
	}
}
