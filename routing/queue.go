package routing

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
)

// QueueEntry is a client waiting in a channel's queue.
type QueueEntry struct {
	// Chat is the waiting client's chat; its Channel names the queue,
	// which holds a chat at most once.
	Chat channel.Chat
	// Since is when the client was queued (the event's time).
	Since time.Time
	// Seq is the store's arrival number in the channel's queue, which
	// orders entries queued at the same instant.
	Seq uint64
}

// QueueStore keeps each channel's waiting queue of new clients (see
// [QueueWhenNobody]). Every method is one atomic operation, safe for
// concurrent use (across processes when shared), and returns an error
// matching ctx.Err() once ctx is done. [MemoryQueue] implements it.
//
// Order is oldest first: by Since, then Seq. Dequeuing a client is
// [Distributor.Serve]: Entry (still waiting?), an assignment keyed by
// the chat ([RotationStore.Reassign] returns the holder of a held key
// while they stay eligible), the caller's apply, then Remove; an
// instance that stops in between leaves the entry, and the next Serve
// makes the same assignment (or a new one if its holder is no longer
// eligible) and completes it.
//
// On PostgreSQL: a table keyed by (channel, chat_id) with a bigserial
// seq and an index on (channel, since, seq); Enqueue is INSERT … ON
// CONFLICT DO NOTHING RETURNING (then a SELECT when nothing was
// inserted), Peek a SELECT … ORDER BY since, seq LIMIT $n, Remove a
// DELETE … RETURNING, Entry a SELECT by the key.
type QueueStore interface {
	// Enqueue adds chat to its channel's queue unless it is already
	// there: the first Enqueue wins (a redelivered event keeps the
	// client's place). It returns the stored entry and whether it was
	// created. An invalid chat: an error matching ErrInvalid.
	Enqueue(ctx context.Context, chat channel.Chat, since time.Time) (QueueEntry, bool, error)
	// Peek returns up to limit entries of ch's queue, oldest first,
	// without removing them.
	Peek(ctx context.Context, ch channel.ID, limit int) ([]QueueEntry, error)
	// Remove takes chat out of its queue; ok is false when it was not
	// there. Among concurrent Removes of one chat exactly one reports ok.
	Remove(ctx context.Context, chat channel.Chat) (ok bool, err error)
	// Entry returns chat's entry; ok is false when it is not queued. An
	// invalid chat: an error matching ErrInvalid.
	Entry(ctx context.Context, chat channel.Chat) (e QueueEntry, ok bool, err error)
}

// MemoryQueue is an in-memory [QueueStore]. It is safe for concurrent
// use; each method runs under a lock. The zero value is an empty store,
// ready to use.
type MemoryQueue struct {
	mu     sync.Mutex
	seq    uint64
	queues map[channel.ID][]QueueEntry // sorted oldest first
}

var _ QueueStore = (*MemoryQueue)(nil)

func compareEntries(a, b QueueEntry) int {
	return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Seq, b.Seq))
}

// Enqueue implements [QueueStore].
func (m *MemoryQueue) Enqueue(ctx context.Context, chat channel.Chat, since time.Time) (QueueEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return QueueEntry{}, false, err
	}
	if err := checkChat(chat); err != nil {
		return QueueEntry{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q, i := m.find(chat)
	if i >= 0 {
		return q[i], false, nil
	}
	m.seq++
	e := QueueEntry{Chat: chat, Since: since, Seq: m.seq}
	i, _ = slices.BinarySearchFunc(q, e, compareEntries)
	if m.queues == nil {
		m.queues = map[channel.ID][]QueueEntry{}
	}
	m.queues[chat.Channel] = slices.Insert(q, i, e)
	return e, true, nil
}

// Peek implements [QueueStore].
func (m *MemoryQueue) Peek(ctx context.Context, ch channel.ID, limit int) ([]QueueEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrInvalid, limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[ch]
	return slices.Clone(q[:min(limit, len(q))]), nil
}

// Remove implements [QueueStore].
func (m *MemoryQueue) Remove(ctx context.Context, chat channel.Chat) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q, i := m.find(chat)
	if i < 0 {
		return false, nil
	}
	q = slices.Delete(q, i, i+1)
	if len(q) == 0 {
		delete(m.queues, chat.Channel)
	} else {
		m.queues[chat.Channel] = q
	}
	return true, nil
}

// Entry implements [QueueStore].
func (m *MemoryQueue) Entry(ctx context.Context, chat channel.Chat) (QueueEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return QueueEntry{}, false, err
	}
	if err := checkChat(chat); err != nil {
		return QueueEntry{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if q, i := m.find(chat); i >= 0 {
		return q[i], true, nil
	}
	return QueueEntry{}, false, nil
}

// find returns chat's channel queue and chat's index in it (-1: not
// queued); m.mu is held.
func (m *MemoryQueue) find(chat channel.Chat) ([]QueueEntry, int) {
	q := m.queues[chat.Channel]
	return q, slices.IndexFunc(q, func(e QueueEntry) bool { return e.Chat == chat })
}
