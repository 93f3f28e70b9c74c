package routing

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

var updateFeaturesGolden = flag.Bool("update-features-golden", false, "rewrite testdata/features.golden")

// TestFeaturesGolden pins the explanations of a day on one channel with
// every feature on: schedules in two time zones, a day off and a leave,
// capacity, weights, the waiting queue, escalation of a pick and of an
// offer, and the three owner policies.
func TestFeaturesGolden(t *testing.T) {
	ctx := t.Context()
	tbl, err := roles.NewTable([]roles.Assignment{
		{User: "qc", Channel: "wa", Role: roles.QualityControl},
		{User: "anna", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "boris", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "vera", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "gleb", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "sup", Channel: "wa", Role: roles.Supervisor},
	})
	if err != nil {
		t.Fatal(err)
	}
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	s := ChannelSettings{Channel: "wa", Features: Features{
		Capacity: 2,
		Weights:  map[crm.UserID]int{"anna": 3},
		Schedules: map[crm.UserID]Schedule{
			"anna":  {TimeZone: "Europe/Moscow", Shifts: []Shift{{Days: weekdays, From: 9 * 60, To: 18 * 60}}},
			"boris": {TimeZone: "Asia/Yekaterinburg", Shifts: []Shift{{Days: weekdays, From: 10 * 60, To: 19 * 60}}, DaysOff: []Date{"2026-03-02"}},
			"vera":  {TimeZone: "Europe/Moscow", Leave: []Period{{"2026-03-01", "2026-03-03"}}},
		},
		Escalation: Escalation{After: Duration(15 * time.Minute), Times: 1},
		WhenNobody: QueueWhenNobody,
	}}
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // Monday
	at := func(hhmm string) time.Time {
		v, _ := ParseTimeOfDay(hhmm)
		return day.Add(time.Duration(v) * time.Minute)
	}
	chat := func(id string) channel.Chat { return channel.Chat{Channel: "wa", ChatID: id} }
	glebAway := true // the host's own availability source, until 06:10
	gleb := Availability(func(_ context.Context, _ channel.ID, u crm.UserID) bool { return u != "gleb" || !glebAway })
	var st shared
	d := st.distributor(gleb)
	var lines []string
	log := func(what string, dec Decision, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		lines = append(lines, what+" → "+dec.String())
	}
	req := func(mode Mode, c string, when time.Time) Request {
		return Request{Settings: s, Mode: mode, Roles: tbl, Chat: chat(c), At: when}
	}
	// 05:30 UTC: nobody at work yet (anna starts 06:00 UTC, boris has a day off).
	dec, err := d.Assign(ctx, req(RoundRobin, "c1", at("05:30")))
	log("05:30 c1", dec, err)
	dec, err = d.Assign(ctx, req(RoundRobin, "c2", at("05:40")))
	log("05:40 c2", dec, err)
	// 06:00 UTC: anna's shift starts; the queue drains up to her capacity.
	decs, err := d.Drain(ctx, req(RoundRobin, "", at("06:00")), 10, nil)
	for _, dec := range decs {
		log("06:00 drain", dec, err)
	}
	dec, err = d.Assign(ctx, req(RoundRobin, "c3", at("06:05")))
	log("06:05 c3", dec, err)
	// anna is at capacity; a freed client lets her take the next one.
	if _, _, err := d.Free(ctx, chat("c1")); err != nil {
		t.Fatal(err)
	}
	if err := d.Replied(ctx, chat("c1")); err != nil {
		t.Fatal(err)
	}
	glebAway = false
	decs, err = d.Drain(ctx, req(RoundRobin, "", at("06:10")), 10, nil)
	for _, dec := range decs {
		log("06:10 drain after c1 closed, gleb back", dec, err)
	}
	// 06:15: c2 was assigned at 06:00 and has not been answered.
	ws, err := d.DueEscalations(ctx, at("06:15"), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		dec, ok, err := d.Escalate(ctx, req(RoundRobin, w.Chat.ChatID, at("06:15")), w, "anna")
		if ok {
			log("06:15 escalate "+w.Chat.ChatID, dec, err)
		}
	}
	// First responder with the same people: an offer, then its escalation.
	fr := req(FirstResponder, "c4", at("07:00"))
	fr.Settings.Capacity = 0
	dec, err = d.Assign(ctx, fr)
	log("07:00 c4 offer", dec, err)
	ws, _ = d.DueEscalations(ctx, at("07:15"), 10)
	for _, w := range ws {
		if w.Chat.ChatID != "c4" {
			continue
		}
		fr.At = at("07:15")
		dec, ok, err := d.Escalate(ctx, fr, w, "")
		if ok {
			log("07:15 escalate c4", dec, err)
		}
	}
	// Owner policies for vera's returning client while she is on leave.
	for _, p := range []OwnerPolicy{KeepOwner, CoverOwner, ReassignOwner} {
		r := req(RoundRobin, "c5-"+p.String(), at("08:00"))
		r.Settings.OwnerOffShift = p
		r.Settings.Capacity = 0
		dec, err := d.Owner(ctx, r, "vera")
		log("08:00 owner "+p.String(), dec, err)
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "features.golden")
	if *updateFeaturesGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestFeaturesGolden -update-features-golden to create it)", err)
	}
	if got != string(want) {
		t.Errorf("explanations differ from %s (if intended, rerun with -update-features-golden):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
