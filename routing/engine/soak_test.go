package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// flaky is a CRM whose creates fail at random: before the work (the CRM
// refused) or after it (the answer was lost), as decided by its source.
type flaky struct {
	*crmtest.Fake
	rnd *rand.Rand // used by one goroutine at a time (the test delivers serially)
}

func (f *flaky) fail() (before, after bool) {
	switch f.rnd.IntN(6) {
	case 0:
		return true, false
	case 1:
		return false, true
	}
	return false, false
}

func (f *flaky) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	before, after := f.fail()
	if before {
		return crm.Deal{}, crm.Contact{}, crm.ErrUnavailable
	}
	deal, c, err := f.Fake.CreateDeal(ctx, d)
	if err == nil && after {
		return crm.Deal{}, crm.Contact{}, errLost
	}
	return deal, c, err
}

func (f *flaky) CreateTask(ctx context.Context, t crm.NewTask) (crm.Task, error) {
	before, after := f.fail()
	if before {
		return crm.Task{}, crm.ErrUnavailable
	}
	tk, err := f.Fake.CreateTask(ctx, t)
	if err == nil && after {
		return crm.Task{}, errLost
	}
	return tk, err
}

// New clients' messages delivered in random order, each repeated until it
// succeeds, with creates failing before or after the CRM did the work, and
// the engine restarted over its stores now and then: every client ends
// with one contact, one deal and one open task, and the round-robin
// channel's two always-eligible employees end within one client of each
// other. CRMBRIDGE_LONG=1 runs more seeds and clients.
func TestSoakRedeliveryOrder(t *testing.T) {
	seeds, clients := 5, 12
	if os.Getenv("CRMBRIDGE_LONG") == "1" {
		seeds, clients = 200, 40
	}
	for _, fresh := range []bool{false, true} {
		for seed := range seeds {
			soak(t, seed, clients, fresh)
		}
	}
}

// soak runs one seed; with fresh, a restart loses the engine's state (an
// in-memory State), so only the CRM tells what was done: equal shares are
// then not checked, as a lost reserved turn is taken again.
func soak(t *testing.T, seed, clients int, fresh bool) {
	t.Run(fmt.Sprintf("fresh=%v/seed%d", fresh, seed), func(t *testing.T) {
		rnd := rand.New(rand.NewPCG(uint64(seed), 7))
		fx := newFixture(t)
		cr := &flaky{Fake: fx.crm, rnd: rnd}
		// A restart is a new Engine over the same stores, as with a
		// database-backed State.
		state := &engine.MemoryState{Now: fx.clock.Now}
		claims, rotation, streaks := &routing.MemoryClaims{}, &routing.MemoryRotation{}, &tasks.MemoryStore{}
		start := func() *engine.Engine {
			if fresh {
				state, streaks = &engine.MemoryState{Now: fx.clock.Now}, &tasks.MemoryStore{}
			}
			e, err := engine.New(t.Context(), engine.Options{CRM: cr, Sender: fx.sent, Config: testConfig(), Now: fx.clock.Now,
				State: state, Claims: claims, Rotation: rotation, Streaks: streaks})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		e := start()
		var queue []channel.Message
		for c := range clients {
			for range 3 {
				queue = append(queue, fx.in(tg, fmt.Sprintf("soak-%02d", c), "hi"))
			}
		}
		rnd.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
		for round := 0; len(queue) > 0; round++ {
			if round > 1000 {
				t.Fatal("deliveries never finished")
			}
			var again []channel.Message
			for _, m := range queue {
				if rnd.IntN(40) == 0 {
					e = start()
				}
				if _, err := e.ClientMessage(t.Context(), m); err != nil {
					if !errors.Is(err, crm.ErrUnavailable) {
						t.Fatalf("%s %s: %v", m.Chat, m.ID, err)
					}
					again = append(again, m)
				} else if rnd.IntN(4) == 0 {
					again = append(again, m) // a redelivery of a done message
				}
			}
			rnd.Shuffle(len(again), func(i, j int) { again[i], again[j] = again[j], again[i] })
			queue = again
		}
		if n := len(fx.crm.Contacts()); n != clients {
			t.Errorf("contacts = %d; want %d", n, clients)
		}
		perUser := map[crm.UserID]int{}
		for _, d := range fx.crm.Deals() {
			perUser[d.Responsible]++
		}
		if n := len(fx.crm.Deals()); n != clients {
			t.Errorf("deals = %d; want %d", n, clients)
		}
		if d := perUser[boris] - perUser[vera]; !fresh && (d < -1 || d > 1 || perUser[boris]+perUser[vera] != clients) {
			t.Errorf("shares %v; want boris and vera within one of each other", perUser)
		}
		openPerDeal := map[crm.DealID]int{}
		for _, tk := range fx.crm.Tasks() {
			if !tk.Done {
				openPerDeal[tk.Deal]++
			}
		}
		for _, d := range fx.crm.Deals() {
			if openPerDeal[d.ID] != 1 {
				t.Errorf("deal %s has %d open tasks; want 1", d.ID, openPerDeal[d.ID])
			}
		}
	})
}
