package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/tasks"
)

// Journal namespaces of MessageKey.Kind.
const (
	kindInbound  byte = 'i' // a client's message, by the provider's ID
	kindOutbound byte = 'o' // an employee's message, by the host's ID
	kindSent     byte = 's' // a message the engine sent, by the provider's ID
	kindSalesbot byte = 'b' // a Salesbot message, by the host's ID
	kindEcho     byte = 'e' // a reply sent outside the engine, by the provider's ID
)

// InboundResult is the decision for a client's message: who is notified,
// who is responsible, what was created, and why.
type InboundResult struct {
	// Chat is the message's chat.
	Chat channel.Chat
	// MessageID is the message's ID, as given in the event.
	MessageID string
	// Outcome is what the engine did with the message (one of the
	// Outcome constants); OutcomeGroup for a group chat's message.
	Outcome Outcome

	// Contact is the client's CRM contact after the event; "" for a group
	// chat's message.
	Contact crm.ContactID
	// ContactCreated is true when this event created Contact in the CRM.
	ContactCreated bool
	// Deal is the client's open deal after the event (the one created, if
	// any); "" for a group chat's message or when the client has none open.
	Deal crm.DealID
	// DealCreated is true when this event created Deal in the CRM.
	DealCreated bool
	// Responsible is the user whose client this is after the event; empty
	// while the chat is offered to a group (first responder).
	Responsible crm.UserID
	// Notify lists who should be told about the message, and why.
	Notify []Notification
	// Distribution is the distribution rule's decision, when one ran.
	Distribution *routing.Decision

	// Task is the task of the chat's unanswered-message streak; "" when
	// there is none (tasks off, or the streak has no task yet).
	Task crm.TaskID
	// TaskCreated is true when this event created Task in the CRM.
	TaskCreated bool

	// Duplicate is true when the message was processed before: nothing
	// was done again, and the fields above summarize the client's state.
	Duplicate bool
	// Why explains the decision step by step.
	Why Explanation
	// Warnings are problems that did not stop the event (an unreadable
	// phone number, several contacts matching); each is also a
	// StepWarning of Why.
	Warnings []string
}

// ClientMessage processes a message from a client. m needs ID, Chat (a
// configured channel and the client's chat ID in the form of the
// channel's kind: digits for WhatsApp), Direction Inbound and an
// AuthorClient author; Phone, Username, ClientName and Time are used when
// given (Time zero: now). A message of a group chat (m.Group) creates no
// contact, deal or task: its outcome is OutcomeGroup.
//
// Errors: a *EventError naming the bad field (nothing is applied), or the
// CRM's or a store's error, after which a redelivery of the same message
// finishes the work without repeating what was done.
func (e *Engine) ClientMessage(ctx context.Context, m channel.Message) (res InboundResult, err error) {
	const ev = "ClientMessage"
	s := e.set.Load()
	var start time.Time
	if e.log != nil || e.obs != nil {
		start = time.Now()
		defer func() { e.observe(ctx, ev, m.Chat, res.Outcome, res.Distribution, res.Duplicate, start, err) }()
	}
	if m.ID == "" {
		return InboundResult{}, &EventError{Event: ev, Field: "ID", Reason: "empty: the message ID makes deliveries idempotent"}
	}
	cs, err := s.checkChat(ev, m.Chat, m.Group)
	if err != nil {
		return InboundResult{}, err
	}
	if m.Direction != channel.Inbound {
		return InboundResult{}, &EventError{Event: ev, Field: "Direction", Value: m.Direction.String(),
			Reason: "a client's message is inbound; use EmployeeReplied for replies sent outside the engine"}
	}
	res = InboundResult{Chat: m.Chat, MessageID: m.ID}
	if m.Group {
		res.Outcome = OutcomeGroup
		res.Why.add(Step{Kind: StepGroup})
		return res, nil
	}
	if m.Author.Kind != channel.AuthorClient {
		return InboundResult{}, &EventError{Event: ev, Field: "Author.Kind", Value: m.Author.Kind.String(),
			Reason: "an inbound message of a client chat is written by the client; use EmployeeMessage or SalesbotMessage for the others"}
	}
	if m.Time.IsZero() {
		m.Time = e.now()
	}
	l, release, err := e.acquire(ctx, m.Chat)
	if err != nil {
		return res, err
	}
	defer release()

	key := MessageKey{Chat: m.Chat, Kind: kindInbound, ID: m.ID}
	jr, seen, err := e.state.Message(ctx, key)
	if err != nil {
		return res, err
	}
	if seen && jr.Done {
		return e.duplicateIn(ctx, m, jr.Outcome)
	}
	res.Why.Steps = make([]Step, 0, 4) // enough for a live chat's steps
	in := &inbound{e: e, s: s, cs: cs, m: m, l: l, key: key, res: &res}
	if seen {
		in.snap.Prior = jr.Outcome
	}
	if err := in.run(ctx); err != nil {
		return res, err
	}
	if err := e.state.PutMessage(ctx, l, key, MessageRecord{Done: true, Outcome: res.Outcome}); err != nil {
		return res, err
	}
	return res, nil
}

