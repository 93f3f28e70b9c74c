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
// [Engine] is the one place where the CRM adapter (crm.Client) and the
// channel adapter (channel.Sender) meet the rules. A host builds it with
// [NewEngine] from a [Config] (channels, roles, global settings; plain
// structs that round-trip through JSON, validated with errors naming the
// field) and feeds it events:
//
//   - [Engine.ClientMessage]: the phone is normalised (package phone, with
//     the "8 counts as +7" setting) and the client found in the CRM by phone,
//     else by messenger identity. A new client gets a contact and a deal at
//     the channel's placement, distributed; a client with an open deal goes
//     to that deal's responsible user (the most recently updated deal); a
//     client whose deals are all closed follows the channel's returning
//     policy. A responsible user who no longer works the channel is replaced
//     through the channel's distribution. The result lists whom to notify,
//     who is responsible, what was created, and why.
//   - [Engine.EmployeeMessage]: the roles decide whether the employee may
//     write; the first reply to an offered chat claims it and makes the
//     replier responsible in the CRM; the message goes out through the
//     Sender; the unanswered streak closes and its task is completed. An
//     employee writing first is routed to the client's existing chat on one
//     of their channels, else their "write first from" channel, else their
//     only channel, else an [*AmbiguousChannelError].
//   - [Engine.SalesbotMessage]: links expanded when the setting is on; never
//     an employee's reply.
//   - [Engine.EmployeeReplied]: a reply typed outside the engine (the
//     provider's app, the phone; a webhook echo) claims and closes as a
//     reply would, sending nothing; echoes of the engine's own sends are
//     recognised and ignored.
//   - [Engine.ResetUnread]: "no reply needed" closes the streak's task.
//
// Decisions are values: notifications are returned, not delivered.
//
// Decision on a point the seed leaves open: a task opened while the chat
// is offered (Unsorted, not yet claimed) has no responsible user of its own
// (the CRM's default applies); the claimer's reply closes it.
//
// # Exactly once and nothing lost
//
// Events of one chat are serialized inside an Engine; progress is recorded
// per message ID in the [StateStore] (the round-robin pick before the CRM
// writes that depend on it; the client record right after it is created;
// "done" at the end). A redelivered message has no second effect; a
// failure midway returns the error to the host and a redelivery finishes
// the work (the CRM is searched again first, so a deal whose creation
// response was lost is found rather than created twice).
//
// CRM calls per event on the in-memory fake (TestCRMCallsPerEvent): live
// chat 0 warm and 1 cold (ListDeals); new client 3 (find, create deal with
// contact, task); a streak of 10 messages adds no task call after the
// first. On the amoCRM adapter see crm/amocrm's TestEngineRequestsPerEvent.
// The live-chat path runs at about 2.4 µs per message on one goroutine
// (≈ 420k messages/s, BenchmarkEngineLiveChat, 16 allocs, one of them the
// benchmark's own message ID); the in-memory
// state is about 700 bytes per tracked chat (client record and one
// processed message ID, measured over 1M chats by TestMemoryPerChat).
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
