package crmbatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// paced is a Fake behind a request-rate limit: every write request waits
// for a token of a bucket refilled at rps (burst 1, as the amoCRM
// adapter's default limiter), then takes service to answer. Time is the
// synctest bubble's virtual clock.
type paced struct {
	*crmtest.Fake
	lim     *rate.Limiter
	service time.Duration

	mu       sync.Mutex
	requests int
}

func (p *paced) request() {
	p.mu.Lock()
	p.requests++
	r := p.lim.ReserveN(time.Now(), 1)
	p.mu.Unlock()
	time.Sleep(r.Delay() + p.service)
}

func (p *paced) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	p.request()
	return p.Fake.CreateDeal(ctx, d)
}

func (p *paced) CreateTask(ctx context.Context, t crm.NewTask) (crm.Task, error) {
	p.request()
	return p.Fake.CreateTask(ctx, t)
}

func (p *paced) CreateDeals(ctx context.Context, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	p.request() // at most 50 per batch: one request
	return p.Fake.CreateDeals(ctx, ds)
}

func (p *paced) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	p.request()
	return p.Fake.CreateTasks(ctx, ts)
}

// burst is the outcome of one simulated burst.
type burst struct {
	p50, max time.Duration
	perNew   float64 // requests per new client
}

// simulateBurst replays clients new clients arriving at random over span
// (seeded, so every run sees the same arrivals): each needs a deal with a
// new contact, then a task on the deal, as the routing engine makes them
// for a new client whose phone an index did not find (the search costs no
// request). window 0 means unbatched. Placement latency runs from the
// arrival until the task is created.
func simulateBurst(t *testing.T, clients int, span, service time.Duration, window time.Duration) burst {
	var out burst
	synctest.Test(t, func(t *testing.T) {
		p := &paced{Fake: crmtest.NewSeeded(nil), lim: rate.NewLimiter(7, 1), service: service}
		var c crm.Client = crmtest.Minimal(p)
		if window > 0 {
			b := crmbatch.New(p, &crmbatch.Options{Window: window})
			defer b.Close()
			c = b
		}
		rnd := rand.New(rand.NewPCG(18, 1000))
		lat := make([]time.Duration, clients)
		var wg sync.WaitGroup
		for i := range clients {
			at := time.Duration(rnd.Int64N(int64(span)))
			wg.Go(func() {
				time.Sleep(at)
				start := time.Now()
				nd := crm.NewDeal{Name: fmt.Sprint("Chat ", i), Pipeline: "10", Stage: "100",
					NewContact: &crm.NewContact{Name: fmt.Sprint("client ", i), Phones: []string{fmt.Sprintf("+7916%07d", i)}}}
				d, _, err := c.CreateDeal(t.Context(), nd)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				if _, err := c.CreateTask(t.Context(), crm.NewTask{Deal: d.ID, Text: "reply", Deadline: start.Add(time.Hour)}); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				lat[i] = time.Since(start)
			})
		}
		wg.Wait()
		if got := len(p.Deals()); got != clients {
			t.Errorf("%d deals for %d clients", got, clients)
		}
		slices.Sort(lat)
		out = burst{p50: lat[len(lat)/2], max: lat[len(lat)-1], perNew: float64(p.requests) / float64(clients)}
	})
	return out
}

// TestBurstSimulation models a burst of 1,000 new clients within 60s
// through a 7 requests/s limit on a virtual clock, unbatched and batched
// with the default window, and holds the batched run to the burst target:
// placement p50 ≤ 2s, max ≤ 10s, ≤ 0.1 requests per new client. Each
// request is assumed to take 200ms to answer once it leaves the limiter.
// With CRMBRIDGE_LONG=1 it also sweeps windows and service times.
//
// Run: go test -run TestBurstSimulation -v ./crm/crmbatch
func TestBurstSimulation(t *testing.T) {
	const clients, span, service = 1000, 60 * time.Second, 200 * time.Millisecond
	base := simulateBurst(t, clients, span, service, 0)
	t.Logf("unbatched:                 p50 %6.2fs  max %6.2fs  %.3f requests per new client", base.p50.Seconds(), base.max.Seconds(), base.perNew)
	got := simulateBurst(t, clients, span, service, crmbatch.DefaultWindow)
	t.Logf("batched, window %-9v: p50 %6.2fs  max %6.2fs  %.3f requests per new client", crmbatch.DefaultWindow, got.p50.Seconds(), got.max.Seconds(), got.perNew)
	if got.p50 > 2*time.Second || got.max > 10*time.Second || got.perNew > 0.1 {
		t.Errorf("batched with the default window: p50 %v, max %v, %.3f requests per new client; want p50 ≤ 2s, max ≤ 10s, ≤ 0.1", got.p50, got.max, got.perNew)
	}
	if os.Getenv("CRMBRIDGE_LONG") == "" {
		return
	}
	for _, svc := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond} {
		for _, w := range []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second, 1200 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Second} {
			r := simulateBurst(t, clients, span, svc, w)
			t.Logf("service %-6v window %-6v: p50 %6.2fs  max %6.2fs  %.3f requests per new client", svc, w, r.p50.Seconds(), r.max.Seconds(), r.perNew)
		}
	}
}
