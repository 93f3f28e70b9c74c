package amocrmtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm/amocrm"
)

// TestTokenStore runs the conformance suite of [amocrm.TokenStore].
// newBackend is called once per subtest and returns a fresh backend as a
// function giving the store of a named account on it; register teardown
// with t.Cleanup inside it. Run it under -race: subtests call the store
// from many goroutines.
//
// The suite checks: an empty store loads as version 0; Save is a
// compare-and-swap on the version, atomic under concurrent callers
// (exactly one of them wins each version) and releases the refresh lock;
// Lock is exclusive per version until it expires, may be extended by its
// owner and is refused on a stale version or on an empty store; Unlock
// releases only its owner's lock; every field of a pair survives a round
// trip; a done context fails every method with its error and changes
// nothing; and two accounts on one backend never see or change each
// other's record or lock. Each failure message names the clause broken.
func TestTokenStore(t *testing.T, newBackend func(t *testing.T) func(account string) amocrm.TokenStore) {
	t.Helper()
	for _, tc := range tokenStoreSuite {
		t.Run(tc.name, func(t *testing.T) {
			backend := newBackend(t)
			if backend == nil {
				t.Fatal("amocrmtest: newBackend returned nil")
			}
			tc.run(t, backend)
		})
	}
}

// suiteNow is the suite's clock: times are whole seconds so that stores
// keeping coarser precision than nanoseconds still compare equal.
var suiteNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func pair(n int) amocrm.TokenPair {
	return amocrm.TokenPair{
		AccessToken:  fmt.Sprintf("access-%d-%s", n, strings.Repeat("x", 900)),
		RefreshToken: fmt.Sprintf("refresh-%d-%s", n, strings.Repeat("y", 700)),
		Expiry:       suiteNow.Add(time.Duration(n) * time.Hour),
		BaseURL:      fmt.Sprintf("https://account%d.amocrm.ru", n),
	}
}

func samePair(a, b amocrm.TokenPair) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken && a.Expiry.Equal(b.Expiry) && a.BaseURL == b.BaseURL
}

func mustLoad(t *testing.T, s amocrm.TokenStore) amocrm.TokenRecord {
	t.Helper()
	rec, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return rec
}

func mustSave(t *testing.T, s amocrm.TokenStore, prev int64, p amocrm.TokenPair) amocrm.TokenRecord {
	t.Helper()
	rec, err := s.Save(context.Background(), prev, p)
	if err != nil {
		t.Fatalf("Save(prev=%d): %v", prev, err)
	}
	return rec
}

func lock(t *testing.T, s amocrm.TokenStore, v int64, owner string, now time.Time) bool {
	t.Helper()
	ok, err := s.Lock(context.Background(), v, owner, now, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("Lock(v=%d, %s): %v", v, owner, err)
	}
	return ok
}

