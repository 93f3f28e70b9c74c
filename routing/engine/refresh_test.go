package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// withRotation gives the engine rot, so a test can read the holds.
func withRotation(rot *routing.MemoryRotation) func(*engine.Config, *engine.Options) {
	return func(_ *engine.Config, o *engine.Options) { o.Rotation = rot }
}

// open returns the open clients (holds and unclaimed offers) rot counts
// for each of users on ch.
func open(t *testing.T, rot *routing.MemoryRotation, ch channel.ID, users ...crm.UserID) map[crm.UserID]int {
	t.Helper()
	ms, err := rot.Members(t.Context(), string(ch), users)
	if err != nil {
		t.Fatal(err)
	}
	out := map[crm.UserID]int{}
	for _, m := range ms {
		out[m.User] = m.Open
	}
	return out
}

// refresh calls Refresh and returns its result and the CRM calls it made.
func (fx *fixture) refresh(chat channel.Chat) (engine.RefreshResult, map[string]int) {
	fx.t.Helper()
	fx.crm.ResetCalls()
	r, err := fx.engine.Refresh(fx.t.Context(), chat)
	if err != nil {
		fx.t.Fatalf("Refresh(%s): %v", chat, err)
	}
	return r, fx.crm.CallCounts()
}

func calls(c map[string]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// An offer nobody claims on a first-responder channel with a limit of one
// takes Anna's and Boris's places until its deal is closed in the CRM and
// Refresh is called: the next client waits (queue) or is offered to
// everyone who may write (fallback) before, and is offered within the
// limits after.
func TestRefreshFreesAbandonedOffer(t *testing.T) {
	for _, queue := range []bool{false, true} {
		t.Run(fmt.Sprintf("queue=%v", queue), func(t *testing.T) {
			f := routing.Features{Capacity: 1}
			if queue {
				f.WhenNobody = routing.QueueWhenNobody
			}
			rot := &routing.MemoryRotation{}
			fx := newFixture(t, withFeatures(wa, f), withRotation(rot))
			abandoned := fx.mustIn(fx.in(wa, "79160000001", "hi"))
			if !slices.Equal(notified(abandoned.Notify), []crm.UserID{anna, boris}) {
				t.Fatalf("first client notifies %v; want anna and boris", notified(abandoned.Notify))
			}
			blocked := fx.mustIn(fx.in(wa, "79160000002", "hi"))
			switch d := blocked.Distribution; {
			case d == nil:
				t.Fatalf("second client: no distribution: %+v", blocked)
			case queue && blocked.Outcome != engine.OutcomeQueued:
				t.Fatalf("second client: outcome %s; want queued (anna and boris hold the abandoned offer)", blocked.Outcome)
			case !queue && d.Why.Fallback == nil:
				t.Fatalf("second client: %s; want the fallback offer (anna and boris hold the abandoned offer)", d)
			}

			// Still open in the CRM: Refresh changes nothing, in one request.
			r, c := fx.refresh(abandoned.Chat)
			if r.Outcome != engine.OutcomeRefreshed || calls(c) != 1 {
				t.Errorf("Refresh of the open deal: %s with calls %v; want refreshed in one request", r.Outcome, c)
			}
			if got := open(t, rot, wa, anna, boris); got[anna] != 1 || got[boris] != 1 {
				t.Fatalf("after a Refresh of an open deal: open %v; want the offer still held by both", got)
			}

			if err := fx.crm.CloseDeal(abandoned.Deal, crm.DealLost); err != nil { // status 143
				t.Fatal(err)
			}
			r, c = fx.refresh(abandoned.Chat)
			if r.Outcome != engine.OutcomeForgotten || r.PreviousDeal != abandoned.Deal || r.Deal != "" || r.Contact != abandoned.Contact {
				t.Errorf("Refresh after the close = %+v; want forgotten, deal %s gone", r, abandoned.Deal)
			}
			if !r.Why.Has(engine.StepDealClosed) {
				t.Errorf("explanation %q; want the closed deal named", r.Why)
			}
			// The earlier Refresh left the record stale, as Invalidate
			// does: this read lists the contact's deals at once.
			if c[crmtest.MethodListDeals] != 1 || calls(c) != 1 {
				t.Errorf("Refresh after the close: calls %v; want the contact's deals listed, once", c)
			}
			if _, offered, err := fx.engine.Distributor().ClaimState(t.Context(), abandoned.Chat); err != nil || offered {
				t.Errorf("after Refresh the chat is still offered (%v, %v)", offered, err)
			}
			if queue {
				tr := fx.tick()
				if len(tr.Assigned) != 1 || tr.Assigned[0].Chat != blocked.Chat || !slices.Equal(tr.Assigned[0].Decision.Offered, []crm.UserID{anna, boris}) {
					t.Fatalf("Tick after Refresh = %+v; want the waiting client offered to anna and boris", tr.Assigned)
				}
				if got := open(t, rot, wa, anna, boris); got[anna] != 1 || got[boris] != 1 {
					t.Errorf("after the waiting client's offer: open %v; want 1 each", got)
				}
				return
			}
			if got := open(t, rot, wa, anna, boris); got[anna] != 0 || got[boris] != 0 {
				t.Errorf("after Refresh: open %v; want the places free", got)
			}
			next := fx.mustIn(fx.in(wa, "79160000003", "hi"))
			if d := next.Distribution; d == nil || d.Why.Fallback != nil || !slices.Equal(d.Offered, []crm.UserID{anna, boris}) {
				t.Errorf("next client: %v; want offered to anna and boris within their limits", next.Distribution)
			}
		})
	}
}

// A round-robin client whose deal is closed: its hold is freed, its
// escalation is no longer due, and the freed place takes the next client.
func TestRefreshRoundRobinClosed(t *testing.T) {
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1,
		Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)}}))
	first := fx.mustIn(fx.in(tg, "3001", "hi"))
	second := fx.mustIn(fx.in(tg, "3002", "hi"))
	if first.Responsible != boris || second.Responsible != vera {
		t.Fatalf("first two clients to %s and %s; want boris and vera", first.Responsible, second.Responsible)
	}
	if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil { // status 142
		t.Fatal(err)
	}
	r, c := fx.refresh(first.Chat)
	if r.Outcome != engine.OutcomeForgotten || r.PreviousResponsible != boris {
		t.Errorf("Refresh = %+v; want forgotten (boris's deal)", r)
	}
	if calls(c) != 2 {
		t.Errorf("Refresh of a closed deal: calls %v; want 2", c)
	}
	if got := open(t, rot, tg, boris, vera); got[boris] != 0 || got[vera] != 1 {
		t.Errorf("open %v after Refresh; want boris 0, vera 1", got)
	}
	fx.clock.Advance(10 * time.Minute)
	tr := fx.tick()
	if len(tr.Escalated) != 1 || tr.Escalated[0].Chat != second.Chat || tr.Escalated[0].Responsible != boris {
		t.Errorf("Tick at the deadline escalated %+v; want only the open client %s, passed to boris (his place is free)", tr.Escalated, second.Chat)
	}
	if got := fx.dealResponsible(first.Deal); got != boris {
		t.Errorf("the closed deal passed to %s in the CRM; want it left with boris", got)
	}
	if next := fx.mustIn(fx.in(tg, "3003", "hi")); next.Responsible != vera {
		t.Errorf("next client to %q; want vera (the escalation freed her place)", next.Responsible)
	}
}

