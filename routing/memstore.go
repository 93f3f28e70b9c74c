package routing

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// MemoryClaims is an in-memory [ClaimStore]: first-responder offers and
// claims, one record per chat. It is safe for concurrent use; each method
// runs under a lock, so every operation is atomic. Released claims are
// deleted. The zero value is an empty store, ready to use; share one value
// between the Distributors of a process to share its claims.
type MemoryClaims struct {
	mu     sync.Mutex
	claims map[channel.Chat]*claimRecord
}

type claimRecord struct {
	offered   []crm.UserID // immutable once stored
	claimedBy crm.UserID
}

// MemoryRotation is an in-memory [RotationStore]: per pool a sequence
// number, a small record per member and the holds of open clients. It is
// safe for concurrent use; each method runs under the store's lock, so
// every operation (the [Chooser] call included) is atomic. Member records
// are a few dozen bytes each and are kept for the life of the value; a
// hold lasts until freed. The zero value is an empty store, ready to use.
type MemoryRotation struct {
	mu      sync.Mutex
	pools   map[string]*memPool
	scratch []Member     // the chooser's input, reused under mu
	records []*memMember // the records of scratch's members, under mu
}

type memPool struct {
	seq     uint64
	members map[crm.UserID]*memMember
	holds   map[string]crm.UserID
}

type memMember struct {
	last, seen uint64
	open       int
	credit     int64
}

// MemoryStore is a [MemoryClaims] and a [MemoryRotation] in one value, for
// callers that want one in-memory store for both.
//
// Deprecated: use MemoryClaims and MemoryRotation, whose zero values are
// ready; MemoryStore remains for existing callers.
type MemoryStore struct {
	MemoryClaims
	MemoryRotation
}

// NewMemoryStore returns an empty [MemoryStore].
//
// Deprecated: use &MemoryClaims{} and &MemoryRotation{}.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

var (
	_ ClaimStore    = (*MemoryClaims)(nil)
	_ RotationStore = (*MemoryRotation)(nil)
	_ ClaimStore    = (*MemoryStore)(nil)
	_ RotationStore = (*MemoryStore)(nil)
)

func checkChat(chat channel.Chat) error {
	if chat.Channel == "" || chat.ChatID == "" {
		return fmt.Errorf("%w: chat %q has an empty channel or chat ID", ErrInvalid, chat.String())
	}
	return nil
}

// Offer implements [ClaimStore].
func (m *MemoryClaims) Offer(ctx context.Context, chat channel.Chat, users []crm.UserID) (ClaimState, bool, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, false, err
	}
	if err := checkChat(chat); err != nil {
		return ClaimState{}, false, err
	}
	if len(users) == 0 {
		return ClaimState{}, false, fmt.Errorf("%w: offer of chat %s to nobody", ErrInvalid, chat)
	}
	if slices.Contains(users, "") {
		return ClaimState{}, false, fmt.Errorf("%w: offer of chat %s to an empty user ID", ErrInvalid, chat)
	}
	group := slices.Clip(dedupUsers(make([]crm.UserID, 0, len(users)), users))
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.claims[chat]; ok {
		return ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}, false, nil
	}
	if m.claims == nil {
		m.claims = map[channel.Chat]*claimRecord{}
	}
	m.claims[chat] = &claimRecord{offered: group}
	return ClaimState{Chat: chat, Offered: group}, true, nil
}

// dedupUsers appends to dst the users not in it yet, order kept.
func dedupUsers(dst, users []crm.UserID) []crm.UserID {
	var seen map[crm.UserID]bool // only for large groups; small ones scan
	if len(dst)+len(users) > 16 {
		seen = make(map[crm.UserID]bool, len(dst)+len(users))
		for _, u := range dst {
			seen[u] = true
		}
	}
	for _, u := range users {
		if seen != nil {
			if seen[u] {
				continue
			}
			seen[u] = true
		} else if slices.Contains(dst, u) {
			continue
		}
		dst = append(dst, u)
	}
	return dst
}

