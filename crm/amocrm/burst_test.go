package amocrm_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmindex"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// redeliverAfter is the wait before delivering a failed event again: 1 s,
// doubling up to 5 minutes.
func redeliverAfter(try int) time.Duration {
	return min(time.Second<<min(try, 9), 5*time.Minute)
}

// burstSetup is one way of stacking the CRM client under the engine.
type burstSetup struct {
	name string
	// batched: crmindex.New(crmbatch.New(adapter, window), ...); else the
	// adapter alone.
	batched bool
	window  time.Duration
	// faults injects 429s and lost answers while the burst runs.
	faults bool
	// inbox places the new clients in Unsorted (first responder) instead
	// of round robin at "First contact".
	inbox bool
	// telegram: the channel is Telegram (clients found by identity)
	// instead of WhatsApp.
	telegram bool
	// identityPassThrough: identity lookups bypass the index and go to
	// crmbatch (the Index before it indexed identities), for comparison.
	identityPassThrough bool
}

// identityPassThrough is an Index whose identity lookups go to the client
// beneath it, as they did before the Index held identities.
type identityPassThrough struct {
	*crmindex.Index
	under crm.Client
}

func (p identityPassThrough) FindContactsByIdentity(ctx context.Context, id crm.Identity) ([]crm.Contact, error) {
	return p.under.FindContactsByIdentity(ctx, id)
}

type burstResult struct {
	p50, max    time.Duration
	perClient   float64
	requests    map[string]int
	redelivered int // events that failed and were delivered again
	claims      *burstResult
}

