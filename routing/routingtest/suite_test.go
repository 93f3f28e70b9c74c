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
	"time"

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

func TestMemoryQueue(t *testing.T) {
	routingtest.TestQueueStore(t, memoryAccounts(func() routing.QueueStore { return &routing.MemoryQueue{} }))
}

func TestMemoryEscalations(t *testing.T) {
	routingtest.TestEscalationStore(t, memoryAccounts(func() routing.EscalationStore { return &routing.MemoryEscalations{} }))
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

// splitReassign reassigns in two steps, freeing the hold and picking:
// a pick of nobody loses the hold.
type splitReassign struct{ routing.MemoryRotation }

func (r *splitReassign) Reassign(ctx context.Context, pool, key string, eligible []crm.UserID, choose routing.Chooser) (routing.Turn, error) {
	if key != "" {
		if _, _, err := r.Free(ctx, pool, key); err != nil {
			return routing.Turn{}, err
		}
	}
	return r.Pick(ctx, pool, key, eligible, choose)
}

// reofferClaims widens by withdrawing the offer and offering again,
// which loses a claim made in between.
type reofferClaims struct{ routing.MemoryClaims }

func (r *reofferClaims) Widen(ctx context.Context, chat channel.Chat, users []crm.UserID) (routing.ClaimState, error) {
	st, found, err := r.Get(ctx, chat)
	if err != nil || !found || st.Claimed() {
		return r.MemoryClaims.Widen(ctx, chat, users)
	}
	runtime.Gosched()
	if err := r.Release(ctx, chat); err != nil {
		return routing.ClaimState{}, err
	}
	st, _, err = r.Offer(ctx, chat, append(slices.Clone(st.Offered), users...))
	return st, err
}

// racyQueue removes an entry after an unlocked look.
type racyQueue struct{ routing.MemoryQueue }

func (r *racyQueue) Remove(ctx context.Context, chat channel.Chat) (bool, error) {
	es, err := r.Peek(ctx, chat.Channel, 1<<20)
	if err != nil || !slices.ContainsFunc(es, func(e routing.QueueEntry) bool { return e.Chat == chat }) {
		return false, err
	}
	runtime.Gosched()
	_, err = r.MemoryQueue.Remove(ctx, chat)
	return err == nil, err
}

// lifoQueue serves the newest first.
type lifoQueue struct{ routing.MemoryQueue }

func (l *lifoQueue) Peek(ctx context.Context, ch channel.ID, limit int) ([]routing.QueueEntry, error) {
	es, err := l.MemoryQueue.Peek(ctx, ch, 1<<20)
	slices.Reverse(es)
	return es[:min(limit, len(es))], err
}

// blindEscalations advances whatever the step.
type blindEscalations struct{ routing.MemoryEscalations }

func (b *blindEscalations) Advance(ctx context.Context, from routing.Watch, due time.Time) error {
	ws, err := b.DueBy(ctx, time.Unix(1<<40, 0), 1<<20)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if w.Chat == from.Chat {
			return b.MemoryEscalations.Advance(ctx, w, due)
		}
	}
	return routing.ErrStaleWatch
}

// stepOnlyEscalations compares only Done, as stores did before a stopped
// and restarted watch was told apart from the one read.
type stepOnlyEscalations struct{ routing.MemoryEscalations }

func (b *stepOnlyEscalations) Advance(ctx context.Context, from routing.Watch, due time.Time) error {
	ws, err := b.DueBy(ctx, time.Unix(1<<40, 0), 1<<20)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if w.Chat == from.Chat && w.Done == from.Done {
			return b.MemoryEscalations.Advance(ctx, w, due)
		}
	}
	return routing.ErrStaleWatch
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
	"split-reassign": {
		run: func(t *testing.T) {
			routingtest.TestRotationStore(t, memoryAccounts(func() routing.RotationStore { return &splitReassign{} }))
		},
		wantFail: "Reassign_keeps_an_eligible_holder",
	},
	"shared-rotation": {
		run: func(t *testing.T) {
			routingtest.TestRotationStore(t, func(t *testing.T) func(string) routing.RotationStore {
				return oneAccount[routing.RotationStore](&routing.MemoryRotation{})(t)
			})
		},
		wantFail: "accounts_on_one_backend_are_isolated",
	},
	"reoffer-claims": {
		run: func(t *testing.T) {
			routingtest.TestClaimStore(t, memoryAccounts(func() routing.ClaimStore { return &reofferClaims{} }))
		},
		wantFail: "Widen_racing_claims",
	},
	"racy-queue": {
		run: func(t *testing.T) {
			routingtest.TestQueueStore(t, memoryAccounts(func() routing.QueueStore { return &racyQueue{} }))
		},
		wantFail: "64_goroutines",
	},
	"lifo-queue": {
		run: func(t *testing.T) {
			routingtest.TestQueueStore(t, memoryAccounts(func() routing.QueueStore { return &lifoQueue{} }))
		},
		wantFail: "oldest_first",
	},
	"blind-escalations": {
		run: func(t *testing.T) {
			routingtest.TestEscalationStore(t, memoryAccounts(func() routing.EscalationStore { return &blindEscalations{} }))
		},
		wantFail: "Advance_is_a_compare-and-swap",
	},
	"step-only-escalations": {
		run: func(t *testing.T) {
			routingtest.TestEscalationStore(t, memoryAccounts(func() routing.EscalationStore { return &stepOnlyEscalations{} }))
		},
		wantFail: "Advance_of_a_copy_read_before_a_Stop",
	},
	"shared-escalations": {
		run: func(t *testing.T) {
			routingtest.TestEscalationStore(t, func(t *testing.T) func(string) routing.EscalationStore {
				return oneAccount[routing.EscalationStore](&routing.MemoryEscalations{})(t)
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
