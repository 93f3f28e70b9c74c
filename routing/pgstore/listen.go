package pgstore

import (
	"context"
	"encoding/hex"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannelName is the LISTEN channel of a schema's lease releases:
// a fixed-length name, whatever the schema's.
func notifyChannelName(schema string) string {
	h := fnv.New64a()
	h.Write([]byte(schema))
	return "crmbridge_leases_" + hex.EncodeToString(h.Sum(nil))
}

// listen holds one connection of its own (outside the pool) LISTENing for
// lease releases by other processes and wakes the local waiters they
// name. It reconnects with a backoff until ctx is done; meanwhile waiters
// poll.
func (db *DB) listen(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if err := db.listenOnce(ctx); err == nil || ctx.Err() != nil {
			backoff = 100 * time.Millisecond
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (db *DB) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.notifyChannel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		db.wake.wake(n.Payload)
	}
}

// Close stops the DB's listener connection. It does not close the pool,
// which stays the caller's. Locks waiting when Close is called, and
// later ones, still see releases by other processes, by polling.
func (db *DB) Close() {
	db.stop()
	<-db.stopped
}
