package amocrmtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// memoryBackend gives each account its own MemoryStore.
func memoryBackend(t *testing.T) func(string) amocrm.TokenStore {
	var mu sync.Mutex
	stores := map[string]*amocrm.MemoryStore{}
	return func(account string) amocrm.TokenStore {
		mu.Lock()
		defer mu.Unlock()
		if stores[account] == nil {
			stores[account] = &amocrm.MemoryStore{}
		}
		return stores[account]
	}
}

func TestMemoryStorePassesTheSuite(t *testing.T) {
	amocrmtest.TestTokenStore(t, memoryBackend)
}

// brokenStores each break one clause of the contract; clause is the
// subtest that must catch it.
var brokenStores = map[string]struct {
	clause string
	wrap   func(amocrm.TokenStore) amocrm.TokenStore
	shared bool // one record for every account
}{
	"one-record-for-all-accounts": {"AccountIsolation", func(s amocrm.TokenStore) amocrm.TokenStore { return s }, true},
	"blind-save":                  {"ConcurrentSaveOneWinner", func(s amocrm.TokenStore) amocrm.TokenStore { return blindSave{s} }, false},
	"lock-ignores-owner":          {"LockIsExclusive", func(s amocrm.TokenStore) amocrm.TokenStore { return anyLock{s} }, false},
	"ignores-context":             {"CanceledContext", func(s amocrm.TokenStore) amocrm.TokenStore { return noCtx{s} }, false},
	"keeps-lock-on-save":          {"LockIsExclusive", func(s amocrm.TokenStore) amocrm.TokenStore { return stickyLock{TokenStore: s} }, false},
}

// blindSave overwrites without comparing versions.
type blindSave struct{ amocrm.TokenStore }

func (b blindSave) Save(ctx context.Context, prev int64, p amocrm.TokenPair) (amocrm.TokenRecord, error) {
	cur, err := b.Load(ctx)
	if err != nil {
		return amocrm.TokenRecord{}, err
	}
	_ = prev
	return b.TokenStore.Save(ctx, cur.Version, p)
}

// anyLock grants every Lock on the stored version.
type anyLock struct{ amocrm.TokenStore }

func (a anyLock) Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error) {
	rec, err := a.Load(ctx)
	return err == nil && rec.Version == v, err
}

// noCtx calls through with a context that is never done.
type noCtx struct{ amocrm.TokenStore }

func (n noCtx) Load(ctx context.Context) (amocrm.TokenRecord, error) {
	return n.TokenStore.Load(context.WithoutCancel(ctx))
}
func (n noCtx) Save(ctx context.Context, prev int64, p amocrm.TokenPair) (amocrm.TokenRecord, error) {
	return n.TokenStore.Save(context.WithoutCancel(ctx), prev, p)
}
func (n noCtx) Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error) {
	return n.TokenStore.Lock(context.WithoutCancel(ctx), v, owner, now, until)
}
func (n noCtx) Unlock(ctx context.Context, v int64, owner string) error {
	return n.TokenStore.Unlock(context.WithoutCancel(ctx), v, owner)
}

// stickyLock remembers locks itself and forgets to release them on Save.
type stickyLock struct {
	amocrm.TokenStore
	mu    *sync.Mutex
	owner *string
	until *time.Time
}

func (s stickyLock) Lock(ctx context.Context, v int64, owner string, now, until time.Time) (bool, error) {
	if s.mu == nil {
		return false, errors.New("stickyLock not initialised")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.Load(ctx)
	if err != nil || rec.Version != v || v == 0 || (*s.owner != owner && s.until.After(now)) {
		return false, err
	}
	*s.owner, *s.until = owner, until
	return true, nil
}

func (s stickyLock) Unlock(ctx context.Context, v int64, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *s.owner == owner {
		*s.owner, *s.until = "", time.Time{}
	}
	return nil
}

// TestSuiteFailsOnBrokenStores runs the suite in a child process against
// each broken store and checks that the clause it breaks fails.
func TestSuiteFailsOnBrokenStores(t *testing.T) {
	if os.Getenv("AMOCRMTEST_BROKEN_STORE") != "" {
		t.Skip("child process")
	}
	for name, b := range brokenStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenStoreChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "AMOCRMTEST_BROKEN_STORE="+name)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the suite must fail against store %q; err = %v, output:\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenStoreChild/"+b.clause) {
				t.Errorf("the suite must report the broken clause %s for store %q; output:\n%s", b.clause, name, out)
			}
		})
	}
}

// TestBrokenStoreChild is the child side of TestSuiteFailsOnBrokenStores.
func TestBrokenStoreChild(t *testing.T) {
	b, ok := brokenStores[os.Getenv("AMOCRMTEST_BROKEN_STORE")]
	if !ok {
		t.Skip("only run as a child of TestSuiteFailsOnBrokenStores")
	}
	amocrmtest.TestTokenStore(t, func(t *testing.T) func(string) amocrm.TokenStore {
		inner := memoryBackend(t)
		var mu sync.Mutex
		wrapped := map[string]amocrm.TokenStore{}
		return func(account string) amocrm.TokenStore {
			mu.Lock()
			defer mu.Unlock()
			if b.shared {
				account = "everyone"
			}
			if wrapped[account] == nil {
				s := b.wrap(inner(account))
				if sl, ok := s.(stickyLock); ok {
					sl.mu, sl.owner, sl.until = &sync.Mutex{}, new(string), new(time.Time)
					s = sl
				}
				wrapped[account] = s
			}
			return wrapped[account]
		}
	})
}
