package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// Spec §1, Unsorted: the chat is offered to the receivers; the first reply
// claims it, makes the replier responsible in the CRM, and the chat
// disappears for the other manager, whose reply is refused naming the winner.
func TestFirstResponder(t *testing.T) {
	fx := newFixture(t)
	r := fx.mustIn(fx.in(wa, "79161234567", "Здравствуйте"))
	if r.Outcome != engine.OutcomeNewClient || !r.ContactCreated || !r.DealCreated || r.Responsible != "" {
		t.Fatalf("new client on wa = %+v; want a new contact+deal offered to the group", r)
	}
	if diff := cmp.Diff([]crm.UserID{anna, boris}, notified(r.Notify)); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
	deal := fx.crm.Deals()[0]
	if deal.Stage != "100" || deal.Responsible != "" {
		t.Errorf("deal = %+v; want stage Unsorted (100), no responsible yet", deal)
	}
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	for _, u := range []crm.UserID{anna, boris, sam, quinn} {
		if ok, _, _ := fx.engine.CanView(t.Context(), u, chat); !ok {
			t.Errorf("before the claim %s must see the offered chat", u)
		}
	}
	if ok, _, _ := fx.engine.CanView(t.Context(), vera, chat); ok {
		t.Errorf("vera has no role on wa and must not see the chat")
	}

	out := fx.mustOut(fx.out(anna, wa, "79161234567", "Добрый день! Чем помочь?"))
	if !out.Claimed || out.Responsible != anna {
		t.Errorf("anna's first reply = %+v; want a claim making her responsible", out)
	}
	if got := fx.crm.Deals()[0].Responsible; got != anna {
		t.Errorf("CRM deal responsible after the claim = %q; want anna", got)
	}
	if got := fx.crm.Contacts()[0].Responsible; got != anna {
		t.Errorf("CRM contact responsible after the claim = %q; want anna", got)
	}
	if ok, _, _ := fx.engine.CanView(t.Context(), boris, chat); ok {
		t.Error("after anna's claim the chat must disappear for boris")
	}
	_, err := fx.engine.EmployeeMessage(t.Context(), fx.out(boris, wa, "79161234567", "Я тоже тут"))
	if !errors.Is(err, engine.ErrForbidden) {
		t.Fatalf("boris's reply after the claim: err = %v; want ErrForbidden", err)
	}
	// A supervisor who was not offered the chat may still write.
	if _, err := fx.engine.EmployeeMessage(t.Context(), fx.out(sam, wa, "79161234567", "Руководитель на связи")); err != nil {
		t.Errorf("supervisor's message: %v", err)
	}
	if got := len(fx.sent.Sent()); got != 2 {
		t.Errorf("messages sent = %d; want 2 (anna's and sam's, not boris's)", got)
	}
}

