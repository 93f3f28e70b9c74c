package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/jackc/pgx/v5"
)

// Account implements engine.State: leases on chats, client records and
// the journal of processed events.
var _ engine.State = (*Account)(nil)

// Lock implements [engine.Locker]. A lease is a row of the leases table
// holding a fence from one sequence and an expiry by the database's clock,
// so every instance agrees on when it ends whatever its own clock says;
// Lease.Expires is that time. Granting is one statement: an insert, or an
// update of an expired row, under the row's lock. A Lock that finds a
// live lease marks the row as waited for and waits: the Unlock of a
// marked row wakes it at once, in the same process directly and in other
// processes through a NOTIFY that every DB LISTENs for; in case a
// notification is lost, it also retries with a backoff of at most
// Options.LockPoll, and at the holder's expiry. Within one process, the Locks of one chat
// queue in turn, so only one of them asks the database at a time.
//
// Why lease rows and not advisory locks: an advisory lock lives as long
// as a connection, so an event would pin a pooled connection for all its
// CRM calls, and a holder whose connection is gone cannot tell that it
// lost the lock before it writes. A lease row survives connection
// drops, bounds the wait for a dead holder by its ttl, and its fence lets
// every write check, in the same statement, that its lease is still the
// chat's current one.
func (a *Account) Lock(ctx context.Context, chat channel.Chat, ttl time.Duration) (engine.Lease, error) {
	if err := checkChat("Lock", chat); err != nil {
		return engine.Lease{}, err
	}
	if ttl <= 0 {
		return engine.Lease{}, fmt.Errorf("pgstore: Lock: %w: lease time to live %v is not positive", routing.ErrInvalid, ttl)
	}
	key := a.leaseKey(chat)
	// One goroutine per process and chat asks the database at a time;
	// the others queue here, so a released lease does not set off a
	// stampede of attempts on its row.
	release, err := a.db.lockers.lock(ctx, key)
	if err != nil {
		return engine.Lease{}, err
	}
	defer release()
	backoff := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return engine.Lease{}, err
		}
		woken := a.db.wake.watch(wakeID(key))
		var fence, offered int64
		var expires, now time.Time
		err := a.db.pool.QueryRow(ctx, a.db.q.lock, a.id, []byte(chat.Channel), []byte(chat.ChatID), ttl).
			Scan(&fence, &expires, &offered, &now)
		if err != nil {
			return engine.Lease{}, fail(ctx, "Lock "+chat.String(), err)
		}
		if fence == offered {
			return engine.Lease{Chat: chat, Fence: uint64(fence), Expires: expires}, nil
		}
		wait := min(backoff, a.db.opts.LockPoll)
		if left := expires.Sub(now) + time.Millisecond; left < wait {
			wait = left
		}
		backoff *= 2
		t := time.NewTimer(wait)
		select {
		case <-woken:
			backoff = time.Millisecond
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

func lost(op string, l engine.Lease, why string) error {
	return fmt.Errorf("pgstore: %s %s (fence %d)%s: %w", op, l.Chat, l.Fence, why, engine.ErrLeaseLost)
}

// fence converts a lease's fence for the database; fences above MaxInt64
// were never granted.
func fence(l engine.Lease) int64 {
	if l.Fence > math.MaxInt64 {
		return 0
	}
	return int64(l.Fence)
}

// Unlock implements [engine.Locker]: one DELETE of the lease's row, which
// must still carry the lease's fence; then, if a Lock is waiting for the
// chat, a NOTIFY.
func (a *Account) Unlock(ctx context.Context, l engine.Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var live, waited bool
	err := a.db.pool.QueryRow(ctx, a.db.q.unlock, a.id, []byte(l.Chat.Channel), []byte(l.Chat.ChatID), fence(l)).Scan(&live, &waited)
	if errors.Is(err, pgx.ErrNoRows) {
		return lost("Unlock", l, "")
	}
	if err != nil {
		return fail(ctx, "Unlock "+l.Chat.String(), err)
	}
	id := wakeID(a.leaseKey(l.Chat))
	a.db.wake.wake(id)
	if waited {
		// Best effort: a waiter that misses it retries on its own.
		_, _ = a.db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, a.db.notifyChannel, id)
	}
	if !live {
		return lost("Unlock", l, ": expired")
	}
	return nil
}

