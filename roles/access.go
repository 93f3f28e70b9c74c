package roles

import (
	"slices"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
)

// ChatState is what the predicates need to know about a chat besides the
// viewer's role. The engine fills it from the CRM (Responsible), from the
// claim store (Offered, ClaimedBy) and from the channel's owner-off-shift
// policy (Covering); see the package doc for how they interact.
type ChatState struct {
	// Responsible is the user responsible for the client in the CRM: the
	// open deal's responsible user, else the contact's. Empty: nobody.
	Responsible crm.UserID
	// Offered is the first-responder group the chat was offered to. Empty:
	// the chat is not offered.
	Offered []crm.UserID
	// ClaimedBy is the winner of the first-responder claim, while the claim
	// is recorded. Set, it overrides Responsible.
	ClaimedBy crm.UserID
	// Covering are the employees covering for the chat's owner (the
	// claimer, else Responsible) while the owner is away; see the package
	// doc for what it grants. Empty: nobody covers.
	Covering []crm.UserID
}

// Covers reports whether user is covering for the chat's owner.
func (s ChatState) Covers(user crm.UserID) bool {
	return user != "" && slices.Contains(s.Covering, user)
}

// OfferedTo reports whether the chat is offered to user and not yet claimed
// (so a reply from user would claim it).
func (s ChatState) OfferedTo(user crm.UserID) bool {
	return s.ClaimedBy == "" && user != "" && slices.Contains(s.Offered, user)
}

// Reason says why a predicate answered as it did. The values are readable
// English, stable, and suitable for logs and explanations.
type Reason string

// Reasons. Each applies to both predicates unless noted.
const (
	// ReasonNoRole: the user has no role on the chat's channel (or the user
	// ID is empty). Denied.
	ReasonNoRole Reason = "no role on the channel"
	// ReasonQualityControl: quality control sees every chat (allowed) and
	// never writes (denied).
	ReasonQualityControl Reason = "quality control: sees every chat, never writes"
	// ReasonSupervisor: a supervisor sees and writes every chat. Allowed.
	ReasonSupervisor Reason = "supervisor: sees and writes every chat"
	// ReasonClaimer: the user claimed the chat. Allowed.
	ReasonClaimer Reason = "claimed the chat"
	// ReasonResponsible: the user is responsible for the client in the CRM
	// and no claim by someone else is recorded. Allowed.
	ReasonResponsible Reason = "responsible for the client"
	// ReasonOffered: the chat is offered to the user and unclaimed. Allowed;
	// from CanWrite it means the reply claims the chat.
	ReasonOffered Reason = "offered to them and unclaimed: a reply claims it"
	// ReasonCovering: a manager in ChatState.Covering who is neither the
	// owner nor offered the chat. Allowed.
	ReasonCovering Reason = "covering for the client's owner, who is away"
	// ReasonClaimedByOther: another employee claimed the chat. Denied to
	// managers.
	ReasonClaimedByOther Reason = "claimed by another employee"
	// ReasonNotTheirs: a manager who is neither responsible for the client
	// nor offered the chat nor covering for its owner. Denied.
	ReasonNotTheirs Reason = "another employee's client, not offered to them"
)

// CanView is the visibility rule for a user holding role: whether they may
// see a chat in state st. It is the role-level form of [Table.CanView].
func CanView(role Role, user crm.UserID, st ChatState) (bool, Reason) {
	if user == "" || !role.Valid() {
		return false, ReasonNoRole
	}
	switch role {
	case QualityControl:
		return true, ReasonQualityControl
	case Supervisor:
		return true, ReasonSupervisor
	}
	return manager(user, st)
}

// CanWrite is the write rule for a user holding role: whether they may
// write to the client of a chat in state st. It answers ReasonOffered
// exactly when the write claims the chat. It is the role-level form of
// [Table.CanWrite].
func CanWrite(role Role, user crm.UserID, st ChatState) (bool, Reason) {
	if user == "" || !role.Valid() {
		return false, ReasonNoRole
	}
	switch role {
	case QualityControl:
		return false, ReasonQualityControl
	case Supervisor:
		if st.OfferedTo(user) {
			return true, ReasonOffered
		}
		return true, ReasonSupervisor
	}
	return manager(user, st)
}

// manager is the manager rule; it is the same for seeing and writing.
func manager(user crm.UserID, st ChatState) (bool, Reason) {
	switch {
	case st.ClaimedBy == user:
		return true, ReasonClaimer
	case st.OfferedTo(user):
		return true, ReasonOffered
	case st.ClaimedBy == "" && st.Responsible == user:
		return true, ReasonResponsible
	case st.Covers(user):
		return true, ReasonCovering
	case st.ClaimedBy != "":
		return false, ReasonClaimedByOther
	}
	return false, ReasonNotTheirs
}

// CanView reports whether user may see chat in state st, from the user's
// role on chat.Channel, and why.
func (t *Table) CanView(user crm.UserID, chat channel.Chat, st ChatState) (bool, Reason) {
	return CanView(t.Role(user, chat.Channel), user, st)
}

// CanWrite reports whether user may write to the client of chat in state
// st, from the user's role on chat.Channel, and why. ReasonOffered means
// the write claims the chat (the engine must claim it first).
func (t *Table) CanWrite(user crm.UserID, chat channel.Chat, st ChatState) (bool, Reason) {
	return CanWrite(t.Role(user, chat.Channel), user, st)
}

// Filter returns the items user may see, in their order, using the same
// predicate as [Table.CanView]; state gives each item's chat and state. The
// result is a new slice; items is not modified.
func Filter[T any](t *Table, user crm.UserID, items []T, state func(T) (channel.Chat, ChatState)) []T {
	var out []T
	for _, it := range items {
		chat, st := state(it)
		if ok, _ := t.CanView(user, chat, st); ok {
			out = append(out, it)
		}
	}
	return out
}
