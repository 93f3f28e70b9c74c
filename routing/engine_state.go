package routing

import (
	"context"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// ClientRecord is what the engine remembers of a chat's client, so that a
// live chat needs no CRM call while the record is fresh.
type ClientRecord struct {
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
	// Fetched is when the record was last read from, or written to, the CRM.
	Fetched time.Time
}

// MessageRecord is the progress of one processed event, by its message ID,
// so that a redelivery has no second effect and a failed one can finish.
type MessageRecord struct {
	// Pick is a round-robin choice made for this message before the CRM
	// writes that depend on it, reused on redelivery.
	Pick crm.UserID
	// Done is set once every effect of the event has been applied.
	Done bool
	// Summary is the outcome of a done event, returned to duplicates.
	Summary Summary
}

// Summary is the compact outcome of an event kept for duplicates.
type Summary struct {
	Outcome     Outcome
	Contact     crm.ContactID
	Deal        crm.DealID
	Responsible crm.UserID
	Task        crm.TaskID
	Provider    string // the provider's message ID of a sent message
}

// StateStore keeps the engine's own state: client records per chat and
// the progress of processed messages. Every method is one atomic operation
// and safe for concurrent use; each returns an error matching ctx.Err()
// once ctx is done. Records are values: the store keeps copies.
//
// Within one process the engine serializes the events of one chat, so
// last-writer-wins puts are enough. Hosts running several instances should
// route the events of a chat to one instance at a time (sticky by chat) for
// the "one contact per new client" guarantee; claims, rotation, streaks
// and processed message IDs stay correct across instances through their
// atomic stores.
type StateStore interface {
	Client(ctx context.Context, chat channel.Chat) (ClientRecord, bool, error)
	PutClient(ctx context.Context, chat channel.Chat, r ClientRecord) error
	Message(ctx context.Context, key string) (MessageRecord, bool, error)
	PutMessage(ctx context.Context, key string, r MessageRecord) error
}

// MemoryState is an in-memory StateStore, safe for concurrent use.
// Message records are kept for Retention after they are first written
// (then forgotten, so memory stays bounded); client records are kept for
// the Engine's lifetime (Engine.Invalidate marks one stale).
type MemoryState struct {
	// Retention is how long processed message IDs are remembered; 0 means
	// 72 hours, longer than any provider's webhook retries.
	Retention time.Duration
	// Now is the clock for retention; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	clients map[channel.Chat]ClientRecord
	msgs    map[string]MessageRecord
	order   []msgAge // FIFO by first write
	head    int
}

type msgAge struct {
	key string
	at  time.Time
}

var _ StateStore = (*MemoryState)(nil)

// Client implements StateStore.
func (m *MemoryState) Client(ctx context.Context, chat channel.Chat) (ClientRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return ClientRecord{}, false, err
	}
	m.mu.Lock()
	r, ok := m.clients[chat]
	m.mu.Unlock()
	return r, ok, nil
}

// PutClient implements StateStore.
func (m *MemoryState) PutClient(ctx context.Context, chat channel.Chat, r ClientRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.clients == nil {
		m.clients = map[channel.Chat]ClientRecord{}
	}
	m.clients[chat] = r
	m.mu.Unlock()
	return nil
}

// Message implements StateStore.
func (m *MemoryState) Message(ctx context.Context, key string) (MessageRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return MessageRecord{}, false, err
	}
	m.mu.Lock()
	r, ok := m.msgs[key]
	m.mu.Unlock()
	return r, ok, nil
}

// PutMessage implements StateStore.
func (m *MemoryState) PutMessage(ctx context.Context, key string, r MessageRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	t := now()
	keep := m.Retention
	if keep == 0 {
		keep = 72 * time.Hour
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.msgs == nil {
		m.msgs = map[string]MessageRecord{}
	}
	if _, seen := m.msgs[key]; !seen {
		m.order = append(m.order, msgAge{key, t})
	}
	m.msgs[key] = r
	// Forget expired message IDs, oldest first.
	for m.head < len(m.order) && t.Sub(m.order[m.head].at) > keep {
		delete(m.msgs, m.order[m.head].key)
		m.order[m.head] = msgAge{}
		m.head++
	}
	if m.head > 1024 && m.head*2 > len(m.order) {
		m.order = append([]msgAge(nil), m.order[m.head:]...)
		m.head = 0
	}
	return nil
}

// Len returns the numbers of client records and of remembered messages.
func (m *MemoryState) Len() (clients, messages int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.clients), len(m.msgs)
}
