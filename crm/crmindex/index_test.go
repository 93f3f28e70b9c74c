package crmindex_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmindex"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/phone"
)

// clock is a settable clock shared by the Fake (UpdatedAt times) and the
// Index (pass times), as if the host's and the CRM's clocks agreed.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFake(clk *clock) *crmtest.Fake {
	return crmtest.NewSeeded(&crmtest.Options{Now: clk.Now})
}

func synced(t *testing.T, c crm.Client, opt crmindex.Options) *crmindex.Index {
	t.Helper()
	idx := crmindex.New(c, opt)
	if _, err := idx.Sync(t.Context()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return idx
}

func ids(cs []crm.Contact) []crm.ContactID {
	out := []crm.ContactID{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// TestConformance runs the crm.Client conformance suite on an Index: the
// wrapper must behave as any adapter.
func TestConformance(t *testing.T) {
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		f := crmtest.NewSeeded(nil)
		off := phone.Options{DisableEightAsSeven: true}
		return crmtest.Harness{
			Client:   noterIndex{synced(t, f, crmindex.Options{})},
			FailNext: func(op string, n int, err error) { f.FailNext(op, n, err) },
			PhoneRuleOff: func(t *testing.T) crm.Client {
				return synced(t, f.WithPhoneOptions(off), crmindex.Options{Phone: off})
			},
		}
	})
}

// noterIndex works around TestAdapter's OptionalNoter subtest, which asks
// the Client itself for crm.Noter (a type assertion) but then calls
// crm.AddNote, which also finds a Noter beneath a crm.Wrapper: the Index
// has none of its own, the Fake beneath it has one.
type noterIndex struct{ *crmindex.Index }

func (n noterIndex) AddNote(ctx context.Context, note crm.Note) error {
	return crm.AddNote(ctx, n.Unwrap(), note)
}

// typed returns a phone of a random contact as a CRM user might type it.
func typed(r *rand.Rand) string {
	nsn := func(first string) string {
		b := []byte(first)
		for len(b) < 10 {
			b = append(b, byte('0'+r.IntN(10)))
		}
		return string(b)
	}
	n := nsn([]string{"9", "9", "9", "495", "499", "7", "3", "8", "4"}[r.IntN(9)])
	f := fmt.Sprintf
	switch r.IntN(9) {
	case 0:
		return f("8 (%s) %s-%s-%s", n[:3], n[3:6], n[6:8], n[8:])
	case 1:
		return f("+7 %s %s", n[:3], n[3:])
	case 2:
		return f("8%s;", n)
	case 3:
		return f("7%s", n)
	case 4:
		return f("+7 (%s) %s-%s-%s доб. %d", n[:3], n[3:6], n[6:8], n[8:], r.IntN(100))
	case 5:
		return f("84%s", nsn("9")[1:]) // copied from a Vietnamese chat, or a Russian 8 4xx number
	case 6:
		return f("8 4%s %s", n[1:3], n[3:]) // 8 4xx typed by hand: ambiguous
	case 7:
		return f("+%d%s", []int{86, 1, 49, 84, 82}[r.IntN(5)], n[1:])
	default:
		return f("8-%s-%s-%s-%s»", n[:3], n[3:6], n[6:8], n[8:])
	}
}

// TestMatchesAdapter compares the index with the Fake's own
// FindContactsByPhone, which matches with phone.Match: on generated
// contacts, for every number of every contact (both readings of ambiguous
// ones) and random numbers, with both settings of the 8 → +7 rule.
func TestMatchesAdapter(t *testing.T) {
	for _, opt := range []phone.Options{{}, {DisableEightAsSeven: true}} {
		t.Run(fmt.Sprintf("DisableEightAsSeven=%v", opt.DisableEightAsSeven), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			f := crmtest.NewFake(&crmtest.Options{Phone: opt})
			var queries []string
			n := 200
			if raceEnabled {
				n = 50
			}
			for i := range n {
				ps := make([]string, 1+r.IntN(3))
				for j := range ps {
					ps[j] = typed(r)
					if n, err := phone.Parse(ps[j], opt); err == nil {
						queries = append(queries, n.E164(), n.Alternative().E164())
					}
				}
				f.AddContact(crm.Contact{Name: fmt.Sprint("c", i), Phones: ps})
			}
			for range n / 4 {
				if n, err := phone.Parse(typed(r), opt); err == nil {
					queries = append(queries, n.E164())
				}
			}
			idx := synced(t, f, crmindex.Options{Phone: opt, TrustMisses: true})
			f.ResetCalls()
			hits, asked := 0, 0
			for _, q := range queries {
				if q == "" {
					continue
				}
				asked++
				got, err := idx.FindContactsByPhone(t.Context(), q)
				if err != nil {
					t.Fatalf("index FindContactsByPhone(%q): %v", q, err)
				}
				want, err := f.FindContactsByPhone(t.Context(), q)
				if err != nil {
					t.Fatalf("Fake FindContactsByPhone(%q): %v", q, err)
				}
				slices.SortFunc(want, func(a, b crm.Contact) int { return crm.CompareIDs(string(a.ID), string(b.ID)) })
				if !slices.Equal(ids(got), ids(want)) {
					t.Errorf("FindContactsByPhone(%q) = %v from the index; the adapter finds %v", q, ids(got), ids(want))
				}
				if len(got) > 0 {
					hits++
				}
			}
			if hits < asked*6/10 {
				t.Errorf("only %d of %d queries found contacts; the test means little", hits, asked)
			}
			if n := f.Calls(crmtest.MethodListContacts); n != 0 {
				t.Errorf("lookups made %d ListContacts calls", n)
			}
		})
	}
}

