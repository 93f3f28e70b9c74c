package crm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotApplied reports, inside a [*BatchError], an item that was not
// written because the request failed for other items (or an earlier
// request of the same call failed). Sending the item again is safe.
var ErrNotApplied = errors.New("crm: not applied")

// BatchError reports the outcome of a batch write item by item. The batch
// capabilities ([TaskBatcher], [DealBatcher], [TaskCompleter],
// [ResponsibleBatcher]) and the helpers [CreateDeals], [CreateTasks],
// [CompleteTasks] and [SetResponsibles] return it whenever an item failed on its own account
// (its input refused, or what it names not found), even when it is the
// only item, and whenever some items failed and others did not.
//
// Items has one entry per input item, in input order:
//
//   - nil: the item was written; its result (if the call returns results)
//     is at the same index;
//   - an error matching [ErrNotApplied] (whatever else it matches): the
//     item was not written, through no fault of its own, and may be sent
//     again as it is;
//   - an error matching [ErrUnavailable] (or the context's error): the
//     item's outcome is unknown; look in the CRM before sending it again;
//   - any other error: the item's own failure, classified with the
//     package's sentinels (for example [ErrNotFound] for a task on a deal
//     that does not exist, or an [*InvalidError] naming its fields).
//
// A batch call's error that is not a *BatchError is a failure of the
// call as a whole (a canceled context, a request refused whole: rate
// limited, unavailable, unauthorized) and holds alike for every item
// without a result (an item whose result has its ID set was written,
// as when a call stops at a failed request): when it matches
// [ErrUnavailable] or the context's error, their outcome is unknown (some,
// all or none may have been written); otherwise none of them was written.
// The helpers' one-by-one fallback stops the same way at such a failure:
// bare before anything was written, else in a *BatchError beside the
// items written, the rest [ErrNotApplied].
type BatchError struct {
	// Op is the batch operation, e.g. "CreateDeals".
	Op string
	// Items holds one error per input item; nil for the items written.
	Items []error
}

