package crmbatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// Defaults of [Options].
const (
	// DefaultWindow is the least time between two batch requests of one
	// kind when Options.Window is zero: long enough that the four kinds
	// of writes together stay well under amoCRM's 7 requests per second
	// however many events arrive (up to MaxBatch items per kind and
	// window), short enough to place a new client within seconds.
	DefaultWindow = 1500 * time.Millisecond
	// DefaultMaxBatch is the most items per batch request when
	// Options.MaxBatch is zero: amoCRM's limit for leads created with
	// their contacts, and its recommended maximum for other batch writes.
	DefaultMaxBatch = 50
	// DefaultTimeout bounds each request made for a batch when
	// Options.Timeout is zero.
	DefaultTimeout = 30 * time.Second
)

// Options configure a [Client]. The zero value is ready to use: every
// field's zero means its default.
type Options struct {
	// Window is the least time between two batch requests of one kind
	// (deals, tasks, completions, responsible changes). A write waits,
	// with the writes of its kind arriving meanwhile, until Window has
	// passed since the previous request of its kind left, and at least
	// Window/20 (so that writes arriving together after a quiet spell
	// share a request). Zero or negative: DefaultWindow.
	Window time.Duration
	// MaxBatch is the most items per batch request; a batch is sent as
	// soon as it is full, whatever the window. Zero or negative:
	// DefaultMaxBatch.
	MaxBatch int
	// Timeout bounds each request the Client makes for a batch (the
	// write, the lookups after a lost answer, the resend): no caller's
	// context applies to a request made for many callers. Zero or
	// negative: DefaultTimeout.
	Timeout time.Duration
}

// Client is a crm.Client that coalesces concurrent CreateDeal, CreateTask,
// CompleteTask and SetResponsible calls into batch requests through the
// wrapped client's [crm.DealBatcher], [crm.TaskBatcher],
// [crm.TaskCompleter] and [crm.ResponsibleBatcher] capabilities (found on
// it or on what it wraps, see [crm.Wrapper]). A write whose capability is
// missing goes straight to the wrapped client, unbatched, as does every
// other method.
//
// Each caller gets its own item's result or error, as the unbatched
// method would give it:
//
//   - an item the CRM refused (a *crm.BatchError naming it) gets its own
//     error; items refused only because of others are sent again;
//   - when the CRM refuses a whole batch with an error that belongs to
//     some item (crm.ErrInvalid, crm.ErrNotFound, crm.ErrConflict)
//     without naming it, the batch is split in halves and each sent
//     again, until the items at fault are alone;
//   - when a create's outcome is unknown (crm.ErrUnavailable, a timeout,
//     a connection lost), nothing is sent again before looking: tasks are
//     looked for with ListTasks on their deal or contact (same text,
//     deadline to the second, and responsible when one was asked);
//     deals with ListDeals on their contact, found by phone (else
//     identity) for a deal with a new contact (same name and pipeline,
//     open or at the asked stage). The newest match (by crm.CompareIDs)
//     not given to another item is the item's result; an item not found
//     is sent once more, and looked for once more if that answer is lost
//     too; an item still not found then gets the unknown outcome's error
//     (the caller must look before repeating, as after an unbatched
//     call). When the lost write was not made, a matching object that was
//     there before is taken for the item's;
//   - completions and responsible changes are safe to repeat: an unknown
//     outcome is sent once more.
//
// Rate limits (crm.ErrRateLimited) and authorization failures are
// returned to every caller of the batch, as the CRM refused the whole
// request. A deal found after a lost answer for an existing contact is
// returned with a Contact holding only its ID.
//
// A caller whose context ends before its item is sent withdraws the item:
// nothing is written and the error matches both crm.ErrNotApplied and the
// context's error. Once sent, an item is not withdrawn: the caller gets
// the context's error and the item's outcome is the batch's, unknown to
// the caller, as for a cancelled unbatched call.
//
// A Client starts no goroutine while idle: a timer waits for the window
// and a goroutine runs each batch in flight. Close sends what is pending
// and waits for the batches in flight. Client is safe for concurrent use.
type Client struct {
	c       crm.Client
	window  time.Duration
	max     int
	timeout time.Duration
	wg      sync.WaitGroup

	deals     *queue[crm.NewDeal, crm.CreatedDeal]
	tasks     *queue[crm.NewTask, crm.Task]
	completes *queue[crm.TaskID, struct{}]
	resps     *queue[crm.ResponsibleChange, struct{}]
}

