package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema holding the tables when Options.Schema is
// empty.
const DefaultSchema = "crmbridge"

// Options configures [Open]. The zero value means every default.
type Options struct {
	// Schema is the PostgreSQL schema holding the tables; it is created
	// if missing. Empty means DefaultSchema. It must be a plain
	// identifier: a letter or underscore, then letters, digits and
	// underscores, at most 63 bytes.
	Schema string
	// Retention is how long the journal of processed events remembers an
	// event: Message ignores records first written longer ago, and a
	// record rewritten after that starts again. 0 means 72 hours, longer
	// than any provider's webhook retries. Purge deletes old records.
	Retention time.Duration
	// LockPoll is the longest a Lock waiting for another instance's lease
	// sleeps between attempts (waiters in the same process are woken at
	// once by Unlock; a lease held elsewhere is retried with a backoff
	// up to LockPoll, and at its expiry). 0 means 100 milliseconds.
	LockPoll time.Duration
}

// Errors of Open.
var (
	// ErrSchema: the schema could not be read or migrated. Matched by the
	// errors of Open, which wrap the database's error.
	ErrSchema = errors.New("pgstore: schema")
	// ErrNewerSchema: the database's schema was migrated by a newer
	// version of this package; this one refuses to use it.
	ErrNewerSchema = errors.New("pgstore: schema is newer than this package")
)

