package wazzuptest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

func TestMemoryReceiptsPassesTheSuite(t *testing.T) {
	t.Run("ZeroValue", func(t *testing.T) {
		wazzuptest.TestReceiptStore(t, func(*testing.T) wazzup.ReceiptStore { return new(wazzup.MemoryReceipts) })
	})
	t.Run("SharedSmall", func(t *testing.T) {
		shared := &wazzup.MemoryReceipts{Max: 64}
		wazzuptest.TestReceiptStore(t, func(*testing.T) wazzup.ReceiptStore { return shared })
	})
}

// brokenStores are stores each breaking one clause of the contract; the
// suite must fail on every one of them.
var brokenStores = map[string]struct {
	store func() wazzup.ReceiptStore
	// clause is a subtest that must fail, with a message naming the rule.
	clause, message string
}{
	"LastWriterWins": {func() wazzup.ReceiptStore { return &lastWriterWins{} },
		"FirstStoreWins", "want the first receipt"},
	"CheckThenAct": {func() wazzup.ReceiptStore { return newCheckThenAct() },
		"ConcurrentStoresOfOneKey", "want exactly 1 (Store must be atomic)"},
	"IgnoresContext": {func() wazzup.ReceiptStore { return &ignoresContext{} },
		"CanceledContext", "context.Canceled"},
	"AcceptsEmptyKey": {func() wazzup.ReceiptStore { return &acceptsEmptyKey{} },
		"InvalidArguments", "channel.ErrInvalid"},
}

// TestSuiteFailsOnBrokenStores runs the suite against each broken store
// in a child test process and checks that it fails there, on the clause
// the store breaks.
func TestSuiteFailsOnBrokenStores(t *testing.T) {
	if name := os.Getenv("WAZZUPTEST_BROKEN_STORE"); name != "" {
		t.Skip("running as a child")
	}
	for name, b := range brokenStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenStoreChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "WAZZUPTEST_BROKEN_STORE="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store breaking %s:\n%s", b.clause, out)
			}
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("running the child: %v", err)
			}
			text := string(out)
			if !strings.Contains(text, "--- FAIL: TestBrokenStoreChild/"+b.clause) {
				t.Errorf("the suite did not fail subtest %s:\n%s", b.clause, text)
			}
			if !strings.Contains(text, b.message) {
				t.Errorf("the failure does not say %q:\n%s", b.message, text)
			}
		})
	}
}

// TestBrokenStoreChild is the child's side of TestSuiteFailsOnBrokenStores.
func TestBrokenStoreChild(t *testing.T) {
	b, ok := brokenStores[os.Getenv("WAZZUPTEST_BROKEN_STORE")]
	if !ok {
		t.Skip("only run as a child of TestSuiteFailsOnBrokenStores")
	}
	wazzuptest.TestReceiptStore(t, func(*testing.T) wazzup.ReceiptStore { return b.store() })
}

// lastWriterWins overwrites: every Store reports stored.
type lastWriterWins struct {
	mu sync.Mutex
	m  map[string]channel.Receipt
}

func (s *lastWriterWins) Load(ctx context.Context, key string) (channel.Receipt, bool, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, false, err
	}
	if key == "" {
		return channel.Receipt{}, false, channel.ErrInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	return r, ok, nil
}

func (s *lastWriterWins) Store(ctx context.Context, key string, r channel.Receipt) (channel.Receipt, bool, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, false, err
	}
	if err := wazzup.CheckReceipt(key, r); err != nil {
		return channel.Receipt{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]channel.Receipt{}
	}
	s.m[key] = channel.Receipt{ProviderID: r.ProviderID}
	return s.m[key], true, nil
}

// checkThenAct loads, then stores, under two separate locks: correct
// alone, racy together. The gate makes the race certain: the first two
// Stores of a key both pass the check before either writes.
type checkThenAct struct {
	lastWriterWins
	gateMu sync.Mutex
	gates  map[string]*sync.WaitGroup
}

func newCheckThenAct() *checkThenAct { return &checkThenAct{gates: map[string]*sync.WaitGroup{}} }

func (s *checkThenAct) Store(ctx context.Context, key string, r channel.Receipt) (channel.Receipt, bool, error) {
	if err := wazzup.CheckReceipt(key, r); err != nil {
		return channel.Receipt{}, false, err
	}
	if strings.HasSuffix(key, "ConcurrentStoresOfOneKey/k") {
		s.gateMu.Lock()
		g := s.gates[key]
		if g == nil {
			g = new(sync.WaitGroup)
			g.Add(2)
			s.gates[key] = g
		}
		s.gateMu.Unlock()
		defer func() {
			s.gateMu.Lock()
			defer s.gateMu.Unlock()
			if s.gates[key] == g {
				s.gates[key] = nil
			}
		}()
		if kept, ok, err := s.Load(ctx, key); err != nil || ok {
			return kept, false, err
		}
		g.Done()
		g.Wait() // two Stores have both seen the key absent
		return s.lastWriterWins.Store(ctx, key, r)
	}
	if kept, ok, err := s.Load(ctx, key); err != nil || ok {
		return kept, false, err
	}
	return s.lastWriterWins.Store(ctx, key, r)
}

// ignoresContext is correct but never looks at ctx.
type ignoresContext struct{ wazzup.MemoryReceipts }

func (s *ignoresContext) Load(_ context.Context, key string) (channel.Receipt, bool, error) {
	return s.MemoryReceipts.Load(context.Background(), key)
}

func (s *ignoresContext) Store(_ context.Context, key string, r channel.Receipt) (channel.Receipt, bool, error) {
	return s.MemoryReceipts.Store(context.Background(), key, r)
}

// acceptsEmptyKey stores the empty key like any other.
type acceptsEmptyKey struct{ lastWriterWins }

func (s *acceptsEmptyKey) Load(ctx context.Context, key string) (channel.Receipt, bool, error) {
	return s.lastWriterWins.Load(ctx, key+"\x00")
}

func (s *acceptsEmptyKey) Store(ctx context.Context, key string, r channel.Receipt) (channel.Receipt, bool, error) {
	if kept, ok, err := s.Load(ctx, key); err != nil || ok {
		return kept, false, err
	}
	r.ProviderID += "-"
	return s.lastWriterWins.Store(ctx, key+"\x00", r)
}
