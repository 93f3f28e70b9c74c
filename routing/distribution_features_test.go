package routing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

// shared is one set of memory stores, as several instances share a
// database.
type shared struct {
	claims   MemoryClaims
	rotation MemoryRotation
	queue    MemoryQueue
	esc      MemoryEscalations
}

func (s *shared) distributor(avail Availability) *Distributor {
	return NewDistributor(DistributorOptions{Claims: &s.claims, Rotation: &s.rotation, Queue: &s.queue, Escalations: &s.esc, Available: avail})
}

func managers(t testing.TB, n int) *roles.Table {
	as := []roles.Assignment{
		{User: "qc", Channel: "wa", Role: roles.QualityControl},
		{User: "sup", Channel: "wa", Role: roles.Supervisor},
	}
	for i := range n {
		as = append(as, roles.Assignment{User: crm.UserID(fmt.Sprintf("m%d", i+1)), Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
	}
	tbl, err := roles.NewTable(as)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func waChat(i int) channel.Chat {
	return channel.Chat{Channel: "wa", ChatID: fmt.Sprintf("client-%03d", i)}
}

func openCounts(t testing.TB, r RotationStore, users ...crm.UserID) map[crm.UserID]int {
	ms, err := r.Members(context.Background(), "wa", users)
	if err != nil {
		t.Fatal(err)
	}
	out := map[crm.UserID]int{}
	for _, m := range ms {
		out[m.User] = m.Open
	}
	return out
}

// TestCapacityUnderRace: 50 simultaneous new clients on 4 Distributors
// sharing one store, 3 managers with a limit of 3: exactly 9 are
// assigned, nobody ever holds more than 3 (sampled while the race runs),
// and the other 41 wait in the queue. Then freed holds let Drain assign
// the oldest waiting clients.
func TestCapacityUnderRace(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	users := []crm.UserID{"m1", "m2", "m3"}
	settings := ChannelSettings{Channel: "wa", Features: Features{Capacity: 3, WhenNobody: QueueWhenNobody}}
	for round := range rounds {
		var st shared
		ds := []*Distributor{st.distributor(nil), st.distributor(nil), st.distributor(nil), st.distributor(nil)}
		tbl := managers(t, 3)
		const clients = 50
		decs := make([]Decision, clients)
		errs := make([]error, clients)
		start := make(chan struct{})
		stop := make(chan struct{})
		var over atomic.Value
		var sampler sync.WaitGroup
		sampler.Go(func() {
			for {
				for u, n := range openCounts(t, &st.rotation, users...) {
					if n > 3 {
						over.Store(fmt.Sprintf("%s holds %d", u, n))
					}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				<-start
				decs[i], errs[i] = ds[i%len(ds)].Assign(t.Context(), Request{
					Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: waChat(i), At: t0.Add(time.Duration(i) * time.Second),
				})
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		sampler.Wait()
		if v := over.Load(); v != nil {
			t.Fatalf("round %d: over capacity during the race: %v", round, v)
		}
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		assigned, queued := map[crm.UserID]int{}, 0
		for _, d := range decs {
			switch d.Why.Rule {
			case RuleRoundRobin:
				assigned[d.User]++
				if d.Why.Capacity != 3 || d.Why.Open < 1 || d.Why.Open > 3 {
					t.Fatalf("round %d: explanation %v: want open 1..3 of 3", round, d.Why)
				}
			case RuleQueue:
				queued++
				if !d.Why.Behind && (d.Why.Fallback == nil || len(d.Why.Fallback.Skipped) != 5) {
					t.Fatalf("round %d: queue decision %v; want a fallback naming the skipped, or behind others", round, d.Why)
				}
			default:
				t.Fatalf("round %d: unexpected decision %v", round, d)
			}
		}
		if queued != 41 || assigned["m1"] != 3 || assigned["m2"] != 3 || assigned["m3"] != 3 {
			t.Fatalf("round %d: assigned %v, queued %d; want 3 each and 41 queued", round, assigned, queued)
		}
	}
}

// TestQueueDrainOldestFirst: everyone is off shift, clients queue; when a
// shift starts the queue is assigned oldest first up to capacity, and
// concurrent Drains on four Distributors assign each client once.
func TestQueueDrainOldestFirst(t *testing.T) {
	var st shared
	tbl := managers(t, 2)
	shift := Schedule{Shifts: []Shift{{Days: []time.Weekday{time.Monday}, From: 10 * 60, To: 18 * 60}}}
	settings := ChannelSettings{Channel: "wa", Features: Features{
		Capacity: 2, WhenNobody: QueueWhenNobody,
		Schedules: map[crm.UserID]Schedule{"m1": shift, "m2": shift},
	}}
	d := st.distributor(nil)
	arrival := []int{4, 2, 7, 0, 5, 6} // minutes after 09:00: chat i arrives at arrival[i]
	for i, m := range arrival {
		dec, err := d.Assign(t.Context(), Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: waChat(i), At: t0.Add(time.Duration(m) * time.Minute)})
		if err != nil || dec.Why.Rule != RuleQueue || dec.User != "" || dec.Why.Repeat {
			t.Fatalf("client %d off shift: %v, %v; want queued", i, dec, err)
		}
	}
	again, err := d.Assign(t.Context(), Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: waChat(1), At: t0.Add(50 * time.Minute)})
	if err != nil || !again.Why.Repeat || !again.Why.Queued.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("a repeated Assign of a queued client = %v, %v; want its place kept", again, err)
	}
	if got, _ := d.Drain(t.Context(), Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: channel.Chat{Channel: "wa"}, At: t0.Add(30 * time.Minute)}, 10, nil); len(got) != 0 {
		t.Fatalf("Drain before the shift assigned %v", got)
	}
	at10 := t0.Add(time.Hour)
	var wg sync.WaitGroup
	results := make([][]Decision, 4)
	errs := make([]error, 4)
	for i := range 4 {
		di := st.distributor(nil)
		wg.Go(func() {
			results[i], errs[i] = di.Drain(t.Context(), Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: channel.Chat{Channel: "wa"}, At: at10}, 10, nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := map[string]crm.UserID{}
	for _, rs := range results {
		for _, dec := range rs {
			if u, ok := got[dec.Why.Chat.ChatID]; ok && u != dec.User {
				t.Fatalf("%s assigned to %s and %s", dec.Why.Chat.ChatID, u, dec.User)
			}
			got[dec.Why.Chat.ChatID] = dec.User
		}
	}
	// oldest four: chat 3 (09:00), 1 (09:02), 0 (09:04), 4 (09:05)
	want := map[string]bool{"client-003": true, "client-001": true, "client-000": true, "client-004": true}
	if len(got) != 4 {
		t.Fatalf("drained %v; want the 4 oldest (capacity 2 × 2)", got)
	}
	for c := range got {
		if !want[c] {
			t.Errorf("drained %s, which is not among the 4 oldest", c)
		}
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 2, "m2": 2}, "both at their limit")
	left, _ := d.Queued(t.Context(), "wa", 10)
	if len(left) != 2 || left[0].Chat != waChat(5) || left[1].Chat != waChat(2) {
		t.Errorf("still queued %v; want client-005 then client-002", left)
	}
	if u, ok, err := d.Free(t.Context(), waChat(3)); !ok || err != nil {
		t.Fatalf("Free = %q, %v, %v", u, ok, err)
	}
	next, err := d.Drain(t.Context(), Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: channel.Chat{Channel: "wa"}, At: at10}, 10, nil)
	if err != nil || len(next) != 1 || next[0].Why.Chat != waChat(5) || next[0].User != got["client-003"] {
		t.Errorf("Drain after a Free = %v, %v; want client-005 to %s", next, err, got["client-003"])
	}
}

// TestEscalationAtMostOncePerDeadline: a round-robin client unanswered
// for 10 minutes passes on once per deadline even when 8 instances
// process the same due watch, and never after Times escalations.
func TestEscalationAtMostOncePerDeadline(t *testing.T) {
	var st shared
	tbl := managers(t, 3)
	settings := ChannelSettings{Channel: "wa", Features: Features{Escalation: Escalation{After: Duration(10 * time.Minute), Times: 2}}}
	req := func(at time.Time) Request {
		return Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: chatWA, At: at}
	}
	first, err := st.distributor(nil).Assign(t.Context(), req(t0))
	if err != nil || first.User != "m1" {
		t.Fatalf("Assign = %v, %v", first, err)
	}
	current := first.User
	for step, at := range []time.Time{t0.Add(10 * time.Minute), t0.Add(25 * time.Minute)} {
		if ws, _ := st.esc.DueBy(t.Context(), at.Add(-time.Minute), 10); len(ws) != 0 && step == 0 {
			t.Fatalf("due before the deadline: %v", ws)
		}
		ws, err := st.distributor(nil).DueEscalations(t.Context(), at, 10)
		if err != nil || len(ws) != 1 {
			t.Fatalf("step %d: due %v, %v; want the one watch", step, ws, err)
		}
		var wg sync.WaitGroup
		decs := make([]Decision, 8)
		oks := make([]bool, 8)
		errs := make([]error, 8)
		for i := range 8 {
			d := st.distributor(nil)
			wg.Go(func() { decs[i], oks[i], errs[i] = d.Escalate(t.Context(), req(at), ws[0], current) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		var won []Decision
		for i := range oks {
			if oks[i] {
				won = append(won, decs[i])
			}
		}
		if len(won) != 1 {
			t.Fatalf("step %d: %d instances escalated; want exactly 1", step, len(won))
		}
		dec := won[0]
		if dec.Why.Rule != RuleEscalation || dec.Why.Escalation != step+1 || dec.Why.From != current || dec.User == current || dec.User == "" {
			t.Fatalf("step %d: %v; want escalation #%d from %s to someone else", step, dec, step+1, current)
		}
		if _, ok, _ := st.distributor(nil).Escalate(t.Context(), req(at), ws[0], current); ok {
			t.Fatalf("step %d: a redelivered watch escalated again", step)
		}
		current = dec.User
	}
	if ws, _ := st.esc.DueBy(t.Context(), t0.Add(24*time.Hour), 10); len(ws) != 0 {
		t.Errorf("watches left after Times escalations: %v", ws)
	}
}

func TestEscalationWidensOffer(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	tbl := managers(t, 2)
	settings := ChannelSettings{Channel: "wa", Features: Features{Escalation: Escalation{After: Duration(5 * time.Minute)}}}
	req := func(at time.Time, c channel.Chat) Request {
		return Request{Settings: settings, Mode: FirstResponder, Roles: tbl, Chat: c, At: at}
	}
	if _, err := d.Assign(t.Context(), req(t0, chatWA)); err != nil {
		t.Fatal(err)
	}
	other := channel.Chat{Channel: "wa", ChatID: "other"}
	if _, err := d.Assign(t.Context(), req(t0, other)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Claim(t.Context(), other, "m2"); err != nil {
		t.Fatal(err)
	}
	ws, _ := d.DueEscalations(t.Context(), t0.Add(5*time.Minute), 10)
	if len(ws) != 2 {
		t.Fatalf("due %v; want both offers", ws)
	}
	for _, w := range ws {
		dec, ok, err := d.Escalate(t.Context(), req(t0.Add(5*time.Minute), w.Chat), w, "")
		if err != nil {
			t.Fatal(err)
		}
		switch w.Chat {
		case chatWA:
			if !ok || !slices.Equal(dec.Offered, []crm.UserID{"m1", "m2", "sup"}) || dec.Why.Rule != RuleEscalation {
				t.Errorf("widened offer = %v, %v; want m1, m2 and sup", dec, ok)
			}
		case other:
			if ok {
				t.Errorf("a claimed chat escalated: %v", dec)
			}
		}
	}
	if ws, _ := d.DueEscalations(t.Context(), t0.Add(time.Hour), 10); len(ws) != 0 {
		t.Errorf("still watched: %v", ws)
	}
}

func TestOwnerOffShift(t *testing.T) {
	tbl := managers(t, 3)
	off := Schedule{Leave: []Period{{"2026-03-01", "2026-03-08"}}}
	base := ChannelSettings{Channel: "wa", Features: Features{Schedules: map[crm.UserID]Schedule{"m1": off}}}
	for name, c := range map[string]struct {
		policy  OwnerPolicy
		at      time.Time
		rule    Rule
		user    crm.UserID
		offered []crm.UserID
	}{
		"owner at work": {ReassignOwner, t0.Add(7 * 24 * time.Hour), RuleOwner, "m1", nil},
		"keep":          {KeepOwner, t0, RuleOwner, "m1", nil},
		"cover":         {CoverOwner, t0, RuleCover, "m1", []crm.UserID{"m2", "m3"}},
		"reassign":      {ReassignOwner, t0, RuleRoundRobin, "m2", nil},
	} {
		var st shared
		s := base
		s.OwnerOffShift = c.policy
		dec, err := st.distributor(nil).Owner(t.Context(), Request{Settings: s, Mode: RoundRobin, Roles: tbl, Chat: chatWA, At: c.at}, "m1")
		if err != nil || dec.Why.Rule != c.rule || dec.User != c.user || !slices.Equal(dec.Offered, c.offered) || dec.Why.Owner != "m1" {
			t.Errorf("%s: Owner = %v, %v; want rule %s, user %s, offered %v", name, dec, err, c.rule, c.user, c.offered)
		}
		if c.at.Equal(t0) && dec.Why.Away != SkipOnLeave {
			t.Errorf("%s: Away = %q; want on leave", name, dec.Why.Away)
		}
	}
}

func TestAssignZeroSettingsIsDistribute(t *testing.T) {
	for _, mode := range []Mode{RoundRobin, FirstResponder} {
		a, b := NewDistributor(DistributorOptions{}), NewDistributor(DistributorOptions{})
		for i := range 7 {
			tbl := managers(t, 1+i%3)
			want, err1 := a.Distribute(t.Context(), mode, tbl, waChat(i))
			got, err2 := b.Assign(t.Context(), Request{Mode: mode, Roles: tbl, Chat: waChat(i), At: t0})
			if err1 != nil || err2 != nil || got.String() != want.String() {
				t.Errorf("%v #%d: Assign = %v, %v; Distribute = %v, %v", mode, i, got, err2, want, err1)
			}
		}
	}
}

func TestAssignBadRequest(t *testing.T) {
	d := NewDistributor(DistributorOptions{})
	tbl := managers(t, 1)
	for name, r := range map[string]Request{
		"no chat":          {Mode: RoundRobin, Roles: tbl},
		"no roles":         {Mode: RoundRobin, Chat: chatWA},
		"no mode":          {Roles: tbl, Chat: chatWA},
		"another channel":  {Settings: ChannelSettings{Channel: "tg"}, Mode: RoundRobin, Roles: tbl, Chat: chatWA},
		"no time to queue": {Settings: ChannelSettings{Features: Features{WhenNobody: QueueWhenNobody}}, Mode: RoundRobin, Roles: tbl, Chat: chatWA},
	} {
		if _, err := d.Assign(t.Context(), r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Assign error = %v; want ErrInvalid", name, err)
		}
	}
	bad := ChannelSettings{Channel: "wa", Features: Features{Schedules: map[crm.UserID]Schedule{"m1": {TimeZone: "Nowhere/City"}}}}
	if _, err := d.Assign(t.Context(), Request{Settings: bad, Mode: RoundRobin, Roles: tbl, Chat: chatWA, At: t0}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Assign with an unknown time zone: %v; want ErrInvalid", err)
	}
}

// TestDrainApplyFails: an apply that fails leaves the client queued; the
// next Drain meets the assignment already made and applies it again.
func TestDrainApplyFails(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{WhenNobody: QueueWhenNobody}}
	r := Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 0), Chat: waChat(1), At: t0}
	if dec, err := d.Assign(t.Context(), r); err != nil || dec.Why.Rule != RuleQueue {
		t.Fatalf("Assign with nobody = %v, %v", dec, err)
	}
	r.Roles, r.Chat = managers(t, 2), channel.Chat{Channel: "wa"}
	boom := errors.New("CRM down")
	_, err := d.Drain(t.Context(), r, 10, func(context.Context, Decision) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Drain = %v; want the apply error", err)
	}
	var applied []Decision
	got, err := d.Drain(t.Context(), r, 10, func(_ context.Context, dec Decision) error { applied = append(applied, dec); return nil })
	if err != nil || len(got) != 1 || len(applied) != 1 || !got[0].Why.Repeat || got[0].User != "m1" {
		t.Fatalf("second Drain = %v, %v (applied %v); want m1 again, a repeat", got, err, applied)
	}
	if left, _ := d.Queued(t.Context(), "wa", 10); len(left) != 0 {
		t.Errorf("still queued: %v", left)
	}
}

// TestAssignMovesHoldFromIneligible: a repeated Assign returns the holder
// while they are eligible, and moves the client when they are not (they
// left the channel or went off shift).
func TestAssignMovesHoldFromIneligible(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 5}}
	r := Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 2), Chat: chatWA, At: t0}
	first, err := d.Assign(t.Context(), r)
	if err != nil || first.User != "m1" {
		t.Fatalf("Assign = %v, %v", first, err)
	}
	again, _ := d.Assign(t.Context(), r)
	if again.User != "m1" || !again.Why.Repeat {
		t.Fatalf("repeat = %v; want m1 again", again)
	}
	r.Roles = mustTable(t, roles.Assignment{User: "m2", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
	moved, err := d.Assign(t.Context(), r)
	if err != nil || moved.User != "m2" || moved.Why.Repeat {
		t.Fatalf("after m1 left: %v, %v; want a new pick of m2", moved, err)
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 0, "m2": 1}, "the hold moved to m2")
}

// TestQueueNotOvertaken: with clients waiting, a newcomer arriving when a
// place has just freed joins the queue behind them; Drain serves the
// oldest first.
func TestQueueNotOvertaken(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1, WhenNobody: QueueWhenNobody}}
	r := func(i int, at time.Duration) Request {
		return Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 1), Chat: waChat(i), At: t0.Add(at)}
	}
	if dec, _ := d.Assign(t.Context(), r(0, 0)); dec.User != "m1" {
		t.Fatalf("first client: %v", dec)
	}
	if dec, _ := d.Assign(t.Context(), r(1, time.Minute)); dec.Why.Rule != RuleQueue || dec.Why.Fallback == nil {
		t.Fatalf("second client: %v; want queued, nobody eligible", dec)
	}
	if _, ok, _ := d.Free(t.Context(), waChat(0)); !ok {
		t.Fatal("not held")
	}
	dec, err := d.Assign(t.Context(), r(2, 2*time.Minute))
	if err != nil || dec.Why.Rule != RuleQueue || dec.Why.Fallback != nil || !dec.Why.Behind || dec.User != "" {
		t.Fatalf("third client with one waiting: %v, %v; want queued behind, no fallback", dec, err)
	}
	got, err := d.Drain(t.Context(), r(0, 3*time.Minute), 10, nil)
	if err != nil || len(got) != 1 || got[0].Why.Chat != waChat(1) {
		t.Fatalf("Drain = %v, %v; want the older client-001", got, err)
	}
}

