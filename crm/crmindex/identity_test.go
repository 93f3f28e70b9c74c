package crmindex_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmindex"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

func tg(v string) crm.Identity { return crm.Identity{Kind: "telegram", Value: v} }

// TestIdentityLookupsCostNothing: after a Sync, every identity of every
// contact is found with no request, as the Fake's own
// FindContactsByIdentity finds it; a kind in another case is the same
// kind; an identity on two contacts finds both, ordered by ID.
func TestIdentityLookupsCostNothing(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	var want []crm.Contact
	for i := range 300 {
		c := crm.Contact{Name: fmt.Sprint("c", i), Identities: []crm.Identity{tg(fmt.Sprint("user", i))}}
		if i%3 == 0 {
			c.Phones = []string{fmt.Sprintf("+7916%07d", i)}
		}
		if i%5 == 0 {
			c.Identities = append(c.Identities, crm.Identity{Kind: "instagram", Value: fmt.Sprint("insta", i)}, tg(fmt.Sprint("user", i)))
		}
		want = append(want, f.AddContact(c))
	}
	shared := []crm.Contact{
		f.AddContact(crm.Contact{Name: "twin a", Identities: []crm.Identity{tg("twin")}}),
		f.AddContact(crm.Contact{Name: "twin b", Identities: []crm.Identity{tg("twin")}}),
	}
	idx := synced(t, f, crmindex.Options{})
	f.ResetCalls()
	for _, c := range want {
		for _, id := range c.Identities {
			found, err := idx.FindContactsByIdentity(t.Context(), id)
			if err != nil || !slices.Equal(ids(found), []crm.ContactID{c.ID}) {
				t.Fatalf("FindContactsByIdentity(%+v) = %v, %v; want %s", id, ids(found), err, c.ID)
			}
		}
	}
	found, err := idx.FindContactsByIdentity(t.Context(), crm.Identity{Kind: "Telegram", Value: "user7"})
	if err != nil || !slices.Equal(ids(found), []crm.ContactID{want[7].ID}) {
		t.Errorf("kind in another case: %v, %v; want %s", ids(found), err, want[7].ID)
	}
	found, err = idx.FindContactsByIdentity(t.Context(), tg("twin"))
	if err != nil || !slices.Equal(ids(found), ids(shared)) {
		t.Errorf("an identity on two contacts: %v, %v; want %v", ids(found), err, ids(shared))
	}
	if len(found) == 2 {
		found[0].Identities[0].Value = "changed by the caller"
		if again, _ := idx.FindContactsByIdentity(t.Context(), tg("twin")); len(again) != 2 {
			t.Errorf("changing a returned contact changed the index: %v", ids(again))
		}
	}
	if n := f.TotalCalls(); n != 0 {
		t.Errorf("identity lookups made %d requests (%v); want 0", n, f.CallCounts())
	}
	s := idx.Status()
	if s.Identities != 300+60+1 || s.Hits != int64(300+2*60+3) {
		t.Errorf("Status = %+v; want 361 identities, 423 hits", s)
	}
	// The same answers as the Fake's own FindContactsByIdentity, for
	// every identity and for values in another case.
	for _, c := range slices.Concat(want, shared) {
		for _, id := range append(slices.Clone(c.Identities), crm.Identity{Kind: "telegram", Value: strings.ToUpper(c.Identities[0].Value)}) {
			got, err := idx.FindContactsByIdentity(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			fake, err := f.FindContactsByIdentity(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), ids(fake)) {
				t.Errorf("FindContactsByIdentity(%+v) = %v from the index; the Fake finds %v", id, ids(got), ids(fake))
			}
		}
	}
	// Values compare exactly, as the adapters compare them.
	for _, id := range []crm.Identity{tg("USER7"), {Kind: "instagram", Value: "user7"}} {
		if found, err := idx.FindContactsByIdentity(t.Context(), id); err != nil || len(found) != 0 {
			t.Errorf("FindContactsByIdentity(%+v) = %v, %v; want none", id, ids(found), err)
		}
	}
}

