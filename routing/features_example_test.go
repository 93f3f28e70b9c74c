package routing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
)

var monday9 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newClient(n int) channel.Chat {
	return channel.Chat{Channel: "wa", ChatID: fmt.Sprintf("7916000000%d", n)}
}

// Capacity: at most two open clients each; the fifth client waits in the
// queue and is assigned when a deal closes.
func ExampleDistributor_Assign_capacity() {
	ctx := context.Background()
	d := routing.NewDistributor(routing.DistributorOptions{})
	s := routing.ChannelSettings{Channel: "wa", Features: routing.Features{Capacity: 2, WhenNobody: routing.QueueWhenNobody}}
	for n := range 5 {
		dec, _ := d.Assign(ctx, routing.Request{Settings: s, Mode: routing.RoundRobin, Roles: exampleTeam(), Chat: newClient(n), At: monday9})
		if dec.User != "" {
			fmt.Printf("client %d: %s to %s, open %d of %d\n", n, dec.Why.Rule, dec.User, dec.Why.Open, dec.Why.Capacity)
		} else {
			fmt.Printf("client %d: %s\n", n, dec.Why.Rule)
		}
	}
	_, _, _ = d.Free(ctx, newClient(0)) // client 0's deal closed
	drained, _ := d.Drain(ctx, routing.Request{Settings: s, Mode: routing.RoundRobin, Roles: exampleTeam(), Chat: channel.Chat{Channel: "wa"}, At: monday9}, 10, nil)
	fmt.Println("drained:", drained[0].Why.Chat.ChatID, "to", drained[0].User)
	// Output:
	// client 0: round_robin to anna, open 1 of 2
	// client 1: round_robin to boris, open 1 of 2
	// client 2: round_robin to anna, open 2 of 2
	// client 3: round_robin to boris, open 2 of 2
	// client 4: queue
	// drained: 79160000004 to anna
}

// Shifts in a time zone, days off and leave decide availability at the
// event's time.
func ExampleSchedule_Available() {
	s := routing.Schedule{
		TimeZone: "Europe/Moscow",
		Shifts:   []routing.Shift{{Days: []time.Weekday{time.Monday, time.Friday}, From: 9 * 60, To: 18 * 60}},
		Leave:    []routing.Period{{From: "2026-03-09", To: "2026-03-13"}},
	}
	for _, at := range []time.Time{monday9, monday9.Add(8 * time.Hour), monday9.Add(7 * 24 * time.Hour)} {
		ok, why, _ := s.Available(at)
		if ok {
			fmt.Println(at.Format("Mon 15:04 MST"), "at work")
		} else {
			fmt.Println(at.Format("Mon 15:04 MST"), why)
		}
	}
	// Output:
	// Mon 09:00 UTC at work
	// Mon 17:00 UTC off shift
	// Mon 09:00 UTC on leave
}

// Weighted shares 50/30/20: every ten clients split 5/3/2, smoothly.
func ExampleSmoothWeighted() {
	w := map[crm.UserID]int{"anna": 50, "boris": 30, "vera": 20}
	store := &routing.MemoryRotation{}
	for range 10 {
		turn, _ := store.Pick(context.Background(), "wa", "", []crm.UserID{"anna", "boris", "vera"}, routing.SmoothWeighted(func(u crm.UserID) int { return w[u] }))
		fmt.Print(turn.User, " ")
	}
	fmt.Println()
	// Output:
	// anna boris vera anna anna boris anna vera boris anna
}

// Escalation: a client unanswered for 15 minutes passes to the next in
// rotation, once per deadline whatever the number of instances.
func ExampleDistributor_Escalate() {
	ctx := context.Background()
	d := routing.NewDistributor(routing.DistributorOptions{})
	s := routing.ChannelSettings{Channel: "wa", Features: routing.Features{Escalation: routing.Escalation{After: routing.Duration(15 * time.Minute)}}}
	r := routing.Request{Settings: s, Mode: routing.RoundRobin, Roles: exampleTeam(), Chat: newClient(1), At: monday9}
	first, _ := d.Assign(ctx, r)
	r.At = monday9.Add(15 * time.Minute) // the host's timer: now
	due, _ := d.DueEscalations(ctx, r.At, 100)
	for _, w := range due {
		dec, ok, _ := d.Escalate(ctx, r, w, first.User)
		fmt.Println(ok, dec)
		_, again, _ := d.Escalate(ctx, r, w, first.User) // a second instance, or a redelivery
		fmt.Println(again)
	}
	// Output:
	// true to boris: escalation chat wa/79160000001: pick #2 (chosen never served before); escalation #1 from anna; eligible boris; skipped anna (did not reply in time), qc (role cannot write), vera (does not receive new clients)
	// false
}

// Owner off shift: colleagues cover while the responsible is on leave.
func ExampleDistributor_Owner() {
	s := routing.ChannelSettings{Channel: "wa", Features: routing.Features{
		OwnerOffShift: routing.CoverOwner,
		Schedules:     map[crm.UserID]routing.Schedule{"anna": {Leave: []routing.Period{{From: "2026-03-01", To: "2026-03-08"}}}},
	}}
	d := routing.NewDistributor(routing.DistributorOptions{})
	dec, _ := d.Owner(context.Background(), routing.Request{Settings: s, Mode: routing.RoundRobin, Roles: exampleTeam(), Chat: newClient(1), At: monday9}, "anna")
	fmt.Println(dec)
	// Output:
	// to anna: cover chat wa/79160000001; owner anna (on leave); eligible boris; skipped anna (on leave), qc (role cannot write), vera (does not receive new clients)
}

// An offer nobody claims holds a place under each offered employee's
// limit until its deal closes: Forget ends it (and the client's hold,
// escalation clock and place in the queue).
func ExampleDistributor_Forget() {
	ctx := context.Background()
	d := routing.NewDistributor(routing.DistributorOptions{})
	s := routing.ChannelSettings{Channel: "wa", Features: routing.Features{Capacity: 1}}
	r := func(n int) routing.Request {
		return routing.Request{Settings: s, Mode: routing.FirstResponder, Roles: exampleTeam(), Chat: newClient(n), At: monday9}
	}
	abandoned, _ := d.Assign(ctx, r(0))
	fmt.Println("client 0 offered to", abandoned.Offered)
	blocked, _ := d.Assign(ctx, r(1))
	fmt.Println("client 1:", blocked.Why.Rule, "because", blocked.Why.Fallback)
	_ = d.Forget(ctx, newClient(0)) // client 0's deal was closed in the CRM
	next, _ := d.Assign(ctx, r(2))
	fmt.Println("client 2 offered to", next.Offered)
	// Output:
	// client 0 offered to [anna boris]
	// client 1: offer_to_writers because routing: nobody eligible for first_responder on channel "wa": anna (at capacity), boris (at capacity), qc (role cannot write), vera (does not receive new clients)
	// client 2 offered to [anna boris]
}
