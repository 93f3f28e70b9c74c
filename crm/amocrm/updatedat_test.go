package amocrm_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// A created entity's UpdatedAt is what amoCRM said, never the host's
// clock: amoCRM's create answers carry no updated_at (the fake answers
// as amoCRM's examples show), so it is zero. A host time, in
// nanoseconds or skewed, would make the CRM's own copy of the contact
// from the same second look older (crmindex would drop it).
func TestCreatedUpdatedAtIsNotTheHostClock(t *testing.T) {
	host := time.Date(2026, 5, 1, 12, 0, 0, 700_000_000, time.UTC)
	srv := newFake(t, amocrmtest.Options{})
	existing := srv.AddContact(amocrmtest.Contact{Name: "old", Phones: []string{"+79160000009"}})
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.Now = func() time.Time { return host } })
	ctx := t.Context()
	ct, err := c.CreateContact(ctx, crm.NewContact{Name: "n", Phones: []string{"+79160000001"}})
	if err != nil {
		t.Fatal(err)
	}
	if !ct.UpdatedAt.IsZero() {
		t.Errorf("CreateContact: UpdatedAt = %v, want zero (the answer has no updated_at)", ct.UpdatedAt)
	}
	for _, nd := range []crm.NewDeal{
		{Pipeline: "7001", Stage: "70012", NewContact: &crm.NewContact{Name: "c", Phones: []string{"+79160000002"}}},
		{Pipeline: "7001", Stage: "70012", Contact: cid(existing)},
		{Pipeline: "7001", Stage: "70011", NewContact: &crm.NewContact{Name: "u", Phones: []string{"+79160000003"}}},
	} {
		d, nc, err := c.CreateDeal(ctx, nd)
		if err != nil {
			t.Fatal(err)
		}
		if !d.UpdatedAt.IsZero() {
			t.Errorf("CreateDeal at %s (contact %q): deal UpdatedAt = %v, want zero", nd.Stage, nd.Contact, d.UpdatedAt)
		}
		if nd.NewContact != nil && !nc.UpdatedAt.IsZero() {
			t.Errorf("CreateDeal at %s: new contact UpdatedAt = %v, want zero", nd.Stage, nc.UpdatedAt)
		}
	}
}

// When a create answer does carry updated_at, the adapter returns it (to
// the second), as the official SDK reads it when present.
func TestCreatedUpdatedAtFromTheAnswer(t *testing.T) {
	const at = 1777636800
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/hal+json")
		_, _ = w.Write([]byte(`{"_embedded":{"contacts":[{"id":42,"request_id":"0","updated_at":1777636800}]}}`))
	}))
	t.Cleanup(srv.Close)
	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL, Tokens: amocrm.StaticToken("t"), RateLimit: rate.Inf,
		Now: func() time.Time { return time.Unix(at, 0).Add(1500 * time.Millisecond) }})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.CreateContact(t.Context(), crm.NewContact{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if !ct.UpdatedAt.Equal(time.Unix(at, 0)) {
		t.Errorf("UpdatedAt = %v, want %v (the answer's updated_at)", ct.UpdatedAt, time.Unix(at, 0).UTC())
	}
}