// TestIdentityMiss: an identity not in the index is confirmed with one
// search by default (and the contact found is indexed), and answered at
// once with TrustMisses; an identity without a Kind goes to the wrapped
// client.
func TestIdentityMiss(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	idx := synced(t, f, crmindex.Options{})
	trusting := synced(t, f, crmindex.Options{TrustMisses: true})
	c, err := f.CreateContact(t.Context(), crm.NewContact{Name: "elsewhere", Identities: []crm.Identity{tg("@elsewhere")}})
	if err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	found, err := trusting.FindContactsByIdentity(t.Context(), tg("@elsewhere"))
	if err != nil || len(found) != 0 || f.TotalCalls() != 0 {
		t.Errorf("TrustMisses: %v, %v after %d requests; want none and no request", ids(found), err, f.TotalCalls())
	}
	found, err = idx.FindContactsByIdentity(t.Context(), tg("@elsewhere"))
	if err != nil || !slices.Equal(ids(found), []crm.ContactID{c.ID}) {
		t.Errorf("confirmed miss: %v, %v; want %s", ids(found), err, c.ID)
	}
	if n := f.Calls(crmtest.MethodFindContactsByIdentity); n != 1 {
		t.Errorf("a confirmed miss made %d searches; want 1", n)
	}
	f.ResetCalls()
	if found, _ := idx.FindContactsByIdentity(t.Context(), tg("@elsewhere")); len(found) != 1 || f.TotalCalls() != 0 {
		t.Errorf("after the confirmation: %v after %d requests; want the contact from the index", ids(found), f.TotalCalls())
	}
	if found, _ := idx.FindContactsByIdentity(t.Context(), tg("@nobody")); len(found) != 0 || f.TotalCalls() != 1 {
		t.Errorf("an identity nobody has: %v after %d requests; want none after 1", ids(found), f.TotalCalls())
	}
	if s := idx.Status(); s.Hits != 1 || s.Misses != 2 || s.Confirmed != 1 {
		t.Errorf("Status = %+v; want 1 hit, 2 misses, 1 confirmed", s)
	}
	f.ResetCalls()
	if _, err := trusting.FindContactsByIdentity(t.Context(), crm.Identity{Value: "x"}); !errors.Is(err, crm.ErrInvalid) || f.Calls(crmtest.MethodFindContactsByIdentity) != 1 {
		t.Errorf("an identity without a Kind: %v after %d searches; want the wrapped client asked, and its ErrInvalid", err, f.Calls(crmtest.MethodFindContactsByIdentity))
	}
}

// TestIdentityBeforeSync: identity lookups pass through until the first
// Sync.
func TestIdentityBeforeSync(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	c := f.AddContact(crm.Contact{Name: "a", Identities: []crm.Identity{tg("a")}})
	idx := crmindex.New(f, crmindex.Options{TrustMisses: true})
	if found, err := idx.FindContactsByIdentity(t.Context(), tg("a")); err != nil || !slices.Equal(ids(found), []crm.ContactID{c.ID}) || f.Calls(crmtest.MethodFindContactsByIdentity) != 1 {
		t.Errorf("before Sync: %v, %v; want the wrapped client's answer", ids(found), err)
	}
	if s := idx.Status(); s.PassedThrough != 1 {
		t.Errorf("Status.PassedThrough = %d; want 1", s.PassedThrough)
	}
}

// TestHandAddedIdentityFoundAfterCatchUp: a contact given a Telegram
// identity by hand in the CRM (a new contact, and an old one edited) is
// found by identity with no request once a CatchUp has run after it.
func TestHandAddedIdentityFoundAfterCatchUp(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	old := f.AddContact(crm.Contact{Name: "old", Phones: []string{"+79037654321"}})
	clk.Advance(time.Hour)
	idx := synced(t, f, crmindex.Options{Now: clk.Now, TrustMisses: true})

	clk.Advance(time.Minute)
	byHand := f.AddContact(crm.Contact{Name: "by hand", Identities: []crm.Identity{tg("byhand")}})
	edited := old
	edited.Identities, edited.UpdatedAt = []crm.Identity{{Kind: "TELEGRAM", Value: "old"}}, clk.Now()
	f.AddContact(edited) // the same ID: edited by hand
	if found, _ := idx.FindContactsByIdentity(t.Context(), tg("byhand")); len(found) != 0 {
		t.Fatalf("before the catch-up, with misses trusted: %v; want none", ids(found))
	}

	clk.Advance(4 * time.Minute)
	if pass, err := idx.CatchUp(t.Context()); err != nil || pass.Contacts != 2 {
		t.Fatalf("CatchUp = %+v, %v; want 2 contacts", pass, err)
	}
	f.ResetCalls()
	for id, want := range map[crm.Identity]crm.ContactID{tg("byhand"): byHand.ID, tg("old"): old.ID} {
		if found, err := idx.FindContactsByIdentity(t.Context(), id); err != nil || !slices.Equal(ids(found), []crm.ContactID{want}) {
			t.Errorf("after the catch-up, FindContactsByIdentity(%+v) = %v, %v; want %s", id, ids(found), err, want)
		}
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79037654321"); !slices.Equal(ids(found), []crm.ContactID{old.ID}) {
		t.Errorf("the edited contact by phone: %v", ids(found))
	}
	if n := f.TotalCalls(); n != 0 {
		t.Errorf("lookups after the catch-up made %d requests; want 0", n)
	}
}

// TestIdentityWebhooks: an identity changed or removed by Apply is found
// only under its new value, Remove forgets it, and a late older copy
// changes nothing.
func TestIdentityWebhooks(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	c := f.AddContact(crm.Contact{Name: "v1", Identities: []crm.Identity{tg("v1")}})
	idx := synced(t, f, crmindex.Options{Now: clk.Now, TrustMisses: true})
	find := func(v string) []crm.ContactID {
		t.Helper()
		found, err := idx.FindContactsByIdentity(t.Context(), tg(v))
		if err != nil {
			t.Fatal(err)
		}
		return ids(found)
	}
	c2 := c
	c2.Identities, c2.UpdatedAt = []crm.Identity{tg("v2")}, c.UpdatedAt.Add(time.Minute)
	idx.Apply(c2)
	if got := find("v1"); len(got) != 0 {
		t.Errorf("old identity after the update: %v", got)
	}
	if got := find("v2"); !slices.Equal(got, []crm.ContactID{c.ID}) {
		t.Errorf("new identity after the update: %v", got)
	}
	idx.Apply(c)
	if got := find("v1"); len(got) != 0 {
		t.Errorf("an older copy was applied over a newer one: %v", got)
	}
	clk.Advance(2 * time.Minute)
	idx.Remove(c.ID)
	if got := find("v2"); len(got) != 0 {
		t.Errorf("after Remove: %v", got)
	}
	if s := idx.Status(); s.Identities != 0 {
		t.Errorf("Status.Identities after Remove = %d; want 0", s.Identities)
	}
}