// TestSyncPagesAndLookupsCostNothing: a Sync of 600 contacts reads 3 pages
// of 250, and lookups afterwards make no request.
func TestSyncPagesAndLookupsCostNothing(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	for i := range 600 {
		f.AddContact(crm.Contact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("8 (916) %03d-%02d-%02d", i/100, i/10%10, i%100)}})
	}
	idx := crmindex.New(f, crmindex.Options{})
	pass, err := idx.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if pass.Contacts != 600 || !pass.Full {
		t.Errorf("Sync = %+v; want 600 contacts, full", pass)
	}
	if n := f.Calls(crmtest.MethodListContacts); n != 3 {
		t.Errorf("Sync of 600 contacts made %d ListContacts calls; want 3 pages of 250", n)
	}
	f.ResetCalls()
	for i := range 600 {
		e164 := fmt.Sprintf("+7916%03d%02d%02d", i/100, i/10%10, i%100)
		found, err := idx.FindContactsByPhone(t.Context(), e164)
		if err != nil || len(found) != 1 || found[0].Name != fmt.Sprint("c", i) {
			t.Fatalf("FindContactsByPhone(%s) = %v, %v; want contact c%d", e164, found, err, i)
		}
	}
	if n := f.TotalCalls(); n != 0 {
		t.Errorf("600 lookups made %d requests (%v); want 0", n, f.CallCounts())
	}
	if s := idx.Status(); !s.Synced || s.Contacts != 600 || s.Phones != 600 || s.Hits != 600 {
		t.Errorf("Status = %+v", s)
	}
}

