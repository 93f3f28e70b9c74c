package routing_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
)

func exampleTeam() *roles.Table {
	tbl, err := roles.NewTable([]roles.Assignment{
		{User: "anna", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "boris", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "vera", Channel: "wa", Role: roles.Supervisor},
		{User: "qc", Channel: "wa", Role: roles.QualityControl},
	})
	if err != nil {
		panic(err)
	}
	return tbl
}

// Round robin: equal shares, with an explanation for every pick.
func ExampleDistributor_RoundRobin() {
	ctx := context.Background()
	// Share the stores between instances and restarts (a database in
	// production; routing/pgstore for PostgreSQL).
	d := routing.NewDistributor(routing.DistributorOptions{Claims: &routing.MemoryClaims{}, Rotation: &routing.MemoryRotation{}})
	tbl := exampleTeam()
	for range 3 {
		dec, err := d.RoundRobin(ctx, tbl, "wa")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(dec)
	}
	// Output:
	// to anna: round_robin on channel wa: pick #1 (chosen never served before); eligible anna, boris; skipped qc (role cannot write), vera (does not receive new clients)
	// to boris: round_robin on channel wa: pick #2 (chosen never served before); eligible anna, boris; skipped qc (role cannot write), vera (does not receive new clients)
	// to anna: round_robin on channel wa: pick #3 (chosen last served at #1); eligible anna, boris; skipped qc (role cannot write), vera (does not receive new clients)
}

// First responder: the chat is offered to the receivers; the first reply
// claims it and the others are told who won.
func ExampleDistributor_Claim() {
	ctx := context.Background()
	d := routing.NewDistributor(routing.DistributorOptions{})
	tbl := exampleTeam()
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}

	offer, _ := d.Offer(ctx, tbl, chat)
	fmt.Println("notify:", offer.Offered)

	win, _ := d.Claim(ctx, chat, "boris")
	fmt.Println("winner:", win.User)

	_, err := d.Claim(ctx, chat, "anna")
	if ce, ok := errors.AsType[*routing.ClaimedError](err); ok {
		fmt.Println("anna lost to", ce.Winner)
	}

	st, _, _ := d.ClaimState(ctx, chat)
	for _, u := range []crm.UserID{"anna", "boris", "vera"} {
		ok, why := tbl.CanView(u, chat, st.ChatState(""))
		fmt.Printf("%s sees it: %v (%s)\n", u, ok, why)
	}
	// Output:
	// notify: [anna boris]
	// winner: boris
	// anna lost to boris
	// anna sees it: false (claimed by another employee)
	// boris sees it: true (claimed the chat)
	// vera sees it: true (supervisor: sees and writes every chat)
}

// Distribute applies the channel's mode and falls back to offering the chat
// to every writer when nobody is eligible.
func ExampleDistributor_Distribute() {
	ctx := context.Background()
	settings := routing.ChannelSettings{Channel: "wa", Pipeline: "sales", Stage: "first-contact", Returning: routing.NewDeal}
	pipelines := []crm.Pipeline{{ID: "sales", Stages: []crm.Stage{
		{ID: "unsorted", Kind: crm.StageUnsorted},
		{ID: "first-contact", Kind: crm.StageOpen},
	}}}
	mode, err := settings.Mode(pipelines)
	if err != nil {
		fmt.Println(err)
		return
	}
	everyoneOff := func(context.Context, channel.ID, crm.UserID) bool { return false }
	d := routing.NewDistributor(routing.DistributorOptions{Available: everyoneOff})
	dec, err := d.Distribute(ctx, mode, exampleTeam(), channel.Chat{Channel: "wa", ChatID: "79161234567"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("mode:", mode)
	fmt.Println("rule:", dec.Why.Rule)
	fmt.Println("offered to:", dec.Offered)
	fmt.Println("because:", dec.Why.Fallback)
	// Output:
	// mode: round_robin
	// rule: offer_to_writers
	// offered to: [anna boris vera]
	// because: routing: nobody eligible for round_robin on channel "wa": anna (unavailable), boris (unavailable), qc (role cannot write), vera (does not receive new clients)
}
