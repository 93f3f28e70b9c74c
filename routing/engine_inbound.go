package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/tasks"
)

// InboundResult is the decision for a client's message: who is notified,
// who is responsible, what was created, and why.
type InboundResult struct {
	Chat      channel.Chat
	MessageID string
	Outcome   Outcome

	Contact        crm.ContactID
	ContactCreated bool
	Deal           crm.DealID
	DealCreated    bool
	// Responsible is the user whose client this is after the event; empty
	// while the chat is offered to a group (first responder).
	Responsible crm.UserID
	// Notify lists who should be told about the message, and why.
	Notify []Notification
	// Distribution is the distribution rule's decision, when one ran.
	Distribution *Decision

	Task        crm.TaskID // the streak's task, if any
	TaskCreated bool

	// Duplicate is true when the message was processed before: nothing
	// was done again, and the fields above summarize the first outcome.
	Duplicate bool
	// Why explains the decision step by step.
	Why string
	// Warnings are problems that did not stop the event (an unreadable
	// phone number, several contacts matching).
	Warnings []string
}

// ClientMessage processes a message from a client (spec §1, §3, tasks).
// m needs ID, Chat (a configured channel and the client's chat ID), and is
// inbound from the client; Phone, Username, ClientName and Time are used
// when given (Time zero: now).
//
// Errors: a *EventError naming the bad field (nothing is applied), or the
// CRM's or a store's error, after which a redelivery of the same message
// finishes the work without repeating what was done.
func (e *Engine) ClientMessage(ctx context.Context, m channel.Message) (InboundResult, error) {
	const ev = "ClientMessage"
	if m.ID == "" {
		return InboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: the message ID makes deliveries idempotent"}
	}
	cs, err := e.chanOf(ev, m.Chat.Channel)
	if err != nil {
		return InboundResult{}, err
	}
	if m.Chat.ChatID == "" {
		return InboundResult{}, &EventError{Event: ev, Field: "Chat.ChatID", Reason: "empty"}
	}
	if m.Direction != channel.Inbound || m.Author.Kind != channel.AuthorClient {
		return InboundResult{}, &EventError{Event: ev, Field: "Author.Kind", Value: m.Author.Kind.String(),
			Reason: "a client message is inbound from the client; use EmployeeMessage or SalesbotMessage"}
	}
	if m.Time.IsZero() {
		m.Time = e.now()
	}
	defer e.lock(m.Chat)()

	key := msgKey("in", m.Chat.Channel, m.ID)
	rec, seen, err := e.state.Message(ctx, key)
	if err != nil {
		return InboundResult{}, err
	}
	if seen && rec.Done {
		s := rec.Summary
		return InboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: s.Outcome, Contact: s.Contact, Deal: s.Deal,
			Responsible: s.Responsible, Task: s.Task, Duplicate: true, Why: "already processed: no second effect"}, nil
	}

	p := inbound{e: e, cs: cs, m: m, key: key, rec: rec,
		res: InboundResult{Chat: m.Chat, MessageID: m.ID}}
	if err := p.run(ctx); err != nil {
		return p.result(), err
	}
	p.rec.Done = true
	p.rec.Summary = Summary{Outcome: p.res.Outcome, Contact: p.cr.Contact, Deal: p.cr.Deal, Responsible: p.res.Responsible, Task: p.res.Task}
	if err := e.state.PutMessage(ctx, key, p.rec); err != nil {
		return p.result(), err
	}
	return p.result(), nil
}

// inbound is one client message being processed.
type inbound struct {
	e   *Engine
	cs  *chanState
	m   channel.Message
	key string
	rec MessageRecord
	cr  ClientRecord
	res InboundResult
	why []string
}

func (p *inbound) result() InboundResult {
	p.res.Contact, p.res.Deal = p.cr.Contact, p.cr.Deal
	p.res.Why = joinWhy(p.why)
	return p.res
}

func (p *inbound) step(format string, args ...any) {
	p.why = append(p.why, fmt.Sprintf(format, args...))
}

func (p *inbound) run(ctx context.Context) error {
	e, chat := p.e, p.m.Chat
	cr, known, err := e.state.Client(ctx, chat)
	if err != nil {
		return err
	}
	if known && e.fresh(cr) {
		p.step("client known to the engine (contact %s)", cr.Contact)
	} else {
		cr, known, err = e.loadClient(ctx, p.cs, chat, p.m.Phone, cr, known, &p.res.Warnings)
		if err != nil {
			return err
		}
	}
	p.cr = cr

	switch {
	case !known:
		err = p.newClient(ctx)
	case cr.Deal != "":
		err = p.openDeal(ctx)
	default:
		err = p.returning(ctx)
	}
	if err != nil {
		return err
	}
	if err := e.state.PutClient(ctx, chat, p.cr); err != nil {
		return err
	}
	return p.task(ctx)
}

