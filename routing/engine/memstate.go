package engine

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing"
)

// MemoryState is an in-memory [State] for one account, safe for concurrent
// use. The zero value is ready to use with the defaults below.
//
// Leases: Lock and Unlock cost a map operation under a mutex, so one
// process pays little for the same guarantees several instances get from a
// shared store.
//
// Journal: each remembered event costs a 128-bit hash of its key, its time
// and its record (outcomes are interned: at most 255 distinct ones), not
// the key itself; records are forgotten after
// Retention or, beyond MaxMessages, oldest first, and the memory they used
// is returned as the journal shrinks. A hash collision (about one chance in
// 2^64 per pair of keys) would make one event look like a duplicate.
//
// Client records are kept for the value's lifetime.
type MemoryState struct {
	// Retention is how long processed events are remembered; 0 means 72
	// hours, longer than any provider's webhook retries.
	Retention time.Duration
	// MaxMessages caps the number of remembered events; 0 means 1,000,000.
	MaxMessages int
	// Now is the clock of leases and retention; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	seeds   [2]maphash.Seed
	seeded  bool
	fence   uint64
	leases  map[channel.Chat]*memLease
	clients map[channel.Chat]ClientRecord

	msgs     map[journalKey]journalRec
	outcomes []Outcome    // interned outcomes; index 0 is ""
	order    []journalAge // FIFO by first write
	head     int
	peak     int // largest len(msgs) since msgs was last rebuilt
}

type memLease struct {
	fence   uint64
	expires time.Time
	wait    chan struct{} // closed when the lease is released or regranted; nil until someone waits
}

type journalKey [2]uint64

// journalRec packs a record into 8 bytes: the time of the first write in
// ticks of 2^20 ns (about a millisecond) since the Unix epoch, the
// outcome's index in MemoryState.outcomes, and done.
type journalRec uint64

const tickShift = 20

func tick(t time.Time) int64 { return t.UnixNano() >> tickShift }

func packRec(at int64, outcome uint8, done bool) journalRec {
	r := journalRec(at)<<16 | journalRec(outcome)<<1
	if done {
		r |= 1
	}
	return r
}

func (r journalRec) at() int64      { return int64(r >> 16) }
func (r journalRec) outcome() uint8 { return uint8(r >> 1) }
func (r journalRec) done() bool     { return r&1 == 1 }

type journalAge struct {
	key journalKey
	at  int64 // ticks
}

var _ State = (*MemoryState)(nil)

func (m *MemoryState) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// init runs with m.mu held.
func (m *MemoryState) init() {
	if m.seeded {
		return
	}
	m.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	m.leases = map[channel.Chat]*memLease{}
	m.clients = map[channel.Chat]ClientRecord{}
	m.msgs = map[journalKey]journalRec{}
	m.outcomes = []Outcome{""}
	m.seeded = true
}

func checkChat(op string, chat channel.Chat) error {
	if chat.Channel == "" || chat.ChatID == "" {
		return fmt.Errorf("engine: %s: %w: chat %q has an empty channel or chat ID", op, routing.ErrInvalid, chat.String())
	}
	return nil
}

