// Package crmindex keeps an in-memory index of a CRM account's contacts by
// normalised phone number and by messenger identity, and wraps any
// crm.Client so that FindContactsByPhone and FindContactsByIdentity are
// answered from it: with no request to the CRM, and for phones matching
// however the number was typed ("8 (916) 123-45-67", "+7 916 1234567",
// "89161234567;"), whatever the CRM's own search does with formatting.
//
//	idx := crmindex.New(client, crmindex.Options{Phone: settings.PhoneOptions()})
//	if _, err := idx.Sync(ctx); err != nil { … }   // at start-up
//	// give idx to the engine as its crm.Client; then:
//	idx.Apply(contact) / idx.Remove(id)              // from the CRM's contact webhooks
//	idx.CatchUp(ctx)                                 // every few minutes
//
// # Rules
//
// Phones are read with package phone under [Options.Phone], which must be
// the engine's own options (the "numbers written with 8 count as +7"
// setting and the region). A contact is found under the reading Parse
// chooses for each of its phones, and under the other reading of an
// ambiguous phone only when the phone was typed as exactly that reading's
// digits: the same rule as phone.Match, so the index finds exactly the
// contacts an adapter's FindContactsByPhone would.
//
// Messenger identities (crm.Contact.Identities: a Telegram user, an
// Instagram handle) are indexed as they are stored, with the Kind
// compared without regard to case and the Value exactly, as the amoCRM
// adapter compares them; an identity without a Kind or a Value is not
// indexed. Phones and identities come from the same copies of the
// contacts, so everything below holds for both.
//
// Filling: [Index.Sync] pages through every contact with the wrapped
// client's crm.ContactLister capability (250 contacts per page by
// default) and builds a new index, swapped in when complete. After it,
// three things keep the index current:
//
//   - [Index.Apply] and [Index.Remove], which the host calls from the
//     CRM's webhooks (contact added, updated or restored; deleted or
//     merged away).
//     Copies are ordered by their UpdatedAt to the second, so a late
//     webhook never replaces a copy from a later second.
//   - [Index.CatchUp], which the host calls periodically: it asks for the
//     contacts updated since the start of the previous pass, less
//     [Options.Overlap]. It is the safety net for lost webhooks. It
//     cannot see deletions (crm.ContactLister lists the contacts that
//     exist); a deleted contact stays until Remove, until a call on it
//     fails with crm.ErrNotFound (ListDeals, SetContactResponsible), or
//     until the next Sync.
//   - the Index's own writes: CreateContact and CreateDeal index the
//     contact they created before returning; SetContactResponsible and
//     SetResponsible update the responsible user of the indexed copies
//     (for SetResponsible, of the deal's contacts the Index has seen
//     through CreateDeal or ListDeals).
//
// # Freshness
//
// A contact created or changed in the CRM at time t (by hand, by another
// integration, by another host instance) is found by this Index:
//
//   - as soon as the host calls Apply with it (webhooks);
//   - otherwise once the first CatchUp that starts after t has returned,
//     provided this host's clock is at most Options.Overlap ahead of the
//     CRM's. With a CatchUp every I, the lag is at most I plus the
//     duration of one CatchUp (one request per page of changed contacts);
//   - and, whatever the lag, at the first lookup of its number or
//     identity when misses are confirmed (the default), if the CRM's own
//     search finds it — see below.
//
// Before the first successful Sync, every lookup goes to the wrapped
// client. [Index.Status] reports when the index was last caught up.
//
// # A number or identity not in the index
//
// By default a miss is confirmed: FindContactsByPhone (or
// FindContactsByIdentity) asks the wrapped client once (one search) and
// returns its answer, adding what it found to the index. A miss therefore costs exactly what a lookup without the
// index costs, and a hit costs nothing; since most lookups of a running
// integration are of known clients, most cost nothing. The confirmation
// finds what the CRM's search finds. amoCRM's contact search is a
// full-text search of the stored text, and its adapter searches by the
// ten national digits: that finds numbers stored as "+79161234567" (as
// the engine writes them) or "89161234567", but not one typed
// "8 (916) 123-45-67" — such a contact is in the index once a Sync or
// CatchUp has seen it. Identities are confirmed with the wrapped client's
// FindContactsByIdentity, which finds an identity as the adapter stores
// it.
//
// With [Options.TrustMisses] a miss answers "no contact" without a
// request. Use it only with a single host instance, or when creating a
// duplicate contact is acceptable: within the lag above, a contact
// created elsewhere is invisible.
//
// # Several host instances
//
// Each instance keeps its own Index. The rule that keeps two instances
// from creating the same client: a contact for a number (or a messenger
// identity) is created only by a find-then-create sequence
// (FindContactsByPhone, or FindContactsByIdentity, missing, then
// CreateContact or CreateDeal with a new contact) during which
//
//  1. the miss was confirmed by the CRM (misses are confirmed: the
//     default), and
//  2. no other find-then-create sequence for the same number or identity
//     runs, on any instance. The engine gives this by holding the chat's
//     lease (the Locker of package routing/engine, shared by the
//     instances) across the whole event, since a WhatsApp chat is one
//     number and a Telegram chat one identity, provided the event ends
//     within the lease's time to live (a CRM write cannot be fenced); a
//     host that finds clients outside the engine must hold an equivalent
//     lock keyed by the number or identity.
//
// Then the sequence that comes second sees the first one's contact: its
// own index if the contact was created on this instance or has reached it
// since (Apply, CatchUp), otherwise the confirmation search, since the
// first sequence finished creating before the second began, and a contact
// created with an E.164 phone or an identity is found by the CRM's search
// (the conformance suite checks adapters for both). Without (1) the second
// instance's index may still lack the contact (up to the lag above) and a
// duplicate is created; without (2) both confirmations may run before
// either create, which no index can prevent. One case remains outside
// the rule: the same person writing at the same instant from two chats
// that are not one number (a WhatsApp chat and a Telegram chat giving the
// same phone) holds two leases.
//
// # Memory
//
// The index keeps one copy of each contact (its name, phones as typed,
// identities, responsible user and update time) and, for each distinct
// normalised number and each distinct identity, a map entry listing its
// contacts; an identity entry shares the copy's strings when its Kind is
// in lower case, as messenger kinds are. The memory per
// contact therefore grows with its phones and identities and not with
// anything else the CRM holds about it (deals, notes, other fields).
// Besides, the Index remembers the contact IDs of each deal seen through
// it (see Index), and when each contact removed since shortly before the
// last pass was removed (see Index.Remove). While a
// Sync runs, the previous index and the one being built are both in
// memory.
//
// # Errors
//
// FindContactsByPhone fails with an error matching crm.ErrInvalid for an
// e164 that does not parse, and otherwise with the wrapped client's
// errors (a confirmation's); FindContactsByIdentity fails with the
// wrapped client's errors only (an identity without a Kind or a Value
// goes to it, which refuses it with crm.ErrInvalid as every adapter
// must). Sync and CatchUp return the wrapped client's errors, wrapped
// with how many contacts were read; without the
// crm.ContactLister capability they match errors.ErrUnsupported. A
// failed Sync leaves the previous index in place; a failed CatchUp keeps
// what it read and asks for the same period next time. Every call returns
// an error matching ctx.Err() once ctx is done.
//
// # Testing
//
// The tests run crmtest.TestAdapter on an Index over crmtest.Fake (the
// index must behave as any adapter), compare the index with the Fake's
// own FindContactsByPhone (which uses phone.Match) on generated contacts
// with phones typed in many ways, check that identity lookups of synced
// and own-created contacts make no request, show a contact added or
// edited by hand in the CRM found (by phone and by identity) after a
// CatchUp with no search, test misses with and without confirmation,
// webhook ordering and removals, Sync racing with Apply and lookups under
// -race, and two instances creating one client by phone and by identity
// under many goroutines (and a duplicate when misses are trusted).
//
// BenchmarkSync measures the CPU a Sync spends per contact (reading
// phones, building the index) on pages served from memory, so the request
// time is left out; the time to sync N contacts is then
//
//	⌈N / 250⌉ pages × (1 / rate) + N × CPU per contact
//
// where rate is the CRM's request rate (amoCRM: 7 requests per second),
// so 100 000 contacts take 400 pages ÷ 7 ≈ 57 s of requests plus the
// measured CPU. The benchmark reports both figures for 100 000 contacts,
// and the heap the index keeps per contact, for contacts with phones only
// and with a Telegram identity each. BenchmarkFind and
// BenchmarkFindIdentity measure a lookup that hits.
package crmindex