// Client implements [engine.ClientStore].
func (a *Account) Client(ctx context.Context, chat channel.Chat) (engine.ClientRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return engine.ClientRecord{}, false, err
	}
	var contact, deal, resp, claimed, turn []byte
	var fetched *int64
	err := a.db.pool.QueryRow(ctx, a.db.q.client, a.id, []byte(chat.Channel), []byte(chat.ChatID)).
		Scan(&contact, &deal, &resp, &claimed, &turn, &fetched)
	if errors.Is(err, pgx.ErrNoRows) {
		return engine.ClientRecord{}, false, nil
	}
	if err != nil {
		return engine.ClientRecord{}, false, fail(ctx, "Client "+chat.String(), err)
	}
	return engine.ClientRecord{
		Contact:     crm.ContactID(contact),
		Deal:        crm.DealID(deal),
		Responsible: crm.UserID(resp),
		ClaimedBy:   crm.UserID(claimed),
		Turn:        crm.UserID(turn),
		Fetched:     fromNanos(fetched),
	}, true, nil
}

// PutClient implements [engine.ClientStore]: one statement that writes
// only if the lease row still carries l's fence and is unexpired.
func (a *Account) PutClient(ctx context.Context, l engine.Lease, r engine.ClientRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fetched, err := toNanos("PutClient", "ClientRecord.Fetched", r.Fetched)
	if err != nil {
		return err
	}
	tag, err := a.db.pool.Exec(ctx, a.db.q.putClient, a.id, []byte(l.Chat.Channel), []byte(l.Chat.ChatID), fence(l),
		[]byte(r.Contact), []byte(r.Deal), []byte(r.Responsible), []byte(r.ClaimedBy), []byte(r.Turn), fetched)
	if err != nil {
		return fail(ctx, "PutClient "+l.Chat.String(), err)
	}
	if tag.RowsAffected() == 0 {
		return lost("PutClient", l, "")
	}
	return nil
}

// Message implements [engine.Journal]. Records first written more than
// Options.Retention ago are not found.
func (a *Account) Message(ctx context.Context, key engine.MessageKey) (engine.MessageRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return engine.MessageRecord{}, false, err
	}
	var r engine.MessageRecord
	var outcome []byte
	err := a.db.pool.QueryRow(ctx, a.db.q.message, a.id, []byte(key.Chat.Channel), []byte(key.Chat.ChatID),
		int16(key.Kind), []byte(key.ID), a.db.opts.Retention).Scan(&r.Done, &outcome)
	if errors.Is(err, pgx.ErrNoRows) {
		return engine.MessageRecord{}, false, nil
	}
	if err != nil {
		return engine.MessageRecord{}, false, fail(ctx, "Message "+key.Chat.String(), err)
	}
	r.Outcome = engine.Outcome(outcome)
	return r, true, nil
}

// PutMessage implements [engine.Journal]: one fenced statement, like
// PutClient. The record keeps the database time of its first write, unless
// that is older than Options.Retention.
func (a *Account) PutMessage(ctx context.Context, l engine.Lease, key engine.MessageKey, r engine.MessageRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key.Chat != l.Chat {
		return fmt.Errorf("pgstore: PutMessage: %w: key of chat %s under the lease of chat %s", routing.ErrInvalid, key.Chat, l.Chat)
	}
	tag, err := a.db.pool.Exec(ctx, a.db.q.putMessage, a.id, []byte(l.Chat.Channel), []byte(l.Chat.ChatID), fence(l),
		int16(key.Kind), []byte(key.ID), r.Done, []byte(r.Outcome), a.db.opts.Retention)
	if err != nil {
		return fail(ctx, "PutMessage "+l.Chat.String(), err)
	}
	if tag.RowsAffected() == 0 {
		return lost("PutMessage", l, "")
	}
	return nil
}

// Purge implements [engine.Journal]: one DELETE of at most limit of the
// account's oldest records first written before before (by the
// database's clock), skipping rows being written at that moment rather
// than waiting for them.
func (a *Account) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("pgstore: Purge: %w: limit %d is not positive", routing.ErrInvalid, limit)
	}
	tag, err := a.db.pool.Exec(ctx, a.db.q.purgeMsg, a.id, before, limit)
	if err != nil {
		return 0, fail(ctx, "Purge", err)
	}
	return int(tag.RowsAffected()), nil
}