var tokenStoreSuite = []struct {
	name string
	run  func(t *testing.T, backend func(string) amocrm.TokenStore)
}{
	{"EmptyStore", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		s := backend("acme")
		rec := mustLoad(t, s)
		if rec.Version != 0 || rec.Pair != (amocrm.TokenPair{}) {
			t.Errorf("Load on an empty store must return version 0 and a zero pair; got version %d, %v", rec.Version, rec.Pair)
		}
		if lock(t, s, 0, "a", suiteNow) {
			t.Errorf("Lock on an empty store (version 0) must be refused: there is nothing to refresh")
		}
		if err := s.Unlock(context.Background(), 0, "a"); err != nil {
			t.Errorf("Unlock of a lock nobody holds must not fail; got %v", err)
		}
	}},
	{"SaveIsCompareAndSwap", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		s := backend("acme")
		rec := mustSave(t, s, 0, pair(1))
		if rec.Version != 1 || !samePair(rec.Pair, pair(1)) {
			t.Errorf("Save(0, p) on an empty store must return version 1 holding p; got version %d, %v", rec.Version, rec.Pair)
		}
		if got := mustLoad(t, s); got.Version != 1 || !samePair(got.Pair, pair(1)) {
			t.Errorf("Load after Save must return the saved pair with every field (tokens, expiry, base URL) as version 1; got version %d, %v", got.Version, got.Pair)
		}
		if _, err := s.Save(context.Background(), 0, pair(2)); !errors.Is(err, amocrm.ErrTokenConflict) {
			t.Errorf("Save with a stale version must fail with an error matching amocrm.ErrTokenConflict; got %v", err)
		}
		if _, err := s.Save(context.Background(), 5, pair(2)); !errors.Is(err, amocrm.ErrTokenConflict) {
			t.Errorf("Save with a version never stored must fail with an error matching amocrm.ErrTokenConflict; got %v", err)
		}
		if got := mustLoad(t, s); got.Version != 1 || !samePair(got.Pair, pair(1)) {
			t.Errorf("a refused Save must change nothing; got version %d, %v", got.Version, got.Pair)
		}
		if rec := mustSave(t, s, 1, pair(2)); rec.Version != 2 || !samePair(rec.Pair, pair(2)) {
			t.Errorf("Save(1, p) must store p as version 2; got version %d, %v", rec.Version, rec.Pair)
		}
		zero := amocrm.TokenPair{AccessToken: "a", RefreshToken: "r"}
		mustSave(t, s, 2, zero)
		if got := mustLoad(t, s); !got.Pair.Expiry.IsZero() || got.Pair.BaseURL != "" {
			t.Errorf("a zero Expiry and an empty BaseURL must load as zero and empty; got %v", got.Pair)
		}
	}},
	{"LockIsExclusive", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		s := backend("acme")
		v := mustSave(t, s, 0, pair(1)).Version
		if !lock(t, s, v, "a", suiteNow) {
			t.Fatalf("Lock on the stored version with no lock held must be granted")
		}
		if got := mustLoad(t, s); !got.LockedUntil.Equal(suiteNow.Add(time.Minute)) {
			t.Errorf("Load must report the lock's expiry %v; got %v", suiteNow.Add(time.Minute), got.LockedUntil)
		}
		if lock(t, s, v, "b", suiteNow.Add(30*time.Second)) {
			t.Errorf("Lock by another owner while the lock is held and unexpired must be refused")
		}
		if !lock(t, s, v, "a", suiteNow.Add(30*time.Second)) {
			t.Errorf("the owner of a lock must be able to extend it")
		}
		if lock(t, s, v+1, "c", suiteNow.Add(time.Hour)) {
			t.Errorf("Lock on a version that is not stored must be refused")
		}
		if !lock(t, s, v, "b", suiteNow.Add(2*time.Minute)) {
			t.Fatalf("Lock by another owner once the lock expired must be granted")
		}
		if err := s.Unlock(context.Background(), v, "a"); err != nil {
			t.Errorf("Unlock of a lock taken over by another owner must not fail; got %v", err)
		}
		if lock(t, s, v, "c", suiteNow.Add(2*time.Minute)) {
			t.Errorf("Unlock by a former owner must not release the current owner's lock")
		}
		if err := s.Unlock(context.Background(), v, "b"); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		if !lock(t, s, v, "c", suiteNow.Add(2*time.Minute)) {
			t.Errorf("after Unlock by its owner the lock must be free")
		}
		next := mustSave(t, s, v, pair(2))
		if next.LockedUntil.After(suiteNow.Add(2 * time.Minute)) {
			t.Errorf("Save must release the refresh lock; the new record is locked until %v", next.LockedUntil)
		}
		if !lock(t, s, next.Version, "d", suiteNow.Add(2*time.Minute)) {
			t.Errorf("after Save the new version must be lockable by anyone")
		}
		if lock(t, s, v, "c", suiteNow.Add(2*time.Minute)) {
			t.Errorf("Lock on a superseded version must be refused")
		}
	}},
	{"OneRefreshPerVersion", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		// Many processes see the same expired pair: each round exactly one
		// wins the lock, saves, and the others see the new version.
		s := backend("acme")
		mustSave(t, s, 0, pair(0))
		const workers, rounds = 24, 8
		var mu sync.Mutex
		savedBy := map[int64][]int{}
		var conflicts, errs []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				ctx := context.Background()
				owner := fmt.Sprintf("owner-%d", w)
				for {
					rec, err := s.Load(ctx)
					if err != nil {
						mu.Lock()
						errs = append(errs, err.Error())
						mu.Unlock()
						return
					}
					if rec.Version > rounds {
						return
					}
					ok, err := s.Lock(ctx, rec.Version, owner, suiteNow, suiteNow.Add(time.Hour))
					if err != nil || !ok {
						if err != nil {
							mu.Lock()
							errs = append(errs, err.Error())
							mu.Unlock()
							return
						}
						continue
					}
					_, err = s.Save(ctx, rec.Version, pair(int(rec.Version)))
					mu.Lock()
					if err != nil {
						conflicts = append(conflicts, fmt.Sprintf("%s on version %d: %v", owner, rec.Version, err))
					} else {
						savedBy[rec.Version] = append(savedBy[rec.Version], w)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("store errors under concurrency: %v", errs[:min(3, len(errs))])
		}
		if len(conflicts) > 0 {
			t.Errorf("a caller holding the lock of a version must be the only one able to save it; Save failed: %v", conflicts[:min(3, len(conflicts))])
		}
		for v := int64(1); v <= rounds; v++ {
			if n := len(savedBy[v]); n != 1 {
				t.Errorf("version %d was saved by %d lock holders (%v); exactly one may refresh a version", v, n, savedBy[v])
			}
		}
	}},
	{"ConcurrentSaveOneWinner", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		s := backend("acme")
		v := mustSave(t, s, 0, pair(1)).Version
		const n = 32
		var wins, conflicts, other int
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				_, err := s.Save(context.Background(), v, pair(100+i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, amocrm.ErrTokenConflict):
					conflicts++
				default:
					other++
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 || conflicts != n-1 || other != 0 {
			t.Errorf("of %d concurrent Saves on one version exactly one must win and the rest fail with ErrTokenConflict; got %d wins, %d conflicts, %d other errors", n, wins, conflicts, other)
		}
		if got := mustLoad(t, s); got.Version != v+1 {
			t.Errorf("after the concurrent Saves the version must be %d; got %d", v+1, got.Version)
		}
	}},
	{"CanceledContext", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		s := backend("acme")
		v := mustSave(t, s, 0, pair(1)).Version
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Load(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Load with a canceled context must fail with an error matching context.Canceled; got %v", err)
		}
		if _, err := s.Save(ctx, v, pair(2)); !errors.Is(err, context.Canceled) {
			t.Errorf("Save with a canceled context must fail with an error matching context.Canceled; got %v", err)
		}
		if ok, err := s.Lock(ctx, v, "a", suiteNow, suiteNow.Add(time.Minute)); ok || !errors.Is(err, context.Canceled) {
			t.Errorf("Lock with a canceled context must fail with an error matching context.Canceled and grant nothing; got %v, %v", ok, err)
		}
		if got := mustLoad(t, s); got.Version != v || !samePair(got.Pair, pair(1)) || got.LockedUntil.After(suiteNow) {
			t.Errorf("calls with a canceled context must change nothing; got version %d, %v, locked until %v", got.Version, got.Pair, got.LockedUntil)
		}
		if !lock(t, s, v, "b", suiteNow) {
			t.Fatalf("Lock: refused")
		}
		if err := s.Unlock(ctx, v, "b"); !errors.Is(err, context.Canceled) {
			t.Errorf("Unlock with a canceled context must fail with an error matching context.Canceled; got %v", err)
		}
		if lock(t, s, v, "c", suiteNow) {
			t.Errorf("Unlock with a canceled context must not release the lock")
		}
	}},
	{"AccountIsolation", func(t *testing.T, backend func(string) amocrm.TokenStore) {
		a, b := backend("acme"), backend("beta")
		mustSave(t, a, 0, pair(1))
		if got := mustLoad(t, b); got.Version != 0 {
			t.Errorf("a Save in account acme must not be visible in account beta; beta loads version %d", got.Version)
		}
		mustSave(t, b, 0, pair(2))
		if !lock(t, a, 1, "same-owner", suiteNow) {
			t.Fatalf("Lock in acme: refused")
		}
		if !lock(t, b, 1, "other", suiteNow) {
			t.Errorf("a lock held in account acme must not block the same version in account beta")
		}
		if err := a.Unlock(context.Background(), 1, "other"); err != nil {
			t.Fatal(err)
		}
		if lock(t, b, 1, "third", suiteNow) {
			t.Errorf("Unlock in account acme must not release account beta's lock")
		}
		mustSave(t, a, 1, pair(3))
		if got := mustLoad(t, b); got.Version != 1 || !samePair(got.Pair, pair(2)) {
			t.Errorf("Saves in account acme must not change account beta; beta holds version %d, %v", got.Version, got.Pair)
		}
		if got := mustLoad(t, a); got.Version != 2 || !samePair(got.Pair, pair(3)) {
			t.Errorf("account acme must hold its own pair as version 2; got version %d, %v", got.Version, got.Pair)
		}
		if again := backend("acme"); mustLoad(t, again).Version != 2 {
			t.Errorf("the store of an account asked for again on the same backend must see that account's record")
		}
	}},
}
