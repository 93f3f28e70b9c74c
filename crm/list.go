package crm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// ContactLister is an optional capability: paging through every contact of
// the account, or those updated since a time. Indexes of contacts by phone
// are built on it.
type ContactLister interface {
	// ListContacts returns one page of contacts matching q, ordered by
	// update time then ID, and the cursor of the next page ("" after the
	// last). Safe to retry.
	ListContacts(ctx context.Context, q ContactQuery) (ContactPage, error)
}

// ContactQuery selects a page of contacts for ContactLister.
type ContactQuery struct {
	// UpdatedSince, when set, keeps only the contacts updated at or after
	// it.
	UpdatedSince time.Time
	// Cursor is the Next of the previous page; "" for the first page.
	Cursor string
	// Limit is the page size; 0 means the adapter's maximum (250 on
	// amoCRM).
	Limit int
}

// ContactPage is one page of ContactLister.ListContacts.
type ContactPage struct {
	// Contacts are the page's contacts, in the order ContactLister
	// describes; empty on a page with none.
	Contacts []Contact
	// Next is the cursor of the next page; "" when this page is the last.
	Next string
}

// AllContacts iterates over every contact matching q through the
// ContactLister capability, following the pages. Without the capability
// it yields one error matching errors.ErrUnsupported. The iteration stops
// at the first error, which it yields.
func AllContacts(ctx context.Context, c Client, q ContactQuery) iter.Seq2[Contact, error] {
	return func(yield func(Contact, error) bool) {
		cl, ok := as[ContactLister](c)
		if !ok {
			yield(Contact{}, fmt.Errorf("crm: AllContacts: %w", errors.ErrUnsupported))
			return
		}
		for {
			page, err := cl.ListContacts(ctx, q)
			if err != nil {
				yield(Contact{}, err)
				return
			}
			for _, ct := range page.Contacts {
				if !yield(ct, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			if page.Next == q.Cursor {
				yield(Contact{}, fmt.Errorf("crm: AllContacts: the adapter returned the same cursor %q twice", page.Next))
				return
			}
			q.Cursor = page.Next
		}
	}
}

// DealGetter is an optional capability: reading one deal by ID, with its
// contacts, in one request. A caller that remembers a client's deal checks
// it with GetDeal instead of listing every deal of the contact.
type DealGetter interface {
	// GetDeal returns the deal. ErrNotFound: no such deal. Safe to retry.
	GetDeal(ctx context.Context, id DealID) (Deal, error)
}

// GetDeal reads one deal through the DealGetter capability. Without it,
// the error matches errors.ErrUnsupported: callers fall back to ListDeals
// of the deal's contact.
func GetDeal(ctx context.Context, c Client, id DealID) (Deal, error) {
	if g, ok := as[DealGetter](c); ok {
		return g.GetDeal(ctx, id)
	}
	return Deal{}, fmt.Errorf("crm: GetDeal: %w", errors.ErrUnsupported)
}