// A client waiting in the queue whose deal is closed leaves the queue:
// a place freed later goes to nobody, and the next client gets it.
func TestRefreshQueuedClientLeavesQueue(t *testing.T) {
	fx := newFixture(t, withFeatures(tg, routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}))
	first := fx.mustIn(fx.in(tg, "4001", "hi"))
	fx.mustIn(fx.in(tg, "4002", "hi"))
	waiting := fx.mustIn(fx.in(tg, "4003", "hi"))
	if waiting.Outcome != engine.OutcomeQueued {
		t.Fatalf("third client: %s; want queued", waiting.Outcome)
	}
	if err := fx.crm.CloseDeal(waiting.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	if r, _ := fx.refresh(waiting.Chat); r.Outcome != engine.OutcomeForgotten {
		t.Errorf("Refresh of the waiting client: %s; want forgotten", r.Outcome)
	}
	if q, err := fx.engine.Distributor().Queued(t.Context(), tg, 10); err != nil || len(q) != 0 {
		t.Errorf("queue after Refresh: %v, %v; want empty", q, err)
	}
	if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	if r, _ := fx.refresh(first.Chat); r.Outcome != engine.OutcomeForgotten {
		t.Errorf("Refresh of boris's client: %s; want forgotten", r.Outcome)
	}
	if tr := fx.tick(); len(tr.Assigned) != 0 {
		t.Errorf("Tick assigned %+v; want nobody (the queue is empty)", tr.Assigned)
	}
	if got := fx.dealResponsible(waiting.Deal); got != "" {
		t.Errorf("the closed waiting client's deal went to %s", got)
	}
	if next := fx.mustIn(fx.in(tg, "4004", "hi")); next.Responsible != boris {
		t.Errorf("next client to %q; want boris", next.Responsible)
	}
}