// TestOwnCreatesIndexedByIdentity: a contact created through the Index
// is found by its identity at once, with no request.
func TestOwnCreatesIndexedByIdentity(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	idx := synced(t, f, crmindex.Options{TrustMisses: true})
	_, c, err := idx.CreateDeal(t.Context(), crm.NewDeal{Pipeline: "10", Stage: "100", NewContact: &crm.NewContact{Name: "new", Identities: []crm.Identity{tg("deal")}}})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := idx.CreateContact(t.Context(), crm.NewContact{Name: "new2", Identities: []crm.Identity{tg("contact")}})
	if err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	for id, want := range map[crm.Identity]crm.ContactID{tg("deal"): c.ID, tg("contact"): c2.ID} {
		if found, _ := idx.FindContactsByIdentity(t.Context(), id); !slices.Equal(ids(found), []crm.ContactID{want}) {
			t.Errorf("FindContactsByIdentity(%+v) = %v; want %s", id, ids(found), want)
		}
	}
	if f.TotalCalls() != 0 {
		t.Errorf("lookups of own creations made %d requests", f.TotalCalls())
	}
}

// findOrCreateByIdentity is the engine's new-client step on a Telegram
// chat: find the client by identity, create a contact and deal when there
// is none.
func findOrCreateByIdentity(t *testing.T, c crm.Client, id crm.Identity) (created bool, err error) {
	found, err := c.FindContactsByIdentity(t.Context(), id)
	if err != nil || len(found) > 0 {
		return false, err
	}
	_, _, err = c.CreateDeal(t.Context(), crm.NewDeal{Name: "Chat " + id.Value, Pipeline: "10", Stage: "100",
		NewContact: &crm.NewContact{Name: id.Value, Identities: []crm.Identity{id}}})
	return err == nil, err
}

func contactsWithIdentity(f *crmtest.Fake, id crm.Identity) int {
	n := 0
	for _, c := range f.Contacts() {
		if slices.Contains(c.Identities, id) {
			n++
		}
	}
	return n
}

// TestInstancesCreateOneClientByIdentity: TestInstancesCreateOneClient on
// a Telegram channel, where a chat is one identity: two instances, 8
// goroutines each, 40 new clients, a lease per identity; every client
// gets exactly one contact, and the instance that did not create a client
// finds it by exactly one confirmed miss. With misses trusted, the second
// instance creates a duplicate.
func TestInstancesCreateOneClientByIdentity(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	a := synced(t, f, crmindex.Options{})
	b := synced(t, f, crmindex.Options{})
	f.ResetCalls()
	l := &leases{m: map[string]*sync.Mutex{}}
	const clients = 40
	var wg sync.WaitGroup
	for i, inst := range []*crmindex.Index{a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b} {
		wg.Go(func() {
			for k := range clients {
				id := tg(fmt.Sprint("user", (k+i)%clients))
				unlock := l.lock(id.Kind + ":" + id.Value)
				_, err := findOrCreateByIdentity(t, inst, id)
				unlock()
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for k := range clients {
		id := tg(fmt.Sprint("user", k))
		if n := contactsWithIdentity(f, id); n != 1 {
			t.Errorf("%+v has %d contacts in the CRM; want exactly 1", id, n)
		}
	}
	sa, sb := a.Status(), b.Status()
	if got := sa.Confirmed + sb.Confirmed; got != clients {
		t.Errorf("%d misses confirmed by the CRM (a %+v, b %+v); want %d, one per client on the instance that did not create it", got, sa, sb, clients)
	}
	if n := f.Calls(crmtest.MethodFindContactsByIdentity); n != 2*clients {
		t.Errorf("%d searches of the CRM; want %d, the creating lookup's and the confirmation per client", n, 2*clients)
	}

	c := synced(t, f, crmindex.Options{TrustMisses: true})
	d := synced(t, f, crmindex.Options{TrustMisses: true})
	id := tg("trusted")
	if created, err := findOrCreateByIdentity(t, c, id); err != nil || !created {
		t.Fatalf("instance c: created %v, %v", created, err)
	}
	if created, err := findOrCreateByIdentity(t, d, id); err != nil || !created {
		t.Fatalf("instance d with a trusted miss: created %v, %v; the duplicate this test expects did not happen", created, err)
	}
	if n := contactsWithIdentity(f, id); n != 2 {
		t.Errorf("%d contacts; want the duplicate (2)", n)
	}
}
