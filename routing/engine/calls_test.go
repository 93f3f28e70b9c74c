package engine_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// TestCRMCallsPerEvent prints the table of CRM calls each kind of event
// costs on the in-memory fake, and checks each against its target.
func TestCRMCallsPerEvent(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"8 916 123-45-67"}, Responsible: anna})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	ret := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "returning"}}, Responsible: anna})
	old := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: anna, Contacts: []crm.ContactID{ret.ID}})
	if err := fx.crm.CloseDeal(old.ID, crm.DealWon); err != nil {
		t.Fatal(err)
	}

	var table strings.Builder
	fmt.Fprintf(&table, "%-58s %5s  %s\n", "event", "calls", "by method")
	count := func(name string, want int, ev func()) {
		t.Helper()
		fx.crm.ResetCalls()
		ev()
		got := fx.crm.TotalCalls()
		fmt.Fprintf(&table, "%-58s %5d  %v\n", name, got, fx.crm.CallCounts())
		if got > want {
			t.Errorf("%s: %d CRM calls; target <= %d (%v)", name, got, want, fx.crm.CallCounts())
		}
	}
	// First message ever seen from a known client: lookup + deals, then a
	// look for an open task of the engine's (the state may be fresh after a
	// restart) before creating one.
	count("known client, first event (lookup, deals, look, task)", 4, func() { fx.mustIn(fx.in(wa, "79161234567", "1")) })
	count("live chat, warm", 0, func() { fx.mustIn(fx.in(wa, "79161234567", "2")) })
	fx.clock.Advance(10 * time.Minute) // the client record goes stale
	count("live chat, record stale", 1, func() { fx.mustIn(fx.in(wa, "79161234567", "3")) })
	count("new client, WhatsApp first responder, tasks on", 3, func() { fx.mustIn(fx.in(wa, "79990000001", "hi")) })
	var rr engine.InboundResult
	count("new client, Telegram round robin, tasks on", 3, func() { rr = fx.mustIn(fx.in(tg, "tg-new", "hi")) })
	count("streak: 9 more messages after the first", 0, func() {
		for range 9 {
			fx.mustIn(fx.in(tg, "tg-new", "more"))
		}
	})
	count("employee reply closing the task", 1, func() { fx.mustOut(fx.out(rr.Responsible, tg, "tg-new", "answer")) })
	count("first reply claiming an offered chat, closing its task", 2, func() { fx.mustOut(fx.out(anna, wa, "79990000001", "hello")) })
	count("returning client, new-deal policy, owner follows, tasks on", 6, func() {
		if r := fx.mustIn(fx.in(tg, "returning", "hi")); r.Outcome != engine.OutcomeReturningNewDeal {
			t.Fatalf("outcome %v; want returning_new_deal", r.Outcome)
		}
	})
	count("reset of the unread counter closing the task", 1, func() {
		if _, err := fx.engine.ResetUnread(t.Context(), engine.UnreadReset{User: sam, Chat: channel.Chat{Channel: tg, ChatID: "returning"}}); err != nil {
			t.Fatal(err)
		}
	})
	count("group chat message", 0, func() {
		m := fx.in(wa, "group-1", "hi")
		m.Group = true
		fx.mustIn(m)
	})
	t.Logf("CRM calls per event (in-memory fake):\n%s", table.String())
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
	fx := newFixture(t, func(c *engine.Config, o *engine.Options) {
		c.Global.ExpandSalesbotLinks = true
		o.Links = exp
	})
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	short := target.URL + "/4823"
	r, err := fx.engine.SalesbotMessage(t.Context(), engine.SalesbotMessage{ID: fx.id(), Chat: chat, Text: "Каталог: " + short + " и " + target.URL + "/dead"})
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
	fx2 := newFixture(t, func(c *engine.Config, o *engine.Options) { o.Links = exp })
	if _, err := fx2.engine.SalesbotMessage(t.Context(), engine.SalesbotMessage{ID: "s1", Chat: chat, Text: short}); err != nil {
		t.Fatal(err)
	}
	if got := fx2.sent.Sent()[0].Text; got != short {
		t.Errorf("with the setting off, sent %q; want the short link unchanged", got)
	}
}

