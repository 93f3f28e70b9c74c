package routing

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// MemoryStore is an in-memory [ClaimStore] and [RotationStore]. It is safe
// for concurrent use; each method runs under a lock, so every operation is
// atomic. State lives as long as the value: share one MemoryStore between
// Distributors of one process to share claims and rotations. Released
// claims are deleted; rotation state is a few bytes per pool member.
//
// The zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	cmu    sync.Mutex
	claims map[channel.Chat]*claimRecord

	rmu   sync.Mutex
	pools map[string]*pool
}

type claimRecord struct {
	offered   []crm.UserID // immutable once stored
	claimedBy crm.UserID
}

type pool struct {
	seq  uint64
	last map[crm.UserID]uint64
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{claims: map[channel.Chat]*claimRecord{}, pools: map[string]*pool{}}
}

var (
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
func (m *MemoryStore) Offer(ctx context.Context, chat channel.Chat, users []crm.UserID) (ClaimState, bool, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, false, err
	}
	if err := checkChat(chat); err != nil {
		return ClaimState{}, false, err
	}
	if len(users) == 0 {
		return ClaimState{}, false, fmt.Errorf("%w: offer of chat %s to nobody", ErrInvalid, chat)
	}
	group := make([]crm.UserID, 0, len(users))
	var seen map[crm.UserID]bool // only for large groups; small ones scan
	if len(users) > 16 {
		seen = make(map[crm.UserID]bool, len(users))
	}
	for _, u := range users {
		if u == "" {
			return ClaimState{}, false, fmt.Errorf("%w: offer of chat %s to an empty user ID", ErrInvalid, chat)
		}
		if seen != nil {
			if seen[u] {
				continue
			}
			seen[u] = true
		} else if slices.Contains(group, u) {
			continue
		}
		group = append(group, u)
	}
	group = slices.Clip(group)
	m.cmu.Lock()
	defer m.cmu.Unlock()
	if r, ok := m.claims[chat]; ok {
		return ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}, false, nil
	}
	m.claims[chat] = &claimRecord{offered: group}
	return ClaimState{Chat: chat, Offered: group}, true, nil
}

// Claim implements [ClaimStore].
func (m *MemoryStore) Claim(ctx context.Context, chat channel.Chat, user crm.UserID) (ClaimState, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, err
	}
	if user == "" {
		return ClaimState{}, fmt.Errorf("%w: claim of chat %s by an empty user ID", ErrInvalid, chat)
	}
	m.cmu.Lock()
	r, ok := m.claims[chat]
	if !ok {
		m.cmu.Unlock()
		return ClaimState{}, &NotOfferedError{Chat: chat, User: user, NoOffer: true}
	}
	st := ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}
	switch {
	case !slices.Contains(r.offered, user):
		m.cmu.Unlock()
		return ClaimState{}, &NotOfferedError{Chat: chat, User: user}
	case r.claimedBy == "":
		r.claimedBy = user
		st.ClaimedBy = user
	case r.claimedBy != user:
		m.cmu.Unlock()
		return ClaimState{}, &ClaimedError{Chat: chat, Winner: r.claimedBy}
	}
	m.cmu.Unlock()
	return st, nil
}

// Get implements [ClaimStore].
func (m *MemoryStore) Get(ctx context.Context, chat channel.Chat) (ClaimState, bool, error) {
	if err := ctx.Err(); err != nil {
		return ClaimState{}, false, err
	}
	m.cmu.Lock()
	defer m.cmu.Unlock()
	r, ok := m.claims[chat]
	if !ok {
		return ClaimState{}, false, nil
	}
	return ClaimState{Chat: chat, Offered: r.offered, ClaimedBy: r.claimedBy}, true, nil
}

// Release implements [ClaimStore].
func (m *MemoryStore) Release(ctx context.Context, chat channel.Chat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.cmu.Lock()
	delete(m.claims, chat)
	m.cmu.Unlock()
	return nil
}

// Next implements [RotationStore].
func (m *MemoryStore) Next(ctx context.Context, name string, eligible []crm.UserID) (Turn, error) {
	if err := ctx.Err(); err != nil {
		return Turn{}, err
	}
	if len(eligible) == 0 {
		return Turn{}, fmt.Errorf("%w in pool %q: empty eligible list", ErrNoEligible, name)
	}
	if slices.Contains(eligible, "") {
		return Turn{}, fmt.Errorf("%w: empty user ID among the eligible of pool %q", ErrInvalid, name)
	}
	m.rmu.Lock()
	defer m.rmu.Unlock()
	p := m.pools[name]
	if p == nil {
		p = &pool{last: map[crm.UserID]uint64{}}
		m.pools[name] = p
	}
	best, bestLast := eligible[0], p.last[eligible[0]]
	for _, u := range eligible[1:] {
		if l := p.last[u]; l < bestLast || (l == bestLast && u < best) {
			best, bestLast = u, l
		}
	}
	p.seq++
	p.last[best] = p.seq
	return Turn{User: best, Seq: p.seq, Previous: bestLast}, nil
}