// duplicateIn answers a redelivered message from its journal record and
// the chat's client record.
func (e *Engine) duplicateIn(ctx context.Context, m channel.Message, o Outcome) (InboundResult, error) {
	res := InboundResult{Chat: m.Chat, MessageID: m.ID, Outcome: o, Duplicate: true}
	res.Why.add(Step{Kind: StepDuplicate})
	cr, _, err := e.state.Client(ctx, m.Chat)
	if err != nil {
		return res, err
	}
	res.Contact, res.Deal, res.Responsible = cr.Contact, cr.Deal, cr.Responsible
	if st, ok, err := e.streaks.Get(ctx, m.Chat); err != nil {
		return res, err
	} else if ok {
		res.Task = st.Task
	}
	return res, nil
}

// inbound is one client message being applied.
type inbound struct {
	e    *Engine
	s    *settings
	cs   *chanState
	m    channel.Message
	l    Lease
	key  MessageKey
	res  *InboundResult
	snap inboundSnapshot
	// absent: the state had no record of the chat when the event began
	// (first contact, or a restart with fresh state); stored is the record
	// it had.
	absent bool
	stored ClientRecord
}

func (p *inbound) warn(text string) {
	p.res.Warnings = append(p.res.Warnings, text)
	p.res.Why.add(Step{Kind: StepWarning, Text: text})
}

// run loads the snapshot, decides, and applies the plan.
func (p *inbound) run(ctx context.Context) error {
	e, chat := p.e, p.m.Chat
	cr, found, err := e.state.Client(ctx, chat)
	if err != nil {
		return err
	}
	p.absent = !found
	p.stored = cr
	if found && cr.Contact != "" && e.fresh(cr) {
		p.res.Why.add(Step{Kind: StepKnownClient, Contact: cr.Contact})
	} else {
		loaded, known, err := e.loadClient(ctx, p.s, p.cs, chat, p.m.Phone, cr, p.warn)
		if err != nil {
			return err
		}
		if known {
			p.res.Why.add(Step{Kind: StepLoadedClient, Contact: loaded.Contact, Deal: loaded.Deal})
		}
		if _, err := e.syncDist(ctx, p.cs, chat, cr, &loaded); err != nil {
			return err
		}
		cr = loaded
	}
	p.snap.Known, p.snap.Rec = cr.Contact != "", cr
	if p.snap.Claim, p.snap.Offered, err = e.dist.ClaimState(ctx, chat); err != nil {
		return err
	}
	plan := decideInbound(p.cs, p.s.table, p.snap, p.res.Why)
	if err := p.ownerAway(ctx, &plan); err != nil {
		return err
	}
	p.res.Why = plan.Why
	if err := p.apply(ctx, &plan); err != nil {
		return err
	}
	return p.task(ctx)
}

