package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

// Sentinel errors of the claim primitive.
var (
	// ErrAlreadyClaimed: another employee claimed the chat first. Matched
	// by [*ClaimedError], which names the winner.
	ErrAlreadyClaimed = errors.New("routing: chat already claimed")
	// ErrNotOffered: the chat is not offered to the user (no open offer
	// for the chat, or the user is not in its group). Matched by
	// [*NotOfferedError].
	ErrNotOffered = errors.New("routing: chat not offered to this user")
)

// ClaimedError is returned to every claimant but the winner. It matches
// ErrAlreadyClaimed.
type ClaimedError struct {
	// Chat is the chat that was claimed.
	Chat channel.Chat
	// Winner is the employee whose claim won; never empty.
	Winner crm.UserID
}

// Error implements the error interface.
func (e *ClaimedError) Error() string {
	return fmt.Sprintf("routing: chat %s already claimed by %s", e.Chat, e.Winner)
}

// Is reports whether target is ErrAlreadyClaimed.
func (e *ClaimedError) Is(target error) bool { return target == ErrAlreadyClaimed }

// NotOfferedError is returned when a user claims a chat that is not offered
// to them. NoOffer is true when the chat has no offer at all. It matches
// ErrNotOffered.
type NotOfferedError struct {
	// Chat is the chat that was claimed or widened.
	Chat channel.Chat
	// User is the claimant; empty when the error comes from
	// [ClaimStore.Widen], which claims for nobody.
	User crm.UserID
	// NoOffer is true when the chat has no offer record at all, false
	// when it has one whose group does not include User.
	NoOffer bool
}

// Error implements the error interface.
func (e *NotOfferedError) Error() string {
	if e.NoOffer {
		return fmt.Sprintf("routing: chat %s is not offered to anyone (claim by %s)", e.Chat, e.User)
	}
	return fmt.Sprintf("routing: chat %s is not offered to %s", e.Chat, e.User)
}

// Is reports whether target is ErrNotOffered.
func (e *NotOfferedError) Is(target error) bool { return target == ErrNotOffered }

// ClaimState is the recorded first-responder state of one chat.
type ClaimState struct {
	// Chat is the chat the record belongs to; zero when there is no
	// record (a Get with found false).
	Chat channel.Chat
	// Offered is the group the chat was offered to, in offer order,
	// without duplicates. Read-only: it may share memory with the store.
	Offered []crm.UserID
	// ClaimedBy is the winner; empty while unclaimed.
	ClaimedBy crm.UserID
}

// Claimed reports whether someone claimed the chat.
func (s ClaimState) Claimed() bool { return s.ClaimedBy != "" }

// OfferedTo reports whether user is in the offered group.
func (s ClaimState) OfferedTo(user crm.UserID) bool { return slices.Contains(s.Offered, user) }

// ChatState combines the claim state with the CRM's responsible user into
// the input of the roles predicates.
func (s ClaimState) ChatState(responsible crm.UserID) roles.ChatState {
	return roles.ChatState{Responsible: responsible, Offered: s.Offered, ClaimedBy: s.ClaimedBy}
}

// ClaimStore records first-responder offers and claims. Every method is one
// atomic operation and safe for concurrent use, across processes when the
// store is shared; each returns an error matching ctx.Err() once ctx is
// done. [MemoryClaims] implements it.
//
// A record's life: Offer creates it (unclaimed), Claim sets its winner
// exactly once, Release deletes it so that a later Offer starts a new round.
// The winner never changes while the record exists.
//
// On PostgreSQL each method is one statement on a table keyed by (channel,
// chat), with no read-then-write race:
//
//	Offer:   INSERT … ON CONFLICT (channel, chat_id) DO UPDATE SET offered = claims.offered
//	         RETURNING offered, claimed_by, (xmax = 0) AS created
//	Claim:   UPDATE claims SET claimed_by = $user WHERE channel = $1 AND chat_id = $2
//	         AND $user = ANY(offered) AND (claimed_by IS NULL OR claimed_by = $user)
//	         RETURNING offered, claimed_by
//	         -- no row: SELECT the record to build the typed error; the
//	         -- winner cannot change between the two, so the answer is exact
//	Widen:   UPDATE claims SET offered = offered || array(SELECT u FROM unnest($3::text[]) u
//	         WHERE u <> ALL(offered)) WHERE … AND claimed_by IS NULL RETURNING offered, claimed_by
//	         -- no row: SELECT the record (claimed: return it; none: NotOffered)
//	Get:     SELECT offered, claimed_by FROM claims WHERE …
//	Release: DELETE FROM claims WHERE …
type ClaimStore interface {
	// Offer records that chat is offered to users (non-empty, no empty
	// IDs; duplicates are dropped, order kept). If the chat already has a
	// record, Offer leaves it unchanged — the first offer wins, so retries
	// and concurrent offers are harmless — and returns it with created
	// false. Bad arguments: an error matching ErrInvalid.
	Offer(ctx context.Context, chat channel.Chat, users []crm.UserID) (st ClaimState, created bool, err error)

	// Claim makes user the winner of chat if it is unclaimed and user is in
	// the offered group. Among any number of concurrent claims exactly one
	// succeeds; the others get a [*ClaimedError] naming the winner. A claim
	// by the winner again succeeds (idempotent). A user not offered the
	// chat, or a chat without an offer, gets a [*NotOfferedError].
	Claim(ctx context.Context, chat channel.Chat, user crm.UserID) (ClaimState, error)

	// Widen adds users (no empty IDs) to the offered group of an
	// unclaimed chat, after the current members, without duplicates, and
	// returns the record: an offer that escalates. A claimed chat is
	// returned unchanged (the claim stands); a chat without an offer gets
	// a [*NotOfferedError] with NoOffer. One atomic operation: a claim
	// racing with Widen either wins before it (and stands) or happens
	// after it.
	Widen(ctx context.Context, chat channel.Chat, users []crm.UserID) (ClaimState, error)

	// Get returns the chat's record; found is false when there is none.
	Get(ctx context.Context, chat channel.Chat) (st ClaimState, found bool, err error)

	// Release deletes the chat's record (nothing to delete is not an
	// error). The engine calls it once the CRM names the winner as
	// responsible, or to withdraw an offer.
	Release(ctx context.Context, chat channel.Chat) error
}
