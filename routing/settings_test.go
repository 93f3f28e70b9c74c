package routing

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/google/go-cmp/cmp"
)

var testPipelines = []crm.Pipeline{
	{ID: "p1", Name: "Sales", Main: true, Stages: []crm.Stage{
		{ID: "unsorted", Kind: crm.StageUnsorted},
		{ID: "first", Kind: crm.StageOpen},
		{ID: "142", Kind: crm.StageWon},
		{ID: "143", Kind: crm.StageLost},
	}},
	{ID: "p2", Stages: []crm.Stage{{ID: "u2", Kind: crm.StageUnsorted}, {ID: "s2", Kind: crm.StageOpen}}},
}

func TestChannelSettingsMode(t *testing.T) {
	tests := map[string]struct {
		in        ChannelSettings
		want      Mode
		wantField string
		wantWords string
	}{
		"unsorted is first responder": {in: ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "unsorted"}, want: FirstResponder},
		"open stage is round robin":   {in: ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "first", Returning: NewDeal}, want: RoundRobin},
		"other pipeline":              {in: ChannelSettings{Channel: "tg", Pipeline: "p2", Stage: "s2"}, want: RoundRobin},
		"empty channel":               {in: ChannelSettings{Pipeline: "p1", Stage: "first"}, wantField: "Channel", wantWords: "empty"},
		"empty pipeline":              {in: ChannelSettings{Channel: "wa", Stage: "first"}, wantField: "Pipeline", wantWords: "empty"},
		"unknown pipeline":            {in: ChannelSettings{Channel: "wa", Pipeline: "p9", Stage: "first"}, wantField: "Pipeline", wantWords: "no such pipeline"},
		"empty stage":                 {in: ChannelSettings{Channel: "wa", Pipeline: "p1"}, wantField: "Stage", wantWords: "empty"},
		"stage of another pipeline":   {in: ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "s2"}, wantField: "Stage", wantWords: `not a stage of pipeline "p1"`},
		"won stage":                   {in: ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "142"}, wantField: "Stage", wantWords: "won stage is closed"},
		"lost stage":                  {in: ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "143"}, wantField: "Stage", wantWords: "lost stage is closed"},
		"unknown policy":              {in: ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "first", Returning: 7}, wantField: "Returning", wantWords: "unknown policy"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.in.Mode(testPipelines)
			verr := tc.in.Validate(testPipelines)
			if tc.wantField == "" {
				if err != nil || verr != nil || got != tc.want {
					t.Fatalf("Mode = %v, %v (Validate %v); want %v", got, err, verr, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(verr, ErrInvalid) {
				t.Fatalf("Mode error = %v, Validate error = %v; want ErrInvalid", err, verr)
			}
			se, ok := errors.AsType[*SettingsError](err)
			if !ok || se.Field != tc.wantField || se.Channel != tc.in.Channel {
				t.Fatalf("error %#v; want a *SettingsError on field %s of channel %q", err, tc.wantField, tc.in.Channel)
			}
			if !strings.Contains(err.Error(), tc.wantWords) {
				t.Errorf("error %q does not say %q", err, tc.wantWords)
			}
		})
	}
}

func TestChannelSettingsJSON(t *testing.T) {
	in := `[{"channel":"wa","pipeline":"p1","stage":"first","returning":"new_deal"},
	        {"channel":"tg","pipeline":"p2","stage":"u2"},
	        {"channel":"vk","pipeline":"p2","stage":"u2","returning":"notify_responsible"}]`
	var got []ChannelSettings
	if err := json.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := []ChannelSettings{
		{Channel: "wa", Pipeline: "p1", Stage: "first", Returning: NewDeal},
		{Channel: "tg", Pipeline: "p2", Stage: "u2", Returning: NotifyResponsible},
		{Channel: "vk", Pipeline: "p2", Stage: "u2", Returning: NotifyResponsible},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(want[0])
	if err != nil {
		t.Fatal(err)
	}
	if w := `{"channel":"wa","pipeline":"p1","stage":"first","returning":"new_deal"}`; string(out) != w {
		t.Errorf("Marshal = %s; want %s", out, w)
	}
	err = json.Unmarshal([]byte(`{"returning":"sometimes"}`), &want[0])
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "sometimes") {
		t.Errorf("unknown policy decoded with error %v; want ErrInvalid naming it", err)
	}
	if _, err := json.Marshal(ChannelSettings{Returning: 9}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Marshal of an unknown policy: error %v; want ErrInvalid", err)
	}
}

func TestIndexSettings(t *testing.T) {
	m, err := IndexSettings([]ChannelSettings{
		{Channel: "wa", Pipeline: "p1", Stage: "first"},
		{Channel: "tg", Pipeline: "p2", Stage: "u2"},
	}, testPipelines)
	if err != nil || len(m) != 2 || m["tg"].Stage != "u2" {
		t.Fatalf("IndexSettings = %v, %v", m, err)
	}
	_, err = IndexSettings([]ChannelSettings{
		{Channel: "wa", Pipeline: "p1", Stage: "first"},
		{Channel: "wa", Pipeline: "p2", Stage: "u2"},
	}, testPipelines)
	if se, ok := errors.AsType[*SettingsError](err); !ok || se.Channel != "wa" || !strings.Contains(se.Reason, "twice") {
		t.Errorf("duplicate channel: error %v; want a *SettingsError naming wa", err)
	}
	if _, err := IndexSettings([]ChannelSettings{{Channel: "x"}}, testPipelines); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid entry: error %v; want ErrInvalid", err)
	}
}

func TestModeAndPolicyStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{FirstResponder.String(), "first_responder"},
		{RoundRobin.String(), "round_robin"},
		{Mode(0).String(), "none"},
		{NotifyResponsible.String(), "notify_responsible"},
		{NewDeal.String(), "new_deal"},
		{ReturningPolicy(5).String(), "ReturningPolicy(5)"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q; want %q", c.got, c.want)
		}
	}
}

