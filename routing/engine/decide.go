package engine

import (
	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
)

// The decision functions below are pure: values in, a plan out. The event
// methods load a snapshot, call one of them, and hand the plan to the
// apply path, which alone talks to the CRM and the Sender.

// inboundSnapshot is what is known of a chat when a client's message is
// decided.
type inboundSnapshot struct {
	// Known is true when the CRM has the client (Rec.Contact is set).
	Known bool
	Rec   ClientRecord
	// Claim and Offered are the chat's first-responder state.
	Claim   routing.ClaimState
	Offered bool
	// Prior is the outcome an earlier, unfinished delivery of this same
	// message had decided ("" for a first delivery).
	Prior Outcome
}

// inboundPlan is the decision for a client's message.
type inboundPlan struct {
	Outcome Outcome
	Why     Explanation
	// Distribute asks the channel's distribution who gets the client.
	Distribute bool
	// Turn is a round-robin pick reserved for this client earlier, used
	// instead of distributing again.
	Turn crm.UserID
	// NotifyWhy prefixes the notifications that follow the distribution.
	NotifyWhy string
	// CreateDeal creates a deal at the channel's placement; NewContact
	// creates the contact with it (else the known contact is linked).
	CreateDeal, NewContact bool
	// SetOwner makes the pick responsible for the client's open deal (and
	// its contacts), else for the contact.
	SetOwner bool
	// OwnerFollows makes the contact's responsible follow the new deal's.
	OwnerFollows bool
	// Responsible and Notify, when the plan needs no distribution.
	Responsible crm.UserID
	Notify      []Notification
}

// decideInbound decides what a client's message does (one owner per
// client, distribution of new and orphaned clients, returning-client
// policy, pending offers). Its steps are appended to why, the
// explanation so far.
func decideInbound(cs *chanState, t *roles.Table, s inboundSnapshot, why Explanation) inboundPlan {
	p := inboundPlan{Why: why}
	ch := cs.cfg.ID
	switch {
	case !s.Known:
		p.Outcome = OutcomeNewClient
		p.Why.add(Step{Kind: StepNewClient})
		p.Distribute, p.CreateDeal, p.NewContact, p.NotifyWhy = true, true, true, "new client"

	case s.Rec.Deal != "":
		if s.Prior == OutcomeNewClient {
			// The deal an earlier delivery of this message created (its
			// answer was lost): finish as a new client, create nothing.
			p.Why.add(Step{Kind: StepFoundEarlier, Contact: s.Rec.Contact, Deal: s.Rec.Deal})
		}
		switch {
		case pendingOffer(&p, s, OutcomeOpenDeal, OutcomeOffered):
		case worksOn(t, s.Rec.Responsible, ch):
			p.Outcome = OutcomeOpenDeal
			p.Responsible = s.Rec.Responsible
			p.Notify = []Notification{{User: s.Rec.Responsible, Reason: "responsible for the open deal"}}
			p.Why.add(Step{Kind: StepOpenDeal, Deal: s.Rec.Deal, User: s.Rec.Responsible})
		case s.Rec.Responsible == "":
			p.Outcome = OutcomeReassigned
			p.Why.add(Step{Kind: StepNoResponsible, Deal: s.Rec.Deal})
			p.Distribute, p.SetOwner, p.NotifyWhy = true, true, "client of a deal without a responsible"
		default:
			p.Outcome = OutcomeReassigned
			p.Why.add(Step{Kind: StepNotOnChannel, User: s.Rec.Responsible, Channel: ch})
			p.Distribute, p.SetOwner, p.NotifyWhy = true, true, "client reassigned"
		}
		if s.Prior == OutcomeNewClient {
			p.Outcome = OutcomeNewClient
		}

	case s.Prior == OutcomeNewClient:
		// An earlier delivery created the contact but not the deal.
		p.Outcome = OutcomeNewClient
		p.Why.add(Step{Kind: StepNewClient})
		p.Distribute, p.CreateDeal, p.NotifyWhy = true, true, "new client"

	case cs.cfg.Returning == routing.NewDeal:
		p.Outcome = OutcomeReturningNewDeal
		p.Why.add(Step{Kind: StepReturningNewDeal})
		p.Distribute, p.CreateDeal, p.OwnerFollows, p.NotifyWhy = true, true, true, "returning client, new deal"

	default:
		switch {
		case pendingOffer(&p, s, OutcomeReturningNotify, OutcomeReturningNotify):
		case worksOn(t, s.Rec.Responsible, ch):
			p.Outcome = OutcomeReturningNotify
			p.Responsible = s.Rec.Responsible
			p.Notify = []Notification{{User: s.Rec.Responsible, Reason: "returning client with all deals closed: decide whether to open a deal"}}
			p.Why.add(Step{Kind: StepReturningNotify, User: s.Rec.Responsible})
		default:
			p.Outcome = OutcomeReturningNotify
			p.Why.add(Step{Kind: StepNotOnChannel, User: s.Rec.Responsible, Channel: ch})
			p.Distribute, p.SetOwner, p.NotifyWhy = true, true, "returning client, all deals closed; no deal created"
		}
	}
	// The client's reserved turn is kept, unless its employee no longer
	// works the channel: then the distribution picks again.
	if p.Distribute && s.Rec.Turn != "" && worksOn(t, s.Rec.Turn, ch) {
		p.Distribute, p.Turn = false, s.Rec.Turn
		p.Why.add(Step{Kind: StepTurnKept, User: s.Rec.Turn})
	}
	return p
}

