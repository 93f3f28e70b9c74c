package engine

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
)

// The decision functions are pure: these tables need no fake.

const (
	dAnna, dBoris, dQuinn, dSam, dOlga crm.UserID = "1", "2", "4", "5", "6"
)

func decideTable(t *testing.T) *roles.Table {
	t.Helper()
	tb, err := roles.NewTable([]roles.Assignment{
		{User: dAnna, Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: dBoris, Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: dQuinn, Channel: "wa", Role: roles.QualityControl},
		{User: dSam, Channel: "wa", Role: roles.Supervisor},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func kinds(x Explanation) []StepKind {
	var out []StepKind
	for _, s := range x.Steps {
		out = append(out, s.Kind)
	}
	return out
}

func TestDecideInbound(t *testing.T) {
	tb := decideTable(t)
	notify := &chanState{cfg: ChannelConfig{ID: "wa", Kind: channel.WhatsApp, Returning: routing.NotifyResponsible}, mode: routing.FirstResponder}
	newDeal := &chanState{cfg: ChannelConfig{ID: "wa", Kind: channel.WhatsApp, Returning: routing.NewDeal}, mode: routing.RoundRobin}
	open := ClientRecord{Contact: "c1", Deal: "d1", Responsible: dAnna}
	closed := ClientRecord{Contact: "c1", Responsible: dAnna}
	offered := routing.ClaimState{Offered: []crm.UserID{dBoris, dAnna}}
	claimed := routing.ClaimState{Offered: []crm.UserID{dAnna, dBoris}, ClaimedBy: dBoris}

	type want struct {
		Outcome                Outcome
		Distribute             bool
		Turn                   crm.UserID
		CreateDeal, NewContact bool
		SetOwner, OwnerFollows bool
		Responsible            crm.UserID
		Notify                 []crm.UserID
		Steps                  []StepKind
	}
	cases := []struct {
		name string
		cs   *chanState
		snap inboundSnapshot
		want want
	}{
		{"new client: contact and deal created, distributed", notify, inboundSnapshot{},
			want{Outcome: OutcomeNewClient, Distribute: true, CreateDeal: true, NewContact: true, Steps: []StepKind{StepNewClient}}},
		{"new client whose turn an earlier delivery reserved", newDeal, inboundSnapshot{Rec: ClientRecord{Turn: dBoris}},
			want{Outcome: OutcomeNewClient, Turn: dBoris, CreateDeal: true, NewContact: true, Steps: []StepKind{StepNewClient, StepTurnKept}}},
		{"a reserved turn whose employee left the channel: distributed again", notify, inboundSnapshot{Rec: ClientRecord{Turn: dOlga}},
			want{Outcome: OutcomeNewClient, Distribute: true, CreateDeal: true, NewContact: true, Steps: []StepKind{StepNewClient}}},
		{"open deal: its responsible is notified", notify, inboundSnapshot{Known: true, Rec: open},
			want{Outcome: OutcomeOpenDeal, Responsible: dAnna, Notify: []crm.UserID{dAnna}, Steps: []StepKind{StepOpenDeal}}},
		{"open deal offered and unclaimed: the group is notified", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1", Deal: "d1"}, Claim: offered, Offered: true},
			want{Outcome: OutcomeOffered, Notify: []crm.UserID{dAnna, dBoris}, Steps: []StepKind{StepOfferPending}}},
		{"open deal claimed: the claimer is notified", notify, inboundSnapshot{Known: true, Rec: open, Claim: claimed, Offered: true},
			want{Outcome: OutcomeOpenDeal, Responsible: dBoris, Notify: []crm.UserID{dBoris}, Steps: []StepKind{StepOfferClaimed}}},
		{"open deal whose responsible left the channel: distributed again", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1", Deal: "d1", Responsible: dOlga}},
			want{Outcome: OutcomeReassigned, Distribute: true, SetOwner: true, Steps: []StepKind{StepNotOnChannel}}},
		{"open deal of quality control: distributed again", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1", Deal: "d1", Responsible: dQuinn}},
			want{Outcome: OutcomeReassigned, Distribute: true, SetOwner: true, Steps: []StepKind{StepNotOnChannel}}},
		{"open deal without a responsible: distributed", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1", Deal: "d1"}},
			want{Outcome: OutcomeReassigned, Distribute: true, SetOwner: true, Steps: []StepKind{StepNoResponsible}}},
		{"deal an earlier delivery created: new client, nothing created", notify, inboundSnapshot{Known: true, Rec: open, Prior: OutcomeNewClient},
			want{Outcome: OutcomeNewClient, Responsible: dAnna, Notify: []crm.UserID{dAnna}, Steps: []StepKind{StepFoundEarlier, StepOpenDeal}}},
		{"contact an earlier delivery created without its deal: the deal is created", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1"}, Prior: OutcomeNewClient},
			want{Outcome: OutcomeNewClient, Distribute: true, CreateDeal: true, Steps: []StepKind{StepNewClient}}},
		{"returning, notify policy: the responsible decides", notify, inboundSnapshot{Known: true, Rec: closed},
			want{Outcome: OutcomeReturningNotify, Responsible: dAnna, Notify: []crm.UserID{dAnna}, Steps: []StepKind{StepReturningNotify}}},
		{"returning, notify policy, responsible left: distributed, no deal", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1", Responsible: dOlga}},
			want{Outcome: OutcomeReturningNotify, Distribute: true, SetOwner: true, Steps: []StepKind{StepNotOnChannel}}},
		{"returning, notify policy, offered: the group is notified", notify, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1"}, Claim: offered, Offered: true},
			want{Outcome: OutcomeReturningNotify, Notify: []crm.UserID{dAnna, dBoris}, Steps: []StepKind{StepOfferPending}}},
		{"returning, new-deal policy: a deal for the contact, whose owner follows", newDeal, inboundSnapshot{Known: true, Rec: closed},
			want{Outcome: OutcomeReturningNewDeal, Distribute: true, CreateDeal: true, OwnerFollows: true, Steps: []StepKind{StepReturningNewDeal}}},
		{"returning, new-deal policy, turn kept", newDeal, inboundSnapshot{Known: true, Rec: ClientRecord{Contact: "c1", Responsible: dAnna, Turn: dBoris}},
			want{Outcome: OutcomeReturningNewDeal, Turn: dBoris, CreateDeal: true, OwnerFollows: true, Steps: []StepKind{StepReturningNewDeal, StepTurnKept}}},
	}
	for _, tc := range cases {
		p := decideInbound(tc.cs, tb, tc.snap, Explanation{})
		got := want{Outcome: p.Outcome, Distribute: p.Distribute, Turn: p.Turn, CreateDeal: p.CreateDeal, NewContact: p.NewContact,
			SetOwner: p.SetOwner, OwnerFollows: p.OwnerFollows, Responsible: p.Responsible, Steps: kinds(p.Why)}
		for _, n := range p.Notify {
			got.Notify = append(got.Notify, n.User)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestAssign(t *testing.T) {
	p := inboundPlan{Outcome: OutcomeNewClient, NotifyWhy: "new client"}
	assign(&p, routing.Decision{User: dBoris, Why: routing.Explanation{Rule: routing.RuleRoundRobin}})
	if p.Responsible != dBoris || len(p.Notify) != 1 || p.Notify[0] != (Notification{User: dBoris, Reason: "new client: assigned by round_robin"}) {
		t.Errorf("round-robin pick: %+v; want only boris notified and responsible", p)
	}
	p = inboundPlan{Outcome: OutcomeReassigned, NotifyWhy: "client reassigned"}
	assign(&p, routing.Decision{Offered: []crm.UserID{dBoris, dAnna, dBoris}, Why: routing.Explanation{Rule: routing.RuleFirstResponder}})
	if p.Outcome != OutcomeOffered || p.Responsible != "" || len(p.Notify) != 2 || p.Notify[0].User != dAnna {
		t.Errorf("offer: %+v; want outcome offered, nobody responsible, the group notified once each in ID order", p)
	}
}

func TestAssignQueued(t *testing.T) {
	p := inboundPlan{Outcome: OutcomeNewClient, NotifyWhy: "new client"}
	assign(&p, routing.Decision{Why: routing.Explanation{Rule: routing.RuleQueue}})
	if p.Outcome != OutcomeQueued || p.Responsible != "" || len(p.Notify) != 0 {
		t.Errorf("queued: %+v; want outcome queued, nobody responsible or notified", p)
	}
}

func TestJSONName(t *testing.T) {
	for in, want := range map[string]string{
		"Channel": "id", "Stage": "stage", "CapacityOf": "capacity_of", "Schedules[42]": "schedules[42]",
		"Escalation.After": "escalation.after", "OwnerOffShift": "owner_off_shift", "Weights[Anna]": "weights[Anna]",
	} {
		if got := jsonName(in); got != want {
			t.Errorf("jsonName(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestDecideWrite(t *testing.T) {
	tb := decideTable(t)
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	mine := chatView{Rec: ClientRecord{Contact: "c1", Deal: "d1", Responsible: dAnna}}
	offered := chatView{Rec: ClientRecord{Contact: "c1", Deal: "d1"}, Claim: routing.ClaimState{Offered: []crm.UserID{dAnna, dBoris}}, Offered: true}
	claimed := offered
	claimed.Claim.ClaimedBy = dAnna
	released := chatView{Rec: ClientRecord{Contact: "c1", Deal: "d1", Responsible: dAnna, ClaimedBy: dAnna}}
	covered := mine
	covered.Cover = &routing.Decision{User: dAnna, Offered: []crm.UserID{dBoris}, Why: routing.Explanation{Rule: routing.RuleCover, Owner: dAnna}}
	releasedCovered := released
	releasedCovered.Cover = covered.Cover
	cases := []struct {
		name   string
		user   crm.UserID
		v      chatView
		claim  bool
		reason roles.Reason // "" when allowed
		winner crm.UserID   // the ClaimedError's, when refused for a claim
		covers bool         // allowed as covering for the absent responsible
	}{
		{"manager writes to their client", dAnna, mine, false, "", "", false},
		{"manager may not write to another's client", dBoris, mine, false, roles.ReasonNotTheirs, "", false},
		{"quality control never writes", dQuinn, mine, false, roles.ReasonQualityControl, "", false},
		{"supervisor writes to anyone's client", dSam, mine, false, "", "", false},
		{"offered manager's first reply claims", dBoris, offered, true, "", "", false},
		{"supervisor not offered writes without claiming", dSam, offered, false, "", "", false},
		{"the claimer writes again", dAnna, claimed, true, "", "", false},
		{"a late reply to a claimed chat names the winner", dBoris, claimed, false, roles.ReasonClaimedByOther, dAnna, false},
		{"after the claim is released the winner is still named", dBoris, released, false, roles.ReasonClaimedByOther, dAnna, false},
		{"no role on the channel", dOlga, mine, false, roles.ReasonNoRole, "", false},
		{"a covering manager writes to the absent responsible's client", dBoris, covered, false, "", "", true},
		{"the absent responsible still writes as responsible", dAnna, covered, false, "", "", false},
		{"covering for a claimer whose claim was released", dBoris, releasedCovered, false, "", "", true},
		{"quality control never writes, covered or not", dQuinn, covered, false, roles.ReasonQualityControl, "", false},
		{"a supervisor writes as a supervisor, not as cover", dSam, covered, false, "", "", false},
	}
	for _, tc := range cases {
		p := decideWrite(tb, tc.user, chat, tc.v)
		if tc.reason == "" {
			if p.Refused != nil || p.Claim != tc.claim || p.Covers != tc.covers {
				t.Errorf("%s: %+v; want allowed, claim %v, covers %v", tc.name, p, tc.claim, tc.covers)
			}
			continue
		}
		if p.Refused == nil || p.Refused.Reason != tc.reason {
			t.Errorf("%s: refused %v; want refused for %q", tc.name, p.Refused, tc.reason)
			continue
		}
		ce, ok := errors.AsType[*routing.ClaimedError](p.Refused)
		if (tc.winner != "") != ok || (ok && ce.Winner != tc.winner) {
			t.Errorf("%s: %v; want a ClaimedError naming %q", tc.name, p.Refused, tc.winner)
		}
	}
}

func TestDecideReset(t *testing.T) {
	tb := decideTable(t)
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	mine := chatView{Rec: ClientRecord{Contact: "c1", Responsible: dAnna}}
	for _, tc := range []struct {
		user crm.UserID
		ok   bool
	}{{dAnna, true}, {dSam, true}, {dBoris, false}, {dQuinn, false}, {dOlga, false}} {
		if perr := decideReset(tb, tc.user, chat, mine); (perr == nil) != tc.ok {
			t.Errorf("reset by %s: %v; want allowed %v", tc.user, perr, tc.ok)
		}
	}
	covered := mine
	covered.Cover = &routing.Decision{User: dAnna, Offered: []crm.UserID{dBoris}, Why: routing.Explanation{Rule: routing.RuleCover, Owner: dAnna}}
	if perr := decideReset(tb, dBoris, chat, covered); perr != nil {
		t.Errorf("reset by boris, covering for anna: %v; want allowed", perr)
	}
	if perr := decideReset(tb, dQuinn, chat, covered); perr == nil || perr.Reason != roles.ReasonQualityControl {
		t.Errorf("quality control resets a covered chat: %v; want refused as quality control", perr)
	}
	if perr := decideReset(tb, dQuinn, chat, mine); perr == nil || perr.Reason != roles.ReasonQualityControl {
		t.Errorf("quality control resets: %v; want refused as quality control", perr)
	}
}

func TestExplanationString(t *testing.T) {
	d := &routing.Decision{User: dBoris, Why: routing.Explanation{Rule: routing.RuleRoundRobin, Channel: "tg", Position: 3}}
	x := Explanation{Steps: []Step{
		{Kind: StepNewClient},
		{Kind: StepDistributed, Decision: d},
		{Kind: StepCreatedClient, Contact: "7", Deal: "8", Text: "pipeline 10 stage 101"},
	}}
	want := "new client: no contact in the CRM; to 2: round_robin on channel tg: pick #3 (chosen never served before); created contact 7 and deal 8 at pipeline 10 stage 101"
	if got := x.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	for k := StepDuplicate; k <= StepCovering; k++ {
		if s := (Step{Kind: k}).String(); s == "" || s[:4] == "step" {
			t.Errorf("step kind %d renders as %q", k, s)
		}
	}
}

func TestDecideChannel(t *testing.T) {
	tb, err := roles.NewTable([]roles.Assignment{
		{User: dAnna, Channel: "wa", Role: roles.Manager},
		{User: dAnna, Channel: "tg", Role: roles.Manager},
		{User: dBoris, Channel: "tg", Role: roles.Manager},
		{User: dSam, Channel: "wa", Role: roles.Supervisor},
		{User: dSam, Channel: "tg", Role: roles.Supervisor},
		{User: dQuinn, Channel: "wa", Role: roles.QualityControl},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := map[crm.UserID]channel.ID{dSam: "wa"}
	cases := []struct {
		name     string
		user     crm.UserID
		existing []channel.ID
		want     channel.ID
		err      error
	}{
		{"the client's existing chat first", dSam, []channel.ID{"tg"}, "tg", nil},
		{"else the write-first channel", dSam, nil, "wa", nil},
		{"else the only channel", dBoris, nil, "tg", nil},
		{"several channels, nothing set: ask", dAnna, nil, "", ErrAmbiguousChannel},
		{"a chat on a channel the employee cannot write on does not count", dAnna, []channel.ID{"vk"}, "", ErrAmbiguousChannel},
		{"quality control writes on no channel", dQuinn, nil, "", ErrUnknownEmployee},
	}
	for _, tc := range cases {
		got, _, err := decideChannel(tb, first, tc.user, "79161234567", tc.existing)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
