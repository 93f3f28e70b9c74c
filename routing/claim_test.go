package routing

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

// TestClaimExactlyOneWinner: 64 goroutines, released together by a closed
// channel, claim the same chat; exactly one wins every round and every
// loser's error names that winner. 1000 rounds (100 with -short).
func TestClaimExactlyOneWinner(t *testing.T) {
	const n = 64
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	store := &MemoryClaims{}
	d := NewDistributor(DistributorOptions{Claims: store})
	ctx := t.Context()
	users := make([]crm.UserID, n)
	for i := range users {
		users[i] = crm.UserID(fmt.Sprintf("u%02d", i))
	}
	winners := map[crm.UserID]int{}
	for round := range rounds {
		chat := channel.Chat{Channel: "wa", ChatID: fmt.Sprint(round)}
		if _, _, err := store.Offer(ctx, chat, users); err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		won := make([]crm.UserID, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				dec, err := d.Claim(ctx, chat, users[i])
				won[i], errs[i] = dec.User, err
			})
		}
		close(start)
		wg.Wait()
		var winner crm.UserID
		wins := 0
		for i := range n {
			if errs[i] == nil {
				wins++
				winner = won[i]
				if won[i] != users[i] {
					t.Fatalf("round %d: %s's successful claim names %s", round, users[i], won[i])
				}
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners; want exactly 1", round, wins)
		}
		for i, err := range errs {
			if err == nil {
				continue
			}
			ce, ok := errors.AsType[*ClaimedError](err)
			if !ok || !errors.Is(err, ErrAlreadyClaimed) || ce.Winner != winner || ce.Chat != chat {
				t.Fatalf("round %d: %s got %v; want a *ClaimedError naming %s", round, users[i], err, winner)
			}
		}
		st, found, err := store.Get(ctx, chat)
		if err != nil || !found || st.ClaimedBy != winner {
			t.Fatalf("round %d: stored claim %v, %v, %v; want %s", round, st, found, err, winner)
		}
		winners[winner]++
	}
	t.Logf("%d rounds, %d distinct winners", rounds, len(winners))
}

// TestClaimHidesChatAtOnce: as soon as Claim returns, the roles predicate
// given the store's state hides the chat from every other offered manager
// and lets the claimer write; a supervisor keeps it.
func TestClaimHidesChatAtOnce(t *testing.T) {
	tbl, err := roles.NewTable([]roles.Assignment{
		{User: "m1", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "m2", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "m3", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "boss", Channel: "wa", Role: roles.Supervisor},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d := NewDistributor(DistributorOptions{})
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	dec, err := d.Offer(ctx, tbl, chat)
	if err != nil {
		t.Fatal(err)
	}
	st, _, _ := d.ClaimState(ctx, chat)
	for _, u := range dec.Offered {
		if ok, why := tbl.CanWrite(u, chat, st.ChatState("")); !ok || why != roles.ReasonOffered {
			t.Errorf("before the claim %s: CanWrite = %v %q; want a claiming write", u, ok, why)
		}
	}
	if _, err := d.Claim(ctx, chat, "m2"); err != nil {
		t.Fatal(err)
	}
	st, _, _ = d.ClaimState(ctx, chat)
	view := func(u crm.UserID) bool { ok, _ := tbl.CanView(u, chat, st.ChatState("")); return ok }
	if !view("m2") || view("m1") || view("m3") || !view("boss") {
		t.Errorf("after m2's claim: m1=%v m2=%v m3=%v boss=%v; want only m2 and boss", view("m1"), view("m2"), view("m3"), view("boss"))
	}
	if ok, why := tbl.CanWrite("boss", chat, st.ChatState("")); !ok || why == roles.ReasonOffered {
		t.Errorf("boss after the claim: CanWrite %v %q; want a non-claiming write", ok, why)
	}
	// Even when the CRM still names m1 (it lags the claim), m1 loses the chat.
	if ok, _ := tbl.CanView("m1", chat, st.ChatState("m1")); ok {
		t.Error("the stale CRM responsible still sees a chat claimed by someone else")
	}
	// After Release, the CRM alone decides.
	if err := d.Release(ctx, chat); err != nil {
		t.Fatal(err)
	}
	st, found, _ := d.ClaimState(ctx, chat)
	if found {
		t.Fatal("claim still recorded after Release")
	}
	if ok, _ := tbl.CanView("m2", chat, st.ChatState("m2")); !ok {
		t.Error("after Release the CRM responsible m2 cannot see the chat")
	}
}
