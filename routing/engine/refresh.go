package engine

import (
	"context"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// Outcomes of [Engine.Refresh].
const (
	// OutcomeForgotten: the open deal the engine knew was closed (won or
	// lost) or deleted in the CRM, and the contact has no other open deal;
	// the distribution forgot the client (routing.Distributor.Forget).
	OutcomeForgotten Outcome = "forgotten"
	// OutcomeResponsibleChanged: the known deal is still open and was
	// handed in the CRM from the client's owner to another user.
	OutcomeResponsibleChanged Outcome = "responsible_changed"
	// OutcomeRefreshed: the client was read from the CRM again; nothing
	// else had to change.
	OutcomeRefreshed Outcome = "refreshed"
	// OutcomeNoRecord: the engine has no record of the chat's client;
	// nothing was read or changed.
	OutcomeNoRecord Outcome = "no_record"
)

// RefreshResult is what [Engine.Refresh] found in the CRM and did.
type RefreshResult struct {
	// Chat is the chat refreshed.
	Chat channel.Chat
	// Outcome is what Refresh did: OutcomeForgotten,
	// OutcomeResponsibleChanged, OutcomeRefreshed or OutcomeNoRecord.
	Outcome Outcome
	// Contact, Deal and Responsible are the client as the CRM shows it
	// now: Deal is the open deal that counts ("" when none is open),
	// Responsible its responsible user (else the contact's, as far as the
	// engine knows it). Empty for OutcomeNoRecord, and Contact is empty
	// when the contact is gone from the CRM too.
	Contact crm.ContactID
	// Deal is the client's open deal that counts now; "" when none is open
	// and for OutcomeNoRecord.
	Deal crm.DealID
	// Responsible is Deal's responsible user now, else the contact's as
	// far as the engine knows it; "" for OutcomeNoRecord.
	Responsible crm.UserID
	// PreviousDeal and PreviousResponsible are what the engine knew before:
	// the deal it knew open ("" when none) and the client's responsible.
	PreviousDeal crm.DealID
	// PreviousResponsible is the client's responsible as the engine knew
	// it before the refresh; "" when it knew none.
	PreviousResponsible crm.UserID
	// Why explains what was read and done, step by step.
	Why Explanation
}

// Refresh reads the chat's client from the CRM now and applies what
// changed there: call it from CRM webhooks when a deal of the client
// changed status, changed hands or was deleted (amoCRM: a lead's status,
// responsible or deletion). It runs under the chat's lease, like an event,
// and applies the rules below, which every event that reads the CRM for a
// stale record applies too: Refresh applies them when the CRM changes
// rather than when the client next writes (an abandoned chat never does).
//
// The read is the one an event makes for a stale record: the deal the
// engine knows is read again alone where the CRM can (crm.DealGetter),
// and the contact's deals are listed when that deal is no longer open, or
// the CRM cannot read one deal, or the record was marked stale by
// Invalidate or an earlier Refresh. So a refresh costs one CRM request,
// except a deal found closed or deleted by its own read, which costs a
// second one: the list that tells whether another deal of the contact is
// open.
//
//   - The known deal closed or gone, and no other deal of the contact
//     open (OutcomeForgotten): the distribution forgets the client (an
//     unclaimed first-responder offer is withdrawn and stops counting
//     toward the offered employees' capacity, the claim record is
//     released, the client's open-client hold is freed, its escalation
//     clock stops and it leaves the channel's waiting queue), and the
//     record forgets the deal and any round-robin turn still reserved
//     for the client. The unanswered-message streak and its task are left
//     as they are: the next reply closes them as usual. A freed place
//     goes to a waiting client at the next [Engine.Tick].
//   - Another deal of the contact is open: it becomes the deal that
//     counts, and the client keeps its place.
//   - The known deal still open and handed in the CRM from the client's
//     owner to another (OutcomeResponsibleChanged): on a channel that
//     records holds (a capacity limit or a waiting queue) the client's
//     hold moves to the new responsible, so a later escalation passes
//     the client on from them, never back to the old owner. A
//     client nobody owns yet (an unclaimed first-responder offer, a client
//     waiting in the queue) is not handed over by the CRM's responsible
//     (on amoCRM, a deal created without one is the API user's): the
//     first reply or the queue decides, and the result is
//     OutcomeRefreshed.
//   - A chat the engine never saw (no record of its client): nothing is
//     read or changed (OutcomeNoRecord).
//
// The record is left stale, as [Engine.Invalidate] leaves it: the chat's
// next event reads the contact's deals again, so a deal added by hand is
// found. Refresh is idempotent: a second call finds nothing more to do.
//
// Errors: a *EventError naming Chat's bad field (nothing is read), or the
// CRM's or a store's error; calling Refresh again completes the work.
func (e *Engine) Refresh(ctx context.Context, chat channel.Chat) (res RefreshResult, err error) {
	const ev = "Refresh"
	s := e.set.Load()
	if e.log != nil || e.obs != nil {
		start := time.Now()
		defer func() { e.observe(ctx, ev, chat, res.Outcome, nil, false, start, err) }()
	}
	cs, err := s.checkChat(ev, chat, false)
	if err != nil {
		return RefreshResult{}, err
	}
	res = RefreshResult{Chat: chat}
	l, release, err := e.acquire(ctx, chat)
	if err != nil {
		return res, err
	}
	defer release()
	before, found, err := e.state.Client(ctx, chat)
	if err != nil {
		return res, err
	}
	if !found || before.Contact == "" {
		// Never seen, or its first event has not created the client yet
		// (that event's redelivery reads the CRM itself).
		res.Outcome = OutcomeNoRecord
		res.Why.add(Step{Kind: StepNoRecord})
		return res, nil
	}
	res.PreviousDeal, res.PreviousResponsible = before.Deal, before.Responsible
	warn := func(text string) { res.Why.add(Step{Kind: StepWarning, Text: text}) }
	after, known, err := e.loadClient(ctx, s, cs, chat, "", before, warn)
	if err != nil {
		return res, err
	}
	if known {
		res.Why.add(Step{Kind: StepLoadedClient, Contact: after.Contact, Deal: after.Deal})
	}
	res.Contact, res.Deal, res.Responsible = after.Contact, after.Deal, after.Responsible
	c, err := e.syncDist(ctx, cs, chat, before, &after)
	if err != nil {
		return res, err
	}
	switch c {
	case dealEnded:
		res.Outcome = OutcomeForgotten
		res.Why.add(Step{Kind: StepDealClosed, Deal: before.Deal, Contact: after.Contact})
	case handedOver:
		res.Outcome = OutcomeResponsibleChanged
		res.Why.add(Step{Kind: StepNewResponsible, Deal: after.Deal, User: after.Responsible, Text: string(before.Responsible)})
	default:
		res.Outcome = OutcomeRefreshed
	}
	after.Fetched = time.Time{} // the next event reads again, as after Invalidate
	if after == before {
		return res, nil
	}
	return res, e.state.PutClient(ctx, l, after)
}
