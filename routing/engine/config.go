package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/tasks"
)

// Config is everything a host configures: the channels with their
// per-channel settings, the employees' roles, and the settings for all
// channels. It is a plain struct that round-trips through JSON.
type Config struct {
	// Channels lists the connected channels; each ID may appear once.
	// Events on a channel not listed fail with ErrUnknownChannel.
	Channels []ChannelConfig `json:"channels"`
	// Roles gives employees their role per channel; each entry must name
	// a configured channel and a user the CRM has. An employee without an
	// entry has no access to that channel.
	Roles []roles.Assignment `json:"roles"`
	// Global holds the settings for all channels; the zero value is the
	// defaults described on GlobalSettings.
	Global GlobalSettings `json:"global"`
}

// ChannelConfig is one connected channel and its settings.
type ChannelConfig struct {
	// ID identifies the channel in events and roles (required, unique
	// within Config.Channels).
	ID channel.ID `json:"id"`
	// Kind is the messenger (required); for WhatsApp, client chat IDs
	// must be the client's international number in digits.
	Kind channel.Kind `json:"kind"`
	// Name is a display name for the channel; "" is allowed.
	Name string `json:"name,omitempty"`
	// Pipeline and Stage place a new client's deal; the Unsorted stage
	// means first responder, any other open stage round robin.
	Pipeline crm.PipelineID `json:"pipeline"`
	// Stage is the stage of Pipeline where a new client's deal is created;
	// it must be an open stage of that pipeline in the CRM. The Unsorted stage
	// means first responder, any other open stage round robin.
	Stage crm.StageID `json:"stage"`
	// Returning applies when all deals of a returning client are closed.
	Returning routing.ReturningPolicy `json:"returning"`
	// Features are the channel's distribution features (capacity,
	// schedules, weights, waiting queue, escalation, owner off shift),
	// with their JSON names at this level; the zero value is none.
	routing.Features
}

// Channel returns the channel's identity.
func (c ChannelConfig) Channel() channel.Channel {
	return channel.Channel{ID: c.ID, Kind: c.Kind, Name: c.Name}
}

// Settings returns the distribution settings of the channel.
func (c ChannelConfig) Settings() routing.ChannelSettings {
	return routing.ChannelSettings{Channel: c.ID, Pipeline: c.Pipeline, Stage: c.Stage, Returning: c.Returning, Features: c.Features}
}

// GlobalSettings apply to all channels at once. The zero value means: no
// tasks, a leading 8 counts as +7, Salesbot links left alone, no "write
// first from" channels.
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

// ConfigError is the one error type of configuration and options: it
// names the wrong field once, in the path form of the JSON configuration
// ("channels[1].stage", "roles[3].user") or of Options ("Options.CRM"),
// with the offending value when there is one. It matches ErrInvalid and
// routing.ErrInvalid; Err, when set, is the finer error it was built from.
type ConfigError struct {
	// Field is the path of the wrong field: "channels[1].stage",
	// "roles[3].user", "global.unanswered_tasks" or "Options.CRM".
	Field string
	// Value is the offending value as text; "" when there is none (an
	// empty or missing field).
	Value string
	// Reason says in English what is wrong with the field.
	Reason string
	// Err is the finer error the ConfigError was built from (such as a
	// *routing.SettingsError or *roles.EntryError); nil when none.
	Err error
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	s := "engine: config: " + e.Field
	if e.Value != "" {
		s += " " + strconv.Quote(e.Value)
	}
	return s + ": " + e.Reason
}

// Is reports whether target is ErrInvalid or routing.ErrInvalid.
func (e *ConfigError) Is(target error) bool {
	return target == ErrInvalid || target == routing.ErrInvalid
}

// Unwrap returns the finer error, if any.
func (e *ConfigError) Unwrap() error { return e.Err }

// Catalog is what the engine needs to know of the CRM to validate a
// configuration: its users and its pipelines.
type Catalog struct {
	// Users are the CRM's users; every user named in Config.Roles must
	// be among them.
	Users []crm.User
	// Pipelines are the CRM's pipelines with their stages; each channel's
	// Pipeline and Stage are checked against them.
	Pipelines []crm.Pipeline
}

// Validate checks the whole configuration against the CRM's catalog and
// returns the first problem as a *ConfigError naming the field.
func (c Config) Validate(cat Catalog) error {
	_, err := compile(c, cat)
	return err
}

