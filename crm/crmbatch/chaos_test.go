package crmbatch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// chaos is a Fake whose batch creates fail at random: before the write
// (nothing written) or after it (the answer lost), each with probability
// p, drawn from a seeded source.
type chaos struct {
	*crmtest.Fake
	p float64

	mu  sync.Mutex
	rnd *rand.Rand
}

// fault draws the fate of one request: 0 fine, 1 failed before, 2 lost.
func (c *chaos) fault() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch x := c.rnd.Float64(); {
	case x < c.p:
		return 1
	case x < 2*c.p:
		return 2
	}
	return 0
}

var errChaos = fmt.Errorf("chaos: connection reset: %w", crm.ErrUnavailable)

func (c *chaos) CreateDeals(ctx context.Context, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	f := c.fault()
	if f == 1 {
		return nil, errChaos
	}
	out, err := c.Fake.CreateDeals(ctx, ds)
	if f == 2 && err == nil {
		return nil, errChaos
	}
	return out, err
}

func (c *chaos) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	f := c.fault()
	if f == 1 {
		return nil, errChaos
	}
	out, err := c.Fake.CreateTasks(ctx, ts)
	if f == 2 && err == nil {
		return nil, errChaos
	}
	return out, err
}

// TestChaosExactlyOnce sends 500 new clients over 10s through batches
// that fail or lose their answers at random, and checks that nothing is
// written twice: every caller answered with success holds the one deal
// and the one task written for it, and a caller answered with an error
// has at most one.
func TestChaosExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients = 500
		f := crmtest.NewSeeded(nil)
		ch := &chaos{Fake: f, p: 0.15, rnd: rand.New(rand.NewPCG(7, 7))}
		b := crmbatch.New(ch, &crmbatch.Options{Window: 500 * time.Millisecond})
		defer b.Close()
		arrivals := rand.New(rand.NewPCG(8, 8))
		deals := make([]crm.Deal, clients)
		tasks := make([]crm.Task, clients)
		dealErr := make([]error, clients)
		taskErr := make([]error, clients)
		var wg sync.WaitGroup
		for i := range clients {
			at := time.Duration(arrivals.Int64N(int64(10 * time.Second)))
			wg.Go(func() {
				time.Sleep(at)
				nd := crm.NewDeal{Name: fmt.Sprint("Chat ", i), Pipeline: "10", Stage: "100",
					NewContact: &crm.NewContact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("+7916%07d", i)}}}
				if deals[i], _, dealErr[i] = b.CreateDeal(t.Context(), nd); dealErr[i] != nil {
					return
				}
				tasks[i], taskErr[i] = b.CreateTask(t.Context(), crm.NewTask{Deal: deals[i].ID, Text: "reply", Deadline: time.Now().Add(time.Hour)})
			})
		}
		wg.Wait()

		byName := map[string][]crm.Deal{}
		for _, d := range f.Deals() {
			byName[d.Name] = append(byName[d.Name], d)
		}
		byDeal := map[crm.DealID][]crm.Task{}
		for _, tk := range f.Tasks() {
			byDeal[tk.Deal] = append(byDeal[tk.Deal], tk)
		}
		failed := 0
		for i := range clients {
			ds := byName[fmt.Sprint("Chat ", i)]
			switch {
			case len(ds) > 1:
				t.Fatalf("client %d: %d deals written", i, len(ds))
			case dealErr[i] != nil:
				failed++
				if !errors.Is(dealErr[i], crm.ErrUnavailable) {
					t.Errorf("client %d: %v; want crm.ErrUnavailable", i, dealErr[i])
				}
				continue
			case len(ds) != 1 || ds[0].ID != deals[i].ID:
				t.Fatalf("client %d got deal %s; the CRM holds %v", i, deals[i].ID, ds)
			}
			ts := byDeal[deals[i].ID]
			switch {
			case len(ts) > 1:
				t.Fatalf("client %d: %d tasks written", i, len(ts))
			case taskErr[i] != nil:
				failed++
				if !errors.Is(taskErr[i], crm.ErrUnavailable) {
					t.Errorf("client %d: %v; want crm.ErrUnavailable", i, taskErr[i])
				}
			case len(ts) != 1 || ts[0].ID != tasks[i].ID:
				t.Fatalf("client %d got task %s; the CRM holds %v", i, tasks[i].ID, ts)
			}
		}
		if len(f.Contacts()) > clients {
			t.Errorf("%d contacts for %d clients", len(f.Contacts()), clients)
		}
		// Only a batch whose write and one resend both failed leaves its
		// callers with an unknown outcome.
		t.Logf("%d of %d clients left with an unknown outcome; %d deal and %d task requests",
			failed, clients, f.Calls(crmtest.MethodCreateDeals), f.Calls(crmtest.MethodCreateTasks))
	})
}
