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
	// ID is the user's ID in the CRM (amoCRM: the user's id); never empty
	// in a user a Client returns.
	ID UserID
	// Name is the user's display name as the CRM shows it; may be empty.
	Name string
	// Email is the user's login e-mail as the CRM reports it; may be empty.
	Email string
	// Active is false for users the CRM reports as deactivated (amoCRM:
	// rights.is_active false); a CRM that does not say is taken as active.
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
	// ID is the contact's ID in the CRM; never empty in a contact a Client
	// returns.
	ID ContactID
	// Name is the contact's name as stored in the CRM; may be empty.
	Name string
	// Phones are the numbers as typed in the CRM ("8 (916) 123-45-67"),
	// not normalised. Match them with package phone.
	Phones []string
	// Identities are the messenger identities known for the contact.
	Identities []Identity
	// Responsible is the user the client belongs to; may be empty.
	Responsible UserID
	// UpdatedAt is when the CRM last changed the contact (amoCRM:
	// updated_at, to the second); zero when the CRM did not say.
	// ContactLister pages are ordered and filtered by it.
	UpdatedAt time.Time
}

// DealStatus tells whether a deal is open or closed, and how it closed.
type DealStatus int

// Deal statuses.
const (
	DealOpen DealStatus = iota // not closed: in an open or Unsorted stage
	DealWon                    // closed, won (amoCRM status 142)
	DealLost                   // closed, lost (amoCRM status 143)
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
	// ID is the deal's ID in the CRM (amoCRM: the lead's id); never empty
	// in a deal a Client returns.
	ID DealID
	// Name is the deal's title as stored in the CRM; may be empty.
	Name string
	// Pipeline is the pipeline the deal is in (amoCRM: pipeline_id).
	Pipeline PipelineID
	// Stage is the deal's stage within Pipeline (amoCRM: status_id).
	Stage StageID
	// Status tells whether the deal is open, won or lost; it follows from
	// the kind of Stage (StageWon or StageLost closes the deal). The zero
	// value is DealOpen.
	Status DealStatus
	// Responsible is the user responsible for the deal; empty when the
	// CRM names none.
	Responsible UserID
	// Contacts are the contacts linked to the deal, the main contact first
	// where the CRM marks one (amoCRM: is_main); may be empty.
	Contacts []ContactID
	// UpdatedAt is when the CRM last changed the deal (amoCRM: updated_at,
	// to the second); zero when the CRM did not say. LatestOpen picks the
	// open deal with the latest UpdatedAt.
	UpdatedAt time.Time
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

// Stage kinds. An amoCRM pipeline with Unsorted turned on (is_unsorted_on)
// has exactly one Unsorted stage, first; one with it off has none.
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
	// ID is the stage's ID in the CRM (amoCRM: the status id, which is
	// 142 and 143 for the won and lost stages of every pipeline).
	ID StageID
	// Name is the stage's title as the CRM shows it.
	Name string
	// Kind classifies the stage; the zero value is StageOpen.
	Kind StageKind
}

// Pipeline is a funnel with its stages in order.
type Pipeline struct {
	// ID is the pipeline's ID in the CRM.
	ID PipelineID
	// Name is the pipeline's title as the CRM shows it.
	Name string
	// Main is true for the account's main pipeline (amoCRM: is_main).
	Main bool
	// Stages are the pipeline's stages in the CRM's display order (amoCRM:
	// by the statuses' sort). Use Pipeline.Stage and Pipeline.Unsorted to
	// find one.
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
	// ID is the task's ID in the CRM; never empty in a task a Client
	// returns.
	ID TaskID
	// Deal is the deal the task is attached to (amoCRM: entity_type
	// "leads"); empty when the task is a contact's. Exactly one of Deal
	// and Contact is set.
	Deal DealID
	// Contact is the contact the task is attached to (amoCRM: entity_type
	// "contacts"); empty when the task is a deal's.
	Contact ContactID
	// Responsible is the user who must do the task; empty when the CRM
	// names none.
	Responsible UserID
	// Text is what the task asks for, as shown in the CRM.
	Text string
	// Deadline is when the task is due (amoCRM: complete_till, to the
	// second).
	Deadline time.Time
	// Done is true once the task is completed (amoCRM: is_completed).
	Done bool
}