// Exactly one winner when the offered managers reply at the same instant;
// the loser's error names the winner.
func TestFirstResponderConcurrentReplies(t *testing.T) {
	for round := range 50 {
		fx := newFixture(t)
		fx.mustIn(fx.in(wa, "79161234567", "hi"))
		var wg sync.WaitGroup
		errs := map[crm.UserID]error{}
		var mu sync.Mutex
		start := make(chan struct{})
		for _, u := range []crm.UserID{anna, boris} {
			m := fx.out(u, wa, "79161234567", "reply")
			wg.Go(func() {
				<-start
				_, err := fx.engine.EmployeeMessage(t.Context(), m)
				mu.Lock()
				errs[u] = err
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		var winner crm.UserID
		var losers []error
		for u, err := range errs {
			if err == nil {
				if winner != "" {
					t.Fatalf("round %d: two winners", round)
				}
				winner = u
			} else {
				losers = append(losers, err)
			}
		}
		if winner == "" || len(losers) != 1 {
			t.Fatalf("round %d: errs = %v; want exactly one winner", round, errs)
		}
		var ce *routing.ClaimedError
		if !errors.As(losers[0], &ce) || ce.Winner != winner {
			t.Fatalf("round %d: loser's error %v must be a *ClaimedError naming %s", round, losers[0], winner)
		}
		if got := fx.crm.Deals()[0].Responsible; got != winner {
			t.Fatalf("round %d: CRM responsible %q; want the winner %q", round, got, winner)
		}
	}
}

// Spec §1, another stage: round robin in equal shares, only the pick is
// notified and is responsible in the CRM at once.
func TestRoundRobinDay(t *testing.T) {
	fx := newFixture(t)
	counts := map[crm.UserID]int{}
	for i := range 40 {
		m := fx.in(tg, "tg-client-"+string(rune('A'+i%26))+string(rune('a'+i/26)), "hello")
		r := fx.mustIn(m)
		if r.Outcome != engine.OutcomeNewClient || r.Responsible == "" || len(r.Notify) != 1 || r.Notify[0].User != r.Responsible {
			t.Fatalf("client %d: %+v; want one responsible, notified alone", i, r)
		}
		counts[r.Responsible]++
	}
	if diff := cmp.Diff(map[crm.UserID]int{boris: 20, vera: 20}, counts); diff != "" {
		t.Errorf("round-robin counts (-want +got):\n%s", diff)
	}
	for _, d := range fx.crm.Deals() {
		if d.Stage != "101" || d.Responsible == "" {
			t.Errorf("deal %s at stage %s responsible %q; want stage 101 with a responsible", d.ID, d.Stage, d.Responsible)
		}
	}
}

func TestRoundRobinNobodyEligibleOffersToWriters(t *testing.T) {
	fx := newFixture(t, func(c *engine.Config, o *engine.Options) {
		o.Available = func(_ context.Context, _ channel.ID, _ crm.UserID) bool { return false }
	})
	r := fx.mustIn(fx.in(tg, "777", "hello"))
	if r.Responsible != "" || r.Distribution == nil || r.Distribution.Why.Fallback == nil {
		t.Fatalf("nobody available: %+v; want an offer to every writer with the fallback explained", r)
	}
	if diff := cmp.Diff([]crm.UserID{anna, boris, vera, sam}, notified(r.Notify)); diff != "" {
		t.Errorf("offered to (-want +got):\n%s", diff)
	}
	if len(fx.crm.Deals()) != 1 {
		t.Error("the deal must still be created")
	}
}

func TestQualityControlRefused(t *testing.T) {
	fx := newFixture(t)
	fx.mustIn(fx.in(wa, "79161234567", "hi"))
	_, err := fx.engine.EmployeeMessage(t.Context(), fx.out(quinn, wa, "79161234567", "QC here"))
	var pe *engine.PermissionError
	if !errors.As(err, &pe) || pe.Reason != roles.ReasonQualityControl {
		t.Fatalf("QC writing: err = %v; want a PermissionError with the quality-control reason", err)
	}
	if ok, _, _ := fx.engine.CanView(t.Context(), quinn, channel.Chat{Channel: wa, ChatID: "79161234567"}); !ok {
		t.Error("QC must see every chat of the channel")
	}
	if len(fx.sent.Sent()) != 0 {
		t.Error("nothing may be sent for a refused message")
	}
}

// A number typed with 8 in the CRM matches the WhatsApp chat; the open
// deal's responsible user is notified; no CRM writes.
func TestOpenDealTypedWithEight(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Name: "Иван", Phones: []string{"8 (916) 123-45-67"}, Responsible: boris})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: boris, Contacts: []crm.ContactID{c.ID}})
	r := fx.mustIn(fx.in(wa, "79161234567", "Это Иван"))
	if r.Outcome != engine.OutcomeOpenDeal || r.Responsible != boris || r.Contact != c.ID || r.ContactCreated {
		t.Fatalf("result = %+v; want the existing contact's open deal, boris notified", r)
	}
	if len(fx.crm.Contacts()) != 1 || len(fx.crm.Deals()) != 1 {
		t.Error("no contact or deal may be created for a known client")
	}
}

