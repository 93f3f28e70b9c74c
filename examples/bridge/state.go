package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/crmbridge/crmbridge/tasks"
)

// stores are every piece of state the bridge keeps: the engine's own (leases,
// client records, the journal of processed events), the routing stores
// (offers and claims, round-robin turns, queues, escalation clocks), the
// unanswered-message streaks, the Wazzup send receipts and amoCRM's OAuth
// tokens. They are all in
// memory, or all in PostgreSQL under one account.
type stores struct {
	kind        string // "memory" or "postgres"
	state       engine.State
	claims      routing.ClaimStore
	rotation    routing.RotationStore
	queue       routing.QueueStore
	escalations routing.EscalationStore
	streaks     tasks.Store
	receipts    wazzup.ReceiptStore
	tokens      amocrm.TokenStore // amoCRM OAuth tokens (with AMOCRM_CLIENT_ID)

	// ping checks that the store answers (the health check).
	ping func(ctx context.Context) error
	// purge forgets processed events and receipts older than before, in
	// bounded batches.
	purge func(ctx context.Context, before time.Time) error
	close func()
}

// memoryStores keeps everything in this process: a restart forgets which
// offered chats were claimed and which messages were processed, and two
// instances would not share a guarantee.
func memoryStores() *stores {
	st := &engine.MemoryState{}
	return &stores{
		kind:        "memory",
		state:       st,
		claims:      &routing.MemoryClaims{},
		rotation:    &routing.MemoryRotation{},
		queue:       &routing.MemoryQueue{},
		escalations: &routing.MemoryEscalations{},
		streaks:     &tasks.MemoryStore{},
		receipts:    wazzup.NewMemoryReceipts(0),
		tokens:      amocrm.NewMemoryStore(amocrm.TokenPair{}),
		ping:        func(ctx context.Context) error { return ctx.Err() },
		purge: func(ctx context.Context, before time.Time) error {
			_, err := purgeAll(ctx, func(ctx context.Context, n int) (int, error) { return st.Purge(ctx, before, n) })
			return err
		},
		close: func() {},
	}
}

// postgresStores keeps everything in PostgreSQL (package routing/pgstore)
// under one account ID: any number of bridge instances on the same
// database and account share every guarantee, and restarts forget nothing.
func postgresStores(ctx context.Context, dsn, account string) (*stores, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envPGDSN, err)
	}
	db, err := pgstore.Open(ctx, pool, pgstore.Options{})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", envPGDSN, err)
	}
	acct := db.Account(account)
	receipts := acct.Receipts()
	return &stores{
		kind:        "postgres",
		state:       acct,
		claims:      acct,
		rotation:    acct,
		queue:       acct,
		escalations: acct,
		streaks:     acct.Streaks(),
		receipts:    receipts,
		tokens:      acct.Tokens(),
		ping:        pool.Ping,
		purge: func(ctx context.Context, before time.Time) error {
			_, err1 := purgeAll(ctx, func(ctx context.Context, n int) (int, error) { return acct.Purge(ctx, before, n) })
			_, err2 := purgeAll(ctx, func(ctx context.Context, n int) (int, error) { return receipts.Purge(ctx, before, n) })
			return errors.Join(err1, err2)
		},
		close: func() {
			db.Close()
			pool.Close()
		},
	}, nil
}

// purgeBatch is how many rows one purge statement deletes at most, so that
// a purge never holds up events for long.
const purgeBatch = 1000

// purgeAll calls purge in batches until it deletes fewer than a batch.
func purgeAll(ctx context.Context, purge func(ctx context.Context, n int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := purge(ctx, purgeBatch)
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}
