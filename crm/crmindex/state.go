package crmindex

import (
	"slices"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// change is one Apply or Remove, kept while Sync builds a new state.
type change struct {
	c         crm.Contact
	prim, alt []string
	remove    bool
	at        time.Time // when Apply or Remove was called, by Options.Now
}

// entry is one indexed contact with the numbers it is found under.
type entry struct {
	c         crm.Contact
	prim, alt []string
}

// state is one generation of the index. It is guarded by Index.mu.
type state struct {
	contacts map[crm.ContactID]*entry
	// byPhone and byAlt map an E.164 number to the contacts found under
	// it (see keys). Most numbers have one contact.
	byPhone map[string][]crm.ContactID
	byAlt   map[string][]crm.ContactID
	// byIdentity maps an identity, its Kind in lower case (see idKey),
	// to the contacts carrying it. The key shares the contact's strings
	// when the Kind is already in lower case, as messenger kinds are.
	byIdentity map[crm.Identity][]crm.ContactID
	// removed holds when each removed contact was removed, so that an
	// older copy (from a catch-up page read before the Remove) does not
	// bring it back.
	removed map[crm.ContactID]time.Time
}

func newState(size int) *state {
	return &state{
		contacts:   make(map[crm.ContactID]*entry, size),
		byPhone:    make(map[string][]crm.ContactID, size),
		byAlt:      map[string][]crm.ContactID{},
		byIdentity: map[crm.Identity][]crm.ContactID{},
		removed:    map[crm.ContactID]time.Time{},
	}
}

// apply adds, replaces or removes one contact.
func (s *state) apply(ch change) {
	id := ch.c.ID
	old := s.contacts[id]
	if ch.remove {
		if old != nil {
			s.unlink(old)
			delete(s.contacts, id)
		}
		s.removed[id] = ch.at
		return
	}
	u := ch.c.UpdatedAt
	if !u.IsZero() {
		// Compared to the second, as CRMs keep it (amoCRM's updated_at
		// is Unix seconds): a copy from the same second as the indexed
		// one may be the later change, and one stamped finer (a host
		// clock) must not hide the CRM's own copy of that second.
		if old != nil && u.Truncate(time.Second).Before(old.c.UpdatedAt.Truncate(time.Second)) {
			return // an older copy
		}
		if at, ok := s.removed[id]; ok && !u.After(at) {
			return // not updated since it was removed
		}
	}
	delete(s.removed, id)
	if old != nil {
		s.unlink(old)
	}
	e := &entry{c: ch.c, prim: ch.prim, alt: ch.alt}
	s.contacts[id] = e
	for _, k := range e.prim {
		s.byPhone[k] = append(s.byPhone[k], id)
	}
	for _, k := range e.alt {
		s.byAlt[k] = append(s.byAlt[k], id)
	}
	for _, i := range e.c.Identities {
		k, ok := idKey(i)
		if !ok {
			continue
		}
		ids := s.byIdentity[k]
		if n := len(ids); n > 0 && ids[n-1] == id {
			continue // the same identity twice on one contact
		}
		s.byIdentity[k] = append(ids, id)
	}
}

func (s *state) unlink(e *entry) {
	drop := func(m map[string][]crm.ContactID, k string) {
		ids := slices.DeleteFunc(m[k], func(id crm.ContactID) bool { return id == e.c.ID })
		if len(ids) == 0 {
			delete(m, k)
		} else {
			m[k] = ids
		}
	}
	for _, k := range e.prim {
		drop(s.byPhone, k)
	}
	for _, k := range e.alt {
		drop(s.byAlt, k)
	}
	for _, i := range e.c.Identities {
		k, ok := idKey(i)
		if !ok {
			continue
		}
		ids := slices.DeleteFunc(s.byIdentity[k], func(id crm.ContactID) bool { return id == e.c.ID })
		if len(ids) == 0 {
			delete(s.byIdentity, k)
		} else {
			s.byIdentity[k] = ids
		}
	}
}

// lookup returns copies of the contacts found under n, ordered by ID.
func (s *state) lookup(n phone.Number) []crm.Contact {
	k := n.E164()
	p, a := s.byPhone[k], s.byAlt[k]
	ids := p
	switch {
	case len(p)+len(a) == 0:
		return nil
	case len(a) > 0 || len(p) > 1:
		ids = append(slices.Clone(p), a...)
		slices.SortFunc(ids, func(x, y crm.ContactID) int { return crm.CompareIDs(string(x), string(y)) })
		ids = slices.Compact(ids)
	}
	return s.copies(ids)
}

// lookupIdentity returns copies of the contacts carrying id (see idKey),
// ordered by ID; nil when none, or when id has no Kind or no Value.
func (s *state) lookupIdentity(id crm.Identity) []crm.Contact {
	k, ok := idKey(id)
	if !ok {
		return nil
	}
	ids := s.byIdentity[k]
	if len(ids) > 1 {
		ids = slices.Clone(ids)
		slices.SortFunc(ids, func(x, y crm.ContactID) int { return crm.CompareIDs(string(x), string(y)) })
	}
	return s.copies(ids)
}

func (s *state) copies(ids []crm.ContactID) []crm.Contact {
	if len(ids) == 0 {
		return nil
	}
	out := make([]crm.Contact, len(ids))
	for i, id := range ids {
		out[i] = clone(s.contacts[id].c)
	}
	return out
}

// idKey is the key an identity is indexed and looked up under: its Kind
// in lower case (kinds compare without regard to case, as the amoCRM
// adapter compares them) and its Value as it is. An identity without a
// Kind or a Value is not indexed (ok false).
func idKey(id crm.Identity) (k crm.Identity, ok bool) {
	if id.Kind == "" || id.Value == "" {
		return crm.Identity{}, false
	}
	id.Kind = strings.ToLower(id.Kind) // no copy when already lower case
	return id, true
}

// prune forgets removals made before t: a catch-up from t on only sees
// copies updated after them.
func (s *state) prune(t time.Time) {
	for id, at := range s.removed {
		if at.Before(t) {
			delete(s.removed, id)
		}
	}
}
