// Package taskstest holds the conformance suite of tasks.Store for any
// implementation (in memory, PostgreSQL, a host's own).
//
// # Testing
//
// Call TestStore from a test of the implementation, under -race:
//
//	func TestMyStore(t *testing.T) {
//		taskstest.TestStore(t, func(t *testing.T) taskstest.Backend {
//			db := newEmptyDatabase(t) // fresh per subtest
//			return func(account string) tasks.Store { return db.Account(account).Streaks() }
//		})
//	}
//
// Each failure names the clause of the contract that was broken.
package taskstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/tasks"
)

// Backend returns the Store of the named account on one backend, fresh for
// the subtest that called the factory. Calls with the same name return
// views of the same account's streaks.
type Backend func(account string) tasks.Store

// TestStore runs the conformance suite. newBackend is called once per
// subtest; register teardown with t.Cleanup inside it.
func TestStore(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			if b == nil {
				t.Fatal("taskstest: the factory returned a nil Backend")
			}
			c.run(t, b)
		})
	}
}

var (
	chatA = channel.Chat{Channel: "wa", ChatID: "79161234567"}
	chatB = channel.Chat{Channel: "tg", ChatID: "79161234567"}
	// started has whole seconds so that stores keeping microseconds or
	// seconds round-trip it exactly.
	started = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
)

type storeCase struct {
	name string
	run  func(t *testing.T, b Backend)
}