// loadClient reads the client from the CRM: the deals of a contact the
// engine already knows (one call), or a lookup by phone and identity and
// then the deals. known is false when the CRM has no such client.
func (e *Engine) loadClient(ctx context.Context, cs *chanState, chat channel.Chat, phoneText string, prev ClientRecord, prevKnown bool, warnings *[]string) (ClientRecord, bool, error) {
	var contact crm.Contact
	if prevKnown && prev.Contact != "" {
		contact = crm.Contact{ID: prev.Contact, Responsible: prev.Responsible}
		if prev.Deal != "" {
			contact.Responsible = "" // the deal's responsible; the contact's is unknown
		}
	} else {
		c, found, err := e.findContact(ctx, cs, chat, phoneText, warnings)
		if err != nil || !found {
			return ClientRecord{}, false, err
		}
		contact = c
	}
	deals, err := e.crm.ListDeals(ctx, contact.ID)
	if errors.Is(err, crm.ErrNotFound) && prevKnown {
		// The contact was deleted or merged in the CRM: look it up afresh.
		return e.loadClient(ctx, cs, chat, phoneText, ClientRecord{}, false, warnings)
	}
	if err != nil {
		return ClientRecord{}, false, fmt.Errorf("routing: listing deals of contact %s: %w", contact.ID, err)
	}
	r := ClientRecord{Contact: contact.ID, Responsible: contact.Responsible, Fetched: e.now()}
	if prevKnown {
		r.ClaimedBy = prev.ClaimedBy
	}
	if d, ok := crm.LatestOpen(deals); ok {
		r.Deal, r.Responsible = d.ID, d.Responsible
	} else if r.Responsible == "" && prevKnown {
		r.Responsible = prev.Responsible
	}
	return r, true, nil
}

// clientPhone reads the client's phone: the provider's phone if given,
// else a WhatsApp chat ID (international digits).
func (e *Engine) clientPhone(cs *chanState, chat channel.Chat, phoneText string) (phone.Number, error) {
	if phoneText != "" {
		return phone.Parse(phoneText, e.phoneOpt)
	}
	if cs.cfg.Kind == channel.WhatsApp {
		return phone.ParseChatID(chat.ChatID)
	}
	return phone.Number{}, nil
}

// findContact finds the client by phone, then (on messengers whose chat
// ID is not the phone) by messenger identity. Several matches: the most
// recently updated, with a warning.
func (e *Engine) findContact(ctx context.Context, cs *chanState, chat channel.Chat, phoneText string, warnings *[]string) (crm.Contact, bool, error) {
	num, err := e.clientPhone(cs, chat, phoneText)
	if err != nil {
		*warnings = append(*warnings, fmt.Sprintf("client phone not usable: %v", err))
	}
	var found []crm.Contact
	if num.IsValid() {
		if found, err = e.crm.FindContactsByPhone(ctx, num.E164()); err != nil {
			return crm.Contact{}, false, fmt.Errorf("routing: finding contact by phone: %w", err)
		}
	}
	if len(found) == 0 && cs.cfg.Kind != channel.WhatsApp {
		if found, err = e.crm.FindContactsByIdentity(ctx, e.identity(cs, chat)); err != nil {
			return crm.Contact{}, false, fmt.Errorf("routing: finding contact by identity: %w", err)
		}
	}
	if len(found) == 0 {
		return crm.Contact{}, false, nil
	}
	best := slices.MaxFunc(found, func(a, b crm.Contact) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return crm.CompareIDs(string(a.ID), string(b.ID))
	})
	if len(found) > 1 {
		*warnings = append(*warnings, fmt.Sprintf("%d contacts match the client; using %s, the most recently updated", len(found), best.ID))
	}
	return best, true, nil
}

func (e *Engine) identity(cs *chanState, chat channel.Chat) crm.Identity {
	return crm.Identity{Kind: string(cs.cfg.Kind), Value: chat.ChatID}
}

// distribute applies the channel's distribution, reusing a round-robin
// pick recorded by an earlier delivery of the same message.
func (p *inbound) distribute(ctx context.Context) (Decision, error) {
	if p.rec.Pick != "" {
		d := Decision{User: p.rec.Pick, Why: Explanation{Rule: RuleRoundRobin, Channel: p.cs.cfg.ID}}
		p.step("round robin: %s, picked by an earlier delivery of this message", p.rec.Pick)
		return d, nil
	}
	d, err := p.e.dist.Distribute(ctx, p.cs.mode, p.e.table, p.m.Chat)
	if err != nil {
		return Decision{}, fmt.Errorf("routing: distributing %s: %w", p.m.Chat, err)
	}
	p.res.Distribution = &d
	p.cr.ClaimedBy = ""
	p.step("%s", d.String())
	if d.User != "" {
		p.rec.Pick = d.User
		if err := p.e.state.PutMessage(ctx, p.key, p.rec); err != nil {
			return Decision{}, err
		}
	}
	return d, nil
}

