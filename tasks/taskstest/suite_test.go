package taskstest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/tasks"
	"github.com/crmbridge/crmbridge/tasks/taskstest"
)

func memoryBackend(wrap func(*tasks.MemoryStore) tasks.Store) func(t *testing.T) taskstest.Backend {
	return func(t *testing.T) taskstest.Backend {
		var mu sync.Mutex
		accounts := map[string]tasks.Store{}
		return func(account string) tasks.Store {
			mu.Lock()
			defer mu.Unlock()
			if s, ok := accounts[account]; ok {
				return s
			}
			s := wrap(&tasks.MemoryStore{})
			accounts[account] = s
			return s
		}
	}
}

func TestMemoryStore(t *testing.T) {
	taskstest.TestStore(t, memoryBackend(func(m *tasks.MemoryStore) tasks.Store { return m }))
}

// racyOpen opens a new streak whatever is open: what a check-then-insert
// store does when its check and its insert interleave with another's.
type racyOpen struct{ *tasks.MemoryStore }

func (s racyOpen) Open(ctx context.Context, chat channel.Chat, opener string, started time.Time) (tasks.Streak, bool, error) {
	if _, _, err := s.MemoryStore.Close(ctx, chat); err != nil {
		return tasks.Streak{}, false, err
	}
	return s.MemoryStore.Open(ctx, chat, opener, started)
}

// anyOpener sets the task whoever opened the streak.
type anyOpener struct{ *tasks.MemoryStore }

func (s anyOpener) SetTask(ctx context.Context, chat channel.Chat, opener string, task crm.TaskID) error {
	st, found, err := s.Get(ctx, chat)
	if err != nil || !found {
		return s.MemoryStore.SetTask(ctx, chat, opener, task)
	}
	return s.MemoryStore.SetTask(ctx, chat, st.Opener, task)
}

var broken = map[string]struct {
	backend func(t *testing.T) taskstest.Backend
	clause  string
}{
	"racyopen":  {memoryBackend(func(m *tasks.MemoryStore) tasks.Store { return racyOpen{m} }), "exactly one must open the streak"},
	"anyopener": {memoryBackend(func(m *tasks.MemoryStore) tasks.Store { return anyOpener{m} }), "naming an opener other than the open streak's"},
	"accounts": {func(t *testing.T) taskstest.Backend {
		m := &tasks.MemoryStore{}
		return func(string) tasks.Store { return m }
	}, "must not be visible to another account"},
}

func TestSuiteFailsOnBrokenStores(t *testing.T) {
	if name := os.Getenv("TASKSTEST_BROKEN"); name != "" {
		taskstest.TestStore(t, broken[name].backend)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestSuiteFailsOnBrokenStores$", "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), "TASKSTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken store (%s); output:\n%s", name, out)
			}
			if !strings.Contains(string(out), b.clause) {
				t.Errorf("the suite failed on %s without naming the clause %q; output:\n%s", name, b.clause, out)
			}
		})
	}
}
