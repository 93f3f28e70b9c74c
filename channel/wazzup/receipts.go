package wazzup

import (
	"context"
	"sync"

	"github.com/crmbridge/crmbridge/channel"
)

// ReceiptStore remembers the receipt of every message a Sender sent, by
// idempotency key, so that a repeated Send returns the first receipt.
// Wazzup itself refuses a repeated crmMessageId only for 60 seconds and
// does not say which message it was; the store covers the rest.
//
// Implementations must be safe for concurrent use. A host running several
// instances can share one store (a database table keyed by the key).
type ReceiptStore interface {
	// Load returns the receipt stored under key, and whether there was one.
	Load(ctx context.Context, key string) (channel.Receipt, bool, error)
	// Store records r under key. Storing a key twice keeps either value.
	Store(ctx context.Context, key string, r channel.Receipt) error
}

// MemoryReceipts is an in-memory ReceiptStore that keeps the most recent
// receipts, at most a fixed number, forgetting the oldest first. It is
// safe for concurrent use.
type MemoryReceipts struct {
	mu    sync.Mutex
	max   int
	m     map[string]channel.Receipt
	order []string // ring of keys in insertion order
	next  int      // next slot of order to overwrite once full
}

// DefaultRememberedReceipts is how many receipts NewMemoryReceipts(0)
// keeps.
const DefaultRememberedReceipts = 10000

// NewMemoryReceipts returns a store keeping the last max receipts;
// max <= 0 means DefaultRememberedReceipts.
func NewMemoryReceipts(max int) *MemoryReceipts {
	if max <= 0 {
		max = DefaultRememberedReceipts
	}
	return &MemoryReceipts{max: max, m: make(map[string]channel.Receipt)}
}

// Load implements ReceiptStore.
func (s *MemoryReceipts) Load(_ context.Context, key string) (channel.Receipt, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	return r, ok, nil
}

// Store implements ReceiptStore.
func (s *MemoryReceipts) Store(_ context.Context, key string, r channel.Receipt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		s.m[key] = r
		return nil
	}
	if len(s.order) < s.max {
		s.order = append(s.order, key)
	} else {
		delete(s.m, s.order[s.next])
		s.order[s.next] = key
		s.next = (s.next + 1) % s.max
	}
	s.m[key] = r
	return nil
}

// Len returns how many receipts the store holds.
func (s *MemoryReceipts) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// keyLocks serialises Sends of one idempotency key within a process, so
// that concurrent sends of one key make one request and share its receipt.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// lock takes the lock of key, or returns ctx.Err() once ctx is done.
// The returned func releases it.
func (l *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*keyLock)
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{ch: make(chan struct{}, 1)}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		k.refs--
		if k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case k.ch <- struct{}{}:
		return func() { <-k.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