// TestHandAddedContactFoundAfterCatchUp: a contact typed into the CRM by
// hand, "8 (916) 123-45-67", is invisible to a CRM search that does not
// treat 8 as +7 (as a substring search may be), and found with no request
// once a CatchUp has run after it was added.
func TestHandAddedContactFoundAfterCatchUp(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	f.AddContact(crm.Contact{Name: "old", Phones: []string{"+7 903 765-43-21"}})
	clk.Advance(time.Hour)
	// The wrapped client's search does not read 8 as +7; the index does.
	search := f.WithPhoneOptions(phone.Options{DisableEightAsSeven: true})
	idx := synced(t, search, crmindex.Options{Now: clk.Now})

	clk.Advance(time.Minute)
	byHand := f.AddContact(crm.Contact{Name: "by hand", Phones: []string{"8 (916) 123-45-67"}})

	found, err := idx.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil || len(found) != 0 {
		t.Fatalf("before the catch-up: %v, %v; want none (the CRM search misses it)", ids(found), err)
	}
	if n := f.Calls(crmtest.MethodFindContactsByPhone); n != 1 {
		t.Errorf("a miss made %d searches; want 1 confirmation", n)
	}

	clk.Advance(4 * time.Minute) // the next periodic catch-up
	pass, err := idx.CatchUp(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if pass.Full || pass.Contacts != 1 {
		t.Errorf("CatchUp = %+v; want 1 contact, not full", pass)
	}
	f.ResetCalls()
	found, err = idx.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil || !slices.Equal(ids(found), []crm.ContactID{byHand.ID}) {
		t.Fatalf("after the catch-up: %v, %v; want %s", ids(found), err, byHand.ID)
	}
	if n := f.TotalCalls(); n != 0 {
		t.Errorf("the lookup after the catch-up made %d requests; want 0", n)
	}

	// The CRM's clock 90 s behind the host's: a change stamped before the
	// previous catch-up started is still within the overlap.
	clk.Advance(5 * time.Minute)
	late := f.AddContact(crm.Contact{Name: "late", Phones: []string{"8 912 345 67 89"}, UpdatedAt: clk.Now().Add(-5*time.Minute - 90*time.Second)})
	if _, err := idx.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79123456789"); !slices.Equal(ids(found), []crm.ContactID{late.ID}) {
		t.Errorf("a change stamped within the overlap before the catch-up: found %v; want %s", ids(found), late.ID)
	}
}

// TestMiss: a number not in the index is confirmed with one search by
// default (and the contact found is indexed), and answered at once with
// TrustMisses.
func TestMiss(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	idx := synced(t, f, crmindex.Options{})
	trusting := synced(t, f, crmindex.Options{TrustMisses: true})
	// Created behind the indexes' backs (another instance, another integration).
	c, err := f.CreateContact(t.Context(), crm.NewContact{Name: "elsewhere", Phones: []string{"+79161234567"}})
	if err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	found, err := trusting.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil || len(found) != 0 || f.TotalCalls() != 0 {
		t.Errorf("TrustMisses: %v, %v after %d requests; want none and no request", ids(found), err, f.TotalCalls())
	}
	found, err = idx.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil || !slices.Equal(ids(found), []crm.ContactID{c.ID}) {
		t.Errorf("confirmed miss: %v, %v; want %s", ids(found), err, c.ID)
	}
	if n := f.Calls(crmtest.MethodFindContactsByPhone); n != 1 {
		t.Errorf("a confirmed miss made %d searches; want 1", n)
	}
	f.ResetCalls()
	if found, _ := idx.FindContactsByPhone(t.Context(), "8 916 123 45 67"); len(found) != 1 || f.TotalCalls() != 0 {
		t.Errorf("after the confirmation: %v after %d requests; want the contact from the index", ids(found), f.TotalCalls())
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79031112233"); len(found) != 0 || f.TotalCalls() != 1 {
		t.Errorf("a number nobody has: %v after %d requests; want none after 1", ids(found), f.TotalCalls())
	}
	if s := idx.Status(); s.Hits != 1 || s.Misses != 2 || s.Confirmed != 1 {
		t.Errorf("Status = %+v; want 1 hit, 2 misses, 1 confirmed", s)
	}
	if _, err := idx.FindContactsByPhone(t.Context(), "not a phone"); !errors.Is(err, crm.ErrInvalid) {
		t.Errorf("FindContactsByPhone(not a phone) = %v; want crm.ErrInvalid", err)
	}
}

