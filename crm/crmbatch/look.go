package crmbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmbridge/crmbridge/crm"
)

// lookTasks finds the tasks of ins among those of their deal or contact:
// same text, deadline to the second (what amoCRM keeps), and responsible
// when one was asked. The newest matching task not already given (nor in
// taken) is the item's.
func (b *Client) lookTasks(ctx context.Context, ins []crm.NewTask, taken []crm.Task) []found[crm.Task] {
	used := map[crm.TaskID]bool{}
	for _, t := range taken {
		used[t.ID] = true
	}
	out := make([]found[crm.Task], len(ins))
	lists := map[crm.TaskFilter][]crm.Task{}
	errs := map[crm.TaskFilter]error{}
	for i, nt := range ins {
		f := crm.TaskFilter{Deal: nt.Deal, Contact: nt.Contact}
		ts, seen := lists[f]
		if !seen && errs[f] == nil {
			var err error
			if ts, err = b.c.ListTasks(ctx, f); err != nil {
				errs[f] = err
			}
			// Newest first: a task the lost request wrote is newer than
			// an identical one that was there before.
			slices.SortFunc(ts, func(a, b crm.Task) int { return crm.CompareIDs(string(b.ID), string(a.ID)) })
			lists[f] = ts
		}
		if err := errs[f]; err != nil {
			out[i].err = err
			continue
		}
		for _, t := range ts {
			if !used[t.ID] && sameTask(t, nt) {
				used[t.ID] = true
				out[i] = found[crm.Task]{out: t, ok: true}
				break
			}
		}
	}
	return out
}

func sameTask(t crm.Task, nt crm.NewTask) bool {
	return t.Deal == nt.Deal && t.Contact == nt.Contact && t.Text == nt.Text &&
		t.Deadline.Unix() == nt.Deadline.Unix() &&
		(nt.Responsible == "" || t.Responsible == nt.Responsible)
}

// errCannotLook: a new contact with neither phone nor identity cannot be
// found.
var errCannotLook = errors.New("crmbatch: a new contact without phones or identities cannot be looked up")

// lookDeals finds the deals of ins among those of their contact: the
// existing one, or for a new contact those found by its phones (else its
// identities). A deal matches with the same name and pipeline, when it is
// open or at the asked stage; the newest matching deal not already given
// (nor in taken) is the item's.
func (b *Client) lookDeals(ctx context.Context, ins []crm.NewDeal, taken []crm.CreatedDeal) []found[crm.CreatedDeal] {
	used := map[crm.DealID]bool{}
	for _, d := range taken {
		used[d.Deal.ID] = true
	}
	deals := map[crm.ContactID][]crm.Deal{}
	dealsOf := func(id crm.ContactID) ([]crm.Deal, error) {
		if ds, ok := deals[id]; ok {
			return ds, nil
		}
		ds, err := b.c.ListDeals(ctx, id)
		if errors.Is(err, crm.ErrNotFound) {
			ds, err = nil, nil // the contact is gone: no deal of it
		}
		if err != nil {
			return nil, err
		}
		slices.SortFunc(ds, func(a, b crm.Deal) int { return crm.CompareIDs(string(b.ID), string(a.ID)) })
		deals[id] = ds
		return ds, nil
	}
	out := make([]found[crm.CreatedDeal], len(ins))
	for i, nd := range ins {
		contacts, err := b.contactsOf(ctx, nd)
		if err != nil {
			out[i].err = err
			continue
		}
	search:
		for _, c := range contacts {
			ds, err := dealsOf(c.ID)
			if err != nil {
				out[i].err = err
				break
			}
			for _, d := range ds {
				if !used[d.ID] && d.Name == nd.Name && d.Pipeline == nd.Pipeline && (d.Stage == nd.Stage || !d.Closed()) {
					used[d.ID] = true
					out[i] = found[crm.CreatedDeal]{out: crm.CreatedDeal{Deal: d, Contact: c}, ok: true}
					break search
				}
			}
		}
	}
	return out
}

// contactsOf returns the contacts a deal of nd may hang on: its existing
// contact (ID only), or those found by the new contact's phones, else by
// its identities.
func (b *Client) contactsOf(ctx context.Context, nd crm.NewDeal) ([]crm.Contact, error) {
	if nd.NewContact == nil {
		return []crm.Contact{{ID: nd.Contact}}, nil
	}
	nc := nd.NewContact
	if len(nc.Phones) == 0 && len(nc.Identities) == 0 {
		return nil, errCannotLook
	}
	var out []crm.Contact
	add := func(cs []crm.Contact) {
		for _, c := range cs {
			if !slices.ContainsFunc(out, func(o crm.Contact) bool { return o.ID == c.ID }) {
				out = append(out, c)
			}
		}
	}
	for _, p := range nc.Phones {
		cs, err := b.c.FindContactsByPhone(ctx, p)
		if errors.Is(err, crm.ErrInvalid) {
			continue // not a number the CRM can search: try the others
		}
		if err != nil {
			return nil, fmt.Errorf("finding the contact by phone: %w", err)
		}
		add(cs)
	}
	if len(out) == 0 {
		for _, id := range nc.Identities {
			cs, err := b.c.FindContactsByIdentity(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("finding the contact by identity: %w", err)
			}
			add(cs)
		}
	}
	return out, nil
}