// A deal handed to someone else in the CRM: the hold follows, once; a
// second Refresh has no second effect, and each costs one CRM request.
func TestRefreshResponsibleChanged(t *testing.T) {
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1}))
	first := fx.mustIn(fx.in(tg, "5001", "hi"))
	if first.Responsible != boris {
		t.Fatalf("first client to %s; want boris", first.Responsible)
	}
	if err := fx.crm.SetResponsible(t.Context(), first.Deal, vera); err != nil { // by hand in the CRM
		t.Fatal(err)
	}
	for i, want := range []engine.Outcome{engine.OutcomeResponsibleChanged, engine.OutcomeRefreshed} {
		r, c := fx.refresh(first.Chat)
		if r.Outcome != want || r.Responsible != vera || r.Deal != first.Deal {
			t.Errorf("Refresh %d = %+v; want %s, deal %s of vera", i+1, r, want, first.Deal)
		}
		if calls(c) != 1 {
			t.Errorf("Refresh %d: calls %v; want one request", i+1, c)
		}
		if got := open(t, rot, tg, boris, vera); got[boris] != 0 || got[vera] != 1 {
			t.Errorf("after Refresh %d: open %v; want the hold moved to vera", i+1, got)
		}
	}
	if next := fx.mustIn(fx.in(tg, "5002", "hi")); next.Responsible != boris {
		t.Errorf("next client to %q; want boris (vera holds the handed-over client)", next.Responsible)
	}
	if again := fx.mustIn(fx.in(tg, "5001", "hello?")); again.Responsible != vera || again.Outcome != engine.OutcomeOpenDeal {
		t.Errorf("the handed-over client writes: %s to %s; want open_deal to vera", again.Outcome, again.Responsible)
	}
}

// Refresh twice after a close: the second finds nothing more to do, in
// one request; the distribution is not touched again.
func TestRefreshTwice(t *testing.T) {
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1}))
	first := fx.mustIn(fx.in(tg, "6001", "hi"))
	if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	if r, c := fx.refresh(first.Chat); r.Outcome != engine.OutcomeForgotten || calls(c) > 2 {
		t.Fatalf("first Refresh: %s, calls %v; want forgotten in at most 2 requests", r.Outcome, c)
	}
	// Other clients take vera's place and boris's freed one in between:
	// the second Refresh must not free them.
	if second := fx.mustIn(fx.in(tg, "6002", "hi")); second.Responsible != vera {
		t.Fatalf("second client to %s; want vera", second.Responsible)
	}
	if third := fx.mustIn(fx.in(tg, "6003", "hi")); third.Responsible != boris {
		t.Fatalf("third client to %s; want boris", third.Responsible)
	}
	r, c := fx.refresh(first.Chat)
	if r.Outcome != engine.OutcomeRefreshed || r.PreviousDeal != "" || calls(c) != 1 || c[crmtest.MethodListDeals] != 1 {
		t.Errorf("second Refresh: %+v, calls %v; want refreshed, no known deal, one list of the contact's deals", r, c)
	}
	if got := open(t, rot, tg, boris, vera); got[boris] != 1 || got[vera] != 1 {
		t.Errorf("open clients after the second Refresh: %v; want 1 each (the later clients)", got)
	}
}

