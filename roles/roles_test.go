package roles

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/google/go-cmp/cmp"
)

func TestNewTableRejects(t *testing.T) {
	ok := Assignment{User: "1", Channel: "wa", Role: Manager, ReceivesNewClients: true}
	tests := map[string]struct {
		in        []Assignment
		wantIndex int
		wantUser  crm.UserID
		wantCh    channel.ID
		wantWords string
	}{
		"empty user": {
			in:        []Assignment{ok, {Channel: "wa", Role: Manager}},
			wantIndex: 1, wantCh: "wa", wantWords: "empty user",
		},
		"empty channel": {
			in:        []Assignment{{User: "2", Role: Manager}},
			wantIndex: 0, wantUser: "2", wantWords: "empty channel",
		},
		"empty role": {
			in:        []Assignment{ok, ok2("3", "tg", NoRole, false)},
			wantIndex: 1, wantUser: "3", wantCh: "tg", wantWords: "empty role",
		},
		"unknown role": {
			in:        []Assignment{ok2("3", "tg", "admin", false)},
			wantIndex: 0, wantUser: "3", wantCh: "tg", wantWords: `unknown role "admin"`,
		},
		"quality control receiving new clients": {
			in:        []Assignment{ok, ok2("4", "wa", QualityControl, true)},
			wantIndex: 1, wantUser: "4", wantCh: "wa", wantWords: "quality control cannot receive new clients",
		},
		"duplicate user on channel": {
			in:        []Assignment{ok, ok2("2", "wa", Supervisor, false), ok2("1", "wa", Supervisor, false)},
			wantIndex: 2, wantUser: "1", wantCh: "wa", wantWords: "entry #0",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tbl, err := NewTable(tc.in)
			if tbl != nil {
				t.Errorf("NewTable returned a table with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewTable error = %v; want one matching ErrInvalid", err)
			}
			e, ok := errors.AsType[*EntryError](err)
			if !ok {
				t.Fatalf("NewTable error = %T; want *EntryError", err)
			}
			if e.Index != tc.wantIndex || e.User != tc.wantUser || e.Channel != tc.wantCh {
				t.Errorf("EntryError names #%d %q %q; want #%d %q %q", e.Index, e.User, e.Channel, tc.wantIndex, tc.wantUser, tc.wantCh)
			}
			if !strings.Contains(err.Error(), tc.wantWords) {
				t.Errorf("error %q does not mention %q", err, tc.wantWords)
			}
		})
	}
}

func ok2(u crm.UserID, ch channel.ID, r Role, recv bool) Assignment {
	return Assignment{User: u, Channel: ch, Role: r, ReceivesNewClients: recv}
}

func TestTableLookups(t *testing.T) {
	tbl, err := NewTable([]Assignment{
		ok2("9", "wa", Manager, true),
		ok2("10", "wa", Supervisor, true),
		ok2("3", "wa", QualityControl, false),
		ok2("4", "wa", Manager, false),
		ok2("9", "tg", QualityControl, false), // another role on another channel
		ok2("4", "tg", Supervisor, true),
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Role(9, wa)", tbl.Role("9", "wa"), Manager},
		{"Role(9, tg)", tbl.Role("9", "tg"), QualityControl},
		{"Role(9, vk)", tbl.Role("9", "vk"), NoRole},
		{"Role(nobody, wa)", tbl.Role("nobody", "wa"), NoRole},
		{"Receivers(wa)", tbl.Receivers("wa"), []crm.UserID{"10", "9"}},
		{"Receivers(tg)", tbl.Receivers("tg"), []crm.UserID{"4"}},
		{"Writers(wa)", tbl.Writers("wa"), []crm.UserID{"10", "4", "9"}},
		{"Users(wa)", tbl.Users("wa"), []crm.UserID{"10", "3", "4", "9"}},
		{"Channels(9)", tbl.Channels("9"), []channel.ID{"tg", "wa"}},
		{"Channels(3)", tbl.Channels("3"), []channel.ID{"wa"}},
		{"Receivers(vk)", len(tbl.Receivers("vk")), 0},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", c.name, diff)
		}
	}
	// Returned slices are copies.
	r := tbl.Receivers("wa")
	r[0] = "changed"
	if got := tbl.Receivers("wa")[0]; got != "10" {
		t.Errorf("Receivers shares its backing array: got %q after caller's write", got)
	}
	var wa []crm.UserID
	for a := range tbl.Members("wa") {
		if a.Channel != "wa" {
			t.Errorf("Members(wa) yields %+v", a)
		}
		wa = append(wa, a.User)
		if a.User == "10" {
			break // early stop is honoured
		}
	}
	if diff := cmp.Diff([]crm.UserID{"10"}, wa); diff != "" {
		t.Errorf("Members(wa) with break (-want +got):\n%s", diff)
	}
	wa = wa[:0]
	for a := range tbl.Members("wa") {
		wa = append(wa, a.User)
	}
	if diff := cmp.Diff(tbl.Users("wa"), wa); diff != "" {
		t.Errorf("Members(wa) users (-want +got):\n%s", diff)
	}
	for range (*Table)(nil).Members("wa") {
		t.Error("nil Table yields members")
	}
	if got := len(tbl.Assignments()); got != 6 {
		t.Errorf("len(Assignments()) = %d; want 6", got)
	}
}

func TestNilTable(t *testing.T) {
	var tbl *Table
	if r := tbl.Role("1", "wa"); r != NoRole {
		t.Errorf("nil Table Role = %v; want NoRole", r)
	}
	if ok, why := tbl.CanView("1", channel.Chat{Channel: "wa", ChatID: "7"}, ChatState{Responsible: "1"}); ok || why != ReasonNoRole {
		t.Errorf("nil Table CanView = %v, %q; want false, %q", ok, why, ReasonNoRole)
	}
	if tbl.Receivers("wa") != nil || tbl.Writers("wa") != nil || tbl.Channels("1") != nil || tbl.Users("wa") != nil || tbl.Assignments() != nil {
		t.Error("nil Table lookups returned non-nil slices")
	}
}

func TestAssignmentJSON(t *testing.T) {
	in := `[{"user":"1","channel":"wa","role":"quality_control"},
	        {"user":"2","channel":"wa","role":"manager","receives_new_clients":true},
	        {"user":"3","channel":"wa","role":"supervisor"}]`
	var as []Assignment
	if err := json.Unmarshal([]byte(in), &as); err != nil {
		t.Fatal(err)
	}
	want := []Assignment{
		{User: "1", Channel: "wa", Role: QualityControl},
		{User: "2", Channel: "wa", Role: Manager, ReceivesNewClients: true},
		{User: "3", Channel: "wa", Role: Supervisor},
	}
	if diff := cmp.Diff(want, as); diff != "" {
		t.Errorf("decoded assignments (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(want[1])
	if err != nil {
		t.Fatal(err)
	}
	if got, w := string(out), `{"user":"2","channel":"wa","role":"manager","receives_new_clients":true}`; got != w {
		t.Errorf("json.Marshal = %s; want %s", got, w)
	}
	// A decoded unknown role is rejected by NewTable, naming the entry.
	_ = json.Unmarshal([]byte(`[{"user":"5","channel":"wa","role":"boss"}]`), &as)
	if _, err := NewTable(as); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewTable(unknown role) error = %v; want ErrInvalid", err)
	}
}
