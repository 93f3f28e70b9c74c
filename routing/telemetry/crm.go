package telemetry

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/crm"
)

// CRM metric names.
const (
	CRMCallsMetric    = "crmbridge.crm.calls"
	CRMDurationMetric = "crmbridge.crm.call.duration"
)

// crmStatus classifies a CRM call's error with the crm sentinels.
func crmStatus(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return "canceled"
	case isBatchError(err):
		return "partial"
	case errors.Is(err, crm.ErrNotFound):
		return "not_found"
	case errors.Is(err, crm.ErrConflict):
		return "conflict"
	case errors.Is(err, crm.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, crm.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, crm.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, crm.ErrInvalid):
		return "invalid"
	case errors.Is(err, errors.ErrUnsupported):
		return "unsupported"
	}
	return "other"
}

func isBatchError(err error) bool {
	_, ok := errors.AsType[*crm.BatchError](err)
	return ok
}

// WrapCRM returns a crm.Client that calls c and records, for every call, a
// client span named "crm.<Method>" and one measurement on each of
// crmbridge.crm.calls and crmbridge.crm.call.duration (see the package
// documentation). Results and errors are c's, unchanged.
//
// The returned Client implements crm.Wrapper (Unwrap returns c) and
// exactly the optional capabilities of package crm that c has (on itself
// or underneath, through crm.Wrapper): Noter, TaskBatcher, ContactLister,
// DealBatcher, TaskCompleter, ResponsibleBatcher. Those calls are recorded
// under the capability method's name ("CreateTasks"); when c lacks a
// capability, the crm helpers' fallbacks call the wrapper's plain methods,
// each recorded as its own call. A capability added to package crm later
// is still found through Unwrap, unrecorded, until this package forwards
// it.
//
// A nil c gives a nil Client.
func WrapCRM(c crm.Client, opts Options) crm.Client {
	if c == nil {
		return nil
	}
	in, _ := newInstruments(opts, CRMCallsMetric, "{call}", "CRM calls made, by method and status.",
		CRMDurationMetric, "Duration of CRM calls, by method and status.")
	return withCaps(&crmClient{next: c, in: in, attrs: newAttrCache(MethodKey, in.account)}, capsMask(c))
}

//go:generate go run gen_caps.go

// crmClient instruments the crm.Client methods and claims no capability;
// withCaps adds the mixins below for the capabilities the wrapped Client
// has. A mixin calls the crm helper of its name on the *crmClient, which
// finds the capability underneath through Unwrap.
type crmClient struct {
	next  crm.Client
	in    instruments
	attrs *attrCache
}

var _ crm.Wrapper = (*crmClient)(nil)

// Unwrap returns the wrapped Client.
func (w *crmClient) Unwrap() crm.Client { return w.next }

func (w *crmClient) begin(ctx context.Context, method string) call {
	return w.in.begin(ctx, "crm.", method, MethodKey, method)
}

func (w *crmClient) end(c call, method string, err error) {
	st := crmStatus(c.ctx, err)
	w.in.end(c, st, err != nil, w.attrs.option(method, st))
}

// FindContactsByPhone calls the wrapped Client and records the call.
func (w *crmClient) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	c := w.begin(ctx, "FindContactsByPhone")
	r, err := w.next.FindContactsByPhone(c.ctx, e164)
	w.end(c, "FindContactsByPhone", err)
	return r, err
}

// FindContactsByIdentity calls the wrapped Client and records the call.
func (w *crmClient) FindContactsByIdentity(ctx context.Context, id crm.Identity) ([]crm.Contact, error) {
	c := w.begin(ctx, "FindContactsByIdentity")
	r, err := w.next.FindContactsByIdentity(c.ctx, id)
	w.end(c, "FindContactsByIdentity", err)
	return r, err
}

// CreateContact calls the wrapped Client and records the call.
func (w *crmClient) CreateContact(ctx context.Context, nc crm.NewContact) (crm.Contact, error) {
	c := w.begin(ctx, "CreateContact")
	r, err := w.next.CreateContact(c.ctx, nc)
	w.end(c, "CreateContact", err)
	return r, err
}

// CreateDeal calls the wrapped Client and records the call.
func (w *crmClient) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	c := w.begin(ctx, "CreateDeal")
	deal, contact, err := w.next.CreateDeal(c.ctx, d)
	w.end(c, "CreateDeal", err)
	return deal, contact, err
}

// ListDeals calls the wrapped Client and records the call.
func (w *crmClient) ListDeals(ctx context.Context, contact crm.ContactID) ([]crm.Deal, error) {
	c := w.begin(ctx, "ListDeals")
	r, err := w.next.ListDeals(c.ctx, contact)
	w.end(c, "ListDeals", err)
	return r, err
}

// SetResponsible calls the wrapped Client and records the call.
func (w *crmClient) SetResponsible(ctx context.Context, deal crm.DealID, user crm.UserID) error {
	c := w.begin(ctx, "SetResponsible")
	err := w.next.SetResponsible(c.ctx, deal, user)
	w.end(c, "SetResponsible", err)
	return err
}

