// Package pgstore keeps crmbridge's state in PostgreSQL, so that several
// instances of a host, behind a load balancer and across restarts, share
// one state and keep every guarantee the in-memory stores give one
// process: first-responder claims, round-robin rotation, waiting queues,
// escalation watches, the engine's chat leases, client records and
// journal of processed events, the streaks of unanswered messages,
// Wazzup send receipts and amoCRM OAuth tokens.
//
// It is a module of its own (github.com/crmbridge/crmbridge/routing/pgstore)
// so that hosts that do not use PostgreSQL never link its driver,
// github.com/jackc/pgx/v5.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	…
//	db, err := pgstore.Open(ctx, pool, pgstore.Options{})
//	…
//	acme := db.Account("acme")     // one account's state: engine.State,
//	                               // routing.ClaimStore, RotationStore,
//	                               // QueueStore, EscalationStore
//	streaks := acme.Streaks()      // tasks.Store
//	receipts := acme.Receipts()    // wazzup.ReceiptStore
//	tokens := acme.Tokens()        // amocrm.TokenStore
//
// # Rules
//
//   - Tenancy: one database and one set of tables serve many accounts.
//     [DB.Account] returns a view scoped to one account ID: every row is
//     keyed by it (it leads every primary key) and every statement names
//     it, so no operation of one account reads, changes, locks or purges
//     another's state, whatever chat, user or message IDs they share.
//   - Atomicity: every operation is one SQL statement, or one batch that
//     PostgreSQL runs as a single transaction, or (a rotation pick or
//     reassignment, whose fairness rule runs in Go) one transaction that
//     locks the pool's row before reading it. Nothing reads a row and then
//     writes it from Go without holding its lock.
//   - Migrations: [Open] creates or upgrades the schema itself. It takes a
//     transaction-scoped advisory lock first, so instances starting
//     together migrate once; the version is in the schema_version table.
//     A schema newer than the package is refused ([ErrNewerSchema]).
//   - Times: leases and token refresh locks expire, and journal records
//     age, by the database server's clock, one clock for every instance.
//     Times that callers give (a streak's start, a client record's fetch
//     time, token expiries, a refresh lock's until) are kept exactly, as
//     Unix nanoseconds.
//   - Leases: the engine serializes each chat's events across instances
//     with a lease row per chat (see [Account.Lock] for why rows and not
//     advisory locks). An instance that dies holding one blocks the chat
//     for at most the lease's time to live, and every write under a lease
//     checks, in the same statement, that it is still the chat's current
//     one, so a holder whose lease expired writes nothing.
//   - IDs and keys are stored as bytea and compare byte for byte.
//
// # Tables
//
// In the schema named by Options.Schema (default "crmbridge"); account is
// the first column of every primary key:
//
//	schema_version    the migration step applied
//	leases            (account, channel, chat_id) → fence, expires, waiting:
//	                  the chat's current lease; fence comes from the
//	                  sequence "fence"
//	clients           (account, channel, chat_id) → contact, deal,
//	                  responsible, claimed_by, turn, fetched_ns
//	messages          (account, channel, chat_id, kind, id) → done, outcome,
//	                  first_at: the journal of processed events, indexed by
//	                  (account, first_at) for purges
//	claims            (account, channel, chat_id) → offered (bytea[]),
//	                  claimed_by, offered_at; a released claim is deleted
//	rotation_pools    (account, pool) → seq
//	rotation_members  (account, pool, user_id) → last_served, seen, credit,
//	                  open
//	rotation_holds    (account, pool, key) → user_id
//	queue             (account, channel, chat_id) → since_ns, seq (from the
//	                  sequence "queue_seq"), indexed by (account, channel,
//	                  since_ns, seq)
//	escalations       (account, channel, chat_id) → since_ns, done, due_ns,
//	                  indexed by (account, due_ns, channel, chat_id)
//	streaks           (account, channel, chat_id) → opener, started_ns, task
//	receipts          (account, key) → provider_id, stored_at, indexed by
//	                  (account, stored_at) for purges
//	tokens            (account) → access_token, refresh_token, expiry_ns,
//	                  base_url, version, locked_until_ns, lock_expires
//	                  (by the database's clock), lock_owner (the owner
//	                  lock_expires was set for), owner
//
// The tokens table holds OAuth tokens in clear: grant access to the
// schema as to a secret.
//
// # Retention
//
// Journal records and receipts are deleted by age with the Purge methods
// of [Account] and [Receipts]: each deletes at most a given number of the
// oldest rows in one statement, skipping rows that an event is writing
// at that moment rather than waiting for them. Call them in a loop, per
// account, from a maintenance goroutine. Released claims, freed holds,
// removed queue entries and stopped watches are deleted at once; leases
// are deleted by Unlock (the row of a holder that died stays, expired,
// until the chat's next Lock reuses it).
//
// # Errors
//
// Invalid arguments give the error each interface documents
// (routing.ErrInvalid, tasks.ErrInvalid, channel.ErrInvalid, …). Database
// failures are wrapped with the operation's name; once the context is
// done, every error also matches ctx.Err(). Open's errors match
// [ErrSchema] or [ErrNewerSchema], or are an [*OptionError].
//
// # Testing
//
// The tests run the conformance suites that the in-memory stores pass
// (routingtest, enginetest, taskstest, wazzuptest, amocrmtest) against a
// real server named by the CRMBRIDGE_PG_DSN environment variable, and
// skip without it:
//
//	CRMBRIDGE_PG_DSN='postgres://user:pass@127.0.0.1:5432/db?sslmode=disable' go test ./...
//
// They create the schema crmbridge_test there and write rows under random
// account IDs. Without a server at hand, run them from this directory as
//
//	bash ../../.ci/postgres.sh go test ./...
//
// which starts a throwaway server (installing PostgreSQL from Debian's
// packages if needed) and stops it afterwards. The tests include several
// engines sharing one database (events with duplicates delivered to
// random instances, an instance stopped mid-event, every instance
// restarted), and token refresh locks passed between this release and
// the one before it, whose statements they run verbatim, as during an
// upgrade; CRMBRIDGE_LONG=1 makes the first of these about ten times
// longer. Benchmarks compare each store, and a whole inbound event, with
// the in-memory stores:
//
//	bash ../../.ci/postgres.sh go test -run '^$' -bench . -benchtime 2s
package pgstore
