package crmbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// maxRounds bounds the requests one batch makes for its items: the first,
// and resends of items not applied or not found after a lost answer.
const maxRounds = 4

// lingerDiv: a write arriving after a quiet window waits Window/lingerDiv
// for the writes arriving with it (the callers of one batch of deals
// writing their tasks) to share its request.
const lingerDiv = 20

// queue batches the writes of one kind.
type queue[In, Out any] struct {
	b  *Client
	op string
	// send is the batch capability.
	send func(context.Context, []In) ([]Out, error)
	// ok reports whether a result says its item was written; nil when
	// the capability returns no results.
	ok func(Out) bool
	// look finds in the CRM the items whose write's outcome is unknown;
	// nil when repeating a write is safe.
	look func(ctx context.Context, ins []In, taken []Out) []found[Out]

	mu      sync.Mutex
	pending []*call[In, Out]
	timer   *time.Timer
	gen     uint64    // which timer is current
	last    time.Time // when the last batch left
	closed  bool
}

// call is one caller's item.
type call[In, Out any] struct {
	in   In
	done chan struct{}
	out  Out
	err  error
}

// found is what a look learned of one item.
type found[Out any] struct {
	out Out
	ok  bool  // found: out is the item's result
	err error // the look failed: the outcome stays unknown
}

// do queues in and waits for its outcome; after Close it calls direct.
func (q *queue[In, Out]) do(ctx context.Context, in In, direct func(context.Context, In) (Out, error)) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("crmbatch: %s: %w", q.op, err)
	}
	cl := &call[In, Out]{in: in, done: make(chan struct{})}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return direct(ctx, in)
	}
	q.pending = append(q.pending, cl)
	switch {
	case len(q.pending) >= q.b.max:
		q.flushLocked()
	case q.timer == nil:
		wait := max(q.b.window-time.Since(q.last), q.b.window/lingerDiv)
		gen := q.gen
		q.timer = time.AfterFunc(wait, func() { q.fire(gen) })
	}
	q.mu.Unlock()

	select {
	case <-cl.done:
		return cl.out, cl.err
	case <-ctx.Done():
	}
	q.mu.Lock()
	if i := slices.Index(q.pending, cl); i >= 0 {
		q.pending = slices.Delete(q.pending, i, i+1)
		if len(q.pending) == 0 {
			q.stopTimerLocked()
		}
		q.mu.Unlock()
		return zero, fmt.Errorf("crmbatch: %s withdrawn before it was sent: %w: %w", q.op, crm.ErrNotApplied, ctx.Err())
	}
	q.mu.Unlock()
	return zero, fmt.Errorf("crmbatch: %s sent, its outcome unknown to the caller: %w", q.op, ctx.Err())
}

// fire sends the pending items when the window closes.
func (q *queue[In, Out]) fire(gen uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if gen != q.gen {
		return // stopped, or superseded
	}
	q.timer = nil
	if len(q.pending) > 0 {
		q.flushLocked()
	}
}

// flush sends the pending items now; close also stops the batching.
func (q *queue[In, Out]) flush(close bool) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = q.closed || close
	if len(q.pending) > 0 {
		q.flushLocked()
	}
}

func (q *queue[In, Out]) stopTimerLocked() {
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	q.gen++
}

// flushLocked starts a batch of the pending items.
func (q *queue[In, Out]) flushLocked() {
	batch := q.pending
	q.pending = nil
	q.stopTimerLocked()
	q.last = time.Now()
	q.b.wg.Add(1)
	go q.run(batch)
}

// run writes a batch and answers each caller.
func (q *queue[In, Out]) run(batch []*call[In, Out]) {
	defer q.b.wg.Done()
	ins := make([]In, len(batch))
	for i, cl := range batch {
		ins[i] = cl.in
	}
	outs, errs := q.exec(ins)
	for i, cl := range batch {
		cl.out, cl.err = outs[i], errs[i]
		close(cl.done)
	}
}