// TestClaimWithinCapacity: 50 first-responder chats offered at once to
// three managers with a limit of 3, each claimed concurrently by all
// three on four Distributors: nobody wins more than 3, and the losers are
// told why (claimed by another, or at capacity).
func TestClaimWithinCapacity(t *testing.T) {
	var st shared
	ds := []*Distributor{st.distributor(nil), st.distributor(nil), st.distributor(nil), st.distributor(nil)}
	f := Features{Capacity: 3}
	tbl := managers(t, 3)
	for i := range 50 {
		// Offered before the limit was set: the offers do not count.
		if _, err := ds[0].Assign(t.Context(), Request{Settings: ChannelSettings{Channel: "wa"}, Mode: FirstResponder, Roles: tbl, Chat: waChat(i), At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	users := []crm.UserID{"m1", "m2", "m3"}
	wins := map[crm.UserID]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		for j, u := range users {
			d := ds[(i+j)%len(ds)]
			wg.Go(func() {
				<-start
				_, err := d.ClaimWithin(t.Context(), f, waChat(i), u)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins[u]++
				case errors.Is(err, ErrAtCapacity), errors.Is(err, ErrAlreadyClaimed):
				default:
					t.Errorf("ClaimWithin: %v", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for _, u := range users {
		if wins[u] > 3 {
			t.Errorf("%s won %d chats; limit 3", u, wins[u])
		}
	}
	if oc := openCounts(t, &st.rotation, users...); oc["m1"] != wins["m1"] || oc["m2"] != wins["m2"] || oc["m3"] != wins["m3"] {
		t.Errorf("open counts %v; wins %v", oc, wins)
	}
	if wins["m1"]+wins["m2"]+wins["m3"] != 9 {
		t.Errorf("wins %v; want 9 in all (3 each)", wins)
	}
	_, err := ds[0].ClaimWithin(t.Context(), f, waChat(49), "m1")
	if ae, ok := errors.AsType[*AtCapacityError](err); ok && (ae.Limit != 3 || ae.User != "m1") {
		t.Errorf("AtCapacityError = %+v", ae)
	}
}

// interleaving is a RotationStore that runs between once, right after
// the first Free or before the first Hold, as another instance's call
// landing between two of the caller's store operations would.
type interleaving struct {
	RotationStore
	between func()
}

func (s *interleaving) Free(ctx context.Context, pool, key string) (crm.UserID, bool, error) {
	u, ok, err := s.RotationStore.Free(ctx, pool, key)
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return u, ok, err
}

func (s *interleaving) Hold(ctx context.Context, pool, key string, user crm.UserID) (crm.UserID, error) {
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return s.RotationStore.Hold(ctx, pool, key, user)
}

// TestEscalationKeepsCapacityUnderInterleaving: an escalation with nobody
// else eligible leaves the client with its holder, and another
// instance's pick cannot take the holder's place and push them over their
// limit. The store runs that pick right after a Free, where the old
// escalation (Free, pick, re-Hold) let it land, and this test fails on
// it; Escalate now moves the hold in one store operation, so the pick
// runs after the escalation and finds both employees at their limit.
func TestEscalationKeepsCapacityUnderInterleaving(t *testing.T) {
	var st shared
	store := &interleaving{RotationStore: &st.rotation}
	d := NewDistributor(DistributorOptions{Claims: &st.claims, Rotation: store, Queue: &st.queue, Escalations: &st.esc})
	other := st.distributor(nil) // another instance on the same stores
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1, Escalation: Escalation{After: Duration(10 * time.Minute)}}}
	req := func(i int, at time.Time) Request {
		return Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 2), Chat: waChat(i), At: at}
	}
	for i, want := range []crm.UserID{"m1", "m2"} {
		if dec, err := d.Assign(t.Context(), req(i, t0)); err != nil || dec.User != want {
			t.Fatalf("client %d: %v, %v; want %s", i, dec, err, want)
		}
	}
	var late Decision
	var lateErr error
	store.between = func() { late, lateErr = other.Assign(t.Context(), req(2, t0.Add(10*time.Minute))) }
	ws, err := d.DueEscalations(t.Context(), t0.Add(10*time.Minute), 10)
	if err != nil || len(ws) != 2 {
		t.Fatalf("due: %v, %v; want both clients", ws, err)
	}
	dec, ok, err := d.Escalate(t.Context(), req(0, t0.Add(10*time.Minute)), ws[0], "m1")
	if err != nil || !ok || dec.User != "m1" || dec.Why.Fallback == nil {
		t.Fatalf("escalation with m2 at capacity = %v, %v, %v; want the client kept by m1, with a fallback", dec, ok, err)
	}
	if store.between != nil { // nothing interleaved: run the other instance's pick now
		store.between()
	}
	if lateErr != nil || late.User != "" {
		t.Errorf("a third client while both hold one: %v, %v; want nobody (both at capacity)", late, lateErr)
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 1, "m2": 1}, "one client each, the limit")
}

// TestEscalationMovesQueueHold: on a channel with a queue and no limit,
// the client's hold (what Assign and Drain agree on) moves with the
// escalation, so a repeated Assign names the new employee.
func TestEscalationMovesQueueHold(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{WhenNobody: QueueWhenNobody, Escalation: Escalation{After: Duration(10 * time.Minute)}}}
	r := Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 2), Chat: chatWA, At: t0}
	first, err := d.Assign(t.Context(), r)
	if err != nil || first.User != "m1" {
		t.Fatalf("Assign = %v, %v", first, err)
	}
	ws, err := d.DueEscalations(t.Context(), t0.Add(10*time.Minute), 10)
	if err != nil || len(ws) != 1 {
		t.Fatalf("due: %v, %v", ws, err)
	}
	r.At = t0.Add(10 * time.Minute)
	dec, ok, err := d.Escalate(t.Context(), r, ws[0], "m1")
	if err != nil || !ok || dec.User != "m2" {
		t.Fatalf("Escalate = %v, %v, %v; want m2", dec, ok, err)
	}
	again, err := d.Assign(t.Context(), r)
	if err != nil || again.User != "m2" || !again.Why.Repeat {
		t.Errorf("Assign after the escalation = %v, %v; want m2, a repeat", again, err)
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 0, "m2": 1}, "the client held by m2 only")
}