// chanState is one channel's compiled settings.
type chanState struct {
	cfg  ChannelConfig
	mode routing.Mode
}

// settings is one immutable compiled configuration; events load it once,
// so they see a whole configuration, old or new, never a mix.
type settings struct {
	cfg      Config
	cat      Catalog
	chans    map[channel.ID]*chanState
	table    *roles.Table
	phoneOpt phone.Options
}

func compile(c Config, cat Catalog) (*settings, error) {
	chans := make(map[channel.ID]*chanState, len(c.Channels))
	for i, cc := range c.Channels {
		field := "channels[" + strconv.Itoa(i) + "]"
		switch {
		case cc.ID == "":
			return nil, &ConfigError{Field: field + ".id", Reason: "empty"}
		case cc.Kind == "":
			return nil, &ConfigError{Field: field + ".kind", Reason: "empty"}
		case chans[cc.ID] != nil:
			return nil, &ConfigError{Field: field + ".id", Value: string(cc.ID), Reason: "listed twice"}
		}
		mode, err := cc.Settings().Mode(cat.Pipelines)
		if err != nil {
			if se, ok := errors.AsType[*routing.SettingsError](err); ok {
				return nil, &ConfigError{Field: field + "." + jsonName(se.Field), Value: se.Value, Reason: se.Reason, Err: err}
			}
			return nil, &ConfigError{Field: field, Reason: err.Error(), Err: err}
		}
		chans[cc.ID] = &chanState{cfg: cc, mode: mode}
	}
	table, err := roles.NewTable(c.Roles)
	if err != nil {
		if ee, ok := errors.AsType[*roles.EntryError](err); ok {
			return nil, &ConfigError{Field: "roles[" + strconv.Itoa(ee.Index) + "]", Reason: ee.Reason, Err: err}
		}
		return nil, &ConfigError{Field: "roles", Reason: err.Error(), Err: err}
	}
	known := make(map[crm.UserID]bool, len(cat.Users))
	for _, u := range cat.Users {
		known[u.ID] = true
	}
	for i, a := range c.Roles {
		field := "roles[" + strconv.Itoa(i) + "]"
		if chans[a.Channel] == nil {
			return nil, &ConfigError{Field: field + ".channel", Value: string(a.Channel), Reason: "not a configured channel"}
		}
		if !known[a.User] {
			return nil, &ConfigError{Field: field + ".user", Value: string(a.User), Reason: "no such user in the CRM"}
		}
	}
	if err := c.Global.UnansweredTasks.Validate(); err != nil {
		return nil, &ConfigError{Field: "global.unanswered_tasks", Reason: err.Error(), Err: err}
	}
	for u, ch := range c.Global.WriteFirstFrom {
		field := "global.write_first_from[" + strconv.Quote(string(u)) + "]"
		if chans[ch] == nil {
			return nil, &ConfigError{Field: field, Value: string(ch), Reason: "not a configured channel"}
		}
		if !table.Role(u, ch).MayWrite() {
			return nil, &ConfigError{Field: field, Value: string(ch), Reason: fmt.Sprintf("user %q may not write on this channel", u)}
		}
	}
	return &settings{cfg: c, cat: cat, chans: chans, table: table, phoneOpt: c.Global.PhoneOptions()}, nil
}

// jsonName turns a routing.SettingsError's Go field path ("Stage",
// "Escalation.After", "Schedules[42]") into the JSON path of a channel's
// configuration ("stage", "escalation.after", "schedules[42]").
func jsonName(field string) string {
	if field == "Channel" {
		return "id"
	}
	var b strings.Builder
	inKey := false
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case c == '[':
			inKey = true
		case c == ']':
			inKey = false
		case !inKey && c >= 'A' && c <= 'Z':
			if i > 0 && field[i-1] != '.' {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// checkChatID refuses a chat ID that cannot belong to the channel's kind:
// a WhatsApp chat with a client is the client's international number in
// digits. Group chats carry the provider's group ID and are not checked.
func checkChatID(kind channel.Kind, id string, group bool) string {
	if kind != channel.WhatsApp || group {
		return ""
	}
	if len(id) < 6 || len(id) > 15 {
		return "a WhatsApp chat ID is the client's international number: 6 to 15 digits"
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return "a WhatsApp chat ID is the client's international number in digits, without \"+\" or letters"
		}
	}
	return ""
}