// A chat the engine never saw: no CRM request, nothing changes. A chat on
// a channel the configuration does not have is a bad event.
func TestRefreshUnknownChat(t *testing.T) {
	fx := newFixture(t)
	r, c := fx.refresh(channel.Chat{Channel: wa, ChatID: "79169999999"})
	if r.Outcome != engine.OutcomeNoRecord || calls(c) != 0 || !r.Why.Has(engine.StepNoRecord) {
		t.Errorf("Refresh of an unknown chat: %+v, calls %v; want no_record and no CRM request", r, c)
	}
	_, err := fx.engine.Refresh(t.Context(), channel.Chat{Channel: "viber", ChatID: "1"})
	var ee *engine.EventError
	if !errors.As(err, &ee) || !errors.Is(err, engine.ErrUnknownChannel) || !errors.Is(err, engine.ErrBadEvent) || ee.Event != "Refresh" || ee.Field != "Chat.Channel" {
		t.Errorf("Refresh on an unknown channel: %v; want an EventError naming Chat.Channel", err)
	}
	if fx.crm.TotalCalls() != 0 {
		t.Errorf("CRM calls %v; want none", fx.crm.CallCounts())
	}
}

// deleting hides deleted deals, as the CRM does after a deal is deleted
// (GetDeal: not found; the contact's deals: without it).
type deleting struct {
	*crmtest.Fake
	mu      sync.Mutex
	deleted map[crm.DealID]bool
}

func (d *deleting) delete(id crm.DealID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted[id] = true
}

func (d *deleting) gone(id crm.DealID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deleted[id]
}

func (d *deleting) GetDeal(ctx context.Context, id crm.DealID) (crm.Deal, error) {
	deal, err := d.Fake.GetDeal(ctx, id)
	if err == nil && d.gone(id) {
		return crm.Deal{}, fmt.Errorf("deleting: GetDeal %s: %w", id, crm.ErrNotFound)
	}
	return deal, err
}

func (d *deleting) ListDeals(ctx context.Context, c crm.ContactID) ([]crm.Deal, error) {
	ds, err := d.Fake.ListDeals(ctx, c)
	return slices.DeleteFunc(ds, func(x crm.Deal) bool { return d.gone(x.ID) }), err
}

// A deleted deal is forgotten like a closed one; a known deal closed
// while another deal of the contact is open is not: the other counts.
func TestRefreshDeletedOrReplacedDeal(t *testing.T) {
	var del *deleting
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1}), func(_ *engine.Config, o *engine.Options) {
		del = &deleting{Fake: o.CRM.(*crmtest.Fake), deleted: map[crm.DealID]bool{}}
		o.CRM = del
	})
	gone := fx.mustIn(fx.in(tg, "7001", "hi"))
	del.delete(gone.Deal)
	if r, c := fx.refresh(gone.Chat); r.Outcome != engine.OutcomeForgotten || calls(c) != 2 {
		t.Errorf("Refresh of a deleted deal: %s, calls %v; want forgotten in 2 requests", r.Outcome, c)
	}
	if got := open(t, rot, tg, boris); got[boris] != 0 {
		t.Errorf("boris holds %d clients after the deletion; want 0", got[boris])
	}

	kept := fx.mustIn(fx.in(tg, "7002", "hi"))
	owner := kept.Responsible
	other := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: owner, Contacts: []crm.ContactID{kept.Contact}})
	if err := fx.crm.CloseDeal(kept.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.refresh(kept.Chat)
	if r.Outcome != engine.OutcomeRefreshed || r.Deal != other.ID || r.PreviousDeal != kept.Deal {
		t.Errorf("Refresh with another open deal: %+v; want refreshed, deal %s counting", r, other.ID)
	}
	if got := open(t, rot, tg, owner); got[owner] != 1 {
		t.Errorf("%s holds %d clients; want 1 (the client has an open deal)", owner, got[owner])
	}
}

