package enginetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/engine/enginetest"
)

// memoryBackend gives each account its own MemoryState.
func memoryBackend(wrap func(*engine.MemoryState) engine.State) func(t *testing.T) enginetest.Backend {
	return func(t *testing.T) enginetest.Backend {
		var mu sync.Mutex
		accounts := map[string]engine.State{}
		return func(account string) engine.State {
			mu.Lock()
			defer mu.Unlock()
			if s, ok := accounts[account]; ok {
				return s
			}
			s := wrap(&engine.MemoryState{})
			accounts[account] = s
			return s
		}
	}
}

func TestMemoryState(t *testing.T) {
	t.Parallel()
	enginetest.TestState(t, memoryBackend(func(m *engine.MemoryState) engine.State { return m }))
}

// Broken states: each breaks one clause; the suite must fail naming it.

// noFencing keeps client records beside the MemoryState, ignoring leases.
type noFencing struct {
	*engine.MemoryState
	mu      *sync.Mutex
	clients map[channel.Chat]engine.ClientRecord
}

func (s noFencing) PutClient(ctx context.Context, l engine.Lease, r engine.ClientRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[l.Chat] = r
	return nil
}

func (s noFencing) Client(ctx context.Context, chat channel.Chat) (engine.ClientRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return engine.ClientRecord{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.clients[chat]
	return r, ok, nil
}

// noExclusion grants a lease on a held chat at once, without a fence.
type noExclusion struct{ *engine.MemoryState }

func (s noExclusion) Lock(ctx context.Context, chat channel.Chat, ttl time.Duration) (engine.Lease, error) {
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	l, err := s.MemoryState.Lock(short, chat, ttl)
	if err != nil && ctx.Err() == nil {
		return engine.Lease{Chat: chat, Expires: time.Now().Add(ttl)}, nil
	}
	return l, err
}

var broken = map[string]struct {
	backend func(t *testing.T) enginetest.Backend
	clause  string
}{
	"fencing": {memoryBackend(func(m *engine.MemoryState) engine.State {
		return noFencing{m, &sync.Mutex{}, map[channel.Chat]engine.ClientRecord{}}
	}), "PutClient under an expired lease"},
	"exclusion": {memoryBackend(func(m *engine.MemoryState) engine.State { return noExclusion{m} }), "must wait until it is released"},
	"accounts": {func(t *testing.T) enginetest.Backend {
		m := &engine.MemoryState{}
		return func(string) engine.State { return m } // every account shares one state
	}, "must not block the textually same chat of another account"},
}

func TestSuiteFailsOnBrokenStates(t *testing.T) {
	if name := os.Getenv("ENGINETEST_BROKEN"); name != "" {
		enginetest.TestState(t, broken[name].backend)
		return
	}
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestSuiteFailsOnBrokenStates$", "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), "ENGINETEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken state (%s); output:\n%s", name, out)
			}
			if !strings.Contains(string(out), b.clause) {
				t.Errorf("the suite failed on %s without naming the clause %q; output:\n%s", name, b.clause, out)
			}
		})
	}
}
