package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/crmbridge/crmbridge/tasks"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The team of the multi-instance tests: wa is first responder (Anna and
// Boris are offered new clients), tg is round robin (Boris and Vera).
const (
	anna, boris, vera crm.UserID = "1", "2", "3"
	wa, tg            channel.ID = "wa", "tg"
)

func teamConfig() engine.Config {
	return engine.Config{
		Channels: []engine.ChannelConfig{
			{ID: wa, Kind: channel.WhatsApp, Name: "WhatsApp", Pipeline: "10", Stage: "100"},
			{ID: tg, Kind: channel.Telegram, Name: "Telegram", Pipeline: "10", Stage: "101"},
		},
		Roles: []roles.Assignment{
			{User: anna, Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
			{User: boris, Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
			{User: boris, Channel: tg, Role: roles.Manager, ReceivesNewClients: true},
			{User: vera, Channel: tg, Role: roles.Manager, ReceivesNewClients: true},
		},
		Global: engine.GlobalSettings{UnansweredTasks: tasks.Settings{Enabled: true}},
	}
}

// instance is one host instance: its own pool, DB and Engine over the
// shared database, CRM and sender.
type instance struct {
	pool *pgxpool.Pool
	db   *pgstore.DB
	e    *engine.Engine
}

func newInstance(t *testing.T, ctx context.Context, account string, c crm.Client, s channel.Sender, ttl time.Duration) *instance {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testPool(t).Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgstore.Open(ctx, pool, pgstore.Options{Schema: "crmbridge_test"})
	if err != nil {
		pool.Close()
		t.Fatal(err)
	}
	in := &instance{pool: pool, db: db}
	t.Cleanup(in.stop)
	acct := db.Account(account)
	in.e, err = engine.New(ctx, engine.Options{CRM: c, Sender: s, Config: teamConfig(),
		State: acct, Claims: acct, Rotation: acct, Streaks: acct.Streaks(), LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

var stopMu sync.Mutex

// stop drops the instance's connections; safe to call twice.
func (in *instance) stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	if in.db != nil {
		in.db.Close()
		in.pool.Close()
		in.db = nil
	}
}

func newTeamCRM() *crmtest.Fake { return crmtest.NewSeeded(nil) }

// delivery is one webhook: a client message or an employee reply, to one
// instance.
type delivery struct {
	to  int
	in  *channel.Message
	out *engine.EmployeeMessage
}

type outcome struct {
	d   delivery
	in  engine.InboundResult
	out engine.OutboundResult
	err error
}

// deliver runs deliveries on the instances, workers goroutines each, and
// returns every outcome.
func deliver(ctx context.Context, ins []*instance, workers int, ds []delivery) []outcome {
	queues := make([]chan delivery, len(ins))
	for i := range queues {
		queues[i] = make(chan delivery)
	}
	results := make(chan outcome, len(ds))
	var wg sync.WaitGroup
	for i, in := range ins {
		for range workers {
			wg.Go(func() {
				for d := range queues[i] {
					o := outcome{d: d}
					if d.in != nil {
						o.in, o.err = in.e.ClientMessage(ctx, *d.in)
					} else {
						o.out, o.err = in.e.EmployeeMessage(ctx, *d.out)
					}
					results <- o
				}
			})
		}
	}
	for _, d := range ds {
		queues[d.to] <- d
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	close(results)
	out := make([]outcome, 0, len(ds))
	for o := range results {
		out = append(out, o)
	}
	return out
}

type workload struct {
	waChats, tgChats []channel.Chat
	inbound          []channel.Message
	replies          []engine.EmployeeMessage
}

// clients makes n new clients, half on each channel, two messages each.
func clients(run string, n int) workload {
	var w workload
	for i := range n {
		var chat channel.Chat
		if i%2 == 0 {
			chat = channel.Chat{Channel: wa, ChatID: fmt.Sprintf("7916%07d", i)}
			w.waChats = append(w.waChats, chat)
		} else {
			chat = channel.Chat{Channel: tg, ChatID: fmt.Sprintf("client-%s-%d", run, i)}
			w.tgChats = append(w.tgChats, chat)
		}
		for k := range 2 {
			w.inbound = append(w.inbound, channel.Message{ID: fmt.Sprintf("%s-in-%d-%d", run, i, k), Chat: chat,
				Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hello",
				Time: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)})
		}
	}
	return w
}

// scatter delivers each message 1 to 3 times to random instances, in a
// random order.
func scatter[T any](rng *rand.Rand, instances int, msgs []T, mk func(to int, m *T) delivery) []delivery {
	var ds []delivery
	for i := range msgs {
		for range 1 + rng.IntN(3) {
			ds = append(ds, mk(rng.IntN(instances), &msgs[i]))
		}
	}
	rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	return ds
}

func inDelivery(to int, m *channel.Message) delivery         { return delivery{to: to, in: m} }
func outDelivery(to int, m *engine.EmployeeMessage) delivery { return delivery{to: to, out: m} }

// TestEnginesShareStateOnPostgres: 4 engines (host instances) × 16
// goroutines on one database. New clients' messages, each delivered up to
// three times to random instances, then both offered employees replying
// at once on different instances. Each new client gets one contact, one
// deal and one task; each offered chat exactly one claim winner whose
// replies all go out; round robin splits evenly; each reply is sent once.
//
// It delivers about 1,400 events, to keep CI short; CRMBRIDGE_LONG=1 makes
// it about 12,500.
func TestEnginesShareStateOnPostgres(t *testing.T) {
	testPool(t)
	n := 200 // clients: about 1,400 deliveries
	if os.Getenv("CRMBRIDGE_LONG") == "1" {
		n = 1800
	}
	ctx := t.Context()
	run := randomID()
	c, rec := newTeamCRM(), channeltest.NewRecorder(wa, tg)
	var ins []*instance
	for range 4 {
		ins = append(ins, newInstance(t, ctx, run, c, rec, time.Minute))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := clients(run, n)
	results := deliver(ctx, ins, 16, scatter(rng, len(ins), w.inbound, inDelivery))
	for _, o := range results {
		if o.err != nil {
			t.Fatalf("client message %s on instance %d: %v", o.d.in.ID, o.d.to, o.err)
		}
	}
	deliveries := len(results)

	// Every new client: one contact, one deal, one task.
	deals := map[channel.Chat][]crm.Deal{}
	contactOf := map[crm.ContactID]channel.Chat{}
	for _, o := range results {
		if o.in.Contact != "" {
			contactOf[o.in.Contact] = o.in.Chat
		}
	}
	for _, d := range c.Deals() {
		for _, ct := range d.Contacts {
			deals[contactOf[ct]] = append(deals[contactOf[ct]], d)
		}
	}
	if got := len(c.Contacts()); got != n {
		t.Errorf("%d contacts for %d new clients; want one each", got, n)
	}
	if got := len(c.Deals()); got != n {
		t.Errorf("%d deals for %d new clients; want one each", got, n)
	}
	if got := len(c.Tasks()); got != n {
		t.Errorf("%d tasks for %d new clients; want one each (one streak per client)", got, n)
	}
	// Round robin on tg: shares within 1.
	share := map[crm.UserID]int{}
	for _, chat := range w.tgChats {
		if len(deals[chat]) == 1 {
			share[deals[chat][0].Responsible]++
		}
	}
	if d := share[boris] - share[vera]; d < -1 || d > 1 || share[boris]+share[vera] != len(w.tgChats) {
		t.Errorf("round-robin shares %v over %d clients; want boris and vera within 1", share, len(w.tgChats))
	}

	// Replies: on wa both offered employees answer at once; on tg the
	// responsible answers. Each reply is delivered 1-3 times.
	for i, chat := range w.waChats {
		for _, u := range []crm.UserID{anna, boris} {
			w.replies = append(w.replies, engine.EmployeeMessage{ID: fmt.Sprintf("%s-wa-%d-%s", run, i, u), User: u, Chat: chat, Text: "hi"})
		}
	}
	for i, chat := range w.tgChats {
		if len(deals[chat]) == 1 {
			w.replies = append(w.replies, engine.EmployeeMessage{ID: fmt.Sprintf("%s-tg-%d", run, i), User: deals[chat][0].Responsible, Chat: chat, Text: "hi"})
		}
	}
	replies := deliver(ctx, ins, 16, scatter(rng, len(ins), w.replies, outDelivery))
	deliveries += len(replies)
	claimedBy := map[channel.Chat]map[crm.UserID]bool{}
	refused := map[string]bool{}
	for _, o := range replies {
		m := o.d.out
		var claimed *routing.ClaimedError
		switch {
		case o.err == nil:
			if o.out.Claimed {
				if claimedBy[m.Chat] == nil {
					claimedBy[m.Chat] = map[crm.UserID]bool{}
				}
				claimedBy[m.Chat][m.User] = true
			}
		case errors.As(o.err, &claimed) && errors.Is(o.err, engine.ErrForbidden):
			refused[m.ID] = true
			if claimed.Winner == m.User {
				t.Errorf("reply %s refused naming its own author %s as the winner", m.ID, m.User)
			}
		default:
			t.Errorf("reply %s by %s on instance %d: %v", m.ID, m.User, o.d.to, o.err)
		}
	}
	winners := map[channel.Chat]crm.UserID{}
	for _, chat := range w.waChats {
		if len(claimedBy[chat]) != 1 {
			t.Errorf("chat %s claimed by %v; want exactly one winner", chat, claimedBy[chat])
		}
		for u := range claimedBy[chat] {
			winners[chat] = u
		}
	}
	sentByKey := map[string]int{}
	for _, m := range rec.Sent() {
		sentByKey[m.IdempotencyKey]++
	}
	sent := 0
	for _, m := range w.replies {
		if m.Chat.Channel == wa && winners[m.Chat] == m.User && refused[m.ID] {
			t.Errorf("the winner's own reply %s was refused", m.ID)
		}
		if !refused[m.ID] {
			sent++
		}
	}
	if got := len(rec.Sent()); got != sent {
		t.Errorf("%d messages sent; want %d, each accepted reply once", got, sent)
	}
	for k, n := range sentByKey {
		if n != 1 {
			t.Errorf("send %s went out %d times", k, n)
		}
	}
	open := 0
	for _, tk := range c.Tasks() {
		if !tk.Done {
			open++
		}
	}
	if open != 0 {
		t.Errorf("%d tasks open after every client was answered; want 0", open)
	}
	t.Logf("%d deliveries of %d messages on %d instances", deliveries, len(w.inbound)+len(w.replies), len(ins))
}

// slowDeal is the CRM of an instance that dies mid-event: CreateDeal does
// the work, then never answers (the instance is stopped while waiting).
type slowDeal struct {
	*crmtest.Fake
	entered chan struct{}
	once    sync.Once
}

func (s *slowDeal) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	deal, c, err := s.Fake.CreateDeal(ctx, d)
	if err != nil {
		return deal, c, err
	}
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return crm.Deal{}, crm.Contact{}, ctx.Err()
}

// TestKilledInstance: an instance stops mid-event, holding the chat's
// lease, after the CRM created the deal; another instance, given the
// same message and the client's next one, waits at most the lease's
// time to live and then finishes the client: nothing duplicated, nothing
// lost.
func TestKilledInstance(t *testing.T) {
	testPool(t)
	run := randomID()
	c, rec := newTeamCRM(), channeltest.NewRecorder(wa, tg)
	const ttl = 300 * time.Millisecond
	dying := &slowDeal{Fake: c, entered: make(chan struct{})}
	kctx, kill := context.WithCancel(t.Context())
	defer kill()
	k := newInstance(t, kctx, run, dying, rec, ttl)
	alive := newInstance(t, t.Context(), run, c, rec, ttl)

	w := clients(run, 2) // one wa, one tg client
	m := w.inbound[2]    // the tg client's first message
	errc := make(chan error, 1)
	go func() { _, err := k.e.ClientMessage(kctx, m); errc <- err }()
	<-dying.entered
	kill()
	k.stop()
	if err := <-errc; err == nil {
		t.Fatalf("the killed instance's event must fail")
	}
	start := time.Now()
	for _, m := range append(w.inbound[2:], w.inbound[:2]...) {
		if _, err := alive.e.ClientMessage(t.Context(), m); err != nil {
			t.Fatalf("%s on the surviving instance: %v", m.ID, err)
		}
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("the surviving instance took %v; the lease bound is %v", waited, ttl)
	}
	if got := [3]int{len(c.Contacts()), len(c.Deals()), len(c.Tasks())}; got != [3]int{2, 2, 2} {
		t.Errorf("contacts, deals, tasks = %v; want one each for the two clients", got)
	}
}

// TestRestartedInstances: every engine replaced by a new one over the same
// database; redelivered messages and replies have no second effect.
func TestRestartedInstances(t *testing.T) {
	testPool(t)
	ctx := t.Context()
	run := randomID()
	c, rec := newTeamCRM(), channeltest.NewRecorder(wa, tg)
	first := []*instance{newInstance(t, ctx, run, c, rec, time.Minute), newInstance(t, ctx, run, c, rec, time.Minute)}
	w := clients(run, 20)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, o := range deliver(ctx, first, 4, scatter(rng, 2, w.inbound, inDelivery)) {
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	for i, chat := range w.waChats {
		w.replies = append(w.replies, engine.EmployeeMessage{ID: fmt.Sprintf("%s-r-%d", run, i), User: anna, Chat: chat, Text: "hi"})
	}
	for _, o := range deliver(ctx, first, 4, scatter(rng, 2, w.replies, outDelivery)) {
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	for _, in := range first {
		in.stop()
	}
	calls, sent := c.TotalCalls(), len(rec.Sent())
	creates := c.Calls(crmtest.MethodCreateDeal) + c.Calls(crmtest.MethodCreateTask) + c.Calls(crmtest.MethodCreateContact)

	second := []*instance{newInstance(t, ctx, run, c, rec, time.Minute), newInstance(t, ctx, run, c, rec, time.Minute)}
	ds := append(scatter(rng, 2, w.inbound, inDelivery), scatter(rng, 2, w.replies, outDelivery)...)
	for _, o := range deliver(ctx, second, 4, ds) {
		if o.err != nil {
			t.Fatalf("redelivery after the restart: %v", o.err)
		}
		if (o.d.in != nil && !o.in.Duplicate) || (o.d.out != nil && !o.out.Duplicate) {
			t.Errorf("a message processed before the restart must be a duplicate after it: %+v %+v", o.d.in, o.d.out)
		}
	}
	if got := c.Calls(crmtest.MethodCreateDeal) + c.Calls(crmtest.MethodCreateTask) + c.Calls(crmtest.MethodCreateContact); got != creates {
		t.Errorf("creates %d → %d after redeliveries; want none", creates, got)
	}
	if got := len(rec.Sent()); got != sent {
		t.Errorf("sent %d → %d after redeliveries; want none", sent, got)
	}
	t.Logf("CRM calls before the restart %d, after the redeliveries %d", calls, c.TotalCalls())
}
