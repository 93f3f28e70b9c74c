package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// afterPeek is a QueueStore that runs then once, right after the first
// Peek: another instance's call landing between Tick's read of a queue
// and its assignments.
type afterPeek struct {
	routing.QueueStore
	then func()
}

func (q *afterPeek) Peek(ctx context.Context, ch channel.ID, limit int) ([]routing.QueueEntry, error) {
	es, err := q.QueueStore.Peek(ctx, ch, limit)
	if f := q.then; f != nil {
		q.then = nil
		f()
	}
	return es, err
}

// TestTickSkipsClientForgottenMeanwhile: a waiting client whose deal is
// closed and refreshed (by another instance's webhook) after Tick read the
// queue is not assigned: nobody's place is taken for it, no clock starts,
// its CRM deal keeps no responsible from the engine, and the next waiting
// client gets the freed place.
func TestTickSkipsClientForgottenMeanwhile(t *testing.T) {
	q := &afterPeek{QueueStore: &routing.MemoryQueue{}}
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withFeatures(tg, routing.Features{
		Capacity: 1, WhenNobody: routing.QueueWhenNobody, Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)},
	}), withRotation(rot), func(_ *engine.Config, o *engine.Options) { o.Queue = q })
	first := fx.mustIn(fx.in(tg, "5001", "hi"))
	second := fx.mustIn(fx.in(tg, "5002", "hi"))
	closing := fx.mustIn(fx.in(tg, "5003", "hi"))
	next := fx.mustIn(fx.in(tg, "5004", "hi"))
	if closing.Outcome != engine.OutcomeQueued || next.Outcome != engine.OutcomeQueued {
		t.Fatalf("third and fourth clients: %s, %s; want both queued", closing.Outcome, next.Outcome)
	}
	for _, deal := range []crm.DealID{first.Deal, closing.Deal} {
		if err := fx.crm.CloseDeal(deal, crm.DealLost); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := fx.refresh(first.Chat); r.Outcome != engine.OutcomeForgotten {
		t.Fatalf("Refresh of %s: %s; want forgotten (a place frees)", first.Responsible, r.Outcome)
	}
	q.then = func() {
		if r, err := fx.engine.Refresh(t.Context(), closing.Chat); err != nil || r.Outcome != engine.OutcomeForgotten {
			t.Errorf("Refresh during the Tick: %+v, %v; want forgotten", r, err)
		}
	}
	tr := fx.tick()
	if len(tr.Assigned) != 1 || tr.Assigned[0].Chat != next.Chat || tr.Assigned[0].Responsible != first.Responsible {
		t.Fatalf("Tick assigned %+v; want only %s, to %s", tr.Assigned, next.Chat, first.Responsible)
	}
	if got := open(t, rot, tg, first.Responsible, second.Responsible); got[first.Responsible] != 1 || got[second.Responsible] != 1 {
		t.Errorf("open %v; want one client each", got)
	}
	if got := fx.dealResponsible(closing.Deal); got == first.Responsible || got == second.Responsible {
		t.Errorf("the closed client's deal was handed to %s", got)
	}
	fx.clock.Advance(time.Hour)
	for _, h := range fx.tick().Escalated {
		if h.Chat == closing.Chat {
			t.Errorf("the closed client was escalated: %+v", h)
		}
	}
}

// TestTickObserved: what Tick does to each client reaches the observer as
// an event of its own — an escalation, a queue assignment — with the rule
// that decided, so metrics count them; a Tick with nothing to do reports
// nothing.
func TestTickObserved(t *testing.T) {
	obs := &recordingObserver{}
	fx := newFixture(t, withFeatures(tg, routing.Features{
		Capacity: 1, WhenNobody: routing.QueueWhenNobody, Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)},
	}), func(_ *engine.Config, o *engine.Options) { o.Observer = obs })
	first := fx.mustIn(fx.in(tg, "6001", "hi"))
	fx.mustIn(fx.in(tg, "6002", "hi"))
	fx.mustIn(fx.in(tg, "6003", "hi")) // waits
	obs.mu.Lock()
	obs.events = nil
	obs.mu.Unlock()
	fx.tick() // nothing due, nobody free
	if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	if r, _ := fx.refresh(first.Chat); r.Outcome != engine.OutcomeForgotten {
		t.Fatalf("Refresh: %s", r.Outcome)
	}
	fx.tick() // the waiting client takes the freed place
	obs.mu.Lock()
	defer obs.mu.Unlock()
	var got []string
	for _, ev := range obs.events {
		got = append(got, ev.Type+"/"+string(ev.Outcome)+"/"+string(ev.Rule))
	}
	want := []string{"Refresh/forgotten/", "QueueAssignment/assigned/round_robin"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("observed %q; want %q", got, want)
	}
	obs.events = nil
	obs.mu.Unlock()
	fx.clock.Advance(10 * time.Minute) // the second client's employee did not reply
	fx.tick()
	obs.mu.Lock()
	if len(obs.events) == 0 || obs.events[0].Type != "Escalation" || obs.events[0].Outcome != engine.OutcomeEscalated || obs.events[0].Rule != routing.RuleEscalation {
		t.Errorf("observed %+v after the deadline; want an escalation", obs.events)
	}
}

