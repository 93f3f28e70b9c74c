package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/tasks"
	"github.com/jackc/pgx/v5"
)

// Streaks is one account's [tasks.Store]. Get it from [Account.Streaks].
// Safe for concurrent use. Streak.Started comes back exactly as given
// (kept as Unix nanoseconds), in the local time zone.
type Streaks struct{ a *Account }

var _ tasks.Store = Streaks{}

// Streaks returns the account's store of unanswered-message streaks.
func (a *Account) Streaks() Streaks { return Streaks{a} }

func (s Streaks) args(chat channel.Chat) []any {
	return []any{s.a.id, []byte(chat.Channel), []byte(chat.ChatID)}
}

// Open implements [tasks.Store]. It is one batch, run as one transaction:
// an INSERT that does nothing if the chat has a streak, then a SELECT of
// the chat's streak, which sees the winner of any concurrent Open.
func (s Streaks) Open(ctx context.Context, chat channel.Chat, opener string, started time.Time) (tasks.Streak, bool, error) {
	if opener == "" {
		return tasks.Streak{}, false, fmt.Errorf("pgstore: %w: empty opener message ID", tasks.ErrInvalid)
	}
	ns, err := toNanos("Open", "started", started)
	if err != nil {
		return tasks.Streak{}, false, fmt.Errorf("%w (%w)", tasks.ErrInvalid, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return tasks.Streak{}, false, err
		}
		b := &pgx.Batch{}
		b.Queue(s.a.db.q.openStreak, append(s.args(chat), []byte(opener), ns)...)
		b.Queue(s.a.db.q.getStreak, s.args(chat)...)
		res := s.a.db.pool.SendBatch(ctx, b)
		tag, err := res.Exec()
		st, found := tasks.Streak{}, true
		if err == nil {
			st, err = scanStreak(chat, res.QueryRow())
			if errors.Is(err, pgx.ErrNoRows) {
				found, err = false, nil
			}
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return tasks.Streak{}, false, fail(ctx, "Open "+chat.String(), err)
		}
		if found {
			return st, tag.RowsAffected() == 1, nil
		}
		// Closed between the two statements: try again.
	}
}

func scanStreak(chat channel.Chat, row pgx.Row) (tasks.Streak, error) {
	var opener, task []byte
	var ns *int64
	if err := row.Scan(&opener, &ns, &task); err != nil {
		return tasks.Streak{}, err
	}
	return tasks.Streak{Chat: chat, Opener: string(opener), Started: fromNanos(ns), Task: crm.TaskID(task)}, nil
}

// SetTask implements [tasks.Store]: one UPDATE of the streak that opener
// opened.
func (s Streaks) SetTask(ctx context.Context, chat channel.Chat, opener string, task crm.TaskID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tag, err := s.a.db.pool.Exec(ctx, s.a.db.q.setTask, append(s.args(chat), []byte(opener), []byte(task))...)
	if err != nil {
		return fail(ctx, "SetTask "+chat.String(), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: SetTask %s opened by %q: %w", chat, opener, tasks.ErrStreakClosed)
	}
	return nil
}

// Close implements [tasks.Store]: one DELETE … RETURNING.
func (s Streaks) Close(ctx context.Context, chat channel.Chat) (tasks.Streak, bool, error) {
	return s.one(ctx, "Close", s.a.db.q.closeStreak, chat)
}

// Get implements [tasks.Store].
func (s Streaks) Get(ctx context.Context, chat channel.Chat) (tasks.Streak, bool, error) {
	return s.one(ctx, "Get", s.a.db.q.getStreak, chat)
}

func (s Streaks) one(ctx context.Context, op, q string, chat channel.Chat) (tasks.Streak, bool, error) {
	if err := ctx.Err(); err != nil {
		return tasks.Streak{}, false, err
	}
	st, err := scanStreak(chat, s.a.db.pool.QueryRow(ctx, q, s.args(chat)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return tasks.Streak{}, false, nil
	}
	if err != nil {
		return tasks.Streak{}, false, fail(ctx, op+" "+chat.String(), err)
	}
	return st, true, nil
}
