package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/crmbridge/crmbridge/tasks"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// withFeatures sets the features of channel id.
func withFeatures(id channel.ID, f routing.Features) func(*engine.Config, *engine.Options) {
	return func(c *engine.Config, _ *engine.Options) {
		for i := range c.Channels {
			if c.Channels[i].ID == id {
				c.Channels[i].Features = f
			}
		}
	}
}

func (fx *fixture) dealResponsible(id crm.DealID) crm.UserID {
	for _, d := range fx.crm.Deals() {
		if d.ID == id {
			return d.Responsible
		}
	}
	fx.t.Fatalf("no deal %s", id)
	return ""
}

func (fx *fixture) tick() engine.TickResult {
	fx.t.Helper()
	r, err := fx.engine.Tick(fx.t.Context(), fx.clock.Now())
	if err != nil {
		fx.t.Fatalf("Tick: %v", err)
	}
	return r
}

// Capacity with a waiting queue on the round-robin channel: the third
// client waits with its deal created, and is assigned (CRM included) by
// the Tick after a client is freed.
func TestEngineCapacityAndQueue(t *testing.T) {
	fx := newFixture(t, withFeatures(tg, routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}))
	first := fx.mustIn(fx.in(tg, "1001", "hi"))
	second := fx.mustIn(fx.in(tg, "1002", "hi"))
	third := fx.mustIn(fx.in(tg, "1003", "hi"))
	if first.Responsible != boris || second.Responsible != vera {
		t.Fatalf("first two to %s and %s; want boris and vera", first.Responsible, second.Responsible)
	}
	if third.Responsible != "" || !third.DealCreated || third.Distribution == nil || third.Distribution.Why.Rule != routing.RuleQueue {
		t.Fatalf("third client = %+v; want a deal created and the client queued", third)
	}
	if r := fx.tick(); len(r.Assigned) != 0 {
		t.Fatalf("Tick with everyone at capacity assigned %+v", r.Assigned)
	}
	if _, _, err := fx.engine.Distributor().Free(t.Context(), channel.Chat{Channel: tg, ChatID: "1001"}); err != nil {
		t.Fatal(err)
	}
	r := fx.tick()
	if len(r.Assigned) != 1 || r.Assigned[0].Chat.ChatID != "1003" || r.Assigned[0].Responsible != boris {
		t.Fatalf("Tick after a free = %+v; want 1003 to boris", r.Assigned)
	}
	if got := fx.dealResponsible(third.Deal); got != boris {
		t.Errorf("the queued client's deal is %s's in the CRM; want boris", got)
	}
	if r := fx.tick(); len(r.Assigned) != 0 {
		t.Errorf("a second Tick assigned again: %+v", r.Assigned)
	}
}

// Escalation on the round-robin channel: unanswered for 10 minutes, the
// client passes to the next in rotation, in the CRM too, once; a reply
// stops the clock.
func TestEngineEscalation(t *testing.T) {
	fx := newFixture(t, withFeatures(tg, routing.Features{Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)}}))
	quiet := fx.mustIn(fx.in(tg, "2001", "hello?"))
	answered := fx.mustIn(fx.in(tg, "2002", "hello?"))
	fx.mustOut(fx.out(answered.Responsible, tg, "2002", "Good morning!"))
	fx.clock.Advance(9 * time.Minute)
	if r := fx.tick(); len(r.Escalated) != 0 {
		t.Fatalf("escalated before the deadline: %+v", r.Escalated)
	}
	fx.clock.Advance(time.Minute)
	r := fx.tick()
	if len(r.Escalated) != 1 || r.Escalated[0].Chat.ChatID != "2001" {
		t.Fatalf("Tick = %+v; want only the unanswered 2001 escalated", r.Escalated)
	}
	h := r.Escalated[0]
	if h.Responsible == quiet.Responsible || h.Responsible == "" || h.Decision.Why.Rule != routing.RuleEscalation {
		t.Fatalf("escalation %+v; want someone other than %s", h, quiet.Responsible)
	}
	if got := fx.dealResponsible(quiet.Deal); got != h.Responsible {
		t.Errorf("CRM responsible %s; want %s", got, h.Responsible)
	}
	if !slices.Equal(notified(h.Notify), []crm.UserID{h.Responsible}) {
		t.Errorf("notify %v", h.Notify)
	}
	fx.clock.Advance(time.Hour)
	if r := fx.tick(); len(r.Escalated) != 0 {
		t.Errorf("escalated twice: %+v", r.Escalated)
	}
}

