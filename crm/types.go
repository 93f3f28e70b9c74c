package crm

import (
	"cmp"
	"slices"
	"time"
)

// Identifiers are opaque strings: amoCRM uses decimal integers, other CRMs
// use UUIDs. The zero value means "none".
type (
	// UserID identifies a CRM user (an employee).
	UserID string
	// ContactID identifies a contact.
	ContactID string
	// DealID identifies a deal (amoCRM: lead).
	DealID string
	// TaskID identifies a task.
	TaskID string
	// PipelineID identifies a pipeline (funnel).
	PipelineID string
	// StageID identifies a stage of a pipeline (amoCRM: status).
	StageID string
)

// User is a CRM user who may work chats in the integration.
type User struct {
	ID    UserID
	Name  string
	Email string
	// Active is false for users the CRM reports as deactivated.
	Active bool
}

// Identity is a client's identity on a messenger that is not a phone
// number: a Telegram username, an Instagram handle, a chat ID.
type Identity struct {
	// Kind is the messenger kind, e.g. "telegram" (see channel.Kind).
	Kind string
	// Value is the username or ID on that messenger, as the messenger gives it.
	Value string
}

// Contact is a client in the CRM.
type Contact struct {
	ID   ContactID
	Name string
	// Phones are the numbers as typed in the CRM ("8 (916) 123-45-67"),
	// not normalised. Match them with package phone.
	Phones []string
	// Identities are the messenger identities known for the contact.
	Identities []Identity
	// Responsible is the user the client belongs to; may be empty.
	Responsible UserID
	UpdatedAt   time.Time
}

// DealStatus tells whether a deal is open or closed, and how it closed.
type DealStatus int

// Deal statuses.
const (
	DealOpen DealStatus = iota
	DealWon
	DealLost
)

// String implements fmt.Stringer.
func (s DealStatus) String() string {
	switch s {
	case DealOpen:
		return "open"
	case DealWon:
		return "won"
	case DealLost:
		return "lost"
	}
	return "DealStatus(?)"
}

// Deal is a sales opportunity (amoCRM: lead).
type Deal struct {
	ID          DealID
	Name        string
	Pipeline    PipelineID
	Stage       StageID
	Status      DealStatus
	Responsible UserID
	Contacts    []ContactID
	UpdatedAt   time.Time
}

// Closed reports whether the deal is won or lost.
func (d Deal) Closed() bool { return d.Status != DealOpen }

// CompareIDs orders IDs as a CRM numbers them: numeric IDs numerically
// ("9" before "10"), by length then bytes, which is also a total order on
// other IDs. It returns -1, 0 or +1.
func CompareIDs(a, b string) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return cmp.Compare(a, b)
}

// LatestOpen returns the open deal updated most recently (ties broken by
// the larger ID, see CompareIDs), and false when no deal is open.
func LatestOpen(deals []Deal) (Deal, bool) {
	var best Deal
	found := false
	for _, d := range deals {
		if d.Closed() {
			continue
		}
		if !found || d.UpdatedAt.After(best.UpdatedAt) ||
			(d.UpdatedAt.Equal(best.UpdatedAt) && CompareIDs(string(d.ID), string(best.ID)) > 0) {
			best, found = d, true
		}
	}
	return best, found
}

// StageKind classifies a stage.
type StageKind int

// Stage kinds. Every amoCRM pipeline has exactly one Unsorted stage, first.
const (
	StageOpen     StageKind = iota // an ordinary open stage
	StageUnsorted                  // the Unsorted (Неразобранное) stage
	StageWon                       // closed, won (amoCRM status 142)
	StageLost                      // closed, lost (amoCRM status 143)
)

// String implements fmt.Stringer.
func (k StageKind) String() string {
	switch k {
	case StageOpen:
		return "open"
	case StageUnsorted:
		return "unsorted"
	case StageWon:
		return "won"
	case StageLost:
		return "lost"
	}
	return "StageKind(?)"
}

// Stage is a column of a pipeline.
type Stage struct {
	ID   StageID
	Name string
	Kind StageKind
}

// Pipeline is a funnel with its stages in order.
type Pipeline struct {
	ID     PipelineID
	Name   string
	Main   bool
	Stages []Stage
}

// Stage returns the stage with the given ID.
func (p Pipeline) Stage(id StageID) (Stage, bool) {
	i := slices.IndexFunc(p.Stages, func(s Stage) bool { return s.ID == id })
	if i < 0 {
		return Stage{}, false
	}
	return p.Stages[i], true
}

// Unsorted returns the pipeline's Unsorted stage, if it has one.
func (p Pipeline) Unsorted() (Stage, bool) {
	i := slices.IndexFunc(p.Stages, func(s Stage) bool { return s.Kind == StageUnsorted })
	if i < 0 {
		return Stage{}, false
	}
	return p.Stages[i], true
}

// Task is a to-do for a user, attached to a deal or a contact.
type Task struct {
	ID TaskID
	// Deal or Contact names what the task belongs to; exactly one is set.
	Deal        DealID
	Contact     ContactID
	Responsible UserID
	Text        string
	Deadline    time.Time
	Done        bool
}

// NewContact describes a contact to create.
type NewContact struct {
	Name        string
	Phones      []string // E.164 preferred
	Identities  []Identity
	Responsible UserID
}

// NewDeal describes a deal to create, for an existing contact or together
// with a new one.
type NewDeal struct {
	Name        string
	Pipeline    PipelineID
	Stage       StageID
	Responsible UserID // may be empty: the CRM's default (e.g. Unsorted)
	// Contact is an existing contact to link. Exactly one of Contact and
	// NewContact is set.
	Contact ContactID
	// NewContact is created with the deal, in one request where the CRM can.
	NewContact *NewContact
}

// NewTask describes a task to create.
type NewTask struct {
	// Exactly one of Deal and Contact is set.
	Deal        DealID
	Contact     ContactID
	Responsible UserID
	Text        string
	Deadline    time.Time
}

// Note is a free-text note on a deal or a contact (optional capability).
type Note struct {
	Deal    DealID
	Contact ContactID
	Text    string
}

// TaskFilter selects tasks for Client.ListTasks: those attached to Deal or
// to Contact (exactly one is set), only the open ones when OpenOnly.
type TaskFilter struct {
	Deal     DealID
	Contact  ContactID
	OpenOnly bool
}
