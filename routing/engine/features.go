package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
)

// distribution is the request for the channel's distribution of this
// event's client, at the message's time (ClientMessage sets a zero time
// to now before the event runs).
func (p *inbound) distribution() routing.Request {
	return routing.Request{Settings: p.cs.cfg.Settings(), Mode: p.cs.mode, Roles: p.s.table, Chat: p.m.Chat, At: p.m.Time}
}

// ownerAway applies the channel's owner-off-shift policy to a plan that
// leaves the client with its responsible (an open deal, a returning
// client notified) when the responsible is away at the message's time:
// colleagues cover (notified too; the responsible stays), or the client
// is reassigned through the distribution. KeepOwner changes nothing.
func (p *inbound) ownerAway(ctx context.Context, plan *inboundPlan) error {
	owner := plan.Responsible
	if p.cs.cfg.OwnerOffShift == routing.KeepOwner || plan.Distribute || plan.Turn != "" || owner == "" ||
		(plan.Outcome != OutcomeOpenDeal && plan.Outcome != OutcomeReturningNotify) || p.snap.Offered {
		return nil
	}
	if t := p.snap.Rec.Turn; t != "" && t != owner && p.cs.cfg.OwnerOffShift == routing.ReassignOwner && worksOn(p.s.table, t, p.cs.cfg.ID) {
		// An earlier delivery reassigned the client and failed before the
		// CRM named the pick: the pick is the client's, made once per
		// reassignment, and is carried out instead of a second one.
		plan.Outcome, plan.SetOwner, plan.NotifyWhy = OutcomeReassigned, true, "client reassigned: its responsible is away"
		plan.Responsible, plan.Notify, plan.Turn = "", nil, t
		plan.Why.add(Step{Kind: StepTurnKept, User: t})
		return nil
	}
	d, err := p.e.dist.Owner(ctx, p.distribution(), owner)
	if err != nil {
		return err
	}
	switch d.Why.Rule {
	case routing.RuleOwner:
		return nil
	case routing.RuleCover:
		plan.Notify = append(plan.Notify, notifyAll(d.Offered, "covering for "+string(owner)+", who is away ("+string(d.Why.Away)+")")...)
		plan.Why.add(Step{Kind: StepDistributed, Decision: &d})
		return nil
	}
	// Reassigned: a round-robin pick is used as the client's turn (apply
	// records it before the CRM writes); an offer is recorded already,
	// and distributing again returns it.
	plan.Outcome, plan.SetOwner, plan.NotifyWhy = OutcomeReassigned, true, "client reassigned: its responsible is away"
	plan.Responsible, plan.Notify = "", nil
	plan.Why.add(Step{Kind: StepDistributed, Decision: &d})
	if d.User != "" {
		plan.Turn = d.User
	} else {
		plan.Distribute = true
	}
	return nil
}

// cover applies a cover policy to an employee's action at time at: on a
// channel whose owner-off-shift policy is cover, when the client's
// responsible works the channel and is away at, and the chat is not
// offered, v.Cover becomes the distribution's cover decision, whose
// Offered (the channel's eligible employees) may then see and write the
// chat. The cover lasts while the owner is away: at a time the owner is
// available, nobody covers. Nothing is recorded.
func (e *Engine) cover(ctx context.Context, s *settings, cs *chanState, chat channel.Chat, v *chatView, at time.Time) error {
	owner := v.Rec.Responsible
	if cs.cfg.OwnerOffShift != routing.CoverOwner || v.Offered || !worksOn(s.table, owner, cs.cfg.ID) {
		return nil
	}
	r := routing.Request{Settings: cs.cfg.Settings(), Mode: cs.mode, Roles: s.table, Chat: chat, At: at}
	d, err := e.dist.Owner(ctx, r, owner)
	if err != nil || d.Why.Rule != routing.RuleCover {
		return err
	}
	v.Cover = &d
	return nil
}

// crmChange is what a CRM read shows changed for a client whose open deal
// the engine knew.
type crmChange uint8

const (
	noChange crmChange = iota
	// dealEnded: the known deal is closed or gone, and no other deal of
	// the contact is open.
	dealEnded
	// handedOver: the known deal is still open and changed hands in the
	// CRM, from the owner the engine knew to another.
	handedOver
)

// changeOf compares the record before a CRM read with the read. A client
// nobody owned by the engine's rules (an unclaimed offer, a client waiting
// in the queue: before.Responsible empty) is not handed over by the CRM's
// responsible: on amoCRM a deal created without one is the API user's,
// and the first reply or the queue decides who gets the client. The same
// holds while the chat's offer is unclaimed, whatever the record says.
func (e *Engine) changeOf(ctx context.Context, chat channel.Chat, before, after ClientRecord) (crmChange, error) {
	switch {
	case before.Deal == "":
		return noChange, nil
	case after.Deal == "":
		return dealEnded, nil
	case after.Deal != before.Deal || before.Responsible == "" || after.Responsible == "" || after.Responsible == before.Responsible:
		return noChange, nil
	}
	st, offered, err := e.dist.ClaimState(ctx, chat)
	if err != nil || (offered && !st.Claimed()) {
		return noChange, err
	}
	return handedOver, nil
}