// TestHandoverOnQueueChannelMovesHold: on a channel with a waiting queue
// and no limit, a deal handed over in the CRM moves the client's hold, so
// the new owner's missed deadline passes the client on by a new pick, not
// back to the old holder as a repeat of the first one.
func TestHandoverOnQueueChannelMovesHold(t *testing.T) {
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{
		WhenNobody: routing.QueueWhenNobody, Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)},
	}))
	first := fx.mustIn(fx.in(tg, "5101", "hi"))
	to := vera
	if first.Responsible == vera {
		to = boris
	}
	if err := fx.crm.SetResponsible(t.Context(), first.Deal, to); err != nil {
		t.Fatal(err)
	}
	if r, _ := fx.refresh(first.Chat); r.Outcome != engine.OutcomeResponsibleChanged || r.Responsible != to {
		t.Fatalf("Refresh after the handover: %+v; want responsible_changed to %s", r, to)
	}
	if got := open(t, rot, tg, first.Responsible, to); got[first.Responsible] != 0 || got[to] != 1 {
		t.Errorf("holds after the handover %v; want the client held by %s", got, to)
	}
	fx.clock.Advance(10 * time.Minute)
	esc := fx.tick().Escalated
	if len(esc) != 1 || esc[0].Decision.Why.From != to || esc[0].Decision.Why.Repeat {
		t.Fatalf("escalation %+v; want one new pick passing the client on from %s", esc, to)
	}
}

// TestTickLeavesUnmadeClientQueued: a client whose first event failed
// before making its contact and deal is left queued by Tick (nobody is
// told of a client the CRM does not have yet), with its place kept; the
// redelivered event makes the client and gives it to the employee whose
// place was kept, and no later Tick hands it over again.
func TestTickLeavesUnmadeClientQueued(t *testing.T) {
	obs := &recordingObserver{}
	fx := newFixture(t, withFeatures(tg, routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}),
		func(_ *engine.Config, o *engine.Options) { o.Observer = obs })
	a := fx.mustIn(fx.in(tg, "5201", "hi"))
	fx.mustIn(fx.in(tg, "5202", "hi"))
	m := fx.in(tg, "5203", "hi")
	fx.crm.FailNext(crmtest.MethodCreateDeal, 1, crm.ErrUnavailable)
	if _, err := fx.engine.ClientMessage(t.Context(), m); err == nil {
		t.Fatal("the first delivery succeeded; want its deal's creation to fail")
	}
	fx.clock.Advance(time.Second)
	if d := fx.mustIn(fx.in(tg, "5204", "hi")); d.Outcome != engine.OutcomeQueued {
		t.Fatalf("a later client: %s; want queued", d.Outcome)
	}
	if err := fx.crm.CloseDeal(a.Deal, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	if r, _ := fx.refresh(a.Chat); r.Outcome != engine.OutcomeForgotten {
		t.Fatalf("Refresh: %s", r.Outcome)
	}
	if tr := fx.tick(); len(tr.Assigned) != 0 {
		t.Fatalf("Tick handed over %+v; want nobody (the head's client is not made yet)", tr.Assigned)
	}
	obs.mu.Lock()
	seen := len(obs.events) > 0 && obs.events[len(obs.events)-1].Type == "QueueAssignment" && obs.events[len(obs.events)-1].Err != nil
	obs.mu.Unlock()
	if !seen {
		t.Error("the waiting client the Tick could not hand over was not reported to the observer")
	}
	again, err := fx.engine.ClientMessage(t.Context(), m) // the redelivery
	if err != nil || again.Outcome == engine.OutcomeQueued || again.Responsible != a.Responsible {
		t.Fatalf("redelivery: %+v, %v; want the client given to %s, whose place was kept", again, err, a.Responsible)
	}
	if tr := fx.tick(); len(tr.Assigned) != 0 {
		t.Errorf("a later Tick handed over %+v; want nobody (5203 is served, 5204 waits for a place)", tr.Assigned)
	}
}

// TestEscalationCRMFailureKeepsHoldWithCRM: an escalation whose CRM write
// fails leaves the client where the CRM has it: the hold goes back to the
// employee escalated from, nobody is told, and the error is returned.
func TestEscalationCRMFailureKeepsHoldWithCRM(t *testing.T) {
	rot := &routing.MemoryRotation{}
	fx := newFixture(t, withRotation(rot), withFeatures(tg, routing.Features{
		Capacity: 2, Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)},
	}))
	first := fx.mustIn(fx.in(tg, "5301", "hi"))
	other := vera
	if first.Responsible == vera {
		other = boris
	}
	fx.clock.Advance(10 * time.Minute)
	fx.crm.FailNext(crmtest.MethodSetResponsible, 1, crm.ErrUnavailable)
	r, err := fx.engine.Tick(t.Context(), fx.clock.Now())
	if err == nil || len(r.Escalated) != 1 || r.Escalated[0].Responsible != first.Responsible || len(r.Escalated[0].Notify) != 0 {
		t.Fatalf("Tick with the CRM failing = %+v, %v; want the error and the client left with %s, nobody told", r.Escalated, err, first.Responsible)
	}
	if got := open(t, rot, tg, first.Responsible, other); got[first.Responsible] != 1 || got[other] != 0 {
		t.Errorf("holds %v; want the client held by %s, as the CRM has it", got, first.Responsible)
	}
	if got := fx.dealResponsible(first.Deal); got != first.Responsible {
		t.Errorf("the CRM names %s; want %s", got, first.Responsible)
	}
}
