package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
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
