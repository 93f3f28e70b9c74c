package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/jackc/pgx/v5"
)

var (
	_ routing.QueueStore      = (*Account)(nil)
	_ routing.EscalationStore = (*Account)(nil)
)

// Enqueue implements [routing.QueueStore]. It is one batch, run as one
// transaction: an INSERT that does nothing if the chat is queued, then a
// SELECT of the chat's entry, which sees the first Enqueue's. Seq comes
// from one sequence for every queue. A queued entry's Since comes back
// exactly as given.
func (a *Account) Enqueue(ctx context.Context, chat channel.Chat, since time.Time) (routing.QueueEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return routing.QueueEntry{}, false, err
	}
	if err := checkChat("Enqueue", chat); err != nil {
		return routing.QueueEntry{}, false, err
	}
	ns, err := toNanos("Enqueue", "since", since)
	if err != nil {
		return routing.QueueEntry{}, false, err
	}
	args := []any{a.id, []byte(chat.Channel), []byte(chat.ChatID)}
	for {
		b := &pgx.Batch{}
		b.Queue(a.db.q.enqueue, append(args, ns)...)
		b.Queue(a.db.q.getQueued, args...)
		res := a.db.pool.SendBatch(ctx, b)
		tag, err := res.Exec()
		var sinceNs *int64
		var seq int64
		found := true
		if err == nil {
			err = res.QueryRow().Scan(&sinceNs, &seq)
			if errors.Is(err, pgx.ErrNoRows) {
				found, err = false, nil
			}
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return routing.QueueEntry{}, false, fail(ctx, "Enqueue "+chat.String(), err)
		}
		if found {
			return routing.QueueEntry{Chat: chat, Since: fromNanos(sinceNs), Seq: uint64(seq)}, tag.RowsAffected() == 1, nil
		}
		// Removed between the two statements: try again.
		if err := ctx.Err(); err != nil {
			return routing.QueueEntry{}, false, err
		}
	}
}

// Entry implements [routing.QueueStore]: one SELECT by the entry's key.
func (a *Account) Entry(ctx context.Context, chat channel.Chat) (routing.QueueEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return routing.QueueEntry{}, false, err
	}
	if err := checkChat("Entry", chat); err != nil {
		return routing.QueueEntry{}, false, err
	}
	var sinceNs *int64
	var seq int64
	err := a.db.pool.QueryRow(ctx, a.db.q.getQueued, a.id, []byte(chat.Channel), []byte(chat.ChatID)).Scan(&sinceNs, &seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return routing.QueueEntry{}, false, nil
	case err != nil:
		return routing.QueueEntry{}, false, fail(ctx, "Entry "+chat.String(), err)
	}
	return routing.QueueEntry{Chat: chat, Since: fromNanos(sinceNs), Seq: uint64(seq)}, true, nil
}

// Peek implements [routing.QueueStore]: one SELECT on the queue's index.
func (a *Account) Peek(ctx context.Context, ch channel.ID, limit int) ([]routing.QueueEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("pgstore: %w: negative limit %d", routing.ErrInvalid, limit)
	}
	rows, err := a.db.pool.Query(ctx, a.db.q.peek, a.id, []byte(ch), limit)
	if err != nil {
		return nil, fail(ctx, fmt.Sprintf("Peek %q", ch), err)
	}
	defer rows.Close()
	var out []routing.QueueEntry
	for rows.Next() {
		var chatID []byte
		var since *int64
		var seq int64
		if err := rows.Scan(&chatID, &since, &seq); err != nil {
			return nil, fail(ctx, fmt.Sprintf("Peek %q", ch), err)
		}
		out = append(out, routing.QueueEntry{Chat: channel.Chat{Channel: ch, ChatID: string(chatID)}, Since: fromNanos(since), Seq: uint64(seq)})
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, fmt.Sprintf("Peek %q", ch), err)
	}
	return out, nil
}

// Remove implements [routing.QueueStore]: one DELETE; of concurrent
// Removes the one that deleted the row reports ok.
func (a *Account) Remove(ctx context.Context, chat channel.Chat) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	tag, err := a.db.pool.Exec(ctx, a.db.q.dequeue, a.id, []byte(chat.Channel), []byte(chat.ChatID))
	if err != nil {
		return false, fail(ctx, "Remove "+chat.String(), err)
	}
	return tag.RowsAffected() == 1, nil
}

