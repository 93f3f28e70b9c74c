package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func usersToBytes(users []crm.UserID) [][]byte {
	b := make([][]byte, len(users))
	for i, u := range users {
		b[i] = []byte(u)
	}
	return b
}

func bytesToUsers(b [][]byte) []crm.UserID {
	u := make([]crm.UserID, len(b))
	for i, x := range b {
		u[i] = crm.UserID(x)
	}
	return u
}

// writeThenGet runs stmt (with the chat's key and then arg) and getClaim
// in one batch, which PostgreSQL runs as one transaction, and returns the
// statement's tag and the record the SELECT saw; found is false if the
// chat had no record by then.
func (a *Account) writeThenGet(ctx context.Context, op, stmt string, chat channel.Chat, arg any) (tag pgconn.CommandTag, st routing.ClaimState, found bool, err error) {
	args := []any{a.id, []byte(chat.Channel), []byte(chat.ChatID)}
	b := &pgx.Batch{}
	b.Queue(stmt, append(args, arg)...)
	b.Queue(a.db.q.getClaim, args...)
	res := a.db.pool.SendBatch(ctx, b)
	tag, err = res.Exec()
	var offered [][]byte
	var claimed []byte
	found = true
	if err == nil {
		err = res.QueryRow().Scan(&offered, &claimed)
		if errors.Is(err, pgx.ErrNoRows) {
			found, err = false, nil
		}
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return tag, routing.ClaimState{}, false, fail(ctx, op+" "+chat.String(), err)
	}
	if !found {
		return tag, routing.ClaimState{}, false, nil
	}
	return tag, routing.ClaimState{Chat: chat, Offered: bytesToUsers(offered), ClaimedBy: crm.UserID(claimed)}, true, nil
}

// Offer implements [routing.ClaimStore]. It is one batch, run as one
// transaction: an INSERT that does nothing if the chat has a record, then
// a SELECT of the record, which sees the first offer's.
func (a *Account) Offer(ctx context.Context, chat channel.Chat, users []crm.UserID) (routing.ClaimState, bool, error) {
	if err := ctx.Err(); err != nil {
		return routing.ClaimState{}, false, err
	}
	if err := checkChat("Offer", chat); err != nil {
		return routing.ClaimState{}, false, err
	}
	if len(users) == 0 {
		return routing.ClaimState{}, false, fmt.Errorf("pgstore: %w: offer of chat %s to nobody", routing.ErrInvalid, chat)
	}
	if slices.Contains(users, "") {
		return routing.ClaimState{}, false, fmt.Errorf("pgstore: %w: offer of chat %s to an empty user ID", routing.ErrInvalid, chat)
	}
	group := usersToBytes(dedup(users))
	for {
		tag, st, found, err := a.writeThenGet(ctx, "Offer", a.db.q.offer, chat, group)
		if err != nil {
			return routing.ClaimState{}, false, err
		}
		if found {
			return st, tag.RowsAffected() == 1, nil
		}
		// Released between the two statements: try again.
		if err := ctx.Err(); err != nil {
			return routing.ClaimState{}, false, err
		}
	}
}

// Claim implements [routing.ClaimStore]. It is one batch, run by
// PostgreSQL as one transaction: an UPDATE that sets the winner only if
// the record is unclaimed and user is offered it, then a SELECT of the
// record. Concurrent claims queue on the row's lock; each SELECT runs
// after its UPDATE and so sees the winner, which cannot change while the
// record exists. If the record was released and offered again between
// the two statements, Claim tries again.
func (a *Account) Claim(ctx context.Context, chat channel.Chat, user crm.UserID) (routing.ClaimState, error) {
	if user == "" {
		return routing.ClaimState{}, fmt.Errorf("pgstore: %w: claim of chat %s by an empty user ID", routing.ErrInvalid, chat)
	}
	for {
		if err := ctx.Err(); err != nil {
			return routing.ClaimState{}, err
		}
		_, st, found, err := a.writeThenGet(ctx, "Claim", a.db.q.claim, chat, []byte(user))
		if err != nil {
			return routing.ClaimState{}, err
		}
		switch {
		case !found:
			return routing.ClaimState{}, &routing.NotOfferedError{Chat: chat, User: user, NoOffer: true}
		case !st.OfferedTo(user):
			return routing.ClaimState{}, &routing.NotOfferedError{Chat: chat, User: user}
		case st.ClaimedBy == user:
			return st, nil
		case st.ClaimedBy != "":
			return routing.ClaimState{}, &routing.ClaimedError{Chat: chat, Winner: st.ClaimedBy}
		}
		// Unclaimed and offered to user: the record was replaced between
		// the two statements. Try again.
	}
}

