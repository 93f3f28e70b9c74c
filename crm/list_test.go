package crm_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

func TestAllContactsPagesOnceEach(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := crmtest.NewFake(&crmtest.Options{Now: func() time.Time { return now }})
	const n = 523
	for i := range n {
		now = now.Add(time.Second * time.Duration(i%3)) // ties in update time too
		f.AddContact(crm.Contact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("+7999%07d", i)}})
	}
	seen := map[crm.ContactID]int{}
	for c, err := range crm.AllContacts(t.Context(), f, crm.ContactQuery{Limit: 50}) {
		if err != nil {
			t.Fatalf("AllContacts: %v", err)
		}
		seen[c.ID]++
	}
	if len(seen) != n {
		t.Errorf("AllContacts visited %d contacts; want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("AllContacts visited %s %d times; want once", id, k)
		}
	}
	if got := f.Calls(crmtest.MethodListContacts); got != (n+49)/50 {
		t.Errorf("ListContacts calls = %d; want %d pages", got, (n+49)/50)
	}
	since := 0
	for _, err := range crm.AllContacts(t.Context(), f, crm.ContactQuery{UpdatedSince: now}) {
		if err != nil {
			t.Fatal(err)
		}
		since++
	}
	if since == 0 || since >= n {
		t.Errorf("UpdatedSince the last update kept %d contacts; want a few", since)
	}
}

func TestAllContactsUnsupported(t *testing.T) {
	for _, err := range crm.AllContacts(t.Context(), crmtest.Minimal(crmtest.NewFake(nil)), crm.ContactQuery{}) {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("AllContacts without ContactLister = %v; want errors.ErrUnsupported", err)
		}
	}
}

func TestGetDeal(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	d, _, err := f.CreateDeal(t.Context(), crm.NewDeal{Pipeline: "10", Stage: "101", NewContact: &crm.NewContact{Name: "x", Phones: []string{"+79161234567"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := crm.GetDeal(t.Context(), f, d.ID)
	if err != nil || got.ID != d.ID || len(got.Contacts) != 1 {
		t.Errorf("GetDeal(%s) = %+v, %v; want the deal with its contact", d.ID, got, err)
	}
	if _, err := crm.GetDeal(t.Context(), f, "999999"); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("GetDeal of a missing deal = %v; want crm.ErrNotFound", err)
	}
	if _, err := crm.GetDeal(t.Context(), crmtest.Minimal(f), d.ID); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("GetDeal without the capability = %v; want errors.ErrUnsupported", err)
	}
}