// OptionError reports an invalid argument of [Open]: a field of
// [Options], or the pool itself when it is nil.
type OptionError struct {
	// Field names the Options field, or is "pool" for Open's pool.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements the error interface.
func (e *OptionError) Error() string {
	name := "Options." + e.Field
	if e.Field == "pool" {
		name = "pool"
	}
	return "pgstore: Open: " + name + ": " + e.Reason
}

// DB is a crmbridge state store on one PostgreSQL database. It is safe for
// concurrent use, by any number of goroutines and host instances at once.
// It runs its statements on the host's pool, and keeps one connection of
// its own to LISTEN for lease releases by other instances.
type DB struct {
	pool    *pgxpool.Pool
	schema  string
	opts    Options
	q       queries
	wake    *wakeups
	pools   keyLocks // rotation pools being changed by this process
	lockers keyLocks // chats whose lease this process is waiting for

	// tokenClock is added to the database's clock by the token lock's
	// statements, in nanoseconds: 0, except in this package's tests,
	// which set it to run a suite whose callers share a fake clock.
	tokenClock atomic.Int64

	notifyChannel string
	stop          context.CancelFunc
	stopped       chan struct{}
}

var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Open checks opts, applies the schema migrations this version needs and
// returns the store, with a connection of its own (not from the pool)
// that listens for lease releases until [DB.Close]. Several instances
// may call Open on one database at once: migrations run under a
// transaction-scoped advisory lock, each at most once, recorded in the
// schema_version table. pool stays the caller's: closing it is the
// caller's business, after the last use of the DB.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*DB, error) {
	if pool == nil {
		return nil, &OptionError{Field: "pool", Reason: "a *pgxpool.Pool is required"}
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if !schemaName.MatchString(opts.Schema) {
		return nil, &OptionError{Field: "Schema", Reason: fmt.Sprintf("%q is not a plain identifier", opts.Schema)}
	}
	if opts.Retention < 0 {
		return nil, &OptionError{Field: "Retention", Reason: "must not be negative"}
	}
	if opts.Retention == 0 {
		opts.Retention = 72 * time.Hour
	}
	if opts.LockPoll < 0 {
		return nil, &OptionError{Field: "LockPoll", Reason: "must not be negative"}
	}
	if opts.LockPoll == 0 {
		opts.LockPoll = 100 * time.Millisecond
	}
	db := &DB{pool: pool, schema: opts.Schema, opts: opts, wake: newWakeups()}
	db.q = newQueries(pgx.Identifier{opts.Schema}.Sanitize())
	if err := db.migrate(ctx); err != nil {
		return nil, err
	}
	db.notifyChannel = notifyChannelName(opts.Schema)
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	db.stop, db.stopped = stop, make(chan struct{})
	go db.listen(lctx, db.stopped)
	return db, nil
}

// Schema returns the schema holding the tables.
func (db *DB) Schema() string { return db.schema }

// Account returns the view of one account's state. Every row the view
// reads, writes, locks or deletes is keyed by id, so no operation of one
// account's view touches another's rows. Any string is an account ID,
// the empty one included; IDs compare byte for byte.
func (db *DB) Account(id string) *Account {
	return &Account{db: db, id: []byte(id)}
}

// migrations are applied in order; migrations[i] moves the schema from
// version i to i+1. %[1]s is the quoted schema name. Never edit a
// released step: append a new one.
var migrations = []string{
	// 1: every table of the first release.
	`
CREATE SEQUENCE %[1]s.fence;
CREATE TABLE %[1]s.leases (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	fence bigint NOT NULL,
	expires timestamptz NOT NULL,
	waiting boolean NOT NULL DEFAULT false,
	PRIMARY KEY (account, channel, chat_id)
);
CREATE TABLE %[1]s.clients (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	contact bytea NOT NULL,
	deal bytea NOT NULL,
	responsible bytea NOT NULL,
	claimed_by bytea NOT NULL,
	turn bytea NOT NULL,
	fetched_ns bigint,
	PRIMARY KEY (account, channel, chat_id)
);
CREATE TABLE %[1]s.messages (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	kind smallint NOT NULL,
	id bytea NOT NULL,
	done boolean NOT NULL,
	outcome bytea NOT NULL,
	first_at timestamptz NOT NULL,
	PRIMARY KEY (account, channel, chat_id, kind, id)
);
CREATE INDEX messages_age ON %[1]s.messages (account, first_at);
CREATE TABLE %[1]s.claims (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	offered bytea[] NOT NULL,
	claimed_by bytea,
	offered_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, channel, chat_id)
);
CREATE TABLE %[1]s.rotation_pools (
	account bytea NOT NULL,
	pool bytea NOT NULL,
	seq bigint NOT NULL,
	PRIMARY KEY (account, pool)
);
CREATE TABLE %[1]s.rotation_members (
	account bytea NOT NULL,
	pool bytea NOT NULL,
	user_id bytea NOT NULL,
	last_served bigint NOT NULL,
	seen bigint NOT NULL,
	credit bigint NOT NULL,
	open integer NOT NULL,
	PRIMARY KEY (account, pool, user_id)
);
CREATE TABLE %[1]s.rotation_holds (
	account bytea NOT NULL,
	pool bytea NOT NULL,
	key bytea NOT NULL,
	user_id bytea NOT NULL,
	PRIMARY KEY (account, pool, key)
);
CREATE TABLE %[1]s.streaks (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	opener bytea NOT NULL,
	started_ns bigint,
	task bytea NOT NULL,
	PRIMARY KEY (account, channel, chat_id)
);
CREATE TABLE %[1]s.receipts (
	account bytea NOT NULL,
	key bytea NOT NULL,
	provider_id bytea NOT NULL,
	stored_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, key)
);
CREATE INDEX receipts_age ON %[1]s.receipts (account, stored_at);
CREATE TABLE %[1]s.tokens (
	account bytea PRIMARY KEY,
	access_token bytea NOT NULL,
	refresh_token bytea NOT NULL,
	expiry_ns bigint,
	base_url bytea NOT NULL,
	version bigint NOT NULL,
	locked_until_ns bigint,
	owner bytea NOT NULL
);
`,
	// 2: waiting queues and escalation watches.
	`
CREATE SEQUENCE %[1]s.queue_seq;
CREATE TABLE %[1]s.queue (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	since_ns bigint,
	seq bigint NOT NULL DEFAULT nextval('%[1]s.queue_seq'),
	PRIMARY KEY (account, channel, chat_id)
);
CREATE INDEX queue_order ON %[1]s.queue (account, channel, since_ns, seq);
CREATE TABLE %[1]s.escalations (
	account bytea NOT NULL,
	channel bytea NOT NULL,
	chat_id bytea NOT NULL,
	since_ns bigint,
	done integer NOT NULL,
	due_ns bigint NOT NULL,
	PRIMARY KEY (account, channel, chat_id)
);
CREATE INDEX escalations_due ON %[1]s.escalations (account, due_ns, channel, chat_id);
`,
	// 3: token refresh locks expire by the database's clock. The
	// expiry copied here for locks taken before this step is no longer
	// read: step 4 judges those locks by their until.
	`
ALTER TABLE %[1]s.tokens ADD COLUMN lock_expires timestamptz;
UPDATE %[1]s.tokens SET lock_expires = to_timestamp(locked_until_ns / 1e9) WHERE locked_until_ns IS NOT NULL;
`,
	// 4: lock_expires names the owner it was set for. An instance of a
	// release before step 3 locks, unlocks and saves without touching
	// lock_expires, so the value left there may belong to an earlier
	// lock; it counts only while lock_owner is the row's owner. None is
	// set here: every lock taken before this step is judged by its
	// until.
	`
ALTER TABLE %[1]s.tokens ADD COLUMN lock_owner bytea;
`,
}

// SchemaVersion is the schema version this package migrates to.
var SchemaVersion = len(migrations)

// migrationLock is the key of the advisory lock taken around migrations:
// a hash of the schema name, so that schemas migrate independently.
func migrationLock(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("crmbridge/pgstore migrations\x00" + schema))
	return int64(h.Sum64())
}

func (db *DB) migrate(ctx context.Context) error {
	s := pgx.Identifier{db.schema}.Sanitize()
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Everything below runs under the lock, so concurrent Opens
		// never race on CREATE … IF NOT EXISTS or on a migration step.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock(db.schema)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.schema_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL)`, s)); err != nil {
			return err
		}
		var v int
		err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT version FROM %s.schema_version`, s)).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			v = 0
		} else if err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("%w: schema %q is at version %d, this package knows up to %d", ErrNewerSchema, db.schema, v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v], s)); err != nil {
				return fmt.Errorf("migration to version %d: %w", v+1, err)
			}
		}
		_, err = tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.schema_version (version) VALUES ($1)
ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version`, s), v)
		return err
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNewerSchema) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w %q: %w", ErrSchema, db.schema, errors.Join(cerr, err))
	}
	return fmt.Errorf("%w %q: %w", ErrSchema, db.schema, err)
}

// fail wraps a database error of op; once ctx is done, the error also
// matches ctx.Err(), whatever the driver returned.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = errors.Join(cerr, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}