// TestForgetEndsAbandonedOffer: an offer nobody claims holds a place
// under every offered employee's limit until its deal closes; Forget
// frees those places, stops its escalation clock and takes a queued
// client out of the queue, and a second Forget changes nothing.
func TestForgetEndsAbandonedOffer(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1, WhenNobody: QueueWhenNobody, Escalation: Escalation{After: Duration(10 * time.Minute)}}}
	req := func(i int) Request {
		return Request{Settings: s, Mode: FirstResponder, Roles: managers(t, 2), Chat: waChat(i), At: t0}
	}
	abandoned, err := d.Assign(t.Context(), req(0))
	if err != nil || len(abandoned.Offered) != 2 {
		t.Fatalf("first offer: %v, %v; want both managers", abandoned, err)
	}
	waiting, err := d.Assign(t.Context(), req(1))
	if err != nil || waiting.Why.Rule != RuleQueue {
		t.Fatalf("second client: %v, %v; want queued (both hold the unclaimed offer)", waiting, err)
	}
	if err := d.Forget(t.Context(), waChat(0)); err != nil {
		t.Fatal(err)
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 0, "m2": 0}, "nothing held after Forget")
	if _, found, _ := d.ClaimState(t.Context(), waChat(0)); found {
		t.Error("the forgotten offer is still recorded")
	}
	if err := d.Forget(t.Context(), waChat(1)); err != nil {
		t.Fatal(err)
	}
	if q, _ := d.Queued(t.Context(), "wa", 10); len(q) != 0 {
		t.Errorf("queue after forgetting its client: %v", q)
	}
	if ws, _ := d.DueEscalations(t.Context(), t0.Add(time.Hour), 10); len(ws) != 0 {
		t.Errorf("watches after Forget: %v; want none", ws)
	}
	if err := d.Forget(t.Context(), waChat(0)); err != nil {
		t.Errorf("second Forget: %v", err)
	}
	next, err := d.Assign(t.Context(), req(2))
	if err != nil || len(next.Offered) != 2 || next.Why.Fallback != nil {
		t.Errorf("a new client after Forget: %v, %v; want offered to both within their limits", next, err)
	}
	if err := d.Forget(t.Context(), channel.Chat{Channel: "wa"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Forget of a chat without an ID: %v; want ErrInvalid", err)
	}
}

