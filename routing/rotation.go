package routing

import (
	"context"

	"github.com/crmbridge/crmbridge/crm"
)

// Member is one employee's recorded state in a rotation pool (a channel),
// as a [RotationStore] holds it and a [Chooser] sees it. A member never
// recorded has the zero state.
type Member struct {
	// User is the employee (their CRM user ID) whose state this is.
	User crm.UserID
	// LastServed is the pool sequence number of the member's last pick;
	// 0 if never picked.
	LastServed uint64
	// Seen is the pool sequence number of the last pick at which the
	// member was among the eligible; 0 if never. A member with Seen below
	// the pool's Seq missed at least one pick (was not eligible then).
	Seen uint64
	// Open is the number of clients the member holds in the pool (see
	// [RotationStore.Hold]): what a capacity limit counts.
	Open int
	// Credit is the chooser's own per-member number, kept by the store
	// and changed only through [Choice.Credits] (the weighted chooser
	// keeps its smooth-weighted-round-robin credit there). 0 initially.
	Credit int64
}

// PoolState is a rotation pool's state for the members eligible for one
// pick, read inside the store's atomic operation.
type PoolState struct {
	// Pool names the pool (the channel ID).
	Pool string
	// Seq is the number of picks recorded in the pool so far.
	Seq uint64
	// Members are the eligible, in the caller's order, without duplicates.
	// Read-only.
	Members []Member
}

// Choice is a [Chooser]'s answer.
type Choice struct {
	// Index is the position in PoolState.Members of the member picked, or
	// -1 for nobody (nothing is recorded).
	Index int
	// Credits, when not nil, are the new Member.Credit values of
	// PoolState.Members, in the same order; nil leaves them unchanged.
	Credits []int64
}

// Chooser is the fairness rule of a pick: given the pool's state for the
// eligible members it says whom to pick. A Chooser must be a pure,
// deterministic function of its argument: a store may call it more than
// once per pick (a retried transaction) and only the last answer counts.
// It must not retain the PoolState.
//
// [LeastRecentlyServed] is the default rule; the Distributor composes it
// with capacity limits and weights (see [ChannelSettings]).
type Chooser func(PoolState) Choice

// LeastRecentlyServed picks the member with the lowest LastServed (never
// served counts as 0), ties broken by the smaller user ID in byte order.
// It is the equal-shares rule (see [Distributor]). Nobody to pick: Index
// -1.
func LeastRecentlyServed(p PoolState) Choice {
	best := -1
	for i := range p.Members {
		if best < 0 || lessRecentlyServed(p.Members[i], p.Members[best]) {
			best = i
		}
	}
	return Choice{Index: best}
}

// lessRecentlyServed orders members by LastServed, then user ID bytes.
func lessRecentlyServed(a, b Member) bool {
	if a.LastServed != b.LastServed {
		return a.LastServed < b.LastServed
	}
	return a.User < b.User
}

// Turn is one pick recorded by a [RotationStore].
type Turn struct {
	// User is the employee picked.
	User crm.UserID
	// Seq is the pick's number in its pool, 1 for the first pick ever.
	// It is the rotation position reported in explanations. For a
	// Repeat, the pool's current Seq.
	Seq uint64
	// Previous is the Seq of User's previous pick in the pool; 0 if this
	// is their first.
	Previous uint64
	// Open is User's open count in the pool after the pick.
	Open int
	// Repeat is true when the key was already held: the pick returned its
	// holder and recorded nothing.
	Repeat bool
	// From is, for [RotationStore.Reassign], the member whose hold of the
	// key moved to User; "" when the key was not held or for Pick.
	From crm.UserID
}