func TestChannelSettingsFeaturesJSON(t *testing.T) {
	in := `{"channel":"wa","pipeline":"p1","stage":"first","returning":"notify_responsible",` +
		`"capacity":3,"capacity_of":{"42":5},"weights":{"42":50,"43":30,"44":20},` +
		`"schedules":{"42":{"time_zone":"Europe/Moscow","shifts":[{"days":[1,2,3,4,5],"from":"09:00","to":"18:00"}],"leave":[{"from":"2026-07-01","to":"2026-07-14"}]}},` +
		`"escalation":{"after":"15m0s","times":2},"when_nobody":"queue","owner_off_shift":"cover"}`
	var s ChannelSettings
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if mode, err := s.Mode(testPipelines); err != nil || mode != RoundRobin {
		t.Fatalf("Mode = %v, %v", mode, err)
	}
	if s.Capacity != 3 || s.limit("42") != 5 || s.limit("43") != 3 || s.weight("44") != 20 || s.weight("99") != 1 ||
		s.Escalation.After != Duration(15*time.Minute) || s.WhenNobody != QueueWhenNobody || s.OwnerOffShift != CoverOwner {
		t.Errorf("decoded %+v", s)
	}
	out, err := json.Marshal(s)
	if err != nil || string(out) != in {
		t.Errorf("round trip:\n got %s, %v\nwant %s", out, err, in)
	}
	zero, _ := json.Marshal(ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "first"})
	if w := `{"channel":"wa","pipeline":"p1","stage":"first","returning":"notify_responsible"}`; string(zero) != w {
		t.Errorf("zero features marshal to %s; want %s", zero, w)
	}
	for _, bad := range []string{`{"when_nobody":"wait"}`, `{"owner_off_shift":"fire"}`, `{"escalation":{"after":"soon"}}`} {
		var v ChannelSettings
		if err := json.Unmarshal([]byte(bad), &v); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v; want ErrInvalid", bad, err)
		}
	}
}

func TestChannelSettingsFeaturesValidate(t *testing.T) {
	base := ChannelSettings{Channel: "wa", Pipeline: "p1", Stage: "first"}
	for field, mod := range map[string]func(*ChannelSettings){
		"Capacity":      func(s *ChannelSettings) { s.Capacity = -1 },
		"CapacityOf":    func(s *ChannelSettings) { s.CapacityOf = map[crm.UserID]int{"a": -2} },
		"Weights":       func(s *ChannelSettings) { s.Weights = map[crm.UserID]int{"a": 0} },
		"Schedules[a]":  func(s *ChannelSettings) { s.Schedules = map[crm.UserID]Schedule{"a": {TimeZone: "Nowhere/City"}} },
		"Escalation":    func(s *ChannelSettings) { s.Escalation = Escalation{Times: 2} },
		"WhenNobody":    func(s *ChannelSettings) { s.WhenNobody = 7 },
		"OwnerOffShift": func(s *ChannelSettings) { s.OwnerOffShift = -1 },
	} {
		s := base
		mod(&s)
		err := s.Validate(testPipelines)
		if se, ok := errors.AsType[*SettingsError](err); !ok || se.Field != field || !errors.Is(err, ErrInvalid) {
			t.Errorf("bad %s: error %v; want a *SettingsError naming %s", field, err, field)
		}
	}
	if err := base.Validate(testPipelines); err != nil {
		t.Errorf("zero features: %v", err)
	}
}

func TestEscalationDeadlines(t *testing.T) {
	e := Escalation{After: Duration(10 * time.Minute), Times: 2}
	for _, c := range []struct {
		done int
		now  time.Duration
		due  bool
		at   time.Duration
		more bool
	}{
		{0, 9 * time.Minute, false, 10 * time.Minute, true},
		{0, 10 * time.Minute, true, 10 * time.Minute, true},
		{0, 45 * time.Minute, true, 10 * time.Minute, true}, // late: one step at a time
		{1, 5 * time.Minute, false, 10 * time.Minute, true}, // from the previous escalation
		{1, 10 * time.Minute, true, 10 * time.Minute, true},
		{2, time.Hour, false, 0, false},
	} {
		at, more := e.Deadline(t0, c.done)
		due := e.Due(t0, c.done, t0.Add(c.now))
		wantAt := time.Time{}
		if c.more {
			wantAt = t0.Add(c.at)
		}
		if due != c.due || more != c.more || !at.Equal(wantAt) {
			t.Errorf("done %d at +%v: Due %v, Deadline %v %v; want %v, %v %v", c.done, c.now, due, at, more, c.due, wantAt, c.more)
		}
	}
	if (Escalation{}).Due(t0, 0, t0.Add(time.Hour)) || (Escalation{}).Enabled() {
		t.Error("the zero Escalation escalates")
	}
	if at, ok := (Escalation{After: Duration(time.Minute)}).Deadline(t0, 1); ok {
		t.Errorf("Times 0 means one escalation, but a second is due at %v", at)
	}
}

func TestFeaturePolicyStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{OfferWhenNobody.String(), "offer_to_writers"},
		{QueueWhenNobody.String(), "queue"},
		{NobodyPolicy(4).String(), "NobodyPolicy(4)"},
		{KeepOwner.String(), "keep"},
		{CoverOwner.String(), "cover"},
		{ReassignOwner.String(), "reassign"},
		{OwnerPolicy(9).String(), "OwnerPolicy(9)"},
		{TimeOfDay(9*60 + 5).String(), "09:05"},
		{Duration(90 * time.Second).String(), "1m30s"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q; want %q", c.got, c.want)
		}
	}
}
