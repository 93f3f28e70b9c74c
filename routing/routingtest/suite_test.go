package routingtest_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/routingtest"
)

// memoryAccounts gives each account its own zero store value: in memory,
// tenancy is one value per account.
func memoryAccounts[S any](newStore func() S) func(*testing.T) func(string) S {
	return func(*testing.T) func(string) S {
		var mu sync.Mutex
		m := map[string]S{}
		return func(account string) S {
			mu.Lock()
			defer mu.Unlock()
			s, ok := m[account]
			if !ok {
				s = newStore()
				m[account] = s
			}
			return s
		}
	}
}

func TestMemoryClaims(t *testing.T) {
	routingtest.TestClaimStore(t, memoryAccounts(func() routing.ClaimStore { return &routing.MemoryClaims{} }))
}

func TestMemoryRotation(t *testing.T) {
	routingtest.TestRotationStore(t, memoryAccounts(func() routing.RotationStore { return &routing.MemoryRotation{} }))
}

func TestMemoryStoreDeprecated(t *testing.T) {
	//lint:ignore SA1019 the deprecated composite must keep passing
	routingtest.TestClaimStore(t, memoryAccounts(func() routing.ClaimStore { return routing.NewMemoryStore() }))
	//lint:ignore SA1019 the deprecated composite must keep passing
	routingtest.TestRotationStore(t, memoryAccounts(func() routing.RotationStore { return routing.NewMemoryStore() }))
}

// Broken stores: each breaks one clause, and the suite must notice.

// racyClaims checks the winner and writes it in two steps.
type racyClaims struct {
	routing.MemoryClaims
	mu     sync.Mutex
	winner map[channel.Chat]crm.UserID
}

func (r *racyClaims) Claim(ctx context.Context, chat channel.Chat, user crm.UserID) (routing.ClaimState, error) {
	st, found, err := r.Get(ctx, chat)
	if err != nil || !found || !st.OfferedTo(user) {
		return r.MemoryClaims.Claim(ctx, chat, user)
	}
	r.mu.Lock()
	w := r.winner[chat]
	r.mu.Unlock()
	if w != "" && w != user {
		return routing.ClaimState{}, &routing.ClaimedError{Chat: chat, Winner: w}
	}
	runtime.Gosched() // the window every check-then-act has
	r.mu.Lock()
	if r.winner == nil {
		r.winner = map[channel.Chat]crm.UserID{}
	}
	r.winner[chat] = user
	r.mu.Unlock()
	st.ClaimedBy = user
	return st, nil
}

func (r *racyClaims) Get(ctx context.Context, chat channel.Chat) (routing.ClaimState, bool, error) {
	st, found, err := r.MemoryClaims.Get(ctx, chat)
	r.mu.Lock()
	st.ClaimedBy = r.winner[chat]
	r.mu.Unlock()
	return st, found, err
}

func (r *racyClaims) Release(ctx context.Context, chat channel.Chat) error {
	r.mu.Lock()
	delete(r.winner, chat)
	r.mu.Unlock()
	return r.MemoryClaims.Release(ctx, chat)
}

// racyRotation reads the pool, chooses, then records the choice in a
// second step: two concurrent picks can choose from the same state.
type racyRotation struct{ routing.MemoryRotation }

func (r *racyRotation) Pick(ctx context.Context, pool, key string, eligible []crm.UserID, choose routing.Chooser) (routing.Turn, error) {
	ms, err := r.Members(ctx, pool, eligible)
	if err != nil || choose == nil {
		return r.MemoryRotation.Pick(ctx, pool, key, eligible, choose)
	}
	c := choose(routing.PoolState{Pool: pool, Members: ms})
	runtime.Gosched()
	return r.MemoryRotation.Pick(ctx, pool, key, eligible, func(p routing.PoolState) routing.Choice {
		if c.Index < 0 || c.Index >= len(ms) {
			return c
		}
		return routing.Choice{Index: slices.IndexFunc(p.Members, func(m routing.Member) bool { return m.User == ms[c.Index].User })}
	})
}

// oneAccount ignores the account: every account shares one store.
func oneAccount[S any](s S) func(*testing.T) func(string) S {
	return func(*testing.T) func(string) S { return func(string) S { return s } }
}

var brokenStores = map[string]struct {
	run      func(t *testing.T)
	wantFail string // the subtest that must fail
}{
	"racy-claims": {
		run: func(t *testing.T) {
			routingtest.TestClaimStore(t, memoryAccounts(func() routing.ClaimStore { return &racyClaims{} }))
		},
		wantFail: "64_concurrent_claims",
	},
	"shared-claims": {
		run: func(t *testing.T) {
			routingtest.TestClaimStore(t, func(t *testing.T) func(string) routing.ClaimStore {
				return oneAccount[routing.ClaimStore](&routing.MemoryClaims{})(t)
			})
		},
		wantFail: "accounts_on_one_backend_are_isolated",
	},
	"racy-rotation": {
		run: func(t *testing.T) {
			routingtest.TestRotationStore(t, memoryAccounts(func() routing.RotationStore { return &racyRotation{} }))
		},
		wantFail: "a_capacity_chooser_is_never_exceeded",
	},
	"shared-rotation": {
		run: func(t *testing.T) {
			routingtest.TestRotationStore(t, func(t *testing.T) func(string) routing.RotationStore {
				return oneAccount[routing.RotationStore](&routing.MemoryRotation{})(t)
			})
		},
		wantFail: "accounts_on_one_backend_are_isolated",
	},
}

// TestBrokenStore runs one suite against one broken store; it is run as a
// child process by TestSuitesFailOnBrokenStores, which expects it to fail.
func TestBrokenStore(t *testing.T) {
	name := os.Getenv("ROUTINGTEST_BROKEN")
	if name == "" {
		t.Skip("run as a child process by TestSuitesFailOnBrokenStores")
	}
	brokenStores[name].run(t)
}

func TestSuitesFailOnBrokenStores(t *testing.T) {
	if os.Getenv("ROUTINGTEST_BROKEN") != "" {
		t.Skip("child process")
	}
	for name, b := range brokenStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenStore$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "ROUTINGTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed the broken store %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenStore/"+b.wantFail) {
				t.Errorf("broken store %s: subtest %s did not fail; output:\n%s", name, b.wantFail, out)
			}
		})
	}
}
