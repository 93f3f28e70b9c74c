package routing

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/tasks"
)

// EmployeeMessage is a message an employee writes to a client.
type EmployeeMessage struct {
	// ID identifies this message for the host; it is the idempotency key
	// of the send. Required.
	ID   string
	User crm.UserID
	// Chat is the client's chat. Chat.Channel may be empty when the
	// employee writes to the client first: the engine then chooses the
	// client's existing chat on one of the employee's channels, else the
	// employee's "write first from" channel, else their only channel.
	Chat       channel.Chat
	Text       string
	ContentURI string
}

// OutboundResult is the outcome of an employee's or Salesbot's message.
type OutboundResult struct {
	Chat      channel.Chat
	MessageID string
	Outcome   Outcome
	Receipt   channel.Receipt
	// Claimed is true when this reply claimed an offered chat; Claim is the
	// claim's decision.
	Claimed bool
	Claim   *Decision
	// Responsible is the client's responsible user after the message.
	Responsible crm.UserID
	// TaskClosed is the unanswered-message task completed by this reply.
	TaskClosed crm.TaskID
	// Links reports each Salesbot short link (Salesbot messages only).
	Links []links.LinkResult
	// Text is the text as sent (links expanded, for Salesbot messages).
	Text      string
	Duplicate bool
	Why       string
}

// EmployeeMessage checks that the employee may write to the chat (roles),
// claims an offered chat when this is the first reply (first responder;
// the CRM's responsible user is set to the winner), sends the message
// through the Sender, and closes the chat's unanswered-message streak,
// completing its task.
//
// Errors: *EventError (bad field; ErrUnknownEmployee when the employee has
// no role on the channel), *AmbiguousChannelError, *PermissionError (its
// Err is a *ClaimedError naming the winner when someone else claimed the
// chat), or the CRM's or Sender's error; a retry with the same ID is safe.
func (e *Engine) EmployeeMessage(ctx context.Context, m EmployeeMessage) (OutboundResult, error) {
	const ev = "EmployeeMessage"
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
	var why []string
	if m.Chat.Channel == "" {
		ch, reason, err := e.chooseChannel(ctx, m.User, m.Chat.ChatID)
		if err != nil {
			return OutboundResult{}, err
		}
		m.Chat.Channel = ch
		why = append(why, fmt.Sprintf("channel %s: %s", ch, reason))
	}
	cs, err := e.chanOf(ev, m.Chat.Channel)
	if err != nil {
		return OutboundResult{}, err
	}
	role := e.table.Role(m.User, cs.cfg.ID)
	if role == roles.NoRole {
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Value: string(m.User),
			Reason: fmt.Sprintf("has no role on channel %s", cs.cfg.ID), Err: ErrUnknownEmployee}
	}
	defer e.lock(m.Chat)()

	key := msgKey("out", m.Chat.Channel, m.ID)
	rec, seen, err := e.state.Message(ctx, key)
	if err != nil {
		return OutboundResult{}, err
	}
	if seen && rec.Done {
		return OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Duplicate: true,
			Receipt: channel.Receipt{ProviderID: rec.Summary.Provider, Duplicate: true}, Responsible: rec.Summary.Responsible,
			Text: m.Text, Why: "already processed: no second effect"}, nil
	}
	res := OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Text: m.Text}

	cr, st, offered, err := e.chatState(ctx, cs, m.Chat)
	if err != nil {
		return res, err
	}
	cst := roles.ChatState{Responsible: cr.Responsible}
	if offered {
		cst = st.ChatState(cr.Responsible)
	}
	if ok, reason := e.table.CanWrite(m.User, m.Chat, cst); !ok {
		perr := &PermissionError{User: m.User, Chat: m.Chat, Role: role, Action: "write", Reason: reason}
		switch {
		case offered && st.Claimed() && st.ClaimedBy != m.User:
			perr.Err = &ClaimedError{Chat: m.Chat, Winner: st.ClaimedBy}
		case reason == roles.ReasonNotTheirs && cr.ClaimedBy != "" && cr.ClaimedBy == cr.Responsible:
			// The claim was won and the CRM updated (the record released).
			perr.Reason = roles.ReasonClaimedByOther
			perr.Err = &ClaimedError{Chat: m.Chat, Winner: cr.ClaimedBy}
		}
		return res, perr
	}
	why = append(why, fmt.Sprintf("%s may write (%s)", m.User, role))

	// First responder: the first reply of an offered employee claims the chat.
	if offered && (st.ClaimedBy == m.User || (!st.Claimed() && st.OfferedTo(m.User))) {
		d, err := e.claimByReply(ctx, m.Chat, &cr, m.User)
		if err != nil {
			var ce *ClaimedError
			if errors.As(err, &ce) {
				return res, &PermissionError{User: m.User, Chat: m.Chat, Role: role, Action: "write",
					Reason: roles.ReasonClaimedByOther, Err: err}
			}
			return res, err
		}
		res.Claimed, res.Claim = true, &d
		why = append(why, d.String(), fmt.Sprintf("%s is now responsible in the CRM; the chat left the other managers", m.User))
	}
	res.Responsible = cr.Responsible

	rc, err := e.sender.Send(ctx, channel.Outgoing{
		Chat: m.Chat, Text: m.Text, ContentURI: m.ContentURI,
		Author:         channel.Author{Kind: channel.AuthorEmployee, UserID: string(m.User)},
		IdempotencyKey: m.ID,
	})
	if err != nil {
		res.Why = joinWhy(why)
		return res, fmt.Errorf("routing: sending %s's message to %s: %w", m.User, m.Chat, err)
	}
	res.Receipt = rc
	why = append(why, "sent")
	if err := e.rememberSent(ctx, m.Chat.Channel, rc); err != nil {
		return res, err
	}

	closed, err := e.closeStreak(ctx, m.Chat, tasks.EmployeeReply)
	if err != nil {
		res.Why = joinWhy(why)
		return res, err
	}
	if closed != "" {
		res.TaskClosed = closed
		why = append(why, fmt.Sprintf("reply closed the unanswered streak; task %s completed", closed))
	}
	res.Why = joinWhy(why)
	rec.Done = true
	rec.Summary = Summary{Outcome: OutcomeSent, Contact: cr.Contact, Deal: cr.Deal, Responsible: cr.Responsible, Provider: rc.ProviderID}
	return res, e.state.PutMessage(ctx, key, rec)
}