// A first-responder offer nobody answers widens to the supervisor.
func TestEngineEscalationWidensOffer(t *testing.T) {
	fx := newFixture(t, withFeatures(wa, routing.Features{Escalation: routing.Escalation{After: routing.Duration(5 * time.Minute)}}))
	fx.mustIn(fx.in(wa, "79160000001", "hi"))
	fx.clock.Advance(5 * time.Minute)
	r := fx.tick()
	if len(r.Escalated) != 1 || !slices.Equal(r.Escalated[0].Decision.Offered, []crm.UserID{anna, boris, sam}) {
		t.Fatalf("Tick = %+v; want the offer widened to sam", r.Escalated)
	}
	res := fx.mustOut(fx.out(sam, wa, "79160000001", "Sam here"))
	if res.Responsible != sam {
		t.Errorf("sam's reply: responsible %s; want sam (he claimed it)", res.Responsible)
	}
}

// A claim counts toward capacity: once anna holds one client on the
// first-responder channel, the next offer skips her.
func TestEngineClaimHolds(t *testing.T) {
	fx := newFixture(t, withFeatures(wa, routing.Features{Capacity: 1}))
	fx.mustIn(fx.in(wa, "79160000001", "hi"))
	fx.mustOut(fx.out(anna, wa, "79160000001", "Anna here"))
	next := fx.mustIn(fx.in(wa, "79160000002", "hi"))
	if !slices.Equal(notified(next.Notify), []crm.UserID{boris}) {
		t.Errorf("second offer notifies %v; want boris only (anna at capacity)", notified(next.Notify))
	}
}

func TestEngineFeaturesConfig(t *testing.T) {
	in := `{"id":"tg","kind":"telegram","pipeline":"10","stage":"101","returning":"new_deal","capacity":2,"weights":{"2":3},"when_nobody":"queue"}`
	var cc engine.ChannelConfig
	if err := json.Unmarshal([]byte(in), &cc); err != nil {
		t.Fatal(err)
	}
	if cc.Capacity != 2 || cc.Weights[boris] != 3 || cc.WhenNobody != routing.QueueWhenNobody {
		t.Fatalf("decoded %+v", cc)
	}
	out, err := json.Marshal(cc)
	if err != nil || string(out) != in {
		t.Errorf("round trip:\n got %s, %v\nwant %s", out, err, in)
	}
	cfg := testConfig()
	cfg.Channels[1].CapacityOf = map[crm.UserID]int{boris: -1}
	_, err = engine.New(t.Context(), engine.Options{CRM: newFixture(t).crm, Sender: newFixture(t).sent, Config: cfg, Catalog: ptr(testCatalog(t))})
	var ce *engine.ConfigError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Field, "channels[1].") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("a bad capacity: error %v; want a ConfigError naming channels[1]'s capacity_of", err)
	}
}

func ptr[T any](v T) *T { return &v }

