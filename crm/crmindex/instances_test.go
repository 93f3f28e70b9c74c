package crmindex_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmindex"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// leases serializes find-then-create per number across "instances", as
// the engine's chat lease does for a WhatsApp chat.
type leases struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (l *leases) lock(key string) func() {
	l.mu.Lock()
	m := l.m[key]
	if m == nil {
		m = &sync.Mutex{}
		l.m[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// findOrCreate is the engine's new-client step: find the client by
// phone, create a contact and deal when there is none.
func findOrCreate(ctx context.Context, c crm.Client, e164 string) (created bool, err error) {
	found, err := c.FindContactsByPhone(ctx, e164)
	if err != nil || len(found) > 0 {
		return false, err
	}
	_, _, err = c.CreateDeal(ctx, crm.NewDeal{Name: "Chat " + e164, Pipeline: "10", Stage: "100",
		NewContact: &crm.NewContact{Name: e164, Phones: []string{e164}}})
	return err == nil, err
}

func contactsWith(f *crmtest.Fake, e164 string) int {
	n := 0
	for _, c := range f.Contacts() {
		if len(c.Phones) > 0 && c.Phones[0] == e164 {
			n++
		}
	}
	return n
}

// TestInstancesCreateOneClient: two host instances, each with its own
// Index over one CRM, receive the first messages of 40 new clients at
// once, 8 goroutines each; with the rule (misses confirmed, a lease per
// number) every client gets exactly one contact.
func TestInstancesCreateOneClient(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	a := synced(t, f, crmindex.Options{})
	b := synced(t, f, crmindex.Options{})
	l := &leases{m: map[string]*sync.Mutex{}}
	const clients = 40
	var wg sync.WaitGroup
	for i, inst := range []*crmindex.Index{a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b} {
		wg.Go(func() {
			for k := range clients {
				e164 := fmt.Sprintf("+7916555%04d", (k+i)%clients)
				unlock := l.lock(e164)
				_, err := findOrCreate(t.Context(), inst, e164)
				unlock()
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for k := range clients {
		e164 := fmt.Sprintf("+7916555%04d", k)
		if n := contactsWith(f, e164); n != 1 {
			t.Errorf("%s has %d contacts in the CRM; want exactly 1", e164, n)
		}
	}
	if s := a.Status(); s.Confirmed == 0 {
		t.Logf("instance a: %+v", s)
	}
}

// TestInstancesTrustingMissesDuplicate shows why misses are confirmed:
// with TrustMisses, an instance whose index has not yet seen a contact
// created by the other instance creates a second one, even though the
// two find-then-create sequences never overlap.
func TestInstancesTrustingMissesDuplicate(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	a := synced(t, f, crmindex.Options{TrustMisses: true})
	b := synced(t, f, crmindex.Options{TrustMisses: true})
	const e164 = "+79161234567"
	if created, err := findOrCreate(t.Context(), a, e164); err != nil || !created {
		t.Fatalf("instance a: created %v, %v", created, err)
	}
	if created, err := findOrCreate(t.Context(), b, e164); err != nil || !created {
		t.Fatalf("instance b with a trusted miss: created %v, %v; the duplicate this test expects did not happen", created, err)
	}
	if n := contactsWith(f, e164); n != 2 {
		t.Errorf("%d contacts; want the duplicate (2)", n)
	}
	// The same sequence with confirmation creates nothing more.
	c := synced(t, f, crmindex.Options{})
	d := crmindex.New(f, crmindex.Options{})
	if _, err := d.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	const other = "+79031234567"
	if created, err := findOrCreate(t.Context(), c, other); err != nil || !created {
		t.Fatalf("instance c: created %v, %v", created, err)
	}
	if created, err := findOrCreate(t.Context(), d, other); err != nil || created {
		t.Errorf("instance d with a confirmed miss: created %v, %v; want the contact found", created, err)
	}
}