// Widen implements [routing.ClaimStore]. It is one batch, run as one
// transaction: an UPDATE that appends the users not yet offered to an
// unclaimed record, then a SELECT of the record. If the record was
// released and offered again between the two without some of users,
// Widen tries again.
func (a *Account) Widen(ctx context.Context, chat channel.Chat, users []crm.UserID) (routing.ClaimState, error) {
	if slices.Contains(users, "") {
		return routing.ClaimState{}, fmt.Errorf("pgstore: %w: widening chat %s to an empty user ID", routing.ErrInvalid, chat)
	}
	users = dedup(users)
	for {
		if err := ctx.Err(); err != nil {
			return routing.ClaimState{}, err
		}
		_, st, found, err := a.writeThenGet(ctx, "Widen", a.db.q.widen, chat, usersToBytes(users))
		if err != nil {
			return routing.ClaimState{}, err
		}
		if !found {
			return routing.ClaimState{}, &routing.NotOfferedError{Chat: chat, NoOffer: true}
		}
		if st.Claimed() || !slices.ContainsFunc(users, func(u crm.UserID) bool { return !st.OfferedTo(u) }) {
			return st, nil
		}
	}
}

// Get implements [routing.ClaimStore].
func (a *Account) Get(ctx context.Context, chat channel.Chat) (routing.ClaimState, bool, error) {
	if err := ctx.Err(); err != nil {
		return routing.ClaimState{}, false, err
	}
	var offered [][]byte
	var claimed []byte
	err := a.db.pool.QueryRow(ctx, a.db.q.getClaim, a.id, []byte(chat.Channel), []byte(chat.ChatID)).Scan(&offered, &claimed)
	if errors.Is(err, pgx.ErrNoRows) {
		return routing.ClaimState{}, false, nil
	}
	if err != nil {
		return routing.ClaimState{}, false, fail(ctx, "Get "+chat.String(), err)
	}
	return routing.ClaimState{Chat: chat, Offered: bytesToUsers(offered), ClaimedBy: crm.UserID(claimed)}, true, nil
}

// Release implements [routing.ClaimStore]: one DELETE, so released
// claims leave nothing behind to purge.
func (a *Account) Release(ctx context.Context, chat channel.Chat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := a.db.pool.Exec(ctx, a.db.q.release, a.id, []byte(chat.Channel), []byte(chat.ChatID)); err != nil {
		return fail(ctx, "Release "+chat.String(), err)
	}
	return nil
}