// syncDist keeps the distribution in step with what a CRM read shows (see
// changeOf), on every path that reads the CRM: a client whose deal ended
// is forgotten (routing.Distributor.Forget: its unclaimed offer withdrawn,
// its hold freed, its escalation clock stopped, its place in the queue
// given up) and the round-robin turn still reserved for it is dropped
// from after; one handed over is held for the new responsible on a
// channel that records holds (a capacity limit or a waiting queue). It
// returns the change. Callers write after only once syncDist returned: a
// failure before leaves the deal known to the state, so the next read
// finds it ended again.
func (e *Engine) syncDist(ctx context.Context, cs *chanState, chat channel.Chat, before ClientRecord, after *ClientRecord) (crmChange, error) {
	c, err := e.changeOf(ctx, chat, before, *after)
	switch {
	case err != nil:
		return noChange, err
	case c == dealEnded:
		if err := e.dist.Forget(ctx, chat); err != nil {
			return c, fmt.Errorf("engine: forgetting %s: %w", chat, err)
		}
		after.Turn = ""
	case c == handedOver && cs.cfg.HoldsClients():
		if err := e.dist.Hold(ctx, chat, after.Responsible); err != nil {
			return c, err
		}
	}
	return c, nil
}

// TickResult is what [Engine.Tick] did.
type TickResult struct {
	// Escalated are clients nobody answered in time, one per deadline
	// processed: passed to the next employee in rotation, or their offer
	// widened; a Decision with Why.Fallback (nobody else eligible) or
	// Why.Repeat (a widening that added nobody) left the client as it
	// was.
	Escalated []Handover
	// Assigned are clients taken from the channels' waiting queues.
	Assigned []Handover
}

// Handover is one client Tick gave to someone.
type Handover struct {
	// Chat is the client's chat that was handed over.
	Chat channel.Chat
	// Responsible is the employee now responsible in the CRM; empty for
	// an offer (the first reply claims it).
	Responsible crm.UserID
	// Notify are the employees to tell, and why.
	Notify []Notification
	// Decision is the distribution's decision, with its explanation.
	Decision routing.Decision
}

// tickBatch bounds the escalations and the queued clients of one channel
// that one Tick processes; the next Tick continues.
const tickBatch = 100