// TestBeforeSync: lookups pass through until the first Sync, and
// webhooks received meanwhile are applied on top of it.
func TestBeforeSync(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	c := f.AddContact(crm.Contact{Name: "a", Phones: []string{"89161234567"}})
	idx := crmindex.New(f, crmindex.Options{TrustMisses: true})
	if found, err := idx.FindContactsByPhone(t.Context(), "+79161234567"); err != nil || len(found) != 1 || f.Calls(crmtest.MethodFindContactsByPhone) != 1 {
		t.Errorf("before Sync: %v, %v; want the wrapped client's answer", ids(found), err)
	}
	idx.Apply(crm.Contact{ID: "webhook", Name: "w", Phones: []string{"+7 903 000 00 01"}})
	idx.Remove(c.ID)
	if _, err := idx.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79030000001"); len(found) != 1 {
		t.Errorf("a contact applied before Sync: found %v", ids(found))
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79161234567"); len(found) != 0 {
		t.Errorf("a contact removed before Sync: found %v", ids(found))
	}
	if s := idx.Status(); s.PassedThrough != 1 {
		t.Errorf("Status.PassedThrough = %d; want 1", s.PassedThrough)
	}
}

// TestWebhooks: Apply and Remove as the CRM's webhooks drive them.
func TestWebhooks(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	c := f.AddContact(crm.Contact{Name: "v1", Phones: []string{"+79161234567"}})
	idx := synced(t, f, crmindex.Options{Now: clk.Now, TrustMisses: true})
	find := func(e164 string) []crm.ContactID {
		t.Helper()
		found, err := idx.FindContactsByPhone(t.Context(), e164)
		if err != nil {
			t.Fatal(err)
		}
		return ids(found)
	}
	t0 := c.UpdatedAt
	// The phone changed: found by the new number only.
	c2 := c
	c2.Name, c2.Phones, c2.UpdatedAt = "v2", []string{"8 (903) 765-43-21"}, t0.Add(time.Minute)
	idx.Apply(c2)
	if got := find("+79161234567"); len(got) != 0 {
		t.Errorf("old number after the update: %v", got)
	}
	if got := find("+79037654321"); !slices.Equal(got, []crm.ContactID{c.ID}) {
		t.Errorf("new number after the update: %v", got)
	}
	// A late webhook with the older copy changes nothing.
	idx.Apply(c)
	if got := find("+79161234567"); len(got) != 0 {
		t.Errorf("an older copy was applied over a newer one: %v", got)
	}
	// Deleted: gone, and an older copy (a catch-up page read before the
	// deletion) does not bring it back; a newer one does.
	clk.Advance(2 * time.Minute)
	idx.Remove(c.ID)
	if got := find("+79037654321"); len(got) != 0 {
		t.Errorf("after Remove: %v", got)
	}
	idx.Apply(c2)
	if got := find("+79037654321"); len(got) != 0 {
		t.Errorf("a copy older than the Remove brought the contact back: %v", got)
	}
	c3 := c2
	c3.UpdatedAt = clk.Now().Add(time.Second)
	idx.Apply(c3)
	if got := find("+79037654321"); !slices.Equal(got, []crm.ContactID{c.ID}) {
		t.Errorf("a copy updated after the Remove: %v", got)
	}
}

// TestDeletedContactForgotten: a contact deleted in the CRM whose webhook
// was lost is forgotten when a call on it fails with crm.ErrNotFound.
func TestDeletedContactForgotten(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	idx := synced(t, f, crmindex.Options{TrustMisses: true})
	idx.Apply(crm.Contact{ID: "999999", Name: "deleted in the CRM", Phones: []string{"+79161234567"}})
	if _, err := idx.ListDeals(t.Context(), "999999"); !errors.Is(err, crm.ErrNotFound) {
		t.Fatalf("ListDeals of a missing contact: %v", err)
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79161234567"); len(found) != 0 {
		t.Errorf("a contact the CRM no longer has is still found: %v", ids(found))
	}
}

