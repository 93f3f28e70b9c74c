package routing

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// TimeOfDay is a wall-clock time, in minutes after midnight (0 to 1440).
// Its text form is "15:04" ("24:00" is the end of a day).
type TimeOfDay int

// ParseTimeOfDay parses "HH:MM" (00:00 to 24:00).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%w: time of day %q: want HH:MM", ErrInvalid, s)
	}
	for i, c := range []byte(s) {
		if i != 2 && (c < '0' || c > '9') {
			return 0, fmt.Errorf("%w: time of day %q: want HH:MM", ErrInvalid, s)
		}
	}
	h = int(s[0]-'0')*10 + int(s[1]-'0')
	m = int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m > 0) {
		return 0, fmt.Errorf("%w: time of day %q out of range 00:00..24:00", ErrInvalid, s)
	}
	return TimeOfDay(h*60 + m), nil
}

// String returns "HH:MM".
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// MarshalText encodes "HH:MM".
func (t TimeOfDay) MarshalText() ([]byte, error) {
	if t < 0 || t > 1440 {
		return nil, fmt.Errorf("%w: time of day %d minutes out of range", ErrInvalid, int(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes "HH:MM".
func (t *TimeOfDay) UnmarshalText(b []byte) error {
	v, err := ParseTimeOfDay(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Date is a calendar day in a schedule's time zone, written "2006-01-02".
type Date string

func (d Date) valid() bool {
	_, err := time.Parse(time.DateOnly, string(d))
	return err == nil
}

// Shift is weekly working time: on each of Days, from From to To in the
// schedule's time zone (wall clock, so a shift keeps its hours across a
// daylight-saving change). To at or before From ends the next day (an
// overnight shift, counted from the day it starts); From equal to To is a
// 24-hour shift.
type Shift struct {
	// Days are the weekdays the shift starts on (Sunday is 0).
	Days []time.Weekday `json:"days"`
	// From is when the shift starts, in minutes after midnight ("HH:MM"
	// in JSON); the minute From itself is working time.
	From TimeOfDay `json:"from"`
	// To is when the shift ends, in minutes after midnight ("HH:MM" in
	// JSON; "24:00" is midnight at the end of the day); the minute To
	// itself is not working time.
	To TimeOfDay `json:"to"`
}

// Period is a leave: the days From to To, both included, in the
// schedule's time zone.
type Period struct {
	// From is the first day of leave, "YYYY-MM-DD".
	From Date `json:"from"`
	// To is the last day of leave, "YYYY-MM-DD", included; not before
	// From.
	To Date `json:"to"`
}

// Schedule is one employee's working time: weekly shifts in a time zone,
// days off and leave. Availability at an instant follows from it
// ([Schedule.Available]); the distribution rules read it at the event's
// time. The zero value is always available.
type Schedule struct {
	// TimeZone is an IANA name ("Europe/Moscow") given to
	// time.LoadLocation; empty means UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Shifts are the working hours; none means every hour of every day
	// (only days off and leave apply).
	Shifts []Shift `json:"shifts,omitempty"`
	// DaysOff are single days without work, whatever the shifts say.
	DaysOff []Date `json:"days_off,omitempty"`
	// Leave are periods of absence (vacation, sick leave).
	Leave []Period `json:"leave,omitempty"`
}

// Validate checks the time zone, the days and times, and that each leave
// period ends on or after its start. The error matches ErrInvalid.
func (s Schedule) Validate() error {
	if _, err := time.LoadLocation(s.TimeZone); err != nil {
		return fmt.Errorf("%w: schedule time zone %q: %v", ErrInvalid, s.TimeZone, err)
	}
	for i, sh := range s.Shifts {
		if len(sh.Days) == 0 {
			return fmt.Errorf("%w: schedule shift %d has no days", ErrInvalid, i)
		}
		for _, d := range sh.Days {
			if d < time.Sunday || d > time.Saturday {
				return fmt.Errorf("%w: schedule shift %d: weekday %d (want 0 Sunday to 6 Saturday)", ErrInvalid, i, int(d))
			}
		}
		if sh.From < 0 || sh.From > 1440 || sh.To < 0 || sh.To > 1440 {
			return fmt.Errorf("%w: schedule shift %d: time out of 00:00..24:00", ErrInvalid, i)
		}
	}
	for _, d := range s.DaysOff {
		if !d.valid() {
			return fmt.Errorf("%w: schedule day off %q: want YYYY-MM-DD", ErrInvalid, d)
		}
	}
	for _, p := range s.Leave {
		if !p.From.valid() || !p.To.valid() || p.To < p.From {
			return fmt.Errorf("%w: schedule leave %q..%q: want YYYY-MM-DD dates, the end not before the start", ErrInvalid, p.From, p.To)
		}
	}
	return nil
}

// Available reports whether the schedule has its employee at work at t,
// and if not, why: [SkipOnLeave], [SkipDayOff] or [SkipOffShift]. Leave
// and days off cover whole calendar days in the time zone, including the
// part of an overnight shift that falls on them. An unknown time zone is
// an error matching ErrInvalid.
func (s Schedule) Available(t time.Time) (bool, SkipReason, error) {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return false, "", fmt.Errorf("%w: schedule time zone %q: %v", ErrInvalid, s.TimeZone, err)
	}
	ok, why := s.availableIn(loc, t)
	return ok, why, nil
}

func (s Schedule) availableIn(loc *time.Location, t time.Time) (bool, SkipReason) {
	lt := t.In(loc)
	var buf [10]byte
	day := Date(lt.AppendFormat(buf[:0], time.DateOnly))
	for _, p := range s.Leave {
		if p.From <= day && day <= p.To {
			return false, SkipOnLeave
		}
	}
	if slices.Contains(s.DaysOff, day) {
		return false, SkipDayOff
	}
	if len(s.Shifts) == 0 {
		return true, ""
	}
	wd, m := lt.Weekday(), TimeOfDay(lt.Hour()*60+lt.Minute())
	yesterday := (wd + 6) % 7
	for _, sh := range s.Shifts {
		switch {
		case sh.From == sh.To:
			if slices.Contains(sh.Days, wd) && m >= sh.From || slices.Contains(sh.Days, yesterday) && m < sh.To {
				return true, ""
			}
		case sh.From < sh.To:
			if m >= sh.From && m < sh.To && slices.Contains(sh.Days, wd) {
				return true, ""
			}
		default: // overnight
			if m >= sh.From && slices.Contains(sh.Days, wd) || m < sh.To && slices.Contains(sh.Days, yesterday) {
				return true, ""
			}
		}
	}
	return false, SkipOffShift
}

// zones caches loaded time zones for a Distributor (time.LoadLocation
// reads the zone database on every call).
type zones struct{ m sync.Map } // string → *time.Location

func (z *zones) load(name string) (*time.Location, error) {
	if l, ok := z.m.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: schedule time zone %q: %v", ErrInvalid, name, err)
	}
	z.m.Store(name, l)
	return l, nil
}
