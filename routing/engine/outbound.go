package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/tasks"
)

// EmployeeMessage is a message an employee writes to a client.
type EmployeeMessage struct {
	// ID identifies this message for the host; it is the idempotency key
	// of the send. Required.
	ID string
	// User is the employee writing (required); they need a role that may
	// write on the chat's channel.
	User crm.UserID
	// Chat is the client's chat. Chat.Channel may be empty when the
	// employee writes to the client first: the engine then chooses the
	// client's existing chat on one of the employee's channels, else the
	// employee's "write first from" channel, else their only channel.
	Chat channel.Chat
	// Text is the message's text. At least one of Text and ContentURI is
	// required.
	Text string
	// ContentURI is the public address of a file to send as media; "" for
	// a text message.
	ContentURI string
}

// OutboundResult is the outcome of an employee's or Salesbot's message,
// of a reply recorded with EmployeeReplied, or of an unread reset.
type OutboundResult struct {
	// Chat is the event's chat; for an EmployeeMessage written first, its
	// Channel is the channel the engine chose.
	Chat channel.Chat
	// MessageID is the event's message ID; "" for an unread reset.
	MessageID string
	// Outcome is OutcomeSent for a message or a recorded reply, and
	// OutcomeReset for an unread reset.
	Outcome Outcome
	// Receipt is the Sender's receipt. For a Duplicate, the provider's ID
	// is not kept and Receipt only has Duplicate set.
	Receipt channel.Receipt
	// Claimed is true when this reply claimed an offered chat; Claim is the
	// claim's decision.
	Claimed bool
	// Claim is the claim's decision when Claimed is true; nil otherwise.
	Claim *routing.Decision
	// Responsible is the client's responsible user after the message.
	Responsible crm.UserID
	// TaskClosed is the unanswered-message task completed by this reply.
	TaskClosed crm.TaskID
	// Links reports each Salesbot short link (Salesbot messages only).
	Links []links.LinkResult
	// Text is the text as sent (links expanded, for Salesbot messages).
	Text string
	// Duplicate is true when the event was already processed (or, for a
	// Salesbot message, the Sender reported the send as a repeat): nothing
	// was done again. An unread reset never sets it.
	Duplicate bool
	// Why lists the steps the engine took, in order.
	Why Explanation
}

