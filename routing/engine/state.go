package engine

import (
	"context"
	"errors"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// ErrLeaseLost is returned by a write made under a lease that is no longer
// the chat's current one: it expired, or was released, or another holder
// was granted the chat since. Nothing was written. The event that held the
// lease should stop and be delivered again; its redelivery finishes the
// work under a new lease.
var ErrLeaseLost = errors.New("engine: lease on the chat lost")

// Outcome names what the engine did with an event.
type Outcome string

// Lease is the right to process one chat's events. Several host instances
// sharing a [State] serialize a chat's events through it.
type Lease struct {
	// Chat is the chat the lease is on.
	Chat channel.Chat
	// Fence is greater than the Fence of every lease granted earlier by
	// the same store; writes carry it so that a holder whose lease has
	// expired cannot overwrite a newer holder's state.
	Fence uint64
	// Expires is when the lease stops protecting its holder, by the
	// store's clock.
	Expires time.Time
}

// Locker grants leases on chats. An instance that dies holding a lease
// blocks the chat for at most the lease's time to live.
type Locker interface {
	// Lock waits until chat has no live lease (none granted, released, or
	// expired), then grants one valid for ttl. It returns an error matching
	// ctx.Err() if ctx is done first, and one matching routing.ErrInvalid
	// for an empty chat or a ttl that is not positive.
	Lock(ctx context.Context, chat channel.Chat, ttl time.Duration) (Lease, error)
	// Unlock releases l so the next Lock is granted at once. Releasing a
	// lease that is no longer current returns ErrLeaseLost and changes
	// nothing.
	Unlock(ctx context.Context, l Lease) error
}

// ClientRecord is what the engine remembers of a chat's client, so that a
// live chat needs no CRM call while the record is fresh.
type ClientRecord struct {
	// Contact is the client's CRM contact; "" when the engine knows none
	// yet, and the next event reads the CRM.
	Contact crm.ContactID
	// Deal is the open deal that counts (the most recently updated), or ""
	// when the client has none open.
	Deal crm.DealID
	// Responsible is the open deal's responsible user, else the contact's.
	Responsible crm.UserID
	// ClaimedBy is the employee who won the chat's last first-responder
	// claim, kept after the claim record is released so that a later reply
	// of another employee is refused naming the winner.
	ClaimedBy crm.UserID
	// Turn is the round-robin pick made for this chat's client (new, or
	// reassigned), recorded before the CRM writes that depend on it and
	// kept until the CRM names the pick responsible (see Engine).
	Turn crm.UserID
	// Fetched is when the record was last read from, or written to, the
	// CRM; the zero time marks it stale and makes the next read list the
	// contact's deals rather than re-read Deal alone (Engine.Invalidate).
	Fetched time.Time
}

// ClientStore keeps one ClientRecord per chat.
type ClientStore interface {
	// Client returns the chat's record; found is false when there is none.
	Client(ctx context.Context, chat channel.Chat) (r ClientRecord, found bool, err error)
	// PutClient replaces the record of l.Chat. It returns ErrLeaseLost,
	// writing nothing, unless l is the chat's current, unexpired lease.
	PutClient(ctx context.Context, l Lease, r ClientRecord) error
}

// MessageKey identifies a processed event: its chat, a namespace the
// engine chooses (inbound message, outbound message, a sent message's
// provider ID, an echo) and the provider's message ID.
type MessageKey struct {
	// Chat is the event's chat.
	Chat channel.Chat
	// Kind is the engine's namespace of ID (a client's message, an
	// employee's message, ...); stores keep it as an opaque byte.
	Kind byte
	// ID is the event's message ID in that namespace: the provider's or
	// the host's.
	ID string
}

// MessageRecord is the progress of one processed event, kept so that a
// redelivery has no second effect.
type MessageRecord struct {
	// Done is set once every effect of the event has been applied.
	Done bool
	// Outcome is what the event did; a duplicate's answer is rebuilt from
	// it and the chat's ClientRecord.
	Outcome Outcome
}

// Journal remembers processed events for a bounded time.
type Journal interface {
	// Message returns the record of key; found is false when there is
	// none, or it was forgotten.
	Message(ctx context.Context, key MessageKey) (r MessageRecord, found bool, err error)
	// PutMessage records r under key, keeping the time key was first
	// written. key.Chat must be l.Chat; it returns ErrLeaseLost, writing
	// nothing, unless l is the chat's current, unexpired lease.
	PutMessage(ctx context.Context, l Lease, key MessageKey, r MessageRecord) error
	// Purge forgets at most limit records first written before before,
	// oldest first, and returns how many it forgot. Call it in a loop to
	// purge in bounded batches without blocking events.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
}

// State is the engine's own state: leases on chats, client records and the
// journal of processed events. Every method is one atomic operation, safe
// for concurrent use, across processes when the store is shared, and
// returns an error matching ctx.Err() once ctx is done. Records are
// values: stores keep copies.
//
// A State value holds one account's state. Backends serving many accounts
// hand out one State per account, and no operation on one account's State
// reads, changes, locks or purges another's.
//
// Package enginetest has the conformance suite every implementation should
// pass; [MemoryState] passes it.
type State interface {
	Locker
	ClientStore
	Journal
}
