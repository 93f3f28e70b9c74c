package tasks

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// Streak is an open run of unanswered client messages in one chat.
type Streak struct {
	// Chat is the chat whose client waits for an answer.
	Chat channel.Chat
	// Opener is the ID of the client message that opened the streak; its
	// handler creates the task (again, on redelivery, if Task is empty).
	Opener string
	// Started is the time of the first unanswered message.
	Started time.Time
	// Task is the streak's CRM task, once created.
	Task crm.TaskID
}

// Store keeps streaks, one per chat at most. Every method is one atomic
// operation, safe for concurrent use (across processes when the store is
// shared), and returns an error matching ctx.Err() once ctx is done.
//
// On PostgreSQL, with a table keyed by (channel, chat_id):
//
//	Open:    INSERT … VALUES (…) ON CONFLICT DO NOTHING RETURNING …; on no row, SELECT the existing one
//	SetTask: UPDATE streaks SET task = $t WHERE channel = $1 AND chat_id = $2 AND opener = $3
//	Close:   DELETE FROM streaks WHERE channel = $1 AND chat_id = $2 RETURNING …
type Store interface {
	// Open opens a streak for chat with opener and started, unless one is
	// open. It returns the open streak and whether this call opened it.
	Open(ctx context.Context, chat channel.Chat, opener string, started time.Time) (s Streak, opened bool, err error)
	// SetTask records the task of the streak opened by opener. If that
	// streak is no longer open, the error matches ErrStreakClosed.
	SetTask(ctx context.Context, chat channel.Chat, opener string, task crm.TaskID) error
	// Close closes the chat's open streak and returns it; found is false
	// when none was open.
	Close(ctx context.Context, chat channel.Chat) (s Streak, found bool, err error)
	// Get returns the chat's open streak, if any.
	Get(ctx context.Context, chat channel.Chat) (s Streak, found bool, err error)
}

// MemoryStore is an in-memory Store, safe for concurrent use. The zero
// value is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	streaks map[channel.Chat]*Streak
}

var _ Store = (*MemoryStore)(nil)

// Open implements Store.
func (m *MemoryStore) Open(ctx context.Context, chat channel.Chat, opener string, started time.Time) (Streak, bool, error) {
	if err := ctx.Err(); err != nil {
		return Streak{}, false, err
	}
	if opener == "" {
		return Streak{}, false, fmt.Errorf("%w: empty opener message ID", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.streaks[chat]; ok {
		return *s, false, nil
	}
	if m.streaks == nil {
		m.streaks = map[channel.Chat]*Streak{}
	}
	s := &Streak{Chat: chat, Opener: opener, Started: started}
	m.streaks[chat] = s
	return *s, true, nil
}

// SetTask implements Store.
func (m *MemoryStore) SetTask(ctx context.Context, chat channel.Chat, opener string, task crm.TaskID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.streaks[chat]
	if !ok || s.Opener != opener {
		return fmt.Errorf("tasks: SetTask %s opened by %q: %w", chat, opener, ErrStreakClosed)
	}
	s.Task = task
	return nil
}

// Close implements Store.
func (m *MemoryStore) Close(ctx context.Context, chat channel.Chat) (Streak, bool, error) {
	if err := ctx.Err(); err != nil {
		return Streak{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.streaks[chat]
	if !ok {
		return Streak{}, false, nil
	}
	delete(m.streaks, chat)
	return *s, true, nil
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, chat channel.Chat) (Streak, bool, error) {
	if err := ctx.Err(); err != nil {
		return Streak{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.streaks[chat]
	if !ok {
		return Streak{}, false, nil
	}
	return *s, true, nil
}

// Len returns the number of open streaks.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.streaks)
}
