package wazzup

import (
	"context"
	"fmt"
	"sync"

	"github.com/crmbridge/crmbridge/channel"
)

// ReceiptStore remembers the receipt of every message a Sender sent, by
// idempotency key, so that a repeated Send returns the first receipt.
// Wazzup itself refuses a repeated crmMessageId only for 60 seconds and
// does not say which message it was; the store covers the rest.
//
// The contract, checked by wazzuptest.TestReceiptStore:
//
//   - Store is first-writer-wins and atomic: of any number of Stores of
//     one key, concurrent or not, exactly one stores (stored true); every
//     other returns the receipt kept (stored false), and every Load after
//     the first successful Store returns that receipt.
//   - Only ProviderID is kept: Load returns a receipt with Duplicate
//     false.
//   - Keys are compared byte for byte.
//   - An empty key, or a receipt without ProviderID, is an error matching
//     channel.ErrInvalid; nothing is stored.
//   - A ctx that is done gives an error matching ctx.Err(); a Store that
//     fails so may have stored or not, and a later Store of the key
//     settles it.
//   - Implementations are safe for concurrent use. A store may forget old
//     keys (MemoryReceipts keeps the most recent ones): a forgotten key
//     is protected only by Wazzup's 60 seconds.
//
// A host running several instances shares one store, e.g. a database
// table with the key as primary key, where Store is an insert that does
// nothing on conflict and then reads the row.
type ReceiptStore interface {
	// Load returns the receipt stored under key and true, or false when
	// none is.
	Load(ctx context.Context, key string) (r channel.Receipt, ok bool, err error)
	// Store records r under key unless a receipt is stored there already.
	// It returns the receipt kept under key and whether it is r, stored
	// by this call.
	Store(ctx context.Context, key string, r channel.Receipt) (kept channel.Receipt, stored bool, err error)
}

// CheckReceipt checks the arguments of ReceiptStore.Store the way the
// contract requires, with an error matching channel.ErrInvalid;
// implementations may call it first.
func CheckReceipt(key string, r channel.Receipt) error {
	if key == "" {
		return fmt.Errorf("%w: empty receipt key", channel.ErrInvalid)
	}
	if r.ProviderID == "" {
		return fmt.Errorf("%w: receipt of key %q has no ProviderID", channel.ErrInvalid, key)
	}
	return nil
}

// MemoryReceipts is an in-memory ReceiptStore keeping the receipts of the
// most recent keys, at most Max, forgetting the oldest first. The zero
// value is ready to use and keeps DefaultRememberedReceipts. It is safe
// for concurrent use; do not change Max after first use.
type MemoryReceipts struct {
	// Max is how many receipts are kept; 0 or less means
	// DefaultRememberedReceipts.
	Max int

	mu    sync.Mutex
	m     map[string]string // key → ProviderID
	order []string          // ring of keys in insertion order
	next  int               // next slot of order to overwrite once full
}

var _ ReceiptStore = (*MemoryReceipts)(nil)

// DefaultRememberedReceipts is how many receipts a MemoryReceipts with a
// zero Max keeps.
const DefaultRememberedReceipts = 10000

// NewMemoryReceipts returns a store keeping the last max receipts;
// max <= 0 means DefaultRememberedReceipts. It is &MemoryReceipts{Max: max}.
func NewMemoryReceipts(max int) *MemoryReceipts {
	return &MemoryReceipts{Max: max}
}

// Load implements ReceiptStore.
func (s *MemoryReceipts) Load(ctx context.Context, key string) (channel.Receipt, bool, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, false, err
	}
	if key == "" {
		return channel.Receipt{}, false, fmt.Errorf("%w: empty receipt key", channel.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.m[key]
	if !ok {
		return channel.Receipt{}, false, nil
	}
	return channel.Receipt{ProviderID: id}, true, nil
}

// Store implements ReceiptStore.
func (s *MemoryReceipts) Store(ctx context.Context, key string, r channel.Receipt) (channel.Receipt, bool, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, false, err
	}
	if err := CheckReceipt(key, r); err != nil {
		return channel.Receipt{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.m[key]; ok {
		return channel.Receipt{ProviderID: id}, false, nil
	}
	max := s.Max
	if max <= 0 {
		max = DefaultRememberedReceipts
	}
	if s.m == nil {
		s.m = make(map[string]string)
	}
	if len(s.order) < max {
		s.order = append(s.order, key)
	} else {
		delete(s.m, s.order[s.next])
		s.order[s.next] = key
		s.next = (s.next + 1) % max
	}
	s.m[key] = r.ProviderID
	return channel.Receipt{ProviderID: r.ProviderID}, true, nil
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
