package channel

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ID identifies a connected channel (a provider's channel ID).
type ID string

// Kind is the messenger a channel belongs to. The set is open.
type Kind string

// Known kinds.
const (
	WhatsApp  Kind = "whatsapp"
	Telegram  Kind = "telegram"
	Instagram Kind = "instagram"
	VK        Kind = "vk"
	Avito     Kind = "avito"
	Viber     Kind = "viber"
	MAX       Kind = "max"
)

// Channel is one connected messenger account.
type Channel struct {
	// ID is the provider's ID of the channel (Wazzup: channelId).
	ID ID
	// Kind is the channel's messenger: one of the known kinds, or for a
	// messenger this package does not name the provider's own name for
	// it, in lower case (Wazzup: the channel's transport, see
	// wazzup.TransportKind); empty only when the provider names none.
	Kind Kind
	// Name is how people recognise the account: its number, username or
	// ID (Wazzup: plainId); may be empty, and then readers such as task
	// texts show ID instead.
	Name string
}

// Chat is a conversation with one client on one channel. ChatID is the
// client's ID on the messenger: international digits without "+" for
// WhatsApp ("79161234567"), a user ID or username elsewhere.
// Chat is comparable and can key a map.
type Chat struct {
	// Channel is the channel the conversation runs on (Wazzup:
	// channelId); required in an Outgoing.
	Channel ID
	// ChatID is the client's ID on the messenger (Wazzup: chatId), as
	// described above; required in an Outgoing.
	ChatID string
}

// String implements fmt.Stringer.
func (c Chat) String() string { return string(c.Channel) + "/" + c.ChatID }

// Direction tells whether a message came from the client or went to them.
type Direction int

// Directions.
const (
	Inbound  Direction = iota // from the client
	Outbound                  // to the client
)

// String implements fmt.Stringer.
func (d Direction) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}

// AuthorKind tells who wrote a message.
type AuthorKind int

// Author kinds.
const (
	AuthorClient   AuthorKind = iota // the client
	AuthorEmployee                   // a CRM user; Author.UserID says which
	AuthorSalesbot                   // the CRM's automation bot
	AuthorSystem                     // the integration or provider itself
)

// String implements fmt.Stringer.
func (k AuthorKind) String() string {
	switch k {
	case AuthorClient:
		return "client"
	case AuthorEmployee:
		return "employee"
	case AuthorSalesbot:
		return "salesbot"
	case AuthorSystem:
		return "system"
	}
	return "AuthorKind(?)"
}

// Author is who wrote a message.
type Author struct {
	// Kind tells who wrote the message; the zero value is AuthorClient.
	Kind AuthorKind
	// UserID is the CRM user ID (crm.UserID) when Kind is AuthorEmployee.
	UserID string
}

// Message is one message in a chat, in either direction.
type Message struct {
	// ID is the provider's message ID; it makes deliveries idempotent.
	ID string
	// Chat is the conversation the message belongs to; for a group chat,
	// the group.
	Chat Chat
	// Direction is Inbound for a message from the client, Outbound for
	// one sent to them (Wazzup: isEcho true), including messages an
	// employee wrote outside the integration.
	Direction Direction
	// Author is who wrote the message: the client for an inbound one; for
	// an outbound one the employee (Wazzup: authorId, empty when the
	// employee wrote on the phone itself), Salesbot or system.
	Author Author
	// Text is the message's text; empty for a media-only message.
	Text string
	// ContentURI is a media attachment's address, if any.
	ContentURI string
	// Time is when the message was sent, as the provider reports it
	// (Wazzup: dateTime); zero when the provider did not say.
	Time time.Time
	// Phone is the client's phone number when the provider knows it.
	Phone string
	// Username is the client's username when the provider knows it.
	Username string
	// ClientName is the client's display name, if known.
	ClientName string
	// Group is true when the chat is a group chat (a WhatsApp or Telegram
	// group): Chat names the group and Author a member. A group is not a
	// client: no contact or deal is created for it.
	Group bool
}