func TestOpenDealMostRecentlyUpdated(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}, UpdatedAt: fx.clock.Now().Add(-time.Hour)})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: boris, Contacts: []crm.ContactID{c.ID}, UpdatedAt: fx.clock.Now()})
	if r := fx.mustIn(fx.in(wa, "79161234567", "hi")); r.Responsible != boris {
		t.Errorf("responsible = %q; want boris, of the most recently updated open deal", r.Responsible)
	}
}

// The responsible user no longer works the channel: the channel's
// distribution picks who gets the client and the CRM is updated.
func TestResponsibleLeftChannel(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: olga})
	d := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: olga, Contacts: []crm.ContactID{c.ID}})
	// On tg (round robin), the chat ID is not a phone: give the phone.
	m := fx.in(tg, "olga-client", "hi")
	m.Phone = "+7 916 123-45-67"
	r := fx.mustIn(m)
	if r.Outcome != engine.OutcomeReassigned || (r.Responsible != boris && r.Responsible != vera) {
		t.Fatalf("result = %+v; want reassigned by round robin", r)
	}
	got := fx.crm.Deals()[0]
	if got.ID != d.ID || got.Responsible != r.Responsible || len(fx.crm.Deals()) != 1 {
		t.Errorf("deal after reassignment = %+v; want the same deal, responsible %s", got, r.Responsible)
	}
}

// Spec §3, notify_responsible: no deal; the responsible decides.
func TestReturningClientNotify(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: anna})
	d := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	if err := fx.crm.CloseDeal(d.ID, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	r := fx.mustIn(fx.in(wa, "79161234567", "Хочу ещё"))
	if r.Outcome != engine.OutcomeReturningNotify || r.Responsible != anna || r.DealCreated {
		t.Fatalf("result = %+v; want anna notified and no deal", r)
	}
	if len(fx.crm.Deals()) != 1 {
		t.Errorf("deals = %d; want 1: notify_responsible creates none", len(fx.crm.Deals()))
	}
}

// Spec §3, new_deal: a deal as for a new client, the contact reused.
func TestReturningClientNewDeal(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "555"}}, Responsible: vera})
	d := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: vera, Contacts: []crm.ContactID{c.ID}})
	if err := fx.crm.CloseDeal(d.ID, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	r := fx.mustIn(fx.in(tg, "555", "Закажу воду"))
	if r.Outcome != engine.OutcomeReturningNewDeal || !r.DealCreated || r.ContactCreated || r.Contact != c.ID {
		t.Fatalf("result = %+v; want a new deal for the existing contact", r)
	}
	if len(fx.crm.Contacts()) != 1 || len(fx.crm.Deals()) != 2 {
		t.Errorf("contacts %d deals %d; want 1 and 2", len(fx.crm.Contacts()), len(fx.crm.Deals()))
	}
	nd := fx.crm.Deals()[1]
	if nd.Stage != "101" || nd.Responsible != r.Responsible || r.Responsible == "" {
		t.Errorf("new deal %+v; want stage 101 with the round-robin pick %q", nd, r.Responsible)
	}
}