// Without crm.DealGetter the contact's deals are listed: one request,
// closed or not. After Invalidate (a contact's webhook), the deal the
// engine knew is still known, so a later close is still forgotten.
func TestRefreshMinimalCRMAndInvalidate(t *testing.T) {
	var fake *crmtest.Fake
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1}), func(_ *engine.Config, o *engine.Options) {
		fake = o.CRM.(*crmtest.Fake)
		o.CRM = crmtest.Minimal(fake)
	})
	first := fx.mustIn(fx.in(tg, "8001", "hi"))
	if err := fx.engine.Invalidate(t.Context(), first.Chat); err != nil {
		t.Fatal(err)
	}
	if err := fake.CloseDeal(first.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	r, c := fx.refresh(first.Chat)
	if r.Outcome != engine.OutcomeForgotten || calls(c) != 1 || c[crmtest.MethodListDeals] != 1 {
		t.Errorf("Refresh after Invalidate and a close: %s, calls %v; want forgotten, one list", r.Outcome, c)
	}
	if got := open(t, rot, tg, boris); got[boris] != 0 {
		t.Errorf("boris holds %d clients; want 0", got[boris])
	}
	// The record is stale after Refresh: the client's next message lists
	// the deals again, as after Invalidate.
	fx.crm.ResetCalls()
	if again := fx.mustIn(fx.in(tg, "8001", "one more question")); again.Outcome != engine.OutcomeReturningNewDeal {
		t.Errorf("the client writes again: %s; want returning_new_deal", again.Outcome)
	}
	if n := fake.Calls(crmtest.MethodListDeals); n != 1 {
		t.Errorf("the next message listed the deals %d times; want 1", n)
	}
}

// Two Engines on one set of stores refresh the same chat at once, many
// times: exactly one call forgets the client, none fails, and the offer's
// places are free once.
func TestRefreshConcurrentEngines(t *testing.T) {
	fx := newFixture(t)
	cfg := testConfig()
	cfg.Channels[0].Features = routing.Features{Capacity: 1}
	rot := &routing.MemoryRotation{}
	opt := engine.Options{CRM: fx.crm, Sender: fx.sent, Config: cfg, Now: fx.clock.Now,
		State: &engine.MemoryState{Now: fx.clock.Now}, Claims: &routing.MemoryClaims{}, Rotation: rot,
		Queue: &routing.MemoryQueue{}, Escalations: &routing.MemoryEscalations{}, Streaks: &tasks.MemoryStore{}}
	var es [2]*engine.Engine
	for i := range es {
		var err error
		if es[i], err = engine.New(t.Context(), opt); err != nil {
			t.Fatal(err)
		}
	}
	in, err := es[0].ClientMessage(t.Context(), fx.in(wa, "79160000001", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	if got := open(t, rot, wa, anna, boris); got[anna] != 1 || got[boris] != 1 {
		t.Fatalf("open %v; want the offer counted for anna and boris", got)
	}
	if err := fx.crm.CloseDeal(in.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	fx.crm.ResetCalls()
	const n = 16
	results := make([]engine.RefreshResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := es[i%len(es)].Refresh(t.Context(), in.Chat)
			if err != nil {
				t.Errorf("Refresh %d: %v", i, err)
			}
			results[i] = r
		})
	}
	close(start)
	wg.Wait()
	forgotten := 0
	for i, r := range results {
		switch r.Outcome {
		case engine.OutcomeForgotten:
			forgotten++
		case engine.OutcomeRefreshed:
			if r.PreviousDeal != "" || r.Deal != "" {
				t.Errorf("Refresh %d after the forget: %+v; want no deal before or after", i, r)
			}
		default:
			t.Errorf("Refresh %d: %s", i, r.Outcome)
		}
	}
	if forgotten != 1 {
		t.Errorf("%d Refreshes forgot the client; want exactly 1", forgotten)
	}
	if got := open(t, rot, wa, anna, boris); got[anna] != 0 || got[boris] != 0 {
		t.Errorf("open %v; want the places free", got)
	}
	if total := fx.crm.TotalCalls(); total > n+1 {
		t.Errorf("%d Refreshes made %d CRM requests %v; want at most one each, plus the list after the close", n, total, fx.crm.CallCounts())
	}
}

type eventLog struct {
	mu     sync.Mutex
	events []engine.EventInfo
}

func (l *eventLog) Event(_ context.Context, info engine.EventInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, info)
}

