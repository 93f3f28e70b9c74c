package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// handleWazzup is the Wazzup webhook's EventHandler: it feeds the messages
// of one webhook to the engine, in order, and decides what Wazzup hears
// back.
//
//   - A client's message goes to Engine.ClientMessage; its notifications
//     are queued for the outgoing webhook, and the decision is pushed to
//     Wazzup (Account.SyncChat), so that Wazzup's own chat window shows the
//     chat to the employees the rules allow. A group chat's message creates
//     nothing (the engine's OutcomeGroup) and is only logged.
//   - An echo (a message that went out on the channel) goes to
//     Engine.EmployeeReplied, which sends nothing: an echo of a message
//     this bridge sent has no effect, and a reply an employee typed in
//     Wazzup's app or on the phone claims an offered chat and closes the
//     unanswered streak, as a reply through /replies would. A claim is
//     pushed to Wazzup.
//   - Edits and deletions are logged and skipped: the engine decided on the
//     first version.
//   - Items Wazzup's body held but the decoder could not read
//     (Events.Rejected) are logged and acknowledged.
//   - A bad event (*engine.EventError: an unknown channel, an empty chat
//     ID) is logged and acknowledged: delivering it again cannot make it
//     good.
//   - Any other error (amoCRM or Wazzup down, rate limited, a timeout) is
//     returned, so the Handler answers 500 and Wazzup delivers the webhook
//     again. Messages already processed are recognised by their IDs, the
//     failed one resumes where it stopped, and the push to Wazzup is made
//     again (it skips what it already pushed unchanged).
//
// Delivery statuses are logged.
func (b *bridge) handleWazzup(ctx context.Context, ev wazzup.Events) error {
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	for _, r := range ev.Rejected {
		b.log.Warn("wazzup item rejected", "item", r.Item, "reason", r.Reason)
	}
	for i, m := range ev.Messages {
		d := ev.Details[i]
		var err error
		switch {
		case d.Edited || d.Deleted:
			b.log.Info("wazzup edit or deletion skipped", "message", m.ID, "channel", m.Chat.Channel)
			continue
		case m.Direction == channel.Outbound:
			err = b.echo(ctx, m)
		default:
			err = b.inbound(ctx, m)
		}
		if errors.Is(err, engine.ErrBadEvent) {
			b.log.Warn("wazzup message rejected by the engine (acknowledged)", "message", m.ID, "error", err)
			continue
		}
		if err != nil {
			b.log.Error("wazzup message failed (answered 500: Wazzup delivers it again)", "message", m.ID, "error", err)
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
	}
	for _, st := range ev.Statuses {
		attrs := []any{"message", st.MessageID, "status", string(st.Status)}
		if st.Error != nil {
			attrs = append(attrs, "code", st.Error.Code, "description", st.Error.Description)
		}
		b.log.Info("wazzup status", attrs...)
	}
	return nil
}

func (b *bridge) inbound(ctx context.Context, m channel.Message) error {
	res, err := b.engine.ClientMessage(ctx, m)
	if err != nil {
		return err
	}
	b.log.Info("client message",
		"message", m.ID, "channel", m.Chat.Channel, "outcome", string(res.Outcome), "duplicate", res.Duplicate,
		"contact", string(res.Contact), "contact_created", res.ContactCreated,
		"deal", string(res.Deal), "deal_created", res.DealCreated,
		"responsible", string(res.Responsible), "task", string(res.Task), "task_created", res.TaskCreated,
		"notify", len(res.Notify), "why", res.Why.String())
	if res.Outcome == engine.OutcomeGroup {
		return nil
	}
	b.chats.add(m.Chat, res.Contact, res.Deal)
	if !res.Duplicate {
		for _, n := range res.Notify {
			b.notify(notification{ID: m.ID + "/" + string(n.User), Event: "client_message", User: string(n.User),
				Reason: n.Reason, Channel: string(m.Chat.Channel), ChatID: m.Chat.ChatID, Outcome: string(res.Outcome),
				Contact: string(res.Contact), Deal: string(res.Deal)})
		}
	}
	return b.syncChat(ctx, m.Chat, res.Contact, res.Deal, res.Responsible, m.ClientName)
}

func (b *bridge) echo(ctx context.Context, m channel.Message) error {
	res, err := b.engine.EmployeeReplied(ctx, m)
	if err != nil {
		return err
	}
	b.log.Info("echo", "message", m.ID, "channel", m.Chat.Channel, "author", m.Author.UserID,
		"claimed", res.Claimed, "task_closed", string(res.TaskClosed), "duplicate", res.Duplicate, "why", res.Why.String())
	return b.syncAfterReply(ctx, m.Chat, res)
}

// syncAfterReply pushes a claim to Wazzup. A duplicate may be the retry of
// a claim whose push failed, so it is pushed too (unchanged entities cost
// no request).
func (b *bridge) syncAfterReply(ctx context.Context, chat channel.Chat, res engine.OutboundResult) error {
	if !res.Claimed && !res.Duplicate {
		return nil
	}
	r, ok, err := b.stores.state.Client(ctx, chat)
	if err != nil || !ok {
		return err
	}
	b.chats.add(chat, r.Contact, r.Deal)
	return b.syncChat(ctx, chat, r.Contact, r.Deal, r.Responsible, "")
}

// syncChat pushes who owns the client to Wazzup and checks that Wazzup's
// window shows the chat to exactly the users the engine's CanView allows.
// A push that fails is recorded as pending for the chat, so that the
// chat's next refresh pushes again, whatever it finds.
// A disagreement (the Wazzup roles differ from the configuration) is
// logged, not returned: delivering the webhook again cannot fix it.
func (b *bridge) syncChat(ctx context.Context, chat channel.Chat, contact crm.ContactID, deal crm.DealID, owner crm.UserID, name string) error {
	if owner == "" || contact == "" {
		return nil // offered: Wazzup shows it to the sales reps receiving new clients
	}
	// A push without the name (after a claim, a handover) keeps the name
	// Wazzup has: the contact is then unchanged, and not sent again.
	name = b.chats.name(chat, name)
	// The links are the addresses of amoCRM's contact and lead cards
	// (/contacts/detail/ID, /leads/detail/ID), as integrations commonly
	// build them; amoCRM's API documentation does not list them.
	cs := wazzup.ChatSync{Chat: chat, Kind: b.kind(chat.Channel), ContactID: string(contact), ContactName: name,
		ContactURI: b.baseCRM + "/contacts/detail/" + string(contact), Responsible: string(owner)}
	if deal != "" {
		cs.Deals = []wazzup.Deal{{ID: string(deal), ResponsibleUserID: string(owner), Name: "Deal " + string(deal),
			URI: b.baseCRM + "/leads/detail/" + string(deal), Contacts: []string{string(contact)}}}
	}
	viewers, err := b.viewers(ctx, chat)
	if err != nil {
		b.chats.setPending(chat, owner, deal)
		return err
	}
	cs.Viewers = viewers
	err = b.account.SyncChat(ctx, cs)
	if errors.Is(err, wazzup.ErrViewMismatch) {
		b.log.Warn("wazzup shows the chat to other users than the rules allow; check the roles in Wazzup", "channel", chat.Channel, "error", err)
		err = nil // the contact and the deals were pushed all the same
	}
	if err == nil {
		b.chats.setPushed(chat, owner, deal)
	} else {
		b.chats.setPending(chat, owner, deal)
	}
	return err
}

// viewers are the users with a role on the chat's channel whom the engine
// lets see the chat.
func (b *bridge) viewers(ctx context.Context, chat channel.Chat) ([]string, error) {
	var out []string
	for _, a := range b.engine.Config().Roles {
		if a.Channel != chat.Channel {
			continue
		}
		ok, _, err := b.engine.CanView(ctx, a.User, chat)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, string(a.User))
		}
	}
	return out, nil
}