// Tasks: a streak of messages makes one task; a reply closes it; the next
// message starts a new streak; a reset closes too; Salesbot does not.
func TestUnansweredTasks(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: anna})
	d := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	first := fx.mustIn(fx.in(wa, "79161234567", "1"))
	if !first.TaskCreated {
		t.Fatalf("first unanswered message must create a task: %+v", first)
	}
	before := fx.crm.Calls(crmtest.MethodCreateTask)
	for range 9 {
		fx.clock.Advance(time.Minute)
		if r := fx.mustIn(fx.in(wa, "79161234567", "ещё")); r.TaskCreated || r.Task != first.Task {
			t.Fatalf("a message in the same streak must not create a task: %+v", r)
		}
	}
	if got := fx.crm.Calls(crmtest.MethodCreateTask) - before; got != 0 {
		t.Errorf("a streak of 10 messages made %d more CreateTask calls; want 0", got)
	}
	task := fx.crm.Tasks()[0]
	want := crm.Task{ID: first.Task, Deal: d.ID, Responsible: anna, Deadline: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		Text: "Reply to the client: unanswered message in WhatsApp +7 495 (79161234567)"}
	if diff := cmp.Diff(want, task); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	// Salesbot neither closes nor opens.
	if _, err := fx.engine.SalesbotMessage(t.Context(), engine.SalesbotMessage{ID: fx.id(), Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}, Text: "Бот"}); err != nil {
		t.Fatal(err)
	}
	if fx.crm.Tasks()[0].Done {
		t.Error("a Salesbot message must not close the task")
	}
	out := fx.mustOut(fx.out(anna, wa, "79161234567", "Ответ"))
	if out.TaskClosed != first.Task || !fx.crm.Tasks()[0].Done {
		t.Errorf("anna's reply must complete task %s: %+v", first.Task, out)
	}
	second := fx.mustIn(fx.in(wa, "79161234567", "новый вопрос"))
	if !second.TaskCreated || second.Task == first.Task {
		t.Fatalf("the next message after a reply must start a new task: %+v", second)
	}
	rr, err := fx.engine.ResetUnread(t.Context(), engine.UnreadReset{User: anna, Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}})
	if err != nil || rr.TaskClosed != second.Task {
		t.Fatalf("ResetUnread = %+v, %v; want task %s closed", rr, err, second.Task)
	}
	if _, err := fx.engine.ResetUnread(t.Context(), engine.UnreadReset{User: quinn, Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}}); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("QC resetting the counter: %v; want ErrForbidden", err)
	}
}

// A task completed by hand in the CRM is not reopened; the next message
// after a reply starts a new one.
func TestTaskCompletedByHand(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: anna})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	r := fx.mustIn(fx.in(wa, "79161234567", "1"))
	if err := fx.crm.CompleteTaskByHand(r.Task); err != nil {
		t.Fatal(err)
	}
	fx.mustIn(fx.in(wa, "79161234567", "2"))
	if n := len(fx.crm.Tasks()); n != 1 {
		t.Errorf("tasks = %d; want 1: a hand-completed task is not reopened nor replaced within the streak", n)
	}
}

func TestDuplicateDelivery(t *testing.T) {
	fx := newFixture(t)
	m := fx.in(tg, "42", "hello")
	first := fx.mustIn(m)
	calls := fx.crm.TotalCalls()
	again := fx.mustIn(m)
	if !again.Duplicate || again.Deal != first.Deal || again.Responsible != first.Responsible || again.Task != first.Task {
		t.Errorf("redelivery = %+v; want Duplicate with the first outcome %+v", again, first)
	}
	if fx.crm.TotalCalls() != calls {
		t.Errorf("redelivery made %d CRM calls; want 0", fx.crm.TotalCalls()-calls)
	}
	o := fx.out(first.Responsible, tg, "42", "reply")
	fx.mustOut(o)
	if r := fx.mustOut(o); !r.Duplicate || len(fx.sent.Sent()) != 1 {
		t.Errorf("resent employee message = %+v, sent %d; want a duplicate and one send", r, len(fx.sent.Sent()))
	}
}