// A deal closed in the CRM frees its client's place when the engine next
// reads the CRM (here: the client writes again after the cache expired).
func TestEngineClosedDealFreesCapacity(t *testing.T) {
	notify := func(c *engine.Config, _ *engine.Options) { c.Channels[1].Returning = routing.NotifyResponsible }
	fx := newFixture(t, withFeatures(tg, routing.Features{Capacity: 1}), notify)
	first := fx.mustIn(fx.in(tg, "3001", "hi"))
	fx.mustIn(fx.in(tg, "3002", "hi")) // vera
	if third := fx.mustIn(fx.in(tg, "3003", "hi")); third.Responsible != "" {
		t.Fatalf("third client to %s; want nobody (everyone at capacity)", third.Responsible)
	}
	if err := fx.crm.CloseDeal(first.Deal, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	fx.clock.Advance(time.Hour) // past the client cache
	fx.mustIn(fx.in(tg, "3001", "thanks!"))
	if fourth := fx.mustIn(fx.in(tg, "3004", "hi")); fourth.Responsible != first.Responsible {
		t.Errorf("after %s's deal closed the next client went to %q; want %s", first.Responsible, fourth.Responsible, first.Responsible)
	}
}

// Four Engines (host instances) sharing every store: 50 new clients at
// once against a limit of 3 on the round-robin channel. Nobody ever holds
// more than 3 clients in the CRM; the rest wait with their deals created,
// and Ticks on all four instances, as deals close, assign each waiting
// client once, oldest first.
func TestEnginesShareCapacity(t *testing.T) {
	fx := newFixture(t)
	cfg := testConfig()
	cfg.Channels[1].Features = routing.Features{Capacity: 3, WhenNobody: routing.QueueWhenNobody}
	cfg.Channels[1].Returning = routing.NotifyResponsible
	opt := engine.Options{CRM: fx.crm, Sender: fx.sent, Config: cfg, Now: fx.clock.Now,
		State: &engine.MemoryState{Now: fx.clock.Now}, Claims: &routing.MemoryClaims{}, Rotation: &routing.MemoryRotation{},
		Streaks: &tasks.MemoryStore{}, Queue: &routing.MemoryQueue{}, Escalations: &routing.MemoryEscalations{}}
	var es [4]*engine.Engine
	for i := range es {
		var err error
		if es[i], err = engine.New(t.Context(), opt); err != nil {
			t.Fatal(err)
		}
	}
	openDeals := func() map[crm.UserID]int {
		n := map[crm.UserID]int{}
		for _, d := range fx.crm.Deals() {
			if !d.Closed() && d.Responsible != "" {
				n[d.Responsible]++
			}
		}
		return n
	}
	const clients = 50
	results := make([]engine.InboundResult, clients)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		m := fx.in(tg, fmt.Sprintf("5%03d", i), "hi")
		m.Time = fx.clock.Now().Add(time.Duration(i) * time.Millisecond)
		wg.Go(func() {
			<-start
			r, err := es[i%len(es)].ClientMessage(t.Context(), m)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	close(start)
	wg.Wait()
	if n := openDeals(); n[boris] != 3 || n[vera] != 3 || len(fx.crm.Deals()) != clients {
		t.Fatalf("open deals by responsible %v of %d deals; want 3 each for boris and vera, 50 deals", n, len(fx.crm.Deals()))
	}
	// close deals one by one; every instance ticks; check the cap each time
	assigned := map[string]int{}
	var order []string // chat IDs in assignment order; IDs grow with arrival time
	for round := 0; len(assigned) < clients-6 && round < 200; round++ {
		for _, d := range fx.crm.Deals() {
			if !d.Closed() && d.Responsible != "" {
				if err := fx.crm.CloseDeal(d.ID, crm.DealWon); err != nil {
					t.Fatal(err)
				}
				// the engine learns of the close from its client's next message
				for i, r := range results {
					if r.Deal == d.ID {
						m := fx.in(tg, fmt.Sprintf("5%03d", i), "thanks")
						fx.clock.Advance(6 * time.Minute) // past the client cache
						if _, err := es[round%len(es)].ClientMessage(t.Context(), m); err != nil {
							t.Fatal(err)
						}
					}
				}
				break
			}
		}
		var tw sync.WaitGroup
		var mu sync.Mutex
		for _, e := range es {
			tw.Go(func() {
				r, err := e.Tick(t.Context(), fx.clock.Now())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, h := range r.Assigned {
					if !h.Decision.Why.Repeat {
						assigned[h.Chat.ChatID]++
						order = append(order, h.Chat.ChatID)
					}
				}
			})
		}
		tw.Wait()
		for u, n := range openDeals() {
			if n > 3 {
				t.Fatalf("round %d: %s holds %d open deals in the CRM; limit 3", round, u, n)
			}
		}
	}
	for c, n := range assigned {
		if n != 1 {
			t.Errorf("%s assigned %d times", c, n)
		}
	}
	if len(assigned) != clients-6 {
		t.Errorf("%d waiting clients assigned; want %d", len(assigned), clients-6)
	}
	if !slices.IsSorted(order) {
		t.Errorf("waiting clients assigned in the order %v; want oldest first", order)
	}
}

// A manager at capacity cannot claim another offered chat: the reply is
// refused with an error matching routing.ErrAtCapacity, and the chat
// stays offered to the others.
func TestEngineClaimAtCapacityRefused(t *testing.T) {
	fx := newFixture(t, withFeatures(wa, routing.Features{Capacity: 1}))
	fx.mustIn(fx.in(wa, "79160000001", "hi"))
	fx.mustIn(fx.in(wa, "79160000002", "hi")) // offered to anna and boris too
	fx.mustOut(fx.out(anna, wa, "79160000001", "Anna here"))
	_, err := fx.engine.EmployeeMessage(t.Context(), fx.out(anna, wa, "79160000002", "me too"))
	if !errors.Is(err, routing.ErrAtCapacity) {
		t.Fatalf("anna's second claim: %v; want ErrAtCapacity", err)
	}
	if r := fx.mustOut(fx.out(boris, wa, "79160000002", "Boris here")); r.Responsible != boris {
		t.Errorf("boris's claim: responsible %s", r.Responsible)
	}
}

// Owner off shift on the round-robin channel: boris, responsible for an
// open deal, is on leave when his client writes.
func TestEngineOwnerOffShift(t *testing.T) {
	leave := map[crm.UserID]routing.Schedule{boris: {Leave: []routing.Period{{From: "2026-11-24", To: "2026-11-30"}}}}
	for _, c := range []struct {
		policy      routing.OwnerPolicy
		responsible crm.UserID
		notify      []crm.UserID
		outcome     engine.Outcome
	}{
		{routing.KeepOwner, boris, []crm.UserID{boris}, engine.OutcomeOpenDeal},
		{routing.CoverOwner, boris, []crm.UserID{boris, vera}, engine.OutcomeOpenDeal},
		{routing.ReassignOwner, vera, []crm.UserID{vera}, engine.OutcomeReassigned},
	} {
		fx := newFixture(t, withFeatures(tg, routing.Features{OwnerOffShift: c.policy, Schedules: leave}))
		contact := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "7001"}}, Responsible: boris})
		deal := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: boris, Contacts: []crm.ContactID{contact.ID}})
		r := fx.mustIn(fx.in(tg, "7001", "are you there?"))
		if r.Outcome != c.outcome || r.Responsible != c.responsible || !slices.Equal(notified(r.Notify), c.notify) {
			t.Errorf("%v: outcome %s, responsible %s, notify %v; want %s, %s, %v", c.policy, r.Outcome, r.Responsible, notified(r.Notify), c.outcome, c.responsible, c.notify)
		}
		if got := fx.dealResponsible(deal.ID); got != c.responsible {
			t.Errorf("%v: CRM responsible %s; want %s", c.policy, got, c.responsible)
		}
	}
}