// Refresh is observed like the other events, with its outcome.
func TestRefreshObserved(t *testing.T) {
	var log eventLog
	fx := newFixture(t, func(_ *engine.Config, o *engine.Options) { o.Observer = &log })
	first := fx.mustIn(fx.in(tg, "9001", "hi"))
	if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	fx.refresh(first.Chat)
	fx.crm.FailNext(crmtest.MethodListDeals, 1, crm.ErrRateLimited)
	fx.clock.Advance(time.Minute)
	if _, err := fx.engine.Refresh(t.Context(), first.Chat); !errors.Is(err, crm.ErrRateLimited) {
		t.Errorf("Refresh with the CRM failing: %v; want the CRM's error", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	got := log.events[len(log.events)-2:]
	if got[0].Type != "Refresh" || got[0].Outcome != engine.OutcomeForgotten || got[0].Channel != tg || got[0].Err != nil {
		t.Errorf("observed %+v; want Refresh, forgotten, on tg", got[0])
	}
	if got[1].Type != "Refresh" || !errors.Is(got[1].Err, crm.ErrRateLimited) {
		t.Errorf("observed %+v; want the failed Refresh with its error", got[1])
	}
}

// setDealResponsible changes a deal's responsible in the fake CRM without
// counting a call, as a CRM that names a default responsible would show
// it (amoCRM: the API user, for a deal created without one).
func (fx *fixture) setDealResponsible(id crm.DealID, user crm.UserID) {
	fx.t.Helper()
	for _, d := range fx.crm.Deals() {
		if d.ID == id {
			d.Responsible = user
			fx.crm.AddDeal(d)
			return
		}
	}
	fx.t.Fatalf("no deal %s", id)
}

// An unclaimed offer whose deal the CRM shows with a responsible (amoCRM
// names the API user when the engine creates a deal for nobody) is not
// handed over: neither Refresh nor the client's next message after the
// cache time holds it for that user, so an offered employee's reply still
// claims it.
func TestRefreshOfferedDealKeepsOffer(t *testing.T) {
	for _, path := range []string{"Refresh", "ClientMessage"} {
		t.Run(path, func(t *testing.T) {
			rot := &routing.MemoryRotation{}
			fx := newFixture(t, withRotation(rot), withFeatures(wa, routing.Features{Capacity: 1}))
			offered := fx.mustIn(fx.in(wa, "79160000001", "hi"))
			fx.setDealResponsible(offered.Deal, anna)
			fx.clock.Advance(time.Hour) // past the client cache
			switch path {
			case "Refresh":
				if r, _ := fx.refresh(offered.Chat); r.Outcome != engine.OutcomeRefreshed || r.Responsible != anna {
					t.Errorf("Refresh of an offered deal: %s, responsible %s; want refreshed (an offer is not handed over)", r.Outcome, r.Responsible)
				}
				fx.setDealResponsible(offered.Deal, sam) // changed by hand, still unclaimed
				if r, _ := fx.refresh(offered.Chat); r.Outcome != engine.OutcomeRefreshed {
					t.Errorf("Refresh of an offered deal handed to sam in the CRM: %s; want refreshed (the offer decides)", r.Outcome)
				}
			case "ClientMessage":
				if r := fx.mustIn(fx.in(wa, "79160000001", "anyone?")); r.Outcome != engine.OutcomeOffered {
					t.Errorf("the client writes again: %s; want offered", r.Outcome)
				}
			}
			if got := open(t, rot, wa, anna, boris); got[anna] != 1 || got[boris] != 1 {
				t.Errorf("open %v; want the offer alone counted, once each", got)
			}
			r, err := fx.engine.EmployeeMessage(t.Context(), fx.out(boris, wa, "79160000001", "Boris here"))
			if err != nil || !r.Claimed || r.Responsible != boris {
				t.Fatalf("boris replies: %+v, %v; want his claim", r, err)
			}
			if got := open(t, rot, wa, anna, boris); got[anna] != 0 || got[boris] != 1 {
				t.Errorf("open %v after the claim; want boris 1, anna 0", got)
			}
		})
	}
}

// A client waiting in the queue whose deal the CRM shows with a
// responsible is not held for them: the freed place decides who gets it.
func TestRefreshQueuedDealKeepsQueue(t *testing.T) {
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}))
	fx.mustIn(fx.in(tg, "4101", "hi")) // boris
	second := fx.mustIn(fx.in(tg, "4102", "hi"))
	waiting := fx.mustIn(fx.in(tg, "4103", "hi"))
	if second.Responsible != vera || waiting.Outcome != engine.OutcomeQueued {
		t.Fatalf("second to %s, third %s; want vera and queued", second.Responsible, waiting.Outcome)
	}
	fx.setDealResponsible(waiting.Deal, boris)
	if r, _ := fx.refresh(waiting.Chat); r.Outcome != engine.OutcomeRefreshed {
		t.Errorf("Refresh of the waiting client: %s; want refreshed", r.Outcome)
	}
	if got := open(t, rot, tg, boris, vera); got[boris] != 1 || got[vera] != 1 {
		t.Errorf("open %v; want 1 each (the waiting client held by nobody)", got)
	}
	if err := fx.crm.CloseDeal(second.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	if r, _ := fx.refresh(second.Chat); r.Outcome != engine.OutcomeForgotten {
		t.Fatalf("Refresh of vera's closed deal: %s; want forgotten", r.Outcome)
	}
	tr := fx.tick()
	if len(tr.Assigned) != 1 || tr.Assigned[0].Chat != waiting.Chat || tr.Assigned[0].Responsible != vera {
		t.Errorf("Tick = %+v; want the waiting client to vera (her place was freed)", tr.Assigned)
	}
	if got := fx.dealResponsible(waiting.Deal); got != vera {
		t.Errorf("the waiting client's deal is %s's in the CRM; want vera's", got)
	}
}