// Error implements the error interface. It names the failed items by
// index and counts those not applied.
func (e *BatchError) Error() string {
	var b strings.Builder
	b.WriteString("crm: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	failed, skipped := 0, 0
	for _, err := range e.Items {
		switch {
		case err == nil:
		case errors.Is(err, ErrNotApplied):
			skipped++
		default:
			failed++
		}
	}
	fmt.Fprintf(&b, "%d of %d items failed", failed, len(e.Items))
	if skipped > 0 {
		fmt.Fprintf(&b, ", %d not applied", skipped)
	}
	sep := ": "
	for i, err := range e.Items {
		if err == nil || errors.Is(err, ErrNotApplied) {
			continue
		}
		b.WriteString(sep)
		b.WriteString("[" + strconv.Itoa(i) + "] " + err.Error())
		sep = "; "
	}
	return b.String()
}

// Unwrap returns the items' errors, so errors.Is and errors.As match a
// BatchError against any item's.
func (e *BatchError) Unwrap() []error {
	out := make([]error, 0, len(e.Items))
	for _, err := range e.Items {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// CreatedDeal is one result of [DealBatcher.CreateDeals]: the deal and its
// contact, as [Client.CreateDeal] returns them.
type CreatedDeal struct {
	// Deal is the created deal; zero for an item that failed.
	Deal Deal
	// Contact is the deal's contact: the existing one it was linked to,
	// or the one created with it.
	Contact Contact
}

// DealBatcher is an optional capability: creating several deals in as few
// requests as the CRM allows (amoCRM: 50 leads with their contacts per
// request). Each NewDeal is checked and created as [Client.CreateDeal]
// would; the results are in the order of ds. Partial failures are
// reported with a [*BatchError]. Not safe to retry blindly.
type DealBatcher interface {
	// CreateDeals creates every deal of ds and returns one CreatedDeal per
	// item.
	CreateDeals(ctx context.Context, ds []NewDeal) ([]CreatedDeal, error)
}

// TaskCompleter is an optional capability: marking several tasks done in
// as few requests as the CRM allows. Each ID is completed as
// [Client.CompleteTask] would (a task already done succeeds). Partial
// failures are reported with a [*BatchError]. Safe to retry.
type TaskCompleter interface {
	// CompleteTasks marks every task of ids done. ErrNotFound (for that
	// item, in a *BatchError): no such task.
	CompleteTasks(ctx context.Context, ids []TaskID) error
}

// ResponsibleChange is one item of [ResponsibleBatcher.SetResponsibles]:
// make User responsible for Deal and for each of the deal's contacts.
type ResponsibleChange struct {
	// Deal is the deal to change; it must exist (else ErrNotFound for
	// the item).
	Deal DealID
	// User is the user to make responsible; it must exist (else
	// ErrNotFound for the item).
	User UserID
}

// ResponsibleBatcher is an optional capability: changing the responsible
// user of several deals (and their contacts) in as few requests as the CRM
// allows. Each change is made as [Client.SetResponsible] would; a deal
// named twice is changed in input order, the last change winning. Partial
// failures are reported with a [*BatchError]. Safe to retry.
type ResponsibleBatcher interface {
	// SetResponsibles makes every change of cs.
	SetResponsibles(ctx context.Context, cs []ResponsibleChange) error
}

// CreateDeals creates ds through the DealBatcher capability, or one by one
// with CreateDeal. Results are in the order of ds; when some items fail,
// the error is a [*BatchError] and the failed items' results are zero.
func CreateDeals(ctx context.Context, c Client, ds []NewDeal) ([]CreatedDeal, error) {
	if db, ok := as[DealBatcher](c); ok {
		return db.CreateDeals(ctx, ds)
	}
	out := make([]CreatedDeal, len(ds))
	return out, eachItem(ctx, "CreateDeals", len(ds), func(i int) (err error) {
		out[i].Deal, out[i].Contact, err = c.CreateDeal(ctx, ds[i])
		return err
	})
}

// CompleteTasks completes ids through the TaskCompleter capability, or one
// by one with CompleteTask. When some items fail, the error is a
// [*BatchError].
func CompleteTasks(ctx context.Context, c Client, ids []TaskID) error {
	if tc, ok := as[TaskCompleter](c); ok {
		return tc.CompleteTasks(ctx, ids)
	}
	return eachItem(ctx, "CompleteTasks", len(ids), func(i int) error {
		return c.CompleteTask(ctx, ids[i])
	})
}

// SetResponsibles makes the changes through the ResponsibleBatcher
// capability, or one by one with SetResponsible. When some items fail, the
// error is a [*BatchError].
func SetResponsibles(ctx context.Context, c Client, cs []ResponsibleChange) error {
	if rb, ok := as[ResponsibleBatcher](c); ok {
		return rb.SetResponsibles(ctx, cs)
	}
	return eachItem(ctx, "SetResponsibles", len(cs), func(i int) error {
		return c.SetResponsible(ctx, cs[i].Deal, cs[i].User)
	})
}

// eachItem runs do for every item and gathers the items' own failures
// (input refused, something not found, a conflict) in a *BatchError, as
// the batch capabilities report them. A failure of the CRM as a whole
// (unavailable, rate limited, unauthorized, the context done) stops the
// call, as it stops a batcher's request: before any item was written it
// is returned bare; after, the items not yet tried are reported
// ErrNotApplied beside it.
func eachItem(ctx context.Context, op string, n int, do func(i int) error) error {
	var items []error
	fail := func(i int, err error) {
		if items == nil {
			items = make([]error, n)
		}
		items[i] = err
	}
	for i := range n {
		err := ctx.Err()
		if err == nil {
			err = do(i)
			if err == nil || itemOwn(err) {
				if err != nil {
					fail(i, err)
				}
				continue
			}
		}
		if i == 0 {
			return err
		}
		fail(i, err)
		for j := i + 1; j < n; j++ {
			fail(j, fmt.Errorf("crm: %s: %w: %w", op, ErrNotApplied, err))
		}
		break
	}
	if items == nil {
		return nil
	}
	return &BatchError{Op: op, Items: items}
}

// itemOwn reports whether err is an item's own failure rather than one
// of the CRM as a whole.
func itemOwn(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict)
}
