package routing

import (
	"context"

	"github.com/crmbridge/crmbridge/crm"
)

// Turn is one round-robin pick recorded by a [RotationStore].
type Turn struct {
	// User is the employee picked.
	User crm.UserID
	// Seq is the pick's number in its pool, 1 for the first pick ever.
	// It is the rotation position reported in explanations.
	Seq uint64
	// Previous is the Seq of User's previous pick in the pool; 0 if this
	// is their first.
	Previous uint64
}

// RotationStore keeps round-robin state: per pool, a sequence counter and
// each member's last-served sequence number. It is safe for concurrent use;
// Next is one atomic operation, across processes when the store is shared,
// and returns an error matching ctx.Err() once ctx is done. [MemoryStore]
// implements it.
//
// The state is the whole rotation: a new Distributor on the same store
// continues the same sequence (restarts, several instances).
//
// On PostgreSQL, Next is one transaction (or one plpgsql function) that
// locks the pool's row first, so picks in a pool are serialized:
//
//	INSERT INTO rotation_pools(pool, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING;
//	SELECT seq FROM rotation_pools WHERE pool = $1 FOR UPDATE;
//	SELECT u FROM unnest($2::text[]) u LEFT JOIN rotation_members m ON m.pool = $1 AND m.user_id = u
//	    ORDER BY coalesce(m.last_seq, 0), u COLLATE "C" LIMIT 1;
//	UPDATE rotation_pools SET seq = seq + 1 …; INSERT INTO rotation_members … ON CONFLICT DO UPDATE SET last_seq = …
type RotationStore interface {
	// Next picks, among eligible, the member served least recently in pool
	// (lowest last-served sequence number; never served counts as 0), ties
	// broken by the smaller user ID in byte order, and records the pick
	// with the pool's next sequence number. The order of eligible does not
	// matter and duplicates are harmless. Empty eligible: an error
	// matching ErrNoEligible; an empty user ID: an error matching
	// ErrInvalid.
	Next(ctx context.Context, pool string, eligible []crm.UserID) (Turn, error)
}