// Without a webhook, the engine applies the same rules when an event reads
// the CRM for a stale record: an employee writing to a client whose deal
// closed frees their place, and a client whose abandoned offer's deal was
// closed starts a new round when they write again, instead of finding the
// old offer pending.
func TestStaleReadForgetsEndedDeal(t *testing.T) {
	t.Run("EmployeeMessage", func(t *testing.T) {
		rot := &routing.MemoryRotation{}
		fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{Capacity: 1}))
		first := fx.mustIn(fx.in(tg, "3101", "hi"))
		fx.mustIn(fx.in(tg, "3102", "hi")) // vera
		if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(time.Hour) // past the client cache
		fx.mustOut(fx.out(boris, tg, "3101", "Thank you for your order!"))
		if got := open(t, rot, tg, boris, vera); got[boris] != 0 || got[vera] != 1 {
			t.Errorf("open %v after boris wrote to his closed client; want boris 0, vera 1", got)
		}
		if next := fx.mustIn(fx.in(tg, "3103", "hi")); next.Responsible != boris {
			t.Errorf("next client to %q; want boris (his place was freed)", next.Responsible)
		}
	})
	t.Run("ClientMessage", func(t *testing.T) {
		rot := &routing.MemoryRotation{}
		fx := newFixture(t, withRotation(rot), withFeatures(wa, routing.Features{Capacity: 1}))
		abandoned := fx.mustIn(fx.in(wa, "79160000001", "hi"))
		if err := fx.crm.CloseDeal(abandoned.Deal, crm.DealLost); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(time.Hour)
		again := fx.mustIn(fx.in(wa, "79160000001", "hello again"))
		if again.Why.Has(engine.StepOfferPending) || again.Distribution == nil || again.Distribution.Why.Repeat {
			t.Errorf("the client writes after the close: %s; want a new round, not the old offer", again.Why)
		}
		if got := open(t, rot, wa, anna, boris); got[anna] != 1 || got[boris] != 1 {
			t.Errorf("open %v; want the new offer alone counted, once each", got)
		}
	})
}

