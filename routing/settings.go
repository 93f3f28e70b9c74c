package routing

import (
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// ErrInvalid is matched (errors.Is) by the validation errors of the
// distribution rules: bad channel settings, bad arguments to a store.
var ErrInvalid = errors.New("routing: invalid input")

// Mode is how a channel distributes new clients. It follows from the stage
// where new deals are placed: Unsorted means FirstResponder, any other open
// stage means RoundRobin. The zero value is no mode (invalid settings).
type Mode int

// Modes.
const (
	// FirstResponder offers the chat to every eligible employee; the first
	// reply claims it.
	FirstResponder Mode = iota + 1
	// RoundRobin gives each new client to one employee, in equal shares.
	RoundRobin
)

// String returns "first_responder", "round_robin" or "none".
func (m Mode) String() string {
	switch m {
	case FirstResponder:
		return "first_responder"
	case RoundRobin:
		return "round_robin"
	}
	return "none"
}

// ReturningPolicy says what happens when a returning client writes and all
// their deals are closed. The zero value is NotifyResponsible. It marshals
// to JSON as "notify_responsible" or "new_deal".
type ReturningPolicy int

// Returning-client policies.
const (
	// NotifyResponsible creates no deal; the user responsible for the
	// client in the CRM is notified and decides (rare repeat sales).
	NotifyResponsible ReturningPolicy = iota
	// NewDeal creates a new deal as for a new client (placement and
	// distribution of the channel apply), reusing the existing contact
	// (frequent repeat sales).
	NewDeal
)

// String returns the JSON name.
func (p ReturningPolicy) String() string {
	switch p {
	case NotifyResponsible:
		return "notify_responsible"
	case NewDeal:
		return "new_deal"
	}
	return fmt.Sprintf("ReturningPolicy(%d)", int(p))
}

// MarshalText encodes the policy as its JSON name.
func (p ReturningPolicy) MarshalText() ([]byte, error) {
	if p != NotifyResponsible && p != NewDeal {
		return nil, fmt.Errorf("%w: unknown returning policy %d", ErrInvalid, int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes "notify_responsible" or "new_deal"; the empty
// string means NotifyResponsible.
func (p *ReturningPolicy) UnmarshalText(b []byte) error {
	switch string(b) {
	case "", "notify_responsible":
		*p = NotifyResponsible
	case "new_deal":
		*p = NewDeal
	default:
		return fmt.Errorf("%w: unknown returning policy %q (want notify_responsible or new_deal)", ErrInvalid, b)
	}
	return nil
}

// ChannelSettings are one channel's distribution settings.
type ChannelSettings struct {
	// Channel is the channel these settings apply to; required, and at
	// most once in the list given to [IndexSettings].
	Channel channel.ID `json:"channel"`
	// Pipeline is the CRM pipeline where a new client's deal is created;
	// required, and it must exist in the CRM.
	Pipeline crm.PipelineID `json:"pipeline"`
	// Stage is the stage of Pipeline where the deal is placed; required
	// and open (Unsorted or an ordinary stage, not won or lost). The
	// stage decides the Mode.
	Stage crm.StageID `json:"stage"`
	// Returning applies when all deals of a returning client are closed.
	Returning ReturningPolicy `json:"returning"`
	// Features are the distribution features beyond equal shares; their
	// fields appear at the top level in JSON. The zero value is none.
	Features
}

// Features are a channel's distribution features beyond equal shares
// (see [Distributor.Assign]). Each field's zero value means the feature is
// off, so the zero Features distribute as plain round robin and first
// responder do. Embed it in a host's own channel configuration to carry
// the features with the same JSON names.
type Features struct {
	// Capacity is the most clients an employee holds on the channel at
	// once; 0: no limit. An employee at the limit is skipped
	// ([SkipAtCapacity]): not picked, not offered a chat, not added to a
	// widened offer, and refused a claim ([ErrAtCapacity]).
	//
	// What counts: the employee's open clients (see [Distributor.Hold]
	// for what "open" means) plus the first-responder offers they hold
	// unclaimed. An offer counts for every employee it was offered to
	// within the limits, from the offer until it is claimed (then it is
	// the claimer's open client, counted once, and stops counting for the
	// others) or withdrawn ([Distributor.Release]; [Distributor.Forget]
	// when its deal closes). Each offer and each
	// claim is counted in one atomic store operation per employee, so no
	// number of simultaneous clients or host instances takes anyone past
	// the limit. A claim by an employee at the limit only because of that
	// very offer succeeds: the offer becomes the client (counted before
	// the offer stops counting, so for that instant the store's count,
	// [Member.Open], has the chat twice). The fallback offer to every
	// writer, made when nobody has room ([OfferWhenNobody]), counts for
	// nobody.
	Capacity int `json:"capacity,omitempty"`
	// CapacityOf overrides Capacity per employee (a value of 0 falls back
	// to Capacity).
	CapacityOf map[crm.UserID]int `json:"capacity_of,omitempty"`
	// Weights give round robin weighted shares ([SmoothWeighted]);
	// employees not listed weigh 1. Empty: equal shares.
	Weights map[crm.UserID]int `json:"weights,omitempty"`
	// Schedules are employees' working hours and leave on the channel;
	// an employee without one is available whenever the host's
	// availability hook says so. Read at the event's time.
	Schedules map[crm.UserID]Schedule `json:"schedules,omitempty"`
	// Escalation passes on a client nobody answered in time; zero: never.
	Escalation Escalation `json:"escalation,omitzero"`
	// WhenNobody is what happens to a new client when nobody is eligible.
	// Zero: offered to everyone who may write.
	WhenNobody NobodyPolicy `json:"when_nobody,omitempty"`
	// OwnerOffShift is what happens when the employee responsible for a
	// client (an open deal, a returning client) is unavailable. Zero:
	// the owner keeps the client.
	OwnerOffShift OwnerPolicy `json:"owner_off_shift,omitempty"`
}

// limit returns user's capacity on the channel; 0: none.
func (s *Features) limit(user crm.UserID) int {
	if c := s.CapacityOf[user]; c > 0 {
		return c
	}
	return s.Capacity
}

// capped reports whether any capacity limit is set.
func (s *Features) capped() bool { return s.Capacity > 0 || len(s.CapacityOf) > 0 }

// weight returns user's round-robin weight.
func (s *Features) weight(user crm.UserID) int {
	if w, ok := s.Weights[user]; ok {
		return w
	}
	return 1
}

// NobodyPolicy says what happens to a new client when the channel's rule
// finds nobody eligible (all off shift, at capacity or switched off). The
// deal is created at once either way. The zero value is OfferWhenNobody;
// JSON names "offer_to_writers" and "queue".
type NobodyPolicy int

// Policies when nobody is eligible.
const (
	// OfferWhenNobody offers the chat to everyone who may write on the
	// channel (first reply claims it), so nothing waits unseen.
	OfferWhenNobody NobodyPolicy = iota
	// QueueWhenNobody puts the client in the channel's waiting queue; the
	// queue is assigned oldest-first as soon as someone is eligible
	// ([Distributor.Drain]).
	QueueWhenNobody
)

var nobodyNames = []string{"offer_to_writers", "queue"}

// String returns the JSON name.
func (p NobodyPolicy) String() string { return enumName(nobodyNames, int(p), "NobodyPolicy") }

// MarshalText encodes the JSON name.
func (p NobodyPolicy) MarshalText() ([]byte, error) {
	return enumMarshal(nobodyNames, int(p), "when_nobody")
}

// UnmarshalText decodes a JSON name; empty means OfferWhenNobody.
func (p *NobodyPolicy) UnmarshalText(b []byte) error {
	return enumUnmarshal(nobodyNames, (*int)(p), b, "when_nobody")
}

// OwnerPolicy says what happens when a client's responsible employee (an
// open deal, or a returning client) is unavailable at the event's time
// (off shift, on leave, day off, or the availability hook says so). The
// zero value is KeepOwner; JSON names "keep", "cover", "reassign".
type OwnerPolicy int

// Owner-off-shift policies.
const (
	// KeepOwner: the owner stays the only one notified.
	KeepOwner OwnerPolicy = iota
	// CoverOwner: the channel's eligible employees cover: they are
	// notified and may write, and the CRM's responsible is not changed.
	CoverOwner
	// ReassignOwner: the channel's distribution gives the client to
	// someone else, who becomes responsible in the CRM.
	ReassignOwner
)

var ownerNames = []string{"keep", "cover", "reassign"}

// String returns the JSON name.
func (p OwnerPolicy) String() string { return enumName(ownerNames, int(p), "OwnerPolicy") }

// MarshalText encodes the JSON name.
func (p OwnerPolicy) MarshalText() ([]byte, error) {
	return enumMarshal(ownerNames, int(p), "owner_off_shift")
}

// UnmarshalText decodes a JSON name; empty means KeepOwner.
func (p *OwnerPolicy) UnmarshalText(b []byte) error {
	return enumUnmarshal(ownerNames, (*int)(p), b, "owner_off_shift")
}

func enumName(names []string, v int, typ string) string {
	if v >= 0 && v < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

func enumMarshal(names []string, v int, field string) ([]byte, error) {
	if v < 0 || v >= len(names) {
		return nil, fmt.Errorf("%w: unknown %s %d", ErrInvalid, field, v)
	}
	return []byte(names[v]), nil
}

func enumUnmarshal(names []string, v *int, b []byte, field string) error {
	if len(b) == 0 {
		*v = 0
		return nil
	}
	for i, n := range names {
		if n == string(b) {
			*v = i
			return nil
		}
	}
	return fmt.Errorf("%w: unknown %s %q (want one of %q)", ErrInvalid, field, b, names)
}

// SettingsError names the field of a channel's settings that is wrong. It
// matches ErrInvalid.
type SettingsError struct {
	// Channel is the channel whose settings are wrong; empty when the
	// Channel field itself is empty.
	Channel channel.ID
	// Field is the wrong field's Go name, e.g. "Stage", "Capacity", or
	// "Schedules[42]" for the schedule of user 42.
	Field string
	// Value is the wrong value as text ("user=n" for a per-employee map
	// entry, the time zone for a schedule, After for Escalation); empty
	// when the value is missing.
	Value string
	// Reason says in words what is wrong, e.g. "empty" or "negative".
	Reason string
}

// Error implements the error interface.
func (e *SettingsError) Error() string {
	return fmt.Sprintf("routing: settings of channel %q: %s %q: %s", e.Channel, e.Field, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *SettingsError) Is(target error) bool { return target == ErrInvalid }

// Validate checks the settings against the CRM's pipelines: the channel is
// set, the pipeline exists, the stage belongs to it and is open (Unsorted
// or an ordinary stage, not won or lost), and the policy is known. The
// error is a [*SettingsError] naming the field.
func (s ChannelSettings) Validate(pipelines []crm.Pipeline) error {
	_, err := s.Mode(pipelines)
	return err
}

// Mode validates the settings (see Validate) and returns the channel's
// distribution mode: FirstResponder for the Unsorted stage, RoundRobin for
// any other open stage.
func (s ChannelSettings) Mode(pipelines []crm.Pipeline) (Mode, error) {
	bad := func(field, value, reason string) (Mode, error) {
		return 0, &SettingsError{Channel: s.Channel, Field: field, Value: value, Reason: reason}
	}
	if s.Channel == "" {
		return bad("Channel", "", "empty")
	}
	if s.Returning != NotifyResponsible && s.Returning != NewDeal {
		return bad("Returning", s.Returning.String(), "unknown policy")
	}
	if err := s.validateDistribution(); err != nil {
		return 0, err
	}
	if s.Pipeline == "" {
		return bad("Pipeline", "", "empty")
	}
	var p *crm.Pipeline
	for i := range pipelines {
		if pipelines[i].ID == s.Pipeline {
			p = &pipelines[i]
			break
		}
	}
	if p == nil {
		return bad("Pipeline", string(s.Pipeline), "no such pipeline in the CRM")
	}
	if s.Stage == "" {
		return bad("Stage", "", "empty")
	}
	st, ok := p.Stage(s.Stage)
	if !ok {
		return bad("Stage", string(s.Stage), fmt.Sprintf("not a stage of pipeline %q", s.Pipeline))
	}
	switch st.Kind {
	case crm.StageUnsorted:
		return FirstResponder, nil
	case crm.StageOpen:
		return RoundRobin, nil
	}
	return bad("Stage", string(s.Stage), fmt.Sprintf("a %v stage is closed; new deals need an open stage", st.Kind))
}

// IndexSettings validates every channel's settings and indexes them by
// channel. A channel listed twice is an error naming it.
func IndexSettings(list []ChannelSettings, pipelines []crm.Pipeline) (map[channel.ID]ChannelSettings, error) {
	m := make(map[channel.ID]ChannelSettings, len(list))
	for _, s := range list {
		if err := s.Validate(pipelines); err != nil {
			return nil, err
		}
		if _, dup := m[s.Channel]; dup {
			return nil, &SettingsError{Channel: s.Channel, Field: "Channel", Value: string(s.Channel), Reason: "listed twice"}
		}
		m[s.Channel] = s
	}
	return m, nil
}

// validateDistribution checks the distribution features' fields.
func (s ChannelSettings) validateDistribution() error {
	bad := func(field, value, reason string) error {
		return &SettingsError{Channel: s.Channel, Field: field, Value: value, Reason: reason}
	}
	if s.Capacity < 0 {
		return bad("Capacity", fmt.Sprint(s.Capacity), "negative")
	}
	for u, c := range s.CapacityOf {
		if u == "" || c < 0 {
			return bad("CapacityOf", fmt.Sprintf("%s=%d", u, c), "empty user ID or negative limit")
		}
	}
	for u, w := range s.Weights {
		if u == "" || w < 1 || w > MaxWeight {
			return bad("Weights", fmt.Sprintf("%s=%d", u, w), fmt.Sprintf("want a user ID and a weight from 1 to %d", MaxWeight))
		}
	}
	for u, sc := range s.Schedules {
		if u == "" {
			return bad("Schedules", "", "empty user ID")
		}
		if err := sc.Validate(); err != nil {
			return bad("Schedules["+string(u)+"]", sc.TimeZone, err.Error())
		}
	}
	if err := s.Escalation.validate(); err != nil {
		return bad("Escalation", s.Escalation.After.String(), err.Error())
	}
	if _, err := s.WhenNobody.MarshalText(); err != nil {
		return bad("WhenNobody", s.WhenNobody.String(), "unknown policy")
	}
	if _, err := s.OwnerOffShift.MarshalText(); err != nil {
		return bad("OwnerOffShift", s.OwnerOffShift.String(), "unknown policy")
	}
	return nil
}