// chatState returns what the engine knows of the chat's client (reading
// the CRM when the record is stale) and its offer/claim state.
func (e *Engine) chatState(ctx context.Context, cs *chanState, chat channel.Chat) (ClientRecord, ClaimState, bool, error) {
	cr, known, err := e.state.Client(ctx, chat)
	if err != nil {
		return ClientRecord{}, ClaimState{}, false, err
	}
	if !known || !e.fresh(cr) {
		var warnings []string
		loaded, found, err := e.loadClient(ctx, cs, chat, "", cr, known, &warnings)
		if err != nil {
			return ClientRecord{}, ClaimState{}, false, err
		}
		if found {
			cr = loaded
			if err := e.state.PutClient(ctx, chat, cr); err != nil {
				return ClientRecord{}, ClaimState{}, false, err
			}
		}
	}
	st, offered, err := e.dist.ClaimState(ctx, chat)
	if err != nil {
		return ClientRecord{}, ClaimState{}, false, err
	}
	return cr, st, offered, nil
}

// claimByReply claims an offered chat for the author of a reply, makes
// them responsible in the CRM, and releases the claim record.
func (e *Engine) claimByReply(ctx context.Context, chat channel.Chat, cr *ClientRecord, user crm.UserID) (Decision, error) {
	d, err := e.dist.Claim(ctx, chat, user)
	if err != nil {
		return Decision{}, err
	}
	cr.ClaimedBy = user
	if err := e.makeResponsible(ctx, chat, cr, user); err != nil {
		return d, err
	}
	return d, e.dist.Release(ctx, chat)
}

