package routingtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
)

// TestRotationStore checks that a [routing.RotationStore] keeps the
// contract written in its doc comment: what Pick reads and records, holds,
// documented errors, cancellation, atomicity of the chooser call under 64
// goroutines (equal shares; a capacity limit never exceeded), and isolation
// of accounts. newBackend is as for [TestClaimStore]. Run it under -race.
func TestRotationStore(t *testing.T, newBackend func(t *testing.T) func(account string) routing.RotationStore) {
	fresh := func(t *testing.T) routing.RotationStore {
		t.Helper()
		return newBackend(t)("acme")
	}
	lru := routing.LeastRecentlyServed

	t.Run("Pick with LeastRecentlyServed: ties by ID whatever the order", func(t *testing.T) {
		s := fresh(t)
		var got []routing.Turn
		for range 4 {
			got = append(got, mustPick(t, s, "wa", "", lru, "c", "a", "b"))
		}
		want := []routing.Turn{{User: "a", Seq: 1}, {User: "b", Seq: 2}, {User: "c", Seq: 3}, {User: "a", Seq: 4, Previous: 1}}
		if !slices.Equal(got, want) {
			t.Errorf("turns = %+v; want %+v", got, want)
		}
	})
	t.Run("a newcomer is served next, then waits a cycle", func(t *testing.T) {
		s := fresh(t)
		for range 6 {
			mustPick(t, s, "wa", "", lru, "a", "b", "c")
		}
		var got []crm.UserID
		for range 8 {
			got = append(got, mustPick(t, s, "wa", "", lru, "a", "b", "c", "d").User)
		}
		if want := []crm.UserID{"d", "a", "b", "c", "d", "a", "b", "c"}; !slices.Equal(got, want) {
			t.Errorf("picks after d joined = %v; want %v", got, want)
		}
	})
	t.Run("a returning member keeps their place: no burst", func(t *testing.T) {
		s := fresh(t)
		mustPick(t, s, "wa", "", lru, "a", "b", "c")
		for range 10 {
			mustPick(t, s, "wa", "", lru, "b", "c")
		}
		var got []crm.UserID
		for range 6 {
			got = append(got, mustPick(t, s, "wa", "", lru, "a", "b", "c").User)
		}
		if want := []crm.UserID{"a", "b", "c", "a", "b", "c"}; !slices.Equal(got, want) {
			t.Errorf("picks after a returned = %v; want %v", got, want)
		}
	})
	t.Run("the chooser sees the recorded state, and credits and Seen are kept", func(t *testing.T) {
		s := fresh(t)
		var seen []routing.PoolState
		spy := func(credits ...int64) routing.Chooser {
			return func(p routing.PoolState) routing.Choice {
				seen = append(seen, routing.PoolState{Pool: p.Pool, Seq: p.Seq, Members: slices.Clone(p.Members)})
				c := routing.Choice{Index: 0}
				if credits != nil {
					c.Credits = credits
				}
				return c
			}
		}
		mustPick(t, s, "wa", "k1", spy(5, -5), "b", "a", "b")
		mustPick(t, s, "wa", "", spy(), "a", "c")
		mustPick(t, s, "wa", "", spy(), "b", "a", "c")
		want := []routing.PoolState{
			{Pool: "wa", Seq: 0, Members: []routing.Member{{User: "b"}, {User: "a"}}},
			{Pool: "wa", Seq: 1, Members: []routing.Member{{User: "a", Seen: 1, Credit: -5}, {User: "c"}}},
			{Pool: "wa", Seq: 2, Members: []routing.Member{
				{User: "b", LastServed: 1, Seen: 1, Open: 1, Credit: 5},
				{User: "a", LastServed: 2, Seen: 2, Credit: -5},
				{User: "c", Seen: 2},
			}},
		}
		if len(seen) != len(want) {
			t.Fatalf("chooser called %d times for 3 picks (a store may retry, but not here)", len(seen))
		}
		for i := range want {
			if seen[i].Pool != want[i].Pool || seen[i].Seq != want[i].Seq || !slices.Equal(seen[i].Members, want[i].Members) {
				t.Errorf("pick %d: the chooser saw %+v; want %+v", i+1, seen[i], want[i])
			}
		}
	})
	t.Run("Pick errors: documented, and nothing recorded", func(t *testing.T) {
		s := fresh(t)
		ctx := t.Context()
		nobody := func(routing.PoolState) routing.Choice { return routing.Choice{Index: -1} }
		outOfRange := func(p routing.PoolState) routing.Choice { return routing.Choice{Index: len(p.Members)} }
		badCredits := func(routing.PoolState) routing.Choice { return routing.Choice{Index: 0, Credits: []int64{1, 2, 3}} }
		for _, c := range []struct {
			name     string
			eligible []crm.UserID
			choose   routing.Chooser
			want     error
		}{
			{"empty eligible", nil, lru, routing.ErrNoEligible},
			{"a chooser picking nobody", []crm.UserID{"a"}, nobody, routing.ErrNoEligible},
			{"an empty user ID", []crm.UserID{"a", ""}, lru, routing.ErrInvalid},
			{"a nil chooser", []crm.UserID{"a"}, nil, routing.ErrInvalid},
			{"a chooser index out of range", []crm.UserID{"a"}, outOfRange, routing.ErrInvalid},
			{"credits of the wrong length", []crm.UserID{"a"}, badCredits, routing.ErrInvalid},
		} {
			if turn, err := s.Pick(ctx, "wa", "k", c.eligible, c.choose); !errors.Is(err, c.want) {
				t.Errorf("Pick with %s = %+v, %v; want an error matching %v", c.name, turn, err, c.want)
			}
		}
		if turn := mustPick(t, s, "wa", "k", lru, "a"); turn.Seq != 1 || turn.Open != 1 || turn.Repeat {
			t.Errorf("first good pick after failed ones = %+v; want #1, Open 1 (the failures recorded nothing)", turn)
		}
	})
	t.Run("a keyed pick holds the key: Repeat, Open, Free, Hold", func(t *testing.T) {
		s := fresh(t)
		ctx := t.Context()
		t1 := mustPick(t, s, "wa", "chat-1", lru, "a", "b")
		if t1.User != "a" || t1.Open != 1 {
			t.Fatalf("first keyed pick = %+v; want a with Open 1", t1)
		}
		t2 := mustPick(t, s, "wa", "chat-1", lru, "a", "b")
		if !t2.Repeat || t2.User != "a" || t2.Seq != 1 || t2.Open != 1 {
			t.Errorf("pick of a held key = %+v; want a again, Repeat, Seq 1, nothing recorded", t2)
		}
		if t3 := mustPick(t, s, "wa", "chat-2", lru, "a", "b"); t3.User != "b" || t3.Seq != 2 || t3.Open != 1 {
			t.Errorf("second key = %+v; want b at #2 with Open 1", t3)
		}
		prev, err := s.Hold(ctx, "wa", "chat-3", "a")
		if err != nil || prev != "" {
			t.Errorf("Hold of a new key = %q, %v; want no previous holder", prev, err)
		}
		if prev, err := s.Hold(ctx, "wa", "chat-3", "b"); err != nil || prev != "a" {
			t.Errorf("Hold moving chat-3 to b = %q, %v; want previous a", prev, err)
		}
		if prev, err := s.Hold(ctx, "wa", "chat-3", "b"); err != nil || prev != "b" {
			t.Errorf("Hold by the holder again = %q, %v; want previous b, no change", prev, err)
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": 1, "b": 2, "z": 0}, "after holds")
		if u, ok, err := s.Free(ctx, "wa", "chat-1"); err != nil || !ok || u != "a" {
			t.Errorf("Free(chat-1) = %q, %v, %v; want a, true", u, ok, err)
		}
		if u, ok, err := s.Free(ctx, "wa", "chat-1"); err != nil || ok || u != "" {
			t.Errorf("second Free(chat-1) = %q, %v, %v; want nothing freed", u, ok, err)
		}
		if _, ok, err := s.Free(ctx, "nowhere", "chat-1"); err != nil || ok {
			t.Errorf("Free in an unknown pool = %v, %v; want nothing freed, no error", ok, err)
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": 0, "b": 2}, "after Free")
		if t4 := mustPick(t, s, "wa", "chat-1", lru, "a", "b"); t4.Repeat || t4.User != "a" || t4.Seq != 3 {
			t.Errorf("pick of a freed key = %+v; want a new pick (#3, a)", t4)
		}
		for _, c := range [][2]string{{"", "a"}, {"k", ""}} {
			if _, err := s.Hold(ctx, "wa", c[0], crm.UserID(c[1])); !errors.Is(err, routing.ErrInvalid) {
				t.Errorf("Hold(key %q, user %q) error = %v; want ErrInvalid", c[0], c[1], err)
			}
		}
	})
	t.Run("Members returns snapshots in order, unknown members zero, no change", func(t *testing.T) {
		s := fresh(t)
		mustPick(t, s, "wa", "k", lru, "a")
		ms, err := s.Members(t.Context(), "wa", []crm.UserID{"z", "a", "z"})
		want := []routing.Member{{User: "z"}, {User: "a", LastServed: 1, Seen: 1, Open: 1}}
		if err != nil || !slices.Equal(ms, want) {
			t.Errorf("Members = %+v, %v; want %+v", ms, err, want)
		}
		if turn := mustPick(t, s, "wa", "", lru, "z", "a"); turn.User != "z" || turn.Seq != 2 {
			t.Errorf("pick after Members = %+v; want z at #2 (Members changed nothing)", turn)
		}
	})
	t.Run("pools are independent", func(t *testing.T) {
		s := fresh(t)
		mustPick(t, s, "wa", "k", lru, "a", "b")
		if turn := mustPick(t, s, "tg", "k", lru, "a", "b"); turn.User != "a" || turn.Seq != 1 || turn.Repeat {
			t.Errorf("first pick of pool tg with wa's key = %+v; want a at #1, not a repeat", turn)
		}
	})
	t.Run("a cancelled context fails every method with context.Canceled and changes nothing", func(t *testing.T) {
		s := fresh(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err1 := s.Pick(ctx, "wa", "k", []crm.UserID{"a"}, lru)
		_, err2 := s.Hold(ctx, "wa", "k2", "a")
		_, _, err3 := s.Free(ctx, "wa", "k")
		_, err4 := s.Members(ctx, "wa", []crm.UserID{"a"})
		for i, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v; want context.Canceled", []string{"Pick", "Hold", "Free", "Members"}[i], err)
			}
		}
		if turn := mustPick(t, s, "wa", "k", lru, "a"); turn.Seq != 1 || turn.Repeat || turn.Open != 1 {
			t.Errorf("first pick after cancelled calls = %+v; want #1, Open 1", turn)
		}
	})
	t.Run("64 goroutines picking: one sequence, equal shares", func(t *testing.T) {
		s := fresh(t)
		const pickers = 64
		per := 40
		if testing.Short() {
			per = 10
		}
		users := []crm.UserID{"a", "b", "c", "d"}
		turns := make([][]routing.Turn, pickers)
		errs := make([]error, pickers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for p := range pickers {
			wg.Go(func() {
				<-start
				for i := range per {
					key := ""
					if i%2 == 0 {
						key = fmt.Sprintf("p%d-%d", p, i)
					}
					turn, err := s.Pick(t.Context(), "wa", key, users, lru)
					if err != nil {
						errs[p] = err
						return
					}
					turns[p] = append(turns[p], turn)
				}
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		total := pickers * per
		bySeq := make([]crm.UserID, total+1)
		for _, ts := range turns {
			for _, turn := range ts {
				if turn.Seq < 1 || turn.Seq > uint64(total) || bySeq[turn.Seq] != "" {
					t.Fatalf("turn %+v: Seq out of 1..%d or given twice", turn, total)
				}
				bySeq[turn.Seq] = turn.User
			}
		}
		counts := map[crm.UserID]int{}
		for seq := 1; seq <= total; seq++ {
			counts[bySeq[seq]]++
			lo, hi := total, 0
			for _, u := range users {
				lo, hi = min(lo, counts[u]), max(hi, counts[u])
			}
			if hi-lo > 1 {
				t.Fatalf("after #%d the counts %v differ by %d: the chooser did not see the previous picks", seq, counts, hi-lo)
			}
		}
		ms, err := s.Members(t.Context(), "wa", users)
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		for _, m := range ms {
			open += m.Open
		}
		if open != total/2 {
			t.Errorf("open counts add up to %d after %d keyed picks", open, total/2)
		}
	})
	t.Run("a capacity chooser is never exceeded by 50 concurrent picks", func(t *testing.T) {
		s := fresh(t)
		const limit, clients = 3, 50
		users := []crm.UserID{"a", "b", "c"}
		capped := cappedLRS(limit)
		errs := make([]error, clients)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Pick(t.Context(), "wa", fmt.Sprintf("client-%d", i), users, capped)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, routing.ErrNoEligible):
				t.Fatalf("Pick: %v; want success or ErrNoEligible", err)
			}
		}
		if ok != limit*len(users) {
			t.Errorf("%d of %d picks succeeded; want %d (limit %d × %d members)", ok, clients, limit*len(users), limit, len(users))
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": limit, "b": limit, "c": limit}, "after 50 capped picks")
	})
	t.Run("Reassign keeps an eligible holder and moves any other hold in one step", func(t *testing.T) {
		s := fresh(t)
		ctx := t.Context()
		if _, err := s.Hold(ctx, "wa", "chat-1", "x"); err != nil {
			t.Fatal(err)
		}
		turn, err := s.Reassign(ctx, "wa", "chat-1", []crm.UserID{"x", "a"}, lru)
		if err != nil || !turn.Repeat || turn.User != "x" || turn.From != "" {
			t.Errorf("Reassign with the holder eligible = %+v, %v; want x again, Repeat, nothing moved", turn, err)
		}
		turn, err = s.Reassign(ctx, "wa", "chat-1", []crm.UserID{"b", "a"}, lru)
		if err != nil || turn.Repeat || turn.User != "a" || turn.From != "x" || turn.Seq != 1 || turn.Open != 1 {
			t.Errorf("Reassign away from x = %+v, %v; want a at #1 with Open 1, From x", turn, err)
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": 1, "b": 0, "x": 0}, "after the move")
		if u, ok, err := s.Free(ctx, "wa", "chat-1"); err != nil || !ok || u != "a" {
			t.Errorf("Free after Reassign = %q, %v, %v; want a holds it", u, ok, err)
		}
		turn, err = s.Reassign(ctx, "wa", "chat-2", []crm.UserID{"a", "b"}, lru)
		if err != nil || turn.User != "b" || turn.From != "" || turn.Seq != 2 || turn.Open != 1 {
			t.Errorf("Reassign of a key nobody holds = %+v, %v; want a new pick of b at #2, From empty", turn, err)
		}
		nobody := func(routing.PoolState) routing.Choice { return routing.Choice{Index: -1} }
		if _, err := s.Reassign(ctx, "wa", "chat-2", []crm.UserID{"a"}, nobody); !errors.Is(err, routing.ErrNoEligible) {
			t.Errorf("Reassign choosing nobody: %v; want ErrNoEligible", err)
		}
		if _, err := s.Reassign(ctx, "wa", "chat-2", nil, lru); !errors.Is(err, routing.ErrNoEligible) {
			t.Errorf("Reassign among nobody: %v; want ErrNoEligible", err)
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": 0, "b": 1}, "after refused Reassigns (the hold stays)")
		if turn := mustPick(t, s, "wa", "chat-3", lru, "a", "b"); turn.Seq != 3 {
			t.Errorf("pick after refused Reassigns at #%d; want #3 (they recorded nothing)", turn.Seq)
		}
		for _, c := range []struct {
			key      string
			eligible []crm.UserID
			choose   routing.Chooser
		}{{"", []crm.UserID{"a"}, lru}, {"k", []crm.UserID{"a", ""}, lru}, {"k", []crm.UserID{"a"}, nil}} {
			if _, err := s.Reassign(ctx, "wa", c.key, c.eligible, c.choose); !errors.Is(err, routing.ErrInvalid) {
				t.Errorf("Reassign(key %q, %q, chooser set %v): %v; want ErrInvalid", c.key, c.eligible, c.choose != nil, err)
			}
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Reassign(cancelled, "wa", "chat-3", []crm.UserID{"z"}, lru); !errors.Is(err, context.Canceled) {
			t.Errorf("Reassign with a cancelled context: %v; want context.Canceled", err)
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": 1, "b": 1, "z": 0}, "at the end")
	})
	t.Run("concurrent Reassigns and picks never exceed a capacity limit nor lose a hold", func(t *testing.T) {
		s := fresh(t)
		const limit, moved, newer = 2, 24, 24
		users := []crm.UserID{"a", "b", "c"}
		for i := range moved {
			if _, err := s.Hold(t.Context(), "wa", fmt.Sprintf("old-%d", i), "x"); err != nil {
				t.Fatal(err)
			}
		}
		capped := cappedLRS(limit)
		var wg sync.WaitGroup
		var mu sync.Mutex
		placed := map[string]crm.UserID{}
		start := make(chan struct{})
		for i := range moved + newer {
			wg.Go(func() {
				<-start
				var turn routing.Turn
				var err error
				key := fmt.Sprintf("new-%d", i-moved)
				if i < moved {
					key = fmt.Sprintf("old-%d", i)
					turn, err = s.Reassign(t.Context(), "wa", key, users, capped)
				} else {
					turn, err = s.Pick(t.Context(), "wa", key, users, capped)
				}
				if err != nil && !errors.Is(err, routing.ErrNoEligible) {
					t.Errorf("%s: %v", key, err)
				}
				if err == nil {
					mu.Lock()
					placed[key] = turn.User
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(placed) != limit*len(users) {
			t.Errorf("%d clients placed; want %d (limit %d × %d members)", len(placed), limit*len(users), limit, len(users))
		}
		stayed := 0
		for i := range moved {
			if _, ok := placed[fmt.Sprintf("old-%d", i)]; !ok {
				stayed++
			}
		}
		checkMembers(t, s, "wa", map[crm.UserID]int{"a": limit, "b": limit, "c": limit, "x": stayed}, "after concurrent Reassigns and picks")
	})
	t.Run("accounts on one backend are isolated", func(t *testing.T) {
		account := newBackend(t)
		a, b := account("acme"), account("globex")
		mustPick(t, a, "wa", "chat-1", lru, "u1", "u2")
		mustPick(t, a, "wa", "chat-2", lru, "u1", "u2")
		turn := mustPick(t, b, "wa", "chat-1", lru, "u2", "u1")
		if turn.User != "u1" || turn.Seq != 1 || turn.Repeat || turn.Open != 1 {
			t.Errorf("globex's first pick with acme's pool, key and users = %+v; want u1 at #1, a new hold", turn)
		}
		if _, ok, err := b.Free(t.Context(), "wa", "chat-2"); ok || err != nil {
			t.Errorf("globex freed acme's key: %v, %v", ok, err)
		}
		checkMembers(t, a, "wa", map[crm.UserID]int{"u1": 1, "u2": 1}, "acme after globex's calls")
		if prev, err := b.Hold(t.Context(), "wa", "chat-2", "u2"); prev != "" || err != nil {
			t.Errorf("globex's Hold of acme's key = %q, %v; want no previous holder", prev, err)
		}
		checkMembers(t, a, "wa", map[crm.UserID]int{"u1": 1, "u2": 1}, "acme after globex's Hold")
	})
}

func mustPick(t *testing.T, s routing.RotationStore, pool, key string, choose routing.Chooser, eligible ...crm.UserID) routing.Turn {
	t.Helper()
	turn, err := s.Pick(t.Context(), pool, key, eligible, choose)
	if err != nil {
		t.Fatalf("Pick(%s, %q, %v): %v", pool, key, eligible, err)
	}
	return turn
}

func checkMembers(t *testing.T, s routing.RotationStore, pool string, open map[crm.UserID]int, when string) {
	t.Helper()
	users := make([]crm.UserID, 0, len(open))
	for u := range open {
		users = append(users, u)
	}
	slices.Sort(users)
	ms, err := s.Members(t.Context(), pool, users)
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if len(ms) != len(users) {
		t.Fatalf("Members(%v) returned %d records", users, len(ms))
	}
	for i, m := range ms {
		if m.User != users[i] || m.Open != open[users[i]] {
			t.Errorf("%s: member %+v; want %s with Open %d", when, m, users[i], open[users[i]])
		}
	}
}

// cappedLRS is a capacity chooser: the least recently served among those
// holding fewer than limit keys.
func cappedLRS(limit int) routing.Chooser {
	return func(p routing.PoolState) routing.Choice {
		best := -1
		for i, m := range p.Members {
			if m.Open < limit && (best < 0 || m.LastServed < p.Members[best].LastServed) {
				best = i
			}
		}
		return routing.Choice{Index: best}
	}
}