func (b *bridge) kind(id channel.ID) channel.Kind {
	for _, c := range b.engine.Config().Channels {
		if c.ID == id {
			return c.Kind
		}
	}
	return ""
}

func (b *bridge) notify(n notification) {
	if b.notifier == nil {
		b.log.Info("notification (no "+envNotifyURL+")", "id", n.ID, "user", n.User, "reason", n.Reason)
		return
	}
	b.notifier.enqueue(n)
}

// tick runs Engine.Tick and notifies the employees it handed clients to.
func (b *bridge) tick(ctx context.Context, now time.Time) {
	res, err := b.engine.Tick(ctx, now)
	if err != nil && ctx.Err() == nil {
		b.log.Warn("tick", "error", err)
	}
	for _, h := range res.Escalated {
		b.handover(ctx, "escalation", now, h)
	}
	for _, h := range res.Assigned {
		b.handover(ctx, "queue", now, h)
	}
}

func (b *bridge) handover(ctx context.Context, event string, now time.Time, h engine.Handover) {
	b.log.Info(event, "channel", h.Chat.Channel, "responsible", string(h.Responsible), "notify", len(h.Notify))
	for _, n := range h.Notify {
		b.notify(notification{ID: event + "/" + h.Chat.String() + "/" + strconv.FormatInt(now.Unix(), 10) + "/" + string(n.User),
			Event: event, User: string(n.User), Reason: n.Reason, Channel: string(h.Chat.Channel), ChatID: h.Chat.ChatID})
	}
	if h.Responsible != "" {
		if r, ok, err := b.stores.state.Client(ctx, h.Chat); err == nil && ok {
			if err := b.syncChat(ctx, h.Chat, r.Contact, r.Deal, h.Responsible, ""); err != nil {
				b.log.Warn("wazzup sync after "+event, "error", err)
			}
		}
	}
}

