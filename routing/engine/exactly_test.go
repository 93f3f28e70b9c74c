package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// lossy is a CRM whose creates can lose their answer: the Fake does the
// work, and the caller gets crm.ErrUnavailable, as after a timeout.
type lossy struct {
	*crmtest.Fake
	mu   sync.Mutex
	lose map[string]int
}

func (l *lossy) arm(method string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lose == nil {
		l.lose = map[string]int{}
	}
	l.lose[method] += n
}

func (l *lossy) lost(method string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lose[method] == 0 {
		return false
	}
	l.lose[method]--
	return true
}

var errLost = fmt.Errorf("answer lost after the CRM did the work: %w", crm.ErrUnavailable)

func (l *lossy) CreateTask(ctx context.Context, t crm.NewTask) (crm.Task, error) {
	tk, err := l.Fake.CreateTask(ctx, t)
	if err == nil && l.lost(crmtest.MethodCreateTask) {
		return crm.Task{}, errLost
	}
	return tk, err
}

func (l *lossy) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	deal, c, err := l.Fake.CreateDeal(ctx, d)
	if err == nil && l.lost(crmtest.MethodCreateDeal) {
		return crm.Deal{}, crm.Contact{}, errLost
	}
	return deal, c, err
}

func newLossyFixture(t *testing.T) (*fixture, *lossy) {
	var l *lossy
	fx := newFixture(t, func(_ *engine.Config, o *engine.Options) {
		l = &lossy{Fake: o.CRM.(*crmtest.Fake)}
		o.CRM = l
	})
	return fx, l
}

func openTasks(f *crmtest.Fake) (open, all int) {
	for _, t := range f.Tasks() {
		if !t.Done {
			open++
		}
	}
	return open, len(f.Tasks())
}

// A task whose creation answer was lost: the redelivery finds it instead
// of creating a second one, and the employee's reply closes it.
func TestLostTaskAnswer(t *testing.T) {
	for _, ch := range []channel.ID{wa, tg} {
		fx, l := newLossyFixture(t)
		m := fx.in(ch, "79161234567", "hi")
		l.arm(crmtest.MethodCreateTask, 1)
		if _, err := fx.engine.ClientMessage(t.Context(), m); !errors.Is(err, crm.ErrUnavailable) {
			t.Fatalf("%s: first delivery: err = %v; want the lost answer's ErrUnavailable", ch, err)
		}
		r := fx.mustIn(m)
		if open, all := openTasks(fx.crm); open != 1 || all != 1 {
			t.Fatalf("%s: after the redelivery: %d open of %d tasks; want exactly one", ch, open, all)
		}
		if !r.Why.Has(engine.StepTaskFound) || r.Task != fx.crm.Tasks()[0].ID {
			t.Errorf("%s: redelivery = %+v (%v); want the task found in the CRM", ch, r, r.Why)
		}
		user := r.Responsible
		if user == "" {
			user = anna // offered: anna's reply claims the chat
		}
		out := fx.mustOut(fx.out(user, ch, "79161234567", "answer"))
		if open, _ := openTasks(fx.crm); open != 0 || out.TaskClosed != r.Task {
			t.Errorf("%s: after the reply %d tasks open (closed %q); want none open", ch, open, out.TaskClosed)
		}
	}
}