// dedup drops duplicate users, order kept.
func dedup(users []crm.UserID) []crm.UserID {
	out := make([]crm.UserID, 0, len(users))
	seen := make(map[crm.UserID]bool, len(users))
	for _, u := range users {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// Pick implements [routing.RotationStore]. It is one transaction of two
// round trips: the first locks the pool's row (creating it), so picks and
// holds in one pool are serialized, and reads the key's holder and the
// eligible members' records; choose runs in Go; the second writes the
// pick (sequence, member records, hold) and commits. choose runs once.
func (a *Account) Pick(ctx context.Context, pool, key string, eligible []crm.UserID, choose routing.Chooser) (routing.Turn, error) {
	return a.pickOrMove(ctx, "Pick", pool, key, eligible, choose, false)
}

// Reassign implements [routing.RotationStore]. It is Pick's transaction:
// the key's hold is read, and locked, after the pool's row lock, so no
// other pick, hold or free in the pool runs between the read and the
// write; a holder among eligible ends it there (Repeat); otherwise the
// pick's write also moves the hold by an upsert and takes one off the
// previous holder's open count, in the same statement. A choice of
// nobody rolls the transaction back, leaving the hold where it was.
func (a *Account) Reassign(ctx context.Context, pool, key string, eligible []crm.UserID, choose routing.Chooser) (routing.Turn, error) {
	if key == "" {
		if err := ctx.Err(); err != nil {
			return routing.Turn{}, err
		}
		return routing.Turn{}, fmt.Errorf("pgstore: %w: reassign in pool %q with an empty key", routing.ErrInvalid, pool)
	}
	return a.pickOrMove(ctx, "Reassign", pool, key, eligible, choose, true)
}

// pickOrMove is Pick, or Reassign when move is set; op names it in
// errors.
func (a *Account) pickOrMove(ctx context.Context, op, pool, key string, eligible []crm.UserID, choose routing.Chooser, move bool) (routing.Turn, error) {
	if err := ctx.Err(); err != nil {
		return routing.Turn{}, err
	}
	if choose == nil {
		return routing.Turn{}, fmt.Errorf("pgstore: %w: %s in pool %q without a chooser", routing.ErrInvalid, strings.ToLower(op), pool)
	}
	if len(eligible) == 0 {
		return routing.Turn{}, fmt.Errorf("pgstore: %w in pool %q: empty eligible list", routing.ErrNoEligible, pool)
	}
	if slices.Contains(eligible, "") {
		return routing.Turn{}, fmt.Errorf("pgstore: %w: empty user ID among the eligible of pool %q", routing.ErrInvalid, pool)
	}
	users := dedup(eligible)
	unlock, err := a.db.pools.lock(ctx, a.poolKey(pool))
	if err != nil {
		return routing.Turn{}, err
	}
	defer unlock()
	conn, err := a.db.pool.Acquire(ctx)
	if err != nil {
		return routing.Turn{}, fail(ctx, fmt.Sprintf("%s in pool %q", op, pool), err)
	}
	// A connection released inside a transaction (after an error, say)
	// is closed by the pool, never reused: the transaction dies with it.
	defer conn.Release()
	turn, err := a.pick(ctx, conn, pool, key, users, choose, move)
	if err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		if errors.Is(err, routing.ErrInvalid) || errors.Is(err, routing.ErrNoEligible) {
			return routing.Turn{}, err
		}
		return routing.Turn{}, fail(ctx, fmt.Sprintf("%s in pool %q", op, pool), err)
	}
	return turn, nil
}

// pick runs Pick's (or, when move is set, Reassign's) transaction in two
// round trips on conn: BEGIN, the pool's lock and the reads; then the
// write and COMMIT.
func (a *Account) pick(ctx context.Context, conn *pgxpool.Conn, pool, key string, users []crm.UserID, choose routing.Chooser, move bool) (routing.Turn, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(a.db.q.lockPool, a.id, []byte(pool))
	if key != "" {
		holder := a.db.q.holder
		if move {
			holder = a.db.q.lockHolder
		}
		b.Queue(holder, a.id, []byte(pool), []byte(key))
	}
	b.Queue(a.db.q.members, a.id, []byte(pool), usersToBytes(users))
	res := conn.SendBatch(ctx, b)
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return routing.Turn{}, err
	}
	var seq int64
	if err := res.QueryRow().Scan(&seq); err != nil {
		return routing.Turn{}, err
	}
	var repeat *routing.Turn
	var from []byte // the holder a Reassign moves the key from
	if key != "" {
		var holder []byte
		var last, open int64
		err := res.QueryRow().Scan(&holder, &last, &open)
		switch {
		case err == nil && (!move || slices.Contains(users, crm.UserID(holder))):
			repeat = &routing.Turn{User: crm.UserID(holder), Seq: uint64(seq), Previous: uint64(last), Open: int(open), Repeat: true}
		case err == nil:
			from = holder
		case !errors.Is(err, pgx.ErrNoRows):
			return routing.Turn{}, err
		}
	}
	ms, err := scanMembers(res, len(users))
	if err != nil {
		return routing.Turn{}, err
	}
	if err := res.Close(); err != nil {
		return routing.Turn{}, err
	}
	if repeat != nil {
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return routing.Turn{}, err
		}
		return *repeat, nil
	}
	c := choose(routing.PoolState{Pool: pool, Seq: uint64(seq), Members: ms})
	switch {
	case c.Index < 0:
		return routing.Turn{}, fmt.Errorf("pgstore: %w in pool %q: the chooser picked nobody among %d", routing.ErrNoEligible, pool, len(ms))
	case c.Index >= len(ms):
		return routing.Turn{}, fmt.Errorf("pgstore: %w: chooser picked index %d of %d in pool %q", routing.ErrInvalid, c.Index, len(ms), pool)
	case c.Credits != nil && len(c.Credits) != len(ms):
		return routing.Turn{}, fmt.Errorf("pgstore: %w: chooser gave %d credits for %d members in pool %q", routing.ErrInvalid, len(c.Credits), len(ms), pool)
	}
	credits := c.Credits
	if credits == nil {
		credits = make([]int64, len(ms))
	}
	chosen := ms[c.Index]
	b = &pgx.Batch{}
	b.Queue(a.db.q.pick, a.id, []byte(pool), usersToBytes(users), []byte(chosen.User),
		key != "", credits, c.Credits != nil, []byte(key), from)
	b.Queue("COMMIT")
	res2 := conn.SendBatch(ctx, b)
	defer res2.Close()
	var open int64
	if err := res2.QueryRow().Scan(&seq, &open); err != nil {
		return routing.Turn{}, err
	}
	if _, err := res2.Exec(); err != nil {
		return routing.Turn{}, err
	}
	if err := res2.Close(); err != nil {
		return routing.Turn{}, err
	}
	return routing.Turn{User: chosen.User, Seq: uint64(seq), Previous: chosen.LastServed, Open: int(open), From: crm.UserID(from)}, nil
}