// handleAmoCRM takes amoCRM's webhook events and answers at once; what
// needs amoCRM's requests is done in the background (b.refresher), since
// amoCRM delivers again a webhook not answered 2xx in time. A contact's
// copy goes to the phone index (added, updated, restored, responsible
// changed) or leaves it (deleted). Then every chat the deal or contact was
// seen with is told:
//
//   - A deal's status changed, responsible changed, deletion or update
//     (an account may be subscribed to updates alone, and a handover or a
//     close then arrives as an update): the chat is queued for
//     refreshChat, once however many events of the delivery name it.
//   - Anything else (a contact's change, a deal added or restored):
//     Engine.Invalidate, so the engine reads amoCRM again at the chat's
//     next event instead of trusting its record for up to CacheTTL.
//
// Queued chats that do not fit the refresher's queue, or a failed
// Invalidate, answer an error (503 for the queue, 500 else) and amoCRM
// delivers again; both calls are idempotent, and a chat still waiting is
// not queued twice. The work of one delivery is bounded by amoHookTimeout.
func (b *bridge) handleAmoCRM(ctx context.Context, events []amocrm.WebhookEvent) error {
	ctx, cancel := context.WithTimeout(ctx, amoHookTimeout)
	defer cancel()
	var refresh []channel.Chat
	queued := map[channel.Chat]bool{}
	for _, ev := range events {
		var chats []channel.Chat
		toRefresh := false
		switch ev.Kind {
		case amocrm.ContactAdded, amocrm.ContactUpdated, amocrm.ContactRestored, amocrm.ContactResponsibleChanged:
			if ev.Entity == "contacts" { // not a company
				b.index.Apply(ev.Contact)
			}
			chats = b.chats.ofContact(crm.ContactID(ev.ID))
		case amocrm.ContactDeleted:
			if ev.Entity == "contacts" {
				b.index.Remove(crm.ContactID(ev.ID))
			}
			chats = b.chats.ofContact(crm.ContactID(ev.ID))
		case amocrm.DealStatusChanged, amocrm.DealResponsibleChanged, amocrm.DealDeleted, amocrm.DealUpdated:
			chats, toRefresh = b.chats.ofDeal(crm.DealID(ev.ID)), true
		case amocrm.DealAdded, amocrm.DealRestored:
			chats = b.chats.ofDeal(crm.DealID(ev.ID))
		}
		invalidated := 0
		for _, c := range chats {
			if toRefresh {
				if !queued[c] {
					queued[c] = true
					refresh = append(refresh, c)
				}
				continue
			}
			if err := b.engine.Invalidate(ctx, c); err != nil {
				return fmt.Errorf("invalidate %s: %w", c, err)
			}
			invalidated++
		}
		attrs := []any{"kind", ev.Kind.String(), "id", ev.ID, "chats_invalidated", invalidated}
		if toRefresh {
			attrs = append(attrs, "chats_to_refresh", len(chats))
		}
		b.log.Info("amocrm event", attrs...)
	}
	if len(refresh) == 0 {
		return nil
	}
	if err := b.refresher.enqueue(refresh); err != nil {
		b.log.Warn("amocrm webhook refused: it is delivered again later", "chats", len(refresh), "error", err)
		if s, ok := ctx.Value(amoHookStatusKey{}).(*int); ok {
			*s = http.StatusServiceUnavailable
		}
		return err
	}
	return nil
}