// SetContactResponsible calls the wrapped Client and records the call.
func (w *crmClient) SetContactResponsible(ctx context.Context, contact crm.ContactID, user crm.UserID) error {
	c := w.begin(ctx, "SetContactResponsible")
	err := w.next.SetContactResponsible(c.ctx, contact, user)
	w.end(c, "SetContactResponsible", err)
	return err
}

// CreateTask calls the wrapped Client and records the call.
func (w *crmClient) CreateTask(ctx context.Context, t crm.NewTask) (crm.Task, error) {
	c := w.begin(ctx, "CreateTask")
	r, err := w.next.CreateTask(c.ctx, t)
	w.end(c, "CreateTask", err)
	return r, err
}

// ListTasks calls the wrapped Client and records the call.
func (w *crmClient) ListTasks(ctx context.Context, f crm.TaskFilter) ([]crm.Task, error) {
	c := w.begin(ctx, "ListTasks")
	r, err := w.next.ListTasks(c.ctx, f)
	w.end(c, "ListTasks", err)
	return r, err
}

// CompleteTask calls the wrapped Client and records the call.
func (w *crmClient) CompleteTask(ctx context.Context, id crm.TaskID) error {
	c := w.begin(ctx, "CompleteTask")
	err := w.next.CompleteTask(c.ctx, id)
	w.end(c, "CompleteTask", err)
	return err
}

// ListUsers calls the wrapped Client and records the call.
func (w *crmClient) ListUsers(ctx context.Context) ([]crm.User, error) {
	c := w.begin(ctx, "ListUsers")
	r, err := w.next.ListUsers(c.ctx)
	w.end(c, "ListUsers", err)
	return r, err
}

// ListPipelines calls the wrapped Client and records the call.
func (w *crmClient) ListPipelines(ctx context.Context) ([]crm.Pipeline, error) {
	c := w.begin(ctx, "ListPipelines")
	r, err := w.next.ListPipelines(c.ctx)
	w.end(c, "ListPipelines", err)
	return r, err
}

// The capability mixins. Each holds the *crmClient (a named field, so its
// methods are not promoted twice) and implements one capability.
type (
	noteM      struct{ c *crmClient }
	taskBatchM struct{ c *crmClient }
	listM      struct{ c *crmClient }
	dealBatchM struct{ c *crmClient }
	completeM  struct{ c *crmClient }
	respM      struct{ c *crmClient }
)

// AddNote records the call and makes it through the wrapped Client's
// crm.Noter.
func (m noteM) AddNote(ctx context.Context, n crm.Note) error {
	c := m.c.begin(ctx, "AddNote")
	err := crm.AddNote(c.ctx, m.c, n)
	m.c.end(c, "AddNote", err)
	return err
}

// CreateTasks records the call and makes it through the wrapped Client's
// crm.TaskBatcher.
func (m taskBatchM) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	c := m.c.begin(ctx, "CreateTasks")
	r, err := crm.CreateTasks(c.ctx, m.c, ts)
	m.c.end(c, "CreateTasks", err)
	return r, err
}

// ListContacts records the call and makes it through the wrapped Client's
// crm.ContactLister.
func (m listM) ListContacts(ctx context.Context, q crm.ContactQuery) (crm.ContactPage, error) {
	c := m.c.begin(ctx, "ListContacts")
	var (
		page crm.ContactPage
		err  error
	)
	if cl, ok := capability[crm.ContactLister](m.c.next); ok {
		page, err = cl.ListContacts(c.ctx, q)
	} else { // not reached: listM is added only when the capability exists
		err = fmt.Errorf("telemetry: ListContacts: %w", errors.ErrUnsupported)
	}
	m.c.end(c, "ListContacts", err)
	return page, err
}

// CreateDeals records the call and makes it through the wrapped Client's
// crm.DealBatcher.
func (m dealBatchM) CreateDeals(ctx context.Context, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	c := m.c.begin(ctx, "CreateDeals")
	r, err := crm.CreateDeals(c.ctx, m.c, ds)
	m.c.end(c, "CreateDeals", err)
	return r, err
}

// CompleteTasks records the call and makes it through the wrapped Client's
// crm.TaskCompleter.
func (m completeM) CompleteTasks(ctx context.Context, ids []crm.TaskID) error {
	c := m.c.begin(ctx, "CompleteTasks")
	err := crm.CompleteTasks(c.ctx, m.c, ids)
	m.c.end(c, "CompleteTasks", err)
	return err
}

// SetResponsibles records the call and makes it through the wrapped
// Client's crm.ResponsibleBatcher.
func (m respM) SetResponsibles(ctx context.Context, cs []crm.ResponsibleChange) error {
	c := m.c.begin(ctx, "SetResponsibles")
	err := crm.SetResponsibles(c.ctx, m.c, cs)
	m.c.end(c, "SetResponsibles", err)
	return err
}

// capability finds T on c or on what c wraps (crm.Wrapper).
func capability[T any](c crm.Client) (T, bool) {
	for c != nil {
		if t, ok := c.(T); ok {
			return t, true
		}
		w, ok := c.(crm.Wrapper)
		if !ok {
			break
		}
		c = w.Unwrap()
	}
	var zero T
	return zero, false
}
