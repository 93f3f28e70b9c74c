package routing

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/google/go-cmp/cmp"
)

// The contract suites below state the store clauses; any future store
// (PostgreSQL, Redis) should pass them. They are run against MemoryStore.

func TestMemoryStoreContract(t *testing.T) {
	t.Run("claims", func(t *testing.T) { testClaimStore(t, func() ClaimStore { return NewMemoryStore() }) })
	t.Run("rotation", func(t *testing.T) { testRotationStore(t, func() RotationStore { return NewMemoryStore() }) })
}

func testClaimStore(t *testing.T, newStore func() ClaimStore) {
	ctx := t.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}

	t.Run("Offer records the group without duplicates, in order", func(t *testing.T) {
		s := newStore()
		st, created, err := s.Offer(ctx, chat, []crm.UserID{"b", "a", "b", "c"})
		if err != nil || !created {
			t.Fatalf("Offer = %v, %v; want created", created, err)
		}
		want := ClaimState{Chat: chat, Offered: []crm.UserID{"b", "a", "c"}}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("Offer state (-want +got):\n%s", diff)
		}
		got, found, err := s.Get(ctx, chat)
		if err != nil || !found {
			t.Fatalf("Get = %v, %v", found, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Get state (-want +got):\n%s", diff)
		}
	})
	t.Run("a second Offer keeps the first (idempotent)", func(t *testing.T) {
		s := newStore()
		mustOffer(t, s, chat, "a", "b")
		st, created, err := s.Offer(ctx, chat, []crm.UserID{"c"})
		if err != nil || created || !slices.Equal(st.Offered, []crm.UserID{"a", "b"}) {
			t.Errorf("second Offer = %v, %v, %v; want the first group, created false", st, created, err)
		}
		mustClaim(t, s, chat, "a")
		st, created, err = s.Offer(ctx, chat, []crm.UserID{"c"})
		if err != nil || created || st.ClaimedBy != "a" {
			t.Errorf("Offer after claim = %v, %v, %v; want the claimed record unchanged", st, created, err)
		}
	})
	t.Run("Offer rejects bad arguments", func(t *testing.T) {
		s := newStore()
		for _, c := range []struct {
			chat  channel.Chat
			users []crm.UserID
		}{
			{chat, nil},
			{chat, []crm.UserID{"a", ""}},
			{channel.Chat{Channel: "wa"}, []crm.UserID{"a"}},
			{channel.Chat{ChatID: "1"}, []crm.UserID{"a"}},
		} {
			if _, _, err := s.Offer(ctx, c.chat, c.users); !errors.Is(err, ErrInvalid) {
				t.Errorf("Offer(%v, %q) error = %v; want ErrInvalid", c.chat, c.users, err)
			}
		}
		if _, found, _ := s.Get(ctx, chat); found {
			t.Error("a rejected Offer left a record")
		}
	})
	t.Run("Claim: winner, idempotent repeat, loser, outsider", func(t *testing.T) {
		s := newStore()
		mustOffer(t, s, chat, "a", "b")
		st, err := s.Claim(ctx, chat, "b")
		if err != nil || st.ClaimedBy != "b" || !st.Claimed() {
			t.Fatalf("Claim(b) = %v, %v; want b wins", st, err)
		}
		if st, err := s.Claim(ctx, chat, "b"); err != nil || st.ClaimedBy != "b" {
			t.Errorf("repeat Claim(b) = %v, %v; want success", st, err)
		}
		_, err = s.Claim(ctx, chat, "a")
		ce, ok := errors.AsType[*ClaimedError](err)
		if !ok || !errors.Is(err, ErrAlreadyClaimed) || ce.Winner != "b" || ce.Chat != chat {
			t.Errorf("Claim(a) error = %v; want *ClaimedError naming b", err)
		}
		_, err = s.Claim(ctx, chat, "z")
		if ne, ok := errors.AsType[*NotOfferedError](err); !ok || !errors.Is(err, ErrNotOffered) || ne.User != "z" || ne.NoOffer {
			t.Errorf("Claim(z) error = %v; want *NotOfferedError for z", err)
		}
		if _, err := s.Claim(ctx, chat, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Claim(empty) error = %v; want ErrInvalid", err)
		}
	})
	t.Run("Claim without an offer", func(t *testing.T) {
		s := newStore()
		_, err := s.Claim(ctx, chat, "a")
		if ne, ok := errors.AsType[*NotOfferedError](err); !ok || !ne.NoOffer {
			t.Errorf("Claim on an unoffered chat: error %v; want *NotOfferedError with NoOffer", err)
		}
	})
	t.Run("Release starts a new round", func(t *testing.T) {
		s := newStore()
		mustOffer(t, s, chat, "a", "b")
		mustClaim(t, s, chat, "a")
		if err := s.Release(ctx, chat); err != nil {
			t.Fatal(err)
		}
		if _, found, err := s.Get(ctx, chat); found || err != nil {
			t.Errorf("Get after Release = %v, %v; want not found", found, err)
		}
		if err := s.Release(ctx, chat); err != nil {
			t.Errorf("Release of nothing = %v; want nil", err)
		}
		mustOffer(t, s, chat, "b")
		if st := mustClaim(t, s, chat, "b"); st.ClaimedBy != "b" {
			t.Errorf("new round won by %q; want b", st.ClaimedBy)
		}
	})
	t.Run("chats are independent", func(t *testing.T) {
		s := newStore()
		other := channel.Chat{Channel: "tg", ChatID: chat.ChatID}
		mustOffer(t, s, chat, "a", "b")
		mustOffer(t, s, other, "a", "b")
		mustClaim(t, s, chat, "a")
		if st := mustClaim(t, s, other, "b"); st.ClaimedBy != "b" {
			t.Errorf("claim on the other chat won by %q", st.ClaimedBy)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		s := newStore()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err1 := s.Offer(cctx, chat, []crm.UserID{"a"})
		_, err2 := s.Claim(cctx, chat, "a")
		_, _, err3 := s.Get(cctx, chat)
		err4 := s.Release(cctx, chat)
		for i, err := range []error{err1, err2, err3, err4} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("op %d with a cancelled context: %v; want context.Canceled", i, err)
			}
		}
	})
}

