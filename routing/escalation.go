package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
)

// Duration is a time.Duration written as text ("15m", "1h30m") in JSON.
type Duration time.Duration

// String returns the time.Duration form ("15m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes the time.Duration form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes what time.ParseDuration accepts; empty is 0.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%w: duration %q: %v", ErrInvalid, b, err)
	}
	*d = Duration(v)
	return nil
}

// Escalation is a channel's policy for a new client nobody answers: if
// the employee picked by round robin, or the group offered a
// first-responder chat, has not replied within After, the client passes
// on. Round robin: to the next employee in rotation, who becomes
// responsible. First responder: the offer widens to everyone available
// who may write on the channel (supervisors included). The zero value
// never escalates.
type Escalation struct {
	// After is the time to reply, counted from the pick or offer and
	// again from the moment of each escalation; 0 turns escalation off.
	After Duration `json:"after,omitempty"`
	// Times is the most escalations per client; 0 means 1.
	Times int `json:"times,omitempty"`
}

func (e Escalation) validate() error {
	if e.After < 0 || e.Times < 0 {
		return errors.New("negative time or count")
	}
	if e.After == 0 && e.Times > 0 {
		return errors.New("times set without a time to reply")
	}
	return nil
}

// Enabled reports whether the policy ever escalates.
func (e Escalation) Enabled() bool { return e.After > 0 }

func (e Escalation) times() int { return max(e.Times, 1) }

// Deadline returns when escalation number done+1 falls due for a clock
// (re)started at from: the pick or offer for the first (done 0), the
// previous escalation for each one after it, so every employee an
// escalation reaches gets the whole of After to reply, however late the
// host processed it. ok is false when no more are due (the policy is off,
// or done reached Times). A watch in a store carries its own deadline
// (Watch.Due), which [Distributor.Escalate] goes by: a change of After
// applies to clocks started or restarted after it.
func (e Escalation) Deadline(from time.Time, done int) (at time.Time, ok bool) {
	if !e.Enabled() || done >= e.times() || done < 0 {
		return time.Time{}, false
	}
	return from.Add(time.Duration(e.After)), true
}

// Due reports whether escalation number done+1 of a clock (re)started at
// from is due at now: its deadline (see Deadline) is not after now.
// Escalating restarts the clock, so a host that was down across a
// deadline gets one escalation, then a full After for the employee it
// reached, never a burst.
func (e Escalation) Due(from time.Time, done int, now time.Time) bool {
	at, ok := e.Deadline(from, done)
	return ok && !now.Before(at)
}

// Watch is one client waiting for a reply under an [Escalation] policy.
type Watch struct {
	// Chat is the client's chat, which keys the watch: a store holds at
	// most one per chat. Both its channel and chat ID are required.
	Chat channel.Chat
	// Since is when the clock first started (the pick or offer).
	Since time.Time
	// Done is the number of escalations so far.
	Done int
	// Due is when the next escalation falls due.
	Due time.Time
}

// ErrStaleWatch: an escalation lost its compare-and-swap: the watch was
// advanced by someone else (another instance, a redelivery) or stopped.
var ErrStaleWatch = errors.New("routing: escalation watch changed")

// EscalationStore keeps the watches of clients waiting for a reply, so
// that escalation happens at most once per deadline across instances and
// redeliveries. Every method is one atomic operation, safe for concurrent
// use (across processes when shared), and returns an error matching
// ctx.Err() once ctx is done. [MemoryEscalations] implements it.
//
// On PostgreSQL: a table keyed by (channel, chat_id) with an index on
// due; Start is INSERT … ON CONFLICT DO NOTHING RETURNING (then a SELECT
// when nothing was inserted), DueBy a SELECT … WHERE due <= $now ORDER BY
// due, channel, chat_id LIMIT $n, Advance an UPDATE … WHERE … AND
// since = $since AND done = $done AND due = $due, Stop a DELETE.
type EscalationStore interface {
	// Start begins watching w.Chat unless it is already watched: the
	// first Start wins, so a redelivered event changes nothing; it
	// returns the stored watch and whether it was created. An invalid
	// chat or a zero Due: an error matching ErrInvalid.
	Start(ctx context.Context, w Watch) (Watch, bool, error)
	// DueBy returns up to limit watches whose Due is not after now,
	// earliest Due first (ties: channel, then chat ID, byte order).
	DueBy(ctx context.Context, now time.Time, limit int) ([]Watch, error)
	// Advance records one escalation of from.Chat: if its stored watch is
	// still from (the same Since, Done and Due, as DueBy returned it),
	// Done becomes from.Done+1 and Due becomes due (a zero due stops the
	// watch). Otherwise nothing changes and the error matches
	// ErrStaleWatch: advanced by another, stopped, or stopped and started
	// again for a new clock (a client whose deal closed and who wrote
	// again), which an old copy must not escalate. Among concurrent
	// Advances from the same watch exactly one succeeds: the
	// compare-and-swap that makes an escalation happen at most once per
	// deadline.
	Advance(ctx context.Context, from Watch, due time.Time) error
	// Stop ends the watch of chat (a reply came); stopping nothing is not
	// an error.
	Stop(ctx context.Context, chat channel.Chat) error
}

// MemoryEscalations is an in-memory [EscalationStore]. It is safe for
// concurrent use; each method runs under a lock. DueBy scans every watch,
// which suits the thousands of clients a process waits on, not millions.
// The zero value is an empty store, ready to use.
type MemoryEscalations struct {
	mu      sync.Mutex
	watches map[channel.Chat]Watch
}

var _ EscalationStore = (*MemoryEscalations)(nil)

// Start implements [EscalationStore].
func (m *MemoryEscalations) Start(ctx context.Context, w Watch) (Watch, bool, error) {
	if err := ctx.Err(); err != nil {
		return Watch{}, false, err
	}
	if err := checkChat(w.Chat); err != nil {
		return Watch{}, false, err
	}
	if w.Due.IsZero() {
		return Watch{}, false, fmt.Errorf("%w: watch of chat %s without a due time", ErrInvalid, w.Chat)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.watches[w.Chat]; ok {
		return old, false, nil
	}
	if m.watches == nil {
		m.watches = map[channel.Chat]Watch{}
	}
	m.watches[w.Chat] = w
	return w, true, nil
}

// DueBy implements [EscalationStore].
func (m *MemoryEscalations) DueBy(ctx context.Context, now time.Time, limit int) ([]Watch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	var out []Watch
	for _, w := range m.watches {
		if !w.Due.After(now) {
			out = append(out, w)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Watch) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.Chat.Channel, b.Chat.Channel), cmp.Compare(a.Chat.ChatID, b.Chat.ChatID))
	})
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Advance implements [EscalationStore].
func (m *MemoryEscalations) Advance(ctx context.Context, from Watch, due time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.watches[from.Chat]
	if !ok || w.Done != from.Done || !w.Due.Equal(from.Due) || !w.Since.Equal(from.Since) {
		return fmt.Errorf("%w: chat %s is not at escalation %d due %s", ErrStaleWatch, from.Chat, from.Done, from.Due.Format(time.RFC3339))
	}
	if due.IsZero() {
		delete(m.watches, from.Chat)
		return nil
	}
	w.Done, w.Due = from.Done+1, due
	m.watches[from.Chat] = w
	return nil
}

// Stop implements [EscalationStore].
func (m *MemoryEscalations) Stop(ctx context.Context, chat channel.Chat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.watches, chat)
	m.mu.Unlock()
	return nil
}