// wantOpen checks the open counts of the employees in want.
func wantOpen(t *testing.T, r RotationStore, want map[crm.UserID]int, what string) {
	t.Helper()
	users := slices.Sorted(maps.Keys(want))
	if got := openCounts(t, r, users...); !maps.Equal(got, want) {
		t.Errorf("open counts %v; want %v (%s)", got, want, what)
	}
}

// TestEscalationLateHostGivesFullTime: a host that processes a deadline
// late escalates once, and the employee reached gets the whole time to
// reply from that moment, not what was left of a schedule counted from
// the first pick.
func TestEscalationLateHostGivesFullTime(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{Escalation: Escalation{After: Duration(10 * time.Minute), Times: 3}}}
	r := Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 3), Chat: chatWA, At: t0}
	first, err := d.Assign(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	current := first.User
	for _, c := range []struct {
		at        time.Duration
		escalates bool
	}{{35 * time.Minute, true}, {36 * time.Minute, false}, {44 * time.Minute, false}, {45 * time.Minute, true}, {50 * time.Minute, false}, {55 * time.Minute, true}, {2 * time.Hour, false}} {
		r.At = t0.Add(c.at)
		ws, err := d.DueEscalations(t.Context(), r.At, 10)
		if err != nil {
			t.Fatal(err)
		}
		if (len(ws) == 1) != c.escalates {
			t.Fatalf("at +%v: due %v; want escalation %v", c.at, ws, c.escalates)
		}
		for _, w := range ws {
			dec, ok, err := d.Escalate(t.Context(), r, w, current)
			if err != nil || !ok || dec.User == current {
				t.Fatalf("at +%v: Escalate = %v, %v, %v", c.at, dec, ok, err)
			}
			current = dec.User
		}
	}
}