// apply carries out an inbound plan: the distribution, the CRM writes
// and the records of progress, in an order that a redelivery can finish.
func (p *inbound) apply(ctx context.Context, plan *inboundPlan) error {
	e, cs, chat := p.e, p.cs, p.m.Chat
	rec := p.snap.Rec
	res := p.res
	res.Outcome = plan.Outcome
	var d routing.Decision
	switch {
	case plan.Turn != "":
		d = routing.Decision{User: plan.Turn, Why: routing.Explanation{Rule: routing.RuleRoundRobin, Channel: cs.cfg.ID, Chat: chat}}
		assign(plan, d)
		if rec.Turn != plan.Turn && (plan.CreateDeal || plan.SetOwner) {
			// A pick made for this event (an owner away, reassigned):
			// recorded before the CRM writes, like a distribution's.
			rec.Turn = plan.Turn
			if err := e.state.PutClient(ctx, p.l, rec); err != nil {
				return err
			}
		}
	case plan.Distribute:
		var err error
		if d, err = e.dist.Assign(ctx, p.distribution()); err != nil {
			return fmt.Errorf("engine: distributing %s: %w", chat, err)
		}
		res.Distribution = &d
		res.Why.add(Step{Kind: StepDistributed, Decision: res.Distribution})
		rec.ClaimedBy = ""
		assign(plan, d)
		if d.User != "" && (plan.CreateDeal || plan.SetOwner) {
			// The turn belongs to the client until its deal or owner is
			// written: record it before the CRM writes that depend on it.
			rec.Turn = d.User
			if err := e.state.PutClient(ctx, p.l, rec); err != nil {
				return err
			}
		}
	}
	res.Outcome, res.Responsible, res.Notify = plan.Outcome, plan.Responsible, plan.Notify

	if plan.CreateDeal {
		if err := p.createDeal(ctx, plan, &rec, d.User); err != nil {
			return err
		}
	}
	if plan.SetOwner && d.User != "" {
		if err := e.makeResponsible(ctx, &rec, d.User); err != nil {
			return err
		}
		res.Why.add(Step{Kind: StepReassigned, Deal: rec.Deal, Contact: rec.Contact, User: d.User})
	}
	rec.Turn = ""
	p.snap.Rec = rec
	res.Contact, res.Deal = rec.Contact, rec.Deal
	if rec.Contact == "" || (!p.absent && rec == p.stored) {
		return nil // nothing new to remember (a live chat's usual case)
	}
	return e.state.PutClient(ctx, p.l, rec)
}