var (
	_ crm.Client  = (*Client)(nil)
	_ crm.Wrapper = (*Client)(nil)
)

// New returns a Client batching c's writes. A nil opt means the zero
// Options. Close it to send what is pending when the host stops.
func New(c crm.Client, opt *Options) *Client {
	var o Options
	if opt != nil {
		o = *opt
	}
	b := &Client{c: c, window: o.Window, max: o.MaxBatch, timeout: o.Timeout}
	if b.window <= 0 {
		b.window = DefaultWindow
	}
	if b.max <= 0 {
		b.max = DefaultMaxBatch
	}
	if b.timeout <= 0 {
		b.timeout = DefaultTimeout
	}
	if db, ok := capability[crm.DealBatcher](c); ok {
		b.deals = &queue[crm.NewDeal, crm.CreatedDeal]{b: b, op: "CreateDeal",
			send: db.CreateDeals, ok: func(d crm.CreatedDeal) bool { return d.Deal.ID != "" },
			look: b.lookDeals}
	}
	if tb, ok := capability[crm.TaskBatcher](c); ok {
		b.tasks = &queue[crm.NewTask, crm.Task]{b: b, op: "CreateTask",
			send: tb.CreateTasks, ok: func(t crm.Task) bool { return t.ID != "" },
			look: b.lookTasks}
	}
	if tc, ok := capability[crm.TaskCompleter](c); ok {
		b.completes = &queue[crm.TaskID, struct{}]{b: b, op: "CompleteTask", send: noResults(dedupe(tc.CompleteTasks))}
	}
	if rb, ok := capability[crm.ResponsibleBatcher](c); ok {
		b.resps = &queue[crm.ResponsibleChange, struct{}]{b: b, op: "SetResponsible", send: noResults(rb.SetResponsibles)}
	}
	return b
}

// capability finds T on c or on what it wraps, as package crm's helpers do.
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

// noResults adapts a batch call without results.
func noResults[In any](f func(context.Context, []In) error) func(context.Context, []In) ([]struct{}, error) {
	return func(ctx context.Context, ins []In) ([]struct{}, error) {
		return make([]struct{}, len(ins)), f(ctx, ins)
	}
}

// dedupe sends each task ID once and gives its outcome to every item
// naming it.
func dedupe(f func(context.Context, []crm.TaskID) error) func(context.Context, []crm.TaskID) error {
	return func(ctx context.Context, ids []crm.TaskID) error {
		first := make(map[crm.TaskID]int, len(ids))
		var uniq []crm.TaskID
		for _, id := range ids {
			if _, ok := first[id]; !ok {
				first[id] = len(uniq)
				uniq = append(uniq, id)
			}
		}
		if len(uniq) == len(ids) {
			return f(ctx, ids)
		}
		err := f(ctx, uniq)
		var be *crm.BatchError
		if !errors.As(err, &be) || len(be.Items) != len(uniq) {
			return err
		}
		items := make([]error, len(ids))
		for i, id := range ids {
			items[i] = be.Items[first[id]]
		}
		return &crm.BatchError{Op: be.Op, Items: items}
	}
}

// Unwrap returns the wrapped client.
func (b *Client) Unwrap() crm.Client { return b.c }

// Flush sends every pending write now, without waiting for the window. It
// does not wait for the answers.
func (b *Client) Flush() {
	b.deals.flush(false)
	b.tasks.flush(false)
	b.completes.flush(false)
	b.resps.flush(false)
}