// Start implements [routing.EscalationStore], like Enqueue: an INSERT
// that does nothing if the chat is watched, then a SELECT, in one
// transaction. Times come back exactly as given.
func (a *Account) Start(ctx context.Context, w routing.Watch) (routing.Watch, bool, error) {
	if err := ctx.Err(); err != nil {
		return routing.Watch{}, false, err
	}
	if err := checkChat("Start", w.Chat); err != nil {
		return routing.Watch{}, false, err
	}
	if w.Due.IsZero() {
		return routing.Watch{}, false, fmt.Errorf("pgstore: %w: watch of chat %s without a due time", routing.ErrInvalid, w.Chat)
	}
	since, err := toNanos("Start", "Watch.Since", w.Since)
	if err != nil {
		return routing.Watch{}, false, err
	}
	due, err := toNanos("Start", "Watch.Due", w.Due)
	if err != nil {
		return routing.Watch{}, false, err
	}
	args := []any{a.id, []byte(w.Chat.Channel), []byte(w.Chat.ChatID)}
	for {
		b := &pgx.Batch{}
		b.Queue(a.db.q.startWatch, append(args, since, w.Done, due)...)
		b.Queue(a.db.q.getWatch, args...)
		res := a.db.pool.SendBatch(ctx, b)
		tag, err := res.Exec()
		var sinceNs *int64
		var done int32
		var dueNs int64
		found := true
		if err == nil {
			err = res.QueryRow().Scan(&sinceNs, &done, &dueNs)
			if errors.Is(err, pgx.ErrNoRows) {
				found, err = false, nil
			}
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return routing.Watch{}, false, fail(ctx, "Start "+w.Chat.String(), err)
		}
		if found {
			return routing.Watch{Chat: w.Chat, Since: fromNanos(sinceNs), Done: int(done), Due: time.Unix(0, dueNs)}, tag.RowsAffected() == 1, nil
		}
		if err := ctx.Err(); err != nil {
			return routing.Watch{}, false, err
		}
	}
}

// DueBy implements [routing.EscalationStore]: one SELECT on the index of
// due times. A negative limit means no limit.
func (a *Account) DueBy(ctx context.Context, now time.Time, limit int) ([]routing.Watch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nowNs, err := toNanos("DueBy", "now", now)
	if err != nil {
		return nil, err
	}
	if nowNs == nil {
		return nil, nil
	}
	var lim *int
	if limit >= 0 {
		lim = &limit
	}
	rows, err := a.db.pool.Query(ctx, a.db.q.dueBy, a.id, *nowNs, lim)
	if err != nil {
		return nil, fail(ctx, "DueBy", err)
	}
	defer rows.Close()
	var out []routing.Watch
	for rows.Next() {
		var ch, chatID []byte
		var since *int64
		var done int32
		var due int64
		if err := rows.Scan(&ch, &chatID, &since, &done, &due); err != nil {
			return nil, fail(ctx, "DueBy", err)
		}
		out = append(out, routing.Watch{Chat: channel.Chat{Channel: channel.ID(ch), ChatID: string(chatID)},
			Since: fromNanos(since), Done: int(done), Due: time.Unix(0, due)})
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "DueBy", err)
	}
	return out, nil
}

// Advance implements [routing.EscalationStore]: one statement, a
// compare-and-swap on the watch as read (Since, Done and Due). A from
// whose Since, Done or Due could not have been stored (a zero Due, a
// time outside the years Start accepts, a negative Done) is not the
// stored watch: the error
// matches [routing.ErrStaleWatch].
func (a *Account) Advance(ctx context.Context, from routing.Watch, due time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dueNs, err := toNanos("Advance", "due", due)
	if err != nil {
		return err
	}
	stale := func() error {
		return fmt.Errorf("pgstore: %w: chat %s is not at escalation %d due %s", routing.ErrStaleWatch,
			from.Chat, from.Done, from.Due.Format(time.RFC3339Nano))
	}
	sinceNs, err := toNanos("Advance", "from.Since", from.Since)
	if err != nil {
		return stale()
	}
	fromDueNs, err := toNanos("Advance", "from.Due", from.Due)
	if err != nil || fromDueNs == nil || from.Done < 0 || from.Done > math.MaxInt32 {
		return stale()
	}
	var n int64
	if err := a.db.pool.QueryRow(ctx, a.db.q.advance, a.id, []byte(from.Chat.Channel), []byte(from.Chat.ChatID),
		sinceNs, from.Done, *fromDueNs, dueNs).Scan(&n); err != nil {
		return fail(ctx, "Advance "+from.Chat.String(), err)
	}
	if n == 0 {
		return stale()
	}
	return nil
}

// Stop implements [routing.EscalationStore]: one DELETE.
func (a *Account) Stop(ctx context.Context, chat channel.Chat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := a.db.pool.Exec(ctx, a.db.q.stopWatch, a.id, []byte(chat.Channel), []byte(chat.ChatID)); err != nil {
		return fail(ctx, "Stop "+chat.String(), err)
	}
	return nil
}
