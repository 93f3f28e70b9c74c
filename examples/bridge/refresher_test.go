package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// fakeWork records what a refresher does, and lets a test hold the worker
// inside a chat's apply.
type fakeWork struct {
	mu       sync.Mutex
	applied  []string         // chat IDs, in order
	ticks    []int            // len(applied) at each tick
	gaveUp   []string         // chat IDs given up
	fail     map[string]int   // chat ID → failures left
	failErr  map[string]error // chat ID → its failures' error (default: amoCRM down)
	tickFor  map[string]bool  // chat IDs whose apply asks for a tick
	hold     chan struct{}    // when set, each apply waits on it…
	entered  chan string      // …after sending the chat ID here
	canceled int              // applies that saw a cancelled context
}

func newFakeWork() *fakeWork {
	return &fakeWork{fail: map[string]int{}, failErr: map[string]error{}, tickFor: map[string]bool{}}
}

func (w *fakeWork) apply(ctx context.Context, c channel.Chat) (bool, error) {
	if w.entered != nil {
		w.entered <- c.ChatID
		select {
		case <-w.hold:
		case <-ctx.Done():
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ctx.Err() != nil {
		w.canceled++
		return false, ctx.Err()
	}
	w.applied = append(w.applied, c.ChatID)
	if w.fail[c.ChatID] > 0 {
		w.fail[c.ChatID]--
		if err := w.failErr[c.ChatID]; err != nil {
			return w.tickFor[c.ChatID], err
		}
		return w.tickFor[c.ChatID], errors.New("amoCRM down")
	}
	return w.tickFor[c.ChatID], nil
}

func (w *fakeWork) tick(context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ticks = append(w.ticks, len(w.applied))
}

func (w *fakeWork) giveUp(_ context.Context, c channel.Chat) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gaveUp = append(w.gaveUp, c.ChatID)
}

func (w *fakeWork) snapshot() (applied []string, ticks []int, gaveUp []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.applied), slices.Clone(w.ticks), slices.Clone(w.gaveUp)
}

func chatN(i int) channel.Chat { return channel.Chat{Channel: "ch", ChatID: "c" + strconv.Itoa(i)} }

