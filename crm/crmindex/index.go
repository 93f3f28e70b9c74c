package crmindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// DefaultPageSize is the page size of Sync and CatchUp when
// Options.PageSize is 0: amoCRM's maximum for contact lists.
const DefaultPageSize = 250

// DefaultOverlap is Options.Overlap when it is 0.
const DefaultOverlap = 2 * time.Minute

// Options configure an Index. The zero value means the defaults below.
type Options struct {
	// Phone are the options stored phones are read with. Give the
	// engine's own (the "numbers written with 8 count as +7" setting and
	// the region), so that the index matches exactly as the engine and
	// the adapters do. Zero: region RU, 8 counts as +7.
	Phone phone.Options
	// PageSize is the number of contacts asked for per page by Sync and
	// CatchUp. 0 means DefaultPageSize.
	PageSize int
	// TrustMisses makes a number or messenger identity that is not in
	// the index answer "no contact" at once. Zero (false): every miss is
	// confirmed with one FindContactsByPhone (or FindContactsByIdentity)
	// on the wrapped client, whose answer is returned (and its contacts
	// added to the index). See the package documentation before turning
	// confirmation off.
	TrustMisses bool
	// Overlap is how far before the start of the previous pass a CatchUp
	// asks for changes, to cover clock skew between this host and the CRM
	// and the CRM's one-second update times. 0 means DefaultOverlap.
	Overlap time.Duration
	// Now is the clock that times passes; nil means time.Now.
	Now func() time.Time
}

// client lets Index embed crm.Client under an unexported name.
type client = crm.Client

// Index is a crm.Client that answers FindContactsByPhone and
// FindContactsByIdentity from an in-memory index of the account's
// contacts by normalised phone and by messenger identity, and passes every
// other call to the client it wraps. See the package documentation for
// how it is filled, how fresh it is, and what a miss means.
//
// Until the first Sync (or CatchUp) succeeds, both lookups are passed to
// the wrapped client. CreateContact and CreateDeal add the contact they
// created to the index; SetContactResponsible and SetResponsible update
// the indexed responsible user; ListDeals and SetContactResponsible
// failing with crm.ErrNotFound remove the contact they named. Besides the contacts, an Index remembers the contacts of
// each deal it has seen through CreateDeal or ListDeals (a few dozen
// bytes per deal), for SetResponsible.
//
// An Index is safe for concurrent use.
type Index struct {
	client
	opt Options

	passMu sync.Mutex // one Sync or CatchUp at a time

	mu       sync.RWMutex
	st       *state   // nil until the first Sync
	log      []change // changes made while Sync builds a new state; nil otherwise
	building bool
	since    time.Time // start of the last successful pass
	syncedAt time.Time // start of the last successful Sync
	// dealContacts are the contacts of the deals seen through this Index
	// (CreateDeal, ListDeals), so SetResponsible can update them.
	dealContacts map[crm.DealID][]crm.ContactID

	hits, misses, confirmed, passedThrough atomic.Int64
}

var (
	_ crm.Client  = (*Index)(nil)
	_ crm.Wrapper = (*Index)(nil)
)

// New returns an empty Index over c. Call Sync (or CatchUp) before relying
// on it; until then lookups go to c.
func New(c crm.Client, opt Options) *Index {
	if opt.PageSize <= 0 {
		opt.PageSize = DefaultPageSize
	}
	if opt.Overlap <= 0 {
		opt.Overlap = DefaultOverlap
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Index{client: c, opt: opt, dealContacts: map[crm.DealID][]crm.ContactID{}}
}

// Unwrap returns the wrapped client, so crm's helpers find its optional
// capabilities (crm.ContactLister, crm.Noter, …).
func (x *Index) Unwrap() crm.Client { return x.client }

// FindContactsByPhone implements crm.Client from the index: the contacts
// having a phone that package phone matches with e164 under
// Options.Phone, as phone.Match does (an ambiguous stored phone matches by
// its other reading only when typed as the bare digits), ordered by ID.
// A number the index does not hold is confirmed with one search on the
// wrapped client unless Options.TrustMisses is set. An unparsable e164 is
// an error matching crm.ErrInvalid.
func (x *Index) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crmindex: FindContactsByPhone: %w", err)
	}
	x.mu.RLock()
	st := x.st
	var found []crm.Contact
	var perr error
	if st != nil {
		var num phone.Number
		if num, perr = phone.Parse(e164, x.opt.Phone); perr == nil {
			found = st.lookup(num)
		}
	}
	x.mu.RUnlock()
	if perr != nil {
		return nil, fmt.Errorf("crmindex: FindContactsByPhone: %w: %w", crm.ErrInvalid, perr)
	}
	return x.answer(st != nil, found, func() ([]crm.Contact, error) { return x.client.FindContactsByPhone(ctx, e164) })
}

