package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/tasks"
)

// Options configure an Engine. CRM and Sender are required; every other
// zero field means the documented default.
type Options struct {
	// CRM is the CRM adapter (required).
	CRM crm.Client
	// Sender sends employees' and Salesbot's messages (required).
	Sender channel.Sender
	// Config is the channels, roles and global settings.
	Config Config
	// Catalog is the CRM's users and pipelines, when the host has them
	// cached; nil: New lists them (two CRM calls). With a Catalog, New
	// makes no CRM call at all.
	Catalog *Catalog

	// State keeps leases on chats, client records and the journal of
	// processed events; nil: a MemoryState private to this Engine. Give
	// several Engines (or host instances) the same State, Claims,
	// Rotation, Queue, Escalations and Streaks to share every guarantee
	// between them.
	State State
	// Claims and Rotation keep first-responder offers and round-robin
	// turns; nil: in-memory stores private to this Engine.
	Claims routing.ClaimStore
	// Rotation keeps each channel's round-robin turns, so that shares
	// stay equal; nil: an in-memory store private to this Engine.
	Rotation routing.RotationStore
	// Queue and Escalations keep the waiting queues and the clocks of
	// unanswered clients (see the channel Features); nil: in-memory stores
	// private to this Engine.
	Queue routing.QueueStore
	// Escalations keeps the deadlines of unanswered clients that
	// Engine.Tick processes (see the channel Features); nil: an in-memory
	// store private to this Engine.
	Escalations routing.EscalationStore
	// Streaks keeps unanswered-message streaks; nil: a tasks.MemoryStore.
	Streaks tasks.Store
	// Available lets the host mark employees off shift; nil: everyone is
	// available.
	Available routing.Availability
	// Links expands Salesbot links when Config.Global.ExpandSalesbotLinks
	// is on. nil: links.NewExpander(links.Options{}) (the guarded defaults).
	Links *links.Expander
	// CacheTTL is how long a chat's client record (contact, open deal,
	// responsible) is trusted without asking the CRM again. 0 means 5
	// minutes; negative means always ask. A stale record's open deal is
	// re-read alone where the CRM can (crm.DealGetter), so a deal added
	// by hand in the CRM is seen once Engine.Invalidate or Engine.Refresh
	// is called for the chat (from CRM webhooks) or the known deal closes.
	CacheTTL time.Duration
	// LeaseTTL is how long one event may hold its chat before another
	// instance may take the chat over; it must exceed the slowest event
	// (CRM calls with their retries). 0 means 1 minute.
	LeaseTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one record per event (Debug when it succeeds, Warn
	// when it fails) with the attributes channel, chat, event, rule,
	// outcome, duration and, on failure, error. nil: the engine is silent.
	// Message texts and credentials are never logged; the chat attribute
	// is the client's chat ID, which on WhatsApp is their phone number.
	Logger *slog.Logger
	// Observer is told of every event, for metrics; nil: nobody.
	Observer Observer
}

// Engine is the one place where the CRM and channel adapters meet the
// rules: hosts feed it events (a client's message, an employee's message,
// a Salesbot message, an unread-counter reset) and get decisions back.
//
// Guarantees, tested under the race detector, that hold for one Engine
// and for several Engines (or host instances) sharing their stores:
//   - A message delivered twice, or any number of times in any order, has
//     no second effect; a repeat returns the first outcome with Duplicate
//     set.
//   - Concurrent messages from one new client create one contact, one
//     deal and one task: an event holds its chat's lease (State) while it
//     runs.
//   - A CRM create whose answer was lost (a timeout after the CRM did the
//     work) is looked for in the CRM before it is repeated: the
//     redelivery finds the contact, deal or task instead of making a
//     second one, also after a restart with fresh state.
//   - A round-robin turn belongs to the client: every delivery of any of
//     its messages, in any order, uses one turn per new client and one
//     per reassignment (its responsible away under the reassign policy,
//     or gone from the channel), even when the CRM write naming the pick
//     failed and the message is redelivered.
//   - Exactly one employee wins an offered chat, and round robin keeps
//     equal shares (see routing.Distributor).
//   - One task per streak of unanswered messages (see package tasks).
//   - A failure midway (CRM, sender or store error) is returned to the
//     host and leaves recorded progress that a redelivery of the same
//     event completes; nothing is dropped silently.
//   - Settings changed with Update apply atomically: each event sees the
//     old or the new configuration, never a mix.
//
// An Engine is safe for concurrent use.
type Engine struct {
	crm     crm.Client
	sender  channel.Sender
	dist    *routing.Distributor
	streaks tasks.Store
	state   State
	links   *links.Expander // nil until first needed (see expander)
	linksMu sync.Mutex
	ttl     time.Duration
	lease   time.Duration
	now     func() time.Time
	log     *slog.Logger
	obs     Observer

	set atomic.Pointer[settings]
}

// New validates the options and the configuration against the CRM's
// users and pipelines and returns a ready Engine. Errors: a *ConfigError
// naming the field (a missing adapter, a bad setting, a role for a user
// the CRM does not have), or the CRM's error while listing the catalog.
func New(ctx context.Context, opt Options) (*Engine, error) {
	if opt.CRM == nil {
		return nil, &ConfigError{Field: "Options.CRM", Reason: "nil: a CRM adapter is required"}
	}
	if opt.Sender == nil {
		return nil, &ConfigError{Field: "Options.Sender", Reason: "nil: a channel sender is required"}
	}
	var cat Catalog
	if opt.Catalog != nil {
		cat = *opt.Catalog
	} else {
		var err error
		if cat.Pipelines, err = opt.CRM.ListPipelines(ctx); err != nil {
			return nil, fmt.Errorf("engine: New: listing pipelines: %w", err)
		}
		if cat.Users, err = opt.CRM.ListUsers(ctx); err != nil {
			return nil, fmt.Errorf("engine: New: listing users: %w", err)
		}
	}
	s, err := compile(opt.Config, cat)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		crm:     opt.CRM,
		sender:  opt.Sender,
		streaks: opt.Streaks,
		state:   opt.State,
		links:   opt.Links,
		ttl:     opt.CacheTTL,
		lease:   opt.LeaseTTL,
		now:     opt.Now,
		log:     opt.Logger,
		obs:     opt.Observer,
	}
	e.set.Store(s)
	e.dist = routing.NewDistributor(routing.DistributorOptions{
		Claims: opt.Claims, Rotation: opt.Rotation, Available: opt.Available,
		Queue: opt.Queue, Escalations: opt.Escalations,
	})
	if e.streaks == nil {
		e.streaks = &tasks.MemoryStore{}
	}
	if e.state == nil {
		e.state = &MemoryState{Now: opt.Now}
	}
	if e.ttl == 0 {
		e.ttl = 5 * time.Minute
	}
	if e.lease <= 0 {
		e.lease = time.Minute
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e, nil
}

// Update replaces the configuration while the Engine runs (a manager
// switched "receives new clients" off, a role changed, a channel was
// added). c is validated as New validates it, against cat, or against the
// catalog in use when cat is nil; on error nothing changes. Each event
// sees the old or the new configuration, never a mix. The rotation
// continues where it was, and chats offered before the update stay
// offered to the same group: the first reply still claims them.
func (e *Engine) Update(c Config, cat *Catalog) error {
	for {
		old := e.set.Load()
		use := old.cat
		if cat != nil {
			use = *cat
		}
		s, err := compile(c, use)
		if err != nil {
			return err
		}
		if e.set.CompareAndSwap(old, s) {
			return nil
		}
	}
}

// Config returns the configuration in use.
func (e *Engine) Config() Config { return e.set.Load().cfg }

// Table returns the roles table the engine enforces now.
func (e *Engine) Table() *roles.Table { return e.set.Load().table }

// Distributor returns the engine's distributor (offers, claims, rotation).
func (e *Engine) Distributor() *routing.Distributor { return e.dist }

// acquire takes chat's lease; release gives it back even when ctx is done.
func (e *Engine) acquire(ctx context.Context, chat channel.Chat) (Lease, func(), error) {
	l, err := e.state.Lock(ctx, chat, e.lease)
	if err != nil {
		return Lease{}, nil, fmt.Errorf("engine: locking chat %s: %w", chat, err)
	}
	return l, func() { _ = e.state.Unlock(context.WithoutCancel(ctx), l) }, nil
}

// expander returns Options.Links, or the guarded default made on first
// use, so that engines that never expand links never build one.
func (e *Engine) expander() *links.Expander {
	e.linksMu.Lock()
	defer e.linksMu.Unlock()
	if e.links == nil {
		e.links = links.NewExpander(links.Options{})
	}
	return e.links
}

// Invalidate marks what the engine knows of the chat's client stale, so
// the next event lists the contact's deals in the CRM again and finds a
// deal added by hand. It reads nothing itself: call it from CRM webhooks
// on contact changes (and on a deal added). The deal the engine knew open
// is kept until that read, which tells whether it closed or changed hands
// (a capacity hold follows); a deal that closed, changed hands or was
// deleted is applied at once by [Engine.Refresh].
func (e *Engine) Invalidate(ctx context.Context, chat channel.Chat) error {
	l, release, err := e.acquire(ctx, chat)
	if err != nil {
		return err
	}
	defer release()
	r, ok, err := e.state.Client(ctx, chat)
	if err != nil || !ok || r.Fetched.IsZero() {
		return err
	}
	// A zero Fetched makes the next read a full one (see loadClient):
	// the change may be a new deal, which only the contact's deals show.
	r.Fetched = time.Time{}
	return e.state.PutClient(ctx, l, r)
}

func (e *Engine) fresh(r ClientRecord) bool {
	return e.ttl > 0 && !r.Fetched.IsZero() && e.now().Sub(r.Fetched) < e.ttl
}

// Errors of the engine's events and configuration.
var (
	// ErrInvalid: the configuration or the options are wrong; matched by
	// *ConfigError, which names the field.
	ErrInvalid = errors.New("engine: invalid configuration")
	// ErrBadEvent: an event is malformed; matched by *EventError, which
	// names the field.
	ErrBadEvent = errors.New("engine: bad event")
	// ErrUnknownChannel: the event names a channel the configuration does
	// not have.
	ErrUnknownChannel = errors.New("engine: unknown channel")
	// ErrUnknownEmployee: the employee has no role on the channel.
	ErrUnknownEmployee = errors.New("engine: employee unknown on the channel")
	// ErrForbidden: the employee's role does not allow the action on this
	// chat; matched by *PermissionError.
	ErrForbidden = errors.New("engine: not allowed")
	// ErrAmbiguousChannel: an employee writes to a client first and the
	// channel cannot be chosen; matched by *AmbiguousChannelError.
	ErrAmbiguousChannel = errors.New("engine: choose a channel")
)

// EventError names the field of an event that is wrong, in the event's own
// terms ("Direction", "Chat.ChatID"). It matches ErrBadEvent and, through
// Err, a more specific sentinel when there is one (ErrUnknownChannel,
// ErrUnknownEmployee).
type EventError struct {
	// Event is the kind of event that was refused: "ClientMessage",
	// "EmployeeMessage", ...
	Event string
	// Field is the wrong field of the event: "ID", "Chat.Channel", ...
	Field string
	// Value is the offending value as text; "" when the field is empty.
	Value string
	// Reason says in English what is wrong with the field.
	Reason string
	// Err is the more specific sentinel (ErrUnknownChannel,
	// ErrUnknownEmployee); nil when there is none.
	Err error
}

// Error implements the error interface.
func (e *EventError) Error() string {
	s := "engine: " + e.Event + ": " + e.Field
	if e.Value != "" {
		s += fmt.Sprintf(" %q", e.Value)
	}
	return s + ": " + e.Reason
}

// Is reports whether target is ErrBadEvent.
func (e *EventError) Is(target error) bool { return target == ErrBadEvent }

// Unwrap returns the specific sentinel, if any.
func (e *EventError) Unwrap() error { return e.Err }

// PermissionError says why an employee may not act on a chat. It matches
// ErrForbidden; when another employee claimed the chat, Err is the
// *routing.ClaimedError naming them.
type PermissionError struct {
	// User is the employee who was refused.
	User crm.UserID
	// Chat is the chat they tried to act on.
	Chat channel.Chat
	// Role is User's role on the chat's channel; roles.NoRole when they
	// have none there.
	Role roles.Role
	// Action is what was refused: "write" or "reset the unread counter".
	Action string
	// Reason is why the roles forbid it, such as
	// roles.ReasonClaimedByOther.
	Reason roles.Reason
	// Err, when another employee claimed the chat, is the error naming
	// the winner (a *routing.ClaimedError, matching
	// routing.ErrAlreadyClaimed); else nil.
	Err error
}

// Error implements the error interface.
func (e *PermissionError) Error() string {
	role := string(e.Role)
	if role == "" {
		role = "no role"
	}
	return fmt.Sprintf("engine: %s (%s) may not %s in %s: %s", e.User, role, e.Action, e.Chat, e.Reason)
}

// Is reports whether target is ErrForbidden.
func (e *PermissionError) Is(target error) bool { return target == ErrForbidden }

// Unwrap returns the underlying claim error, if any.
func (e *PermissionError) Unwrap() error { return e.Err }

// AmbiguousChannelError: the employee has several channels, none holds a
// chat with the client, and no "write first from" channel is set.
type AmbiguousChannelError struct {
	// User is the employee writing first.
	User crm.UserID
	// ChatID is the client's chat ID they write to.
	ChatID string
	// Candidates are the channels where User may write (as manager or
	// supervisor); the host sends the message again with Chat.Channel set
	// to one of them.
	Candidates []channel.ID
}

// Error implements the error interface.
func (e *AmbiguousChannelError) Error() string {
	return fmt.Sprintf("engine: %s writes first to %q: choose one of the channels %v (or set write_first_from)", e.User, e.ChatID, e.Candidates)
}

// Is reports whether target is ErrAmbiguousChannel.
func (e *AmbiguousChannelError) Is(target error) bool { return target == ErrAmbiguousChannel }

// Outcomes: what the engine did with an event.
const (
	OutcomeNewClient        Outcome = "new_client"         // contact + deal created and distributed
	OutcomeOpenDeal         Outcome = "open_deal"          // the open deal's responsible is notified
	OutcomeOffered          Outcome = "offered"            // the chat is offered and unclaimed: the group is notified
	OutcomeReassigned       Outcome = "reassigned"         // the responsible no longer works the channel: distributed again
	OutcomeReturningNotify  Outcome = "returning_notify"   // all deals closed: the responsible decides
	OutcomeReturningNewDeal Outcome = "returning_new_deal" // all deals closed: a new deal, contact reused
	OutcomeGroup            Outcome = "group"              // a group chat's message: not a client, nothing created
	OutcomeQueued           Outcome = "queued"             // nobody eligible: the client waits in the channel's queue (see Engine.Tick)
	OutcomeSent             Outcome = "sent"               // an outbound message was sent (or recorded)
	OutcomeReset            Outcome = "reset"              // the unread counter was reset
	OutcomeEscalated        Outcome = "escalated"          // Tick: a deadline processed: the client passed on, its offer widened, or (Why.Fallback) kept for want of anyone else
	OutcomeAssigned         Outcome = "assigned"           // Tick: a waiting client taken from the queue
)

// Notification is a user to notify and why. The engine decides; the host
// delivers.
type Notification struct {
	// User is the employee to notify.
	User crm.UserID
	// Reason is a short English phrase saying why ("responsible for the
	// open deal", "offered chat, still unclaimed"), for display, not for
	// matching.
	Reason string
}

// chanOf returns the channel's state or an EventError.
func (s *settings) chanOf(event string, id channel.ID) (*chanState, error) {
	if id == "" {
		return nil, &EventError{Event: event, Field: "Chat.Channel", Reason: "empty"}
	}
	cs := s.chans[id]
	if cs == nil {
		return nil, &EventError{Event: event, Field: "Chat.Channel", Value: string(id), Reason: "unknown channel: not in the configuration", Err: ErrUnknownChannel}
	}
	return cs, nil
}

// checkChat validates an event's chat against the configuration.
func (s *settings) checkChat(event string, chat channel.Chat, group bool) (*chanState, error) {
	cs, err := s.chanOf(event, chat.Channel)
	if err != nil {
		return nil, err
	}
	if chat.ChatID == "" {
		return nil, &EventError{Event: event, Field: "Chat.ChatID", Reason: "empty"}
	}
	if why := checkChatID(cs.cfg.Kind, chat.ChatID, group); why != "" {
		return nil, &EventError{Event: event, Field: "Chat.ChatID", Value: chat.ChatID, Reason: why}
	}
	return cs, nil
}

// worksOn reports whether user may write on ch (manager or supervisor).
func worksOn(t *roles.Table, user crm.UserID, ch channel.ID) bool {
	return user != "" && t.Role(user, ch).MayWrite()
}

func notifyAll(us []crm.UserID, reason string) []Notification {
	out := make([]Notification, 0, len(us))
	for _, u := range slices.Compact(slices.Sorted(slices.Values(us))) {
		out = append(out, Notification{User: u, Reason: reason})
	}
	return out
}