// Owner off shift, cover: boris, responsible for an open deal, is on leave
// when his client writes. Vera, the channel's other eligible employee,
// covers: she sees the chat and writes to the client, the reply closes the
// unanswered task, and boris stays responsible in the CRM. Once boris is
// back, the cover ends and her write is refused. Under keep nobody covers.
func TestEngineOwnerOffShiftCoverWrites(t *testing.T) {
	leave := map[crm.UserID]routing.Schedule{boris: {Leave: []routing.Period{{From: "2026-11-24", To: "2026-11-30"}}}}
	chat := channel.Chat{Channel: tg, ChatID: "7001"}
	setup := func(t *testing.T, p routing.OwnerPolicy) (*fixture, crm.Deal, engine.InboundResult) {
		fx := newFixture(t, withFeatures(tg, routing.Features{OwnerOffShift: p, Schedules: leave}))
		contact := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "7001"}}, Responsible: boris})
		deal := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: boris, Contacts: []crm.ContactID{contact.ID}})
		return fx, deal, fx.mustIn(fx.in(tg, "7001", "are you there?"))
	}
	refused := func(t *testing.T, fx *fixture, user crm.UserID, why roles.Reason) {
		t.Helper()
		_, err := fx.engine.EmployeeMessage(t.Context(), fx.out(user, tg, "7001", "hello"))
		perr, ok := errors.AsType[*engine.PermissionError](err)
		if !ok || !errors.Is(err, engine.ErrForbidden) || perr.Reason != why || perr.User != user || perr.Action != "write" {
			t.Errorf("%s writes: %v; want a PermissionError for %q", user, err, why)
		}
		if seen, _, err := fx.engine.CanView(t.Context(), user, chat); err != nil || seen {
			t.Errorf("%s sees the chat: %v, %v; want not", user, seen, err)
		}
		if _, err := fx.engine.ResetUnread(t.Context(), engine.UnreadReset{User: user, Chat: chat}); !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("%s resets the unread counter: %v; want refused", user, err)
		}
	}

	t.Run("cover", func(t *testing.T) {
		fx, deal, in := setup(t, routing.CoverOwner)
		if in.Task == "" || !slices.Equal(notified(in.Notify), []crm.UserID{boris, vera}) {
			t.Fatalf("client's message: task %q, notify %v; want a task, boris and vera notified", in.Task, notified(in.Notify))
		}
		if seen, why, err := fx.engine.CanView(t.Context(), vera, chat); err != nil || !seen || why != roles.ReasonCovering {
			t.Errorf("vera CanView = %v, %q, %v; want true, %q", seen, why, err, roles.ReasonCovering)
		}
		if got, err := fx.engine.VisibleChats(t.Context(), vera, []channel.Chat{chat}); err != nil || len(got) != 1 {
			t.Errorf("vera's visible chats %v, %v; want the covered chat", got, err)
		}
		// anna works the channel but receives no new clients: not eligible, so not covering.
		refused(t, fx, anna, roles.ReasonNotTheirs)

		r := fx.mustOut(fx.out(vera, tg, "7001", "Vera here, covering for Boris"))
		if r.Claimed || r.Responsible != boris || r.TaskClosed != in.Task || !r.Why.Has(engine.StepCovering) {
			t.Errorf("vera's reply: %+v; want no claim, boris responsible, task %s closed, a covering step", r, in.Task)
		}
		if sent := fx.sent.Sent(); len(sent) != 1 || sent[0].Author.UserID != string(vera) {
			t.Errorf("sent %+v; want vera's one message", sent)
		}
		if got := fx.dealResponsible(deal.ID); got != boris {
			t.Errorf("CRM responsible %s after the covering reply; want boris", got)
		}
		for _, task := range fx.crm.Tasks() {
			if task.ID == in.Task && !task.Done {
				t.Errorf("task %s still open after the covering reply", task.ID)
			}
		}
		if !strings.Contains(r.Why.String(), "3 covers for 2, who is away") {
			t.Errorf("explanation %q; want vera covering for boris named", r.Why)
		}

		fx.clock.Advance(7 * 24 * time.Hour) // boris is back on 1 December
		refused(t, fx, vera, roles.ReasonNotTheirs)
		if r := fx.mustOut(fx.out(boris, tg, "7001", "Boris is back")); r.Responsible != boris {
			t.Errorf("boris's reply: responsible %s", r.Responsible)
		}
	})

	t.Run("keep", func(t *testing.T) {
		fx, deal, _ := setup(t, routing.KeepOwner)
		refused(t, fx, vera, roles.ReasonNotTheirs)
		if got := fx.dealResponsible(deal.ID); got != boris {
			t.Errorf("CRM responsible %s; want boris", got)
		}
	})
}