// A deal whose creation answer was lost: the redelivery finds the contact
// and deal the CRM made, keeps the pick, and creates nothing twice.
func TestLostDealAnswer(t *testing.T) {
	for _, ch := range []channel.ID{wa, tg} {
		fx, l := newLossyFixture(t)
		m := fx.in(ch, "79161234567", "hi")
		l.arm(crmtest.MethodCreateDeal, 1)
		if _, err := fx.engine.ClientMessage(t.Context(), m); !errors.Is(err, crm.ErrUnavailable) {
			t.Fatalf("%s: first delivery: err = %v; want ErrUnavailable", ch, err)
		}
		r := fx.mustIn(m)
		if c, d, k := len(fx.crm.Contacts()), len(fx.crm.Deals()), len(fx.crm.Tasks()); c != 1 || d != 1 || k != 1 {
			t.Fatalf("%s: contacts %d deals %d tasks %d; want 1 each", ch, c, d, k)
		}
		if r.Outcome != engine.OutcomeNewClient || r.Deal != fx.crm.Deals()[0].ID || !r.Why.Has(engine.StepFoundEarlier) {
			t.Errorf("%s: redelivery = %v %v (%v); want a new client, its deal found", ch, r.Outcome, r.Deal, r.Why)
		}
		if ch == tg && (r.Responsible != boris || fx.crm.Deals()[0].Responsible != boris) {
			t.Errorf("tg: responsible %q, deal's %q; want boris, the first pick", r.Responsible, fx.crm.Deals()[0].Responsible)
		}
		if ch == wa && len(r.Notify) != 2 {
			t.Errorf("wa: notified %v; want the offered group", notified(r.Notify))
		}
	}
}

// A new client's round-robin turn belongs to the client: two new clients'
// first messages fail, their second messages arrive first, then the first
// ones are redelivered. Two always-eligible employees end 1 : 1.
func TestTurnBelongsToClient(t *testing.T) {
	fx := newFixture(t)
	a1, b1 := fx.in(tg, "client-a", "1"), fx.in(tg, "client-b", "1")
	a2, b2 := fx.in(tg, "client-a", "2"), fx.in(tg, "client-b", "2")
	fx.crm.FailNext(crmtest.MethodCreateDeal, 2, crm.ErrUnavailable)
	for _, m := range []channel.Message{a1, b1} {
		if _, err := fx.engine.ClientMessage(t.Context(), m); !errors.Is(err, crm.ErrUnavailable) {
			t.Fatalf("%s: err = %v; want ErrUnavailable", m.Chat, err)
		}
	}
	for _, m := range []channel.Message{b2, a2, b1, a1} {
		fx.mustIn(m)
	}
	got := map[crm.UserID]int{}
	for _, d := range fx.crm.Deals() {
		got[d.Responsible]++
	}
	if len(fx.crm.Deals()) != 2 || got[boris] != 1 || got[vera] != 1 {
		t.Errorf("deals %d, per responsible %v; want 2 deals, boris 1 and vera 1", len(fx.crm.Deals()), got)
	}
}

