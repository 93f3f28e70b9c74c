package roles

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// Role is what an employee may do on one channel. The zero value means no
// role: no access to the channel. Roles marshal to JSON as their string
// values ("quality_control", "manager", "supervisor").
type Role string

// Roles.
const (
	NoRole         Role = ""                // no access to the channel
	QualityControl Role = "quality_control" // sees every chat, writes nothing
	Manager        Role = "manager"         // sees and writes their own clients
	Supervisor     Role = "supervisor"      // sees and writes every chat (руководитель)
)

// Valid reports whether r is one of the three roles (not NoRole).
func (r Role) Valid() bool {
	return r == QualityControl || r == Manager || r == Supervisor
}

// MayWrite reports whether the role may write to clients at all (manager
// and supervisor). Only such roles may receive new clients.
func (r Role) MayWrite() bool { return r == Manager || r == Supervisor }

// SeesAll reports whether the role sees every chat of its channel
// (quality control and supervisor).
func (r Role) SeesAll() bool { return r == QualityControl || r == Supervisor }

// String returns the JSON name, or "none" for NoRole.
func (r Role) String() string {
	if r == NoRole {
		return "none"
	}
	return string(r)
}

// Assignment gives one employee a role on one channel.
type Assignment struct {
	// User is the employee's CRM user ID; required.
	User crm.UserID `json:"user"`
	// Channel is the channel the role applies to; required. A user has
	// at most one assignment per channel.
	Channel channel.ID `json:"channel"`
	// Role is the employee's role on Channel; required (NoRole is
	// refused: leave the user out instead).
	Role Role `json:"role"`
	// ReceivesNewClients enters the employee into distribution (first
	// responder or round robin) on this channel. Not allowed for quality
	// control.
	ReceivesNewClients bool `json:"receives_new_clients"`
}

// ErrInvalid is matched (errors.Is) by every validation error of this
// package.
var ErrInvalid = errors.New("roles: invalid assignment")

// EntryError names the assignment NewTable rejected and why. It matches
// ErrInvalid.
type EntryError struct {
	// Index is the entry's position in the slice given to NewTable.
	Index int
	// User is the entry's User, as given (may be empty).
	User crm.UserID
	// Channel is the entry's Channel, as given (may be empty).
	Channel channel.ID
	// Reason says what is wrong, e.g. "empty role" or "duplicate entry:
	// user already assigned on this channel by entry #0".
	Reason string
}

