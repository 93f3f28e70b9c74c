package crmindex

import (
	"context"
	"fmt"

	"github.com/crmbridge/crmbridge/crm"
)

// Pass reports one Sync or CatchUp.
type Pass struct {
	// Full is true for a Sync (a CatchUp before the first Sync is one).
	Full bool
	// Contacts is the number of contacts read from the CRM.
	Contacts int
}

// Sync rebuilds the index from every contact of the account, paged
// through the wrapped client's crm.ContactLister capability
// (Options.PageSize per page). Lookups keep using the previous index
// while it runs; Apply and Remove calls made meanwhile are kept. On error
// the previous index stays. Without the capability the error matches
// errors.ErrUnsupported. Only one Sync or CatchUp runs at a time. While
// Sync runs, the previous index and the one being built are both in
// memory.
func (x *Index) Sync(ctx context.Context) (Pass, error) {
	x.passMu.Lock()
	defer x.passMu.Unlock()
	return x.sync(ctx)
}

func (x *Index) sync(ctx context.Context) (Pass, error) {
	start := x.opt.Now()
	x.mu.Lock()
	x.building = true
	if x.st != nil {
		x.log = nil // changes before this Sync are in what it reads
	}
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.building = false
		if x.st != nil {
			x.log = nil
		}
		x.mu.Unlock()
	}()
	var st *state
	pass := Pass{Full: true}
	for c, err := range crm.AllContacts(ctx, x.client, crm.ContactQuery{Limit: x.opt.PageSize}) {
		if err != nil {
			return pass, fmt.Errorf("crmindex: Sync after %d contacts: %w", pass.Contacts, err)
		}
		if st == nil {
			st = newState(x.opt.PageSize)
		}
		c = clone(c)
		p, a := keys(c, x.opt.Phone)
		st.apply(change{c: c, prim: p, alt: a, at: start})
		pass.Contacts++
	}
	if st == nil {
		st = newState(0)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ch := range x.log {
		st.apply(ch)
	}
	st.prune(start.Add(-x.opt.Overlap))
	x.st, x.log = st, nil
	x.since, x.syncedAt = start, start
	return pass, nil
}

// CatchUp reads the contacts updated since the start of the previous
// successful pass, less Options.Overlap, and applies them: the periodic
// safety net under the webhooks. Before the first successful Sync it runs
// one. On error the contacts read so far stay applied and the next
// CatchUp asks for the same period again. Deletions are not seen by
// CatchUp (crm.ContactLister lists the contacts that exist): they come
// from Remove, or from an occasional Sync.
func (x *Index) CatchUp(ctx context.Context) (Pass, error) {
	x.passMu.Lock()
	defer x.passMu.Unlock()
	x.mu.RLock()
	synced, since := x.st != nil, x.since
	x.mu.RUnlock()
	if !synced {
		return x.sync(ctx)
	}
	start := x.opt.Now()
	var pass Pass
	q := crm.ContactQuery{UpdatedSince: since.Add(-x.opt.Overlap), Limit: x.opt.PageSize}
	for c, err := range crm.AllContacts(ctx, x.client, q) {
		if err != nil {
			return pass, fmt.Errorf("crmindex: CatchUp after %d contacts: %w", pass.Contacts, err)
		}
		x.Apply(c)
		pass.Contacts++
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.since = start
	x.st.prune(start.Add(-x.opt.Overlap))
	return pass, nil
}