// Claim implements [ClaimStore].
func (m *MemoryClaims) Claim(ctx context.Context, chat channel.Chat, user crm.UserID) (ClaimState, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, err
	}
	if user == "" {
		return ClaimState{}, fmt.Errorf("%w: claim of chat %s by an empty user ID", ErrInvalid, chat)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.claims[chat]
	if !ok {
		return ClaimState{}, &NotOfferedError{Chat: chat, User: user, NoOffer: true}
	}
	switch {
	case !slices.Contains(r.offered, user):
		return ClaimState{}, &NotOfferedError{Chat: chat, User: user}
	case r.claimedBy == "":
		r.claimedBy = user
	case r.claimedBy != user:
		return ClaimState{}, &ClaimedError{Chat: chat, Winner: r.claimedBy}
	}
	return ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}, nil
}

// Widen implements [ClaimStore].
func (m *MemoryClaims) Widen(ctx context.Context, chat channel.Chat, users []crm.UserID) (ClaimState, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, err
	}
	if slices.Contains(users, "") {
		return ClaimState{}, fmt.Errorf("%w: widening chat %s to an empty user ID", ErrInvalid, chat)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.claims[chat]
	if !ok {
		return ClaimState{}, &NotOfferedError{Chat: chat, NoOffer: true}
	}
	if r.claimedBy == "" {
		grown := slices.Clip(dedupUsers(slices.Clone(r.offered), users))
		if len(grown) > len(r.offered) {
			r.offered = grown // a new slice: earlier states keep theirs
		}
	}
	return ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}, nil
}

// Get implements [ClaimStore].
func (m *MemoryClaims) Get(ctx context.Context, chat channel.Chat) (ClaimState, bool, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.claims[chat]
	if !ok {
		return ClaimState{}, false, nil
	}
	return ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}, true, nil
}

// Release implements [ClaimStore].
func (m *MemoryClaims) Release(ctx context.Context, chat channel.Chat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.claims, chat)
	m.mu.Unlock()
	return nil
}

// pool returns the named pool, creating it; m.mu is held.
func (m *MemoryRotation) pool(name string) *memPool {
	p := m.pools[name]
	if p == nil {
		if m.pools == nil {
			m.pools = map[string]*memPool{}
		}
		p = &memPool{members: map[crm.UserID]*memMember{}}
		m.pools[name] = p
	}
	return p
}

func (p *memPool) member(u crm.UserID) *memMember {
	r := p.members[u]
	if r == nil {
		r = &memMember{}
		p.members[u] = r
	}
	return r
}

func (r *memMember) state(u crm.UserID) Member {
	if r == nil {
		return Member{User: u}
	}
	return Member{User: u, LastServed: r.last, Seen: r.seen, Open: r.open, Credit: r.credit}
}

// Pick implements [RotationStore].
func (m *MemoryRotation) Pick(ctx context.Context, pool, key string, eligible []crm.UserID, choose Chooser) (Turn, error) {
	return m.pick(ctx, pool, key, eligible, choose, false)
}

// Reassign implements [RotationStore].
func (m *MemoryRotation) Reassign(ctx context.Context, pool, key string, eligible []crm.UserID, choose Chooser) (Turn, error) {
	if key == "" {
		if err := ctx.Err(); err != nil {
			return Turn{}, err
		}
		return Turn{}, fmt.Errorf("%w: reassign in pool %q with an empty key", ErrInvalid, pool)
	}
	return m.pick(ctx, pool, key, eligible, choose, true)
}