// EmployeeMessage checks that the employee may write to the chat (roles;
// a colleague covering for an absent responsible may, see the package
// doc), claims an offered chat when this is the first reply (first responder;
// the CRM's responsible user is set to the winner), sends the message
// through the Sender, and closes the chat's unanswered-message streak,
// completing its task.
//
// Errors: *EventError (bad field; ErrUnknownEmployee when the employee has
// no role on the channel), *AmbiguousChannelError, *PermissionError (its
// Err is a *routing.ClaimedError naming the winner when someone else
// claimed the chat), or the CRM's or Sender's error; a retry with the same
// ID is safe.
func (e *Engine) EmployeeMessage(ctx context.Context, m EmployeeMessage) (res OutboundResult, err error) {
	const ev = "EmployeeMessage"
	s := e.set.Load()
	if e.log != nil || e.obs != nil {
		start := time.Now()
		defer func() { e.observe(ctx, ev, m.Chat, res.Outcome, res.Claim, res.Duplicate, start, err) }()
	}
	switch {
	case m.ID == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: it is the send's idempotency key"}
	case m.User == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Reason: "empty"}
	case m.Chat.ChatID == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "Chat.ChatID", Reason: "empty"}
	case m.Text == "" && m.ContentURI == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "Text", Reason: "neither Text nor ContentURI is set"}
	}
	var why Explanation
	if m.Chat.Channel == "" {
		ch, reason, err := e.chooseChannel(ctx, s, m.User, m.Chat.ChatID)
		if err != nil {
			return OutboundResult{}, err
		}
		m.Chat.Channel = ch
		why.add(Step{Kind: StepChannelChosen, Channel: ch, Text: reason})
	}
	cs, err := s.checkChat(ev, m.Chat, false)
	if err != nil {
		return OutboundResult{}, err
	}
	role := s.table.Role(m.User, cs.cfg.ID)
	if role == roles.NoRole {
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Value: string(m.User),
			Reason: "has no role on channel " + string(cs.cfg.ID), Err: ErrUnknownEmployee}
	}
	l, release, err := e.acquire(ctx, m.Chat)
	if err != nil {
		return OutboundResult{}, err
	}
	defer release()

	key := MessageKey{Chat: m.Chat, Kind: kindOutbound, ID: m.ID}
	res = OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Text: m.Text, Why: why}
	if jr, seen, err := e.state.Message(ctx, key); err != nil {
		return res, err
	} else if seen && jr.Done {
		cr, _, err := e.state.Client(ctx, m.Chat)
		res.Duplicate, res.Receipt.Duplicate, res.Responsible = true, true, cr.Responsible
		res.Why.add(Step{Kind: StepDuplicate})
		return res, err
	}

	v, err := e.chatView(ctx, l, s, cs, m.Chat)
	if err != nil {
		return res, err
	}
	if err := e.cover(ctx, s, cs, m.Chat, &v, e.now()); err != nil {
		return res, err
	}
	plan := decideWrite(s.table, m.User, m.Chat, v)
	if plan.Refused != nil {
		return res, plan.Refused
	}
	res.Why.add(Step{Kind: StepMayWrite, User: m.User, Text: string(role)})
	if plan.Covers {
		res.Why.add(Step{Kind: StepCovering, User: m.User, Decision: v.Cover})
	}
	if plan.Claim {
		d, err := e.claimByReply(ctx, l, cs, m.Chat, &v.Rec, m.User)
		if err != nil {
			if errors.Is(err, routing.ErrAlreadyClaimed) {
				return res, &PermissionError{User: m.User, Chat: m.Chat, Role: role, Action: "write",
					Reason: roles.ReasonClaimedByOther, Err: err}
			}
			return res, err
		}
		res.Claimed, res.Claim = true, &d
		res.Why.add(Step{Kind: StepClaim, User: m.User, Decision: res.Claim})
	}
	res.Responsible = v.Rec.Responsible

	rc, err := e.sender.Send(ctx, channel.Outgoing{
		Chat: m.Chat, Text: m.Text, ContentURI: m.ContentURI,
		Author:         channel.Author{Kind: channel.AuthorEmployee, UserID: string(m.User)},
		IdempotencyKey: m.ID,
	})
	if err != nil {
		return res, fmt.Errorf("engine: sending %s's message to %s: %w", m.User, m.Chat, err)
	}
	res.Receipt = rc
	res.Why.add(Step{Kind: StepSent})
	if err := e.rememberSent(ctx, l, m.Chat, rc); err != nil {
		return res, err
	}
	if err := e.closeStreak(ctx, s, m.Chat, tasks.EmployeeReply, &res); err != nil {
		return res, err
	}
	return res, e.state.PutMessage(ctx, l, key, MessageRecord{Done: true, Outcome: OutcomeSent})
}

// chatView returns what the engine knows of the chat's client (reading
// the CRM when the record is stale) and its offer/claim state.
func (e *Engine) chatView(ctx context.Context, l Lease, s *settings, cs *chanState, chat channel.Chat) (chatView, error) {
	cr, _, err := e.state.Client(ctx, chat)
	if err != nil {
		return chatView{}, err
	}
	if cr.Contact == "" || !e.fresh(cr) {
		loaded, found, err := e.loadClient(ctx, s, cs, chat, "", cr, func(string) {})
		if err != nil {
			return chatView{}, err
		}
		if found {
			if _, err := e.syncDist(ctx, cs, chat, cr, &loaded); err != nil {
				return chatView{}, err
			}
			cr = loaded
			if err := e.state.PutClient(ctx, l, cr); err != nil {
				return chatView{}, err
			}
		}
	}
	st, offered, err := e.dist.ClaimState(ctx, chat)
	if err != nil {
		return chatView{}, err
	}
	return chatView{Rec: cr, Claim: st, Offered: offered}, nil
}