// 50 concurrent first messages of one new client: one contact, one deal, one task.
func TestConcurrentNewClient(t *testing.T) {
	for _, ch := range []channel.ID{wa, tg} {
		fx := newFixture(t)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			m := fx.in(ch, "79161234567", "hi")
			wg.Go(func() {
				<-start
				if _, err := fx.engine.ClientMessage(t.Context(), m); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if c, d, k := len(fx.crm.Contacts()), len(fx.crm.Deals()), len(fx.crm.Tasks()); c != 1 || d != 1 || k != 1 {
			t.Errorf("%s: contacts %d deals %d tasks %d; want 1 each", ch, c, d, k)
		}
	}
}

// A CRM failure midway is returned; a redelivery finishes without
// duplicates and keeps the round-robin pick.
func TestFailureMidwayAndRedelivery(t *testing.T) {
	fx := newFixture(t)
	m := fx.in(tg, "900", "hi")
	fx.crm.FailNext(crmtest.MethodCreateDeal, 1, crm.ErrUnavailable)
	if _, err := fx.engine.ClientMessage(t.Context(), m); !errors.Is(err, crm.ErrUnavailable) {
		t.Fatalf("err = %v; want the CRM's ErrUnavailable back", err)
	}
	fx.crm.FailNext(crmtest.MethodCreateTask, 1, crm.ErrRateLimited)
	if _, err := fx.engine.ClientMessage(t.Context(), m); !errors.Is(err, crm.ErrRateLimited) {
		t.Fatalf("err = %v; want ErrRateLimited from CreateTask", err)
	}
	r := fx.mustIn(m)
	if len(fx.crm.Deals()) != 1 || len(fx.crm.Contacts()) != 1 || len(fx.crm.Tasks()) != 1 {
		t.Fatalf("after redeliveries: contacts %d deals %d tasks %d; want 1 each", len(fx.crm.Contacts()), len(fx.crm.Deals()), len(fx.crm.Tasks()))
	}
	if r.Responsible != boris {
		t.Errorf("responsible = %q; want boris, the first pick, kept across redeliveries", r.Responsible)
	}
	// The next new client goes to vera: the failed deliveries took one turn.
	if r2 := fx.mustIn(fx.in(tg, "901", "hi")); r2.Responsible != vera {
		t.Errorf("next client's responsible = %q; want vera", r2.Responsible)
	}

	// A send failure: the error goes back, the streak stays open, a retry sends once.
	o := fx.out(boris, tg, "900", "reply")
	fx.sent.FailNext(1, channel.ErrUnavailable)
	if _, err := fx.engine.EmployeeMessage(t.Context(), o); !errors.Is(err, channel.ErrUnavailable) {
		t.Fatalf("send failure: err = %v", err)
	}
	if fx.crm.Tasks()[0].Done {
		t.Error("a failed send must not close the task")
	}
	if res := fx.mustOut(o); res.TaskClosed == "" || len(fx.sent.Sent()) != 1 {
		t.Errorf("retry = %+v, sent %d; want the task closed and one message sent", res, len(fx.sent.Sent()))
	}
}

func TestBadEvents(t *testing.T) {
	fx := newFixture(t)
	good := fx.in(wa, "79161234567", "hi")
	cases := map[string]struct {
		m     channel.Message
		field string
		is    error
	}{
		"no id":                      {func() channel.Message { m := good; m.ID = ""; return m }(), "ID", engine.ErrBadEvent},
		"unknown channel":            {func() channel.Message { m := good; m.Chat.Channel = "nope"; return m }(), "Chat.Channel", engine.ErrUnknownChannel},
		"empty channel":              {func() channel.Message { m := good; m.Chat.Channel = ""; return m }(), "Chat.Channel", engine.ErrBadEvent},
		"empty chat":                 {func() channel.Message { m := good; m.Chat.ChatID = ""; return m }(), "Chat.ChatID", engine.ErrBadEvent},
		"outbound":                   {func() channel.Message { m := good; m.Direction = channel.Outbound; return m }(), "Direction", engine.ErrBadEvent},
		"employee author":            {func() channel.Message { m := good; m.Author.Kind = channel.AuthorEmployee; return m }(), "Author.Kind", engine.ErrBadEvent},
		"letters in a WhatsApp chat": {func() channel.Message { m := good; m.Chat.ChatID = "anna"; return m }(), "Chat.ChatID", engine.ErrBadEvent},
	}
	for name, tc := range cases {
		_, err := fx.engine.ClientMessage(t.Context(), tc.m)
		var ee *engine.EventError
		if !errors.As(err, &ee) || ee.Field != tc.field || !errors.Is(err, tc.is) || !errors.Is(err, engine.ErrBadEvent) {
			t.Errorf("%s: err = %v; want an EventError naming %s, matching %v", name, err, tc.field, tc.is)
		}
	}
	_, err := fx.engine.EmployeeMessage(t.Context(), fx.out(vera, wa, "79161234567", "x"))
	var ee *engine.EventError
	if !errors.As(err, &ee) || ee.Field != "User" || !errors.Is(err, engine.ErrUnknownEmployee) {
		t.Errorf("employee unknown on the channel: err = %v; want an EventError naming User, ErrUnknownEmployee", err)
	}
	if n := fx.crm.TotalCalls(); n != 0 {
		t.Errorf("bad events made %d CRM calls; want none (nothing half-applied)", n)
	}
}

// Spec settings §4: the channel an employee writes to a client first from.
func TestWriteFirstChannel(t *testing.T) {
	fx := newFixture(t)
	ctx := t.Context()
	// boris has wa and tg, no preference, no chat with the client: ambiguous.
	_, err := fx.engine.EmployeeMessage(ctx, engine.EmployeeMessage{ID: fx.id(), User: boris, Chat: channel.Chat{ChatID: "79990001122"}, Text: "x"})
	var ae *engine.AmbiguousChannelError
	if !errors.As(err, &ae) || !slices.Equal(ae.Candidates, []channel.ID{tg, wa}) {
		t.Fatalf("err = %v; want an AmbiguousChannelError listing tg and wa", err)
	}
	// sam's write-first channel is wa.
	r, err := fx.engine.EmployeeMessage(ctx, engine.EmployeeMessage{ID: fx.id(), User: sam, Chat: channel.Chat{ChatID: "79990001122"}, Text: "x"})
	if err != nil || r.Chat.Channel != wa {
		t.Fatalf("sam writes first: %+v, %v; want channel wa", r, err)
	}
	// An existing chat on one of boris's channels wins.
	c := fx.crm.AddContact(crm.Contact{Identities: []crm.Identity{{Kind: "telegram", Value: "tgclient"}}, Responsible: boris})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: boris, Contacts: []crm.ContactID{c.ID}})
	fx.mustIn(fx.in(tg, "tgclient", "hi"))
	r, err = fx.engine.EmployeeMessage(ctx, engine.EmployeeMessage{ID: fx.id(), User: boris, Chat: channel.Chat{ChatID: "tgclient"}, Text: "x"})
	if err != nil || r.Chat.Channel != tg {
		t.Fatalf("boris writes to a client with a tg chat: %+v, %v; want channel tg", r, err)
	}
}

