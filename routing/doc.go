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
// supervisor, see package roles), "receives new clients" on, at work by
// the channel's [Schedule] for the employee (if any), available according
// to the host's optional [Availability] hook (nil: everyone), and below
// the channel's capacity limit (if any). Quality control is never
// eligible.
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
// # Beyond equal shares: per-channel features
//
// [ChannelSettings] also carries the [Features] below; each one's zero
// value is the behaviour described above, and [Distributor.Assign] applies
// them all to a new client at the event's time ([Request]).
//
//   - Capacity ([Features.Capacity], CapacityOf): the most open
//     clients and unclaimed first-responder offers an employee holds on
//     the channel, never exceeded under concurrency: a round-robin pick,
//     an offer and a claim ([Distributor.ClaimWithin]) each count in one
//     atomic store operation. What counts, and for how long, is defined
//     at [Features.Capacity].
//   - Schedules ([Schedule]): weekly shifts in a time zone, days off and
//     leave; availability follows at the event's time, across daylight-
//     saving changes. The [Availability] hook still applies on top.
//   - Weighted shares ([Features.Weights], [SmoothWeighted]): a
//     smooth weighted round robin whose counts stay within 1 of the
//     weighted share while the team is stable.
//   - Waiting queue ([QueueWhenNobody]): with nobody eligible, the client
//     waits and [Distributor.Drain] assigns the queue oldest-first once
//     someone is eligible, instead of the offer to every writer
//     ([Distributor.Serve] assigns one waiting client, for callers that
//     lock each chat).
//   - Escalation ([Escalation]): a client unanswered within a set time
//     passes to the next in rotation, or the offer widens, at most once per
//     deadline across instances ([Distributor.DueEscalations],
//     [Distributor.Escalate]).
//   - Owner off shift ([OwnerPolicy], [Distributor.Owner]): keep the owner,
//     let eligible colleagues cover, or reassign.
//
// When a client's deal closes, [Distributor.Forget] ends what the
// features hold for it: its place under a capacity limit (an abandoned
// offer's too), its escalation clock and its place in the queue.
//
// # State
//
// Claims ([ClaimStore]), rotation order and open-client holds
// ([RotationStore]), waiting queues ([QueueStore]) and escalation watches
// ([EscalationStore]) live in stores whose every method is one atomic
// operation, so several host instances can share them and a new
// [Distributor] on the same state continues the same sequence after a
// restart. A store implements the atomic update only: the fairness rule is
// a pure [Chooser] that [RotationStore.Pick] calls inside its operation
// ([LeastRecentlyServed], [SmoothWeighted], composed with capacity by the
// Distributor). Offers are idempotent per chat (the first offer wins); a
// round-robin pick is idempotent when keyed by the chat (capacity, queue)
// and otherwise takes a turn per call, so the caller makes one pick per new
// client. [MemoryClaims], [MemoryRotation], [MemoryQueue] and
// [MemoryEscalations] are the in-memory stores, ready as zero values. The
// interface docs show how each method maps to PostgreSQL without
// read-then-write races; the conformance suites every store runs are in
// routing/routingtest.
//
// # Explanations
//
// Every [Decision] carries an [Explanation]: the rule applied, who was
// considered, who was eligible, who was skipped and why ([SkipReason]: role,
// switch, availability, capacity, shift, day off, leave, no reply), the
// rotation position, the open count and limit, the weight, when a client
// was queued, the escalation's number, the owner's absence, and whether a
// fallback applied. Its String method gives one readable line.
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
//   - [ErrStaleWatch]: an escalation's compare-and-swap lost (another
//     instance or a redelivery escalated first).
//   - [ErrAtCapacity] / [*AtCapacityError]: a claim by an employee at
//     their capacity limit ([Distributor.ClaimWithin]).
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
// (testdata/rotation_first100.golden, regenerate with
// -update-rotation-golden), and a restart-continuity test. The features
// have their own: 50 simultaneous clients on four Distributors sharing
// one store against a limit of 3 (the open counts sampled during the
// race), 80 simultaneous first-responder clients on four Distributors
// whose offers, claims, withdrawals and drains never take anyone past
// their limit (sampled throughout, and checked against the records),
// oldest-first draining by concurrent Distributors, one escalation
// among 8 instances per deadline, escalation and draining with another
// instance's call placed where a multi-step version would let it land,
// schedules
// across time zones and both daylight-saving changes, the weighted-share
// bound over random weights and churn and against an adversary choosing
// the candidates, cases ported from Chatwoot's and Rocket.Chat's
// assignment tests, and a golden file of every feature's explanations
// (testdata/features.golden, -update-features-golden). The store suites
// in routing/routingtest run against the memory stores and against
// deliberately broken ones. Benchmarks cover claim and pick, with and
// without capacity and weights.
package routing
