package amocrm

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// ListContacts implements crm.ContactLister: GET /api/v4/contacts pages
// of up to 250, in ID order (order[id]=asc). Pages follow amoCRM's page
// numbers, and an ID order keeps them stable while contacts change: a
// contact updated during a walk is never skipped (it may be returned
// twice). The contacts of the page are sorted by update time, then ID.
//
// UpdatedSince is sent as filter[updated_at][from]/[to] on accounts with
// API filtering (see [Client.ListDeals]); on the others every contact is
// read and the older ones are dropped here, so the result is the same at
// a higher cost. Contacts of Unsorted entries not yet accepted are not
// listed by amoCRM. A Cursor not returned by this method: crm.ErrInvalid.
// Safe to retry; retried.
func (c *Client) ListContacts(ctx context.Context, q crm.ContactQuery) (crm.ContactPage, error) {
	const op = "ListContacts"
	if err := ctx.Err(); err != nil {
		return crm.ContactPage{}, canceled(op, err)
	}
	if q.Limit < 0 {
		return crm.ContactPage{}, invalidInput(op, crm.FieldError{Path: "Limit", Code: "InvalidRange", Detail: "must not be negative"})
	}
	limit := q.Limit
	if limit == 0 || limit > pageLimit {
		limit = pageLimit
	}
	page, filtered := 1, false
	if q.Cursor != "" {
		mode, num, ok := strings.Cut(q.Cursor, ":")
		n, err := strconv.Atoi(num)
		if !ok || (mode != "f" && mode != "a") || err != nil || n < 2 {
			return crm.ContactPage{}, invalidInput(op, crm.FieldError{Path: "Cursor", Code: "Invalid", Detail: "not a cursor ListContacts returned"})
		}
		page, filtered = n, mode == "f"
	} else if !q.UpdatedSince.IsZero() {
		on, err := c.apiFilter(ctx, op)
		if err != nil {
			return crm.ContactPage{}, err
		}
		filtered = on
	}
	v := url.Values{"order[id]": {"asc"}, "page": {strconv.Itoa(page)}, "limit": {strconv.Itoa(limit)}}
	if filtered {
		v.Set("filter[updated_at][from]", strconv.FormatInt(q.UpdatedSince.Unix(), 10))
		v.Set("filter[updated_at][to]", strconv.FormatInt(c.now().Add(24*time.Hour).Unix(), 10))
	}
	var resp embedded[contactIn]
	status, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/api/v4/contacts", query: v, safe: true}, &resp)
	if err != nil {
		return crm.ContactPage{}, err
	}
	out := crm.ContactPage{Contacts: []crm.Contact{}}
	if status == http.StatusNoContent {
		return out, nil
	}
	items := resp.Embedded["contacts"]
	for _, in := range items {
		ct := c.toContact(in)
		if !q.UpdatedSince.IsZero() && ct.UpdatedAt.Before(q.UpdatedSince.Truncate(time.Second)) {
			continue
		}
		out.Contacts = append(out.Contacts, ct)
	}
	slices.SortStableFunc(out.Contacts, func(a, b crm.Contact) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return crm.CompareIDs(string(a.ID), string(b.ID))
	})
	if resp.Links.Next != nil && len(items) > 0 {
		mode := "a"
		if filtered {
			mode = "f"
		}
		out.Next = mode + ":" + strconv.Itoa(page+1)
	}
	return out, nil
}