// TestOwnCreatesIndexed: a contact created through the Index is found by
// it at once, with no request.
func TestOwnCreatesIndexed(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	idx := synced(t, f, crmindex.Options{TrustMisses: true})
	_, c, err := idx.CreateDeal(t.Context(), crm.NewDeal{Pipeline: "10", Stage: "100", NewContact: &crm.NewContact{Name: "new", Phones: []string{"+79161234567"}}})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := idx.CreateContact(t.Context(), crm.NewContact{Name: "new2", Phones: []string{"+79031234567"}})
	if err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	for e164, want := range map[string]crm.ContactID{"+79161234567": c.ID, "+79031234567": c2.ID} {
		if found, _ := idx.FindContactsByPhone(t.Context(), e164); !slices.Equal(ids(found), []crm.ContactID{want}) {
			t.Errorf("FindContactsByPhone(%s) = %v; want %s", e164, ids(found), want)
		}
	}
	if f.TotalCalls() != 0 {
		t.Errorf("lookups of own creations made %d requests", f.TotalCalls())
	}
}

// blockingLister pauses ListContacts after its first page until released.
type blockingLister struct {
	*crmtest.Fake
	paused, release chan struct{}
	once            sync.Once
}

func (b *blockingLister) ListContacts(ctx context.Context, q crm.ContactQuery) (crm.ContactPage, error) {
	if q.Cursor != "" {
		b.once.Do(func() {
			close(b.paused)
			<-b.release
		})
	}
	return b.Fake.ListContacts(ctx, q)
}

// TestSyncKeepsConcurrentWebhooks: webhooks applied while a Sync is
// building the new index are in it, and lookups meanwhile use the old one.
func TestSyncKeepsConcurrentWebhooks(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	var gone crm.Contact
	for i := range 300 {
		c := f.AddContact(crm.Contact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("+7916000%04d", i)}})
		if i == 299 {
			gone = c // on the second page
		}
	}
	bl := &blockingLister{Fake: f, paused: make(chan struct{}), release: make(chan struct{})}
	idx := crmindex.New(bl, crmindex.Options{Now: clk.Now, TrustMisses: true})
	bl.once.Do(func() {}) // the first Sync runs unblocked
	if _, err := idx.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	bl.once = sync.Once{}
	done := make(chan error)
	go func() { _, err := idx.Sync(t.Context()); done <- err }()
	<-bl.paused
	clk.Advance(time.Second)
	idx.Apply(crm.Contact{ID: "new", Name: "webhook", Phones: []string{"+79990000001"}, UpdatedAt: clk.Now()})
	idx.Remove(gone.ID)
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79160000001"); len(found) != 1 {
		t.Errorf("during Sync, the previous index must answer; got %v", ids(found))
	}
	close(bl.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79990000001"); len(found) != 1 {
		t.Errorf("a contact applied during Sync is missing after it")
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), fmt.Sprintf("+7916000%04d", 299)); len(found) != 0 {
		t.Errorf("a contact removed during Sync (read after the Remove by the Sync) is back: %v", ids(found))
	}
}