// claimByReply claims an offered chat for the author of a reply (on a
// channel with a capacity limit the claim counts toward it, and a claimer
// at the limit is refused), makes them responsible in the CRM, and
// releases the claim record.
func (e *Engine) claimByReply(ctx context.Context, l Lease, cs *chanState, chat channel.Chat, cr *ClientRecord, user crm.UserID) (routing.Decision, error) {
	d, err := e.dist.ClaimWithin(ctx, cs.cfg.Features, chat, user)
	if err != nil {
		return routing.Decision{}, err
	}
	cr.ClaimedBy = user
	if err := e.makeResponsible(ctx, cr, user); err != nil {
		return d, err
	}
	if cr.Contact != "" {
		if err := e.state.PutClient(ctx, l, *cr); err != nil {
			return d, err
		}
	}
	return d, e.dist.Release(ctx, chat)
}

// rememberSent records the provider's ID of a message the engine sent, so
// that its echo from the provider is recognised (EmployeeReplied).
func (e *Engine) rememberSent(ctx context.Context, l Lease, chat channel.Chat, rc channel.Receipt) error {
	if rc.ProviderID == "" {
		return nil
	}
	return e.state.PutMessage(ctx, l, MessageKey{Chat: chat, Kind: kindSent, ID: rc.ProviderID}, MessageRecord{Done: true, Outcome: OutcomeSent})
}

// EmployeeReplied records a reply that went out on the channel without
// the engine: typed in the provider's app or on the phone, reported by the
// provider's webhook as an echo (an outbound message). Nothing is sent and
// nothing is refused — the client already has the reply. The reply closes
// the chat's unanswered streak (its task is completed), and when its author
// is an employee who was offered the chat, it claims the chat as a reply
// through EmployeeMessage would.
//
// Echoes of messages the engine sent itself (recognised by the provider's
// message ID), and messages whose author is Salesbot or the system, have
// no effect. m needs ID, Chat and Direction Outbound; a second delivery of
// the same ID has no second effect.
func (e *Engine) EmployeeReplied(ctx context.Context, m channel.Message) (res OutboundResult, err error) {
	const ev = "EmployeeReplied"
	s := e.set.Load()
	if e.log != nil || e.obs != nil {
		start := time.Now()
		defer func() { e.observe(ctx, ev, m.Chat, res.Outcome, res.Claim, res.Duplicate, start, err) }()
	}
	if m.ID == "" {
		return OutboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: the message ID makes deliveries idempotent"}
	}
	cs, err := s.checkChat(ev, m.Chat, m.Group)
	if err != nil {
		return OutboundResult{}, err
	}
	if m.Direction != channel.Outbound {
		return OutboundResult{}, &EventError{Event: ev, Field: "Direction", Value: m.Direction.String(),
			Reason: "a reply is outbound; use ClientMessage for the client's messages"}
	}
	l, release, err := e.acquire(ctx, m.Chat)
	if err != nil {
		return OutboundResult{}, err
	}
	defer release()
	key := MessageKey{Chat: m.Chat, Kind: kindEcho, ID: m.ID}
	res = OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Text: m.Text}
	done := func(k StepKind) (OutboundResult, error) {
		res.Why.add(Step{Kind: k})
		return res, e.state.PutMessage(ctx, l, key, MessageRecord{Done: true, Outcome: OutcomeSent})
	}
	if jr, seen, err := e.state.Message(ctx, key); err != nil {
		return res, err
	} else if seen && jr.Done {
		cr, _, err := e.state.Client(ctx, m.Chat)
		res.Duplicate, res.Responsible = true, cr.Responsible
		res.Why.add(Step{Kind: StepDuplicate})
		return res, err
	}
	if _, ours, err := e.state.Message(ctx, MessageKey{Chat: m.Chat, Kind: kindSent, ID: m.ID}); err != nil {
		return res, err
	} else if ours {
		return done(StepOwnEcho)
	}
	if m.Author.Kind == channel.AuthorSalesbot || m.Author.Kind == channel.AuthorSystem {
		res.Why.add(Step{Kind: StepNotEmployeeReply, Text: m.Author.Kind.String()})
		return done(StepRecorded)
	}
	user := crm.UserID(m.Author.UserID)
	if user != "" && s.table.Role(user, cs.cfg.ID) != roles.NoRole && !m.Group {
		v, err := e.chatView(ctx, l, s, cs, m.Chat)
		if err != nil {
			return res, err
		}
		res.Responsible = v.Rec.Responsible
		if claims(user, v) {
			d, err := e.claimByReply(ctx, l, cs, m.Chat, &v.Rec, user)
			var ce *routing.ClaimedError
			switch {
			case errors.As(err, &ce):
				res.Why.add(Step{Kind: StepClaimLost, User: user, Decision: &routing.Decision{User: ce.Winner}})
			case err != nil:
				return res, err
			default:
				res.Claimed, res.Claim, res.Responsible = true, &d, user
				res.Why.add(Step{Kind: StepClaim, User: user, Decision: res.Claim})
			}
		}
	} else {
		res.Why.add(Step{Kind: StepNotEmployeeReply, User: user, Channel: cs.cfg.ID})
	}
	if err := e.closeStreak(ctx, s, m.Chat, tasks.EmployeeReply, &res); err != nil {
		return res, err
	}
	return done(StepRecorded)
}