// TestEngineJournalMemory measures, end to end, what the engine's in-memory
// journal costs per remembered message: live-chat messages through
// ClientMessage over many chats, then the memory returned once they
// expire and are purged. 100k messages over 10k chats by default; 1M
// messages over 100k chats with CRMBRIDGE_LONG=1.
func TestEngineJournalMemory(t *testing.T) {
	chats, perChat := 10_000, 10
	if os.Getenv("CRMBRIDGE_LONG") == "1" {
		chats = 100_000
	}
	if raceEnabled {
		chats /= 10
	}
	n := chats * perChat
	state := &engine.MemoryState{}
	fx := newFixture(t, func(c *engine.Config, o *engine.Options) {
		c.Global.UnansweredTasks.Enabled = false
		o.CacheTTL = 24 * time.Hour
		o.State = state
	})
	state.Now = fx.clock.Now
	ctx := t.Context()
	ids := make([]string, chats)
	for i := range chats {
		ids[i] = fmt.Sprintf("7916%07d", i)
		chat := channel.Chat{Channel: wa, ChatID: ids[i]}
		l, err := state.Lock(ctx, chat, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rec := engine.ClientRecord{Contact: crm.ContactID(fmt.Sprint(10_000_000 + i)), Deal: crm.DealID(fmt.Sprint(20_000_000 + i)),
			Responsible: anna, Fetched: fx.clock.Now()}
		if err := state.PutClient(ctx, l, rec); err != nil {
			t.Fatal(err)
		}
		if err := state.Unlock(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	msgIDs := make([]string, n) // allocated before the baseline: the host owns its IDs
	for i := range msgIDs {
		msgIDs[i] = fmt.Sprintf("wamid.%016x", i)
	}
	before := heapAlloc()
	m := fx.in(wa, ids[0], "hi")
	for i := range n {
		m.ID, m.Chat.ChatID = msgIDs[i], ids[i%chats]
		r, err := fx.engine.ClientMessage(ctx, m)
		if err != nil || r.Outcome != engine.OutcomeOpenDeal {
			t.Fatalf("message %d: %v, %v; want open_deal", i, r.Outcome, err)
		}
	}
	after := heapAlloc()
	_, remembered, leases := state.Len()
	if remembered != n || leases != 0 {
		t.Fatalf("journal holds %d messages and %d leases; want %d and 0", remembered, leases, n)
	}
	per := float64(int64(after)-int64(before)) / float64(n)
	t.Logf("journal: %.0f bytes per remembered message (%d messages over %d chats)", per, n, chats)
	// The bound includes the map's and the FIFO's growth slack, which
	// depend on where n falls between two doublings.
	if per > 100 {
		t.Errorf("%.0f bytes per remembered message; target <= 100", per)
	}
	if fx.crm.TotalCalls() != 0 {
		t.Errorf("live chats cost %d CRM calls; want 0", fx.crm.TotalCalls())
	}

	fx.clock.Advance(73 * time.Hour)
	for {
		k, err := state.Purge(ctx, fx.clock.Now().Add(-72*time.Hour), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	purged := heapAlloc()
	_, remembered, _ = state.Len()
	t.Logf("after expiry and Purge: %d messages remembered, heap %+.1f MB against the baseline", remembered, float64(int64(purged)-int64(before))/1e6)
	if remembered != 0 {
		t.Errorf("%d messages remembered after expiry; want 0", remembered)
	}
	if grown := int64(purged) - int64(before); grown > int64(n)*10 {
		t.Errorf("heap after purge is %d bytes above the baseline; want the journal's memory returned", grown)
	}
	runtime.KeepAlive(msgIDs)
}

func heapAlloc() uint64 {
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
	b.ResetTimer()
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