// createDeal creates the plan's deal (with a new contact, or for the known
// one). Progress is recorded first: the journal says this message makes a
// new client, and the client record is marked stale, so that a redelivery
// after a lost answer reads the CRM and finds what was created.
func (p *inbound) createDeal(ctx context.Context, plan *inboundPlan, rec *ClientRecord, owner crm.UserID) error {
	e, cs, chat := p.e, p.cs, p.m.Chat
	if plan.Outcome == OutcomeNewClient && p.snap.Prior != OutcomeNewClient {
		if err := e.state.PutMessage(ctx, p.l, p.key, MessageRecord{Outcome: OutcomeNewClient}); err != nil {
			return err
		}
	}
	if rec.Contact != "" && !rec.Fetched.IsZero() {
		stale := *rec
		stale.Fetched = time.Time{}
		if err := e.state.PutClient(ctx, p.l, stale); err != nil {
			return err
		}
	}
	nd := crm.NewDeal{Pipeline: cs.cfg.Pipeline, Stage: cs.cfg.Stage, Responsible: owner, Contact: rec.Contact}
	name := chat.ChatID
	if plan.NewContact {
		nc := &crm.NewContact{Name: p.m.ClientName, Responsible: owner}
		if num, err := p.e.clientPhone(p.s, cs, chat, p.m.Phone); err == nil && num.IsValid() {
			nc.Phones = []string{num.E164()}
		}
		if cs.cfg.Kind != channel.WhatsApp {
			nc.Identities = []crm.Identity{identity(cs, chat)}
		}
		if nc.Name == "" {
			nc.Name = chat.ChatID
			if len(nc.Phones) > 0 {
				nc.Name = nc.Phones[0]
			}
		}
		name = nc.Name
		nd.Contact, nd.NewContact = "", nc
	}
	nd.Name = "Chat " + name
	deal, contact, err := e.crm.CreateDeal(ctx, nd)
	if err != nil {
		return fmt.Errorf("engine: creating a deal for %s: %w", chat, err)
	}
	if plan.NewContact {
		rec.Contact = contact.ID
		p.res.ContactCreated = true
		p.res.Why.add(Step{Kind: StepCreatedClient, Contact: contact.ID, Deal: deal.ID, Text: "pipeline " + string(cs.cfg.Pipeline) + " stage " + string(cs.cfg.Stage)})
	} else {
		p.res.Why.add(Step{Kind: StepCreatedDeal, Contact: rec.Contact, Deal: deal.ID})
	}
	p.res.DealCreated = true
	prevOwner := rec.Responsible
	rec.Deal, rec.Responsible, rec.Turn, rec.Fetched = deal.ID, owner, "", e.now()
	// Record the client at once: a failure later must not create it twice.
	if err := e.state.PutClient(ctx, p.l, *rec); err != nil {
		return err
	}
	if plan.OwnerFollows && owner != "" && prevOwner != owner {
		if err := e.crm.SetContactResponsible(ctx, rec.Contact, owner); err != nil {
			return fmt.Errorf("engine: making %s responsible for contact %s: %w", owner, rec.Contact, err)
		}
		p.res.Why.add(Step{Kind: StepOwnerFollows, Contact: rec.Contact, User: owner})
	}
	return nil
}

// loadClient reads the client from the CRM: the known open deal (one call
// through crm.DealGetter) when prev merely expired, else the deals of a
// contact the engine already knows (one call; always after Invalidate,
// which zeroes prev.Fetched), or a lookup by phone and identity and then
// the deals. The result's Contact is empty when the CRM has no such
// client; what the CRM does not hold (ClaimedBy, Turn) is kept from prev.
func (e *Engine) loadClient(ctx context.Context, s *settings, cs *chanState, chat channel.Chat, phoneText string, prev ClientRecord, warn func(string)) (ClientRecord, bool, error) {
	keep := ClientRecord{ClaimedBy: prev.ClaimedBy, Turn: prev.Turn}
	var contact crm.Contact
	if prev.Contact != "" {
		contact = crm.Contact{ID: prev.Contact, Responsible: prev.Responsible}
		if prev.Deal != "" {
			contact.Responsible = "" // the deal's responsible; the contact's is unknown
		}
	} else {
		c, found, err := e.findContact(ctx, s, cs, chat, phoneText, warn)
		if err != nil || !found {
			return keep, false, err
		}
		contact = c
	}
	if prev.Contact != "" && prev.Deal != "" && !prev.Fetched.IsZero() {
		// The known deal, re-read in one call where the CRM can: still
		// open and still the contact's, it is still the one that counts.
		d, err := crm.GetDeal(ctx, e.crm, prev.Deal)
		switch {
		case err == nil && !d.Closed() && slices.Contains(d.Contacts, prev.Contact):
			r := keep
			r.Contact, r.Deal, r.Responsible, r.Fetched = prev.Contact, d.ID, d.Responsible, e.now()
			r.Turn = turnLeft(r.Turn, d.Responsible)
			return r, true, nil
		case err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, crm.ErrNotFound):
			return keep, false, fmt.Errorf("engine: reading deal %s: %w", prev.Deal, err)
		}
	}
	deals, err := e.crm.ListDeals(ctx, contact.ID)
	if errors.Is(err, crm.ErrNotFound) && prev.Contact != "" {
		// The contact was deleted or merged in the CRM: look it up afresh.
		return e.loadClient(ctx, s, cs, chat, phoneText, keep, warn)
	}
	if err != nil {
		return keep, false, fmt.Errorf("engine: listing deals of contact %s: %w", contact.ID, err)
	}
	r := keep
	r.Contact, r.Responsible, r.Fetched = contact.ID, contact.Responsible, e.now()
	if d, ok := crm.LatestOpen(deals); ok {
		r.Deal, r.Responsible, r.Turn = d.ID, d.Responsible, turnLeft(r.Turn, d.Responsible)
	} else if r.Responsible == "" {
		r.Responsible = prev.Responsible
	}
	return r, true, nil
}

