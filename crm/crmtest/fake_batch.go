package crmtest

import (
	"context"
	"fmt"
	"slices"

	"github.com/crmbridge/crmbridge/crm"
)

// Method names of the batch capabilities, as counted by [Fake.Calls] and
// accepted by [Fake.FailNext]. A batch call counts one call per request
// the CRM would need: one per 50 items.
const (
	MethodCreateDeals     = "CreateDeals"
	MethodCompleteTasks   = "CompleteTasks"
	MethodSetResponsibles = "SetResponsibles"
)

var (
	_ crm.DealBatcher        = (*Fake)(nil)
	_ crm.TaskCompleter      = (*Fake)(nil)
	_ crm.ResponsibleBatcher = (*Fake)(nil)
)

// batchLimit is the most items one request carries. amoCRM takes at most
// 50 leads per POST /api/v4/leads/complex
// (https://developers.kommo.com/reference/complex-leads, "You can add no
// more than 50 leads per request") and recommends no more than 50
// entities per other batch write (amocrm/amocrm-api-php README).
const batchLimit = 50

// batch runs the requests of a batch call. pre checks an item before any
// request, as the amoCRM adapter checks items before sending (f.mu held;
// nil: no such checks): an item it refuses gets that error alone and is
// not sent, the others go on (crm/amocrm/batch.go checkItems and
// createDeals). The remaining items go in chunks of batchLimit, each
// counted as one call of method and subject to its faults and latency.
// check validates an item as the CRM would on receiving it (f.mu held);
// apply writes a checked item (f.mu held). A chunk with an item check
// refuses is written not at all: amoCRM answers a request with invalid
// items with 400 "Request validation failed" and a validation-errors
// list keyed by each item's request_id (amocrm/amocrm-api-php issues #12
// and #115); whether it writes the request's valid items is not
// documented, and the Fake writes none. Later chunks are still sent, as
// the amoCRM adapter goes on after a request refused naming its items
// (crm/amocrm/batch.go spread and chunks); after a request that failed
// as a whole (an injected fault, the context) they are not applied.
func (f *Fake) batch(ctx context.Context, method string, n int, pre, check func(i int) error, apply func(i int)) error {
	items := make([]error, n)
	failed := false
	live := make([]int, 0, n)
	if pre != nil && n > 0 {
		if ctx.Err() != nil {
			return f.enter(ctx, method) // counts the call and reports ctx's error
		}
		f.mu.Lock()
		for i := range n {
			items[i] = pre(i)
			failed = failed || items[i] != nil
		}
		f.mu.Unlock()
	}
	for i := range n {
		if items[i] == nil {
			live = append(live, i)
		}
	}
	stopped := false
	for start := 0; start < len(live); start += batchLimit {
		part := live[start:min(start+batchLimit, len(live))]
		if stopped {
			for _, i := range part {
				items[i] = fmt.Errorf("crmtest: %s: %w (an earlier request failed)", method, crm.ErrNotApplied)
			}
			continue
		}
		if err := f.enter(ctx, method); err != nil {
			if start == 0 && !failed {
				return err
			}
			for _, i := range part {
				items[i] = err
			}
			failed, stopped = true, true
			continue
		}
		refused := false
		for _, i := range part {
			items[i] = check(i)
			refused = refused || items[i] != nil
		}
		for _, i := range part {
			switch {
			case !refused:
				apply(i)
			case items[i] == nil:
				items[i] = fmt.Errorf("crmtest: %s: %w (another item of the request was refused)", method, crm.ErrNotApplied)
			}
		}
		f.mu.Unlock()
		failed = failed || refused
	}
	if !failed {
		return nil
	}
	return &crm.BatchError{Op: method, Items: items}
}

// CreateDeals implements crm.DealBatcher: each deal is checked as
// CreateDeal checks it, then created with its new contact, in the order
// of ds. A deal checkNewDeal refuses is not sent and fails alone, as the
// amoCRM adapter refuses it; any other refusal refuses its request.
func (f *Fake) CreateDeals(ctx context.Context, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	out := make([]crm.CreatedDeal, len(ds))
	kinds := make([]crm.StageKind, len(ds))
	err := f.batch(ctx, MethodCreateDeals, len(ds),
		func(i int) error {
			if fes := checkNewDeal(ds[i], dealContact(ds[i]), itemPrefix(true, i)); len(fes) > 0 {
				return invalid(MethodCreateDeals, fes...)
			}
			return nil
		},
		func(i int) (err error) { kinds[i], err = f.checkDeal(MethodCreateDeals, ds[i]); return err },
		func(i int) { out[i].Deal, out[i].Contact = f.applyDeal(ds[i], kinds[i]) })
	if err != nil && !isBatch(err) {
		return nil, err
	}
	return out, err
}