// Error implements the error interface.
func (e *EntryError) Error() string {
	return fmt.Sprintf("roles: invalid assignment #%d (user %q, channel %q): %s",
		e.Index, e.User, e.Channel, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *EntryError) Is(target error) bool { return target == ErrInvalid }

type key struct {
	ch   channel.ID
	user crm.UserID
}

// Table is a validated set of assignments with lookups. It is immutable and
// safe for concurrent use. A nil *Table is valid and empty: nobody has any
// role, so every check denies.
type Table struct {
	byKey   map[key]Assignment
	users   map[channel.ID][]crm.UserID // everyone with a role, sorted
	recv    map[channel.ID][]crm.UserID // receivers, sorted
	writers map[channel.ID][]crm.UserID // managers and supervisors, sorted
	chans   map[crm.UserID][]channel.ID // sorted
	list    []Assignment                // sorted by channel, then user
	byChan  map[channel.ID][]Assignment // sub-slices of list
}

// NewTable validates the assignments and builds a Table. It returns the
// first problem as an [*EntryError]: an empty user, channel or role, an
// unknown role, quality control with ReceivesNewClients, or a second entry
// for the same user and channel.
func NewTable(as []Assignment) (*Table, error) {
	t := &Table{
		byKey:   make(map[key]Assignment, len(as)),
		users:   map[channel.ID][]crm.UserID{},
		recv:    map[channel.ID][]crm.UserID{},
		writers: map[channel.ID][]crm.UserID{},
		chans:   map[crm.UserID][]channel.ID{},
	}
	first := make(map[key]int, len(as))
	for i, a := range as {
		bad := func(format string, args ...any) error {
			return &EntryError{Index: i, User: a.User, Channel: a.Channel, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case a.User == "":
			return nil, bad("empty user")
		case a.Channel == "":
			return nil, bad("empty channel")
		case a.Role == NoRole:
			return nil, bad("empty role")
		case !a.Role.Valid():
			return nil, bad("unknown role %q (want quality_control, manager or supervisor)", string(a.Role))
		case a.ReceivesNewClients && !a.Role.MayWrite():
			return nil, bad("quality control cannot receive new clients")
		}
		k := key{a.Channel, a.User}
		if j, dup := first[k]; dup {
			return nil, bad("duplicate entry: user already assigned on this channel by entry #%d", j)
		}
		first[k] = i
		t.byKey[k] = a
		t.users[a.Channel] = append(t.users[a.Channel], a.User)
		if a.ReceivesNewClients {
			t.recv[a.Channel] = append(t.recv[a.Channel], a.User)
		}
		if a.Role.MayWrite() {
			t.writers[a.Channel] = append(t.writers[a.Channel], a.User)
		}
		t.chans[a.User] = append(t.chans[a.User], a.Channel)
		t.list = append(t.list, a)
	}
	for _, m := range []map[channel.ID][]crm.UserID{t.users, t.recv, t.writers} {
		for _, us := range m {
			slices.Sort(us)
		}
	}
	for _, cs := range t.chans {
		slices.Sort(cs)
	}
	slices.SortFunc(t.list, func(a, b Assignment) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.User, b.User))
	})
	t.byChan = map[channel.ID][]Assignment{}
	for i := 0; i < len(t.list); {
		j := i + 1
		for j < len(t.list) && t.list[j].Channel == t.list[i].Channel {
			j++
		}
		t.byChan[t.list[i].Channel] = t.list[i:j:j]
		i = j
	}
	return t, nil
}

// Lookup returns the user's assignment on the channel, if any.
func (t *Table) Lookup(user crm.UserID, ch channel.ID) (Assignment, bool) {
	if t == nil {
		return Assignment{}, false
	}
	a, ok := t.byKey[key{ch, user}]
	return a, ok
}

// Role returns the user's role on the channel; NoRole if they have none.
func (t *Table) Role(user crm.UserID, ch channel.ID) Role {
	a, _ := t.Lookup(user, ch)
	return a.Role
}

// Users returns everyone with a role on the channel, sorted by ID (byte
// order). The slice is a copy.
func (t *Table) Users(ch channel.ID) []crm.UserID {
	if t == nil {
		return nil
	}
	return slices.Clone(t.users[ch])
}

// Receivers returns the employees who receive new clients on the channel,
// sorted by ID (byte order). The slice is a copy.
func (t *Table) Receivers(ch channel.ID) []crm.UserID {
	if t == nil {
		return nil
	}
	return slices.Clone(t.recv[ch])
}

// Writers returns the employees who may write on the channel (managers and
// supervisors), sorted by ID (byte order). The slice is a copy.
func (t *Table) Writers(ch channel.ID) []crm.UserID {
	if t == nil {
		return nil
	}
	return slices.Clone(t.writers[ch])
}

// Channels returns the channels where the user has a role, sorted. The
// slice is a copy.
func (t *Table) Channels(user crm.UserID) []channel.ID {
	if t == nil {
		return nil
	}
	return slices.Clone(t.chans[user])
}

// Members yields the assignments on the channel, sorted by user ID (byte
// order), without copying: the cheap way to walk a channel's team.
func (t *Table) Members(ch channel.ID) iter.Seq[Assignment] {
	return func(yield func(Assignment) bool) {
		if t == nil {
			return
		}
		for _, a := range t.byChan[ch] {
			if !yield(a) {
				return
			}
		}
	}
}

// Assignments returns all assignments, sorted by channel then user. The
// slice is a copy.
func (t *Table) Assignments() []Assignment {
	if t == nil {
		return nil
	}
	return slices.Clone(t.list)
}
