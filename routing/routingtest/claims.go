package routingtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
)

// TestClaimStore checks that a [routing.ClaimStore] keeps the contract
// written in its doc comment. newBackend is called once per subtest and
// returns a function giving the store of a named account on that fresh
// backend (register cleanup with t.Cleanup); every subtest but the
// isolation one uses a single account. Run it under -race: the subtests
// race 64 goroutines on one record.
func TestClaimStore(t *testing.T, newBackend func(t *testing.T) func(account string) routing.ClaimStore) {
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	fresh := func(t *testing.T) routing.ClaimStore {
		t.Helper()
		return newBackend(t)("acme")
	}

	t.Run("Offer records the group without duplicates, in order", func(t *testing.T) {
		s := fresh(t)
		st, created, err := s.Offer(t.Context(), chat, []crm.UserID{"b", "a", "b", "c"})
		if err != nil || !created {
			t.Fatalf("Offer = %v, %v; want created", created, err)
		}
		want := []crm.UserID{"b", "a", "c"}
		if st.Chat != chat || !slices.Equal(st.Offered, want) || st.ClaimedBy != "" {
			t.Errorf("Offer state = %+v; want chat %v offered to %v, unclaimed", st, chat, want)
		}
		got, found, err := s.Get(t.Context(), chat)
		if err != nil || !found || got.Chat != chat || !slices.Equal(got.Offered, want) || got.Claimed() {
			t.Errorf("Get = %+v, %v, %v; want the offered record", got, found, err)
		}
	})
	t.Run("a second Offer keeps the first (first offer wins)", func(t *testing.T) {
		s := fresh(t)
		mustOffer(t, s, chat, "a", "b")
		st, created, err := s.Offer(t.Context(), chat, []crm.UserID{"c"})
		if err != nil || created || !slices.Equal(st.Offered, []crm.UserID{"a", "b"}) {
			t.Errorf("second Offer = %+v, %v, %v; want the first group, created false", st, created, err)
		}
		mustClaim(t, s, chat, "a")
		st, created, err = s.Offer(t.Context(), chat, []crm.UserID{"c"})
		if err != nil || created || st.ClaimedBy != "a" {
			t.Errorf("Offer after a claim = %+v, %v, %v; want the claimed record unchanged", st, created, err)
		}
	})
	t.Run("Offer rejects bad arguments with ErrInvalid and records nothing", func(t *testing.T) {
		s := fresh(t)
		for _, c := range []struct {
			chat  channel.Chat
			users []crm.UserID
		}{
			{chat, nil},
			{chat, []crm.UserID{"a", ""}},
			{channel.Chat{Channel: "wa"}, []crm.UserID{"a"}},
			{channel.Chat{ChatID: "1"}, []crm.UserID{"a"}},
		} {
			if _, _, err := s.Offer(t.Context(), c.chat, c.users); !errors.Is(err, routing.ErrInvalid) {
				t.Errorf("Offer(%v, %q) error = %v; want ErrInvalid", c.chat, c.users, err)
			}
		}
		if _, found, _ := s.Get(t.Context(), chat); found {
			t.Error("a rejected Offer left a record")
		}
	})
	t.Run("Claim: the winner, an idempotent repeat, a loser, an outsider", func(t *testing.T) {
		s := fresh(t)
		mustOffer(t, s, chat, "a", "b")
		st, err := s.Claim(t.Context(), chat, "b")
		if err != nil || st.ClaimedBy != "b" || !slices.Equal(st.Offered, []crm.UserID{"a", "b"}) {
			t.Fatalf("Claim(b) = %+v, %v; want b wins", st, err)
		}
		if st, err := s.Claim(t.Context(), chat, "b"); err != nil || st.ClaimedBy != "b" {
			t.Errorf("repeated Claim(b) = %+v, %v; want success (idempotent)", st, err)
		}
		_, err = s.Claim(t.Context(), chat, "a")
		ce, ok := errors.AsType[*routing.ClaimedError](err)
		if !ok || !errors.Is(err, routing.ErrAlreadyClaimed) || ce.Winner != "b" || ce.Chat != chat {
			t.Errorf("Claim(a) after b won: error %v; want a *routing.ClaimedError naming b", err)
		}
		_, err = s.Claim(t.Context(), chat, "z")
		if ne, ok := errors.AsType[*routing.NotOfferedError](err); !ok || !errors.Is(err, routing.ErrNotOffered) || ne.User != "z" || ne.NoOffer {
			t.Errorf("Claim(z) by an outsider: error %v; want a *routing.NotOfferedError for z", err)
		}
		if _, err := s.Claim(t.Context(), chat, ""); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Claim by an empty user ID: error %v; want ErrInvalid", err)
		}
		if got, _, _ := s.Get(t.Context(), chat); got.ClaimedBy != "b" {
			t.Errorf("the winner changed to %q", got.ClaimedBy)
		}
	})
	t.Run("Widen grows an unclaimed offer and leaves a claimed one", func(t *testing.T) {
		s := fresh(t)
		ctx := t.Context()
		first := mustOffer(t, s, chat, "a", "b")
		st, err := s.Widen(ctx, chat, []crm.UserID{"c", "a", "d", "c"})
		if err != nil || !slices.Equal(st.Offered, []crm.UserID{"a", "b", "c", "d"}) || st.Claimed() {
			t.Errorf("Widen = %+v, %v; want offered to a, b, c, d (new ones after, no duplicates)", st, err)
		}
		if !slices.Equal(first.Offered, []crm.UserID{"a", "b"}) {
			t.Errorf("Widen changed a state returned earlier: %v", first.Offered)
		}
		if st := mustClaim(t, s, chat, "d"); st.ClaimedBy != "d" {
			t.Errorf("a member added by Widen could not claim: %+v", st)
		}
		st, err = s.Widen(ctx, chat, []crm.UserID{"e"})
		if err != nil || st.ClaimedBy != "d" || slices.Contains(st.Offered, "e") {
			t.Errorf("Widen of a claimed chat = %+v, %v; want the claimed record unchanged", st, err)
		}
		_, err = s.Widen(ctx, channel.Chat{Channel: "wa", ChatID: "none"}, []crm.UserID{"a"})
		if ne, ok := errors.AsType[*routing.NotOfferedError](err); !ok || !ne.NoOffer {
			t.Errorf("Widen without an offer: error %v; want *routing.NotOfferedError with NoOffer", err)
		}
		if _, err := s.Widen(ctx, chat, []crm.UserID{""}); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Widen to an empty user ID: error %v; want ErrInvalid", err)
		}
	})
	t.Run("Widen racing claims: the claim stands or comes after", func(t *testing.T) {
		s := fresh(t)
		for r := range 20 {
			c := channel.Chat{Channel: "wa", ChatID: fmt.Sprintf("widen-%d", r)}
			mustOffer(t, s, c, "a")
			start := make(chan struct{})
			var wg sync.WaitGroup
			var claimErr, widenErr error
			var claimed, widened routing.ClaimState
			wg.Go(func() { <-start; claimed, claimErr = s.Claim(t.Context(), c, "a") })
			wg.Go(func() { <-start; widened, widenErr = s.Widen(t.Context(), c, []crm.UserID{"b"}) })
			close(start)
			wg.Wait()
			if claimErr != nil || widenErr != nil || claimed.ClaimedBy != "a" {
				t.Fatalf("round %d: Claim = %+v, %v; Widen = %+v, %v", r, claimed, claimErr, widened, widenErr)
			}
			final, _, _ := s.Get(t.Context(), c)
			if final.ClaimedBy != "a" {
				t.Fatalf("round %d: the claim was lost to Widen: %+v", r, final)
			}
			if widened.Claimed() == slices.Contains(final.Offered, "b") {
				t.Fatalf("round %d: Widen saw claimed=%v but b offered=%v", r, widened.Claimed(), slices.Contains(final.Offered, "b"))
			}
		}
	})
	t.Run("Claim without an offer is NotOffered with NoOffer", func(t *testing.T) {
		s := fresh(t)
		_, err := s.Claim(t.Context(), chat, "a")
		if ne, ok := errors.AsType[*routing.NotOfferedError](err); !ok || !ne.NoOffer {
			t.Errorf("Claim on a chat without an offer: error %v; want *routing.NotOfferedError with NoOffer", err)
		}
	})
	t.Run("Release deletes the record and a new Offer starts a new round", func(t *testing.T) {
		s := fresh(t)
		mustOffer(t, s, chat, "a", "b")
		mustClaim(t, s, chat, "a")
		if err := s.Release(t.Context(), chat); err != nil {
			t.Fatal(err)
		}
		if _, found, err := s.Get(t.Context(), chat); found || err != nil {
			t.Errorf("Get after Release = %v, %v; want not found", found, err)
		}
		if err := s.Release(t.Context(), chat); err != nil {
			t.Errorf("Release of nothing = %v; want nil", err)
		}
		if _, created, err := s.Offer(t.Context(), chat, []crm.UserID{"b"}); err != nil || !created {
			t.Errorf("Offer after Release = %v, %v; want a new record", created, err)
		}
		if st := mustClaim(t, s, chat, "b"); st.ClaimedBy != "b" {
			t.Errorf("the new round was won by %q; want b", st.ClaimedBy)
		}
	})
	t.Run("chats with the same chat ID on two channels are independent", func(t *testing.T) {
		s := fresh(t)
		other := channel.Chat{Channel: "tg", ChatID: chat.ChatID}
		mustOffer(t, s, chat, "a", "b")
		mustOffer(t, s, other, "a", "b")
		mustClaim(t, s, chat, "a")
		if st := mustClaim(t, s, other, "b"); st.ClaimedBy != "b" {
			t.Errorf("the claim on %v was won by %q; want b", other, st.ClaimedBy)
		}
	})
	t.Run("a cancelled context fails every method with context.Canceled and changes nothing", func(t *testing.T) {
		s := fresh(t)
		mustOffer(t, s, chat, "a")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err1 := s.Offer(ctx, channel.Chat{Channel: "wa", ChatID: "2"}, []crm.UserID{"a"})
		_, err2 := s.Claim(ctx, chat, "a")
		_, _, err3 := s.Get(ctx, chat)
		err4 := s.Release(ctx, chat)
		_, err5 := s.Widen(ctx, chat, []crm.UserID{"b"})
		for i, err := range []error{err1, err2, err3, err4, err5} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v; want context.Canceled", []string{"Offer", "Claim", "Get", "Release", "Widen"}[i], err)
			}
		}
		if st, found, _ := s.Get(t.Context(), chat); !found || st.Claimed() || len(st.Offered) != 1 {
			t.Errorf("after cancelled calls: %+v, found %v; want the offer unchanged", st, found)
		}
	})
	t.Run("64 concurrent claims: exactly one winner, the others told who", func(t *testing.T) {
		s := fresh(t)
		const claimants = 64
		rounds := 20
		if testing.Short() {
			rounds = 5
		}
		users := make([]crm.UserID, claimants)
		for i := range users {
			users[i] = crm.UserID(fmt.Sprintf("u%02d", i))
		}
		for r := range rounds {
			c := channel.Chat{Channel: "wa", ChatID: fmt.Sprintf("race-%d", r)}
			mustOffer(t, s, c, users...)
			winners := make([]crm.UserID, claimants)
			errs := make([]error, claimants)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, u := range users {
				wg.Go(func() {
					<-start
					st, err := s.Claim(t.Context(), c, u)
					winners[i], errs[i] = st.ClaimedBy, err
				})
			}
			close(start)
			wg.Wait()
			var won crm.UserID
			for i, err := range errs {
				if err == nil {
					if won != "" {
						t.Fatalf("round %d: both %s and %s won", r, won, users[i])
					}
					won = winners[i]
				}
			}
			if won == "" {
				t.Fatalf("round %d: nobody won", r)
			}
			for i, err := range errs {
				if err == nil {
					continue
				}
				if ce, ok := errors.AsType[*routing.ClaimedError](err); !ok || ce.Winner != won {
					t.Fatalf("round %d: loser %s got %v; want a *routing.ClaimedError naming %s", r, users[i], err, won)
				}
			}
		}
	})
	t.Run("64 concurrent offers: one record, everyone sees it", func(t *testing.T) {
		s := fresh(t)
		const n = 64
		states := make([]routing.ClaimState, n)
		created := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				states[i], created[i], errs[i] = s.Offer(t.Context(), chat, []crm.UserID{crm.UserID(fmt.Sprintf("u%02d", i))})
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if c := countTrue(created); c != 1 {
			t.Fatalf("%d offers report created; want exactly 1", c)
		}
		for i := range states {
			if !slices.Equal(states[i].Offered, states[0].Offered) {
				t.Fatalf("offer %d sees %v, offer 0 sees %v; want one record", i, states[i].Offered, states[0].Offered)
			}
		}
	})
	t.Run("accounts on one backend are isolated", func(t *testing.T) {
		account := newBackend(t)
		a, b := account("acme"), account("globex")
		mustOffer(t, a, chat, "u1", "u2")
		if _, found, err := b.Get(t.Context(), chat); found || err != nil {
			t.Errorf("account globex sees acme's offer of the same chat: found %v, %v", found, err)
		}
		if _, created, err := b.Offer(t.Context(), chat, []crm.UserID{"u2"}); !created || err != nil {
			t.Errorf("Offer of the same chat in globex = created %v, %v; want a record of its own", created, err)
		}
		mustClaim(t, a, chat, "u1")
		if st := mustClaim(t, b, chat, "u2"); st.ClaimedBy != "u2" {
			t.Errorf("globex's claim won by %q; want u2", st.ClaimedBy)
		}
		if err := b.Release(t.Context(), chat); err != nil {
			t.Fatal(err)
		}
		if st, found, _ := a.Get(t.Context(), chat); !found || st.ClaimedBy != "u1" {
			t.Errorf("globex's Release changed acme's record: %+v, found %v", st, found)
		}
	})
}

func mustOffer(t *testing.T, s routing.ClaimStore, chat channel.Chat, users ...crm.UserID) routing.ClaimState {
	t.Helper()
	st, _, err := s.Offer(t.Context(), chat, users)
	if err != nil {
		t.Fatalf("Offer(%v, %v): %v", chat, users, err)
	}
	return st
}

func mustClaim(t *testing.T, s routing.ClaimStore, chat channel.Chat, user crm.UserID) routing.ClaimState {
	t.Helper()
	st, err := s.Claim(t.Context(), chat, user)
	if err != nil {
		t.Fatalf("Claim(%v, %v): %v", chat, user, err)
	}
	return st
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