// notifyDecision notifies the pick, or the offered group.
func (p *inbound) notifyDecision(d Decision, why string) {
	if d.User != "" {
		p.res.Responsible = d.User
		p.res.Notify = []Notification{{User: d.User, Reason: why + ": assigned by " + string(d.Why.Rule)}}
		return
	}
	p.res.Notify = notifyAll(d.Offered, why+": offered, the first reply claims it")
}

func (p *inbound) newClient(ctx context.Context) error {
	e, cs := p.e, p.cs
	p.res.Outcome = OutcomeNewClient
	p.step("new client: no contact in the CRM")
	d, err := p.distribute(ctx)
	if err != nil {
		return err
	}
	nc := &crm.NewContact{Name: p.m.ClientName, Responsible: d.User}
	if num, err := e.clientPhone(cs, p.m.Chat, p.m.Phone); err == nil && num.IsValid() {
		nc.Phones = []string{num.E164()}
	}
	if cs.cfg.Kind != channel.WhatsApp {
		nc.Identities = []crm.Identity{e.identity(cs, p.m.Chat)}
	}
	if nc.Name == "" {
		nc.Name = p.m.Chat.ChatID
		if len(nc.Phones) > 0 {
			nc.Name = nc.Phones[0]
		}
	}
	deal, contact, err := e.crm.CreateDeal(ctx, crm.NewDeal{
		Name: "Chat " + nc.Name, Pipeline: cs.cfg.Pipeline, Stage: cs.cfg.Stage,
		Responsible: d.User, NewContact: nc,
	})
	if err != nil {
		return fmt.Errorf("routing: creating the new client's contact and deal: %w", err)
	}
	p.cr = ClientRecord{Contact: contact.ID, Deal: deal.ID, Responsible: d.User, Fetched: e.now()}
	// Record the client at once: a failure later must not create it twice.
	if err := e.state.PutClient(ctx, p.m.Chat, p.cr); err != nil {
		return err
	}
	p.res.ContactCreated, p.res.DealCreated = true, true
	p.step("created contact %s and deal %s at pipeline %s stage %s", contact.ID, deal.ID, cs.cfg.Pipeline, cs.cfg.Stage)
	p.notifyDecision(d, "new client")
	return nil
}

// offerPending handles a chat whose first-responder offer is still
// recorded: the claimer (claimed) or the offered group (unclaimed) is
// notified. It reports whether the offer decided the event.
func (p *inbound) offerPending(st ClaimState, offered bool, claimed, unclaimed Outcome, what string) bool {
	switch {
	case offered && st.Claimed():
		p.res.Outcome = claimed
		p.res.Responsible = st.ClaimedBy
		p.res.Notify = []Notification{{User: st.ClaimedBy, Reason: "claimed the chat"}}
		p.step("%s; chat claimed by %s", what, st.ClaimedBy)
		return true
	case offered:
		p.res.Outcome = unclaimed
		p.res.Notify = notifyAll(st.Offered, "offered chat, still unclaimed")
		p.step("%s; the chat is offered to %v and unclaimed", what, userIDs(st.Offered))
		return true
	}
	return false
}

func (p *inbound) openDeal(ctx context.Context) error {
	e, ch := p.e, p.cs.cfg.ID
	st, offered, err := p.e.dist.ClaimState(ctx, p.m.Chat)
	if err != nil {
		return err
	}
	if p.offerPending(st, offered, OutcomeOpenDeal, OutcomeOffered, "open deal "+string(p.cr.Deal)) {
		return nil
	}
	switch {
	case e.worksOn(p.cr.Responsible, ch):
		p.res.Outcome = OutcomeOpenDeal
		p.res.Responsible = p.cr.Responsible
		p.res.Notify = []Notification{{User: p.cr.Responsible, Reason: "responsible for the open deal"}}
		p.step("open deal %s: its responsible %s is notified", p.cr.Deal, p.cr.Responsible)
		return nil
	}
	p.res.Outcome = OutcomeReassigned
	p.step("open deal %s: its responsible %q does not work channel %s", p.cr.Deal, p.cr.Responsible, ch)
	return p.redistribute(ctx, "client reassigned")
}

