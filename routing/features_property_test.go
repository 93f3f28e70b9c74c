package routing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

// TestFeaturesPropertyRandom drives three Distributors sharing one set of
// stores with random arrivals, closed deals, switch toggles and shifts
// (the clock moves through a week), in concurrent batches under -race.
// After every batch:
//   - nobody holds more open clients than their limit;
//   - every client is held by one employee or waits in the queue, never
//     both, never neither;
//   - each assignment went to someone on shift at the event's time;
//   - after a Drain, clients still wait only if nobody is eligible, and
//     no waiting client is older than one assigned by that Drain.
func TestFeaturesPropertyRandom(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	users := []crm.UserID{"m1", "m2", "m3", "m4", "m5"}
	zones := []string{"Europe/Moscow", "Asia/Novosibirsk", "Europe/Berlin", "America/New_York", "UTC"}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 2026))
		s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1 + rng.IntN(3), WhenNobody: QueueWhenNobody, Schedules: map[crm.UserID]Schedule{}}}
		if rng.IntN(2) == 0 {
			s.Weights = map[crm.UserID]int{}
			for _, u := range users {
				s.Weights[u] = 1 + rng.IntN(5)
			}
		}
		for i, u := range users {
			from := TimeOfDay(rng.IntN(24) * 60)
			s.Schedules[u] = Schedule{TimeZone: zones[i], Shifts: []Shift{{Days: []time.Weekday{1, 2, 3, 4, 5}, From: from, To: (from + TimeOfDay(8*60)) % 1440}}}
		}
		var st shared
		ds := []*Distributor{st.distributor(nil), st.distributor(nil), st.distributor(nil)}
		now := t0
		receiving := map[crm.UserID]bool{}
		for _, u := range users {
			receiving[u] = true
		}
		clients := 0
		held := map[channel.Chat]crm.UserID{} // by the test's own account
		freed := map[channel.Chat]bool{}
		var mu sync.Mutex
		drainedTotal, maxQueue := 0, 0
		for step := range 60 {
			now = now.Add(time.Duration(rng.IntN(240)) * time.Minute)
			u := users[rng.IntN(len(users))]
			if rng.IntN(5) == 0 {
				receiving[u] = !receiving[u]
			}
			tbl := managersReceiving(t, users, receiving)
			req := Request{Settings: s, Mode: RoundRobin, Roles: tbl, Chat: channel.Chat{Channel: "wa"}, At: now}
			// a concurrent batch: arrivals on all Distributors, some closed deals
			var wg sync.WaitGroup
			var errs []error
			var frees []channel.Chat
			for c := range held {
				if rng.IntN(3) == 0 {
					frees = append(frees, c)
				}
			}
			n := rng.IntN(8)
			for i := range n {
				chat := waChat(clients + i)
				d := ds[i%len(ds)]
				wg.Go(func() {
					r := req
					r.Chat = chat
					dec, err := d.Assign(t.Context(), r)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					if dec.User != "" {
						held[chat] = dec.User
						if ok, _, _ := s.Schedules[dec.User].Available(now); !ok {
							errs = append(errs, fmt.Errorf("%s assigned to %s, off shift at %v", chat.ChatID, dec.User, now))
						}
					}
				})
			}
			for i, c := range frees {
				d := ds[i%len(ds)]
				wg.Go(func() {
					_, ok, err := d.Free(t.Context(), c)
					mu.Lock()
					defer mu.Unlock()
					if err != nil || !ok {
						errs = append(errs, fmt.Errorf("Free(%s) = %v, %v", c.ChatID, ok, err))
					}
					delete(held, c)
					freed[c] = true
				})
			}
			wg.Wait()
			clients += n
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			// one Drain, then the invariants
			before, _ := st.queue.Peek(t.Context(), "wa", 1000)
			drained, err := ds[step%len(ds)].Drain(t.Context(), req, 1000, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, dec := range drained {
				held[dec.Why.Chat] = dec.User
				if ok, _, _ := s.Schedules[dec.User].Available(now); !ok {
					t.Fatalf("seed %d step %d: drained %s to %s off shift", seed, step, dec.Why.Chat.ChatID, dec.User)
				}
			}
			after, _ := st.queue.Peek(t.Context(), "wa", 1000)
			drainedTotal, maxQueue = drainedTotal+len(drained), max(maxQueue, len(before))
			if len(before) != len(after)+len(drained) {
				t.Fatalf("seed %d step %d: queue %d before, %d drained, %d after", seed, step, len(before), len(drained), len(after))
			}
			for i, dec := range drained {
				if dec.Why.Chat != before[i].Chat {
					t.Fatalf("seed %d step %d: drain #%d took %s; oldest was %s", seed, step, i, dec.Why.Chat.ChatID, before[i].Chat.ChatID)
				}
			}
			open := openCounts(t, &st.rotation, users...)
			total := 0
			for _, u := range users {
				total += open[u]
				if open[u] > s.Capacity {
					t.Fatalf("seed %d step %d: %s holds %d, limit %d", seed, step, u, open[u], s.Capacity)
				}
			}
			if total != len(held) {
				t.Fatalf("seed %d step %d: store holds %d, the test counted %d", seed, step, total, len(held))
			}
			queued := map[channel.Chat]bool{}
			for _, e := range after {
				queued[e.Chat] = true
				if _, ok := held[e.Chat]; ok {
					t.Fatalf("seed %d step %d: %s both held and queued", seed, step, e.Chat.ChatID)
				}
			}
			if len(after) > 0 {
				_, eligible, _, _ := ds[0].candidatesAt(t.Context(), tbl, "wa", &s, now)
				for _, u := range eligible {
					if open[u] < s.Capacity {
						t.Fatalf("seed %d step %d: %d clients wait while %s is eligible with %d open", seed, step, len(after), u, open[u])
					}
				}
			}
			for i := range clients {
				c := waChat(i)
				_, h := held[c]
				if !h && !queued[c] && !freed[c] {
					t.Fatalf("seed %d step %d: %s is neither held, queued nor closed", seed, step, c.ChatID)
				}
			}
		}
		if seed < 3 {
			t.Logf("seed %d: %d clients, %d assigned from the queue, longest queue %d, %d held at the end", seed, clients, drainedTotal, maxQueue, len(held))
		}
	}
}

func managersReceiving(t testing.TB, users []crm.UserID, on map[crm.UserID]bool) *roles.Table {
	as := []roles.Assignment{{User: "sup", Channel: "wa", Role: roles.Supervisor}}
	for _, u := range users {
		as = append(as, roles.Assignment{User: u, Channel: "wa", Role: roles.Manager, ReceivesNewClients: on[u]})
	}
	tbl, err := roles.NewTable(as)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}