func TestConfigJSONAndValidation(t *testing.T) {
	cfg := testConfig()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back engine.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	cat := testCatalog(t)
	if err := cfg.Validate(cat); err != nil {
		t.Fatalf("Validate(test config) = %v", err)
	}
	bad := map[string]func(*engine.Config){
		"channels[1].stage":            func(c *engine.Config) { c.Channels[1].Stage = "142" },
		"channels[0].pipeline":         func(c *engine.Config) { c.Channels[0].Pipeline = "99" },
		"channels[1].id":               func(c *engine.Config) { c.Channels[1].ID = wa },
		"channels[0].kind":             func(c *engine.Config) { c.Channels[0].Kind = "" },
		"roles[2]":                     func(c *engine.Config) { c.Roles[2].ReceivesNewClients = true },
		"roles[0].channel":             func(c *engine.Config) { c.Roles[0].Channel = "zz" },
		"global.unanswered_tasks":      func(c *engine.Config) { c.Global.UnansweredTasks.Deadline = -1 },
		`global.write_first_from["3"]`: func(c *engine.Config) { c.Global.WriteFirstFrom[vera] = wa },
		"roles[3].user":                func(c *engine.Config) { c.Roles[3].User = "77" },
	}
	for field, mutate := range bad {
		c := testConfig()
		mutate(&c)
		err := c.Validate(cat)
		var ce *engine.ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("%s: Validate = %v; want a ConfigError naming %s", field, err, field)
			continue
		}
		if n := strings.Count(err.Error(), field); n != 1 {
			t.Errorf("%s: %q names the field %d times; want once", field, err, n)
		}
	}
}