// exec writes ins and returns each item's outcome: sending again the
// items not applied, and for those whose outcome is unknown looking in the
// CRM, then sending once more those not found (and looking once more if
// that answer is lost too).
func (q *queue[In, Out]) exec(ins []In) ([]Out, []error) {
	n := len(ins)
	outs, errs := make([]Out, n), make([]error, n)
	resent := make([]bool, n) // sent again after an unknown outcome
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	for round := 0; len(todo) > 0 && round < maxRounds; round++ {
		o, e := q.split(pick(ins, todo))
		var next, unknown []int
		for j, i := range todo {
			outs[i], errs[i] = o[j], e[j]
			switch err := e[j]; {
			case err == nil:
			case errors.Is(err, crm.ErrNotApplied):
				next = append(next, i)
			case !unknownOutcome(err):
			case q.look != nil:
				unknown = append(unknown, i)
			case !resent[i]:
				resent[i] = true
				next = append(next, i)
			}
		}
		if len(unknown) > 0 {
			var taken []Out
			for i := range n {
				if errs[i] == nil {
					taken = append(taken, outs[i])
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), q.b.timeout)
			fs := q.look(ctx, pick(ins, unknown), taken)
			cancel()
			for j, i := range unknown {
				switch f := fs[j]; {
				case f.ok:
					outs[i], errs[i] = f.out, nil
				case f.err != nil:
					errs[i] = fmt.Errorf("%w (looking for the %s's outcome failed: %v)", errs[i], q.op, f.err)
				case !resent[i]:
					resent[i] = true
					next = append(next, i)
				}
			}
		}
		todo = next
	}
	return outs, errs
}

// split sends ins in one request; when the CRM refuses it as a whole for
// a reason that belongs to some item, it sends each half again, so that
// each item gets its own answer.
func (q *queue[In, Out]) split(ins []In) ([]Out, []error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.b.timeout)
	raw, err := q.send(ctx, ins)
	cancel()
	outs, errs, whole := q.perItem(len(ins), raw, err)
	if !whole || !itemFault(err) {
		return outs, errs
	}
	var rest []int
	for i, e := range errs {
		if e != nil {
			rest = append(rest, i)
		}
	}
	if len(rest) < 2 {
		return outs, errs
	}
	h := len(rest) / 2
	for _, part := range [][]int{rest[:h], rest[h:]} {
		o, e := q.split(pick(ins, part))
		for j, i := range part {
			outs[i], errs[i] = o[j], e[j]
		}
	}
	return outs, errs
}

// perItem reads a batch call's answer item by item (see crm.BatchError).
// whole reports an error that held for every item not written.
func (q *queue[In, Out]) perItem(n int, raw []Out, err error) (outs []Out, errs []error, whole bool) {
	outs, errs = make([]Out, n), make([]error, n)
	copy(outs, raw)
	written := func(i int) bool { return q.ok == nil || (i < len(raw) && q.ok(raw[i])) }
	missing := func(i int) error {
		return fmt.Errorf("crmbatch: %s: the CRM answered item %d of %d without a result: %w", q.op, i, n, crm.ErrUnavailable)
	}
	var be *crm.BatchError
	switch {
	case err == nil:
		for i := range n {
			if !written(i) {
				errs[i] = missing(i)
			}
		}
	case errors.As(err, &be) && len(be.Items) == n:
		for i, e := range be.Items {
			if e == nil && !written(i) {
				e = missing(i)
			}
			errs[i] = e
		}
	default:
		whole = true
		for i := range n {
			if q.ok == nil || !written(i) {
				errs[i] = err
			}
		}
	}
	return outs, errs, whole
}

// unknownOutcome reports whether err leaves open whether the write was
// made: an outage, a timeout, or a failure no sentinel classifies.
func unknownOutcome(err error) bool {
	if errors.Is(err, crm.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	for _, s := range []error{crm.ErrNotFound, crm.ErrConflict, crm.ErrRateLimited, crm.ErrUnauthorized, crm.ErrInvalid, crm.ErrNotApplied} {
		if errors.Is(err, s) {
			return false
		}
	}
	return true
}

// itemFault reports whether a whole batch's refusal may belong to some of
// its items only.
func itemFault(err error) bool {
	return !unknownOutcome(err) &&
		(errors.Is(err, crm.ErrInvalid) || errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrConflict))
}

func pick[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = s[i]
	}
	return out
}