// pick is Pick, or Reassign when move is set.
func (m *MemoryRotation) pick(ctx context.Context, pool, key string, eligible []crm.UserID, choose Chooser, move bool) (Turn, error) {
	if err := ctx.Err(); err != nil {
		return Turn{}, err
	}
	if choose == nil {
		return Turn{}, fmt.Errorf("%w: pick in pool %q without a chooser", ErrInvalid, pool)
	}
	if len(eligible) == 0 {
		return Turn{}, fmt.Errorf("%w in pool %q: empty eligible list", ErrNoEligible, pool)
	}
	if slices.Contains(eligible, "") {
		return Turn{}, fmt.Errorf("%w: empty user ID among the eligible of pool %q", ErrInvalid, pool)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pool(pool)
	from := crm.UserID("")
	if key != "" {
		if u, ok := p.holds[key]; ok {
			if !move || slices.Contains(eligible, u) {
				r := p.members[u]
				return Turn{User: u, Seq: p.seq, Previous: r.last, Open: r.open, Repeat: true}, nil
			}
			from = u
		}
	}
	ms, rs := m.scratch[:0], m.records[:0]
	var seen map[crm.UserID]bool // only for large pools; small ones scan
	if len(eligible) > 32 {
		seen = make(map[crm.UserID]bool, len(eligible))
	}
	for _, u := range eligible {
		if seen != nil {
			if seen[u] {
				continue
			}
			seen[u] = true
		} else if hasMember(ms, u) {
			continue
		}
		r := p.members[u]
		ms = append(ms, r.state(u))
		rs = append(rs, r) // nil for a member never recorded
	}
	m.scratch, m.records = ms, rs
	defer func() { clear(ms); clear(rs) }() // drop references
	c := choose(PoolState{Pool: pool, Seq: p.seq, Members: ms})
	switch {
	case c.Index < 0:
		return Turn{}, fmt.Errorf("%w in pool %q: the chooser picked nobody among %d", ErrNoEligible, pool, len(ms))
	case c.Index >= len(ms):
		return Turn{}, fmt.Errorf("%w: chooser picked index %d of %d in pool %q", ErrInvalid, c.Index, len(ms), pool)
	case c.Credits != nil && len(c.Credits) != len(ms):
		return Turn{}, fmt.Errorf("%w: chooser gave %d credits for %d members in pool %q", ErrInvalid, len(c.Credits), len(ms), pool)
	}
	p.seq++
	for i, r := range rs {
		if r == nil {
			r = &memMember{}
			p.members[ms[i].User] = r
			rs[i] = r
		}
		r.seen = p.seq
		if c.Credits != nil {
			r.credit = c.Credits[i]
		}
	}
	u, r := ms[c.Index].User, rs[c.Index]
	t := Turn{User: u, Seq: p.seq, Previous: r.last, From: from}
	r.last = p.seq
	if key != "" {
		if p.holds == nil {
			p.holds = map[string]crm.UserID{}
		}
		if from != "" {
			p.members[from].open--
		}
		p.holds[key] = u
		r.open++
	}
	t.Open = r.open
	return t, nil
}

// Hold implements [RotationStore].
func (m *MemoryRotation) Hold(ctx context.Context, pool, key string, user crm.UserID) (crm.UserID, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if key == "" || user == "" {
		return "", fmt.Errorf("%w: hold in pool %q with an empty key or user ID", ErrInvalid, pool)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pool(pool)
	prev, held := p.holds[key]
	if held && prev == user {
		return prev, nil
	}
	if held {
		p.members[prev].open--
	}
	if p.holds == nil {
		p.holds = map[string]crm.UserID{}
	}
	p.holds[key] = user
	p.member(user).open++
	return prev, nil
}

// Free implements [RotationStore].
func (m *MemoryRotation) Free(ctx context.Context, pool, key string) (crm.UserID, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[pool]
	if p == nil {
		return "", false, nil
	}
	u, ok := p.holds[key]
	if !ok {
		return "", false, nil
	}
	delete(p.holds, key)
	p.members[u].open--
	return u, true, nil
}

// Members implements [RotationStore].
func (m *MemoryRotation) Members(ctx context.Context, pool string, users []crm.UserID) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	users = dedupUsers(nil, users)
	out := make([]Member, len(users))
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[pool]
	for i, u := range users {
		var r *memMember
		if p != nil {
			r = p.members[u]
		}
		out[i] = r.state(u)
	}
	return out, nil
}

func hasMember(ms []Member, u crm.UserID) bool {
	for i := range ms {
		if ms[i].User == u {
			return true
		}
	}
	return false
}