// Visibility lists use the same predicate as single checks.
func TestVisibleChats(t *testing.T) {
	fx := newFixture(t)
	for _, id := range []string{"79160000001", "79160000002", "79160000003"} {
		fx.mustIn(fx.in(wa, id, "hi"))
	}
	fx.mustOut(fx.out(anna, wa, "79160000001", "mine"))
	fx.mustOut(fx.out(boris, wa, "79160000002", "mine"))
	chats := []channel.Chat{{Channel: wa, ChatID: "79160000001"}, {Channel: wa, ChatID: "79160000002"}, {Channel: wa, ChatID: "79160000003"}}
	for _, u := range []crm.UserID{anna, boris, quinn, sam, vera} {
		got, err := fx.engine.VisibleChats(t.Context(), u, chats)
		if err != nil {
			t.Fatal(err)
		}
		var want []channel.Chat
		for _, c := range chats {
			if ok, _, _ := fx.engine.CanView(t.Context(), u, c); ok {
				want = append(want, c)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: VisibleChats = %v; CanView says %v", u, got, want)
		}
	}
	got, _ := fx.engine.VisibleChats(t.Context(), anna, chats)
	if !slices.Equal(got, []channel.Chat{chats[0], chats[2]}) {
		t.Errorf("anna sees %v; want her claimed chat and the still-offered one", got)
	}
}

// A second message before anyone replied: the chat is still offered, the
// group is notified again, and the streak's one task is not repeated.
func TestOfferedChatSecondMessage(t *testing.T) {
	fx := newFixture(t)
	first := fx.mustIn(fx.in(wa, "79161234567", "1"))
	r := fx.mustIn(fx.in(wa, "79161234567", "2"))
	if r.Outcome != engine.OutcomeOffered || r.Responsible != "" || r.TaskCreated || r.Task != first.Task {
		t.Fatalf("second message in an offered chat = %+v; want offered, no new task", r)
	}
	if diff := cmp.Diff([]crm.UserID{anna, boris}, notified(r.Notify)); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
	fx.mustOut(fx.out(boris, wa, "79161234567", "here"))
	if r := fx.mustIn(fx.in(wa, "79161234567", "3")); r.Outcome != engine.OutcomeOpenDeal || r.Responsible != boris {
		t.Errorf("after boris's claim = %+v; want open_deal with boris responsible", r)
	}
}

// Replies typed outside the engine (the provider's app, the phone) arrive
// as echoes: they claim an offered chat and close the streak, nothing is
// sent; echoes of the engine's own sends and of Salesbot have no effect.
func TestEmployeeReplied(t *testing.T) {
	fx := newFixture(t)
	ctx := t.Context()
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	in := fx.mustIn(fx.in(wa, chat.ChatID, "hi"))
	echo := func(id string, author channel.Author) engine.OutboundResult {
		t.Helper()
		r, err := fx.engine.EmployeeReplied(ctx, channel.Message{ID: id, Chat: chat, Direction: channel.Outbound, Author: author, Text: "typed on the phone"})
		if err != nil {
			t.Fatalf("EmployeeReplied(%s): %v", id, err)
		}
		return r
	}
	r := echo("phone-1", channel.Author{Kind: channel.AuthorEmployee, UserID: string(boris)})
	if !r.Claimed || r.Responsible != boris || r.TaskClosed != in.Task {
		t.Fatalf("boris's reply from the phone = %+v; want a claim and task %s closed", r, in.Task)
	}
	if got := fx.crm.Deals()[0].Responsible; got != boris {
		t.Errorf("CRM responsible = %q; want boris", got)
	}
	if n := len(fx.sent.Sent()); n != 0 {
		t.Errorf("sent %d messages; a recorded reply sends nothing", n)
	}
	if again := echo("phone-1", channel.Author{Kind: channel.AuthorEmployee, UserID: string(boris)}); !again.Duplicate {
		t.Errorf("redelivered echo = %+v; want Duplicate", again)
	}

	// An echo of the engine's own send must not close a newer streak.
	out := fx.mustOut(fx.out(boris, wa, chat.ChatID, "через движок"))
	next := fx.mustIn(fx.in(wa, chat.ChatID, "новый вопрос"))
	if r := echo(out.Receipt.ProviderID, channel.Author{Kind: channel.AuthorEmployee, UserID: string(boris)}); r.TaskClosed != "" {
		t.Errorf("echo of the engine's own send closed task %s", r.TaskClosed)
	}
	if r := echo("bot-1", channel.Author{Kind: channel.AuthorSalesbot}); r.TaskClosed != "" {
		t.Errorf("Salesbot echo closed task %s", r.TaskClosed)
	}
	if fx.crm.Tasks()[1].Done {
		t.Errorf("task %s closed by an echo that is not an employee's reply", next.Task)
	}
	if r := echo("phone-2", channel.Author{Kind: channel.AuthorEmployee}); r.TaskClosed != next.Task {
		t.Errorf("a reply from the phone by an unknown employee must still close the streak: %+v", r)
	}
	if _, err := fx.engine.EmployeeReplied(ctx, channel.Message{ID: "x", Chat: chat, Direction: channel.Inbound}); !errors.Is(err, engine.ErrBadEvent) {
		t.Errorf("inbound message as a reply: err = %v; want ErrBadEvent", err)
	}
}

func TestConfigChannelKinds(t *testing.T) {
	got := testConfig().ChannelKinds()
	if diff := cmp.Diff(map[channel.ID]channel.Kind{wa: channel.WhatsApp, tg: channel.Telegram}, got); diff != "" {
		t.Errorf("ChannelKinds (-want +got):\n%s", diff)
	}
}

// A returning client (all deals closed) whose responsible left the team:
// the channel's distribution (first responder on wa) offers the chat; the
// claimer becomes the contact's responsible; no deal is created.
func TestReturningClientResponsibleLeft(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: olga})
	d := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: olga, Contacts: []crm.ContactID{c.ID}})
	if err := fx.crm.CloseDeal(d.ID, crm.DealLost); err != nil {
		t.Fatal(err)
	}
	r := fx.mustIn(fx.in(wa, "79161234567", "снова я"))
	if r.Outcome != engine.OutcomeReturningNotify || r.Responsible != "" || r.DealCreated {
		t.Fatalf("result = %+v; want the chat offered, no deal", r)
	}
	if diff := cmp.Diff([]crm.UserID{anna, boris}, notified(r.Notify)); diff != "" {
		t.Errorf("offered to (-want +got):\n%s", diff)
	}
	fx.mustOut(fx.out(anna, wa, "79161234567", "Здравствуйте!"))
	if got := fx.crm.Contacts()[0].Responsible; got != anna {
		t.Errorf("contact responsible after anna's claim = %q; want anna", got)
	}
	if n := len(fx.crm.Deals()); n != 1 {
		t.Errorf("deals = %d; want 1 (notify_responsible creates none)", n)
	}
}
