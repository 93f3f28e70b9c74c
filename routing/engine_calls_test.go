package routing_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/routing"
)

// TestCRMCallsPerEvent counts the CRM calls each kind of event costs,
// against the targets: live chat ≤ 1 call cold and 0 warm; new client ≤ 3;
// a streak of 10 messages adds no task calls after the first.
func TestCRMCallsPerEvent(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"8 916 123-45-67"}, Responsible: anna})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})

	count := func(name string, want int, ev func()) {
		t.Helper()
		fx.crm.ResetCalls()
		ev()
		got := fx.crm.TotalCalls()
		t.Logf("%-42s %d CRM calls %v", name, got, fx.crm.CallCounts())
		if got > want {
			t.Errorf("%s: %d CRM calls; target ≤ %d (%v)", name, got, want, fx.crm.CallCounts())
		}
	}
	// First message ever seen from a known client: lookup + deals + task.
	count("known client, first event (lookup+deals+task)", 3, func() { fx.mustIn(fx.in(wa, "79161234567", "1")) })
	count("live chat, warm", 0, func() { fx.mustIn(fx.in(wa, "79161234567", "2")) })
	fx.clock.Advance(10 * time.Minute) // the client record goes stale
	count("live chat, cold (record stale)", 1, func() { fx.mustIn(fx.in(wa, "79161234567", "3")) })
	count("new client, WhatsApp, tasks on", 3, func() { fx.mustIn(fx.in(wa, "79990000001", "hi")) })
	var rr routing.InboundResult
	count("new client, Telegram round robin, tasks on", 3, func() { rr = fx.mustIn(fx.in(tg, "tg-new", "hi")) })
	count("streak: 9 more messages after the first", 0, func() {
		for range 9 {
			fx.mustIn(fx.in(tg, "tg-new", "more"))
		}
	})
	count("employee reply closing the task", 1, func() { fx.mustOut(fx.out(rr.Responsible, tg, "tg-new", "answer")) })
}

func TestSalesbotLinkExpansion(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/4823" {
			http.Redirect(w, r, "/catalog/water?utm=bot", http.StatusFound)
			return
		}
		fmt.Fprint(w, "<html><head><title>Water</title></head></html>")
	}))
	defer target.Close()
	host, _, _ := strings.Cut(strings.TrimPrefix(target.URL, "http://"), ":")
	exp := links.NewExpander(links.Options{
		Hosts:      []string{host},
		AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	fx := newFixture(t, func(c *routing.Config, o *routing.EngineOptions) {
		c.Global.ExpandSalesbotLinks = true
		o.Links = exp
	})
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	short := target.URL + "/4823"
	r, err := fx.engine.SalesbotMessage(t.Context(), routing.SalesbotMessage{ID: fx.id(), Chat: chat, Text: "Каталог: " + short + " и " + target.URL + "/dead"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Каталог: " + target.URL + "/catalog/water?utm=bot и " + target.URL + "/dead"
	if got := fx.sent.Sent()[0].Text; got != want {
		t.Errorf("sent %q; want %q", got, want)
	}
	if len(r.Links) != 2 || !r.Links[0].Replaced || r.Links[1].Replaced || r.Links[1].Err == nil {
		t.Errorf("links report = %+v; want the first expanded, the second kept with its error", r.Links)
	}
	if got := fx.sent.Sent()[0].Author.Kind; got != channel.AuthorSalesbot {
		t.Errorf("author = %v; want salesbot", got)
	}

	// The setting off: the text goes out untouched.
	fx2 := newFixture(t, func(c *routing.Config, o *routing.EngineOptions) { o.Links = exp })
	if _, err := fx2.engine.SalesbotMessage(t.Context(), routing.SalesbotMessage{ID: "s1", Chat: chat, Text: short}); err != nil {
		t.Fatal(err)
	}
	if got := fx2.sent.Sent()[0].Text; got != short {
		t.Errorf("with the setting off, sent %q; want the short link unchanged", got)
	}
}

// TestMemoryPerChat measures the engine's in-memory state per tracked chat
// (client record, processed message ID, open streak) over many chats:
// 1M in the long run, 100k under -short.
func TestMemoryPerChat(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	state := &routing.MemoryState{}
	before := heap()
	ctx := t.Context()
	for i := range n {
		chat := channel.Chat{Channel: wa, ChatID: fmt.Sprintf("7916%07d", i)}
		if err := state.PutClient(ctx, chat, routing.ClientRecord{
			Contact: crm.ContactID(fmt.Sprint(10_000_000 + i)), Deal: crm.DealID(fmt.Sprint(20_000_000 + i)),
			Responsible: anna, Fetched: time.Unix(int64(i), 0),
		}); err != nil {
			t.Fatal(err)
		}
		if err := state.PutMessage(ctx, "in\x00wa\x00"+fmt.Sprintf("wamid.%016x", i), routing.MessageRecord{Done: true}); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	per := float64(after-before) / float64(n)
	t.Logf("in-memory engine state: %.0f bytes per tracked chat (client record + one processed message ID), over %d chats", per, n)
	if c, m := state.Len(); c != n || m != n {
		t.Fatalf("state holds %d clients, %d messages; want %d each", c, m, n)
	}
	if per > 2048 {
		t.Errorf("%.0f bytes per chat; budget 2048", per)
	}
	runtime.KeepAlive(state)
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkEngineLiveChat(b *testing.B) {
	fx := newFixture(b)
	ctx := b.Context()
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: anna})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	m := fx.in(wa, "79161234567", "hi")
	if _, err := fx.engine.ClientMessage(ctx, m); err != nil {
		b.Fatal(err)
	}
	fx.crm.ResetCalls()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		m.ID = strconv.Itoa(i) // one allocation of the benchmark's own, included in allocs/op
		if _, err := fx.engine.ClientMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fx.crm.TotalCalls())/float64(b.N), "crm-calls/op")
}

// BenchmarkEngineLiveChatParallel runs the live-chat path over many chats
// from all cores, the throughput that the ≥ 200k msgs/s target is about.
func BenchmarkEngineLiveChatParallel(b *testing.B) {
	fx := newFixture(b)
	ctx := b.Context()
	const chats = 1024
	for i := range chats {
		ph := fmt.Sprintf("+7916%07d", i)
		c := fx.crm.AddContact(crm.Contact{Phones: []string{ph}, Responsible: anna})
		fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
		if _, err := fx.engine.ClientMessage(ctx, fx.in(wa, ph[1:], "hi")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m := fx.in(wa, fmt.Sprintf("7916%07d", i%chats), "more")
			i++
			if _, err := fx.engine.ClientMessage(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkEngineNewClient(b *testing.B) {
	fx := newFixture(b)
	ctx := b.Context()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := fx.engine.ClientMessage(ctx, fx.in(tg, fmt.Sprintf("tg-%d", i), "hi")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fx.crm.TotalCalls())/float64(b.N), "crm-calls/op")
}
