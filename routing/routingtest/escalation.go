package routingtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing"
)

// TestEscalationStore checks that a [routing.EscalationStore] keeps its
// contract: first Start wins, DueBy in due order, Advance as a
// compare-and-swap with exactly one winner among 64 goroutines, Stop,
// documented errors, cancellation and account isolation. newBackend is as
// for [TestClaimStore].
func TestEscalationStore(t *testing.T, newBackend func(t *testing.T) func(account string) routing.EscalationStore) {
	fresh := func(t *testing.T) routing.EscalationStore {
		t.Helper()
		return newBackend(t)("acme")
	}
	chat := func(id string) channel.Chat { return channel.Chat{Channel: "wa", ChatID: id} }
	watch := func(id string, due time.Duration) routing.Watch {
		return routing.Watch{Chat: chat(id), Since: t0, Due: t0.Add(due)}
	}

	t.Run("Start: first wins; DueBy: due ones, earliest first, up to limit", func(t *testing.T) {
		s := fresh(t)
		for _, w := range []routing.Watch{watch("c", 3*time.Minute), watch("a", 2*time.Minute), watch("b", 2*time.Minute), watch("late", time.Hour)} {
			got, created, err := s.Start(t.Context(), w)
			if err != nil || !created || !sameWatch(got, w) {
				t.Fatalf("Start(%v) = %+v, %v, %v; want it stored", w.Chat, got, created, err)
			}
		}
		again, created, err := s.Start(t.Context(), watch("a", 10*time.Minute))
		if err != nil || created || !again.Due.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("repeated Start = %+v, %v, %v; want the first watch, created false", again, created, err)
		}
		if got := dueIDs(t, s, t0.Add(3*time.Minute), 10); fmt.Sprint(got) != "[a b c]" {
			t.Errorf("DueBy(+3m) = %v; want [a b c] (due order, then chat ID)", got)
		}
		if got := dueIDs(t, s, t0.Add(3*time.Minute), 2); fmt.Sprint(got) != "[a b]" {
			t.Errorf("DueBy(+3m, limit 2) = %v; want [a b]", got)
		}
		if got := dueIDs(t, s, t0.Add(time.Minute), 10); len(got) != 0 {
			t.Errorf("DueBy(+1m) = %v; want nothing due", got)
		}
	})
	t.Run("Advance is a compare-and-swap on the watch as read; a zero due stops", func(t *testing.T) {
		s := fresh(t)
		w := mustStart(t, s, watch("a", time.Minute))
		wrong := w
		wrong.Done = 1
		if err := s.Advance(t.Context(), wrong, t0.Add(time.Hour)); !errors.Is(err, routing.ErrStaleWatch) {
			t.Errorf("Advance from the wrong step: %v; want ErrStaleWatch", err)
		}
		if err := s.Advance(t.Context(), w, t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("Advance from 0: %v", err)
		}
		ws, _ := s.DueBy(t.Context(), t0.Add(time.Hour), 10)
		if len(ws) != 1 || ws[0].Done != 1 || !ws[0].Due.Equal(t0.Add(2*time.Minute)) || !ws[0].Since.Equal(t0) {
			t.Errorf("after Advance: %+v; want Done 1, Due +2m, Since kept", ws)
		}
		if err := s.Advance(t.Context(), w, t0.Add(3*time.Minute)); !errors.Is(err, routing.ErrStaleWatch) {
			t.Errorf("a second Advance from the same watch (a redelivery): %v; want ErrStaleWatch", err)
		}
		if err := s.Advance(t.Context(), ws[0], time.Time{}); err != nil {
			t.Fatalf("last Advance: %v", err)
		}
		if got := dueIDs(t, s, t0.Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("a watch advanced with a zero due is still due: %v", got)
		}
		if err := s.Advance(t.Context(), watch("none", 0), t0); !errors.Is(err, routing.ErrStaleWatch) {
			t.Errorf("Advance of an unwatched chat: %v; want ErrStaleWatch", err)
		}
	})
	t.Run("Advance of a copy read before a Stop and a new Start fails: a new clock is not escalated", func(t *testing.T) {
		s := fresh(t)
		old := mustStart(t, s, watch("a", time.Minute))
		if err := s.Stop(t.Context(), chat("a")); err != nil {
			t.Fatal(err)
		}
		restarted := routing.Watch{Chat: chat("a"), Since: t0.Add(5 * time.Minute), Due: t0.Add(15 * time.Minute)}
		mustStart(t, s, restarted)
		if err := s.Advance(t.Context(), old, t0.Add(time.Hour)); !errors.Is(err, routing.ErrStaleWatch) {
			t.Errorf("Advance of the old copy (Done 0 like the new watch): %v; want ErrStaleWatch", err)
		}
		ws, _ := s.DueBy(t.Context(), t0.Add(time.Hour), 10)
		if len(ws) != 1 || ws[0].Done != 0 || !ws[0].Due.Equal(restarted.Due) {
			t.Errorf("the new watch after the stale Advance: %+v; want it unchanged", ws)
		}
	})
	t.Run("Stop ends a watch; stopping nothing is fine; Start again starts over", func(t *testing.T) {
		s := fresh(t)
		mustStart(t, s, watch("a", time.Minute))
		if err := s.Stop(t.Context(), chat("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(t.Context(), chat("a")); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if got := dueIDs(t, s, t0.Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("a stopped watch is due: %v", got)
		}
		if _, created, _ := s.Start(t.Context(), watch("a", 5*time.Minute)); !created {
			t.Error("Start after Stop did not create a new watch")
		}
	})
	t.Run("documented errors", func(t *testing.T) {
		s := fresh(t)
		for _, w := range []routing.Watch{{Chat: channel.Chat{Channel: "wa"}, Due: t0}, {Chat: chat("a")}} {
			if _, _, err := s.Start(t.Context(), w); !errors.Is(err, routing.ErrInvalid) {
				t.Errorf("Start(%+v) error = %v; want ErrInvalid", w, err)
			}
		}
	})
	t.Run("a cancelled context fails every method with context.Canceled and changes nothing", func(t *testing.T) {
		s := fresh(t)
		mustStart(t, s, watch("a", time.Minute))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err1 := s.Start(ctx, watch("b", time.Minute))
		_, err2 := s.DueBy(ctx, t0.Add(time.Hour), 10)
		err3 := s.Advance(ctx, watch("a", time.Minute), t0.Add(time.Hour))
		err4 := s.Stop(ctx, chat("a"))
		for i, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v; want context.Canceled", []string{"Start", "DueBy", "Advance", "Stop"}[i], err)
			}
		}
		ws, _ := s.DueBy(t.Context(), t0.Add(time.Hour), 10)
		if len(ws) != 1 || ws[0].Chat != chat("a") || ws[0].Done != 0 {
			t.Errorf("after cancelled calls: %+v; want watch a unchanged", ws)
		}
	})
	t.Run("64 concurrent Advances from one step: exactly one wins", func(t *testing.T) {
		s := fresh(t)
		rounds := 20
		if testing.Short() {
			rounds = 5
		}
		for r := range rounds {
			c := chat(fmt.Sprintf("race-%d", r))
			w := mustStart(t, s, routing.Watch{Chat: c, Since: t0, Due: t0.Add(time.Minute)})
			const n = 64
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = s.Advance(t.Context(), w, t0.Add(time.Duration(2+i)*time.Minute))
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, routing.ErrStaleWatch):
					t.Fatalf("round %d: Advance: %v", r, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d of 64 Advances from step 0 succeeded; want exactly 1", r, won)
			}
		}
	})
	t.Run("accounts on one backend are isolated", func(t *testing.T) {
		account := newBackend(t)
		a, b := account("acme"), account("globex")
		mustStart(t, a, watch("a", time.Minute))
		if got := dueIDs(t, b, t0.Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("globex sees acme's watches: %v", got)
		}
		if err := b.Advance(t.Context(), watch("a", time.Minute), t0.Add(time.Hour)); !errors.Is(err, routing.ErrStaleWatch) {
			t.Errorf("globex advanced acme's watch: %v", err)
		}
		if _, created, _ := b.Start(t.Context(), watch("a", 2*time.Minute)); !created {
			t.Error("globex's Start of the same chat did not create its own watch")
		}
		if err := b.Stop(t.Context(), chat("a")); err != nil {
			t.Fatal(err)
		}
		ws, _ := a.DueBy(t.Context(), t0.Add(time.Hour), 10)
		if len(ws) != 1 || ws[0].Done != 0 || !ws[0].Due.Equal(t0.Add(time.Minute)) {
			t.Errorf("acme's watch after globex's calls: %+v; want unchanged", ws)
		}
	})
}

func sameWatch(a, b routing.Watch) bool {
	return a.Chat == b.Chat && a.Done == b.Done && a.Since.Equal(b.Since) && a.Due.Equal(b.Due)
}

func mustStart(t *testing.T, s routing.EscalationStore, w routing.Watch) routing.Watch {
	t.Helper()
	got, _, err := s.Start(t.Context(), w)
	if err != nil {
		t.Fatalf("Start(%v): %v", w.Chat, err)
	}
	return got
}

func dueIDs(t *testing.T, s routing.EscalationStore, now time.Time, limit int) []string {
	t.Helper()
	ws, err := s.DueBy(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueBy: %v", err)
	}
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.Chat.ChatID)
	}
	return ids
}
