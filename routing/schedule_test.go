package routing

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zone database
)

func TestScheduleAvailable(t *testing.T) {
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	ny := Schedule{
		TimeZone: "America/New_York",
		Shifts:   []Shift{{Days: weekdays, From: 9 * 60, To: 17 * 60}},
		DaysOff:  []Date{"2026-07-03"},
		Leave:    []Period{{From: "2026-08-10", To: "2026-08-14"}},
	}
	night := Schedule{
		TimeZone: "Europe/Berlin",
		Shifts:   []Shift{{Days: []time.Weekday{time.Friday}, From: 22 * 60, To: 6 * 60}},
	}
	allDay := Schedule{TimeZone: "Asia/Tokyo", Shifts: []Shift{{Days: []time.Weekday{time.Sunday}, From: 8 * 60, To: 8 * 60}}}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for name, c := range map[string]struct {
		s    Schedule
		at   time.Time
		ok   bool
		skip SkipReason
	}{
		// New York: EST is UTC-5 until 2026-03-08 02:00, then EDT UTC-4.
		"NY winter 09:00 EST is 14:00 UTC":           {ny, utc("2026-03-06T14:00:00Z"), true, ""},
		"NY winter 08:59 EST":                        {ny, utc("2026-03-06T13:59:00Z"), false, SkipOffShift},
		"NY after DST 09:00 EDT is 13:00 UTC":        {ny, utc("2026-03-09T13:00:00Z"), true, ""},
		"NY after DST 13:30 UTC is 09:30 EDT":        {ny, utc("2026-03-09T13:30:00Z"), true, ""},
		"NY after DST 21:00 UTC is 17:00 EDT (end)":  {ny, utc("2026-03-09T21:00:00Z"), false, SkipOffShift},
		"NY before DST 21:00 UTC is 16:00 EST":       {ny, utc("2026-03-06T21:00:00Z"), true, ""},
		"NY Saturday":                                {ny, utc("2026-03-07T15:00:00Z"), false, SkipOffShift},
		"NY day off (a Friday)":                      {ny, utc("2026-07-03T15:00:00Z"), false, SkipDayOff},
		"NY leave, first day":                        {ny, utc("2026-08-10T15:00:00Z"), false, SkipOnLeave},
		"NY leave, last day":                         {ny, utc("2026-08-14T20:59:00Z"), false, SkipOnLeave},
		"NY back from leave":                         {ny, utc("2026-08-17T15:00:00Z"), true, ""},
		"NY 2026-08-10 02:00 UTC is still Aug 9 EDT": {ny, utc("2026-08-10T02:00:00Z"), false, SkipOffShift},
		// Berlin: CET UTC+1 until 2026-03-29 02:00, then CEST UTC+2.
		"Berlin Friday 22:00 CET":               {night, utc("2026-03-20T21:00:00Z"), true, ""},
		"Berlin Saturday 05:59 CET (overnight)": {night, utc("2026-03-21T04:59:00Z"), true, ""},
		"Berlin Saturday 06:00 CET":             {night, utc("2026-03-21T05:00:00Z"), false, SkipOffShift},
		"Berlin Friday 21:59 CET":               {night, utc("2026-03-20T20:59:00Z"), false, SkipOffShift},
		"Berlin Friday 22:00 CEST":              {night, utc("2026-04-03T20:00:00Z"), true, ""},
		"Berlin Friday 21:30 CEST":              {night, utc("2026-04-03T19:30:00Z"), false, SkipOffShift},
		"Berlin Thursday 23:00":                 {night, utc("2026-04-02T21:00:00Z"), false, SkipOffShift},
		"Tokyo 24h shift from Sunday 08:00":     {allDay, utc("2026-03-01T00:00:00Z"), true, ""}, // Sun 09:00 JST
		"Tokyo Monday 07:59 JST":                {allDay, utc("2026-03-01T22:59:00Z"), true, ""}, // Mon 07:59
		"Tokyo Monday 08:00 JST":                {allDay, utc("2026-03-01T23:00:00Z"), false, SkipOffShift},
		"no shifts: always, but leave applies":  {Schedule{Leave: []Period{{"2026-01-01", "2026-01-01"}}}, utc("2026-01-01T12:00:00Z"), false, SkipOnLeave},
		"zero schedule":                         {Schedule{}, utc("2026-01-01T12:00:00Z"), true, ""},
	} {
		ok, why, err := c.s.Available(c.at)
		if err != nil || ok != c.ok || why != c.skip {
			t.Errorf("%s: Available(%s) = %v, %q, %v; want %v, %q", name, c.at.Format(time.RFC3339), ok, why, err, c.ok, c.skip)
		}
	}
}