// Tick processes what is due at now: the escalations of clients nobody
// answered in time (channels with an Escalation policy) and the waiting
// queues (channels whose WhenNobody is the queue), assigned oldest first
// as far as someone is eligible. The host calls it on a timer, every few
// seconds to a minute, and may also call it when someone may have become
// eligible (a deal closed, a shift started). Each client is handled under
// its chat's lease, like an event.
//
// Several instances may call Tick at once: each escalation happens at
// most once per deadline (a failure after it leaves it done), and each
// queued client is assigned once (a failure leaves it queued for the next
// Tick), under its chat's lease and only while it still waits, so a
// client whose deal [Engine.Refresh] found closed is never assigned. The CRM's responsible is updated for round-robin handovers.
// Errors of single clients are joined and returned after the rest was
// processed.
func (e *Engine) Tick(ctx context.Context, now time.Time) (TickResult, error) {
	var res TickResult
	var errs []error
	s := e.set.Load()
	ws, err := e.dist.DueEscalations(ctx, now, tickBatch)
	if err != nil {
		return res, err
	}
	for _, w := range ws {
		cs := s.chans[w.Chat.Channel]
		if cs == nil { // the channel was removed from the configuration
			errs = append(errs, e.dist.Replied(ctx, w.Chat))
			continue
		}
		start := time.Now()
		h, ok, err := e.escalate(ctx, s, cs, w, now)
		errs = append(errs, err)
		if ok {
			res.Escalated = append(res.Escalated, h)
		}
		if (ok || err != nil) && (e.log != nil || e.obs != nil) {
			e.observe(ctx, "Escalation", w.Chat, outcomeIf(ok, OutcomeEscalated), &h.Decision, false, start, err)
		}
	}
	for _, cc := range s.cfg.Channels {
		if cc.WhenNobody != routing.QueueWhenNobody {
			continue
		}
		cs := s.chans[cc.ID] // compile made one per configured channel
		waiting, err := e.dist.Queued(ctx, cc.ID, tickBatch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, q := range waiting {
			r := routing.Request{Settings: cc.Settings(), Mode: cs.mode, Roles: s.table, Chat: q.Chat, At: now}
			start := time.Now()
			d, ok, err := e.serve(ctx, r)
			if errors.Is(err, routing.ErrNoEligible) {
				break // nobody eligible for the oldest: the rest wait behind
			}
			if (ok || err != nil) && (e.log != nil || e.obs != nil) {
				// A client whose first event has not made it (errNotReady)
				// is reported on every Tick it waits, so a redelivery that
				// never comes shows in the logs and metrics.
				e.observe(ctx, "QueueAssignment", q.Chat, outcomeIf(ok, OutcomeAssigned), &d, false, start, err)
			}
			if errors.Is(err, errNotReady) {
				continue // it stays queued, its place kept, for its redelivery
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			if !ok {
				continue // served or forgotten meanwhile
			}
			h := Handover{Chat: d.Why.Chat, Responsible: d.User, Decision: d}
			if d.User != "" {
				h.Notify = []Notification{{User: d.User, Reason: "waiting client: assigned by " + string(d.Why.Rule)}}
			} else {
				h.Notify = notifyAll(d.Offered, "waiting client: offered, the first reply claims it")
			}
			res.Assigned = append(res.Assigned, h)
		}
	}
	return res, errors.Join(errs...)
}

// escalate processes one due watch under the chat's lease.
func (e *Engine) escalate(ctx context.Context, s *settings, cs *chanState, w routing.Watch, now time.Time) (Handover, bool, error) {
	l, release, err := e.acquire(ctx, w.Chat)
	if err != nil {
		return Handover{}, false, err
	}
	defer release()
	rec, _, err := e.state.Client(ctx, w.Chat)
	if err != nil {
		return Handover{}, false, err
	}
	current := rec.Responsible
	if cs.mode == routing.FirstResponder {
		current = ""
	}
	r := routing.Request{Settings: cs.cfg.Settings(), Mode: cs.mode, Roles: s.table, At: now}
	d, ok, err := e.dist.Escalate(ctx, r, w, current)
	if err != nil || !ok {
		return Handover{}, false, err
	}
	h := Handover{Chat: w.Chat, Decision: d}
	switch {
	case cs.mode == routing.FirstResponder:
		h.Notify = notifyAll(d.Why.Eligible, "unanswered: offer widened, the first reply claims it")
	case d.User != "" && d.User != current:
		h.Responsible = d.User
		h.Notify = []Notification{{User: d.User, Reason: "unanswered: passed on from " + string(current) + " by escalation"}}
		if rec.Contact != "" {
			if err := e.makeResponsible(ctx, &rec, d.User); err != nil {
				// The CRM still names current, and this deadline's
				// escalation is spent (at most once): the hold goes back
				// to current, so the capacity counts and the next
				// escalation agree with the CRM, and nobody is told.
				if cs.cfg.HoldsClients() && current != "" {
					if herr := e.dist.Hold(context.WithoutCancel(ctx), w.Chat, current); herr != nil {
						err = errors.Join(err, herr)
					}
				}
				return Handover{Chat: w.Chat, Decision: d, Responsible: current}, true, err
			}
			if err := e.state.PutClient(ctx, l, rec); err != nil {
				return h, true, err
			}
		}
	default:
		h.Responsible = current // nobody else eligible: the client stays
	}
	return h, true, nil
}

// serve assigns one waiting client under its chat's lease: the
// distribution checks it still waits (a Refresh that found its deal
// closed, under the same lease, took it out of the queue), assigns it and
// hands it over.
func (e *Engine) serve(ctx context.Context, r routing.Request) (routing.Decision, bool, error) {
	l, release, err := e.acquire(ctx, r.Chat)
	if err != nil {
		return routing.Decision{}, false, err
	}
	defer release()
	return e.dist.Serve(ctx, r, func(ctx context.Context, d routing.Decision) error {
		return e.handOver(ctx, l, d.Why.Chat, d.User)
	})
}

// errNotReady: a queued client's first event has not made its contact
// and deal yet (it failed, and waits for its redelivery).
var errNotReady = errors.New("engine: the queued client's first event has not finished")

// handOver makes user responsible in the CRM for a queued client, under
// the chat's lease l; idempotent. A client whose record is not there yet
// (its first event failed before making it) is not handed over:
// errNotReady leaves it queued, its assignment recorded, and a later Tick
// hands it over once the redelivered event has made the client.
func (e *Engine) handOver(ctx context.Context, l Lease, chat channel.Chat, user crm.UserID) error {
	rec, found, err := e.state.Client(ctx, chat)
	switch {
	case err != nil:
		return err
	case !found || rec.Contact == "":
		return errNotReady
	case user == "" || rec.Responsible == user:
		return nil
	}
	if err := e.makeResponsible(ctx, &rec, user); err != nil {
		return err
	}
	return e.state.PutClient(ctx, l, rec)
}

// outcomeIf is o when done, else "" (a Tick step that failed before
// deciding).
func outcomeIf(done bool, o Outcome) Outcome {
	if done {
		return o
	}
	return ""
}
