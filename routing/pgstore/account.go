package pgstore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing"
)

// Account is one account's view of a [DB]. It implements
// [engine.State], [routing.ClaimStore], [routing.RotationStore],
// [routing.QueueStore] and [routing.EscalationStore]; its Streaks,
// Receipts and Tokens methods return the account's [tasks.Store],
// [wazzup.ReceiptStore] and [amocrm.TokenStore]. Every statement it runs
// names the account in its WHERE clause and in the primary key of every
// row it writes, so no operation of one account reads, changes, locks or
// purges another account's rows. Safe for concurrent use.
type Account struct {
	db *DB
	id []byte
}

var (
	_ routing.ClaimStore    = (*Account)(nil)
	_ routing.RotationStore = (*Account)(nil)
)

// ID returns the account's ID.
func (a *Account) ID() string { return string(a.id) }

func checkChat(op string, chat channel.Chat) error {
	if chat.Channel == "" || chat.ChatID == "" {
		return fmt.Errorf("pgstore: %s: %w: chat %q has an empty channel or chat ID", op, routing.ErrInvalid, chat.String())
	}
	return nil
}

// poolKey names a rotation pool of the account within the process.
func (a *Account) poolKey(pool string) string {
	return a.leaseKey(channel.Chat{Channel: "\x00pool", ChatID: pool})
}

// leaseKey is unambiguous: every part is length-prefixed.
func (a *Account) leaseKey(chat channel.Chat) string {
	b := make([]byte, 0, 12+len(a.id)+len(chat.Channel)+len(chat.ChatID))
	for _, p := range []string{string(a.id), string(chat.Channel), chat.ChatID} {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

// toNanos stores a caller's time exactly, as Unix nanoseconds; the zero
// time is NULL.
func toNanos(op, field string, t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Year() < 1678 || t.Year() > 2261 {
		return nil, fmt.Errorf("pgstore: %s: %w: %s %v is outside the years 1678 to 2261", op, routing.ErrInvalid, field, t)
	}
	n := t.UnixNano()
	return &n, nil
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n)
}