// peekHook is a QueueStore that runs after once, right after the first
// Peek: another instance's call landing between a Drain's read of the
// queue and its assignments.
type peekHook struct {
	QueueStore
	after func()
}

func (q *peekHook) Peek(ctx context.Context, ch channel.ID, limit int) ([]QueueEntry, error) {
	es, err := q.QueueStore.Peek(ctx, ch, limit)
	if f := q.after; f != nil {
		q.after = nil
		f()
	}
	return es, err
}

// TestDrainSkipsForgottenClient: a waiting client whose deal closes
// (Forget, on another instance) after a Drain read the queue is not
// assigned: no place is taken for it and no clock starts, and the next
// waiting client gets the place.
func TestDrainSkipsForgottenClient(t *testing.T) {
	var st shared
	q := &peekHook{QueueStore: &st.queue}
	d := NewDistributor(DistributorOptions{Claims: &st.claims, Rotation: &st.rotation, Queue: q, Escalations: &st.esc})
	other := st.distributor(nil)
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1, WhenNobody: QueueWhenNobody, Escalation: Escalation{After: Duration(10 * time.Minute)}}}
	req := func(i int) Request {
		return Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 1), Chat: waChat(i), At: t0.Add(time.Duration(i) * time.Minute)}
	}
	for i, rule := range []Rule{RuleRoundRobin, RuleQueue, RuleQueue} {
		if dec, err := d.Assign(t.Context(), req(i)); err != nil || dec.Why.Rule != rule {
			t.Fatalf("client %d: %v, %v; want %s", i, dec, err, rule)
		}
	}
	if err := d.Forget(t.Context(), waChat(0)); err != nil { // the first client's deal closed: a place frees
		t.Fatal(err)
	}
	q.after = func() {
		if err := other.Forget(t.Context(), waChat(1)); err != nil {
			t.Error(err)
		}
	}
	got, err := d.Drain(t.Context(), req(9), 10, nil)
	if err != nil || len(got) != 1 || got[0].Why.Chat != waChat(2) || got[0].User != "m1" {
		t.Fatalf("Drain = %v, %v; want only client 2, to m1", got, err)
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 1}, "the place went to client 2 only")
	if ws, _ := d.DueEscalations(t.Context(), t0.Add(time.Hour), 10); len(ws) != 1 || ws[0].Chat != waChat(2) {
		t.Errorf("watches %v; want client 2's only", ws)
	}
	if dec, ok, err := d.Serve(t.Context(), req(1), nil); ok || err != nil {
		t.Errorf("Serve of the forgotten client = %v, %v, %v; want not queued", dec, ok, err)
	}
}

