package amocrm

import (
	"slices"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// recentCap bounds the recent cache.
const recentCap = 4096

// recentCache keeps, for Options.SearchReuse, what a search read about a
// contact (the contact and the IDs of its leads), so that the ListDeals
// and CreateDeal that follow a search do not read the contact again; and
// the Unsorted uid of leads this Client created or found in Unsorted.
type recentCache struct {
	now func() time.Time
	ttl time.Duration

	mu       sync.Mutex
	contacts map[int]recentContact
	uids     map[int]recentUID // lead ID → Unsorted uid
}

type recentContact struct {
	c     crm.Contact
	leads []int
	at    time.Time
}

type recentUID struct {
	uid      string
	pipeline int
	at       time.Time
}

func (r *recentCache) putContact(id int, c crm.Contact, leads []int) {
	if r.ttl <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.contacts == nil {
		r.contacts = map[int]recentContact{}
	}
	r.evict()
	r.contacts[id] = recentContact{c: c, leads: slices.Clone(leads), at: r.now()}
}

// addLead records a lead linked to a contact that is in the cache.
func (r *recentCache) addLead(contact, lead int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.contacts[contact]; ok && !slices.Contains(e.leads, lead) {
		e.leads = append(slices.Clone(e.leads), lead)
		r.contacts[contact] = e
	}
}

// contact returns a fresh entry.
func (r *recentCache) contact(id int) (recentContact, bool) {
	if r.ttl <= 0 {
		return recentContact{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.contacts[id]
	if !ok || r.now().Sub(e.at) >= r.ttl {
		return recentContact{}, false
	}
	return e, true
}

func (r *recentCache) forget(contact int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.contacts, contact)
}

// putUID remembers a lead's Unsorted uid and pipeline (kept for an hour:
// it only saves a lookup).
func (r *recentCache) putUID(lead int, uid string, pipeline int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.uids == nil {
		r.uids = map[int]recentUID{}
	}
	r.evict()
	r.uids[lead] = recentUID{uid: uid, pipeline: pipeline, at: r.now()}
}

func (r *recentCache) uid(lead int) (string, bool) {
	e, ok := r.uidEntry(lead)
	return e.uid, ok
}

func (r *recentCache) uidEntry(lead int) (recentUID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.uids[lead]
	if !ok || r.now().Sub(e.at) >= time.Hour {
		return recentUID{}, false
	}
	return e, true
}

// evict drops expired entries, and everything when still over the cap;
// r.mu held.
func (r *recentCache) evict() {
	if len(r.contacts) < recentCap && len(r.uids) < recentCap {
		return
	}
	now := r.now()
	for id, e := range r.contacts {
		if now.Sub(e.at) >= r.ttl {
			delete(r.contacts, id)
		}
	}
	for id, e := range r.uids {
		if now.Sub(e.at) >= time.Hour {
			delete(r.uids, id)
		}
	}
	if len(r.contacts) >= recentCap {
		clear(r.contacts)
	}
	if len(r.uids) >= recentCap {
		clear(r.uids)
	}
}