// refreshChat is the refresher's work for one chat: Engine.Refresh reads
// the chat's deal in amoCRM now. A deal closed or deleted frees its
// client's place at once (an unclaimed offer is withdrawn, the escalation
// clock stops, the client leaves the waiting queue); a deal handed to
// someone else moves the client's place with it. Both ask for a Tick
// (tick true), which gives a freed place to a waiting client.
//
// The owner is pushed to Wazzup whenever the refresh shows the client's
// open deal with another responsible, or another deal, than the bridge
// last pushed for the chat, or while a push of the chat failed and none
// passed since: so a push that failed is made by the next refresh of the
// chat (the refresher tries a failed chat again), even when that refresh
// finds nothing changed in amoCRM, and a redelivered webhook still pushes
// what the first one could not. A chat the bridge never tried to push an
// owner for (an unclaimed offer, a client waiting in the queue) is pushed
// only on a handover the engine reports: amoCRM's responsible of such a
// deal (the API user, for a deal created without one) is not its owner.
//
// A chat on a channel no longer configured is logged and skipped:
// trying again cannot make it good.
func (b *bridge) refreshChat(ctx context.Context, c channel.Chat) (tick bool, err error) {
	r, err := b.engine.Refresh(ctx, c)
	if errors.Is(err, engine.ErrBadEvent) {
		b.log.Warn("amocrm event for a chat the configuration does not have", "channel", c.Channel, "error", err)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("refresh %s: %w", c, err)
	}
	b.log.Info("chat refreshed", "channel", c.Channel, "outcome", string(r.Outcome), "deal", string(r.Deal),
		"responsible", string(r.Responsible), "previous_responsible", string(r.PreviousResponsible))
	b.chats.add(c, r.Contact, r.Deal) // the deal that counts may be another now
	switch r.Outcome {
	case engine.OutcomeForgotten:
		return true, nil
	case engine.OutcomeNoRecord:
		return false, nil
	}
	tick = r.Outcome == engine.OutcomeResponsibleChanged
	if r.Contact == "" || r.Deal == "" || r.Responsible == "" {
		return tick, nil
	}
	p := b.chats.pushed(c)
	if p.pending {
		b.log.Info("wazzup push made again after a failed one", "channel", c.Channel,
			"failed_responsible", string(p.pendingOwner), "failed_deal", string(p.pendingDeal),
			"responsible", string(r.Responsible), "deal", string(r.Deal))
	}
	if tick || p.pending || (p.owner != "" && (p.owner != r.Responsible || p.deal != r.Deal)) {
		if err := b.syncChat(ctx, c, r.Contact, r.Deal, r.Responsible, ""); err != nil {
			return tick, fmt.Errorf("wazzup sync of %s after a refresh: %w", c, err)
		}
	}
	return tick, nil
}

// chatIndex remembers which chats each deal and contact was seen with
// (from the engine's results), so that a CRM webhook about a deal or a
// contact reaches the chats concerned, and for each chat the client's name
// and the owner and deal last pushed to Wazzup. It lives in this process
// only: a chat another instance handled is not in it, and its record is
// trusted until the engine's CacheTTL passes.
type chatIndex struct {
	mu       sync.Mutex
	contacts map[crm.ContactID]map[channel.Chat]struct{}
	deals    map[crm.DealID]map[channel.Chat]struct{}
	info     map[channel.Chat]chatInfo
}

