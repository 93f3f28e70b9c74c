package routing

import (
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/tasks"
)

// Config is everything a host configures: the channels with their
// per-channel settings, the employees' roles, and the settings for all
// channels. It is a plain struct that round-trips through JSON.
type Config struct {
	Channels []ChannelConfig    `json:"channels"`
	Roles    []roles.Assignment `json:"roles"`
	Global   GlobalSettings     `json:"global"`
}

// ChannelConfig is one connected channel and its settings (spec §1, §3).
type ChannelConfig struct {
	ID   channel.ID   `json:"id"`
	Kind channel.Kind `json:"kind"`
	Name string       `json:"name,omitempty"`
	// Pipeline and Stage place a new client's deal; the Unsorted stage
	// means first responder, any other open stage round robin.
	Pipeline crm.PipelineID `json:"pipeline"`
	Stage    crm.StageID    `json:"stage"`
	// Returning applies when all deals of a returning client are closed.
	Returning ReturningPolicy `json:"returning"`
}

// Channel returns the channel's identity.
func (c ChannelConfig) Channel() channel.Channel {
	return channel.Channel{ID: c.ID, Kind: c.Kind, Name: c.Name}
}

// Settings returns the distribution settings of the channel.
func (c ChannelConfig) Settings() ChannelSettings {
	return ChannelSettings{Channel: c.ID, Pipeline: c.Pipeline, Stage: c.Stage, Returning: c.Returning}
}

// GlobalSettings apply to all channels at once (spec "Settings for all
// channels"). The zero value is the seed's defaults: no tasks, a leading 8
// counts as +7, Salesbot links left alone, no "write first from" channels.
type GlobalSettings struct {
	// UnansweredTasks: a CRM task for each streak of unanswered messages.
	UnansweredTasks tasks.Settings `json:"unanswered_tasks"`
	// DisableEightAsSeven turns off "numbers written with a leading 8
	// count as +7" (for clients from Asia whose numbers are stored without
	// "+": 86…, 81…, 82…, 84…). The zero value keeps the rule on.
	DisableEightAsSeven bool `json:"disable_eight_as_seven,omitempty"`
	// Region is the default region for numbers typed without a country
	// code; "" means RU.
	Region string `json:"region,omitempty"`
	// ExpandSalesbotLinks replaces Salesbot's amo.sh short links by the
	// address they lead to. Off by default, deliberately: fetching a
	// tracked link may count as the client's click in amoCRM and fire
	// click-triggered automations (see package links).
	ExpandSalesbotLinks bool `json:"expand_salesbot_links,omitempty"`
	// WriteFirstFrom is, per employee with several channels, the channel
	// used when they write to a client first.
	WriteFirstFrom map[crm.UserID]channel.ID `json:"write_first_from,omitempty"`
}

// ChannelKinds returns each configured channel's kind, as channel
// adapters such as channel/wazzup want them.
func (c Config) ChannelKinds() map[channel.ID]channel.Kind {
	out := make(map[channel.ID]channel.Kind, len(c.Channels))
	for _, cc := range c.Channels {
		out[cc.ID] = cc.Kind
	}
	return out
}

// PhoneOptions returns the phone package options these settings mean.
func (g GlobalSettings) PhoneOptions() phone.Options {
	return phone.Options{Region: g.Region, DisableEightAsSeven: g.DisableEightAsSeven}
}

// ConfigError names the field of a Config that is wrong, in the path form
// "channels[1].stage". It matches ErrInvalid.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // the underlying error, if any
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	s := "routing: config: " + e.Field + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrInvalid.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate checks the whole configuration against the CRM's pipelines and
// returns the first problem as a *ConfigError naming the field.
func (c Config) Validate(pipelines []crm.Pipeline) error {
	_, _, err := c.compile(pipelines)
	return err
}

// compiled per-channel state.
type chanState struct {
	cfg  ChannelConfig
	mode Mode
}

func (c Config) compile(pipelines []crm.Pipeline) (map[channel.ID]*chanState, *roles.Table, error) {
	chans := make(map[channel.ID]*chanState, len(c.Channels))
	for i, cc := range c.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		switch {
		case cc.ID == "":
			return nil, nil, &ConfigError{Field: field + ".id", Reason: "empty"}
		case cc.Kind == "":
			return nil, nil, &ConfigError{Field: field + ".kind", Reason: "empty"}
		case chans[cc.ID] != nil:
			return nil, nil, &ConfigError{Field: field + ".id", Reason: fmt.Sprintf("channel %q is listed twice", cc.ID)}
		}
		mode, err := cc.Settings().Mode(pipelines)
		if err != nil {
			var se *SettingsError
			if errors.As(err, &se) {
				return nil, nil, &ConfigError{Field: field + "." + jsonName(se.Field), Reason: se.Reason, Err: err}
			}
			return nil, nil, &ConfigError{Field: field, Reason: "invalid", Err: err}
		}
		chans[cc.ID] = &chanState{cfg: cc, mode: mode}
	}
	table, err := roles.NewTable(c.Roles)
	if err != nil {
		var ee *roles.EntryError
		if errors.As(err, &ee) {
			return nil, nil, &ConfigError{Field: fmt.Sprintf("roles[%d]", ee.Index), Reason: ee.Reason, Err: err}
		}
		return nil, nil, &ConfigError{Field: "roles", Reason: "invalid", Err: err}
	}
	for i, a := range c.Roles {
		if chans[a.Channel] == nil {
			return nil, nil, &ConfigError{Field: fmt.Sprintf("roles[%d].channel", i), Reason: fmt.Sprintf("unknown channel %q", a.Channel)}
		}
	}
	if err := c.Global.UnansweredTasks.Validate(); err != nil {
		return nil, nil, &ConfigError{Field: "global.unanswered_tasks", Reason: "invalid", Err: err}
	}
	for u, ch := range c.Global.WriteFirstFrom {
		field := fmt.Sprintf("global.write_first_from[%q]", u)
		if chans[ch] == nil {
			return nil, nil, &ConfigError{Field: field, Reason: fmt.Sprintf("unknown channel %q", ch)}
		}
		if !table.Role(u, ch).MayWrite() {
			return nil, nil, &ConfigError{Field: field, Reason: fmt.Sprintf("user %q may not write on channel %q", u, ch)}
		}
	}
	return chans, table, nil
}

func jsonName(field string) string {
	switch field {
	case "Channel":
		return "id"
	case "Pipeline":
		return "pipeline"
	case "Stage":
		return "stage"
	case "Returning":
		return "returning"
	}
	return field
}