// rememberSent records the provider's ID of a message the engine sent, so
// that its echo from the provider is recognised (EmployeeReplied).
func (e *Engine) rememberSent(ctx context.Context, ch channel.ID, rc channel.Receipt) error {
	if rc.ProviderID == "" {
		return nil
	}
	return e.state.PutMessage(ctx, msgKey("sent", ch, rc.ProviderID), MessageRecord{Done: true})
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
func (e *Engine) EmployeeReplied(ctx context.Context, m channel.Message) (OutboundResult, error) {
	const ev = "EmployeeReplied"
	if m.ID == "" {
		return OutboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: the message ID makes deliveries idempotent"}
	}
	cs, err := e.chanOf(ev, m.Chat.Channel)
	if err != nil {
		return OutboundResult{}, err
	}
	if m.Chat.ChatID == "" {
		return OutboundResult{}, &EventError{Event: ev, Field: "Chat.ChatID", Reason: "empty"}
	}
	if m.Direction != channel.Outbound {
		return OutboundResult{}, &EventError{Event: ev, Field: "Direction", Value: m.Direction.String(),
			Reason: "a reply is outbound; use ClientMessage for the client's messages"}
	}
	defer e.lock(m.Chat)()
	key := msgKey("echo", m.Chat.Channel, m.ID)
	res := OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Text: m.Text}
	done := func(why string) (OutboundResult, error) {
		res.Why = why
		return res, e.state.PutMessage(ctx, key, MessageRecord{Done: true, Summary: Summary{Outcome: OutcomeSent, Responsible: res.Responsible}})
	}
	if rec, seen, err := e.state.Message(ctx, key); err != nil {
		return res, err
	} else if seen && rec.Done {
		res.Duplicate, res.Responsible, res.Why = true, rec.Summary.Responsible, "already processed: no second effect"
		return res, nil
	}
	if _, ours, err := e.state.Message(ctx, msgKey("sent", m.Chat.Channel, m.ID)); err != nil {
		return res, err
	} else if ours {
		return done("echo of a message the engine sent: already applied")
	}
	if m.Author.Kind == channel.AuthorSalesbot || m.Author.Kind == channel.AuthorSystem {
		return done("written by " + m.Author.Kind.String() + ": not an employee's reply")
	}
	var why []string
	user := crm.UserID(m.Author.UserID)
	if user != "" && e.table.Role(user, cs.cfg.ID) != roles.NoRole {
		cr, st, offered, err := e.chatState(ctx, cs, m.Chat)
		if err != nil {
			return res, err
		}
		res.Responsible = cr.Responsible
		if offered && (st.ClaimedBy == user || (!st.Claimed() && st.OfferedTo(user))) {
			d, err := e.claimByReply(ctx, m.Chat, &cr, user)
			var ce *ClaimedError
			switch {
			case errors.As(err, &ce):
				why = append(why, fmt.Sprintf("%s replied outside the engine but %s had claimed the chat", user, ce.Winner))
			case err != nil:
				return res, err
			default:
				res.Claimed, res.Claim, res.Responsible = true, &d, user
				why = append(why, d.String())
			}
		}
	} else {
		why = append(why, fmt.Sprintf("reply by %q, not an employee of channel %s", user, cs.cfg.ID))
	}
	closed, err := e.closeStreak(ctx, m.Chat, tasks.EmployeeReply)
	if err != nil {
		return res, err
	}
	if closed != "" {
		res.TaskClosed = closed
		why = append(why, fmt.Sprintf("reply closed the unanswered streak; task %s completed", closed))
	}
	return done(joinWhy(append(why, "reply recorded; nothing sent")))
}

// makeResponsible sets user responsible in the CRM for the client's open
// deal (and its contact), or for the contact when no deal is open.
func (e *Engine) makeResponsible(ctx context.Context, chat channel.Chat, cr *ClientRecord, user crm.UserID) error {
	switch {
	case cr.Deal != "":
		if err := e.crm.SetResponsible(ctx, cr.Deal, user); err != nil {
			return fmt.Errorf("routing: making %s responsible for deal %s: %w", user, cr.Deal, err)
		}
	case cr.Contact != "":
		if err := e.crm.SetContactResponsible(ctx, cr.Contact, user); err != nil {
			return fmt.Errorf("routing: making %s responsible for contact %s: %w", user, cr.Contact, err)
		}
	}
	cr.Responsible, cr.Fetched = user, e.now()
	if cr.Contact == "" {
		return nil // no client in the CRM: nothing to remember
	}
	return e.state.PutClient(ctx, chat, *cr)
}

