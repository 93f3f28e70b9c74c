// Package roles holds the per-channel permission rules of crmbridge: which
// role an employee has on a channel, whether they receive new clients there,
// and one pair of predicates deciding who may see and who may write a chat.
//
// Values in, answers out: the package does no I/O and keeps no global state.
// A [Table] is immutable once built and safe for concurrent use.
//
// # Rules
//
// Roles are per channel; an employee may hold different roles on different
// channels, and has no access at all to a channel where they hold none.
//
//	role             sees                                      may write
//	quality control  every chat of the channel                 nothing, ever
//	manager          chats of their clients, plus chats         their clients, plus an
//	                 offered to them and not yet claimed,       offered chat (the reply claims it)
//	                 plus chats they cover for an absent owner  and a chat they cover
//	supervisor       every chat of the channel                 every chat
//
// "Receives new clients" ([Assignment.ReceivesNewClients]) enters an employee
// into distribution (first responder or round robin) on that channel. Only a
// role that may write can hold it, so quality control never does.
//
// Whose client a chat is comes from two inputs of [ChatState]:
//
//   - ClaimedBy: the winner of a first-responder claim. While a claim is
//     recorded it is the last word: the claimer is the owner of the chat and
//     every other manager loses it at once, including a manager the CRM
//     still names as responsible (the CRM lags the claim by one update).
//   - Responsible: the user responsible for the client in the CRM (the open
//     deal's responsible user, else the contact's). It decides ownership
//     whenever no claim is recorded.
//
// So the engine, after a claim by X, sets the CRM's responsible user to X
// and, once the CRM confirms, releases the claim record; from then on the
// CRM alone decides, and a later reassignment in the CRM takes effect.
//
// An offered chat (Offered non-empty, ClaimedBy empty) is visible to, and
// writable by, the employees it was offered to; a reply from one of them
// claims it. [Table.CanWrite] reports [ReasonOffered] exactly when the write
// would claim the chat. A supervisor who was not offered the chat may still
// write; that reply claims nothing and the chat stays offered. Once claimed,
// the chat disappears for the other managers immediately: there is no cached
// grant, every check is computed from the state passed in.
//
// A covered chat (Covering non-empty) is one whose owner, the claimer or
// else the responsible user, is away while the channel's policy lets
// colleagues cover. The managers listed in Covering see and write it
// ([ReasonCovering]); their writes claim nothing and the owner stays the
// owner. The cover ends the moment the state passed in no longer lists
// them (the owner is back): those managers are refused again. Covering grants
// nothing to quality control (it never writes) and adds nothing for a
// supervisor (who sees and writes every chat).
//
// The same predicate serves single checks and lists: [Filter] keeps exactly
// the items for which [Table.CanView] is true, so a list can never show a
// chat (its title, its last message) that opening it would refuse.
//
// # Errors
//
// [NewTable] rejects impossible settings with an [*EntryError] naming the
// entry (index, user, channel) and the reason; it matches [ErrInvalid]:
// an empty user, channel or role, an unknown role, quality control
// receiving new clients, and the same user listed twice on one channel.
//
// # Testing
//
// The predicates are tested over the whole matrix (every role, responsible
// user, offer, claim and cover state), against an independently written oracle,
// and Filter is checked against CanView item by item.
package roles