func mustOffer(t *testing.T, s ClaimStore, chat channel.Chat, users ...crm.UserID) ClaimState {
	t.Helper()
	st, _, err := s.Offer(t.Context(), chat, users)
	if err != nil {
		t.Fatalf("Offer(%v, %v): %v", chat, users, err)
	}
	return st
}

func mustClaim(t *testing.T, s ClaimStore, chat channel.Chat, user crm.UserID) ClaimState {
	t.Helper()
	st, err := s.Claim(t.Context(), chat, user)
	if err != nil {
		t.Fatalf("Claim(%v, %v): %v", chat, user, err)
	}
	return st
}

func testRotationStore(t *testing.T, newStore func() RotationStore) {
	ctx := t.Context()
	next := func(t *testing.T, s RotationStore, pool string, eligible ...crm.UserID) Turn {
		t.Helper()
		turn, err := s.Next(ctx, pool, eligible)
		if err != nil {
			t.Fatalf("Next(%s, %v): %v", pool, eligible, err)
		}
		return turn
	}
	t.Run("least recently served, ties by ID whatever the order", func(t *testing.T) {
		s := newStore()
		var got []Turn
		for range 4 {
			got = append(got, next(t, s, "wa", "c", "a", "b"))
		}
		want := []Turn{{"a", 1, 0}, {"b", 2, 0}, {"c", 3, 0}, {"a", 4, 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("turns (-want +got):\n%s", diff)
		}
	})
	t.Run("a newcomer is served next, then waits a cycle", func(t *testing.T) {
		s := newStore()
		for range 6 {
			next(t, s, "wa", "a", "b", "c")
		}
		var got []crm.UserID
		for range 8 {
			got = append(got, next(t, s, "wa", "a", "b", "c", "d").User)
		}
		want := []crm.UserID{"d", "a", "b", "c", "d", "a", "b", "c"}
		if !slices.Equal(got, want) {
			t.Errorf("picks after d joined = %v; want %v", got, want)
		}
	})
	t.Run("a returning member keeps their place", func(t *testing.T) {
		s := newStore()
		next(t, s, "wa", "a", "b", "c") // a
		for range 10 {
			next(t, s, "wa", "b", "c") // a away
		}
		var got []crm.UserID
		for range 6 {
			got = append(got, next(t, s, "wa", "a", "b", "c").User)
		}
		if want := []crm.UserID{"a", "b", "c", "a", "b", "c"}; !slices.Equal(got, want) {
			t.Errorf("picks after a returned = %v; want %v (one pick per cycle, no burst)", got, want)
		}
	})
	t.Run("pools are independent", func(t *testing.T) {
		s := newStore()
		next(t, s, "wa", "a", "b")
		if turn := next(t, s, "tg", "a", "b"); turn.User != "a" || turn.Seq != 1 {
			t.Errorf("first pick of pool tg = %+v; want a at #1", turn)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		s := newStore()
		if _, err := s.Next(ctx, "wa", nil); !errors.Is(err, ErrNoEligible) {
			t.Errorf("Next(empty) error = %v; want ErrNoEligible", err)
		}
		if _, err := s.Next(ctx, "wa", []crm.UserID{"a", ""}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Next with an empty ID: error = %v; want ErrInvalid", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Next(cctx, "wa", []crm.UserID{"a"}); !errors.Is(err, context.Canceled) {
			t.Errorf("Next with a cancelled context: %v", err)
		}
		if turn := next(t, s, "wa", "a"); turn.Seq != 1 {
			t.Errorf("failed calls advanced the sequence: first real pick is #%d", turn.Seq)
		}
	})
}

func TestMemoryStoreOfferLargeGroup(t *testing.T) {
	s := NewMemoryStore()
	var users, want []crm.UserID
	for i := range 40 {
		u := crm.UserID(string(rune('A' + i)))
		users = append(users, u, u)
		want = append(want, u)
	}
	st := mustOffer(t, s, chatWA, users...)
	if !slices.Equal(st.Offered, want) {
		t.Errorf("Offered = %v; want %v", st.Offered, want)
	}
}
