package crm

import (
	"context"
	"errors"
	"fmt"
)

// Client is implemented by CRM adapters: the operations the rules need and
// no more. Methods must be safe for concurrent use and return an error
// matching ctx.Err() once ctx is done.
//
// "Safe to retry" below means a retry after a temporary error (see
// [Temporary]) cannot create a second entity or undo a later change.
//
// Input a method refuses with ErrInvalid below is refused by every
// adapter, whatever its CRM would accept, and nothing of it is written,
// so a host tested against one adapter (or the in-memory fake of package
// crmtest) meets the same refusals on another. Such input is reported as
// ErrInvalid even when it also names something the CRM does not know
// (which alone is ErrNotFound). Blank means empty or only white space. The Problems methods of the inputs ([NewContact.Problems],
// [NewDeal.Problems], [NewTask.Problems], [Note.Problems],
// [Identity.Problems]) apply these rules, for adapters to share.
type Client interface {
	// FindContactsByPhone returns the contacts having a phone equal to e164
	// (an E.164 number, "+79161234567") however the number was typed in the
	// CRM. None: an empty slice and nil error. ErrInvalid: e164 is not a
	// phone number. Safe to retry.
	FindContactsByPhone(ctx context.Context, e164 string) ([]Contact, error)

	// FindContactsByIdentity returns the contacts carrying the messenger
	// identity. None: an empty slice and nil error. ErrInvalid: Kind or
	// Value is empty (no contact can carry such an identity). Safe to
	// retry.
	FindContactsByIdentity(ctx context.Context, id Identity) ([]Contact, error)

	// CreateContact creates a contact. ErrInvalid: a phone is blank, or
	// an identity has no Kind or no Value (an adapter may also refuse a
	// Kind its storage cannot hold apart from the Value; the amoCRM
	// adapter refuses one holding ':'). ErrNotFound: an unknown
	// Responsible. Not safe to retry blindly: a timeout may hide a
	// created contact; look it up by phone first.
	CreateContact(ctx context.Context, c NewContact) (Contact, error)

	// CreateDeal creates a deal at d.Pipeline/d.Stage with d.Responsible,
	// linked to d.Contact or to d.NewContact created in the same operation.
	// A NewContact without its own Responsible gets d.Responsible, so the
	// client belongs to whoever owns the deal. It returns the deal and its
	// contact. ErrInvalid: both or neither of Contact and NewContact set,
	// an empty Pipeline or Stage (never left to a CRM default), or a
	// NewContact CreateContact would refuse as invalid. ErrNotFound: the
	// contact, pipeline, stage or a user does not exist. Not safe to
	// retry blindly.
	CreateDeal(ctx context.Context, d NewDeal) (Deal, Contact, error)

	// ListDeals returns every deal linked to the contact, open and closed.
	// ErrNotFound: no such contact. Safe to retry.
	ListDeals(ctx context.Context, contact ContactID) ([]Deal, error)

	// SetResponsible makes user responsible for the deal and for each of
	// the deal's contacts. ErrNotFound: no such deal or user. Safe to retry.
	SetResponsible(ctx context.Context, deal DealID, user UserID) error

	// SetContactResponsible makes user responsible for a contact (used when
	// a client has no deal). ErrNotFound: no such contact or user. Safe to retry.
	SetContactResponsible(ctx context.Context, contact ContactID, user UserID) error

	// CreateTask creates a task. ErrInvalid: both or neither of Deal and
	// Contact set, a blank Text, or a zero Deadline. ErrNotFound: the deal,
	// contact or Responsible does not exist. Not safe to retry blindly.
	CreateTask(ctx context.Context, t NewTask) (Task, error)

	// ListTasks returns the tasks matching f: those of f.Deal or of
	// f.Contact (exactly one is set), only the open ones when f.OpenOnly.
	// It is how a caller looks in the CRM before repeating a CreateTask
	// whose outcome is unknown. ErrInvalid: both or neither of Deal and
	// Contact set. None: an empty slice and nil error. Safe to retry.
	ListTasks(ctx context.Context, f TaskFilter) ([]Task, error)
	// CompleteTask marks a task done. Completing a task that is already
	// done succeeds. ErrNotFound: no such task. Safe to retry.
	CompleteTask(ctx context.Context, id TaskID) error

	// ListUsers returns the CRM's users. Safe to retry.
	ListUsers(ctx context.Context) ([]User, error)

	// ListPipelines returns the pipelines with their stages. Safe to retry.
	ListPipelines(ctx context.Context) ([]Pipeline, error)
}

// Noter is an optional capability: adding a note to a deal or a contact.
type Noter interface {
	// AddNote adds n to its deal or contact. ErrNotFound: the deal or
	// contact does not exist; ErrInvalid: both or neither of Deal and
	// Contact set, or a blank Text. Not safe to retry blindly: a retry
	// after a timeout may add the note twice.
	AddNote(ctx context.Context, n Note) error
}

// TaskBatcher is an optional capability: creating several tasks in one
// request. The result is in the order of ts; a partial failure is
// reported as [BatchError]'s doc describes for every batch capability.
type TaskBatcher interface {
	// CreateTasks creates ts, each checked and created as
	// [Client.CreateTask] would, and returns one Task per item of ts. An
	// item refused as invalid is named in a [*BatchError] with an error
	// matching ErrInvalid, even when it is the only item. Not safe to
	// retry blindly.
	CreateTasks(ctx context.Context, ts []NewTask) ([]Task, error)
}

// Wrapper is implemented by Clients that wrap another (logging, metrics,
// retries), so helpers can find optional capabilities underneath.
type Wrapper interface {
	// Unwrap returns the Client this one wraps; nil when it wraps none.
	Unwrap() Client
}

// as finds a capability T on c or on what it wraps.
func as[T any](c Client) (T, bool) {
	for c != nil {
		if t, ok := c.(T); ok {
			return t, true
		}
		w, ok := c.(Wrapper)
		if !ok {
			break
		}
		c = w.Unwrap()
	}
	var zero T
	return zero, false
}

// AddNote adds a note through the Noter capability. Without it the error
// matches errors.ErrUnsupported: there is no fallback.
func AddNote(ctx context.Context, c Client, n Note) error {
	if nt, ok := as[Noter](c); ok {
		return nt.AddNote(ctx, n)
	}
	return fmt.Errorf("crm: AddNote: %w", errors.ErrUnsupported)
}

// CreateTasks creates ts through the TaskBatcher capability, or one by one
// with CreateTask. Results are in the order of ts; when some items fail,
// the error is a [*BatchError] and the failed items' results are zero,
// as for [CreateDeals].
func CreateTasks(ctx context.Context, c Client, ts []NewTask) ([]Task, error) {
	if tb, ok := as[TaskBatcher](c); ok {
		return tb.CreateTasks(ctx, ts)
	}
	out := make([]Task, len(ts))
	return out, eachItem(ctx, "CreateTasks", len(ts), func(i int) (err error) {
		out[i], err = c.CreateTask(ctx, ts[i])
		return err
	})
}