// TestScheduleDSTWallClock walks a Berlin day shift minute by minute
// across both 2026 daylight-saving changes: the shift keeps its wall-clock
// hours, so its length in UTC stays 8 hours and it starts an hour earlier
// in UTC after the spring change.
func TestScheduleDSTWallClock(t *testing.T) {
	s := Schedule{TimeZone: "Europe/Berlin", Shifts: []Shift{{Days: []time.Weekday{time.Sunday, time.Monday}, From: 9 * 60, To: 17 * 60}}}
	for _, c := range []struct {
		day       string
		startUTC  int // hour
		endUTCExc int
	}{
		{"2026-03-22", 8, 16}, // Sunday before: CET
		{"2026-03-29", 7, 15}, // the change happens at 02:00 that Sunday
		{"2026-10-25", 8, 16}, // back to CET at 03:00 that Sunday
		{"2026-10-19", 7, 15}, // a Monday in CEST
	} {
		day, _ := time.Parse(time.DateOnly, c.day)
		minutes := 0
		first, last := -1, -1
		for m := range 24 * 60 {
			at := day.Add(time.Duration(m) * time.Minute)
			ok, _, err := s.Available(at)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				minutes++
				if first < 0 {
					first = m
				}
				last = m
			}
		}
		if minutes != 8*60 || first != c.startUTC*60 || last != c.endUTCExc*60-1 {
			t.Errorf("%s: on shift %d minutes from %d to %d (UTC minutes); want 480 from %d to %d", c.day, minutes, first, last, c.startUTC*60, c.endUTCExc*60-1)
		}
	}
}

func TestScheduleValidateAndJSON(t *testing.T) {
	bad := map[string]Schedule{
		"zone":        {TimeZone: "Mars/Olympus"},
		"no days":     {Shifts: []Shift{{From: 1, To: 2}}},
		"weekday 7":   {Shifts: []Shift{{Days: []time.Weekday{7}, From: 1, To: 2}}},
		"time 25:00":  {Shifts: []Shift{{Days: []time.Weekday{1}, From: 1500, To: 2}}},
		"day off":     {DaysOff: []Date{"2026-02-30"}},
		"leave order": {Leave: []Period{{"2026-05-02", "2026-05-01"}}},
	}
	for name, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v; want ErrInvalid", name, err)
		}
	}
	if _, _, err := (Schedule{TimeZone: "Mars/Olympus"}).Available(time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Available with an unknown zone: %v; want ErrInvalid", err)
	}
	in := `{"time_zone":"Europe/Moscow","shifts":[{"days":[1,2,3,4,5],"from":"09:00","to":"18:00"},{"days":[6],"from":"22:00","to":"24:00"}],"days_off":["2026-01-07"],"leave":[{"from":"2026-07-01","to":"2026-07-14"}]}`
	var s Schedule
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(s)
	if err != nil || string(out) != in {
		t.Errorf("round trip:\n got %s, %v\nwant %s", out, err, in)
	}
	for _, bad := range []string{`"9:00"`, `"24:01"`, `"12:60"`, `"ab:cd"`} {
		var v TimeOfDay
		if err := json.Unmarshal([]byte(bad), &v); !errors.Is(err, ErrInvalid) {
			t.Errorf("TimeOfDay %s: %v; want ErrInvalid", bad, err)
		}
	}
}
