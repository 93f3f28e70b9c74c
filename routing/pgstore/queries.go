package pgstore

import (
	"strings"
)

// queries holds every statement, with the schema filled in. Each one that
// changes state is one statement, or one batch that PostgreSQL runs as one
// implicit transaction; none reads a row and then writes it from Go.
//
// What the statements rely on, from PostgreSQL's documentation
// (https://www.postgresql.org/docs/15/transaction-iso.html, Read
// Committed): each statement sees the rows committed when it starts,
// including the earlier statements of its own transaction; an UPDATE,
// DELETE or SELECT … FOR UPDATE/SHARE meeting a row locked by another
// transaction waits for it, then re-checks its WHERE clause on the row's
// new version; an INSERT … ON CONFLICT waits the same way for a
// conflicting insert. FOR UPDATE SKIP LOCKED skips locked rows instead of
// waiting (https://www.postgresql.org/docs/15/sql-select.html, The
// Locking Clause). pgx runs the queries of one Batch "in an implicit
// transaction unless explicit transaction control statements are
// executed" (pgx v5 Conn.SendBatch).
type queries struct {
	lock, unlock                  string
	client, putClient             string
	message, putMessage, purgeMsg string

	offer, claim, widen, getClaim, release      string
	enqueue, getQueued, peek, dequeue           string
	startWatch, getWatch, dueBy, advance        string
	stopWatch                                   string
	lockPool, holder, members, pick, hold, free string
	lockHolder                                  string

	openStreak, getStreak, setTask, closeStreak string

	storeReceipt, loadReceipt, purgeReceipts string

	loadToken, saveFirstToken, saveToken, lockToken, unlockToken string
}