// RotationStore keeps the state of round-robin pools (one per channel): a
// sequence counter, each member's [Member] record, and holds (which
// member holds which client key, the open counts capacity limits use).
// The fairness rule is not the store's: Pick calls a [Chooser] given by
// the caller inside its atomic operation, so a store implements only the
// atomic update.
//
// Every method is one atomic operation, safe for concurrent use, across
// processes when the store is shared, and returns an error matching
// ctx.Err() once ctx is done (checked before any change). A new
// Distributor on the same store continues the same sequence (restarts,
// several instances). [MemoryRotation] implements it.
//
// On PostgreSQL, Pick is one transaction that locks the pool's row first,
// so picks in a pool are serialized and the chooser sees what it changes;
// each member's open count is a column kept in step with the holds:
//
//	INSERT INTO rotation_pools(pool, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING;
//	SELECT seq FROM rotation_pools WHERE pool = $1 FOR UPDATE;
//	-- key already held: SELECT user_id FROM rotation_holds WHERE pool = $1 AND key = $3 → Repeat
//	--   (Reassign: … FOR UPDATE, and a holder outside eligible is moved below)
//	SELECT u, coalesce(m.last_served,0), coalesce(m.seen,0), coalesce(m.open,0), coalesce(m.credit,0)
//	  FROM unnest($2::text[]) u LEFT JOIN rotation_members m ON m.pool = $1 AND m.user_id = u;
//	-- call the Chooser in Go, then:
//	UPDATE rotation_pools SET seq = seq + 1 …;
//	INSERT INTO rotation_members … ON CONFLICT DO UPDATE SET seen = …, credit = …, last_served = …, open = open + 1;
//	INSERT INTO rotation_holds(pool, key, user_id) … ON CONFLICT (pool, key) DO UPDATE SET user_id = …;
//	UPDATE rotation_members SET open = open - 1 WHERE user_id = <previous holder>;  -- Reassign's move
//	COMMIT
//
// Hold and Free are single statements on rotation_holds and the open
// counts; Members is the SELECT above without the lock.
type RotationStore interface {
	// Pick records one pick in pool among eligible (order kept,
	// duplicates dropped). In one atomic operation it reads the pool's
	// state for the eligible, calls choose, and — unless the choice is
	// nobody — advances the pool's Seq by one, sets the chosen member's
	// LastServed to the new Seq, sets Seen of every eligible member to the
	// new Seq, stores Choice.Credits when not nil, and, when key is not
	// empty, records that the chosen member holds key (Open + 1).
	//
	// A key already held in pool (by anyone) makes Pick return its holder
	// with Repeat set and change nothing: a pick keyed by the client is
	// idempotent. Empty eligible or a choice of nobody: an error matching
	// ErrNoEligible, nothing recorded. An empty user ID, a nil choose or
	// a choice out of range: an error matching ErrInvalid, nothing
	// recorded.
	Pick(ctx context.Context, pool, key string, eligible []crm.UserID, choose Chooser) (Turn, error)

	// Reassign is Pick for a key that must end up held by one of
	// eligible: a client whose holder left, went away or is escalated
	// from. In one atomic operation: a key held by a member of eligible
	// returns that holder with Repeat set and changes nothing; otherwise
	// the pick is made and recorded as Pick records it, and the key's
	// hold moves to the member picked (the previous holder's Open - 1,
	// named in Turn.From) or is created. A choice of nobody (or empty
	// eligible): an error matching ErrNoEligible, and nothing changes —
	// the hold stays with its holder, so a capacity count never drops
	// for an instant a concurrent pick could use. An empty key, an empty
	// user ID, a nil choose or a choice out of range: an error matching
	// ErrInvalid, nothing recorded.
	//
	// On PostgreSQL it is Pick's transaction with the hold read FOR
	// UPDATE after the pool's row lock and written by an upsert.
	Reassign(ctx context.Context, pool, key string, eligible []crm.UserID, choose Chooser) (Turn, error)

	// Hold records that user holds key in pool (Open + 1), without a
	// pick: a client who reached the member another way (a claim). A key
	// held by another member moves to user (their Open - 1); held by user
	// already, nothing changes. It returns the previous holder ("" if
	// none). Empty key or user: an error matching ErrInvalid.
	Hold(ctx context.Context, pool, key string, user crm.UserID) (previous crm.UserID, err error)

	// Free ends the hold of key in pool (its holder's Open - 1) and
	// returns the holder; ok is false when the key was not held (freeing
	// twice is harmless).
	Free(ctx context.Context, pool, key string) (holder crm.UserID, ok bool, err error)

	// Members returns the recorded state of users in pool, in the given
	// order (duplicates dropped), without changing anything: a snapshot
	// for decisions that need no atomicity (an offer's capacity filter).
	Members(ctx context.Context, pool string, users []crm.UserID) ([]Member, error)
}