// TestCRMCallsPerRefresh prints the CRM calls each kind of Refresh costs
// on the in-memory fake, and checks each against its target.
func TestCRMCallsPerRefresh(t *testing.T) {
	var table strings.Builder
	fmt.Fprintf(&table, "%-62s %5s  %s\n", "refresh", "calls", "by method")
	count := func(fx *fixture, name string, want int, chat channel.Chat, outcome engine.Outcome) {
		t.Helper()
		r, c := fx.refresh(chat)
		fmt.Fprintf(&table, "%-62s %5d  %v\n", name, calls(c), c)
		if r.Outcome != outcome {
			t.Errorf("%s: outcome %s; want %s", name, r.Outcome, outcome)
		}
		if calls(c) > want {
			t.Errorf("%s: %d CRM calls; target <= %d (%v)", name, calls(c), want, c)
		}
	}
	fx := newFixture(t, withFeatures(tg, routing.Features{Capacity: 1}))
	count(fx, "chat never seen", 0, channel.Chat{Channel: tg, ChatID: "never"}, engine.OutcomeNoRecord)
	a := fx.mustIn(fx.in(tg, "c-a", "hi"))
	count(fx, "deal open, record from the last event", 1, a.Chat, engine.OutcomeRefreshed)
	count(fx, "deal open, record stale (an earlier Refresh or Invalidate)", 1, a.Chat, engine.OutcomeRefreshed)
	fx.setDealResponsible(a.Deal, vera)
	count(fx, "deal handed over, record stale", 1, a.Chat, engine.OutcomeResponsibleChanged)
	b := fx.mustIn(fx.in(tg, "c-b", "hi"))
	fx.setDealResponsible(b.Deal, anna)
	count(fx, "deal handed over, record from the last event", 1, b.Chat, engine.OutcomeResponsibleChanged)
	if err := fx.crm.CloseDeal(a.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	count(fx, "deal closed, record stale", 1, a.Chat, engine.OutcomeForgotten)
	count(fx, "again: nothing more to do", 1, a.Chat, engine.OutcomeRefreshed)
	c := fx.mustIn(fx.in(tg, "c-c", "hi"))
	if err := fx.crm.CloseDeal(c.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	count(fx, "deal closed, record from the last event (read + list)", 2, c.Chat, engine.OutcomeForgotten)

	bare := newFixture(t, func(_ *engine.Config, o *engine.Options) { o.CRM = crmtest.Minimal(o.CRM) })
	d := bare.mustIn(bare.in(tg, "c-d", "hi"))
	if err := bare.crm.CloseDeal(d.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	count(bare, "deal closed, CRM without crm.DealGetter (list)", 1, d.Chat, engine.OutcomeForgotten)
	t.Logf("CRM calls per Refresh (in-memory fake):\n%s", table.String())
}

// failingQueue fails the next Remove once fail is set.
type failingQueue struct {
	*routing.MemoryQueue
	mu   sync.Mutex
	fail bool
}

func (q *failingQueue) Remove(ctx context.Context, chat channel.Chat) (bool, error) {
	q.mu.Lock()
	fail := q.fail
	q.fail = false
	q.mu.Unlock()
	if fail {
		return false, errors.New("queue store down")
	}
	return q.MemoryQueue.Remove(ctx, chat)
}

// A Refresh that fails midway (the queue store down after the offer and
// the hold were released) is completed by calling it again.
func TestRefreshFailureMidwayCompletes(t *testing.T) {
	q := &failingQueue{MemoryQueue: &routing.MemoryQueue{}}
	fx := newFixture(t, withFeatures(tg, routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}),
		func(_ *engine.Config, o *engine.Options) { o.Queue = q })
	fx.mustIn(fx.in(tg, "4201", "hi"))
	fx.mustIn(fx.in(tg, "4202", "hi"))
	waiting := fx.mustIn(fx.in(tg, "4203", "hi"))
	if err := fx.crm.CloseDeal(waiting.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	q.fail = true
	q.mu.Unlock()
	if _, err := fx.engine.Refresh(t.Context(), waiting.Chat); err == nil || !strings.Contains(err.Error(), "queue store down") {
		t.Fatalf("Refresh with the queue store down: %v; want its error", err)
	}
	if r, _ := fx.refresh(waiting.Chat); r.Outcome != engine.OutcomeForgotten || r.PreviousDeal != waiting.Deal {
		t.Errorf("Refresh again: %+v; want the client forgotten now", r)
	}
	if entries, err := fx.engine.Distributor().Queued(t.Context(), tg, 10); err != nil || len(entries) != 0 {
		t.Errorf("queue %v, %v; want empty", entries, err)
	}
}