// Lock implements [Locker].
func (m *MemoryState) Lock(ctx context.Context, chat channel.Chat, ttl time.Duration) (Lease, error) {
	if err := checkChat("Lock", chat); err != nil {
		return Lease{}, err
	}
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("engine: Lock: %w: lease time to live %v is not positive", routing.ErrInvalid, ttl)
	}
	for {
		if err := ctx.Err(); err != nil {
			return Lease{}, err
		}
		m.mu.Lock()
		m.init()
		now := m.now()
		l := m.leases[chat]
		if l == nil || !now.Before(l.expires) {
			if l != nil && l.wait != nil {
				close(l.wait)
			}
			m.fence++
			nl := &memLease{fence: m.fence, expires: now.Add(ttl)}
			m.leases[chat] = nl
			m.mu.Unlock()
			return Lease{Chat: chat, Fence: nl.fence, Expires: nl.expires}, nil
		}
		if l.wait == nil {
			l.wait = make(chan struct{})
		}
		wait, left := l.wait, l.expires.Sub(now)
		m.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// current reports whether l is the chat's live lease; m.mu is held.
func (m *MemoryState) current(l Lease) bool {
	cur := m.leases[l.Chat]
	return cur != nil && cur.fence == l.Fence && m.now().Before(cur.expires)
}

// Unlock implements [Locker].
func (m *MemoryState) Unlock(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	cur := m.leases[l.Chat]
	if cur == nil || cur.fence != l.Fence {
		return fmt.Errorf("engine: Unlock %s (fence %d): %w", l.Chat, l.Fence, ErrLeaseLost)
	}
	delete(m.leases, l.Chat)
	if cur.wait != nil {
		close(cur.wait)
	}
	if !m.now().Before(cur.expires) {
		return fmt.Errorf("engine: Unlock %s (fence %d): expired: %w", l.Chat, l.Fence, ErrLeaseLost)
	}
	return nil
}

// Client implements [ClientStore].
func (m *MemoryState) Client(ctx context.Context, chat channel.Chat) (ClientRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return ClientRecord{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.clients[chat]
	return r, ok, nil
}

// PutClient implements [ClientStore].
func (m *MemoryState) PutClient(ctx context.Context, l Lease, r ClientRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if !m.current(l) {
		return fmt.Errorf("engine: PutClient %s (fence %d): %w", l.Chat, l.Fence, ErrLeaseLost)
	}
	m.clients[l.Chat] = r
	return nil
}

// hash runs with m.mu held and m initialised.
func (m *MemoryState) hash(k MessageKey) journalKey {
	var out journalKey
	for i, seed := range m.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(string(k.Chat.Channel))
		h.WriteByte(0)
		h.WriteString(k.Chat.ChatID)
		h.WriteByte(0)
		h.WriteByte(k.Kind)
		h.WriteString(k.ID)
		out[i] = h.Sum64()
	}
	return out
}

// Message implements [Journal].
func (m *MemoryState) Message(ctx context.Context, key MessageKey) (MessageRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return MessageRecord{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	r, ok := m.msgs[m.hash(key)]
	if !ok || m.expired(r.at(), m.now()) {
		return MessageRecord{}, false, nil
	}
	return MessageRecord{Done: r.done(), Outcome: m.outcomes[r.outcome()]}, true, nil
}

func (m *MemoryState) retention() time.Duration {
	if m.Retention > 0 {
		return m.Retention
	}
	return 72 * time.Hour
}

func (m *MemoryState) expired(at int64, now time.Time) bool {
	return tick(now)-at > int64(m.retention())>>tickShift
}

// PutMessage implements [Journal].
func (m *MemoryState) PutMessage(ctx context.Context, l Lease, key MessageKey, r MessageRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key.Chat != l.Chat {
		return fmt.Errorf("engine: PutMessage: %w: key of chat %s under the lease of chat %s", routing.ErrInvalid, key.Chat, l.Chat)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if !m.current(l) {
		return fmt.Errorf("engine: PutMessage %s (fence %d): %w", l.Chat, l.Fence, ErrLeaseLost)
	}
	code := slices.Index(m.outcomes, r.Outcome)
	if code < 0 {
		if len(m.outcomes) > math.MaxUint8 {
			return fmt.Errorf("engine: PutMessage: %w: more than %d distinct outcomes", routing.ErrInvalid, math.MaxUint8)
		}
		code = len(m.outcomes)
		m.outcomes = append(m.outcomes, r.Outcome)
	}
	now := m.now()
	k := m.hash(key)
	old, seen := m.msgs[k]
	at := tick(now)
	if seen && !m.expired(old.at(), now) {
		at = old.at()
	} else {
		m.order = append(m.order, journalAge{k, at})
	}
	m.msgs[k] = packRec(at, uint8(code), r.Done)
	m.peak = max(m.peak, len(m.msgs))
	m.forget(tick(now.Add(-m.retention())), -1)
	limit := m.MaxMessages
	if limit <= 0 {
		limit = 1_000_000
	}
	for len(m.msgs) > limit && m.head < len(m.order) {
		m.pop()
	}
	m.compact()
	return nil
}

// pop forgets the oldest entry of the FIFO; m.mu is held.
func (m *MemoryState) pop() bool {
	a := m.order[m.head]
	m.order[m.head] = journalAge{}
	m.head++
	// An entry rewritten after expiry has a newer time and a later FIFO
	// position: only the entry with the same time is this one.
	if r, ok := m.msgs[a.key]; ok && r.at() == a.at {
		delete(m.msgs, a.key)
		return true
	}
	return false
}

// forget drops entries first written before cutoff, at most limit of them
// (-1: no limit), and returns how many; m.mu is held.
func (m *MemoryState) forget(cutoff int64, limit int) int {
	n := 0
	for m.head < len(m.order) && m.order[m.head].at < cutoff && (limit < 0 || n < limit) {
		if m.pop() {
			n++
		}
	}
	return n
}

// compact returns memory: the FIFO's consumed prefix, and the map once it
// holds under a quarter of its peak (Go maps never shrink); m.mu is held.
func (m *MemoryState) compact() {
	if m.head > 1024 && m.head*2 > len(m.order) {
		m.order = append([]journalAge(nil), m.order[m.head:]...)
		m.head = 0
	}
	if m.peak > 4096 && len(m.msgs)*4 < m.peak {
		fresh := make(map[journalKey]journalRec, len(m.msgs))
		for k, v := range m.msgs {
			fresh[k] = v
		}
		m.msgs, m.peak = fresh, len(fresh)
	}
}

// Purge implements [Journal].
func (m *MemoryState) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("engine: Purge: %w: limit %d is not positive", routing.ErrInvalid, limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	n := m.forget(tick(before), limit)
	m.compact()
	return n, nil
}

// Len returns the numbers of client records, of remembered events and of
// leases held.
func (m *MemoryState) Len() (clients, messages, leases int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.clients), len(m.msgs), len(m.leases)
}
