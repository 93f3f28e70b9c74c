package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// setReceives returns cfg with user's "receives new clients" on ch set.
func setReceives(cfg engine.Config, user crm.UserID, ch channel.ID, on bool) engine.Config {
	cfg.Roles = slices.Clone(cfg.Roles)
	for i, a := range cfg.Roles {
		if a.User == user && a.Channel == ch {
			cfg.Roles[i].ReceivesNewClients = on
		}
	}
	return cfg
}

// Settings updated while events run: each event sees the old or the new
// configuration, the rotation continues, and offers in flight stay valid.
func TestUpdateWhileRunning(t *testing.T) {
	fx := newFixture(t)
	// An offer made before the updates: anna and boris on wa.
	offered := fx.mustIn(fx.in(wa, "79160000001", "hi"))
	if len(offered.Notify) != 2 {
		t.Fatalf("offer = %v; want anna and boris", notified(offered.Notify))
	}
	base := testConfig()
	withVera, withoutVera := setReceives(base, vera, tg, true), setReceives(base, vera, tg, false)

	var wg sync.WaitGroup
	const clients = 200
	results := make([]engine.InboundResult, clients)
	for i := range clients {
		m := fx.in(tg, fmt.Sprintf("live-%03d", i), "hi")
		wg.Go(func() {
			r, err := fx.engine.ClientMessage(t.Context(), m)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Go(func() {
		for i := range 100 {
			cfg := withVera
			if i%2 == 1 {
				cfg = withoutVera
			}
			if err := fx.engine.Update(cfg, nil); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for _, r := range results {
		if r.Responsible != boris && r.Responsible != vera {
			t.Errorf("%s went to %q; want boris or vera", r.Chat, r.Responsible)
		}
		if r.Distribution == nil {
			t.Fatalf("%s: no distribution", r.Chat)
		}
		// One configuration per event: eligible is {boris, vera} or {boris}.
		el := r.Distribution.Why.Eligible
		if !slices.Equal(el, []crm.UserID{boris, vera}) && !slices.Equal(el, []crm.UserID{boris}) {
			t.Errorf("%s: eligible %v; want one whole configuration's", r.Chat, el)
		}
	}

	// The rotation continues: the next pick's position follows the last.
	if err := fx.engine.Update(withVera, nil); err != nil {
		t.Fatal(err)
	}
	next := fx.mustIn(fx.in(tg, "after-updates", "hi"))
	if pos := next.Distribution.Why.Position; pos != clients+1 {
		t.Errorf("rotation position after the updates = %d; want %d", pos, clients+1)
	}

	// The offer made before the updates is still claimable by boris, even
	// though he no longer receives new clients on wa.
	if err := fx.engine.Update(setReceives(withVera, boris, wa, false), nil); err != nil {
		t.Fatal(err)
	}
	if out := fx.mustOut(fx.out(boris, wa, "79160000001", "hello")); !out.Claimed {
		t.Errorf("boris's reply to the earlier offer = %+v; want a claim", out)
	}

	// A channel added while running takes events at once.
	added := withVera
	added.Channels = append(slices.Clone(added.Channels), engine.ChannelConfig{ID: "vk", Kind: channel.VK, Pipeline: "10", Stage: "101"})
	added.Roles = append(slices.Clone(added.Roles), roles.Assignment{User: vera, Channel: "vk", Role: roles.Manager, ReceivesNewClients: true})
	if err := fx.engine.Update(added, nil); err != nil {
		t.Fatal(err)
	}
	if r := fx.mustIn(fx.in("vk", "id123", "hi")); r.Responsible != vera {
		t.Errorf("first client of the added channel went to %q; want vera", r.Responsible)
	}

	// A bad update changes nothing.
	bad := withVera
	bad.Channels = slices.Clone(bad.Channels)
	bad.Channels[0].Stage = "142"
	if err := fx.engine.Update(bad, nil); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("bad update: err = %v; want ErrInvalid", err)
	}
	if got := fx.engine.Config().Channels[0].Stage; got != "100" {
		t.Errorf("stage after a refused update = %q; want 100", got)
	}
}

// New costs no CRM call when the host passes the catalog, and refuses a
// role for a user the CRM does not have, naming it.
func TestNewCatalogAndUsers(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	cat := testCatalog(t)
	if _, err := engine.New(t.Context(), engine.Options{CRM: f, Sender: channeltest.NewRecorder(), Config: testConfig(), Catalog: &cat}); err != nil {
		t.Fatal(err)
	}
	if n := f.TotalCalls(); n != 0 {
		t.Errorf("New with a catalog made %d CRM calls; want 0", n)
	}
	cfg := testConfig()
	cfg.Roles = append(cfg.Roles, roles.Assignment{User: "999", Channel: wa, Role: roles.Manager})
	_, err := engine.New(t.Context(), engine.Options{CRM: f, Sender: channeltest.NewRecorder(), Config: cfg, Catalog: &cat})
	ce, ok := errors.AsType[*engine.ConfigError](err)
	if !ok || ce.Field != fmt.Sprintf("roles[%d].user", len(cfg.Roles)-1) || ce.Value != "999" || !errors.Is(err, routing.ErrInvalid) {
		t.Errorf("role for an unknown user: %v; want a ConfigError naming roles[%d].user \"999\"", err, len(cfg.Roles)-1)
	}
	f.ResetCalls()
	if _, err := engine.New(t.Context(), engine.Options{CRM: f, Sender: channeltest.NewRecorder(), Config: engine.Config{}}); err != nil {
		t.Fatal(err)
	}
	if n := f.TotalCalls(); n != 2 {
		t.Errorf("New without a catalog made %d CRM calls; want 2 (users, pipelines)", n)
	}
	for name, opt := range map[string]engine.Options{
		"Options.CRM":    {Sender: channeltest.NewRecorder()},
		"Options.Sender": {CRM: f},
	} {
		if _, err := engine.New(t.Context(), opt); !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("missing %s: %v; want a ConfigError naming it", name, err)
		}
	}
}

type recordingObserver struct {
	mu     sync.Mutex
	events []engine.EventInfo
}

func (o *recordingObserver) Event(_ context.Context, info engine.EventInfo) {
	o.mu.Lock()
	o.events = append(o.events, info)
	o.mu.Unlock()
}

// The logger gets one record per event with the documented attributes and
// no message text or phone; the observer gets the same events.
func TestLoggerAndObserver(t *testing.T) {
	var buf bytes.Buffer
	obs := &recordingObserver{}
	fx := newFixture(t, func(_ *engine.Config, o *engine.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Observer = obs
	})
	m := fx.in(tg, "tg-client", "my secret text")
	m.Phone = "+79161234567"
	r := fx.mustIn(m)
	fx.mustOut(fx.out(r.Responsible, tg, "tg-client", "another secret"))
	if _, err := fx.engine.EmployeeMessage(t.Context(), fx.out(quinn, tg, "tg-client", "x")); err == nil {
		t.Fatal("quality control wrote")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || len(obs.events) != 3 {
		t.Fatalf("%d log records, %d observed events; want 3 each:\n%s", len(lines), len(obs.events), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "ClientMessage", "channel": "tg", "chat": "tg-client", "outcome": "new_client", "rule": "round_robin"} {
		if first[k] != want {
			t.Errorf("log attribute %s = %v; want %v", k, first[k], want)
		}
	}
	if _, ok := first["duration"]; !ok {
		t.Error("log record has no duration")
	}
	if s := buf.String(); strings.Contains(s, "secret") || strings.Contains(s, "9161234567") {
		t.Errorf("log leaks message text or phone:\n%s", s)
	}
	if e := obs.events[2]; e.Type != "EmployeeMessage" || !errors.Is(e.Err, engine.ErrForbidden) || !strings.Contains(lines[2], `"level":"WARN"`) {
		t.Errorf("refused event: %+v, %s; want the error observed and a warning logged", e, lines[2])
	}
	if e := obs.events[0]; e.Outcome != engine.OutcomeNewClient || e.Rule != routing.RuleRoundRobin || e.Duration <= 0 || e.Duplicate {
		t.Errorf("observed %+v; want outcome, rule and duration", e)
	}
	fx.mustIn(m)
	if e := obs.events[3]; !e.Duplicate || !strings.Contains(buf.String(), `"duplicate":true`) {
		t.Errorf("redelivery observed as %+v; want Duplicate, and logged so", e)
	}
}

// Many engines in one process (one per account): with the catalog given,
// creating them costs no CRM call. BenchmarkManyEngines measures the
// memory each takes.
func TestManyEngines(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	rec := channeltest.NewRecorder()
	cat := testCatalog(t)
	cfg := testConfig()
	const n = 100
	for range n {
		if _, err := engine.New(t.Context(), engine.Options{CRM: f, Sender: rec, Config: cfg, Catalog: &cat}); err != nil {
			t.Fatal(err)
		}
	}
	if c := f.TotalCalls(); c != 0 {
		t.Errorf("creating %d engines made %d CRM calls; want 0", n, c)
	}
}

// BenchmarkManyEngines measures the heap an idle engine keeps
// (B/engine): the test configuration (2 channels, 9 roles) and its
// catalog, with its default in-memory stores, over 1,000 engines per op
// (10,000 with CRMBRIDGE_LONG=1). In the same run it measures the
// baseline, an engine with an empty configuration and catalog made the
// same way (B/empty-engine), and reports the ratio (x-empty-engine): what
// an account's settings add to the engine's fixed cost. Each op creates
// both sets of engines; its time is not a target. Run:
//
//	go test -run '^$' -bench ManyEngines -benchtime 3x ./routing/engine
func BenchmarkManyEngines(b *testing.B) {
	n := 1_000
	if os.Getenv("CRMBRIDGE_LONG") == "1" {
		n = 10_000
	}
	f := crmtest.NewSeeded(nil)
	rec := channeltest.NewRecorder()
	cat := testCatalog(b)
	cfg := testConfig()
	perEngine := func(opt engine.Options) float64 {
		es := make([]*engine.Engine, n)
		before := heapAlloc()
		for i := range es {
			e, err := engine.New(b.Context(), opt)
			if err != nil {
				b.Fatal(err)
			}
			es[i] = e
		}
		after := heapAlloc()
		runtime.KeepAlive(es)
		return float64(int64(after)-int64(before)) / float64(n)
	}
	var full, empty float64
	for b.Loop() {
		full += perEngine(engine.Options{CRM: f, Sender: rec, Config: cfg, Catalog: &cat})
		empty += perEngine(engine.Options{CRM: f, Sender: rec, Catalog: &engine.Catalog{}})
	}
	if c := f.TotalCalls(); c != 0 {
		b.Errorf("creating the engines made %d CRM calls; want 0", c)
	}
	b.ReportMetric(full/float64(b.N), "B/engine")
	b.ReportMetric(empty/float64(b.N), "B/empty-engine")
	b.ReportMetric(full/empty, "x-empty-engine")
}
