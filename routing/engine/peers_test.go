package engine_test

// Peer cases (Rocket.Chat's omnichannel routing) that need the whole
// engine: the distribution's feature working with the client's and the
// employee's messages, the CRM and the host's timer. The routing package's
// peers_*_test.go port the rest; the peer's code is described, never
// copied.

import (
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// Rocket.Chat apps/meteor/ee/app/livechat-enterprise/server/hooks/scheduleAutoTransfer.ts
// @09040df3: the auto-transfer job starts when the chat is taken; a
// message cancels it only when it is the agent's (a visitor's message,
// which carries the visitor token, leaves it running); the room is
// transferred once.
//
// Ours: the client's further messages neither restart nor stop the
// escalation clock; an employee's reply stops it, also one typed outside
// the engine (EmployeeReplied).
func TestPeerAutoTransferOnlyAgentRepliesCancel(t *testing.T) {
	fx := newFixture(t, withFeatures(tg, routing.Features{Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)}}))
	waiting := fx.mustIn(fx.in(tg, "3001", "hello?"))
	echoed := fx.mustIn(fx.in(tg, "3002", "hello?"))
	fx.clock.Advance(5 * time.Minute)
	fx.mustIn(fx.in(tg, "3001", "anyone there?"))
	if _, err := fx.engine.EmployeeReplied(t.Context(), channel.Message{
		ID: "phone-1", Chat: echoed.Chat, Direction: channel.Outbound,
		Author: channel.Author{Kind: channel.AuthorEmployee, UserID: string(echoed.Responsible)}, Text: "typed on the phone",
	}); err != nil {
		t.Fatal(err)
	}
	fx.clock.Advance(5 * time.Minute)
	r := fx.tick()
	if len(r.Escalated) != 1 || r.Escalated[0].Chat != waiting.Chat || r.Escalated[0].Responsible == waiting.Responsible {
		t.Fatalf("Tick 10 minutes after the first message = %+v; want only %s passed on from %s", r.Escalated, waiting.Chat, waiting.Responsible)
	}
	fx.clock.Advance(time.Hour)
	if r := fx.tick(); len(r.Escalated) != 0 {
		t.Fatalf("transferred twice: %+v", r.Escalated)
	}
}

// Rocket.Chat apps/meteor/tests/end-to-end/api/livechat/19-business-hours.ts
// @00fb2243 (a custom business hour with its time zone) and
// apps/meteor/app/livechat/server/business-hour/Helper.ts
// (makeAgentsUnavailableBasedOnBusinessHour; opening a business hour makes
// its agents available again) with Livechat_waiting_queue: a chat arriving
// outside business hours waits, and is routed once they open.
//
// Ours: the new client's deal is created at once and the client waits in
// the queue; the first Tick on shift assigns it and makes the pick
// responsible in the CRM.
func TestPeerBusinessHoursQueue(t *testing.T) {
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	shift := routing.Schedule{TimeZone: "UTC", Shifts: []routing.Shift{{Days: weekdays, From: 10 * 60, To: 18 * 60}}}
	fx := newFixture(t, withFeatures(tg, routing.Features{
		WhenNobody: routing.QueueWhenNobody,
		Schedules:  map[crm.UserID]routing.Schedule{boris: shift, vera: shift},
	}))
	// The fixture's clock starts on a Tuesday at 09:00 UTC.
	early := fx.mustIn(fx.in(tg, "4001", "are you open?"))
	if early.Outcome != engine.OutcomeQueued || !early.DealCreated || early.Responsible != "" {
		t.Fatalf("before opening: %+v; want the deal created and the client queued", early)
	}
	fx.clock.Advance(59 * time.Minute)
	if r := fx.tick(); len(r.Assigned) != 0 {
		t.Fatalf("Tick at 09:59 assigned %+v", r.Assigned)
	}
	fx.clock.Advance(time.Minute)
	r := fx.tick()
	if len(r.Assigned) != 1 || r.Assigned[0].Chat != early.Chat || r.Assigned[0].Responsible != boris {
		t.Fatalf("Tick at 10:00 = %+v; want %s to boris", r.Assigned, early.Chat)
	}
	if got := fx.dealResponsible(early.Deal); got != boris {
		t.Errorf("CRM responsible %s; want boris", got)
	}
}
