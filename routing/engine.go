package routing

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/tasks"
)

// EngineOptions configure an Engine. CRM and Sender are required; every
// other zero field means the documented default.
type EngineOptions struct {
	// CRM is the CRM adapter (required).
	CRM crm.Client
	// Sender sends employees' and Salesbot's messages (required).
	Sender channel.Sender
	// Config is the channels, roles and global settings.
	Config Config

	// Claims, Rotation, Streaks and State keep the engine's state. nil:
	// in-memory stores private to this Engine. Give several Engines (or
	// host instances) the same stores to share the state.
	Claims   ClaimStore
	Rotation RotationStore
	Streaks  tasks.Store
	State    StateStore
	// Available lets the host mark employees off shift; nil: everyone is
	// available.
	Available Availability
	// Links expands Salesbot links when Config.Global.ExpandSalesbotLinks
	// is on. nil: links.NewExpander(links.Options{}) (the guarded defaults).
	Links *links.Expander
	// CacheTTL is how long a chat's client record (contact, open deal,
	// responsible) is trusted without asking the CRM again. 0 means 5
	// minutes; negative means always ask. Call Engine.Invalidate on CRM
	// webhooks to see changes sooner.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Engine is the one place where the CRM and channel adapters meet the
// rules: hosts feed it events (a client's message, an employee's message,
// a Salesbot message, an unread-counter reset) and get decisions back.
//
// Guarantees, tested under the race detector:
//   - A message delivered twice (same channel and message ID) has no
//     second effect; the second call returns the first outcome with
//     Duplicate set.
//   - Concurrent messages from one new client create one contact, one
//     deal and one task: events of one chat are serialized in the Engine.
//   - Exactly one employee wins an offered chat (the claim primitive), and
//     round robin keeps equal shares (see Distributor).
//   - One task per streak of unanswered messages (see package tasks).
//   - A failure midway (CRM or sender error) is returned to the host and
//     leaves recorded progress that a redelivery of the same event
//     completes; nothing is dropped silently.
//
// An Engine is safe for concurrent use.
type Engine struct {
	crm     crm.Client
	sender  channel.Sender
	dist    *Distributor
	streaks tasks.Store
	state   StateStore
	links   *links.Expander
	ttl     time.Duration
	now     func() time.Time

	cfg       Config
	chans     map[channel.ID]*chanState
	table     *roles.Table
	phoneOpt  phone.Options
	pipelines []crm.Pipeline

	seed  maphash.Seed
	locks [256]sync.Mutex
}

// NewEngine validates the options and the configuration against the CRM's
// pipelines (one ListPipelines call) and returns a ready Engine. Errors:
// ErrInvalid (a *ConfigError naming the field, or a missing adapter), or
// the CRM's error.
func NewEngine(ctx context.Context, opt EngineOptions) (*Engine, error) {
	if opt.CRM == nil {
		return nil, &ConfigError{Field: "EngineOptions.CRM", Reason: "nil"}
	}
	if opt.Sender == nil {
		return nil, &ConfigError{Field: "EngineOptions.Sender", Reason: "nil"}
	}
	pipelines, err := opt.CRM.ListPipelines(ctx)
	if err != nil {
		return nil, fmt.Errorf("routing: NewEngine: listing pipelines: %w", err)
	}
	chans, table, err := opt.Config.compile(pipelines)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		crm:       opt.CRM,
		sender:    opt.Sender,
		streaks:   opt.Streaks,
		state:     opt.State,
		links:     opt.Links,
		ttl:       opt.CacheTTL,
		now:       opt.Now,
		cfg:       opt.Config,
		chans:     chans,
		table:     table,
		phoneOpt:  opt.Config.Global.PhoneOptions(),
		pipelines: pipelines,
		seed:      maphash.MakeSeed(),
	}
	e.dist = NewDistributor(DistributorOptions{Claims: opt.Claims, Rotation: opt.Rotation, Available: opt.Available})
	if e.streaks == nil {
		e.streaks = &tasks.MemoryStore{}
	}
	if e.state == nil {
		e.state = &MemoryState{Now: opt.Now}
	}
	if e.links == nil && opt.Config.Global.ExpandSalesbotLinks {
		e.links = links.NewExpander(links.Options{})
	}
	if e.ttl == 0 {
		e.ttl = 5 * time.Minute
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e, nil
}

// Table returns the roles table the engine enforces.
func (e *Engine) Table() *roles.Table { return e.table }

// Distributor returns the engine's distributor (offers, claims, rotation).
func (e *Engine) Distributor() *Distributor { return e.dist }

// lock serializes the events of one chat.
func (e *Engine) lock(chat channel.Chat) func() {
	m := &e.locks[maphash.Comparable(e.seed, chat)%uint64(len(e.locks))]
	m.Lock()
	return m.Unlock
}

// Invalidate forgets what the engine knows of the chat's client, so the
// next event reads the CRM again (call it from CRM webhooks on deal or
// contact changes).
func (e *Engine) Invalidate(ctx context.Context, chat channel.Chat) error {
	defer e.lock(chat)()
	r, ok, err := e.state.Client(ctx, chat)
	if err != nil || !ok {
		return err
	}
	r.Fetched = time.Time{}
	return e.state.PutClient(ctx, chat, r)
}

func (e *Engine) fresh(r ClientRecord) bool {
	return e.ttl > 0 && e.now().Sub(r.Fetched) < e.ttl
}

// Errors of the engine's events.
var (
	// ErrBadEvent: an event is malformed; matched by *EventError, which
	// names the field.
	ErrBadEvent = errors.New("routing: bad event")
	// ErrUnknownChannel: the event names a channel the configuration does
	// not have.
	ErrUnknownChannel = errors.New("routing: unknown channel")
	// ErrUnknownEmployee: the employee has no role on the channel.
	ErrUnknownEmployee = errors.New("routing: employee unknown on the channel")
	// ErrForbidden: the employee's role does not allow the action on this
	// chat; matched by *PermissionError.
	ErrForbidden = errors.New("routing: not allowed")
	// ErrAmbiguousChannel: an employee writes to a client first and the
	// channel cannot be chosen; matched by *AmbiguousChannelError.
	ErrAmbiguousChannel = errors.New("routing: choose a channel")
)

// EventError names the field of an event that is wrong. It matches
// ErrBadEvent and, through Err, a more specific sentinel when there is one
// (ErrUnknownChannel, ErrUnknownEmployee).
type EventError struct {
	Event  string // "ClientMessage", "EmployeeMessage", ...
	Field  string // "ID", "Chat.Channel", ...
	Value  string
	Reason string
	Err    error
}

// Error implements the error interface.
func (e *EventError) Error() string {
	s := fmt.Sprintf("routing: %s: %s", e.Event, e.Field)
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
// *ClaimedError naming them.
type PermissionError struct {
	User   crm.UserID
	Chat   channel.Chat
	Role   roles.Role
	Action string // "write", "reset the unread counter"
	Reason roles.Reason
	Err    error
}

// Error implements the error interface.
func (e *PermissionError) Error() string {
	role := string(e.Role)
	if role == "" {
		role = "no role"
	}
	return fmt.Sprintf("routing: %s (%s) may not %s in %s: %s", e.User, role, e.Action, e.Chat, e.Reason)
}

// Is reports whether target is ErrForbidden.
func (e *PermissionError) Is(target error) bool { return target == ErrForbidden }

// Unwrap returns the underlying claim error, if any.
func (e *PermissionError) Unwrap() error { return e.Err }

// AmbiguousChannelError: the employee has several channels, none holds a
// chat with the client, and no "write first from" channel is set.
type AmbiguousChannelError struct {
	User       crm.UserID
	ChatID     string
	Candidates []channel.ID
}

// Error implements the error interface.
func (e *AmbiguousChannelError) Error() string {
	return fmt.Sprintf("routing: %s writes first to %q: choose one of the channels %v (or set write_first_from)", e.User, e.ChatID, e.Candidates)
}

// Is reports whether target is ErrAmbiguousChannel.
func (e *AmbiguousChannelError) Is(target error) bool { return target == ErrAmbiguousChannel }

// Outcome names what the engine did with an event.
type Outcome string

// Outcomes.
const (
	OutcomeNewClient        Outcome = "new_client"         // contact + deal created and distributed
	OutcomeOpenDeal         Outcome = "open_deal"          // the open deal's responsible is notified
	OutcomeOffered          Outcome = "offered"            // the chat is offered and unclaimed: the group is notified
	OutcomeReassigned       Outcome = "reassigned"         // the responsible no longer works the channel: distributed again
	OutcomeReturningNotify  Outcome = "returning_notify"   // all deals closed: the responsible decides
	OutcomeReturningNewDeal Outcome = "returning_new_deal" // all deals closed: a new deal, contact reused
	OutcomeSent             Outcome = "sent"               // an outbound message was sent
	OutcomeReset            Outcome = "reset"              // the unread counter was reset
)

// Notification is a user to notify and why. The engine decides; the host
// delivers.
type Notification struct {
	User   crm.UserID
	Reason string
}

// chanOf returns the channel's state or an EventError.
func (e *Engine) chanOf(event string, id channel.ID) (*chanState, error) {
	if id == "" {
		return nil, &EventError{Event: event, Field: "Chat.Channel", Reason: "empty"}
	}
	cs := e.chans[id]
	if cs == nil {
		return nil, &EventError{Event: event, Field: "Chat.Channel", Value: string(id), Reason: "unknown channel: not in the configuration", Err: ErrUnknownChannel}
	}
	return cs, nil
}

func msgKey(dir string, ch channel.ID, id string) string {
	return dir + "\x00" + string(ch) + "\x00" + id
}

// worksOn reports whether user may write on ch (manager or supervisor).
func (e *Engine) worksOn(user crm.UserID, ch channel.ID) bool {
	return user != "" && e.table.Role(user, ch).MayWrite()
}

// joinWhy joins explanation steps.
func joinWhy(steps []string) string { return strings.Join(steps, "; ") }

func userIDs(us []crm.UserID) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = string(u)
	}
	return out
}

func notifyAll(us []crm.UserID, reason string) []Notification {
	out := make([]Notification, 0, len(us))
	for _, u := range slices.Compact(slices.Sorted(slices.Values(us))) {
		out = append(out, Notification{User: u, Reason: reason})
	}
	return out
}