// closeStreak closes the chat's unanswered streak after completing its
// task (completing first, so a failure leaves the streak for a retry).
func (e *Engine) closeStreak(ctx context.Context, chat channel.Chat, ev tasks.Event) (crm.TaskID, error) {
	if tasks.Plan(e.cfg.Global.UnansweredTasks, ev) != tasks.Close {
		return "", nil
	}
	s, found, err := e.streaks.Get(ctx, chat)
	if err != nil || !found {
		return "", err
	}
	if s.Task != "" {
		if err := e.crm.CompleteTask(ctx, s.Task); err != nil {
			return "", fmt.Errorf("routing: completing task %s: %w", s.Task, err)
		}
	}
	if _, _, err := e.streaks.Close(ctx, chat); err != nil {
		return "", err
	}
	return s.Task, nil
}

// chooseChannel picks the channel an employee writes to a client first from.
func (e *Engine) chooseChannel(ctx context.Context, user crm.UserID, chatID string) (channel.ID, string, error) {
	var mine []channel.ID
	for _, ch := range e.table.Channels(user) {
		if e.table.Role(user, ch).MayWrite() {
			mine = append(mine, ch)
		}
	}
	if len(mine) == 0 {
		return "", "", &EventError{Event: "EmployeeMessage", Field: "User", Value: string(user),
			Reason: "may write on no channel", Err: ErrUnknownEmployee}
	}
	for _, ch := range mine {
		if _, ok, err := e.state.Client(ctx, channel.Chat{Channel: ch, ChatID: chatID}); err != nil {
			return "", "", err
		} else if ok {
			return ch, "the client's existing chat", nil
		}
	}
	if ch, ok := e.cfg.Global.WriteFirstFrom[user]; ok {
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
	ID         string
	Chat       channel.Chat
	Text       string
	ContentURI string
}

// SalesbotMessage sends a Salesbot message. With the global setting
// ExpandSalesbotLinks on, its short links are first replaced by the
// addresses they lead to; a link that cannot be expanded stays as it was
// and is reported in Links, and the message is sent regardless. A Salesbot
// message never counts as an employee's reply: it neither claims the chat
// nor closes the unanswered streak.
func (e *Engine) SalesbotMessage(ctx context.Context, m SalesbotMessage) (OutboundResult, error) {
	const ev = "SalesbotMessage"
	switch {
	case m.ID == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: it is the send's idempotency key"}
	case m.Chat.ChatID == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "Chat.ChatID", Reason: "empty"}
	case m.Text == "" && m.ContentURI == "":
		return OutboundResult{}, &EventError{Event: ev, Field: "Text", Reason: "neither Text nor ContentURI is set"}
	}
	if _, err := e.chanOf(ev, m.Chat.Channel); err != nil {
		return OutboundResult{}, err
	}
	res := OutboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: OutcomeSent, Text: m.Text}
	var why []string
	if e.cfg.Global.ExpandSalesbotLinks && e.links != nil && m.Text != "" {
		x, err := e.links.ExpandText(ctx, m.Text)
		if err != nil {
			why = append(why, fmt.Sprintf("links not expanded: %v", err))
		}
		res.Text, res.Links = x.Text, x.Links
		n := 0
		for _, l := range x.Links {
			if l.Replaced {
				n++
			}
		}
		why = append(why, fmt.Sprintf("expanded %d of %d short links", n, len(x.Links)))
	}
	rc, err := e.sender.Send(ctx, channel.Outgoing{
		Chat: m.Chat, Text: res.Text, ContentURI: m.ContentURI,
		Author: channel.Author{Kind: channel.AuthorSalesbot}, IdempotencyKey: m.ID,
	})
	if err != nil {
		return res, fmt.Errorf("routing: sending Salesbot message to %s: %w", m.Chat, err)
	}
	res.Receipt, res.Duplicate = rc, rc.Duplicate
	if err := e.rememberSent(ctx, m.Chat.Channel, rc); err != nil {
		return res, err
	}
	res.Why = joinWhy(append(why, "sent; not an employee's reply: streak and claim unchanged"))
	return res, nil
}