// A covering reply counts as the reply for escalation too: a new client
// picked for boris writes again while the host's availability hook says
// boris is away; vera covers, and no escalation follows the deadline.
func TestEngineOwnerOffShiftCoverStopsEscalation(t *testing.T) {
	var borisAway atomic.Bool
	fx := newFixture(t, withFeatures(tg, routing.Features{OwnerOffShift: routing.CoverOwner, Escalation: routing.Escalation{After: routing.Duration(10 * time.Minute)}}),
		func(_ *engine.Config, o *engine.Options) {
			o.Available = func(_ context.Context, _ channel.ID, u crm.UserID) bool { return u != boris || !borisAway.Load() }
		})
	first := fx.mustIn(fx.in(tg, "3001", "hi"))
	if first.Responsible != boris {
		t.Fatalf("the new client went to %s; the test needs boris", first.Responsible)
	}
	borisAway.Store(true)
	fx.clock.Advance(time.Minute)
	again := fx.mustIn(fx.in(tg, "3001", "anyone?"))
	if !slices.Equal(notified(again.Notify), []crm.UserID{boris, vera}) {
		t.Fatalf("second message notifies %v; want boris and vera (covering)", notified(again.Notify))
	}
	r := fx.mustOut(fx.out(vera, tg, "3001", "Vera here"))
	if r.Responsible != boris || r.TaskClosed != first.Task || r.TaskClosed == "" {
		t.Errorf("vera's covering reply: responsible %s, task closed %q; want boris, %q", r.Responsible, r.TaskClosed, first.Task)
	}
	fx.clock.Advance(time.Hour)
	if res := fx.tick(); len(res.Escalated) != 0 {
		t.Errorf("escalated after a covering reply: %+v", res.Escalated)
	}
	if got := fx.dealResponsible(first.Deal); got != boris {
		t.Errorf("CRM responsible %s; want boris", got)
	}
}