// TestConcurrentUse runs lookups, webhooks, catch-ups and syncs together
// under -race, and checks every lookup as it returns, not only the final
// state. Eight webhook contacts w0…w7, so that goroutines meet on them,
// are applied in versions by every goroutine: version k has
// the name "v<k>", responsible user k, one phone (+7903… for even k,
// +7904… for odd k) and the identity telegram "w<n>", and is removed again
// by other goroutines. Whatever the schedule, a lookup of a webhook
// contact's number or identity returns nothing or one whole version of
// that contact (never a mix of two versions, never another contact, never
// a version whose phone is not the number looked up), and a lookup of a
// CRM contact c0…c499 returns exactly that contact, Syncs and CatchUps
// included.
func TestConcurrentUse(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	const contacts, hot = 500, 8
	cs := make([]crm.Contact, contacts)
	for i := range cs {
		cs[i] = f.AddContact(crm.Contact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("8 916 000 %04d", i)}})
	}
	idx := synced(t, f, crmindex.Options{Now: clk.Now, PageSize: 50})
	ctx := t.Context()
	wID := func(n int) crm.ContactID { return crm.ContactID(fmt.Sprint("w", n)) }
	wPhone := func(n, k int) string {
		if k%2 == 0 {
			return fmt.Sprintf("+7903000%04d", n)
		}
		return fmt.Sprintf("+7904000%04d", n)
	}
	wIdentity := func(n int) crm.Identity { return crm.Identity{Kind: "telegram", Value: fmt.Sprint("w", n)} }
	version := func(n, k int) crm.Contact {
		return crm.Contact{ID: wID(n), Name: fmt.Sprint("v", k), Phones: []string{wPhone(n, k)},
			Identities: []crm.Identity{wIdentity(n)}, Responsible: crm.UserID(fmt.Sprint(k)), UpdatedAt: clk.Now()}
	}
	// checkW reports what is wrong with found, the answer to a lookup of
	// w<n> by its identity (phone "") or by phone.
	checkW := func(found []crm.Contact, n int, phone string) string {
		if len(found) > 1 {
			return fmt.Sprintf("%d contacts %v; want at most w%d", len(found), ids(found), n)
		}
		for _, c := range found {
			var k int
			if _, err := fmt.Sscanf(c.Name, "v%d", &k); err != nil {
				return fmt.Sprintf("contact %+v has no version name", c)
			}
			want := version(n, k)
			want.UpdatedAt = c.UpdatedAt
			if !reflect.DeepEqual(c, want) {
				return fmt.Sprintf("contact %+v; want version %d whole: %+v", c, k, want)
			}
			if phone != "" && want.Phones[0] != phone {
				return fmt.Sprintf("version %d of w%d (phone %s) found by %s", k, n, want.Phones[0], phone)
			}
		}
		return ""
	}
	workers, rounds := 16, 200
	if raceEnabled {
		rounds = 60
	}
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range rounds {
				n := (g*rounds + i) % contacts
				w := (g + i) % hot
				switch i % 4 {
				case 0:
					idx.Apply(version(w, g*rounds+i/4)) // odd and even versions
				case 1:
					idx.Remove(wID(w))
				case 2:
					found, err := idx.FindContactsByPhone(ctx, fmt.Sprintf("+7916000%04d", n))
					if err != nil {
						t.Error(err)
					} else if len(found) != 1 || found[0].ID != cs[n].ID || !slices.Equal(found[0].Phones, cs[n].Phones) {
						t.Errorf("lookup of c%d during the run found %+v; want exactly %+v", n, found, cs[n])
					}
				case 3:
					for _, phone := range []string{wPhone(w, 0), wPhone(w, 1)} {
						found, err := idx.FindContactsByPhone(ctx, phone)
						if err != nil {
							t.Error(err)
						} else if msg := checkW(found, w, phone); msg != "" {
							t.Errorf("lookup of %s during the run: %s", phone, msg)
						}
					}
					found, err := idx.FindContactsByIdentity(ctx, wIdentity(w))
					if err != nil {
						t.Error(err)
					} else if msg := checkW(found, w, ""); msg != "" {
						t.Errorf("lookup of identity w%d during the run: %s", w, msg)
					}
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			if _, err := idx.CatchUp(ctx); err != nil {
				t.Error(err)
			}
			if _, err := idx.Sync(ctx); err != nil {
				t.Error(err)
			}
			clk.Advance(time.Second)
		})
	}
	wg.Wait()
	for i := range contacts {
		if found, _ := idx.FindContactsByPhone(ctx, fmt.Sprintf("+7916000%04d", i)); len(found) != 1 || found[0].ID != cs[i].ID {
			t.Fatalf("contact c%d lost: found %v", i, ids(found))
		}
	}
}