// chatInfo is what the bridge knows of one chat besides the engine.
type chatInfo struct {
	name  string     // the client's name, as Wazzup gave it
	owner crm.UserID // the responsible last pushed to Wazzup
	deal  crm.DealID // the deal last pushed with it
	// The owner and deal of a push that failed, none passing since
	// (pending): the next refresh pushes what amoCRM then shows.
	pendingOwner crm.UserID
	pendingDeal  crm.DealID
	pending      bool
}

func newChatIndex() *chatIndex {
	return &chatIndex{contacts: map[crm.ContactID]map[channel.Chat]struct{}{}, deals: map[crm.DealID]map[channel.Chat]struct{}{},
		info: map[channel.Chat]chatInfo{}}
}

func (x *chatIndex) add(chat channel.Chat, contact crm.ContactID, deal crm.DealID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if contact != "" {
		addTo(x.contacts, contact, chat)
	}
	if deal != "" {
		addTo(x.deals, deal, chat)
	}
}

// name returns the client's name remembered for chat, after remembering
// name when it is not empty.
func (x *chatIndex) name(chat channel.Chat, name string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	in := x.info[chat]
	if name == "" {
		return in.name
	}
	in.name = name
	x.info[chat] = in
	return name
}

// setPushed records the owner and deal Wazzup accepted for chat; no push
// is pending then.
func (x *chatIndex) setPushed(chat channel.Chat, owner crm.UserID, deal crm.DealID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	in := x.info[chat]
	in.owner, in.deal = owner, deal
	in.pendingOwner, in.pendingDeal, in.pending = "", "", false
	x.info[chat] = in
}

// setPending records that the push of owner and deal for chat failed.
func (x *chatIndex) setPending(chat channel.Chat, owner crm.UserID, deal crm.DealID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	in := x.info[chat]
	in.pendingOwner, in.pendingDeal, in.pending = owner, deal, true
	x.info[chat] = in
}

// pushed returns what the bridge pushed for chat, and tried to: the owner
// and deal last pushed ("" for none), and the push pending since.
func (x *chatIndex) pushed(chat channel.Chat) chatInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.info[chat]
}

func addTo[K comparable](m map[K]map[channel.Chat]struct{}, k K, chat channel.Chat) {
	s := m[k]
	if s == nil {
		s = map[channel.Chat]struct{}{}
		m[k] = s
	}
	s[chat] = struct{}{}
}

func (x *chatIndex) ofContact(id crm.ContactID) []channel.Chat {
	x.mu.Lock()
	defer x.mu.Unlock()
	return keys(x.contacts[id])
}

func (x *chatIndex) ofDeal(id crm.DealID) []channel.Chat {
	x.mu.Lock()
	defer x.mu.Unlock()
	return keys(x.deals[id])
}

func keys(s map[channel.Chat]struct{}) []channel.Chat {
	out := make([]channel.Chat, 0, len(s))
	for c := range s {
		out = append(out, c)
	}
	return out
}

// wazzupTeam describes the configured roles as Wazzup's: our manager is
// Wazzup's sales rep, our supervisor Wazzup's manager. An administrator
// sets the same roles in Wazzup's integration settings (the API cannot);
// SyncChat then checks that Wazzup agrees with the rules.
func wazzupTeam(cfg engine.Config, users []crm.User) []wazzup.Member {
	names := map[crm.UserID]string{}
	for _, u := range users {
		names[u.ID] = u.Name
	}
	var team []wazzup.Member
	for _, a := range cfg.Roles {
		role := wazzup.RoleSalesRep
		switch a.Role {
		case roles.Supervisor:
			role = wazzup.RoleManager
		case roles.QualityControl:
			role = wazzup.RoleQualityControl
		}
		name := strings.TrimSpace(names[a.User])
		if name == "" {
			name = "User " + string(a.User)
		}
		team = append(team, wazzup.Member{User: wazzup.User{ID: string(a.User), Name: name}, Channel: a.Channel,
			Role: role, ReceivesNewClients: a.ReceivesNewClients})
	}
	return team
}