// closeStreak closes the chat's unanswered streak after completing its
// task (completing first, so a failure leaves the streak for a retry).
func (e *Engine) closeStreak(ctx context.Context, s *settings, chat channel.Chat, ev tasks.Event, res *OutboundResult) error {
	if err := e.dist.Replied(ctx, chat); err != nil { // the escalation clock stops
		return err
	}
	if tasks.Plan(s.cfg.Global.UnansweredTasks, ev) != tasks.Close {
		return nil
	}
	st, found, err := e.streaks.Get(ctx, chat)
	if err != nil || !found {
		return err
	}
	if st.Task != "" {
		if err := e.crm.CompleteTask(ctx, st.Task); err != nil {
			return fmt.Errorf("engine: completing task %s: %w", st.Task, err)
		}
	}
	if _, _, err := e.streaks.Close(ctx, chat); err != nil {
		return err
	}
	if st.Task != "" {
		res.TaskClosed = st.Task
		res.Why.add(Step{Kind: StepTaskClosed, Task: st.Task})
	}
	return nil
}

// chooseChannel picks the channel an employee writes to a client first
// from, after looking up on which of the employee's channels the client
// already has a chat.
func (e *Engine) chooseChannel(ctx context.Context, s *settings, user crm.UserID, chatID string) (channel.ID, string, error) {
	mine := writable(s.table, user)
	var existing []channel.ID
	for _, ch := range mine {
		if r, ok, err := e.state.Client(ctx, channel.Chat{Channel: ch, ChatID: chatID}); err != nil {
			return "", "", err
		} else if ok && r.Contact != "" {
			existing = append(existing, ch)
			break
		}
	}
	return decideChannel(s.table, s.cfg.Global.WriteFirstFrom, user, chatID, existing)
}

// writable lists the channels where user may write.
func writable(t *roles.Table, user crm.UserID) []channel.ID {
	var mine []channel.ID
	for _, ch := range t.Channels(user) {
		if t.Role(user, ch).MayWrite() {
			mine = append(mine, ch)
		}
	}
	return mine
}

// decideChannel chooses the channel of an employee's first message to a
// client: the client's existing chat on one of the employee's channels
// (existing), else the employee's "write first from" channel, else their
// only channel; still ambiguous, an *AmbiguousChannelError.
func decideChannel(t *roles.Table, writeFirst map[crm.UserID]channel.ID, user crm.UserID, chatID string, existing []channel.ID) (channel.ID, string, error) {
	mine := writable(t, user)
	if len(mine) == 0 {
		return "", "", &EventError{Event: "EmployeeMessage", Field: "User", Value: string(user),
			Reason: "may write on no channel", Err: ErrUnknownEmployee}
	}
	for _, ch := range existing {
		if slices.Contains(mine, ch) {
			return ch, "the client's existing chat", nil
		}
	}
	if ch, ok := writeFirst[user]; ok {
		return ch, "the employee's write-first channel", nil
	}
	if len(mine) == 1 {
		return mine[0], "the employee's only channel", nil
	}
	return "", "", &AmbiguousChannelError{User: user, ChatID: chatID, Candidates: mine}
}