// Offers count toward capacity across host instances: three Engines on
// one set of stores receive 30 new WhatsApp clients at once (first
// responder, Anna and Boris eligible, a limit of 1 each) while Anna and
// Boris reply to random chats. Nobody's open clients plus unclaimed
// offers exceed the limit at any sampled point (but for the instant a
// claim counts its client before its offer stops counting) or by the
// records at the end, and every client is offered: within the limits, or
// to every writer when nobody has room.
func TestEngineOffersWithinCapacity(t *testing.T) {
	fx := newFixture(t)
	cfg := testConfig()
	cfg.Channels[0].Features = routing.Features{Capacity: 1}
	claims, rotation := &routing.MemoryClaims{}, &routing.MemoryRotation{}
	opt := engine.Options{CRM: fx.crm, Sender: fx.sent, Config: cfg, Now: fx.clock.Now,
		State: &engine.MemoryState{Now: fx.clock.Now}, Claims: claims, Rotation: rotation, Streaks: &tasks.MemoryStore{}}
	var es [3]*engine.Engine
	for i := range es {
		var err error
		if es[i], err = engine.New(t.Context(), opt); err != nil {
			t.Fatal(err)
		}
	}
	users := []crm.UserID{anna, boris}
	open := func() []routing.Member {
		ms, err := rotation.Members(context.Background(), string(wa), users)
		if err != nil {
			t.Error(err)
		}
		return ms
	}
	// A claim counts its client before its offer stops counting: a
	// sample allows one more per reply of the employee running across it.
	started := map[crm.UserID]*atomic.Int64{anna: new(atomic.Int64), boris: new(atomic.Int64)}
	finished := map[crm.UserID]*atomic.Int64{anna: new(atomic.Int64), boris: new(atomic.Int64)}
	var over atomic.Int64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			before := map[crm.UserID]int64{anna: finished[anna].Load(), boris: finished[boris].Load()}
			for _, m := range open() {
				if int64(m.Open) > 1+started[m.User].Load()-before[m.User] {
					over.Add(1)
				}
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	const clients = 30
	chatID := func(i int) string { return fmt.Sprintf("7916%07d", i) }
	var mu sync.Mutex
	fallback := map[string]bool{}
	claimedBy := map[string]crm.UserID{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		e := es[i%len(es)]
		m := fx.in(wa, chatID(i), "hi")
		wg.Go(func() {
			<-start
			r, err := e.ClientMessage(t.Context(), m)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			if r.Outcome != engine.OutcomeOffered && r.Outcome != engine.OutcomeNewClient || len(r.Notify) == 0 {
				t.Errorf("client %d: outcome %s, notify %v; want offered", i, r.Outcome, notified(r.Notify))
			}
			if d := r.Distribution; d != nil && d.Why.Fallback != nil {
				mu.Lock()
				fallback[chatID(i)] = true
				mu.Unlock()
			}
		})
		u := users[i%2]
		reply := fx.out(u, wa, chatID((i*7)%clients), "hello")
		wg.Go(func() {
			<-start
			started[u].Add(1)
			r, err := e.EmployeeMessage(t.Context(), reply)
			finished[u].Add(1)
			switch {
			case err == nil && r.Claimed:
				mu.Lock()
				claimedBy[reply.Chat.ChatID] = u
				mu.Unlock()
			case err == nil, errors.Is(err, routing.ErrAtCapacity), errors.Is(err, engine.ErrForbidden):
			default:
				t.Errorf("%s replies to %s: %v", u, reply.Chat, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(done)
	sampler.Wait()
	if n := over.Load(); n > 0 {
		t.Errorf("%d samples with someone over the limit of 1", n)
	}
	got := map[crm.UserID]int{}
	for i := range clients {
		chat := channel.Chat{Channel: wa, ChatID: chatID(i)}
		if u := claimedBy[chat.ChatID]; u != "" {
			got[u]++
		}
		st, found, err := claims.Get(t.Context(), chat)
		if err != nil {
			t.Fatal(err)
		}
		if found && !st.Claimed() && !fallback[chat.ChatID] {
			for _, u := range st.Offered {
				got[u]++
			}
		}
	}
	for _, m := range open() {
		if got[m.User] > 1 || got[m.User] != m.Open {
			t.Errorf("%s holds %d open clients and offers by the records, %d by the store; limit 1", m.User, got[m.User], m.Open)
		}
	}
}
