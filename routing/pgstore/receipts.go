package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/jackc/pgx/v5"
)

// Receipts is one account's [wazzup.ReceiptStore]. Get it from
// [Account.Receipts]. Keys compare byte for byte. Receipts are kept until
// Purge deletes them. Safe for concurrent use.
type Receipts struct{ a *Account }

var _ wazzup.ReceiptStore = Receipts{}

// Receipts returns the account's store of sent-message receipts.
func (a *Account) Receipts() Receipts { return Receipts{a} }

// Load implements [wazzup.ReceiptStore].
func (r Receipts) Load(ctx context.Context, key string) (channel.Receipt, bool, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, false, err
	}
	if key == "" {
		return channel.Receipt{}, false, fmt.Errorf("pgstore: %w: empty receipt key", channel.ErrInvalid)
	}
	var id []byte
	err := r.a.db.pool.QueryRow(ctx, r.a.db.q.loadReceipt, r.a.id, []byte(key)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return channel.Receipt{}, false, nil
	}
	if err != nil {
		return channel.Receipt{}, false, fail(ctx, "Load receipt", err)
	}
	return channel.Receipt{ProviderID: string(id)}, true, nil
}

// Store implements [wazzup.ReceiptStore]. It is one batch, run as one
// transaction: an INSERT that does nothing if the key is taken, then a
// SELECT of the key's receipt, which sees the first writer's.
func (r Receipts) Store(ctx context.Context, key string, rc channel.Receipt) (channel.Receipt, bool, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, false, err
	}
	if err := wazzup.CheckReceipt(key, rc); err != nil {
		return channel.Receipt{}, false, err
	}
	b := &pgx.Batch{}
	b.Queue(r.a.db.q.storeReceipt, r.a.id, []byte(key), []byte(rc.ProviderID))
	b.Queue(r.a.db.q.loadReceipt, r.a.id, []byte(key))
	res := r.a.db.pool.SendBatch(ctx, b)
	tag, err := res.Exec()
	var id []byte
	if err == nil {
		err = res.QueryRow().Scan(&id)
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return channel.Receipt{}, false, fail(ctx, "Store receipt", err)
	}
	return channel.Receipt{ProviderID: string(id)}, tag.RowsAffected() == 1, nil
}

// Purge deletes at most limit of the account's receipts stored before
// before (by the database's clock), oldest first, and returns how many.
// Call it in a loop to purge in bounded batches; a purged key is
// protected only by Wazzup's own 60 seconds.
func (r Receipts) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("pgstore: Purge receipts: %w: limit %d is not positive", routing.ErrInvalid, limit)
	}
	tag, err := r.a.db.pool.Exec(ctx, r.a.db.q.purgeReceipts, r.a.id, before, limit)
	if err != nil {
		return 0, fail(ctx, "Purge receipts", err)
	}
	return int(tag.RowsAffected()), nil
}