// runBurst replays clients new WhatsApp clients arriving at seeded random
// times within span, through the engine (round robin between users 501
// and 502, an unanswered-message task per client) on the amoCRM adapter
// and the fake account. Everything runs in a testing/synctest bubble: the
// adapter's own rate limiter (the default 7 requests/s, burst 1), its
// retry backoff, crmbatch's window, the engine's clock and the fake's
// clock all run on the bubble's virtual clock, and the adapter reaches the
// fake through its in-memory transport. A message whose event fails is
// delivered again (redeliverAfter), as a messenger redelivers an
// unacknowledged webhook; its latency counts from the first delivery.
// Placement latency runs from the message's arrival until the engine
// returns with the deal, its responsible and the task written. Requests
// are counted by the fake from the first message on (the engine's
// start-up reads and the index's Sync are not counted).
func runBurst(t *testing.T, clients int, span time.Duration, setup burstSetup) burstResult {
	srv := amocrmtest.NewServer(amocrmtest.Options{})
	t.Cleanup(srv.Close)
	var res burstResult
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		adapter, err := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token()),
			HTTPClient: &http.Client{Transport: srv.Transport(), Timeout: 30 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		var client crm.Client = adapter
		if setup.batched {
			b := crmbatch.New(adapter, &crmbatch.Options{Window: setup.window})
			defer b.Close()
			// One host instance: a number missing from the index is a
			// new client, without a search (crmindex.Options.TrustMisses).
			idx := crmindex.New(b, crmindex.Options{TrustMisses: true})
			if _, err := idx.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			client = idx
			if setup.identityPassThrough {
				client = identityPassThrough{idx, b}
			}
		}
		// The lease must outlast the slowest event (engine.Options): the
		// baseline's events wait minutes for the rate limiter.
		stage, write, kind := crm.StageID("70012"), "POST /api/v4/leads/complex", channel.WhatsApp
		if setup.telegram {
			kind = channel.Telegram
		}
		if setup.inbox {
			stage, write = "70011", "POST /api/v4/leads/unsorted/forms"
		}
		e, err := engine.New(ctx, engine.Options{CRM: client, Sender: channeltest.NewRecorder(), LeaseTTL: time.Hour, Config: engine.Config{
			Channels: []engine.ChannelConfig{{ID: "wa", Kind: kind, Pipeline: "7001", Stage: stage}},
			Roles: []roles.Assignment{
				{User: "501", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
				{User: "502", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
			},
			Global: engine.GlobalSettings{UnansweredTasks: tasks.Settings{Enabled: true}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		srv.ResetCounts()
		if setup.faults {
			go func() {
				// Two 429s in a row (retried after 1 s and 2 s), then lost
				// answers of a deal batch and a task batch, then a lone 429
				// on each kind of write.
				time.Sleep(span / 4)
				srv.FailNext(write, 2, http.StatusTooManyRequests)
				time.Sleep(span / 4)
				srv.LoseNextAnswers(write, 1)
				srv.LoseNextAnswers("POST /api/v4/tasks", 1)
				time.Sleep(span / 4)
				srv.FailNext("POST /api/v4/tasks", 1, http.StatusTooManyRequests)
				srv.FailNext(write, 1, http.StatusTooManyRequests)
			}()
		}
		rnd := rand.New(rand.NewPCG(18, uint64(clients)))
		lat := make([]time.Duration, clients)
		results := make([]engine.InboundResult, clients)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range clients {
			at := time.Duration(rnd.Int64N(int64(span)))
			wg.Go(func() {
				time.Sleep(at)
				start := time.Now()
				msg := channel.Message{ID: fmt.Sprint("m", i), Chat: channel.Chat{Channel: "wa", ChatID: fmt.Sprintf("7916%07d", i)},
					Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hello", Time: start}
				if setup.telegram {
					// The provider gives the phone: found by phone in the
					// index, then by identity when that misses.
					msg.Phone = "+" + msg.Chat.ChatID
					msg.Chat.ChatID = fmt.Sprint("tg-user-", i)
				}
				for try := 0; ; try++ {
					r, err := e.ClientMessage(ctx, msg)
					if err == nil {
						results[i], lat[i] = r, time.Since(start)
						return
					}
					if try == 30 || errors.Is(err, context.Canceled) {
						t.Errorf("client %d: %v", i, err)
						return
					}
					mu.Lock()
					res.redelivered++
					if res.redelivered == 1 {
						t.Logf("first failure: %v", err)
					}
					mu.Unlock()
					time.Sleep(redeliverAfter(try))
				}
			})
		}
		wg.Wait()
		checkPlaced(t, srv, results, setup.inbox)
		slices.Sort(lat)
		res.p50, res.max = lat[len(lat)/2], lat[len(lat)-1]
		res.requests = srv.Requests()
		res.perClient = float64(srv.TotalRequests()) / float64(clients)
		if setup.inbox {
			res.claims = claimBurst(t, e, srv, results, span, rnd)
		}
	})
	return res
}

// claimBurst has users 501 and 502 (alternately) answer every client at
// random times within span, or at 5 replies per second when that is
// slower: each first reply claims the chat (the deal is accepted out of
// Unsorted with the replier responsible, and its contact) and completes
// the client's task. amoCRM accepts one Unsorted entry per request, so
// claims cannot be placed faster than the rate limit: above it the
// accepts queue up in the limiter, and once the queue outlasts crmbatch's
// batch timeout the batches fail and are delivered again. Latency runs
// from the reply until the engine returns. Requests are counted from the
// first reply on.
func claimBurst(t *testing.T, e *engine.Engine, srv *amocrmtest.Server, results []engine.InboundResult, span time.Duration, rnd *rand.Rand) *burstResult {
	t.Helper()
	srv.ResetCounts()
	span = max(span, time.Duration(len(results))*time.Second/5)
	var res burstResult
	var mu sync.Mutex
	lat := make([]time.Duration, len(results))
	var wg sync.WaitGroup
	for i, r := range results {
		at := time.Duration(rnd.Int64N(int64(span)))
		wg.Go(func() {
			time.Sleep(at)
			start := time.Now()
			m := engine.EmployeeMessage{ID: fmt.Sprint("r", i), User: crm.UserID(fmt.Sprint(501 + i%2)), Chat: r.Chat, Text: "hello"}
			for try := 0; ; try++ {
				_, err := e.EmployeeMessage(t.Context(), m)
				if err == nil {
					lat[i] = time.Since(start)
					return
				}
				if try == 30 || errors.Is(err, context.Canceled) {
					t.Errorf("reply to client %d: %v", i, err)
					return
				}
				mu.Lock()
				res.redelivered++
				mu.Unlock()
				time.Sleep(redeliverAfter(try))
			}
		})
	}
	wg.Wait()
	bad := 0
	for i, r := range results {
		l, _ := srv.Lead(mustAtoi(t, string(r.Deal)))
		c, _ := srv.Contact(mustAtoi(t, string(r.Contact)))
		tk, _ := srv.Task(mustAtoi(t, string(r.Task)))
		if want := 501 + i%2; l.Status != 70012 || l.Responsible != want || c.Responsible != want || !tk.Completed {
			if bad++; bad <= 5 {
				t.Errorf("client %d after %d's reply: lead %+v, contact responsible %d, task done %v", i, want, l, c.Responsible, tk.Completed)
			}
		}
	}
	slices.Sort(lat)
	res.p50, res.max = lat[len(lat)/2], lat[len(lat)-1]
	res.requests = srv.Requests()
	res.perClient = float64(srv.TotalRequests()) / float64(len(results))
	return &res
}

// checkPlaced verifies in the fake account that every client was placed
// exactly once: one contact with its phone, one lead linked to it with the
// responsible the engine reported (inbox: in Unsorted, with one entry,
// offered to the group), one open task on the lead; and round robin's
// equal shares.
func checkPlaced(t *testing.T, srv *amocrmtest.Server, results []engine.InboundResult, inbox bool) {
	t.Helper()
	byPhone := map[string]int{}
	for _, c := range srv.Contacts() {
		for _, p := range c.Phones {
			byPhone[p]++
		}
	}
	leads := map[int]amocrmtest.Lead{}
	for _, l := range srv.Leads() {
		leads[l.ID] = l
	}
	tasksOf := map[int]int{}
	for _, tk := range srv.Tasks() {
		if tk.EntityType == "leads" && !tk.Completed {
			tasksOf[tk.EntityID]++
		}
	}
	entries := map[int]int{}
	for _, u := range srv.Unsorted() {
		entries[u.Lead]++
	}
	shares := map[int]int{}
	bad := 0
	for i, r := range results {
		phone := fmt.Sprintf("+7916%07d", i)
		lid, _ := strconv.Atoi(string(r.Deal))
		l, ok := leads[lid]
		cid, _ := strconv.Atoi(string(r.Contact))
		problem := ""
		switch {
		case r.Outcome != engine.OutcomeNewClient && r.Outcome != engine.OutcomeReturningNewDeal && !r.DealCreated:
			problem = fmt.Sprintf("outcome %s", r.Outcome)
		case byPhone[phone] != 1:
			problem = fmt.Sprintf("%d contacts with %s", byPhone[phone], phone)
		case !ok || !slices.Equal(l.Contacts, []int{cid}):
			problem = fmt.Sprintf("deal %s: %+v, contact %s", r.Deal, l, r.Contact)
		case inbox && (l.Status != 70011 || entries[lid] != 1 || r.Responsible != ""):
			problem = fmt.Sprintf("deal %s at %d with %d Unsorted entries, responsible %q", r.Deal, l.Status, entries[lid], r.Responsible)
		case !inbox && (strconv.Itoa(l.Responsible) != string(r.Responsible) || r.Responsible == ""):
			problem = fmt.Sprintf("deal %s responsible %d, engine says %q", r.Deal, l.Responsible, r.Responsible)
		case tasksOf[lid] != 1 || r.Task == "":
			problem = fmt.Sprintf("deal %s has %d open tasks (engine: %q)", r.Deal, tasksOf[lid], r.Task)
		}
		if problem != "" {
			if bad++; bad <= 5 {
				t.Errorf("client %d: %s", i, problem)
			}
			continue
		}
		shares[l.Responsible]++
	}
	if n := len(srv.Leads()); n != len(results) {
		t.Errorf("%d leads for %d clients", n, len(results))
	}
	if n := len(srv.Contacts()); n != len(results) {
		t.Errorf("%d contacts for %d clients", n, len(results))
	}
	if d := shares[501] - shares[502]; !inbox && (d < -1 || d > 1) {
		t.Errorf("round robin shares %v; want equal", shares)
	}
}

// line prints a result; requests per client are per claim for claims.
func (r burstResult) line(name string) string {
	keys := make([]string, 0, len(r.requests))
	for k, n := range r.requests {
		keys = append(keys, fmt.Sprintf("%s×%d", strings.TrimPrefix(k, "/api/v4"), n))
	}
	sort.Strings(keys)
	return fmt.Sprintf("%-34s p50 %7.2fs  max %7.2fs  %.3f req/client  redelivered %d  [%s]",
		name, r.p50.Seconds(), r.max.Seconds(), r.perClient, r.redelivered, strings.Join(keys, ", "))
}

// TestBurst places a burst of new clients (1,000 within 60 s; 200
// within 12 s unless CRMBRIDGE_LONG=1), on a round-robin channel and on a
// first-responder one (Unsorted), through the engine on this adapter
// at its default 7 requests/s, with crmindex (phone lookups from the
// index, misses trusted: one host instance) over crmbatch (the default
// window) as crmbatch's documentation stacks them, beside the unbatched,
// unindexed adapter in the same run; then again with 429s and lost
// answers injected. Every client must be placed exactly once (deal,
// responsible or Unsorted entry, task). The batched WhatsApp runs are held
// to p50 ≤ 2 s, max ≤ 10 s and ≤ 0.1 requests per new client without
// faults, and so are the Telegram ones, where a client the index does not
// know by phone is looked up by messenger identity, also from the index;
// beside them, the same Telegram burst with identity lookups passed to
// crmbatch (each costing the adapter's identity search and Unsorted
// lookup), and with CRMBRIDGE_LONG=1 the adapter alone. With
// CRMBRIDGE_LONG=1 it also runs the baseline with the faults.
//
// Run: go test -run TestBurst -v ./crm/amocrm
// (CRMBRIDGE_LONG=1 for 1,000 clients).
func TestBurst(t *testing.T) {
	clients, span := 200, 12*time.Second
	long := os.Getenv("CRMBRIDGE_LONG") != ""
	if long {
		clients, span = 1000, 60*time.Second
	}
	setups := []burstSetup{
		{name: "adapter alone (baseline)"},
		{name: "index + batch", batched: true},
		{name: "index + batch, 429s and lost answers", batched: true, faults: true},
		{name: "Telegram: index + batch", batched: true, telegram: true},
		{name: "Telegram, identity not indexed: index + batch", batched: true, telegram: true, identityPassThrough: true},
		{name: "Unsorted: adapter alone", inbox: true},
		{name: "Unsorted: index + batch", batched: true, inbox: true},
		{name: "Unsorted: index + batch, faults", batched: true, inbox: true, faults: true},
	}
	if long {
		setups = append(setups,
			burstSetup{name: "adapter alone, 429s and lost answers", faults: true},
			burstSetup{name: "Telegram: adapter alone", telegram: true},
			burstSetup{name: "Unsorted: adapter alone, faults", inbox: true, faults: true})
	}
	t.Logf("%d new clients within %v, 7 requests/s", clients, span)
	for _, s := range setups {
		r := runBurst(t, clients, span, s)
		t.Log(r.line(s.name))
		if r.claims != nil {
			t.Log(r.claims.line("  claims by first reply"))
		}
		if s.batched && !s.faults && !s.identityPassThrough && (r.p50 > 2*time.Second || r.max > 10*time.Second || r.perClient > 0.1) {
			t.Errorf("%s: p50 %v, max %v, %.3f requests per client; want p50 ≤ 2s, max ≤ 10s, ≤ 0.1", s.name, r.p50, r.max, r.perClient)
		}
	}
}
