package roles

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/google/go-cmp/cmp"
)

// oracle restates the spec's role table independently of access.go:
// it returns whether the user sees the chat, may write, and whether the
// write claims it.
func oracle(role Role, user crm.UserID, st ChatState) (view, write, claims bool) {
	if user == "" {
		return false, false, false
	}
	inGroup := false
	for _, u := range st.Offered {
		if u == user {
			inGroup = true
		}
	}
	open := inGroup && st.ClaimedBy == ""
	// Whose client: the claim while recorded, else the CRM.
	owner := st.Responsible
	if st.ClaimedBy != "" {
		owner = st.ClaimedBy
	}
	switch role {
	case QualityControl:
		return true, false, false
	case Supervisor:
		return true, true, open
	case Manager:
		covers := false
		for _, u := range st.Covering {
			if u == user {
				covers = true
			}
		}
		mine := owner == user || open || covers
		return mine, mine, open
	}
	return false, false, false
}

var allowReasons = map[Reason]bool{
	ReasonQualityControl: true, // for view only; checked below
	ReasonSupervisor:     true,
	ReasonClaimer:        true,
	ReasonResponsible:    true,
	ReasonOffered:        true,
	ReasonCovering:       true,
}

// TestPredicatesMatrix checks CanView and CanWrite over every role, every
// relation of the user to the responsible user, the offered group and the
// claimer, through both the role-level functions and the Table methods.
func TestPredicatesMatrix(t *testing.T) {
	const me, other, third crm.UserID = "me", "other", "third"
	rolesList := []Role{NoRole, QualityControl, Manager, Supervisor, Role("bogus")}
	users := []crm.UserID{me, ""}
	responsibles := []crm.UserID{"", me, other}
	offers := [][]crm.UserID{nil, {me}, {other}, {other, me}, {other, third}}
	claims := []crm.UserID{"", me, other}
	covers := [][]crm.UserID{nil, {me}, {other}, {other, me}}
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	n := 0
	for _, role := range rolesList {
		var tbl *Table
		if role.Valid() {
			var err error
			tbl, err = NewTable([]Assignment{{User: me, Channel: "wa", Role: role}, {User: me, Channel: "tg", Role: Supervisor}})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, user := range users {
			for _, resp := range responsibles {
				for _, off := range offers {
					for _, claimed := range claims {
						for _, cov := range covers {
							st := ChatState{Responsible: resp, Offered: off, ClaimedBy: claimed, Covering: cov}
							name := fmt.Sprintf("role=%v user=%q resp=%q offered=%v claimed=%q covering=%v", role, user, resp, off, claimed, cov)
							wantView, wantWrite, wantClaims := oracle(role, user, st)
							view, vr := CanView(role, user, st)
							write, wr := CanWrite(role, user, st)
							if view != wantView || write != wantWrite {
								t.Errorf("%s: view, write = %v (%s), %v (%s); want %v, %v", name, view, vr, write, wr, wantView, wantWrite)
							}
							if (wr == ReasonOffered) != wantClaims {
								t.Errorf("%s: CanWrite reason %q; want claims = %v", name, wr, wantClaims)
							}
							if write && !view {
								t.Errorf("%s: may write but not see", name)
							}
							if view != (allowReasons[vr]) {
								t.Errorf("%s: CanView = %v with reason %q", name, view, vr)
							}
							if write != (allowReasons[wr] && wr != ReasonQualityControl) {
								t.Errorf("%s: CanWrite = %v with reason %q", name, write, wr)
							}
							// Table methods agree with the role-level rule on
							// the assigned channel and deny on others.
							tv, tvr := tbl.CanView(user, chat, st)
							tw, twr := tbl.CanWrite(user, chat, st)
							if tv != view || tvr != vr || tw != write || twr != wr {
								t.Errorf("%s: Table gives %v %q / %v %q; role-level %v %q / %v %q", name, tv, tvr, tw, twr, view, vr, write, wr)
							}
							elsewhere := channel.Chat{Channel: "vk", ChatID: chat.ChatID}
							if ok, why := tbl.CanView(user, elsewhere, st); ok || why != ReasonNoRole {
								t.Errorf("%s: CanView on a channel without a role = %v %q", name, ok, why)
							}
							if (vr == ReasonCovering || wr == ReasonCovering) && role != Manager {
								t.Errorf("%s: reason %q / %q for a role that is not manager", name, vr, wr)
							}
							n++
						}
					}
				}
			}
		}
	}
	if n != 5*2*3*5*3*4 {
		t.Fatalf("matrix covered %d cases", n)
	}
}

// TestPredicatesSpecCases names the cases the spec and its decisions spell
// out, so a failure reads as the broken rule.
func TestPredicatesSpecCases(t *testing.T) {
	tbl, err := NewTable([]Assignment{
		{User: "qc", Channel: "wa", Role: QualityControl},
		{User: "m1", Channel: "wa", Role: Manager, ReceivesNewClients: true},
		{User: "m2", Channel: "wa", Role: Manager, ReceivesNewClients: true},
		{User: "sup", Channel: "wa", Role: Supervisor},
		{User: "m1", Channel: "tg", Role: QualityControl},
	})
	if err != nil {
		t.Fatal(err)
	}
	wa := channel.Chat{Channel: "wa", ChatID: "1"}
	tg := channel.Chat{Channel: "tg", ChatID: "1"}
	offered := ChatState{Offered: []crm.UserID{"m1", "m2"}}
	claimedM1 := ChatState{Responsible: "m2", Offered: []crm.UserID{"m1", "m2"}, ClaimedBy: "m1"}
	covered := ChatState{Responsible: "m2", Covering: []crm.UserID{"m1"}}
	type res struct {
		View, Write    bool
		VWhy, WriteWhy Reason
	}
	tests := []struct {
		name string
		user crm.UserID
		chat channel.Chat
		st   ChatState
		want res
	}{
		{"quality control sees a stranger's chat", "qc", wa, ChatState{Responsible: "m2"}, res{true, false, ReasonQualityControl, ReasonQualityControl}},
		{"manager sees own client", "m1", wa, ChatState{Responsible: "m1"}, res{true, true, ReasonResponsible, ReasonResponsible}},
		{"manager does not see a colleague's client", "m1", wa, ChatState{Responsible: "m2"}, res{false, false, ReasonNotTheirs, ReasonNotTheirs}},
		{"manager sees an unowned chat only if offered", "m1", wa, ChatState{}, res{false, false, ReasonNotTheirs, ReasonNotTheirs}},
		{"offered manager sees and a reply claims", "m2", wa, offered, res{true, true, ReasonOffered, ReasonOffered}},
		{"claimer keeps it before the CRM catches up", "m1", wa, claimedM1, res{true, true, ReasonClaimer, ReasonClaimer}},
		{"after the claim the other manager loses it at once", "m2", wa, claimedM1, res{false, false, ReasonClaimedByOther, ReasonClaimedByOther}},
		{"supervisor not offered writes without claiming", "sup", wa, offered, res{true, true, ReasonSupervisor, ReasonSupervisor}},
		{"supervisor offered claims by replying", "sup", wa, ChatState{Offered: []crm.UserID{"sup"}}, res{true, true, ReasonSupervisor, ReasonOffered}},
		{"supervisor writes a claimed chat", "sup", wa, claimedM1, res{true, true, ReasonSupervisor, ReasonSupervisor}},
		{"same employee, quality control on another channel", "m1", tg, ChatState{Responsible: "m1"}, res{true, false, ReasonQualityControl, ReasonQualityControl}},
		{"unknown user", "x", wa, ChatState{Responsible: "x"}, res{false, false, ReasonNoRole, ReasonNoRole}},
		{"covering manager sees and writes an absent colleague's client", "m1", wa, covered, res{true, true, ReasonCovering, ReasonCovering}},
		{"cover over: the same manager is refused again", "m1", wa, ChatState{Responsible: "m2"}, res{false, false, ReasonNotTheirs, ReasonNotTheirs}},
		{"the absent owner keeps their client", "m2", wa, covered, res{true, true, ReasonResponsible, ReasonResponsible}},
		{"a manager not covering stays out", "m2", wa, ChatState{Responsible: "x", Covering: []crm.UserID{"m1"}}, res{false, false, ReasonNotTheirs, ReasonNotTheirs}},
		{"covering for an absent claimer", "m2", wa, ChatState{Responsible: "m2", Offered: []crm.UserID{"m1", "m2"}, ClaimedBy: "m1", Covering: []crm.UserID{"m2"}}, res{true, true, ReasonCovering, ReasonCovering}},
		{"covering and offered: the reply claims", "m1", wa, ChatState{Offered: []crm.UserID{"m1"}, Covering: []crm.UserID{"m1"}}, res{true, true, ReasonOffered, ReasonOffered}},
		{"quality control covering still never writes", "qc", wa, ChatState{Responsible: "m2", Covering: []crm.UserID{"qc"}}, res{true, false, ReasonQualityControl, ReasonQualityControl}},
		{"supervisor covering writes as a supervisor", "sup", wa, ChatState{Responsible: "m2", Covering: []crm.UserID{"sup"}}, res{true, true, ReasonSupervisor, ReasonSupervisor}},
		{"covering on a channel where the role is quality control", "m1", tg, ChatState{Responsible: "m2", Covering: []crm.UserID{"m1"}}, res{true, false, ReasonQualityControl, ReasonQualityControl}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got res
			got.View, got.VWhy = tbl.CanView(tc.user, tc.chat, tc.st)
			got.Write, got.WriteWhy = tbl.CanWrite(tc.user, tc.chat, tc.st)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterMatchesCanView checks on random fixtures that Filter keeps
// exactly the items CanView allows, in order.
func TestFilterMatchesCanView(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	users := []crm.UserID{"a", "b", "c", "d", "e"}
	chans := []channel.ID{"wa", "tg"}
	roleOf := []Role{QualityControl, Manager, Manager, Supervisor, NoRole}
	type item struct {
		chat channel.Chat
		st   ChatState
	}
	for round := range 200 {
		var as []Assignment
		for _, u := range users {
			for _, ch := range chans {
				if r := roleOf[rng.IntN(len(roleOf))]; r != NoRole {
					as = append(as, Assignment{User: u, Channel: ch, Role: r})
				}
			}
		}
		tbl, err := NewTable(as)
		if err != nil {
			t.Fatal(err)
		}
		pick := func() crm.UserID {
			if i := rng.IntN(len(users) + 1); i < len(users) {
				return users[i]
			}
			return ""
		}
		items := make([]item, 30)
		for i := range items {
			it := item{chat: channel.Chat{Channel: chans[rng.IntN(2)], ChatID: fmt.Sprint(i)}, st: ChatState{Responsible: pick(), ClaimedBy: pick()}}
			for range rng.IntN(3) {
				it.st.Offered = append(it.st.Offered, pick())
			}
			for range rng.IntN(3) {
				it.st.Covering = append(it.st.Covering, pick())
			}
			items[i] = it
		}
		for _, viewer := range users {
			got := Filter(tbl, viewer, items, func(it item) (channel.Chat, ChatState) { return it.chat, it.st })
			var want []item
			for _, it := range items {
				if ok, _ := tbl.CanView(viewer, it.chat, it.st); ok {
					want = append(want, it)
				}
			}
			if !slices.EqualFunc(got, want, func(x, y item) bool { return x.chat == y.chat }) {
				t.Fatalf("round %d viewer %s: Filter kept %d items, CanView allows %d", round, viewer, len(got), len(want))
			}
		}
	}
}
