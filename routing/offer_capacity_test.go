package routing

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// TestOffersCountTowardCapacity: many first-responder clients arrive at
// once on four Distributors sharing one set of stores, with limits of 2
// (m3: 1); each offer is then claimed by one of its group, withdrawn, or
// left open, and some claimed clients close. A sampler reads the open
// counts throughout: nobody's open clients plus unclaimed offers exceed
// their limit at any sampled point (a chat being claimed may count twice
// for an instant: its client is counted before its offer stops
// counting), nor by the records whenever nothing runs. Every client is
// offered to someone (within the limits, or to every writer as the
// fallback) or queued, as the settings say; queued clients are drained
// later under the same limits. Once every chat is closed and released,
// no hold is left.
func TestOffersCountTowardCapacity(t *testing.T) {
	for _, queue := range []bool{false, true} {
		name := "offer fallback"
		if queue {
			name = "queue"
		}
		t.Run(name, func(t *testing.T) { offerCapacityRun(t, queue) })
	}
}

func offerCapacityRun(t *testing.T, queue bool) {
	const clients = 80
	var st shared
	ds := []*Distributor{st.distributor(nil), st.distributor(nil), st.distributor(nil), st.distributor(nil)}
	f := Features{Capacity: 2, CapacityOf: map[crm.UserID]int{"m3": 1}}
	if queue {
		f.WhenNobody = QueueWhenNobody
	}
	s := ChannelSettings{Channel: "wa", Features: f}
	tbl := managers(t, 3)
	users := []crm.UserID{"m1", "m2", "m3"}
	req := func(i int) Request {
		return Request{Settings: s, Mode: FirstResponder, Roles: tbl, Chat: waChat(i), At: t0}
	}

	var (
		mu         sync.Mutex
		violations []map[crm.UserID]int
		samples    int
		fallback   = map[string]bool{}       // chats offered to every writer
		clientOf   = map[string]crm.UserID{} // claimed chats whose deal is open
	)
	// quiet counts, with nothing running, each employee's open clients
	// plus the unclaimed offers within the limits that include them, from
	// the records themselves, and checks them against the limits and the
	// store's counts.
	quiet := func(when string) {
		t.Helper()
		got := map[crm.UserID]int{}
		for i := range clients {
			chat := waChat(i)
			if u := clientOf[chat.ChatID]; u != "" {
				got[u]++
			}
			cs, found, err := st.claims.Get(t.Context(), chat)
			if err != nil {
				t.Fatal(err)
			}
			if found && !cs.Claimed() && !fallback[chat.ChatID] {
				for _, u := range cs.Offered {
					got[u]++
				}
			}
		}
		oc := openCounts(t, &st.rotation, users...)
		for _, u := range users {
			if got[u] > f.limit(u) || got[u] != oc[u] {
				t.Errorf("%s: %s holds %d open clients and offers by the records, %d by the store; limit %d", when, u, got[u], oc[u], f.limit(u))
			}
		}
	}
	// A claim counts its client before its offer stops counting, so the
	// store may count a chat being claimed twice for an instant: a sample
	// allows one more per claim of the employee running across it.
	started, finished := map[crm.UserID]*atomic.Int64{}, map[crm.UserID]*atomic.Int64{}
	for _, u := range users {
		started[u], finished[u] = new(atomic.Int64), new(atomic.Int64)
	}
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			before := map[crm.UserID]int64{}
			for _, u := range users {
				before[u] = finished[u].Load()
			}
			oc := openCounts(t, &st.rotation, users...)
			mu.Lock()
			samples++
			for _, u := range users {
				if oc[u] > f.limit(u)+int(started[u].Load()-before[u]) {
					violations = append(violations, oc)
					break
				}
			}
			mu.Unlock()
			select {
			case <-done:
				return
			default:
			}
		}
	})

	// act claims, withdraws or leaves an offer, and closes some claimed
	// clients; it reports whether the chat was offered within the limits.
	act := func(t *testing.T, d *Distributor, i int, dec Decision, rng *rand.Rand) {
		switch {
		case dec.Why.Rule == RuleQueue:
			if !queue {
				t.Errorf("client %d queued without a queue", i)
			}
			return
		case len(dec.Offered) == 0:
			t.Errorf("client %d: offered to nobody: %v", i, dec)
			return
		case dec.Why.Fallback != nil:
			mu.Lock()
			fallback[dec.Why.Chat.ChatID] = true
			mu.Unlock()
		default:
			for _, u := range dec.Offered {
				if !slices.Contains(users, u) {
					t.Errorf("client %d offered to %s within the limits", i, u)
				}
			}
		}
		chat := waChat(i)
		switch rng.IntN(3) {
		case 0: // left open
		case 1: // withdrawn
			if err := d.Release(t.Context(), chat); err != nil {
				t.Errorf("Release %d: %v", i, err)
			}
		case 2:
			u := dec.Offered[rng.IntN(len(dec.Offered))]
			if c := started[u]; c != nil {
				c.Add(1)
				defer finished[u].Add(1)
			}
			_, err := d.ClaimWithin(t.Context(), f, chat, u)
			switch {
			case err == nil:
				if rng.IntN(2) == 0 { // the deal closed
					if _, _, err := d.Free(t.Context(), chat); err != nil {
						t.Errorf("Free %d: %v", i, err)
					}
				} else {
					mu.Lock()
					clientOf[chat.ChatID] = u
					mu.Unlock()
				}
			case errors.Is(err, ErrAtCapacity), errors.Is(err, ErrAlreadyClaimed):
			default:
				t.Errorf("ClaimWithin %d by %s: %v", i, u, err)
			}
		}
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		d := ds[i%len(ds)]
		wg.Go(func() {
			<-start
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			dec, err := d.Assign(t.Context(), req(i))
			if err != nil {
				t.Errorf("Assign %d: %v", i, err)
				return
			}
			act(t, d, i, dec, rng)
		})
	}
	close(start)
	wg.Wait()
	quiet("after the arrivals")

	if queue {
		// Close every client reached so far, then drain the queue on
		// all four instances at once, twice: under the same limits.
		for i := range clients {
			if _, _, err := ds[0].Free(t.Context(), waChat(i)); err != nil {
				t.Fatal(err)
			}
		}
		clear(clientOf)
		quiet("after the clients closed")
		for round := range 2 {
			var dw sync.WaitGroup
			for _, d := range ds {
				dw.Go(func() {
					decs, err := d.Drain(t.Context(), req(0), clients, nil)
					if err != nil {
						t.Errorf("Drain: %v", err)
					}
					for _, dec := range decs {
						if len(dec.Offered) == 0 {
							t.Errorf("round %d: drained %s to nobody", round, dec.Why.Chat)
						}
					}
				})
			}
			dw.Wait()
			quiet("after a drain")
			for i := range clients {
				if err := ds[0].Release(t.Context(), waChat(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	close(done)
	sampler.Wait()
	if len(violations) > 0 {
		t.Errorf("%d of %d samples over the limits (m1 2, m2 2, m3 1), e.g. %v", len(violations), samples, violations[0])
	}
	for i := range clients {
		if _, _, err := ds[0].Free(t.Context(), waChat(i)); err != nil {
			t.Fatal(err)
		}
		if err := ds[0].Release(t.Context(), waChat(i)); err != nil {
			t.Fatal(err)
		}
	}
	if oc := openCounts(t, &st.rotation, users...); oc["m1"]+oc["m2"]+oc["m3"] != 0 {
		t.Errorf("open counts %v after every chat closed and released; want none", oc)
	}
}

// TestOfferCapacitySteps walks through the definition with a limit of 1:
// an offer counts for every offered employee; nobody with room left gets
// the fallback offer to every writer, which counts for nobody; a claim by
// an employee at the limit only through that offer turns it into their
// client and frees the others; a withdrawn offer frees everyone; an
// escalation widens only to those with room, and counts them.
func TestOfferCapacitySteps(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	f := Features{Capacity: 1, Escalation: Escalation{After: Duration(5 * time.Minute)}}
	tbl := managers(t, 3)
	req := func(c channel.Chat, at time.Time) Request {
		return Request{Settings: ChannelSettings{Channel: "wa", Features: f}, Mode: FirstResponder, Roles: tbl, Chat: c, At: at}
	}
	all := []crm.UserID{"m1", "m2", "m3", "sup"}
	counts := func(step string, want ...int) {
		t.Helper()
		oc := openCounts(t, &st.rotation, all...)
		got := []int{oc["m1"], oc["m2"], oc["m3"], oc["sup"]}
		if !slices.Equal(got, want) {
			t.Errorf("%s: counts of m1, m2, m3, sup = %v; want %v", step, got, want)
		}
	}
	assign := func(c channel.Chat) Decision {
		t.Helper()
		dec, err := d.Assign(t.Context(), req(c, t0))
		if err != nil {
			t.Fatal(err)
		}
		return dec
	}
	a, b, c, e := waChat(1), waChat(2), waChat(3), waChat(4)

	if dec := assign(a); !slices.Equal(dec.Offered, []crm.UserID{"m1", "m2", "m3"}) {
		t.Errorf("a offered to %v; want m1, m2, m3", dec.Offered)
	}
	counts("a offered", 1, 1, 1, 0)
	dec := assign(b)
	if dec.Why.Fallback == nil || !slices.Equal(dec.Offered, all) || !slices.Contains(dec.Why.Fallback.Skipped, Skip{"m1", SkipAtCapacity}) {
		t.Errorf("b = %v; want the fallback to every writer, m1 skipped at capacity", dec)
	}
	counts("b offered to every writer", 1, 1, 1, 0)
	if again := assign(a); !again.Why.Repeat {
		t.Errorf("a offered again: %v; want a repeat", again)
	}
	counts("a offered again", 1, 1, 1, 0)

	if _, err := d.ClaimWithin(t.Context(), f, a, "m2"); err != nil {
		t.Fatalf("m2 claims a, at the limit only through a's offer: %v", err)
	}
	counts("a claimed by m2", 0, 1, 0, 0)
	if _, err := d.ClaimWithin(t.Context(), f, a, "m2"); err != nil {
		t.Fatalf("m2 claims a again: %v", err)
	}
	counts("a claimed again", 0, 1, 0, 0)

	if dec := assign(c); !slices.Equal(dec.Offered, []crm.UserID{"m1", "m3"}) || !slices.Contains(dec.Why.Skipped, Skip{"m2", SkipAtCapacity}) {
		t.Errorf("c = %v; want offered to m1 and m3, m2 at capacity", dec)
	}
	counts("c offered", 1, 1, 1, 0)
	if err := d.Release(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	counts("c withdrawn", 0, 1, 0, 0)

	assign(e)
	counts("e offered", 1, 1, 1, 0)
	ws, err := d.DueEscalations(t.Context(), t0.Add(5*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ws, func(w Watch) bool { return w.Chat == e })
	if i < 0 {
		t.Fatalf("no escalation due for e in %v", ws)
	}
	dec, ok, err := d.Escalate(t.Context(), req(e, t0.Add(5*time.Minute)), ws[i], "")
	if err != nil || !ok {
		t.Fatalf("escalating e: %v, %v", ok, err)
	}
	if !slices.Equal(dec.Offered, []crm.UserID{"m1", "m3", "sup"}) || !slices.Contains(dec.Why.Skipped, Skip{"m2", SkipAtCapacity}) {
		t.Errorf("e widened = %v; want m1, m3 and sup, m2 at capacity", dec)
	}
	counts("e widened", 1, 1, 1, 1)
	if _, err := d.ClaimWithin(t.Context(), f, e, "sup"); err != nil {
		t.Fatalf("sup claims e: %v", err)
	}
	counts("e claimed by sup", 0, 1, 0, 1)
}