// turnLeft is what remains of a reserved turn once an open deal is found
// with responsible: nothing when the turn's employee is responsible (the
// deal was created with them, or the reassignment written, and the answer
// was lost), else the turn, still to be carried out. Without an open deal
// the turn stays: a new client's contact may already name the pick.
func turnLeft(turn, responsible crm.UserID) crm.UserID {
	if turn == responsible {
		return ""
	}
	return turn
}

// clientPhone reads the client's phone: the provider's phone if given,
// else a WhatsApp chat ID (international digits).
func (e *Engine) clientPhone(s *settings, cs *chanState, chat channel.Chat, phoneText string) (phone.Number, error) {
	if phoneText != "" {
		return phone.Parse(phoneText, s.phoneOpt)
	}
	if cs.cfg.Kind == channel.WhatsApp {
		return phone.ParseChatID(chat.ChatID)
	}
	return phone.Number{}, nil
}

// findContact finds the client by phone, then (on messengers whose chat
// ID is not the phone) by messenger identity. Several matches: the most
// recently updated, with a warning.
func (e *Engine) findContact(ctx context.Context, s *settings, cs *chanState, chat channel.Chat, phoneText string, warn func(string)) (crm.Contact, bool, error) {
	num, err := e.clientPhone(s, cs, chat, phoneText)
	if err != nil {
		warn("client phone not usable: " + err.Error())
	}
	var found []crm.Contact
	if num.IsValid() {
		if found, err = e.crm.FindContactsByPhone(ctx, num.E164()); err != nil {
			return crm.Contact{}, false, fmt.Errorf("engine: finding contact by phone: %w", err)
		}
		// Matching never depends on how the CRM searches: a contact
		// whose stored phones are not the client's number under the
		// engine's own phone settings (the 8→+7 rule) is not the client.
		// A contact returned without phones cannot be checked and is kept.
		found = slices.DeleteFunc(found, func(c crm.Contact) bool {
			if len(c.Phones) == 0 {
				return false
			}
			_, ok := phone.Match(num, c.Phones, s.phoneOpt)
			return !ok
		})
	}
	if len(found) == 0 && cs.cfg.Kind != channel.WhatsApp {
		if found, err = e.crm.FindContactsByIdentity(ctx, identity(cs, chat)); err != nil {
			return crm.Contact{}, false, fmt.Errorf("engine: finding contact by identity: %w", err)
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
		warn(fmt.Sprintf("%d contacts match the client; using %s, the most recently updated", len(found), best.ID))
	}
	return best, true, nil
}

func identity(cs *chanState, chat channel.Chat) crm.Identity {
	return crm.Identity{Kind: string(cs.cfg.Kind), Value: chat.ChatID}
}

// makeResponsible sets user responsible in the CRM for the client's open
// deal (and its contacts), or for the contact when no deal is open.
func (e *Engine) makeResponsible(ctx context.Context, cr *ClientRecord, user crm.UserID) error {
	switch {
	case cr.Deal != "":
		if err := e.crm.SetResponsible(ctx, cr.Deal, user); err != nil {
			return fmt.Errorf("engine: making %s responsible for deal %s: %w", user, cr.Deal, err)
		}
	case cr.Contact != "":
		if err := e.crm.SetContactResponsible(ctx, cr.Contact, user); err != nil {
			return fmt.Errorf("engine: making %s responsible for contact %s: %w", user, cr.Contact, err)
		}
	}
	cr.Responsible, cr.Turn, cr.Fetched = user, "", e.now()
	return nil
}

// task opens the chat's unanswered-message streak and gives it its one
// task: one found in the CRM when an earlier attempt's outcome is unknown
// (the streak has no task yet, or the engine starts without a record of
// the chat), else a new one.
func (p *inbound) task(ctx context.Context) error {
	e := p.e
	settings := p.s.cfg.Global.UnansweredTasks
	if tasks.Plan(settings, tasks.ClientMessage) != tasks.Open {
		return nil
	}
	s, opened, err := e.streaks.Open(ctx, p.m.Chat, p.m.ID, p.m.Time)
	if err != nil {
		return err
	}
	if s.Task != "" {
		p.res.Task = s.Task
		p.res.Why.add(Step{Kind: StepTaskOpen, Task: s.Task})
		return nil
	}
	rec := p.snap.Rec
	spec := tasks.Spec(settings, p.cs.cfg.Channel(), p.m.Chat, s.Started, rec.Deal, rec.Contact, rec.Responsible)
	var t crm.Task
	if !opened || (p.absent && !p.res.DealCreated) {
		found, answered, err := e.findTask(ctx, spec)
		if err != nil {
			return err
		}
		switch {
		case found.ID != "":
			t = found
			p.res.Why.add(Step{Kind: StepTaskFound, Task: t.ID})
		case opened && answered.ID != "":
			// A streak that began with this message or later was already
			// answered (its task is done): this is an old message
			// delivered again, after the engine lost its state.
			if _, _, err := e.streaks.Close(ctx, p.m.Chat); err != nil {
				return err
			}
			p.res.Why.add(Step{Kind: StepTaskAnswered, Task: answered.ID})
			return nil
		}
	}
	if t.ID == "" {
		if t, err = e.crm.CreateTask(ctx, spec); err != nil {
			return fmt.Errorf("engine: creating the unanswered-message task: %w", err)
		}
		p.res.TaskCreated = true
		p.res.Why.add(Step{Kind: StepTaskCreated, Task: t.ID, User: spec.Responsible, Time: spec.Deadline})
	}
	if err := e.streaks.SetTask(ctx, p.m.Chat, s.Opener, t.ID); err != nil {
		if errors.Is(err, tasks.ErrStreakClosed) {
			// A reply closed the streak meanwhile: the task is moot.
			if cerr := e.crm.CompleteTask(ctx, t.ID); cerr != nil {
				return fmt.Errorf("engine: completing moot task %s: %w", t.ID, cerr)
			}
			p.res.Why.add(Step{Kind: StepTaskMoot, Task: t.ID})
			return nil
		}
		return err
	}
	p.res.Task = t.ID
	return nil
}

// findTask looks in the CRM for the engine's task of this chat: on the
// same deal (else contact) with the same text. open is the latest open
// one; answered, when no task is open, a done one whose streak began at
// spec's start or later (its deadline is no earlier than spec's).
func (e *Engine) findTask(ctx context.Context, spec crm.NewTask) (open, answered crm.Task, err error) {
	ts, err := e.crm.ListTasks(ctx, crm.TaskFilter{Deal: spec.Deal, Contact: spec.Contact})
	if err != nil {
		return crm.Task{}, crm.Task{}, fmt.Errorf("engine: looking for the unanswered-message task: %w", err)
	}
	since := spec.Deadline.Truncate(time.Second) // CRMs keep deadlines to the second
	for _, t := range ts {
		if strings.TrimSpace(t.Text) != strings.TrimSpace(spec.Text) {
			continue
		}
		switch {
		case !t.Done:
			if open.ID == "" || crm.CompareIDs(string(t.ID), string(open.ID)) > 0 {
				open = t
			}
		case !t.Deadline.Before(since):
			answered = t
		}
	}
	return open, answered, nil
}