// pendingOffer decides for a chat whose first-responder offer is still
// recorded: the claimer (claimed) or the offered group (unclaimed) is
// notified. It reports whether the offer decided the event.
func pendingOffer(p *inboundPlan, s inboundSnapshot, claimed, unclaimed Outcome) bool {
	switch {
	case s.Offered && s.Claim.Claimed():
		p.Outcome = claimed
		p.Responsible = s.Claim.ClaimedBy
		p.Notify = []Notification{{User: s.Claim.ClaimedBy, Reason: "claimed the chat"}}
		p.Why.add(Step{Kind: StepOfferClaimed, User: s.Claim.ClaimedBy})
		return true
	case s.Offered:
		p.Outcome = unclaimed
		p.Notify = notifyAll(s.Claim.Offered, "offered chat, still unclaimed")
		p.Why.add(Step{Kind: StepOfferPending, Users: s.Claim.Offered})
		return true
	}
	return false
}

// assign completes a plan with the distribution's decision: the pick is
// responsible and alone notified, or the offered group is notified.
func assign(p *inboundPlan, d routing.Decision) {
	if d.Why.Rule == routing.RuleQueue {
		p.Outcome, p.Responsible, p.Notify = OutcomeQueued, "", nil
		return
	}
	if d.User != "" {
		p.Responsible = d.User
		p.Notify = []Notification{{User: d.User, Reason: p.NotifyWhy + ": assigned by " + string(d.Why.Rule)}}
		return
	}
	if p.Outcome == OutcomeReassigned {
		p.Outcome = OutcomeOffered
	}
	p.Responsible = ""
	p.Notify = notifyAll(d.Offered, p.NotifyWhy+": offered, the first reply claims it")
}

// chatView is what is known of a chat when an employee acts in it.
type chatView struct {
	Rec     ClientRecord
	Claim   routing.ClaimState
	Offered bool
	// Cover is the owner-off-shift decision (Rule cover) when the client's
	// responsible is away at the event's time and colleagues cover; nil
	// otherwise.
	Cover *routing.Decision
}

func (v chatView) rolesState() roles.ChatState {
	st := roles.ChatState{Responsible: v.Rec.Responsible}
	if v.Offered {
		st = v.Claim.ChatState(v.Rec.Responsible)
	}
	if v.Cover != nil {
		st.Covering = v.Cover.Offered
	}
	return st
}

// writePlan is the decision for an employee's message.
type writePlan struct {
	// Claim: the reply claims the offered chat for its author.
	Claim bool
	// Covers: the author writes covering for the absent responsible, who
	// stays responsible.
	Covers bool
	// Refused, when set, is why the employee may not write.
	Refused *PermissionError
}

// decideWrite decides whether user may write to the chat, and whether the
// reply claims it (first responder).
func decideWrite(t *roles.Table, user crm.UserID, chat channel.Chat, v chatView) writePlan {
	role := t.Role(user, chat.Channel)
	ok, reason := t.CanWrite(user, chat, v.rolesState())
	if !ok {
		perr := &PermissionError{User: user, Chat: chat, Role: role, Action: "write", Reason: reason}
		switch {
		case v.Offered && v.Claim.Claimed() && v.Claim.ClaimedBy != user:
			perr.Err = &routing.ClaimedError{Chat: chat, Winner: v.Claim.ClaimedBy}
		case reason == roles.ReasonNotTheirs && v.Rec.ClaimedBy != "" && v.Rec.ClaimedBy == v.Rec.Responsible:
			// The claim was won and the CRM updated (the record released).
			perr.Reason = roles.ReasonClaimedByOther
			perr.Err = &routing.ClaimedError{Chat: chat, Winner: v.Rec.ClaimedBy}
		}
		return writePlan{Refused: perr}
	}
	return writePlan{Claim: claims(user, v), Covers: reason == roles.ReasonCovering}
}

// claims reports whether a reply by user claims the chat: it is offered,
// and user is the claimer already or one of the offered group while it is
// unclaimed.
func claims(user crm.UserID, v chatView) bool {
	return v.Offered && (v.Claim.ClaimedBy == user || (!v.Claim.Claimed() && v.Claim.OfferedTo(user)))
}

// decideReset decides whether user may reset the chat's unread counter:
// they must see the chat and hold a role that may act (not quality
// control).
func decideReset(t *roles.Table, user crm.UserID, chat channel.Chat, v chatView) *PermissionError {
	role := t.Role(user, chat.Channel)
	ok, reason := t.CanView(user, chat, v.rolesState())
	if ok && role.MayWrite() {
		return nil
	}
	if ok {
		reason = roles.ReasonQualityControl
	}
	return &PermissionError{User: user, Chat: chat, Role: role, Action: "reset the unread counter", Reason: reason}
}
