package routingtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// TestQueueStore checks that a [routing.QueueStore] keeps its contract:
// first Enqueue wins, oldest first by Since then arrival, Remove exactly
// once under 64 goroutines, documented errors, cancellation and account
// isolation. newBackend is as for [TestClaimStore].
func TestQueueStore(t *testing.T, newBackend func(t *testing.T) func(account string) routing.QueueStore) {
	fresh := func(t *testing.T) routing.QueueStore {
		t.Helper()
		return newBackend(t)("acme")
	}
	chat := func(id string) channel.Chat { return channel.Chat{Channel: "wa", ChatID: id} }

	t.Run("oldest first: by Since, then arrival", func(t *testing.T) {
		s := fresh(t)
		for _, c := range []struct {
			id string
			at time.Duration
		}{{"c", 2 * time.Minute}, {"a", 0}, {"b", 2 * time.Minute}, {"d", time.Minute}} {
			e, created, err := s.Enqueue(t.Context(), chat(c.id), t0.Add(c.at))
			if err != nil || !created || e.Chat != chat(c.id) || !e.Since.Equal(t0.Add(c.at)) {
				t.Fatalf("Enqueue(%s) = %+v, %v, %v; want a new entry", c.id, e, created, err)
			}
		}
		got := peekIDs(t, s, "wa", 10)
		if want := []string{"a", "d", "c", "b"}; !slices.Equal(got, want) {
			t.Errorf("Peek = %v; want %v (since, then arrival)", got, want)
		}
		if got := peekIDs(t, s, "wa", 2); !slices.Equal(got, []string{"a", "d"}) {
			t.Errorf("Peek with limit 2 = %v; want [a d]", got)
		}
		if got := peekIDs(t, s, "wa", 0); len(got) != 0 {
			t.Errorf("Peek with limit 0 = %v; want nothing", got)
		}
		if got := peekIDs(t, s, "wa", 10); len(got) != 4 {
			t.Errorf("Peek removed entries: %v left", got)
		}
	})
	t.Run("first Enqueue wins: a repeat keeps the place", func(t *testing.T) {
		s := fresh(t)
		first, _, _ := s.Enqueue(t.Context(), chat("a"), t0)
		mustEnqueue(t, s, chat("b"), t0.Add(time.Minute))
		e, created, err := s.Enqueue(t.Context(), chat("a"), t0.Add(time.Hour))
		if err != nil || created || !e.Since.Equal(t0) || e.Seq != first.Seq {
			t.Errorf("repeated Enqueue = %+v, %v, %v; want the first entry %+v, created false", e, created, err, first)
		}
		if got := peekIDs(t, s, "wa", 10); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("Peek = %v; want [a b]", got)
		}
	})
	t.Run("Remove takes an entry out once; channels are separate queues", func(t *testing.T) {
		s := fresh(t)
		mustEnqueue(t, s, chat("a"), t0)
		mustEnqueue(t, s, channel.Chat{Channel: "tg", ChatID: "a"}, t0)
		if ok, err := s.Remove(t.Context(), chat("a")); !ok || err != nil {
			t.Errorf("Remove = %v, %v; want true", ok, err)
		}
		if ok, err := s.Remove(t.Context(), chat("a")); ok || err != nil {
			t.Errorf("second Remove = %v, %v; want false, nil", ok, err)
		}
		if got := peekIDs(t, s, "tg", 10); !slices.Equal(got, []string{"a"}) {
			t.Errorf("queue tg = %v after removing wa's a; want [a]", got)
		}
		if _, created, _ := s.Enqueue(t.Context(), chat("a"), t0.Add(time.Hour)); !created {
			t.Error("Enqueue after Remove did not create a new entry")
		}
	})
	t.Run("Entry reads one chat's entry without changing the queue", func(t *testing.T) {
		s := fresh(t)
		want, _, _ := s.Enqueue(t.Context(), chat("a"), t0)
		mustEnqueue(t, s, channel.Chat{Channel: "tg", ChatID: "b"}, t0)
		e, ok, err := s.Entry(t.Context(), chat("a"))
		if err != nil || !ok || e.Chat != chat("a") || !e.Since.Equal(t0) || e.Seq != want.Seq {
			t.Errorf("Entry(a) = %+v, %v, %v; want %+v", e, ok, err, want)
		}
		if _, ok, err := s.Entry(t.Context(), chat("b")); ok || err != nil {
			t.Errorf("Entry of tg's chat b asked on wa = %v, %v; want not queued", ok, err)
		}
		if _, err := s.Remove(t.Context(), chat("a")); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Entry(t.Context(), chat("a")); ok || err != nil {
			t.Errorf("Entry after Remove = %v, %v; want not queued", ok, err)
		}
		if _, _, err := s.Entry(t.Context(), channel.Chat{Channel: "wa"}); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Entry of a chat without an ID: %v; want ErrInvalid", err)
		}
		if got := peekIDs(t, s, "tg", 10); !slices.Equal(got, []string{"b"}) {
			t.Errorf("queue tg = %v; want [b]", got)
		}
	})
	t.Run("documented errors", func(t *testing.T) {
		s := fresh(t)
		for _, c := range []channel.Chat{{Channel: "wa"}, {ChatID: "1"}} {
			if _, _, err := s.Enqueue(t.Context(), c, t0); !errors.Is(err, routing.ErrInvalid) {
				t.Errorf("Enqueue(%v) error = %v; want ErrInvalid", c, err)
			}
		}
		if _, err := s.Peek(t.Context(), "wa", -1); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Peek with a negative limit: error = %v; want ErrInvalid", err)
		}
	})
	t.Run("a cancelled context fails every method with context.Canceled and changes nothing", func(t *testing.T) {
		s := fresh(t)
		mustEnqueue(t, s, chat("a"), t0)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err1 := s.Enqueue(ctx, chat("b"), t0)
		_, err2 := s.Peek(ctx, "wa", 10)
		_, err3 := s.Remove(ctx, chat("a"))
		_, _, err4 := s.Entry(ctx, chat("a"))
		for i, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v; want context.Canceled", []string{"Enqueue", "Peek", "Remove", "Entry"}[i], err)
			}
		}
		if got := peekIDs(t, s, "wa", 10); !slices.Equal(got, []string{"a"}) {
			t.Errorf("queue after cancelled calls = %v; want [a]", got)
		}
	})
	t.Run("64 goroutines: one entry per chat, one Remove wins", func(t *testing.T) {
		s := fresh(t)
		const n = 64
		created := make([]bool, n)
		removed := make([]bool, n)
		errs := make([]error, 2*n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, created[i], errs[i] = s.Enqueue(t.Context(), chat("same"), t0.Add(time.Duration(i)*time.Second))
				_, _, errs[n+i] = s.Enqueue(t.Context(), chat(fmt.Sprintf("c%02d", i)), t0)
			})
		}
		close(start)
		wg.Wait()
		if c := countTrue(created); c != 1 {
			t.Fatalf("%d concurrent Enqueues of one chat created it; want 1", c)
		}
		if got := peekIDs(t, s, "wa", 1000); len(got) != n+1 {
			t.Fatalf("queue holds %d entries; want %d", len(got), n+1)
		}
		start = make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				removed[i], errs[i] = s.Remove(t.Context(), chat("same"))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if c := countTrue(removed); c != 1 {
			t.Errorf("%d concurrent Removes of one chat reported ok; want 1", c)
		}
	})
	t.Run("accounts on one backend are isolated", func(t *testing.T) {
		account := newBackend(t)
		a, b := account("acme"), account("globex")
		mustEnqueue(t, a, chat("a"), t0)
		if got := peekIDs(t, b, "wa", 10); len(got) != 0 {
			t.Errorf("globex sees acme's queue: %v", got)
		}
		if _, created, err := b.Enqueue(t.Context(), chat("a"), t0.Add(time.Hour)); !created || err != nil {
			t.Errorf("globex's Enqueue of the same chat = %v, %v; want an entry of its own", created, err)
		}
		if ok, _ := b.Remove(t.Context(), chat("a")); !ok {
			t.Error("globex could not remove its own entry")
		}
		if got := peekIDs(t, a, "wa", 10); !slices.Equal(got, []string{"a"}) {
			t.Errorf("acme's queue after globex's calls = %v; want [a]", got)
		}
	})
}

func mustEnqueue(t *testing.T, s routing.QueueStore, chat channel.Chat, at time.Time) {
	t.Helper()
	if _, _, err := s.Enqueue(t.Context(), chat, at); err != nil {
		t.Fatalf("Enqueue(%v): %v", chat, err)
	}
}

func peekIDs(t *testing.T, s routing.QueueStore, ch channel.ID, limit int) []string {
	t.Helper()
	es, err := s.Peek(t.Context(), ch, limit)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.Chat.ChatID)
	}
	return ids
}