// FindContactsByIdentity implements crm.Client from the index: the
// contacts carrying id, ordered by ID. Kinds compare without regard to
// case ("Telegram" is "telegram"), values exactly, as the amoCRM adapter
// compares them. An identity the index does not hold is confirmed with
// one search on the wrapped client unless Options.TrustMisses is set, as
// for phones. An identity without a Kind or a Value is passed to the
// wrapped client, which refuses it with crm.ErrInvalid as the crm.Client
// contract requires of every adapter.
func (x *Index) FindContactsByIdentity(ctx context.Context, id crm.Identity) ([]crm.Contact, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crmindex: FindContactsByIdentity: %w", err)
	}
	search := func() ([]crm.Contact, error) { return x.client.FindContactsByIdentity(ctx, id) }
	if id.Kind == "" || id.Value == "" {
		return search()
	}
	x.mu.RLock()
	st := x.st
	var found []crm.Contact
	if st != nil {
		found = st.lookupIdentity(id)
	}
	x.mu.RUnlock()
	return x.answer(st != nil, found, search)
}

// answer completes a lookup whose index answer is found (synced false:
// there is no index yet): a hit is returned, a miss is answered with none
// under Options.TrustMisses and otherwise confirmed with search, whose
// contacts are added to the index.
func (x *Index) answer(synced bool, found []crm.Contact, search func() ([]crm.Contact, error)) ([]crm.Contact, error) {
	switch {
	case !synced:
		x.passedThrough.Add(1)
		return search()
	case len(found) > 0:
		x.hits.Add(1)
		return found, nil
	}
	x.misses.Add(1)
	if x.opt.TrustMisses {
		return []crm.Contact{}, nil
	}
	found, err := search()
	if err != nil {
		return nil, err
	}
	if len(found) > 0 {
		x.confirmed.Add(1)
		for _, c := range found {
			x.Apply(c)
		}
	}
	return found, nil
}

// CreateContact implements crm.Client: the wrapped client's CreateContact,
// then the created contact is added to the index.
func (x *Index) CreateContact(ctx context.Context, nc crm.NewContact) (crm.Contact, error) {
	c, err := x.client.CreateContact(ctx, nc)
	if err == nil {
		x.Apply(c)
	}
	return c, err
}

// CreateDeal implements crm.Client: the wrapped client's CreateDeal, then
// the deal's contact is added to the index.
func (x *Index) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	deal, c, err := x.client.CreateDeal(ctx, d)
	if err == nil && c.ID != "" {
		x.Apply(c)
		x.noteDeal(deal.ID, append(slices.Clone(deal.Contacts), c.ID))
	}
	return deal, c, err
}

// ListDeals implements crm.Client. A contact the CRM no longer has
// (crm.ErrNotFound: deleted or merged) is removed from the index.
func (x *Index) ListDeals(ctx context.Context, contact crm.ContactID) ([]crm.Deal, error) {
	deals, err := x.client.ListDeals(ctx, contact)
	if errors.Is(err, crm.ErrNotFound) {
		x.Remove(contact)
	}
	for _, d := range deals {
		x.noteDeal(d.ID, append(slices.Clone(d.Contacts), contact))
	}
	return deals, err
}

// SetResponsible implements crm.Client. On success the indexed copies of
// the deal's contacts known to this Index (from CreateDeal and ListDeals
// through it) get the new responsible user; others follow with the CRM's
// webhooks or the next CatchUp.
func (x *Index) SetResponsible(ctx context.Context, deal crm.DealID, user crm.UserID) error {
	err := x.client.SetResponsible(ctx, deal, user)
	if err == nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.setResponsible(x.dealContacts[deal], user)
	}
	return err
}

// SetContactResponsible implements crm.Client. On success the indexed
// copy gets the new responsible user. A contact the CRM no longer has
// (crm.ErrNotFound) is removed from the index.
func (x *Index) SetContactResponsible(ctx context.Context, contact crm.ContactID, user crm.UserID) error {
	err := x.client.SetContactResponsible(ctx, contact, user)
	if err == nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.setResponsible([]crm.ContactID{contact}, user)
		return nil
	}
	if errors.Is(err, crm.ErrNotFound) && x.knows(contact) {
		// ErrNotFound may name the user instead; ask before forgetting.
		if _, derr := x.client.ListDeals(ctx, contact); errors.Is(derr, crm.ErrNotFound) {
			x.Remove(contact)
		}
	}
	return err
}