// SalesbotMessage is a message Salesbot sends through the integration.
type SalesbotMessage struct {
	// ID is the send's idempotency key. Required.
	ID string
	// Chat is the client's chat; both of its fields are required.
	Chat channel.Chat
	// Text is the message's text, in which Salesbot's short links are
	// expanded when ExpandSalesbotLinks is on. At least one of Text and
	// ContentURI is required.
	Text string
	// ContentURI is the public address of a file to send as media; "" for
	// a text message.
	ContentURI string
}

// SalesbotMessage sends a Salesbot message. With the global setting
// ExpandSalesbotLinks on, its short links are first replaced by the
// addresses they lead to; a link that cannot be expanded stays as it was
// and is reported in Links, and the message is sent regardless. A Salesbot
// message never counts as an employee's reply: it neither claims the chat
// nor closes the unanswered streak. A second delivery of the same ID is
// answered from the engine's journal with Duplicate set, nothing sent
// (the Sender still gets the ID as its idempotency key, for a send whose
// answer was lost).
func (e *Engine) SalesbotMessage(ctx context.Context, m SalesbotMessage) (res OutboundResult, err error) {
	const ev = "SalesbotMessage"
	s := e.set.Load()
	if e.log != nil || e.obs != nil {
		start := time.Now()
		defer func() { e.observe(ctx, ev, m.Chat, res.Outcome, nil, res.Duplicate, start, err) }()
	}
	switch {
	case m.ID == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: it is the send's idempotency key"}
	case m.Text == "" && m.ContentURI == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "Text", Reason: "neither Text nor ContentURI is set"}
	}
	if _, err := s.checkChat(ev, m.Chat, false); err != nil {
		return OutboundResult{}, err
	}
	res = OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Text: m.Text}
	// The journal answers a redelivery without a second send, even after
	// a restart and with a Sender that does not deduplicate; it is read
	// again under the chat's lease, after the links (which may take a
	// while) are expanded without holding it.
	key := MessageKey{Chat: m.Chat, Kind: kindSalesbot, ID: m.ID}
	duplicate := func() (bool, error) {
		jr, seen, err := e.state.Message(ctx, key)
		if err != nil || !seen || !jr.Done {
			return false, err
		}
		res.Duplicate, res.Receipt.Duplicate = true, true
		res.Why.add(Step{Kind: StepDuplicate})
		return true, nil
	}
	if dup, err := duplicate(); dup || err != nil {
		return res, err
	}
	if s.cfg.Global.ExpandSalesbotLinks && m.Text != "" {
		x, err := e.expander().ExpandText(ctx, m.Text)
		step := Step{Kind: StepLinks, Of: len(x.Links)}
		if err != nil {
			step.Text = "links not expanded: " + err.Error()
		}
		res.Text, res.Links = x.Text, x.Links
		for _, lr := range x.Links {
			if lr.Replaced {
				step.N++
			}
		}
		res.Why.add(step)
	}
	l, release, err := e.acquire(ctx, m.Chat)
	if err != nil {
		return res, err
	}
	defer release()
	if dup, err := duplicate(); dup || err != nil {
		return res, err
	}
	rc, err := e.sender.Send(ctx, channel.Outgoing{
		Chat: m.Chat, Text: res.Text, ContentURI: m.ContentURI,
		Author: channel.Author{Kind: channel.AuthorSalesbot}, IdempotencyKey: m.ID,
	})
	if err != nil {
		return res, fmt.Errorf("engine: sending Salesbot message to %s: %w", m.Chat, err)
	}
	res.Receipt, res.Duplicate = rc, rc.Duplicate
	if err := e.rememberSent(ctx, l, m.Chat, rc); err != nil {
		return res, err
	}
	res.Why.add(Step{Kind: StepBotReply})
	return res, e.state.PutMessage(ctx, l, key, MessageRecord{Done: true, Outcome: OutcomeSent})
}