// TestEscalationStopsWatchesPolicyNoLongerFires: watches whose channel
// turned escalation off, or lowered Times below what was done, are
// stopped when they come due, so they cannot fill DueEscalations' batches
// ahead of watches that can fire.
func TestEscalationStopsWatchesPolicyNoLongerFires(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	on := ChannelSettings{Channel: "wa", Features: Features{Escalation: Escalation{After: Duration(10 * time.Minute), Times: 2}}}
	req := func(s ChannelSettings, at time.Time) Request {
		return Request{Settings: s, Mode: RoundRobin, Roles: managers(t, 3), At: at}
	}
	for i := range 3 {
		if _, err := d.Assign(t.Context(), Request{Settings: on, Mode: RoundRobin, Roles: managers(t, 3), Chat: waChat(i), At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := d.DueEscalations(t.Context(), t0.Add(10*time.Minute), 10)
	if err != nil || len(ws) != 3 {
		t.Fatalf("due: %v, %v; want 3", ws, err)
	}
	if _, ok, err := d.Escalate(t.Context(), req(ChannelSettings{Channel: "wa"}, t0.Add(10*time.Minute)), ws[0], "m1"); ok || err != nil {
		t.Errorf("a watch whose channel turned escalation off: escalated %v, %v; want nothing", ok, err)
	}
	if _, ok, err := d.Escalate(t.Context(), req(on, t0.Add(10*time.Minute)), ws[1], "m2"); !ok || err != nil {
		t.Fatalf("first escalation: %v, %v", ok, err)
	}
	again, _ := d.DueEscalations(t.Context(), t0.Add(20*time.Minute), 10)
	lowered := on
	lowered.Escalation.Times = 1
	for _, w := range again {
		if w.Chat == waChat(1) {
			if _, ok, err := d.Escalate(t.Context(), req(lowered, t0.Add(20*time.Minute)), w, "m1"); ok || err != nil {
				t.Errorf("a second escalation after Times was lowered to 1: %v, %v; want nothing", ok, err)
			}
		}
	}
	left, _ := d.DueEscalations(t.Context(), t0.Add(time.Hour), 10)
	if len(left) != 1 || left[0].Chat != waChat(2) {
		t.Errorf("watches left: %v; want only client 2's (the others stopped)", left)
	}
}

// failingWiden is a ClaimStore whose Widen fails.
type failingWiden struct{ *MemoryClaims }

func (f failingWiden) Widen(context.Context, channel.Chat, []crm.UserID) (ClaimState, error) {
	return ClaimState{}, errors.New("store unavailable")
}

// TestEscalationWidenFailureFreesPlaces: an offer's widening counts the
// places of those it adds first; when recording the wider offer fails,
// those places are given back, since no offer record holds them and the
// deadline is spent.
func TestEscalationWidenFailureFreesPlaces(t *testing.T) {
	var st shared
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1, Escalation: Escalation{After: Duration(10 * time.Minute)}}}
	r := Request{Settings: s, Mode: FirstResponder, Roles: managers(t, 2), Chat: chatWA, At: t0}
	if dec, err := st.distributor(nil).Assign(t.Context(), r); err != nil || len(dec.Offered) != 2 {
		t.Fatalf("offer: %v, %v", dec, err)
	}
	d := NewDistributor(DistributorOptions{Claims: failingWiden{&st.claims}, Rotation: &st.rotation, Queue: &st.queue, Escalations: &st.esc})
	ws, _ := d.DueEscalations(t.Context(), t0.Add(10*time.Minute), 10)
	if len(ws) != 1 {
		t.Fatalf("due: %v", ws)
	}
	r.At = t0.Add(10 * time.Minute)
	if _, _, err := d.Escalate(t.Context(), r, ws[0], ""); err == nil {
		t.Fatal("Escalate succeeded; want the store's error")
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 1, "m2": 1, "sup": 0}, "the supervisor's place given back")
}