// setResponsible runs with x.mu held.
func (x *Index) setResponsible(ids []crm.ContactID, user crm.UserID) {
	if x.st == nil {
		return
	}
	for _, id := range ids {
		if e := x.st.contacts[id]; e != nil {
			e.c.Responsible = user
		}
	}
}

func (x *Index) noteDeal(id crm.DealID, contacts []crm.ContactID) {
	slices.Sort(contacts)
	contacts = slices.Compact(contacts)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dealContacts[id] = contacts
}

func (x *Index) knows(id crm.ContactID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.st != nil && x.st.contacts[id] != nil
}

// Apply adds c to the index or replaces the indexed copy of c.ID: call it
// with the contacts of the CRM's "contact added" and "contact updated"
// webhooks. A copy older than the indexed one (by UpdatedAt compared to
// the second, when both are set) is ignored, so webhooks may arrive out
// of order; a copy from the same second replaces the indexed one, which
// it may follow. A copy not newer than the Remove of the same ID is
// ignored too. Before the first Sync, Apply is remembered and applied on
// top of it.
func (x *Index) Apply(c crm.Contact) {
	if c.ID == "" {
		return
	}
	c = clone(c)
	p, a := keys(c, x.opt.Phone)
	x.mu.Lock()
	defer x.mu.Unlock()
	ch := change{c: c, prim: p, alt: a, at: x.opt.Now()}
	if x.building {
		x.log = append(x.log, ch)
	}
	if x.st == nil {
		if !x.building {
			x.log = append(x.log, ch)
		}
		return
	}
	x.st.apply(ch)
}

// Remove forgets the contact id: call it with the CRM's "contact deleted"
// webhooks (a merge deletes the contacts merged away). A later copy of
// the contact is indexed again only if its UpdatedAt is after the time
// Remove was called (by Options.Now), so a catch-up page read before the
// deletion does not bring it back while a restored contact comes back.
func (x *Index) Remove(id crm.ContactID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ch := change{c: crm.Contact{ID: id}, remove: true, at: x.opt.Now()}
	if x.building || x.st == nil {
		x.log = append(x.log, ch)
	}
	if x.st != nil {
		x.st.apply(ch)
	}
}

// Status describes an Index.
type Status struct {
	// Synced is true once a Sync (or a first CatchUp) has succeeded.
	Synced bool
	// Contacts, Phones and Identities are the indexed contacts, distinct
	// numbers and distinct messenger identities.
	Contacts, Phones, Identities int
	// SyncedAt is when the last successful Sync started, by Options.Now.
	SyncedAt time.Time
	// CaughtUpAt is when the last successful Sync or CatchUp started:
	// every change made in the CRM before it, less Options.Overlap, is in
	// the index.
	CaughtUpAt time.Time
	// Hits and Misses count the lookups (FindContactsByPhone and
	// FindContactsByIdentity) answered from the synced index with and
	// without contacts; Confirmed counts the misses that the wrapped
	// client's search answered with contacts (the index was behind);
	// PassedThrough counts lookups made before the first Sync.
	Hits, Misses, Confirmed, PassedThrough int64
}

// Status returns the index's state and counters.
func (x *Index) Status() Status {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := Status{
		SyncedAt: x.syncedAt, CaughtUpAt: x.since,
		Hits: x.hits.Load(), Misses: x.misses.Load(), Confirmed: x.confirmed.Load(), PassedThrough: x.passedThrough.Load(),
	}
	if x.st != nil {
		s.Synced = true
		s.Contacts = len(x.st.contacts)
		s.Phones = len(x.st.byPhone)
		s.Identities = len(x.st.byIdentity)
	}
	return s
}

// keys returns the numbers under which c is found: the reading Parse
// chooses for each phone (prim), and the other reading of an ambiguous
// phone typed as exactly that reading's digits (alt), as phone.Match.
func keys(c crm.Contact, opt phone.Options) (prim, alt []string) {
	for _, s := range c.Phones {
		n, err := phone.Parse(s, opt)
		if err != nil {
			continue
		}
		if !slices.Contains(prim, n.E164()) {
			prim = append(prim, n.E164())
		}
		if a := n.Alternative(); a.IsValid() && strings.TrimSpace(s) == a.Digits() && !slices.Contains(alt, a.E164()) {
			alt = append(alt, a.E164())
		}
	}
	return prim, alt
}

func clone(c crm.Contact) crm.Contact {
	c.Phones = slices.Clone(c.Phones)
	c.Identities = slices.Clone(c.Identities)
	return c
}