// Outgoing is a message to send to a client.
type Outgoing struct {
	// Chat is the conversation to send to; both of its fields are
	// required.
	Chat Chat
	// Text is the message's text. At least one of Text and ContentURI is
	// required; the Wazzup adapter refuses both at once (ErrInvalid), as
	// Wazzup sends one or the other.
	Text string
	// ContentURI is the public address of a file to send as media.
	ContentURI string
	// Author is the employee, Salesbot or system sending it.
	Author Author
	// IdempotencyKey identifies this send: a second Send with the same key
	// sends nothing and returns the first receipt. Required.
	IdempotencyKey string
}

// Receipt is what a Sender returns for an accepted message.
type Receipt struct {
	// ProviderID is the provider's ID of the sent message.
	ProviderID string
	// Duplicate is true when the key was already sent and nothing new went out.
	Duplicate bool
}

// Sender sends messages to clients through a provider.
type Sender interface {
	// Send sends m. Errors: ErrInvalid (empty chat, no text nor content,
	// no idempotency key), ErrNotFound (unknown channel), ErrRejected (the
	// messenger refused, e.g. a blocked client), ErrUnauthorized,
	// ErrRateLimited / ErrUnavailable (transient: retrying with the same
	// key is safe).
	Send(ctx context.Context, m Outgoing) (Receipt, error)
}

// Sentinel errors. Adapters return errors matching one of these
// (errors.Is) for every failure they can classify.
var (
	// ErrInvalid: the message is incomplete or malformed; sending it again
	// unchanged will fail again.
	ErrInvalid = errors.New("channel: invalid message")
	// ErrNotFound: the provider does not know the channel or the chat.
	ErrNotFound = errors.New("channel: unknown channel or chat")
	// ErrRejected: the provider or the messenger refused the message for
	// a reason other than its content (for example a client who blocked
	// the account, a blocked channel or an unpaid one). Not transient.
	ErrRejected = errors.New("channel: rejected by the messenger")
	// ErrUnauthorized: credentials are missing, wrong or revoked. Not
	// transient.
	ErrUnauthorized = errors.New("channel: unauthorized")
	// ErrRateLimited: the provider refused the request because of request
	// rate. Transient.
	ErrRateLimited = errors.New("channel: rate limited")
	// ErrUnavailable: the provider could not be reached or failed (5xx,
	// timeout). Transient.
	ErrUnavailable = errors.New("channel: provider unavailable")
)

// RetryAfterError carries the wait a provider asked for. Err is the
// classification (ErrRateLimited or ErrUnavailable).
type RetryAfterError struct {
	// RetryAfter is how long the provider asked the caller to wait before
	// retrying (Wazzup: the Retry-After header, in seconds or as a date);
	// zero means it asked for no wait.
	RetryAfter time.Duration
	// Err is the classification, matched by errors.Is through Unwrap.
	Err error
}

// Error implements the error interface.
func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.RetryAfter)
}

// Unwrap returns the classification.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Temporary reports whether err is transient, so a retry with the same
// idempotency key may succeed.
func Temporary(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

// Validate checks the fields every Sender requires, with an error matching
// ErrInvalid that names the missing field. Adapters may call it first.
func (m Outgoing) Validate() error {
	switch {
	case m.Chat.Channel == "":
		return fmt.Errorf("%w: Chat.Channel is empty", ErrInvalid)
	case m.Chat.ChatID == "":
		return fmt.Errorf("%w: Chat.ChatID is empty", ErrInvalid)
	case m.Text == "" && m.ContentURI == "":
		return fmt.Errorf("%w: neither Text nor ContentURI is set", ErrInvalid)
	case m.IdempotencyKey == "":
		return fmt.Errorf("%w: IdempotencyKey is empty", ErrInvalid)
	}
	return nil
}