// lostWiden is a ClaimStore whose Widen is recorded but its answer lost.
type lostWiden struct{ *MemoryClaims }

func (f lostWiden) Widen(ctx context.Context, chat channel.Chat, users []crm.UserID) (ClaimState, error) {
	if _, err := f.MemoryClaims.Widen(ctx, chat, users); err != nil {
		return ClaimState{}, err
	}
	return ClaimState{}, errors.New("connection lost")
}

// TestEscalationWidenLostAnswerKeepsPlaces: a widening recorded whose
// answer was lost keeps the places of those it added, since the offer
// names them.
func TestEscalationWidenLostAnswerKeepsPlaces(t *testing.T) {
	var st shared
	s := ChannelSettings{Channel: "wa", Features: Features{Capacity: 1, Escalation: Escalation{After: Duration(10 * time.Minute)}}}
	r := Request{Settings: s, Mode: FirstResponder, Roles: managers(t, 2), Chat: chatWA, At: t0}
	if _, err := st.distributor(nil).Assign(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	d := NewDistributor(DistributorOptions{Claims: lostWiden{&st.claims}, Rotation: &st.rotation, Queue: &st.queue, Escalations: &st.esc})
	ws, _ := d.DueEscalations(t.Context(), t0.Add(10*time.Minute), 10)
	r.At = t0.Add(10 * time.Minute)
	if _, _, err := d.Escalate(t.Context(), r, ws[0], ""); err == nil {
		t.Fatal("Escalate succeeded; want the lost answer's error")
	}
	if cs, _, _ := st.claims.Get(t.Context(), chatWA); !cs.OfferedTo("sup") {
		t.Fatalf("offer %v; want the widening recorded", cs)
	}
	wantOpen(t, &st.rotation, map[crm.UserID]int{"m1": 1, "m2": 1, "sup": 1}, "the supervisor's place kept: the offer names them")
}

// TestEscalationStaleCopyDoesNotEndNewClock: a stale copy of a watch the
// lowered policy can no longer fire does not end the clock started again
// since for the same chat.
func TestEscalationStaleCopyDoesNotEndNewClock(t *testing.T) {
	var st shared
	d := st.distributor(nil)
	on := ChannelSettings{Channel: "wa", Features: Features{Escalation: Escalation{After: Duration(10 * time.Minute), Times: 2}}}
	r := Request{Settings: on, Mode: RoundRobin, Roles: managers(t, 3), Chat: chatWA, At: t0}
	if _, err := d.Assign(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ws, _ := d.DueEscalations(t.Context(), t0.Add(10*time.Minute), 10)
	r.At = t0.Add(10 * time.Minute)
	if _, ok, err := d.Escalate(t.Context(), r, ws[0], "m1"); !ok || err != nil {
		t.Fatalf("first escalation: %v, %v", ok, err)
	}
	stale, _ := d.DueEscalations(t.Context(), t0.Add(20*time.Minute), 10) // Done 1
	if err := d.Forget(t.Context(), chatWA); err != nil {
		t.Fatal(err)
	}
	r.At = t0.Add(15 * time.Minute)
	if _, err := d.Assign(t.Context(), r); err != nil { // a new clock, due at +25m
		t.Fatal(err)
	}
	lowered := on
	lowered.Escalation.Times = 1
	if _, ok, err := d.Escalate(t.Context(), Request{Settings: lowered, Mode: RoundRobin, Roles: managers(t, 3), At: t0.Add(20 * time.Minute)}, stale[0], "m2"); ok || err != nil {
		t.Fatalf("stale copy: %v, %v; want nothing done", ok, err)
	}
	if left, _ := d.DueEscalations(t.Context(), t0.Add(time.Hour), 10); len(left) != 1 || !left[0].Due.Equal(t0.Add(25*time.Minute)) {
		t.Errorf("watches %v; want the new clock, due at +25m", left)
	}
}