// UnreadReset is an employee marking a chat as needing no reply.
type UnreadReset struct {
	User crm.UserID
	Chat channel.Chat
}

// ResetUnread closes the chat's unanswered streak and completes its task,
// as a reply would, without sending anything. The employee must see the
// chat and hold a role that may act in it (not quality control).
func (e *Engine) ResetUnread(ctx context.Context, r UnreadReset) (OutboundResult, error) {
	const ev = "ResetUnread"
	if r.User == "" {
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Reason: "empty"}
	}
	if r.Chat.ChatID == "" {
		return OutboundResult{}, &EventError{Event: ev, Field: "Chat.ChatID", Reason: "empty"}
	}
	cs, err := e.chanOf(ev, r.Chat.Channel)
	if err != nil {
		return OutboundResult{}, err
	}
	role := e.table.Role(r.User, cs.cfg.ID)
	if role == roles.NoRole {
		return OutboundResult{}, &EventError{Event: ev, Field: "User", Value: string(r.User),
			Reason: fmt.Sprintf("has no role on channel %s", cs.cfg.ID), Err: ErrUnknownEmployee}
	}
	defer e.lock(r.Chat)()
	cr, st, offered, err := e.chatState(ctx, cs, r.Chat)
	if err != nil {
		return OutboundResult{}, err
	}
	cst := roles.ChatState{Responsible: cr.Responsible}
	if offered {
		cst = st.ChatState(cr.Responsible)
	}
	if ok, reason := e.table.CanView(r.User, r.Chat, cst); !ok || !role.MayWrite() {
		if ok {
			reason = roles.ReasonQualityControl
		}
		return OutboundResult{}, &PermissionError{User: r.User, Chat: r.Chat, Role: role, Action: "reset the unread counter", Reason: reason}
	}
	res := OutboundResult{Chat: r.Chat, Outcome: OutcomeReset, Responsible: cr.Responsible}
	closed, err := e.closeStreak(ctx, r.Chat, tasks.UnreadReset)
	if err != nil {
		return res, err
	}
	res.TaskClosed = closed
	res.Why = "unread counter reset: no reply needed"
	if closed != "" {
		res.Why += fmt.Sprintf("; task %s completed", closed)
	}
	return res, nil
}

// CanView reports whether user sees the chat, from what the engine knows
// (no CRM call): the user's role on the chat's channel, the client's
// responsible user, and the chat's offer/claim state.
func (e *Engine) CanView(ctx context.Context, user crm.UserID, chat channel.Chat) (bool, roles.Reason, error) {
	st, err := e.knownState(ctx, chat)
	if err != nil {
		return false, "", err
	}
	ok, reason := e.table.CanView(user, chat, st)
	return ok, reason, nil
}

// VisibleChats filters chats down to those user sees, with the same
// predicate as CanView.
func (e *Engine) VisibleChats(ctx context.Context, user crm.UserID, chats []channel.Chat) ([]channel.Chat, error) {
	states := make(map[channel.Chat]roles.ChatState, len(chats))
	for _, c := range chats {
		st, err := e.knownState(ctx, c)
		if err != nil {
			return nil, err
		}
		states[c] = st
	}
	return roles.Filter(e.table, user, chats, func(c channel.Chat) (channel.Chat, roles.ChatState) { return c, states[c] }), nil
}

func (e *Engine) knownState(ctx context.Context, chat channel.Chat) (roles.ChatState, error) {
	cr, _, err := e.state.Client(ctx, chat)
	if err != nil {
		return roles.ChatState{}, err
	}
	st, offered, err := e.dist.ClaimState(ctx, chat)
	if err != nil {
		return roles.ChatState{}, err
	}
	if offered {
		return st.ChatState(cr.Responsible), nil
	}
	return roles.ChatState{Responsible: cr.Responsible}, nil
}
