package routing

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
