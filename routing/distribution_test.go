package routing

import (
	"context"
	"errors"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustTable(t *testing.T, as ...roles.Assignment) *roles.Table {
	t.Helper()
	tbl, err := roles.NewTable(as)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func team(t *testing.T) *roles.Table {
	return mustTable(t,
		roles.Assignment{User: "qc", Channel: "wa", Role: roles.QualityControl},
		roles.Assignment{User: "m1", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		roles.Assignment{User: "m2", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		roles.Assignment{User: "m3", Channel: "wa", Role: roles.Manager},
		roles.Assignment{User: "sup", Channel: "wa", Role: roles.Supervisor},
		roles.Assignment{User: "m1", Channel: "tg", Role: roles.Manager, ReceivesNewClients: true},
	)
}

var chatWA = channel.Chat{Channel: "wa", ChatID: "79161234567"}

func TestDistributeExplains(t *testing.T) {
	offShift := func(users ...crm.UserID) Availability {
		return func(_ context.Context, ch channel.ID, u crm.UserID) bool {
			if ch != "wa" {
				t.Errorf("availability asked about channel %q", ch)
			}
			for _, x := range users {
				if x == u {
					return false
				}
			}
			return true
		}
	}
	tests := []struct {
		name      string
		mode      Mode
		available Availability
		want      Decision
	}{
		{
			name: "round robin picks a receiver and explains the skips",
			mode: RoundRobin,
			want: Decision{User: "m1", Why: Explanation{
				Rule: RuleRoundRobin, Channel: "wa", Chat: chatWA,
				Considered: []crm.UserID{"m1", "m2", "m3", "qc", "sup"},
				Eligible:   []crm.UserID{"m1", "m2"},
				Skipped:    []Skip{{"m3", SkipNotReceiving}, {"qc", SkipCannotWrite}, {"sup", SkipNotReceiving}},
				Position:   1,
			}},
		},
		{
			name:      "round robin skips the unavailable",
			mode:      RoundRobin,
			available: offShift("m1"),
			want: Decision{User: "m2", Why: Explanation{
				Rule: RuleRoundRobin, Channel: "wa", Chat: chatWA,
				Considered: []crm.UserID{"m1", "m2", "m3", "qc", "sup"},
				Eligible:   []crm.UserID{"m2"},
				Skipped:    []Skip{{"m1", SkipUnavailable}, {"m3", SkipNotReceiving}, {"qc", SkipCannotWrite}, {"sup", SkipNotReceiving}},
				Position:   1,
			}},
		},
		{
			name:      "round robin with nobody eligible offers to every writer",
			mode:      RoundRobin,
			available: offShift("m1", "m2"),
			want: Decision{Offered: []crm.UserID{"m1", "m2", "m3", "sup"}, Why: Explanation{
				Rule: RuleOfferToWriters, Channel: "wa", Chat: chatWA,
				Considered: []crm.UserID{"m1", "m2", "m3", "qc", "sup"},
				Eligible:   []crm.UserID{"m1", "m2", "m3", "sup"},
				Skipped:    []Skip{{"qc", SkipCannotWrite}},
				Fallback: &NoEligibleError{Rule: RuleRoundRobin, Channel: "wa", Skipped: []Skip{
					{"m1", SkipUnavailable}, {"m2", SkipUnavailable}, {"m3", SkipNotReceiving}, {"qc", SkipCannotWrite}, {"sup", SkipNotReceiving},
				}},
			}},
		},
		{
			name:      "first responder offers to the available receivers",
			mode:      FirstResponder,
			available: offShift("m2"),
			want: Decision{Offered: []crm.UserID{"m1"}, Why: Explanation{
				Rule: RuleFirstResponder, Channel: "wa", Chat: chatWA,
				Considered: []crm.UserID{"m1", "m2", "m3", "qc", "sup"},
				Eligible:   []crm.UserID{"m1"},
				Skipped:    []Skip{{"m2", SkipUnavailable}, {"m3", SkipNotReceiving}, {"qc", SkipCannotWrite}, {"sup", SkipNotReceiving}},
			}},
		},
		{
			name:      "first responder with nobody eligible offers to every writer",
			mode:      FirstResponder,
			available: offShift("m1", "m2"),
			want: Decision{Offered: []crm.UserID{"m1", "m2", "m3", "sup"}, Why: Explanation{
				Rule: RuleOfferToWriters, Channel: "wa", Chat: chatWA,
				Considered: []crm.UserID{"m1", "m2", "m3", "qc", "sup"},
				Eligible:   []crm.UserID{"m1", "m2", "m3", "sup"},
				Skipped:    []Skip{{"qc", SkipCannotWrite}},
				Fallback: &NoEligibleError{Rule: RuleFirstResponder, Channel: "wa", Skipped: []Skip{
					{"m1", SkipUnavailable}, {"m2", SkipUnavailable}, {"m3", SkipNotReceiving}, {"qc", SkipCannotWrite}, {"sup", SkipNotReceiving},
				}},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDistributor(DistributorOptions{Available: tc.available})
			got, err := d.Distribute(t.Context(), tc.mode, team(t), chatWA)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDistributeNobodyMayWrite(t *testing.T) {
	d := NewDistributor(DistributorOptions{})
	tbl := mustTable(t, roles.Assignment{User: "qc", Channel: "wa", Role: roles.QualityControl})
	for _, mode := range []Mode{FirstResponder, RoundRobin} {
		_, err := d.Distribute(t.Context(), mode, tbl, chatWA)
		ne, ok := errors.AsType[*NoEligibleError](err)
		if !ok || !errors.Is(err, ErrNoEligible) || ne.Rule != RuleOfferToWriters || len(ne.Skipped) != 1 {
			t.Errorf("%v: error %v; want a *NoEligibleError from the fallback listing qc", mode, err)
		}
	}
	// A nil table: nobody has a role anywhere.
	_, err := d.RoundRobin(t.Context(), nil, "wa")
	if !errors.Is(err, ErrNoEligible) || err.Error() != `routing: nobody eligible for round_robin on channel "wa": nobody has a role there` {
		t.Errorf("RoundRobin(nil table) error = %v", err)
	}
}

func TestDistributeBadInput(t *testing.T) {
	d := NewDistributor(DistributorOptions{})
	tbl := team(t)
	ctx := t.Context()
	if _, err := d.Distribute(ctx, Mode(0), tbl, chatWA); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown mode: %v; want ErrInvalid", err)
	}
	for _, mode := range []Mode{FirstResponder, RoundRobin} {
		if _, err := d.Distribute(ctx, mode, tbl, channel.Chat{Channel: "wa"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v with an empty chat ID: %v; want ErrInvalid", mode, err)
		}
	}
	if _, err := d.RoundRobin(ctx, tbl, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("RoundRobin on an empty channel: %v; want ErrInvalid", err)
	}
	if _, err := d.OfferToWriters(ctx, tbl, channel.Chat{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("OfferToWriters on an empty chat: %v; want ErrInvalid", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for name, err := range map[string]error{
		"RoundRobin": second(d.RoundRobin(cctx, tbl, "wa")),
		"Offer":      second(d.Offer(cctx, tbl, chatWA)),
		"Claim":      second(d.Claim(cctx, chatWA, "m1")),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestOfferRepeatAndClaim(t *testing.T) {
	d := NewDistributor(DistributorOptions{})
	tbl := team(t)
	ctx := t.Context()
	first, err := d.Offer(ctx, tbl, chatWA)
	if err != nil || first.Why.Repeat {
		t.Fatalf("first Offer = %v, %v", first, err)
	}
	again, err := d.Offer(ctx, tbl, chatWA)
	if err != nil || !again.Why.Repeat || !cmp.Equal(again.Offered, first.Offered) {
		t.Fatalf("repeated Offer = %v, %v; want Repeat with the same group", again, err)
	}
	// The fallback on an already offered chat keeps the first group too.
	all, err := d.OfferToWriters(ctx, tbl, chatWA)
	if err != nil || !all.Why.Repeat || !cmp.Equal(all.Offered, first.Offered) {
		t.Fatalf("OfferToWriters on an offered chat = %v, %v", all, err)
	}
	if _, err := d.Claim(ctx, chatWA, "sup"); !errors.Is(err, ErrNotOffered) {
		t.Errorf("Claim by a supervisor outside the group: %v; want ErrNotOffered", err)
	}
	dec, err := d.Claim(ctx, chatWA, "m2")
	if err != nil || dec.User != "m2" || dec.Why.Rule != RuleClaim {
		t.Fatalf("Claim(m2) = %v, %v", dec, err)
	}
	if got, want := dec.String(), "to m2: claim chat wa/79161234567"; got != want {
		t.Errorf("Claim decision String = %q; want %q", got, want)
	}
	if _, err := d.Claim(ctx, chatWA, "m1"); !errors.Is(err, ErrAlreadyClaimed) || err.Error() != "routing: chat wa/79161234567 already claimed by m2" {
		t.Errorf("Claim(m1) after m2 = %v", err)
	}
}

func TestDecisionString(t *testing.T) {
	d := NewDistributor(DistributorOptions{Available: func(_ context.Context, _ channel.ID, u crm.UserID) bool { return u != "m2" }})
	tbl := team(t)
	dec, err := d.Offer(t.Context(), tbl, chatWA)
	if err != nil {
		t.Fatal(err)
	}
	want := "offered to m1: first_responder chat wa/79161234567; eligible m1; skipped m2 (unavailable), m3 (does not receive new clients), qc (role cannot write), sup (does not receive new clients)"
	if got := dec.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
	d = NewDistributor(DistributorOptions{Available: func(context.Context, channel.ID, crm.UserID) bool { return false }})
	dec, err = d.Distribute(t.Context(), RoundRobin, tbl, channel.Chat{Channel: "wa", ChatID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	want = "offered to m1, m2, m3, sup: offer_to_writers chat wa/2; eligible m1, m2, m3, sup; skipped qc (role cannot write); fallback: nobody eligible for round_robin on channel \"wa\": m1 (unavailable), m2 (unavailable), m3 (does not receive new clients), qc (role cannot write), sup (does not receive new clients)"
	if got := dec.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
}

// TestDistributorsShareState: two Distributors on one store behave as one
// (several host instances), and channels rotate independently.
func TestDistributorsShareState(t *testing.T) {
	var st shared
	d1, d2 := st.distributor(nil), st.distributor(nil)
	tbl := team(t)
	ctx := t.Context()
	var got []crm.UserID
	for i := range 4 {
		d := []*Distributor{d1, d2}[i%2]
		dec, err := d.RoundRobin(ctx, tbl, "wa")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dec.User)
	}
	if want := []crm.UserID{"m1", "m2", "m1", "m2"}; !cmp.Equal(got, want) {
		t.Errorf("alternating instances picked %v; want %v", got, want)
	}
	if dec, _ := d2.RoundRobin(ctx, tbl, "tg"); dec.User != "m1" || dec.Why.Position != 1 {
		t.Errorf("first pick on tg = %v; want m1 at #1", dec)
	}
	if _, err := d1.Offer(ctx, tbl, chatWA); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Claim(ctx, chatWA, "m1"); err != nil {
		t.Fatalf("claim through the other instance: %v", err)
	}
	if st, found, _ := d1.ClaimState(ctx, chatWA); !found || st.ClaimedBy != "m1" {
		t.Errorf("d1 sees claim %v (found %v); want m1", st, found)
	}
}