// NewContact describes a contact to create.
type NewContact struct {
	// Name is the contact's name; may be empty.
	Name string
	// Phones are stored as given, E.164 ("+79161234567") preferred; a
	// blank entry: an error matching ErrInvalid, on every adapter. May be
	// empty.
	Phones []string
	// Identities are the client's messenger identities to store with the
	// contact; may be empty. One without Kind or Value: an error matching
	// ErrInvalid, on every adapter (the amoCRM adapter also refuses a Kind
	// holding ':').
	Identities []Identity
	// Responsible is the user the client will belong to; empty leaves it
	// to the CRM. A contact created with a deal (CreateDeal, CreateDeals)
	// gets the deal's Responsible instead of an empty one, on every
	// adapter. A user the CRM does not know: an error matching
	// ErrNotFound.
	Responsible UserID
}

// NewDeal describes a deal to create, for an existing contact or together
// with a new one.
type NewDeal struct {
	// Name is the deal's title; may be empty (the amoCRM adapter then
	// sends none).
	Name string
	// Pipeline is the pipeline to create the deal in; required (empty: an
	// error matching ErrInvalid, never the CRM's default pipeline).
	Pipeline PipelineID
	// Stage is the stage of Pipeline to create the deal in; required
	// (empty: an error matching ErrInvalid). A pipeline or stage the CRM
	// does not know: an error matching ErrNotFound.
	Stage StageID
	// Responsible is the user responsible for the deal. Empty leaves it
	// to the CRM, which may name one itself: amoCRM appears to give a
	// lead created without one to the user the integration acts as (not
	// documented), not to nobody, so set it whenever who owns the deal
	// matters. A user the CRM does not know: an error matching
	// ErrNotFound.
	Responsible UserID
	// Contact is an existing contact to link. Exactly one of Contact and
	// NewContact is set.
	Contact ContactID
	// NewContact is created with the deal, in one request where the CRM can.
	NewContact *NewContact
}

// NewTask describes a task to create.
type NewTask struct {
	// Deal is the deal to attach the task to. Exactly one of Deal and
	// Contact is set; both or neither: an error matching ErrInvalid.
	Deal DealID
	// Contact is the contact to attach the task to (for a client without a
	// deal).
	Contact ContactID
	// Responsible is the user who must do the task; empty leaves it to the
	// CRM. A user the CRM does not know: an error matching ErrNotFound.
	Responsible UserID
	// Text is what the task asks for; blank: an error matching
	// ErrInvalid, on every adapter.
	Text string
	// Deadline is when the task is due; the CRM keeps it to the second.
	// Zero: an error matching ErrInvalid, on every adapter.
	Deadline time.Time
}

// Note is a free-text note on a deal or a contact (optional capability).
type Note struct {
	// Deal is the deal to add the note to. Exactly one of Deal and Contact
	// is set; both or neither: an error matching ErrInvalid.
	Deal DealID
	// Contact is the contact to add the note to.
	Contact ContactID
	// Text is the note's text (amoCRM: a "common" note's params.text);
	// blank: an error matching ErrInvalid, on every adapter.
	Text string
}

// TaskFilter selects tasks for Client.ListTasks: those attached to Deal or
// to Contact (exactly one is set), only the open ones when OpenOnly.
type TaskFilter struct {
	// Deal selects the tasks attached to this deal.
	Deal DealID
	// Contact selects the tasks attached to this contact (not those of
	// its deals).
	Contact ContactID
	// OpenOnly keeps only the tasks not yet done; false lists done tasks
	// too.
	OpenOnly bool
}