// UnreadReset is an employee marking a chat as needing no reply.
type UnreadReset struct {
	// User is the employee resetting the counter (required); they must see
	// the chat and hold a role that may write (not quality control).
	User crm.UserID
	// Chat is the client's chat; both of its fields are required.
	Chat channel.Chat
}

// ResetUnread closes the chat's unanswered streak and completes its task,
// as a reply would, without sending anything. The employee must see the
// chat and hold a role that may act in it (not quality control).
func (e *Engine) ResetUnread(ctx context.Context, r UnreadReset) (res OutboundResult, err error) {
	const ev = "ResetUnread"
	s := e.set.Load()
	if e.log != nil || e.obs != nil {
		start := time.Now()
		defer func() { e.observe(ctx, ev, r.Chat, res.Outcome, nil, false, start, err) }()
	}
	if r.User == "" {
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Reason: "empty"}
	}
	cs, err := s.checkChat(ev, r.Chat, false)
	if err != nil {
		return OutboundResult{}, err
	}
	role := s.table.Role(r.User, cs.cfg.ID)
	if role == roles.NoRole {
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Value: string(r.User),
			Reason: "has no role on channel " + string(cs.cfg.ID), Err: ErrUnknownEmployee}
	}
	l, release, err := e.acquire(ctx, r.Chat)
	if err != nil {
		return OutboundResult{}, err
	}
	defer release()
	v, err := e.chatView(ctx, l, s, cs, r.Chat)
	if err != nil {
		return OutboundResult{}, err
	}
	if err := e.cover(ctx, s, cs, r.Chat, &v, e.now()); err != nil {
		return OutboundResult{}, err
	}
	if perr := decideReset(s.table, r.User, r.Chat, v); perr != nil {
		return OutboundResult{}, perr
	}
	res = OutboundResult{Chat: r.Chat, Outcome: OutcomeReset, Responsible: v.Rec.Responsible}
	res.Why.add(Step{Kind: StepReset})
	return res, e.closeStreak(ctx, s, r.Chat, tasks.UnreadReset, &res)
}

// CanView reports whether user sees the chat, from what the engine knows
// (no CRM call): the user's role on the chat's channel, the client's
// responsible user, the chat's offer/claim state, and whether the user
// covers for the responsible, who is away now.
func (e *Engine) CanView(ctx context.Context, user crm.UserID, chat channel.Chat) (bool, roles.Reason, error) {
	s := e.set.Load()
	st, err := e.knownState(ctx, s, chat, e.now())
	if err != nil {
		return false, "", err
	}
	ok, reason := s.table.CanView(user, chat, st)
	return ok, reason, nil
}

// VisibleChats filters chats down to those user sees, with the same
// predicate as CanView.
func (e *Engine) VisibleChats(ctx context.Context, user crm.UserID, chats []channel.Chat) ([]channel.Chat, error) {
	s, now := e.set.Load(), e.now()
	states := make(map[channel.Chat]roles.ChatState, len(chats))
	for _, c := range chats {
		st, err := e.knownState(ctx, s, c, now)
		if err != nil {
			return nil, err
		}
		states[c] = st
	}
	return roles.Filter(s.table, user, chats, func(c channel.Chat) (channel.Chat, roles.ChatState) { return c, states[c] }), nil
}

func (e *Engine) knownState(ctx context.Context, s *settings, chat channel.Chat, now time.Time) (roles.ChatState, error) {
	cr, _, err := e.state.Client(ctx, chat)
	if err != nil {
		return roles.ChatState{}, err
	}
	st, offered, err := e.dist.ClaimState(ctx, chat)
	if err != nil {
		return roles.ChatState{}, err
	}
	v := chatView{Rec: cr, Claim: st, Offered: offered}
	if cs := s.chans[chat.Channel]; cs != nil && cr.Contact != "" {
		if err := e.cover(ctx, s, cs, chat, &v, now); err != nil {
			return roles.ChatState{}, err
		}
	}
	return v.rolesState(), nil
}