// checkDeal looks up what nd names, once checkNewDeal accepted it: its
// pipeline and stage, its existing contact and its users. It returns the
// kind of the stage. It runs with f.mu held.
//
// The amoCRM adapter finds an unknown pipeline, stage or contact before
// sending (in the pipelines it read; by reading the contact) and refuses
// that deal alone in a batch, where the Fake refuses its request: both
// are what crm.BatchError allows.
func (f *Fake) checkDeal(op string, nd crm.NewDeal) (crm.StageKind, error) {
	pi := slices.IndexFunc(f.pipelines, func(p crm.Pipeline) bool { return p.ID == nd.Pipeline })
	if pi < 0 {
		return 0, fmt.Errorf("crmtest: %s: pipeline %q: %w", op, nd.Pipeline, crm.ErrNotFound)
	}
	st, ok := f.pipelines[pi].Stage(nd.Stage)
	if !ok {
		return 0, fmt.Errorf("crmtest: %s: stage %q of pipeline %q: %w", op, nd.Stage, nd.Pipeline, crm.ErrNotFound)
	}
	if nd.Contact != "" {
		if _, ok := f.contacts[nd.Contact]; !ok {
			return 0, fmt.Errorf("crmtest: %s: contact %q: %w", op, nd.Contact, crm.ErrNotFound)
		}
	}
	if err := f.checkUser(op, nd.Responsible, true); err != nil {
		return 0, err
	}
	if nc := dealContact(nd); nc != nil {
		if err := f.checkUser(op, nc.Responsible, true); err != nil {
			return 0, err
		}
	}
	return st.Kind, nil
}

// applyDeal creates a deal checkNewDeal and checkDeal accepted, with
// its new contact (see dealContact). It runs with f.mu held.
func (f *Fake) applyDeal(nd crm.NewDeal, kind crm.StageKind) (crm.Deal, crm.Contact) {
	var c *crm.Contact
	if nc := dealContact(nd); nc != nil {
		c = f.contacts[f.createContact(*nc).ID]
	} else {
		c = f.contacts[nd.Contact]
	}
	d := crm.Deal{
		ID:          crm.DealID(f.nextID()),
		Name:        nd.Name,
		Pipeline:    nd.Pipeline,
		Stage:       nd.Stage,
		Status:      statusOf(kind),
		Responsible: nd.Responsible,
		Contacts:    []crm.ContactID{c.ID},
		UpdatedAt:   f.stamp(),
	}
	f.deals[d.ID] = &d
	return cloneDeal(d), cloneContact(*c)
}

// CompleteTasks implements crm.TaskCompleter: amoCRM completes tasks with
// PATCH /api/v4/tasks, an array of {"id", "is_completed", "result"}
// (https://www.amocrm.ru/developers/content/crm_platform/tasks-api). An
// unknown ID is the item's crm.ErrNotFound; a task already done succeeds.
func (f *Fake) CompleteTasks(ctx context.Context, ids []crm.TaskID) error {
	return f.batch(ctx, MethodCompleteTasks, len(ids), nil,
		func(i int) error {
			if _, ok := f.tasks[ids[i]]; !ok {
				return fmt.Errorf("crmtest: CompleteTasks: task %q: %w", ids[i], crm.ErrNotFound)
			}
			return nil
		},
		func(i int) { f.tasks[ids[i]].Done = true })
}

// SetResponsibles implements crm.ResponsibleBatcher: each change as
// SetResponsible makes it, in input order. An unknown deal or user is the
// item's crm.ErrNotFound.
func (f *Fake) SetResponsibles(ctx context.Context, cs []crm.ResponsibleChange) error {
	return f.batch(ctx, MethodSetResponsibles, len(cs), nil,
		func(i int) error {
			if _, ok := f.deals[cs[i].Deal]; !ok {
				return fmt.Errorf("crmtest: SetResponsibles: deal %q: %w", cs[i].Deal, crm.ErrNotFound)
			}
			return f.checkUser(MethodSetResponsibles, cs[i].User, false)
		},
		func(i int) {
			d, now := f.deals[cs[i].Deal], f.stamp()
			d.Responsible, d.UpdatedAt = cs[i].User, now
			for _, id := range d.Contacts {
				if c, ok := f.contacts[id]; ok {
					c.Responsible, c.UpdatedAt = cs[i].User, now
				}
			}
		})
}

func isBatch(err error) bool {
	_, ok := err.(*crm.BatchError)
	return ok
}