func startRefresher(t *testing.T, w *fakeWork, max int) *refresher {
	t.Helper()
	r := newRefresher(testLogger(io.Discard), max, noBackoff, w.apply, w.tick, w.giveUp)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := r.close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

func flushed(t *testing.T, r *refresher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if err := r.flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestRefresherBatches: a chat named many times while it waits is
// refreshed once; one named again while its batch runs is refreshed again
// after; one Tick follows a batch that asked for it, after every chat of
// the batch, even when a later chat failed; a failing chat is tried
// again until it passes; one failing for good is given up at once.
func TestRefresherBatches(t *testing.T) {
	w := newFakeWork()
	w.hold, w.entered = make(chan struct{}), make(chan string, 100)
	w.tickFor["c1"] = true          // its deal closed: a place is free
	w.fail["c2"] = refreshAlarm + 2 // past the alarm: still tried
	w.fail["c3"], w.failErr["c3"] = 1, fmt.Errorf("refresh: %w", crm.ErrInvalid)
	r := startRefresher(t, w, 10)

	if err := r.enqueue([]channel.Chat{chatN(0)}); err != nil {
		t.Fatal(err)
	}
	if got := <-w.entered; got != "c0" { // the worker holds c0's batch
		t.Fatalf("entered %s, want c0", got)
	}
	// While it runs: c1 and c2 three times over, c0 again.
	for range 3 {
		if err := r.enqueue([]channel.Chat{chatN(1), chatN(2), chatN(1), chatN(0), chatN(3)}); err != nil {
			t.Fatal(err)
		}
	}
	close(w.hold) // the rest run without waiting

	flushed(t, r)
	applied, ticks, gaveUp := w.snapshot()
	// Batch 1: c0. Batch 2: c1 c2 c0 c3, then a tick (c1 asked). Then
	// c2's retries, alone, until it passes.
	want := []string{"c0", "c1", "c2", "c0", "c3"}
	for range refreshAlarm + 2 {
		want = append(want, "c2")
	}
	if !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if !slices.Equal(ticks, []int{5}) {
		t.Errorf("ticks after %v applies, want one tick after the second batch's 5 (c2 failed after c1 asked)", ticks)
	}
	if !slices.Equal(gaveUp, []string{"c3"}) {
		t.Errorf("gave up %v, want [c3] (refused as invalid), not c2 (down %d times, then up)", gaveUp, refreshAlarm+2)
	}
}

// TestRefresherFull: a delivery whose chats do not fit is refused whole,
// and fits once the worker has taken the waiting chats.
func TestRefresherFull(t *testing.T) {
	w := newFakeWork()
	w.hold, w.entered = make(chan struct{}), make(chan string, 10)
	r := startRefresher(t, w, 2)
	if err := r.enqueue([]channel.Chat{chatN(0)}); err != nil {
		t.Fatal(err)
	}
	<-w.entered // c0 taken: nothing waits
	if err := r.enqueue([]channel.Chat{chatN(1), chatN(2)}); err != nil {
		t.Fatalf("two chats into an empty queue of 2: %v", err)
	}
	if err := r.enqueue([]channel.Chat{chatN(1), chatN(3)}); !errors.Is(err, errRefreshFull) {
		t.Fatalf("a third chat: %v, want errRefreshFull", err)
	}
	if err := r.enqueue([]channel.Chat{chatN(2), chatN(1)}); err != nil {
		t.Errorf("chats already waiting: %v, want nil (nothing to add)", err)
	}
	close(w.hold)
	flushed(t, r)
	if err := r.enqueue([]channel.Chat{chatN(3)}); err != nil {
		t.Errorf("after the queue drained: %v", err)
	}
	flushed(t, r)
	applied, _, _ := w.snapshot()
	if want := []string{"c0", "c1", "c2", "c3"}; !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v (the refused c3 only once delivered again)", applied, want)
	}
}

// TestRefresherClose: close applies what waits before it returns, refuses
// new chats, and does not try a failure again; a close whose context ends
// first cancels the work left and says how much.
func TestRefresherClose(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		w := newFakeWork()
		w.hold, w.entered = make(chan struct{}), make(chan string, 10)
		w.fail["c1"] = 1
		w.tickFor["c2"] = true
		r := newRefresher(testLogger(io.Discard), 10, noBackoff, w.apply, w.tick, w.giveUp)
		if err := r.enqueue([]channel.Chat{chatN(0)}); err != nil {
			t.Fatal(err)
		}
		<-w.entered
		if err := r.enqueue([]channel.Chat{chatN(1), chatN(2)}); err != nil {
			t.Fatal(err)
		}
		r.stopTaking()
		if err := r.enqueue([]channel.Chat{chatN(9)}); !errors.Is(err, errRefreshClosed) {
			t.Errorf("a chat after close began: %v, want errRefreshClosed", err)
		}
		close(w.hold)
		if err := r.close(context.Background()); err != nil {
			t.Fatalf("close: %v", err)
		}
		applied, ticks, gaveUp := w.snapshot()
		if want := []string{"c0", "c1", "c2"}; !slices.Equal(applied, want) {
			t.Errorf("applied %v, want %v", applied, want)
		}
		if !slices.Equal(ticks, []int{3}) || !slices.Equal(gaveUp, []string{"c1"}) {
			t.Errorf("ticks %v, gave up %v; want one tick after 3, c1 given up (no retry while closing)", ticks, gaveUp)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		w := newFakeWork()
		w.hold, w.entered = make(chan struct{}), make(chan string, 10) // never released
		logs := newOutput()
		r := newRefresher(testLogger(logs), 10, noBackoff, w.apply, w.tick, w.giveUp)
		if err := r.enqueue([]channel.Chat{chatN(0)}); err != nil {
			t.Fatal(err)
		}
		<-w.entered
		if err := r.enqueue([]channel.Chat{chatN(1)}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := r.close(ctx)
		if !errors.Is(err, context.Canceled) || err.Error() != fmt.Sprintf("amoCRM refreshes: %v (2 chats not refreshed)", context.Canceled) {
			t.Errorf("close: %v, want the cancellation and 2 chats not refreshed", err)
		}
		applied, ticks, gaveUp := w.snapshot()
		if len(applied) != 0 || len(ticks) != 0 || len(gaveUp) != 0 || w.canceled != 1 {
			t.Errorf("applied %v, ticks %v, gave up %v, %d cancelled; want only c0's apply cancelled", applied, ticks, gaveUp, w.canceled)
		}
		if r := logs.records(t, "amocrm refreshes lost at shutdown; each chat's next event reads amoCRM again"); len(r) != 1 || r[0]["chats"] != 2.0 || r[0]["level"] != "ERROR" {
			t.Errorf("summaries %v; want one Error with 2 chats", r)
		}
		if r := logs.records(t, "amocrm refresh lost at shutdown"); len(r) != 2 || r[0]["level"] != "DEBUG" {
			t.Errorf("chats lost logged %v; want the 2, at Debug", r)
		}
		if n := strings.Count(logs.String(), `"level":"ERROR"`) + strings.Count(logs.String(), `"level":"WARN"`); n != 1 {
			t.Errorf("%d Error or Warn lines, want the one summary:\n%s", n, logs)
		}
	})
}

// TestRefresherConcurrent: many deliveries at once, each naming chats
// others name too, while the worker is held in another chat's apply:
// once released, it refreshes every chat exactly once.
func TestRefresherConcurrent(t *testing.T) {
	w := newFakeWork()
	// entered has room for every apply, even if chats were not deduplicated.
	w.hold, w.entered = make(chan struct{}), make(chan string, 1+32*20*2)
	r := startRefresher(t, w, 32*20*2)
	blocker := channel.Chat{Channel: "ch", ChatID: "blocker"}
	if err := r.enqueue([]channel.Chat{blocker}); err != nil {
		t.Fatal(err)
	}
	<-w.entered // the worker is held: every chat below waits
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				if err := r.enqueue([]channel.Chat{chatN((g + i) % 50), chatN(i % 50)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(w.hold)
	flushed(t, r)
	applied, _, _ := w.snapshot()
	count := map[string]int{}
	for _, c := range applied {
		count[c]++
	}
	if len(applied) != 51 || len(count) != 51 {
		t.Errorf("%d applies of %d chats, want 51 of 51 (the blocker, then each of the 50 once): %v", len(applied), len(count), count)
	}
}

// fakeClock is a refreshClock the test moves: each timer the worker arms
// is reported on armed, and fires when advance passes its deadline.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers map[chan time.Time]time.Time // armed, not stopped: deadline
	armed  chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), timers: map[chan time.Time]time.Time{},
		armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) clock() refreshClock {
	return refreshClock{
		now: func() time.Time {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.t
		},
		timer: func(d time.Duration) (<-chan time.Time, func()) {
			c.mu.Lock()
			ch := make(chan time.Time, 1)
			c.timers[ch] = c.t.Add(d)
			c.mu.Unlock()
			c.armed <- d
			return ch, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				delete(c.timers, ch)
			}
		},
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	for ch, at := range c.timers {
		if !at.After(c.t) {
			ch <- c.t
			delete(c.timers, ch)
		}
	}
}

// waitArmed returns the duration of the next timer the worker arms: it is
// then asleep, with nothing due.
func (c *fakeClock) waitArmed(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(waitFor):
		t.Fatal("the worker never went to sleep on its timer")
		return 0
	}
}

