package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// Defaults for the zero Settings fields.
const (
	DefaultDeadline = time.Hour
	DefaultText     = "Reply to the client: unanswered message in {channel} ({chat})"
)

// ErrInvalid is matched by settings validation errors.
var ErrInvalid = errors.New("tasks: invalid settings")

// ErrStreakClosed: the streak closed before its task was recorded.
var ErrStreakClosed = errors.New("tasks: streak already closed")

// Settings configure unanswered-message tasks (a setting for all channels).
// The zero value means: off; when on, the deadline is one hour and the
// text is DefaultText.
type Settings struct {
	// Enabled turns unanswered-message tasks on.
	Enabled bool `json:"enabled"`
	// Deadline is the time from the first unanswered message to the task's
	// deadline; 0 means DefaultDeadline.
	Deadline Duration `json:"deadline,omitempty"`
	// Text is the task text; "" means DefaultText. The placeholders
	// {channel} (the channel's name, else its ID) and {chat} (the client's
	// chat ID) are replaced.
	Text string `json:"text,omitempty"`
}

// Validate reports a negative deadline, a text of only white space (every
// CRM refuses a blank task text: leave Text empty for DefaultText) or an
// over-long text, naming the field.
func (s Settings) Validate() error {
	if s.Deadline < 0 {
		return fmt.Errorf("%w: Deadline %v is negative", ErrInvalid, time.Duration(s.Deadline))
	}
	if s.Text != "" && strings.TrimSpace(s.Text) == "" {
		return fmt.Errorf("%w: Text is only white space (empty means the default text)", ErrInvalid)
	}
	if len(s.Text) > 4000 {
		return fmt.Errorf("%w: Text is %d bytes, more than 4000", ErrInvalid, len(s.Text))
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a string such
// as "1h30m" (a number is read as nanoseconds).
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "1h30m" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("%w: Deadline %s is neither a duration string nor a number", ErrInvalid, b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: Deadline %q: %v", ErrInvalid, s, err)
	}
	*d = Duration(v)
	return nil
}

// Event is what happened in a chat, as far as tasks care.
type Event int

// Events.
const (
	ClientMessage Event = iota // a message from the client
	EmployeeReply              // an employee wrote in the chat
	UnreadReset                // an employee reset the unread counter
	BotMessage                 // Salesbot or the system wrote
)

// Action is what the rules say to do with the chat's streak.
type Action int

// Actions.
const (
	None  Action = iota // nothing to do
	Open                // open a streak if none is open; its opener creates the task
	Close               // close the open streak and complete its task
)

// String implements fmt.Stringer.
func (a Action) String() string {
	switch a {
	case Open:
		return "open"
	case Close:
		return "close"
	}
	return "none"
}

// Plan returns what an event does to the chat's streak under s.
// With tasks disabled every event is None.
func Plan(s Settings, ev Event) Action {
	if !s.Enabled {
		return None
	}
	switch ev {
	case ClientMessage:
		return Open
	case EmployeeReply, UnreadReset:
		return Close
	}
	return None
}

// Spec returns the task to create for a streak opened at first, for the
// client's chat on ch, attached to deal (else contact), for responsible.
func Spec(s Settings, ch channel.Channel, chat channel.Chat, first time.Time, deal crm.DealID, contact crm.ContactID, responsible crm.UserID) crm.NewTask {
	d := time.Duration(s.Deadline)
	if d == 0 {
		d = DefaultDeadline
	}
	text := s.Text
	if text == "" {
		text = DefaultText
	}
	name := ch.Name
	if name == "" {
		name = string(ch.ID)
	}
	text = strings.NewReplacer("{channel}", name, "{chat}", chat.ChatID).Replace(text)
	t := crm.NewTask{Responsible: responsible, Text: text, Deadline: first.Add(d)}
	if deal != "" {
		t.Deal = deal
	} else {
		t.Contact = contact
	}
	return t
}
