package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/jackc/pgx/v5"
)

// Tokens is one account's [amocrm.TokenStore]: one row of the tokens
// table, changed by single statements (a compare-and-swap on the version
// for Save, a conditional UPDATE for the refresh lock), so that of all the
// instances of a host exactly one refreshes a single-use refresh token.
//
// The refresh lock expires by the database server's clock, not by its
// callers': Lock takes from the caller only the lock's duration (until
// minus now, both read from the caller's clock, at least zero) and holds
// the lock for that long from the moment the database grants it, and
// whether another owner's lock is still live is judged by the database's
// clock too. So instances whose clocks disagree, even by more than the
// lock's duration, never hold the lock at once, and none of them holds it
// for longer than it asked. The LockedUntil that Load reports is the
// holder's until as its own clock gave it, kept exactly; it says nothing
// about the database's clock.
//
// During an upgrade from a release of this package that judged the lock
// by its callers' clocks (one that left the schema at version 2 or
// before), instances of that release and of this one share the row, and
// a lock passing between an instance of each is judged by the callers'
// clocks, as that release judges every lock: an instance of the earlier
// release takes a lock once the holder's until is not after its own now,
// and Lock here takes a lock granted by the earlier release on the same
// terms. Between the two releases, then, a lock holds off the other for
// its whole duration only if the other's clock is not ahead of the
// holder's; one whose clock is ahead by some time takes it that much
// early. A lock passing between two instances of this release is judged
// by the database's clock as above, and once no instance of the earlier
// release runs, so is every lock taken from then on. A lock taken by a
// build that stopped at schema version 3 is judged by its until, as the
// earlier release's are. An instance of an earlier release that starts
// after the upgrade migrated the schema refuses to run (ErrNewerSchema),
// so a rolling upgrade must not restart old instances.
//
// The row holds the tokens in clear: protect the table as a secret.
// Safe for concurrent use.
type Tokens struct{ a *Account }

var _ amocrm.TokenStore = Tokens{}

// Tokens returns the account's amoCRM OAuth token store.
func (a *Account) Tokens() Tokens { return Tokens{a} }

// Load implements [amocrm.TokenStore].
func (s Tokens) Load(ctx context.Context) (amocrm.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return amocrm.TokenRecord{}, err
	}
	var access, refresh, base []byte
	var expiry, locked *int64
	var r amocrm.TokenRecord
	err := s.a.db.pool.QueryRow(ctx, s.a.db.q.loadToken, s.a.id).Scan(&access, &refresh, &expiry, &base, &r.Version, &locked)
	if errors.Is(err, pgx.ErrNoRows) {
		return amocrm.TokenRecord{}, nil
	}
	if err != nil {
		return amocrm.TokenRecord{}, fail(ctx, "Load token", err)
	}
	r.Pair = amocrm.TokenPair{AccessToken: string(access), RefreshToken: string(refresh), Expiry: fromNanos(expiry), BaseURL: string(base)}
	r.LockedUntil = fromNanos(locked)
	return r, nil
}

// Save implements [amocrm.TokenStore]: one INSERT (first version) or one
// UPDATE … WHERE version = prev.
func (s Tokens) Save(ctx context.Context, prev int64, p amocrm.TokenPair) (amocrm.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return amocrm.TokenRecord{}, err
	}
	expiry, err := toNanos("Save token", "TokenPair.Expiry", p.Expiry)
	if err != nil {
		return amocrm.TokenRecord{}, err
	}
	args := []any{s.a.id, []byte(p.AccessToken), []byte(p.RefreshToken), expiry, []byte(p.BaseURL)}
	q := s.a.db.q.saveFirstToken
	if prev != 0 {
		q = s.a.db.q.saveToken
		args = append(args, prev)
	}
	tag, err := s.a.db.pool.Exec(ctx, q, args...)
	if err != nil {
		return amocrm.TokenRecord{}, fail(ctx, "Save token", err)
	}
	if tag.RowsAffected() == 0 {
		return amocrm.TokenRecord{}, fmt.Errorf("pgstore: Save token: %w: the stored version is not %d", amocrm.ErrTokenConflict, prev)
	}
	return amocrm.TokenRecord{Pair: p, Version: prev + 1}, nil
}

// Lock implements [amocrm.TokenStore]: one conditional UPDATE, judging
// expiry by the database's clock, or a lock of an earlier release by
// its until (see [Tokens]).
func (s Tokens) Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if v == 0 {
		return false, nil
	}
	nowNs, err := toNanos("Lock token", "now", now)
	if err != nil {
		return false, err
	}
	untilNs, err := toNanos("Lock token", "until", until)
	if err != nil {
		return false, err
	}
	d := max(until.Sub(now), 0)
	tag, err := s.a.db.pool.Exec(ctx, s.a.db.q.lockToken, s.a.id, v, []byte(owner), untilNs, d,
		time.Duration(s.a.db.tokenClock.Load()), nowNs)
	if err != nil {
		return false, fail(ctx, "Lock token", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Unlock implements [amocrm.TokenStore]: one conditional UPDATE.
func (s Tokens) Unlock(ctx context.Context, v int64, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.a.db.pool.Exec(ctx, s.a.db.q.unlockToken, s.a.id, v, []byte(owner)); err != nil {
		return fail(ctx, "Unlock token", err)
	}
	return nil
}
