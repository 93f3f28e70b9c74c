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
	Channel channel.ID `json:"channel"`
	// Pipeline and Stage are where a new client's deal is created. The
	// stage decides the Mode.
	Pipeline crm.PipelineID `json:"pipeline"`
	Stage    crm.StageID    `json:"stage"`
	// Returning applies when all deals of a returning client are closed.
	Returning ReturningPolicy `json:"returning"`
}

// SettingsError names the field of a channel's settings that is wrong. It
// matches ErrInvalid.
type SettingsError struct {
	Channel channel.ID
	Field   string // "Channel", "Pipeline", "Stage" or "Returning"
	Value   string
	Reason  string
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