// TestSyncErrors: without the ContactLister capability Sync fails with
// errors.ErrUnsupported; a failing page leaves the previous index.
func TestSyncErrors(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	f.AddContact(crm.Contact{Name: "a", Phones: []string{"+79161234567"}})
	if _, err := crmindex.New(crmtest.Minimal(f), crmindex.Options{}).Sync(t.Context()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Sync without crm.ContactLister = %v; want errors.ErrUnsupported", err)
	}
	idx := synced(t, f, crmindex.Options{TrustMisses: true})
	f.FailNext(crmtest.MethodListContacts, 1, crm.ErrUnavailable)
	if _, err := idx.Sync(t.Context()); !errors.Is(err, crm.ErrUnavailable) {
		t.Errorf("Sync with a failing page = %v; want crm.ErrUnavailable", err)
	}
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79161234567"); len(found) != 1 {
		t.Errorf("after a failed Sync the previous index must stay")
	}
	f.FailNext(crmtest.MethodListContacts, 1, crm.ErrRateLimited)
	if _, err := idx.CatchUp(t.Context()); !errors.Is(err, crm.ErrRateLimited) {
		t.Errorf("CatchUp with a failing page = %v; want crm.ErrRateLimited", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := idx.FindContactsByPhone(ctx, "+79161234567"); !errors.Is(err, context.Canceled) {
		t.Errorf("FindContactsByPhone with a canceled context = %v", err)
	}
}

// TestUnwrap: crm's helpers find the wrapped client's capabilities.
func TestUnwrap(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	idx := synced(t, f, crmindex.Options{})
	_, c, err := idx.CreateDeal(t.Context(), crm.NewDeal{Pipeline: "10", Stage: "101", NewContact: &crm.NewContact{Name: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := crm.AddNote(t.Context(), idx, crm.Note{Contact: c.ID, Text: "hello"}); err != nil {
		t.Errorf("crm.AddNote through the Index: %v", err)
	}
	if idx.Unwrap() != crm.Client(f) {
		t.Errorf("Unwrap does not return the wrapped client")
	}
}

// A copy from the same second as the indexed one replaces it: CRMs keep
// UpdatedAt to the second (amoCRM's updated_at), so the indexed copy,
// even stamped finer, is not known to be newer. Before, a contact
// created at 09:00:00.7 by the host's clock hid the CRM's webhook copy
// of 09:00:00 with its changed phone.
func TestApplySameSecondReplaces(t *testing.T) {
	clk := newClock()
	f := newFake(clk)
	idx := synced(t, f, crmindex.Options{Now: clk.Now, TrustMisses: true})
	t0 := clk.Now()
	idx.Apply(crm.Contact{ID: "77", Phones: []string{"+79161234567"}, UpdatedAt: t0.Add(700 * time.Millisecond)})
	idx.Apply(crm.Contact{ID: "77", Phones: []string{"+79037654321"}, UpdatedAt: t0})
	for e164, want := range map[string][]crm.ContactID{"+79161234567": {}, "+79037654321": {"77"}} {
		found, err := idx.FindContactsByPhone(t.Context(), e164)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(found); !slices.Equal(got, want) {
			t.Errorf("after a copy of the same second: %s finds %v, want %v", e164, got, want)
		}
	}
	// A copy of an earlier second is still older.
	idx.Apply(crm.Contact{ID: "77", Phones: []string{"+79161234567"}, UpdatedAt: t0.Add(-time.Second)})
	if found, _ := idx.FindContactsByPhone(t.Context(), "+79037654321"); !slices.Equal(ids(found), []crm.ContactID{"77"}) {
		t.Errorf("a copy of an earlier second replaced the indexed one: %v", ids(found))
	}
}