// TestRefresherBackoffPerChat: a chat waiting for its retry holds up no
// other chat: one queued meanwhile is applied at once, and the failed one
// when its own backoff has passed.
func TestRefresherBackoffPerChat(t *testing.T) {
	w := newFakeWork()
	w.fail["c0"] = 1
	clk := newFakeClock()
	backoff := func(int) time.Duration { return 2 * time.Second }
	r := newRefresherClock(clk.clock(), testLogger(io.Discard), 10, backoff, w.apply, w.tick, w.giveUp)
	t.Cleanup(func() { r.close(context.Background()) })

	if err := r.enqueue([]channel.Chat{chatN(0)}); err != nil {
		t.Fatal(err)
	}
	if d := clk.waitArmed(t); d != 2*time.Second { // c0 failed, due in 2 s
		t.Fatalf("worker sleeps %v, want c0's backoff of 2s", d)
	}
	if err := r.enqueue([]channel.Chat{chatN(1)}); err != nil {
		t.Fatal(err)
	}
	if d := clk.waitArmed(t); d != 2*time.Second { // c1 applied, c0 still due in 2 s
		t.Fatalf("worker sleeps %v after c1, want 2s (the clock has not moved)", d)
	}
	if applied, _, _ := w.snapshot(); !slices.Equal(applied, []string{"c0", "c1"}) {
		t.Fatalf("applied %v before c0's backoff passed, want [c0 c1]: c1 never failed", applied)
	}
	clk.advance(2 * time.Second)
	flushed(t, r)
	if applied, _, _ := w.snapshot(); !slices.Equal(applied, []string{"c0", "c1", "c0"}) {
		t.Errorf("applied %v, want [c0 c1 c0]: c0 tried again once its backoff passed", applied)
	}
}