// A new Engine over fresh in-memory state (a restart) receiving messages it
// already processed creates no second deal and no second task.
func TestRestartRedelivery(t *testing.T) {
	fx := newFixture(t)
	var msgs []channel.Message
	for _, ch := range []channel.ID{wa, tg} {
		m := fx.in(ch, "79161234567", "hi")
		fx.mustIn(m)
		msgs = append(msgs, m)
	}
	deals, taskCount := len(fx.crm.Deals()), len(fx.crm.Tasks())
	restarted, err := engine.New(t.Context(), engine.Options{CRM: fx.crm, Sender: fx.sent, Config: testConfig(), Now: fx.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		r, err := restarted.ClientMessage(t.Context(), m)
		if err != nil {
			t.Fatalf("%s after the restart: %v", m.Chat, err)
		}
		if r.Task == "" || !r.Why.Has(engine.StepTaskFound) {
			t.Errorf("%s after the restart: %+v (%v); want the open task found", m.Chat, r, r.Why)
		}
	}
	if len(fx.crm.Deals()) != deals || len(fx.crm.Tasks()) != taskCount {
		t.Errorf("after the restart: deals %d→%d, tasks %d→%d; want no new ones", deals, len(fx.crm.Deals()), taskCount, len(fx.crm.Tasks()))
	}
	if n := len(fx.crm.Contacts()); n != 2 {
		t.Errorf("contacts = %d; want 2 (one per channel's client)", n)
	}
}

// Two Engines (two host instances) sharing their stores: concurrent
// deliveries of one new client's messages to both create one contact, one
// deal and one task.
func TestTwoInstancesShareState(t *testing.T) {
	fx := newFixture(t)
	state := &engine.MemoryState{Now: fx.clock.Now}
	claims, rotation := &routing.MemoryClaims{}, &routing.MemoryRotation{}
	streaks := &tasks.MemoryStore{}
	opt := engine.Options{CRM: fx.crm, Sender: fx.sent, Config: testConfig(), Now: fx.clock.Now,
		State: state, Claims: claims, Rotation: rotation, Streaks: streaks}
	var es [2]*engine.Engine
	for i := range es {
		var err error
		if es[i], err = engine.New(t.Context(), opt); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 40 {
		m := fx.in(tg, "shared-client", "hi")
		for _, e := range es[:1+i%2] {
			wg.Go(func() {
				<-start
				if _, err := e.ClientMessage(t.Context(), m); err != nil {
					t.Error(err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if c, d, k := len(fx.crm.Contacts()), len(fx.crm.Deals()), len(fx.crm.Tasks()); c != 1 || d != 1 || k != 1 {
		t.Errorf("contacts %d deals %d tasks %d; want 1 each", c, d, k)
	}
}

// A group chat's message is not a client's: nothing is created.
func TestGroupMessage(t *testing.T) {
	fx := newFixture(t)
	m := fx.in(wa, "79161234567-1600000000@g.us", "hello all")
	m.Group = true
	r, err := fx.engine.ClientMessage(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != engine.OutcomeGroup || !r.Why.Has(engine.StepGroup) || len(r.Notify) != 0 {
		t.Errorf("group message = %+v; want outcome group, nobody notified", r)
	}
	if n := fx.crm.TotalCalls(); n != 0 || len(fx.crm.Contacts()) != 0 {
		t.Errorf("a group message made %d CRM calls, %d contacts; want none", n, len(fx.crm.Contacts()))
	}
}

// Returning client under the new-deal policy: the new deal goes to the
// round-robin pick, and the contact follows it (one owner per client).
func TestReturningNewDealOwnerFollows(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "office-42"}}, Responsible: anna})
	d := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	if err := fx.crm.CloseDeal(d.ID, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	r := fx.mustIn(fx.in(tg, "office-42", "ещё воды"))
	if r.Outcome != engine.OutcomeReturningNewDeal || r.Responsible != boris {
		t.Fatalf("returning client = %v to %q; want a new deal for boris", r.Outcome, r.Responsible)
	}
	for _, got := range fx.crm.Contacts() {
		if got.ID == c.ID && got.Responsible != boris {
			t.Errorf("contact responsible = %q; want boris, the new deal's responsible", got.Responsible)
		}
	}
	if !r.Why.Has(engine.StepOwnerFollows) {
		t.Errorf("why = %v; want the owner-follows step", r.Why)
	}
}

// slow is a CRM whose CreateDeal outlasts the chat's lease.
type slow struct {
	*crmtest.Fake
	clock *clock
}

func (s *slow) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	s.clock.Advance(2 * time.Minute)
	return s.Fake.CreateDeal(ctx, d)
}

// An event that outlives its lease writes nothing after it: the error
// matches ErrLeaseLost, and the redelivery finishes without a second deal.
func TestLeaseLostMidway(t *testing.T) {
	fx := newFixture(t)
	sl := &slow{Fake: fx.crm, clock: fx.clock}
	e, err := engine.New(t.Context(), engine.Options{CRM: sl, Sender: fx.sent, Config: testConfig(), Now: fx.clock.Now, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	m := fx.in(tg, "slow-client", "hi")
	if _, err := e.ClientMessage(t.Context(), m); !errors.Is(err, engine.ErrLeaseLost) {
		t.Fatalf("err = %v; want ErrLeaseLost", err)
	}
	r, err := e.ClientMessage(t.Context(), m)
	if err == nil && (len(fx.crm.Deals()) != 1 || r.Deal != fx.crm.Deals()[0].ID || r.Outcome != engine.OutcomeNewClient) {
		t.Errorf("redelivery = %+v; want the one deal found, outcome new_client", r)
	}
	if err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if n := len(fx.crm.Deals()); n != 1 {
		t.Errorf("deals = %d; want 1", n)
	}
}

// A restart, then the redelivery of a message whose streak an employee
// already answered: no new task (the answered streak is found in the CRM),
// while a genuinely new message after the reply still opens one.
func TestRestartRedeliveryAfterReply(t *testing.T) {
	fx := newFixture(t)
	m := fx.in(tg, "answered-client", "hi")
	r := fx.mustIn(m)
	fx.clock.Advance(time.Minute)
	fx.mustOut(fx.out(r.Responsible, tg, "answered-client", "hello"))
	restarted, err := engine.New(t.Context(), engine.Options{CRM: fx.crm, Sender: fx.sent, Config: testConfig(), Now: fx.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	again, err := restarted.ClientMessage(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if again.TaskCreated || !again.Why.Has(engine.StepTaskAnswered) {
		t.Errorf("redelivery after the reply: %+v (%v); want no task, the answered streak found", again, again.Why)
	}
	if open, all := openTasks(fx.crm); open != 0 || all != 1 {
		t.Errorf("tasks: %d open of %d; want the one answered task only", open, all)
	}
	fx.clock.Advance(time.Minute)
	later, err := restarted.ClientMessage(t.Context(), fx.in(tg, "answered-client", "one more question"))
	if err != nil {
		t.Fatal(err)
	}
	if !later.TaskCreated {
		t.Errorf("a new message after the reply: %+v (%v); want a new task", later, later.Why)
	}
}

// A reassignment's round-robin pick belongs to the client, once per
// reassignment: the CRM refuses the write that makes the pick responsible,
// the message is redelivered (with the engine's record of the client
// fresh, or stale so that the CRM is read again), and the pick made first
// is the one written. Exactly one turn was consumed: the next new client
// goes to the other employee. Anna, responsible for the deal, is on leave
// under the reassign policy, or Olga, responsible, has left the channel.
func TestReassignmentTurnBelongsToClient(t *testing.T) {
	leave := map[crm.UserID]routing.Schedule{anna: {Leave: []routing.Period{{From: "2026-11-24", To: "2026-11-30"}}}}
	for _, c := range []struct {
		name  string
		owner crm.UserID
		stale bool
	}{
		{"owner away", anna, false},
		{"owner away, record stale", anna, true},
		{"responsible left", olga, false},
		{"responsible left, record stale", olga, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, withFeatures(tg, routing.Features{OwnerOffShift: routing.ReassignOwner, Schedules: leave}))
			contact := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "7001"}}, Responsible: c.owner})
			deal := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: c.owner, Contacts: []crm.ContactID{contact.ID}})
			m := fx.in(tg, "7001", "hello?")
			fx.crm.FailNext(crmtest.MethodSetResponsible, 1, crm.ErrUnavailable)
			if _, err := fx.engine.ClientMessage(t.Context(), m); !errors.Is(err, crm.ErrUnavailable) {
				t.Fatalf("first delivery: err = %v; want ErrUnavailable", err)
			}
			if got := fx.dealResponsible(deal.ID); got != c.owner {
				t.Fatalf("CRM responsible %s after the failed write; want %s still", got, c.owner)
			}
			if c.stale {
				fx.clock.Advance(time.Hour)
			}
			r := fx.mustIn(m)
			if r.Outcome != engine.OutcomeReassigned || r.Responsible != boris || !r.Why.Has(engine.StepTurnKept) {
				t.Errorf("redelivery: outcome %s, responsible %s (%v); want reassigned to boris, the first pick, kept", r.Outcome, r.Responsible, r.Why)
			}
			if got := fx.dealResponsible(deal.ID); got != boris {
				t.Errorf("CRM responsible %s; want boris, the first pick", got)
			}
			next := fx.mustIn(fx.in(tg, "9001", "hi"))
			if next.Outcome != engine.OutcomeNewClient || next.Responsible != vera {
				t.Errorf("next new client: %s to %s; want vera (one turn consumed by the reassignment)", next.Outcome, next.Responsible)
			}
		})
	}
}