// redistribute gives the client to the channel's distribution because its
// responsible user no longer works the channel; a pick is made responsible
// in the CRM at once (the open deal and its contact, else the contact).
func (p *inbound) redistribute(ctx context.Context, why string) error {
	d, err := p.distribute(ctx)
	if err != nil {
		return err
	}
	if d.User != "" {
		if err := p.e.makeResponsible(ctx, p.m.Chat, &p.cr, d.User); err != nil {
			return err
		}
		p.step("the client (deal %q, contact %s) now belongs to %s", p.cr.Deal, p.cr.Contact, d.User)
	}
	p.notifyDecision(d, why)
	return nil
}

func (p *inbound) returning(ctx context.Context) error {
	e, cs := p.e, p.cs
	st, offered, err := p.e.dist.ClaimState(ctx, p.m.Chat)
	if err != nil {
		return err
	}
	if cs.cfg.Returning == NewDeal {
		p.res.Outcome = OutcomeReturningNewDeal
		p.step("returning client, all deals closed; policy new_deal")
		d, err := p.distribute(ctx)
		if err != nil {
			return err
		}
		deal, _, err := e.crm.CreateDeal(ctx, crm.NewDeal{
			Name: "Chat " + p.m.Chat.ChatID, Pipeline: cs.cfg.Pipeline, Stage: cs.cfg.Stage,
			Responsible: d.User, Contact: p.cr.Contact,
		})
		if err != nil {
			return fmt.Errorf("routing: creating a new deal for returning contact %s: %w", p.cr.Contact, err)
		}
		p.cr.Deal, p.cr.Fetched = deal.ID, e.now()
		if d.User != "" {
			p.cr.Responsible = d.User
		}
		if err := e.state.PutClient(ctx, p.m.Chat, p.cr); err != nil {
			return err
		}
		p.res.DealCreated = true
		p.step("created deal %s for the existing contact %s", deal.ID, p.cr.Contact)
		p.notifyDecision(d, "returning client, new deal")
		return nil
	}

	p.res.Outcome = OutcomeReturningNotify
	if p.offerPending(st, offered, OutcomeReturningNotify, OutcomeReturningNotify, "returning client, all deals closed") {
		return nil
	}
	switch {
	case e.worksOn(p.cr.Responsible, cs.cfg.ID):
		p.res.Responsible = p.cr.Responsible
		p.res.Notify = []Notification{{User: p.cr.Responsible, Reason: "returning client with all deals closed: decide whether to open a deal"}}
		p.step("returning client, all deals closed; policy notify_responsible: %s decides, no deal created", p.cr.Responsible)
		return nil
	}
	p.step("returning client, all deals closed; its responsible %q does not work channel %s", p.cr.Responsible, cs.cfg.ID)
	return p.redistribute(ctx, "returning client, all deals closed; no deal created")
}

// task opens the chat's unanswered-message streak and creates its task.
func (p *inbound) task(ctx context.Context) error {
	e := p.e
	settings := e.cfg.Global.UnansweredTasks
	if tasks.Plan(settings, tasks.ClientMessage) != tasks.Open {
		return nil
	}
	s, opened, err := e.streaks.Open(ctx, p.m.Chat, p.key, p.m.Time)
	if err != nil {
		return err
	}
	if s.Task != "" {
		p.res.Task = s.Task
		p.step("unanswered streak already has task %s", s.Task)
		return nil
	}
	if !opened && s.Opener != p.key {
		// The opener's handling failed before creating the task; events of
		// a chat are serialized, so this message takes over.
		p.step("unanswered streak opened by an earlier message without a task: creating it")
	}
	responsible := p.cr.Responsible
	spec := tasks.Spec(settings, p.cs.cfg.Channel(), p.m.Chat, s.Started, p.cr.Deal, p.cr.Contact, responsible)
	t, err := e.crm.CreateTask(ctx, spec)
	if err != nil {
		return fmt.Errorf("routing: creating the unanswered-message task: %w", err)
	}
	if err := e.streaks.SetTask(ctx, p.m.Chat, s.Opener, t.ID); err != nil {
		if errors.Is(err, tasks.ErrStreakClosed) {
			// A reply closed the streak meanwhile: the task is moot.
			if cerr := e.crm.CompleteTask(ctx, t.ID); cerr != nil {
				return fmt.Errorf("routing: completing moot task %s: %w", t.ID, cerr)
			}
			p.step("a reply closed the streak meanwhile; task %s completed", t.ID)
			return nil
		}
		return err
	}
	p.res.Task, p.res.TaskCreated = t.ID, true
	p.step("created task %s for %q, due %s", t.ID, responsible, spec.Deadline.Format("2006-01-02 15:04"))
	return nil
}