func scanMembers(res pgx.BatchResults, n int) ([]routing.Member, error) {
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ms := make([]routing.Member, 0, n)
	for rows.Next() {
		var u []byte
		var m routing.Member
		var last, seen, open int64
		if err := rows.Scan(&u, &last, &seen, &open, &m.Credit); err != nil {
			return nil, err
		}
		m.User, m.LastServed, m.Seen, m.Open = crm.UserID(u), uint64(last), uint64(seen), int(open)
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// Hold implements [routing.RotationStore]: one batch, run as one
// transaction, that locks the pool's row and moves the hold and the two
// members' open counts in one statement.
func (a *Account) Hold(ctx context.Context, pool, key string, user crm.UserID) (crm.UserID, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if key == "" || user == "" {
		return "", fmt.Errorf("pgstore: %w: hold in pool %q with an empty key or user ID", routing.ErrInvalid, pool)
	}
	prev, _, err := a.lockedHolder(ctx, "Hold", a.db.q.hold, pool, []byte(key), []byte(user))
	return prev, err
}

// Free implements [routing.RotationStore], like Hold: one transaction.
func (a *Account) Free(ctx context.Context, pool, key string) (crm.UserID, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	return a.lockedHolder(ctx, "Free", a.db.q.free, pool, []byte(key))
}

// lockedHolder runs q after locking the pool's row; q returns a holder or
// no row.
func (a *Account) lockedHolder(ctx context.Context, op, q, pool string, args ...any) (crm.UserID, bool, error) {
	unlock, err := a.db.pools.lock(ctx, a.poolKey(pool))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	b := &pgx.Batch{}
	b.Queue(a.db.q.lockPool, a.id, []byte(pool))
	b.Queue(q, append([]any{a.id, []byte(pool)}, args...)...)
	res := a.db.pool.SendBatch(ctx, b)
	var holder []byte
	found := true
	_, err = res.Exec()
	if err == nil {
		err = res.QueryRow().Scan(&holder)
		if errors.Is(err, pgx.ErrNoRows) {
			found, err = false, nil
		}
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fail(ctx, fmt.Sprintf("%s in pool %q", op, pool), err)
	}
	return crm.UserID(holder), found, nil
}

// Members implements [routing.RotationStore]: one SELECT, no lock.
func (a *Account) Members(ctx context.Context, pool string, users []crm.UserID) ([]routing.Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	users = dedup(users)
	b := &pgx.Batch{}
	b.Queue(a.db.q.members, a.id, []byte(pool), usersToBytes(users))
	res := a.db.pool.SendBatch(ctx, b)
	ms, err := scanMembers(res, len(users))
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fail(ctx, fmt.Sprintf("Members of pool %q", pool), err)
	}
	return ms, nil
}