func newQueries(schema string) queries {
	s := func(q string) string { return strings.ReplaceAll(q, "{s}", schema) }
	// holder reads the key's holder with the holder's record.
	const holder = `SELECT h.user_id, coalesce(m.last_served, 0), coalesce(m.open, 0) FROM {s}.rotation_holds h
LEFT JOIN {s}.rotation_members m ON m.account = h.account AND m.pool = h.pool AND m.user_id = h.user_id
WHERE h.account = $1 AND h.pool = $2 AND h.key = $3`
	// live is the lease check of every fenced write: the lease row must
	// still carry the writer's fence and be unexpired. FOR SHARE holds
	// off a takeover of the lease (an UPDATE of the row) until the write
	// commits, so no write lands after a newer lease was granted.
	const live = `WITH live AS (SELECT 1 FROM {s}.leases
	WHERE account = $1 AND channel = $2 AND chat_id = $3 AND fence = $4 AND expires > now() FOR SHARE) `
	return queries{
		// lock grants a lease if none is live, else marks the row as
		// waited for; it returns the row's fence and expiry, the fence it
		// offered (equal to the first when granted) and the server's now.
		lock: s(`WITH f AS (SELECT nextval('{s}.fence') AS v)
INSERT INTO {s}.leases AS l (account, channel, chat_id, fence, expires)
SELECT $1, $2, $3, f.v, now() + $4::interval FROM f
ON CONFLICT (account, channel, chat_id) DO UPDATE SET
	fence = CASE WHEN l.expires <= now() THEN EXCLUDED.fence ELSE l.fence END,
	expires = CASE WHEN l.expires <= now() THEN EXCLUDED.expires ELSE l.expires END,
	waiting = CASE WHEN l.expires <= now() THEN l.waiting ELSE true END
RETURNING l.fence, l.expires, (SELECT v FROM f), now()`),
		unlock: s(`DELETE FROM {s}.leases WHERE account = $1 AND channel = $2 AND chat_id = $3 AND fence = $4
RETURNING expires > now(), waiting`),

		client: s(`SELECT contact, deal, responsible, claimed_by, turn, fetched_ns FROM {s}.clients
WHERE account = $1 AND channel = $2 AND chat_id = $3`),
		putClient: s(live + `INSERT INTO {s}.clients AS c (account, channel, chat_id, contact, deal, responsible, claimed_by, turn, fetched_ns)
SELECT $1, $2, $3, $5, $6, $7, $8, $9, $10 FROM live
ON CONFLICT (account, channel, chat_id) DO UPDATE SET contact = EXCLUDED.contact, deal = EXCLUDED.deal,
	responsible = EXCLUDED.responsible, claimed_by = EXCLUDED.claimed_by, turn = EXCLUDED.turn, fetched_ns = EXCLUDED.fetched_ns`),

		message: s(`SELECT done, outcome FROM {s}.messages
WHERE account = $1 AND channel = $2 AND chat_id = $3 AND kind = $4 AND id = $5 AND first_at > now() - $6::interval`),
		putMessage: s(live + `INSERT INTO {s}.messages AS m (account, channel, chat_id, kind, id, done, outcome, first_at)
SELECT $1, $2, $3, $5, $6, $7, $8, now() FROM live
ON CONFLICT (account, channel, chat_id, kind, id) DO UPDATE SET done = EXCLUDED.done, outcome = EXCLUDED.outcome,
	first_at = CASE WHEN m.first_at > now() - $9::interval THEN m.first_at ELSE EXCLUDED.first_at END`),
		// purgeMsg deletes the oldest rows of the account, skipping rows an
		// event is writing right now rather than waiting for them.
		purgeMsg: s(`DELETE FROM {s}.messages WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {s}.messages WHERE account = $1 AND first_at < $2
	ORDER BY first_at LIMIT $3 FOR UPDATE SKIP LOCKED))`),

		offer: s(`INSERT INTO {s}.claims (account, channel, chat_id, offered) VALUES ($1, $2, $3, $4)
ON CONFLICT (account, channel, chat_id) DO NOTHING`),
		claim: s(`UPDATE {s}.claims SET claimed_by = $4
WHERE account = $1 AND channel = $2 AND chat_id = $3 AND claimed_by IS NULL AND $4 = ANY(offered)`),
		// widen appends the new users ($4, without duplicates) that are
		// not offered yet, in order, to an unclaimed record.
		widen: s(`UPDATE {s}.claims AS c SET offered = c.offered || ARRAY(
	SELECT x.u FROM unnest($4::bytea[]) WITH ORDINALITY AS x(u, o) WHERE x.u <> ALL(c.offered) ORDER BY x.o)
WHERE account = $1 AND channel = $2 AND chat_id = $3 AND claimed_by IS NULL
	AND EXISTS (SELECT 1 FROM unnest($4::bytea[]) AS x(u) WHERE x.u <> ALL(c.offered))`),
		getClaim: s(`SELECT offered, claimed_by FROM {s}.claims WHERE account = $1 AND channel = $2 AND chat_id = $3`),
		release:  s(`DELETE FROM {s}.claims WHERE account = $1 AND channel = $2 AND chat_id = $3`),

		// lockPool creates the pool's row or locks it: every change to
		// a pool starts with it, so changes to one pool are serialized and
		// each later statement of the transaction reads every earlier
		// change.
		lockPool: s(`INSERT INTO {s}.rotation_pools AS p (account, pool, seq) VALUES ($1, $2, 0)
ON CONFLICT (account, pool) DO UPDATE SET seq = p.seq RETURNING seq`),
		holder: s(holder),
		// lockHolder is holder for Reassign, which may move the hold: it
		// also locks the hold's row until the transaction ends.
		lockHolder: s(holder + ` FOR UPDATE OF h`),
		members: s(`SELECT u.u, coalesce(m.last_served, 0), coalesce(m.seen, 0), coalesce(m.open, 0), coalesce(m.credit, 0)
FROM unnest($3::bytea[]) WITH ORDINALITY AS u(u, ord)
LEFT JOIN {s}.rotation_members m ON m.account = $1 AND m.pool = $2 AND m.user_id = u.u
ORDER BY u.ord`),
		// pick records a choice: $3 the eligible, $4 the chosen, $5
		// whether key $8 is held by the pick, $6 the credits and $7
		// whether they are to be stored; $9 is the key's holder a
		// Reassign moves it from (never one of $3), NULL otherwise. The
		// hold is an upsert, so that it moves to $4, and $9's open count
		// drops by one: each row is changed by one part of the statement.
		pick: s(`WITH p AS (UPDATE {s}.rotation_pools SET seq = seq + 1 WHERE account = $1 AND pool = $2 RETURNING seq),
m AS (
	INSERT INTO {s}.rotation_members AS m (account, pool, user_id, last_served, seen, credit, open)
	SELECT $1, $2, e.u, CASE WHEN e.u = $4 THEN p.seq ELSE 0 END, p.seq, e.c, CASE WHEN e.u = $4 AND $5 THEN 1 ELSE 0 END
	FROM unnest($3::bytea[], $6::bigint[]) AS e(u, c), p
	ON CONFLICT (account, pool, user_id) DO UPDATE SET
		seen = EXCLUDED.seen,
		credit = CASE WHEN $7 THEN EXCLUDED.credit ELSE m.credit END,
		last_served = CASE WHEN m.user_id = $4 THEN EXCLUDED.last_served ELSE m.last_served END,
		open = m.open + EXCLUDED.open
	RETURNING user_id, open),
h AS (
	INSERT INTO {s}.rotation_holds (account, pool, key, user_id) SELECT $1, $2, $8, $4 WHERE $5
	ON CONFLICT (account, pool, key) DO UPDATE SET user_id = EXCLUDED.user_id),
dec AS (
	UPDATE {s}.rotation_members SET open = open - 1
	WHERE account = $1 AND pool = $2 AND user_id = $9::bytea AND $5)
SELECT p.seq, m.open FROM p, m WHERE m.user_id = $4`),
		hold: s(`WITH old AS (SELECT user_id FROM {s}.rotation_holds WHERE account = $1 AND pool = $2 AND key = $3),
up AS (
	INSERT INTO {s}.rotation_holds (account, pool, key, user_id) VALUES ($1, $2, $3, $4)
	ON CONFLICT (account, pool, key) DO UPDATE SET user_id = EXCLUDED.user_id),
dec AS (
	UPDATE {s}.rotation_members SET open = open - 1
	WHERE account = $1 AND pool = $2 AND user_id IN (SELECT user_id FROM old WHERE user_id <> $4)),
inc AS (
	INSERT INTO {s}.rotation_members AS m (account, pool, user_id, last_served, seen, credit, open)
	SELECT $1, $2, $4, 0, 0, 0, 1 WHERE NOT EXISTS (SELECT 1 FROM old WHERE user_id = $4)
	ON CONFLICT (account, pool, user_id) DO UPDATE SET open = m.open + 1)
SELECT user_id FROM old`),
		free: s(`WITH d AS (DELETE FROM {s}.rotation_holds WHERE account = $1 AND pool = $2 AND key = $3 RETURNING user_id),
dec AS (
	UPDATE {s}.rotation_members SET open = open - 1
	WHERE account = $1 AND pool = $2 AND user_id IN (SELECT user_id FROM d))
SELECT user_id FROM d`),

		openStreak: s(`INSERT INTO {s}.streaks (account, channel, chat_id, opener, started_ns, task) VALUES ($1, $2, $3, $4, $5, '')
ON CONFLICT (account, channel, chat_id) DO NOTHING`),
		getStreak: s(`SELECT opener, started_ns, task FROM {s}.streaks WHERE account = $1 AND channel = $2 AND chat_id = $3`),
		setTask:   s(`UPDATE {s}.streaks SET task = $5 WHERE account = $1 AND channel = $2 AND chat_id = $3 AND opener = $4`),
		closeStreak: s(`DELETE FROM {s}.streaks WHERE account = $1 AND channel = $2 AND chat_id = $3
RETURNING opener, started_ns, task`),

		storeReceipt: s(`INSERT INTO {s}.receipts (account, key, provider_id) VALUES ($1, $2, $3)
ON CONFLICT (account, key) DO NOTHING`),
		loadReceipt: s(`SELECT provider_id FROM {s}.receipts WHERE account = $1 AND key = $2`),
		purgeReceipts: s(`DELETE FROM {s}.receipts WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {s}.receipts WHERE account = $1 AND stored_at < $2
	ORDER BY stored_at LIMIT $3 FOR UPDATE SKIP LOCKED))`),

		enqueue: s(`INSERT INTO {s}.queue (account, channel, chat_id, since_ns) VALUES ($1, $2, $3, $4)
ON CONFLICT (account, channel, chat_id) DO NOTHING`),
		getQueued: s(`SELECT since_ns, seq FROM {s}.queue WHERE account = $1 AND channel = $2 AND chat_id = $3`),
		peek: s(`SELECT chat_id, since_ns, seq FROM {s}.queue WHERE account = $1 AND channel = $2
ORDER BY since_ns NULLS FIRST, seq LIMIT $3`),
		dequeue: s(`DELETE FROM {s}.queue WHERE account = $1 AND channel = $2 AND chat_id = $3`),

		startWatch: s(`INSERT INTO {s}.escalations (account, channel, chat_id, since_ns, done, due_ns) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (account, channel, chat_id) DO NOTHING`),
		getWatch: s(`SELECT since_ns, done, due_ns FROM {s}.escalations WHERE account = $1 AND channel = $2 AND chat_id = $3`),
		dueBy: s(`SELECT channel, chat_id, since_ns, done, due_ns FROM {s}.escalations WHERE account = $1 AND due_ns <= $2
ORDER BY due_ns, channel, chat_id LIMIT $3`),
		// advance moves the watch on from the copy ($4 since, NULL when
		// the watch had none; $5 done; $6 due) if the stored watch is
		// still that copy: to due $7, or, when $7 is NULL, deletes it.
		// One statement either way.
		advance: s(`WITH up AS (
	UPDATE {s}.escalations SET done = done + 1, due_ns = $7
	WHERE account = $1 AND channel = $2 AND chat_id = $3
		AND since_ns IS NOT DISTINCT FROM $4::bigint AND done = $5 AND due_ns = $6
		AND $7::bigint IS NOT NULL RETURNING 1),
del AS (
	DELETE FROM {s}.escalations
	WHERE account = $1 AND channel = $2 AND chat_id = $3
		AND since_ns IS NOT DISTINCT FROM $4::bigint AND done = $5 AND due_ns = $6
		AND $7::bigint IS NULL RETURNING 1)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM del)`),
		stopWatch: s(`DELETE FROM {s}.escalations WHERE account = $1 AND channel = $2 AND chat_id = $3`),

		loadToken: s(`SELECT access_token, refresh_token, expiry_ns, base_url, version, locked_until_ns FROM {s}.tokens
WHERE account = $1`),
		saveFirstToken: s(`INSERT INTO {s}.tokens (account, access_token, refresh_token, expiry_ns, base_url, version, owner)
VALUES ($1, $2, $3, $4, $5, 1, '') ON CONFLICT (account) DO NOTHING`),
		saveToken: s(`UPDATE {s}.tokens SET access_token = $2, refresh_token = $3, expiry_ns = $4, base_url = $5,
	version = version + 1, locked_until_ns = NULL, lock_expires = NULL, lock_owner = NULL, owner = ''
WHERE account = $1 AND version = $6`),
		// lockToken grants owner $3 the lock of version $2 for $5 (an
		// interval) from now by the database's clock, unless another
		// owner's lock is live; $4 is the caller's until, kept for Load.
		// $6 is added to the clock (0 outside tests). clock_timestamp()
		// is read when the row is updated, after any wait for a
		// concurrent statement on it.
		//
		// A lock this statement took (lock_owner is the row's owner) is
		// live until lock_expires by the database's clock. Any other
		// lock was taken by a release before schema version 3, whose
		// Lock, Unlock and Save leave lock_expires and lock_owner as an
		// earlier lock set them: it is live, as that release judges
		// it, while its until is after the caller's now, $7.
		lockToken: s(`UPDATE {s}.tokens SET locked_until_ns = $4, owner = $3, lock_owner = $3,
	lock_expires = clock_timestamp() + $6::interval + $5::interval
WHERE account = $1 AND version = $2
	AND (owner = $3 OR CASE WHEN lock_owner = owner AND lock_expires IS NOT NULL
		THEN lock_expires <= clock_timestamp() + $6::interval
		ELSE locked_until_ns IS NULL OR locked_until_ns <= $7 END)`),
		unlockToken: s(`UPDATE {s}.tokens SET locked_until_ns = NULL, lock_expires = NULL, lock_owner = NULL, owner = ''
WHERE account = $1 AND version = $2 AND owner = $3`),
	}
}