var cases = []storeCase{
	{"OpenOnce", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		const n = 64
		var wg sync.WaitGroup
		var mu sync.Mutex
		opened, openers := 0, map[string]int{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, ok, err := s.Open(ctx, chatA, fmt.Sprint("msg", i), started)
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					opened++
				}
				openers[st.Opener]++
			}()
		}
		wg.Wait()
		if opened != 1 {
			t.Errorf("among %d concurrent Opens of one chat exactly one must open the streak; %d did", n, opened)
		}
		if len(openers) != 1 {
			t.Errorf("every concurrent Open must return the one open streak; they returned %d different openers: %v", len(openers), openers)
		}
		st, found, err := s.Get(ctx, chatA)
		if err != nil || !found || openers[st.Opener] != n || st.Chat != chatA || !st.Started.Equal(started) {
			t.Errorf("Get must return the open streak with its chat, opener and start time; got %+v, %v, %v", st, found, err)
		}
	}},
	{"SetTaskAndClose", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		if _, found, err := s.Get(ctx, chatA); err != nil || found {
			t.Fatalf("Get of a chat without a streak must return found=false and a nil error; got %v, %v", found, err)
		}
		if _, found, err := s.Close(ctx, chatA); err != nil || found {
			t.Errorf("Close of a chat without a streak must return found=false and a nil error; got %v, %v", found, err)
		}
		if _, ok, err := s.Open(ctx, chatA, "m1", started); err != nil || !ok {
			t.Fatalf("Open of a chat without a streak must open one; got %v, %v", ok, err)
		}
		if err := s.SetTask(ctx, chatA, "other", "77"); !errors.Is(err, tasks.ErrStreakClosed) {
			t.Errorf("SetTask naming an opener other than the open streak's must fail with tasks.ErrStreakClosed; got %v", err)
		}
		if err := s.SetTask(ctx, chatA, "m1", "77"); err != nil {
			t.Fatalf("SetTask of the open streak: %v", err)
		}
		if st, _, _ := s.Get(ctx, chatA); st.Task != "77" {
			t.Errorf("Get after SetTask must return the task; got %+v", st)
		}
		if st, ok, err := s.Open(ctx, chatA, "m2", started.Add(time.Minute)); err != nil || ok || st.Opener != "m1" || st.Task != "77" {
			t.Errorf("Open while a streak is open must open nothing and return the open streak with its task; got %+v, %v, %v", st, ok, err)
		}
		st, found, err := s.Close(ctx, chatA)
		if err != nil || !found || st.Opener != "m1" || st.Task != crm.TaskID("77") {
			t.Errorf("Close must return the closed streak with its opener and task; got %+v, %v, %v", st, found, err)
		}
		if _, found, _ := s.Close(ctx, chatA); found {
			t.Errorf("a second Close must find no open streak")
		}
		if err := s.SetTask(ctx, chatA, "m1", "78"); !errors.Is(err, tasks.ErrStreakClosed) {
			t.Errorf("SetTask after the streak closed must fail with tasks.ErrStreakClosed; got %v", err)
		}
		if st, ok, err := s.Open(ctx, chatA, "m3", started.Add(time.Hour)); err != nil || !ok || st.Opener != "m3" || st.Task != "" {
			t.Errorf("Open after a Close must open a new streak without a task; got %+v, %v, %v", st, ok, err)
		}
	}},
	{"ChatsIndependent", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		if _, ok, _ := s.Open(ctx, chatA, "m1", started); !ok {
			t.Fatal("Open: not opened")
		}
		if _, ok, err := s.Open(ctx, chatB, "m1", started); err != nil || !ok {
			t.Errorf("a streak in one chat must not stop another chat (same chat ID, other channel) from opening one; got %v, %v", ok, err)
		}
		if _, _, err := s.Close(ctx, chatB); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := s.Get(ctx, chatA); !found {
			t.Errorf("closing one chat's streak must leave another chat's open")
		}
	}},
	{"CloseRacesSetTask", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		for i := range 50 {
			opener := fmt.Sprint("m", i)
			if _, ok, err := s.Open(ctx, chatA, opener, started); err != nil || !ok {
				t.Fatalf("Open: %v, %v", ok, err)
			}
			var wg sync.WaitGroup
			var setErr error
			var closed tasks.Streak
			wg.Add(2)
			go func() { defer wg.Done(); setErr = s.SetTask(ctx, chatA, opener, crm.TaskID(fmt.Sprint(i+1))) }()
			go func() { defer wg.Done(); closed, _, _ = s.Close(ctx, chatA) }()
			wg.Wait()
			// Either SetTask came first (the closed streak carries the task)
			// or Close did (SetTask reports ErrStreakClosed): never both lost.
			if setErr == nil && closed.Task == "" {
				t.Fatalf("SetTask succeeded but the streak closed concurrently came back without the task: the task would never be completed")
			}
			if setErr != nil && !errors.Is(setErr, tasks.ErrStreakClosed) {
				t.Fatalf("SetTask: %v", setErr)
			}
		}
	}},
	{"CanceledContext", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := map[string]func() error{
			"Open":    func() error { _, _, err := s.Open(ctx, chatA, "m", started); return err },
			"SetTask": func() error { return s.SetTask(ctx, chatA, "m", "1") },
			"Close":   func() error { _, _, err := s.Close(ctx, chatA); return err },
			"Get":     func() error { _, _, err := s.Get(ctx, chatA); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context must return an error matching context.Canceled; got %v", name, err)
			}
		}
	}},
	{"EmptyOpener", func(t *testing.T, b Backend) {
		if _, _, err := b("acme").Open(t.Context(), chatA, "", started); !errors.Is(err, tasks.ErrInvalid) {
			t.Errorf("Open with an empty opener must fail with tasks.ErrInvalid; got %v", err)
		}
	}},
	{"AccountsIsolated", func(t *testing.T, b Backend) {
		a, o := b("acme"), b("other")
		ctx := t.Context()
		if _, ok, _ := a.Open(ctx, chatA, "m1", started); !ok {
			t.Fatal("Open: not opened")
		}
		if _, found, _ := o.Get(ctx, chatA); found {
			t.Errorf("one account's streak must not be visible to another account with the same chat")
		}
		if _, ok, err := o.Open(ctx, chatA, "m1", started); err != nil || !ok {
			t.Errorf("another account must open its own streak on the textually same chat; got %v, %v", ok, err)
		}
		if err := o.SetTask(ctx, chatA, "m1", "9"); err != nil {
			t.Fatal(err)
		}
		if st, _, _ := a.Get(ctx, chatA); st.Task != "" {
			t.Errorf("SetTask in one account must not change another's streak; got %+v", st)
		}
		if _, _, err := o.Close(ctx, chatA); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := a.Get(ctx, chatA); !found {
			t.Errorf("Close in one account must leave another account's streak open")
		}
	}},
}
