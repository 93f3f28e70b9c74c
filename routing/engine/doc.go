// Package engine is where crmbridge's rules meet a CRM adapter (crm.Client)
// and a channel adapter (channel.Sender). A host builds an [Engine] with
// [New] from a [Config] (channels, roles and global settings: plain structs
// that round-trip through JSON) and feeds it events; each event returns a
// result saying what was decided, whom to notify, and why.
//
// # Rules
//
//   - [Engine.ClientMessage]: the phone is normalised (package phone, with
//     the "8 counts as +7" setting) and the client found in the CRM by
//     phone, else by messenger identity. A new client gets a contact and a
//     deal at the channel's placement, distributed by the channel's rule
//     (package routing: first responder on the Unsorted stage, round robin
//     elsewhere). A client with an open deal goes to that deal's
//     responsible user (the most recently updated deal). A client whose
//     deals are all closed follows the channel's returning policy. A
//     responsible user who no longer works the channel is replaced through
//     the channel's distribution. A group chat's message creates nothing
//     ([OutcomeGroup]).
//   - [Engine.EmployeeMessage]: the roles decide whether the employee may
//     write; the first reply to an offered chat claims it and makes the
//     replier responsible in the CRM; the message goes out through the
//     Sender; the unanswered streak closes and its task is completed. An
//     employee writing first is routed to the client's existing chat on one
//     of their channels, else their "write first from" channel, else their
//     only channel, else an [*AmbiguousChannelError].
//   - [Engine.SalesbotMessage]: links expanded when the setting is on;
//     never an employee's reply.
//   - [Engine.EmployeeReplied]: a reply typed outside the engine (the
//     provider's app, the phone; a webhook echo) claims and closes as a
//     reply would, sending nothing; echoes of the engine's own sends are
//     recognised and ignored.
//   - [Engine.ResetUnread]: "no reply needed" closes the streak's task.
//   - [Engine.Refresh], from CRM webhooks (a deal's status, responsible
//     or deletion): the client is read from the CRM at once. A known deal
//     closed or deleted, with no other deal of the contact open, makes
//     the distribution forget the client (its unclaimed offer, capacity
//     hold, escalation clock and place in the queue); a deal handed from
//     its owner to someone else moves the client's capacity hold. Every
//     event that reads the CRM for a stale record applies the same rules.
//     [Engine.Invalidate] (contact changes) only marks the record stale
//     for the next event.
//   - [Engine.Tick], on the host's timer: escalations of clients nobody
//     answered in time, and clients waiting in a channel's queue, under
//     the channel's distribution features (ChannelConfig.Features: capacity,
//     weights, schedules, escalation, waiting queue; see package routing).
//
// Owner off shift (ChannelConfig.OwnerOffShift, see package routing) applies
// to a known client (an open deal, or a returning client) whose responsible
// user works the channel and is away at the event's time: the message's
// time for a client's message, the engine's clock (Options.Now) for
// [Engine.EmployeeMessage], [Engine.ResetUnread], [Engine.CanView] and
// [Engine.VisibleChats]. Under keep, nothing
// changes. Under reassign, the client is distributed again and changes
// hands in the CRM. Under cover, the channel's eligible employees are
// notified of the client's messages and cover (roles.ChatState.Covering):
// they see the chat and write to the client, their reply claims nothing and
// leaves the CRM's responsible user as it was, and it is a reply like any
// other: it closes the unanswered streak, completes its task and stops the
// escalation clock. The cover lasts while the responsible is away; once
// they are available again, a colleague's write is refused with a
// [*PermissionError] (roles.ReasonNotTheirs). An offered chat is never
// covered: its offer decides.
//
// One owner per client: when a returning client whose deals are all closed
// gets a new deal (policy new_deal), the contact's responsible user
// follows the new deal's, so the client belongs to one employee.
//
// A task opened while the chat is offered (Unsorted, not yet claimed) has
// no responsible user of its own (the CRM's default applies); the
// claimer's reply closes it.
//
// Notifications are decisions, not deliveries: the host delivers them.
//
// # Decisions and effects
//
// Each event loads a snapshot (the chat's client record, its offer or
// claim, an unfinished earlier delivery of the same message), decides with
// a pure function of that snapshot and the settings, and hands the plan to
// one apply path, the only code that talks to the CRM and the Sender. The
// result's [Explanation] is built from values along the way and rendered
// only when asked (Explanation.String).
//
// # State
//
// The engine's own state is a [State]: leases on chats, a [ClientRecord]
// per chat, and a [Journal] of processed events. [MemoryState] keeps it in
// one process; a shared implementation (package routing/pgstore) lets
// several host instances and restarts keep every guarantee of [Engine]
// without routing a chat's events to one instance. Claims and rotation
// (package routing) and unanswered streaks (package tasks) have their own
// stores, shared the same way.
//
// Settings change while the engine runs with [Engine.Update].
//
// # Errors
//
//   - [ErrBadEvent] / [*EventError]: a malformed event, naming the field in
//     the event's own terms; [ErrUnknownChannel] and [ErrUnknownEmployee]
//     refine it.
//   - [ErrForbidden] / [*PermissionError]: the roles refuse the action; a
//     refused reply to a chat someone else claimed wraps a
//     *routing.ClaimedError naming the winner.
//   - [ErrAmbiguousChannel] / [*AmbiguousChannelError]: choose a channel.
//   - [ErrInvalid] / [*ConfigError]: a bad configuration or option, naming
//     the field once.
//   - [ErrLeaseLost]: the event lost its chat's lease midway; deliver it
//     again.
//
// Any other error is the CRM's, the Sender's or a store's; the event left
// recorded progress that a redelivery completes.
//
// # Observability
//
// [Options].Logger receives one record per event and [Options].Observer
// one [EventInfo], for metrics; both are off by default.
//
// # Testing
//
// The decision functions have table tests that use no fake. The scenario
// tests run every rule against crmtest.Fake and channeltest.Recorder,
// including lost answers (the CRM did the work, the call failed),
// redeliveries in any order, a restart over fresh state, and settings
// updated while events run under the race detector; the same guarantees
// are checked on the amoCRM adapter against its fake server, and a soak
// test delivers new clients' messages in random order with creates failing
// before or after the CRM's work and restarts (CRMBRIDGE_LONG=1 runs it
// longer). Tests print the CRM calls each kind of event and of Refresh
// costs (go test -v -run CRMCallsPer). Package enginetest has the
// conformance suite of [State].
package engine
