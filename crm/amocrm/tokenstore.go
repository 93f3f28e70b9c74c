package amocrm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// TokenRecord is what a [TokenStore] holds for one account: the current
// OAuth pair, its version and the refresh lock.
type TokenRecord struct {
	// Pair is the current pair. Zero when Version is 0.
	Pair TokenPair
	// Version is 0 while nothing is stored and grows by one with every
	// successful Save.
	Version int64
	// LockedUntil is when the refresh lock of this version expires; zero
	// or past: nobody holds it.
	LockedUntil time.Time
}

// Format implements fmt.Formatter: every verb prints the record with its
// tokens redacted.
func (r TokenRecord) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "amocrm.TokenRecord{Pair: %s, Version: %d, LockedUntil: %s}", r.Pair.String(), r.Version, r.LockedUntil.UTC().Format(time.RFC3339))
}

// ErrTokenConflict is returned by [TokenStore.Save] when the stored
// version is no longer the one the caller read: another process saved a
// pair first.
var ErrTokenConflict = errors.New("amocrm: token store: version conflict")

// TokenStore keeps one account's OAuth pair for every process of an
// integration. amoCRM refresh tokens are single-use: when two processes
// refresh with the same one, the second is refused ("Token has been
// revoked") or revokes the first one's result. A store shared by all
// processes of an account lets exactly one of them refresh: [OAuth] takes
// the refresh lock of the version it read (Lock), refreshes, and saves the
// new pair only if the version is still the one it locked (Save, a
// compare-and-swap), which also releases the lock; the other processes
// wait for the new version and use it.
//
// Each method is one atomic step (one SQL statement in a database
// store). Methods must be safe for concurrent use, return an error
// matching ctx.Err() without any effect once ctx is done, and never
// touch another account's record: a store value is scoped to one account.
// Package amocrmtest exports a conformance suite (TestTokenStore).
type TokenStore interface {
	// Load returns the stored record; Version 0 and a zero Pair when
	// nothing is stored yet (not an error).
	Load(ctx context.Context) (TokenRecord, error)
	// Save stores p as version prev+1 if the stored version is prev (0:
	// nothing stored yet) and releases the refresh lock. Otherwise it
	// changes nothing and returns an error matching ErrTokenConflict. It
	// returns the new record.
	Save(ctx context.Context, prev int64, p TokenPair) (TokenRecord, error)
	// Lock grants owner the refresh lock of version v until until, if v is
	// the stored version (not 0: there is nothing to refresh) and no other
	// owner holds an unexpired lock on it (one whose LockedUntil is after
	// now); the same owner may extend its own lock. It reports whether the
	// lock was granted. A refused lock (stale version, held by another) is
	// false and a nil error.
	//
	// A store shared by hosts on several machines may judge expiry by its
	// own clock instead, taking from the caller only the lock's length
	// (until - now), so that hosts whose clocks disagree by more than a
	// lock cannot both refresh; it still reports the caller's until as
	// LockedUntil. The conformance suite moves its clock without real
	// time passing, so such a store's tests let the suite drive its clock.
	Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error)
	// Unlock releases owner's lock on version v. Releasing a lock one does
	// not hold (expired and taken by another owner, or a stale version)
	// changes nothing and is not an error.
	Unlock(ctx context.Context, v int64, owner string) error
}

// MemoryStore is an in-memory TokenStore for tests and single-process
// hosts that accept re-authorizing after a restart. Its zero value is an
// empty store. Safe for concurrent use.
type MemoryStore struct {
	mu    sync.Mutex
	rec   TokenRecord
	owner string
}

var _ TokenStore = (*MemoryStore)(nil)

// NewMemoryStore returns a store holding p as version 1, or an empty
// store when p is the zero pair.
func NewMemoryStore(p TokenPair) *MemoryStore {
	m := &MemoryStore{}
	if p != (TokenPair{}) {
		m.rec = TokenRecord{Pair: p, Version: 1}
	}
	return m
}

// Load implements TokenStore.
func (m *MemoryStore) Load(ctx context.Context) (TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return TokenRecord{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec, nil
}

// Save implements TokenStore.
func (m *MemoryStore) Save(ctx context.Context, prev int64, p TokenPair) (TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return TokenRecord{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rec.Version != prev {
		return TokenRecord{}, fmt.Errorf("%w: stored version %d, expected %d", ErrTokenConflict, m.rec.Version, prev)
	}
	m.rec = TokenRecord{Pair: p, Version: prev + 1}
	m.owner = ""
	return m.rec, nil
}

// Lock implements TokenStore.
func (m *MemoryStore) Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v == 0 || m.rec.Version != v || (m.owner != owner && m.rec.LockedUntil.After(now)) {
		return false, nil
	}
	m.rec.LockedUntil, m.owner = until, owner
	return true, nil
}

// Unlock implements TokenStore.
func (m *MemoryStore) Unlock(ctx context.Context, v int64, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rec.Version == v && m.owner == owner {
		m.rec.LockedUntil, m.owner = time.Time{}, ""
	}
	return nil
}

// Format implements fmt.Formatter: the tokens are redacted in every verb.
func (m *MemoryStore) Format(f fmt.State, verb rune) {
	m.mu.Lock()
	rec := m.rec
	m.mu.Unlock()
	fmt.Fprintf(f, "&amocrm.MemoryStore{%v}", rec)
}