// Close sends every pending write and waits until every batch in flight
// is answered. Writes after Close go to the wrapped client unbatched.
// Close always returns nil.
func (b *Client) Close() error {
	b.deals.flush(true)
	b.tasks.flush(true)
	b.completes.flush(true)
	b.resps.flush(true)
	b.wg.Wait()
	return nil
}

// CreateDeal implements crm.Client, batched through crm.DealBatcher.
func (b *Client) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	if b.deals == nil {
		return b.c.CreateDeal(ctx, d)
	}
	out, err := b.deals.do(ctx, d, func(ctx context.Context, d crm.NewDeal) (crm.CreatedDeal, error) {
		deal, contact, err := b.c.CreateDeal(ctx, d)
		return crm.CreatedDeal{Deal: deal, Contact: contact}, err
	})
	return out.Deal, out.Contact, err
}

// CreateTask implements crm.Client, batched through crm.TaskBatcher.
func (b *Client) CreateTask(ctx context.Context, t crm.NewTask) (crm.Task, error) {
	if b.tasks == nil {
		return b.c.CreateTask(ctx, t)
	}
	return b.tasks.do(ctx, t, b.c.CreateTask)
}

// CompleteTask implements crm.Client, batched through crm.TaskCompleter.
func (b *Client) CompleteTask(ctx context.Context, id crm.TaskID) error {
	if b.completes == nil {
		return b.c.CompleteTask(ctx, id)
	}
	_, err := b.completes.do(ctx, id, func(ctx context.Context, id crm.TaskID) (struct{}, error) {
		return struct{}{}, b.c.CompleteTask(ctx, id)
	})
	return err
}

// SetResponsible implements crm.Client, batched through
// crm.ResponsibleBatcher.
func (b *Client) SetResponsible(ctx context.Context, deal crm.DealID, user crm.UserID) error {
	if b.resps == nil {
		return b.c.SetResponsible(ctx, deal, user)
	}
	_, err := b.resps.do(ctx, crm.ResponsibleChange{Deal: deal, User: user}, func(ctx context.Context, ch crm.ResponsibleChange) (struct{}, error) {
		return struct{}{}, b.c.SetResponsible(ctx, ch.Deal, ch.User)
	})
	return err
}

// FindContactsByPhone implements crm.Client, unbatched.
func (b *Client) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	return b.c.FindContactsByPhone(ctx, e164)
}

// FindContactsByIdentity implements crm.Client, unbatched.
func (b *Client) FindContactsByIdentity(ctx context.Context, id crm.Identity) ([]crm.Contact, error) {
	return b.c.FindContactsByIdentity(ctx, id)
}

// CreateContact implements crm.Client, unbatched.
func (b *Client) CreateContact(ctx context.Context, c crm.NewContact) (crm.Contact, error) {
	return b.c.CreateContact(ctx, c)
}

// ListDeals implements crm.Client, unbatched.
func (b *Client) ListDeals(ctx context.Context, contact crm.ContactID) ([]crm.Deal, error) {
	return b.c.ListDeals(ctx, contact)
}

// SetContactResponsible implements crm.Client, unbatched.
func (b *Client) SetContactResponsible(ctx context.Context, contact crm.ContactID, user crm.UserID) error {
	return b.c.SetContactResponsible(ctx, contact, user)
}

// ListTasks implements crm.Client, unbatched.
func (b *Client) ListTasks(ctx context.Context, f crm.TaskFilter) ([]crm.Task, error) {
	return b.c.ListTasks(ctx, f)
}

// ListUsers implements crm.Client, unbatched.
func (b *Client) ListUsers(ctx context.Context) ([]crm.User, error) {
	return b.c.ListUsers(ctx)
}

// ListPipelines implements crm.Client, unbatched.
func (b *Client) ListPipelines(ctx context.Context) ([]crm.Pipeline, error) {
	return b.c.ListPipelines(ctx)
}
