// Package routing decides who gets a client's conversation: the per-channel
// distribution rules (first responder, round robin, returning clients) and
// the state they need, behind small interfaces with atomic operations.
//
// The distribution part is pure decision logic over two stores: it does no
// network I/O itself and keeps no global state.
//
// # Rules
//
// Each channel has [ChannelSettings]: the pipeline and stage where a new
// client's deal is created, and the returning-client policy. The stage
// decides the [Mode]:
//
//   - Unsorted stage: [FirstResponder]. The chat is offered to every
//     employee of the channel who receives new clients and is available
//     ([Distributor.Offer]); all of them are notified and see it. The first
//     reply claims it ([Distributor.Claim]): exactly one employee wins, even
//     when several reply at the same instant; the others get a
//     [*ClaimedError] naming the winner. A reply claims only if its author
//     was offered the chat; a supervisor who was not may still write, and
//     the chat stays offered. Once claimed, the chat is invisible to the
//     other managers at once (package roles, given the new [ClaimState]).
//   - Any other open stage: [RoundRobin]. One employee is chosen
//     ([Distributor.RoundRobin]), only they are notified, and they are made
//     responsible at once.
//
// Nobody eligible (everyone switched off or unavailable): the deal is still
// created and the chat is offered to everyone who may write on the channel
// ([Distributor.OfferToWriters]); [Distributor.Distribute] applies the mode
// and this fallback, and the decision says why (Explanation.Fallback).
//
// Returning client whose deals are all closed ([ReturningPolicy]):
// [NotifyResponsible] creates no deal and notifies the user responsible in
// the CRM; [NewDeal] creates a deal as for a new client (same placement and
// distribution) and reuses the existing contact.
//
// Eligible means: a role that may write on the channel (manager or
// supervisor, see package roles), "receives new clients" on, and available
// according to the host's optional [Availability] hook (nil: everyone).
// Quality control is never eligible.
//
// # Equal shares
//
// Round robin serves the least recently served eligible employee, with
// ties (employees never served) broken by the smaller user ID in byte
// order. It is not a lifetime counter, which would flood an employee back
// from leave. The state per channel is a sequence number and each member's
// last-served number ([RotationStore]).
//
// Guarantee: for any two employees continuously eligible throughout a
// period, the numbers of clients each got in that period differ by at most
// one — under concurrent arrivals, and while others join, leave, switch
// "receives new clients" off, or are marked unavailable. A newcomer or a
// returning employee gets the next client and then waits a full cycle: at
// most one pick per cycle, never a burst.
//
// # Claims and their interaction with the CRM
//
// The claim record ([ClaimState]) is the last word on whose client an
// offered chat is until the CRM catches up: the engine sets the CRM's
// responsible user to the claimer and then releases the record
// ([Distributor.Release]); from then on the CRM alone decides, so a later
// reassignment in the CRM takes effect. [ClaimState.ChatState] builds the
// input of the roles predicates.
//
// # State
//
// Claims ([ClaimStore]) and rotation order ([RotationStore]) live in
// stores whose every method is one atomic operation, so several host
// instances can share them and a new [Distributor] on the same state
// continues the same sequence after a restart. Offers are idempotent per
// chat (the first offer wins); a round-robin pick is not keyed by chat, so
// the caller makes one pick per new client. [MemoryStore] implements
// both in memory. The interface docs show how each method maps to one
// PostgreSQL statement or transaction without read-then-write races.
//
// # Explanations
//
// Every [Decision] carries an [Explanation]: the rule applied, who was
// considered, who was eligible, who was skipped and why ([SkipReason]), the
// rotation position, and whether a fallback applied. Its String method
// gives one readable line.
//
// # Errors
//
//   - [ErrAlreadyClaimed] / [*ClaimedError]: someone else won the claim.
//   - [ErrNotOffered] / [*NotOfferedError]: the claimant was not offered the
//     chat, or the chat has no offer.
//   - [ErrNoEligible] / [*NoEligibleError]: a rule found nobody eligible;
//     it lists the skipped employees.
//   - [ErrInvalid] / [*SettingsError]: bad settings (the error names the
//     field) or bad arguments.
//
// Store methods also return ctx.Err() once the context is done.
//
// # Engine
//
// Package routing/engine wires these rules to a CRM adapter and a channel
// adapter: it takes a host's events, decides with this package's rules, and
// applies the decisions to the CRM.
//
// # Testing
//
// The tests run 64 goroutines × 1000 rounds on one claim under -race
// (exactly one winner each round), a randomized property test of the
// pairwise fairness bound under joins, leaves, toggles, availability
// changes and concurrency, a golden file of the first 100 picks
// (testdata/rotation_first100.golden, regenerate with -update), and a
// restart-continuity test. Benchmarks cover claim and pick.
package routing
