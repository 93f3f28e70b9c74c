package wazzup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/crmbridge/crmbridge/channel"
)

// MaxBatch is the most entities Wazzup accepts in one POST /v3/users,
// /v3/contacts or /v3/deals; Account splits longer lists.
const MaxBatch = 100

// Role is an employee's role on a channel in Wazzup's integration
// settings. Wazzup's API v3 has no route to set roles: an administrator
// sets them in Wazzup, and an Account is told what they are (Member) to
// check what Wazzup's window will show.
type Role string

// Wazzup's roles and what its chat window shows to each.
const (
	// RoleQualityControl sees every chat of the channel, writes nothing.
	RoleQualityControl Role = "qualityControl"
	// RoleSalesRep (Russian «Менеджер») sees the clients whose contact or
	// deal names them responsible, and, with ReceivesNewClients, new
	// clients nobody is responsible for yet.
	RoleSalesRep Role = "salesRep"
	// RoleManager (Russian «Руководитель») sees every chat of the channel.
	RoleManager Role = "manager"
)

// Member is one employee's setup on one channel in Wazzup.
type Member struct {
	// User is the employee as pushed to Wazzup (SyncTeam).
	User User
	// Channel is the Wazzup channel the role is on.
	Channel channel.ID
	// Role is the role set in Wazzup's integration settings.
	Role Role
	// ReceivesNewClients is Wazzup's "Receives new clients" switch.
	ReceivesNewClients bool
}

// AccountOptions configures an Account: the Options of a Sender (only
// APIKey, BaseURL, HTTPClient, Limiter, MaxAttempts, Backoff, Now and
// Logger are used) and the team.
type AccountOptions struct {
	Options
	// Team is how the employees are set up in Wazzup, per channel. SyncTeam
	// pushes its users; SyncChat uses it to check who Wazzup will show a
	// chat to. Nil: no check.
	Team []Member
	// MaxRemembered bounds how many pushed entities the Account remembers
	// to skip unchanged re-pushes; 0 means 10 000.
	MaxRemembered int
}

// Account keeps Wazzup's view of the team and the clients in step with
// the CRM's: it upserts users, contacts and deals (POST /v3/users,
// /v3/contacts, /v3/deals, at most MaxBatch per request, paced by the
// same Limiter as the Sender) and manages the webhook subscription. It
// is safe for concurrent use.
//
// Upserts are idempotent: Wazzup matches entities by ID, and the Account
// does not send again an entity it already pushed unchanged.
type Account struct {
	api
	team []Member

	mu     sync.Mutex
	pushed map[string]string        // "contact/ID" → JSON last pushed
	chats  map[string][]ContactChat // contact ID → chats synced
	max    int
}

// NewAccount returns an Account. It fails as NewSender does, and when a
// team member has no user ID or an unknown role.
func NewAccount(opt AccountOptions) (*Account, error) {
	a, err := newAPI(opt.Options)
	if err != nil {
		return nil, err
	}
	for i, m := range opt.Team {
		switch {
		case m.User.ID == "" || m.Channel == "":
			return nil, fmt.Errorf("wazzup: AccountOptions.Team[%d]: user ID and channel are required", i)
		case m.Role != RoleQualityControl && m.Role != RoleSalesRep && m.Role != RoleManager:
			return nil, fmt.Errorf("wazzup: AccountOptions.Team[%d]: unknown role %q", i, m.Role)
		}
	}
	acc := &Account{api: a, team: slices.Clone(opt.Team), pushed: map[string]string{},
		chats: map[string][]ContactChat{}, max: opt.MaxRemembered}
	if acc.max <= 0 {
		acc.max = 10000
	}
	return acc, nil
}

// String describes the Account without its API key.
func (a *Account) String() string { return "wazzup.Account(" + a.base + ")" }

// GoString is String, so that %#v does not print the API key either.
func (a *Account) GoString() string { return a.String() }

// SyncTeam upserts the users of the team (each once).
func (a *Account) SyncTeam(ctx context.Context) error {
	var users []User
	seen := map[string]bool{}
	for _, m := range a.team {
		if !seen[m.User.ID] {
			seen[m.User.ID] = true
			users = append(users, m.User)
		}
	}
	return a.UpsertUsers(ctx, users)
}

// UpsertUsers creates or updates users by ID. A user without ID or name,
// or with one over 200 characters, is channel.ErrInvalid naming its
// index; nothing is sent then.
func (a *Account) UpsertUsers(ctx context.Context, users []User) error {
	for i, u := range users {
		if u.ID == "" || u.Name == "" || utf8.RuneCountInString(u.ID) > 200 || utf8.RuneCountInString(u.Name) > 200 {
			return fmt.Errorf("%w: users[%d]: id and name are required, at most 200 characters each", channel.ErrInvalid, i)
		}
	}
	return upsert(ctx, a, "/v3/users", "user", users, func(u User) string { return u.ID })
}

// UpsertContacts creates or updates contacts by ID. A contact without
// ID, responsible user, name or chat is channel.ErrInvalid naming its
// index; nothing is sent then.
func (a *Account) UpsertContacts(ctx context.Context, contacts []Contact) error {
	for i, c := range contacts {
		if c.ID == "" || c.ResponsibleUserID == "" || c.Name == "" || len(c.Chats) == 0 {
			return fmt.Errorf("%w: contacts[%d]: id, responsibleUserId, name and contactData are required", channel.ErrInvalid, i)
		}
	}
	return upsert(ctx, a, "/v3/contacts", "contact", contacts, func(c Contact) string { return c.ID })
}

// UpsertDeals creates or updates deals by ID. A deal without ID,
// responsible user or name is channel.ErrInvalid naming its index;
// nothing is sent then.
func (a *Account) UpsertDeals(ctx context.Context, deals []Deal) error {
	deals = slices.Clone(deals)
	for i, d := range deals {
		if d.ID == "" || d.ResponsibleUserID == "" || d.Name == "" {
			return fmt.Errorf("%w: deals[%d]: id, responsibleUserId and name are required", channel.ErrInvalid, i)
		}
		if d.Contacts == nil {
			deals[i].Contacts = []string{} // Wazzup requires the field
		}
	}
	return upsert(ctx, a, "/v3/deals", "deal", deals, func(d Deal) string { return d.ID })
}

// upsert POSTs the items not pushed unchanged before, in batches of
// MaxBatch, and remembers them once Wazzup accepted them.
func upsert[T any](ctx context.Context, a *Account, path, kind string, items []T, id func(T) string) error {
	type entry struct {
		key, json string
		item      T
	}
	var todo []entry
	a.mu.Lock()
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			a.mu.Unlock()
			return fmt.Errorf("wazzup: encoding %s %q: %w", kind, id(it), err)
		}
		k := kind + "/" + id(it)
		if a.pushed[k] == string(b) {
			continue
		}
		todo = append(todo, entry{k, string(b), it})
	}
	a.mu.Unlock()
	for batch := range slices.Chunk(todo, MaxBatch) {
		list := make([]T, len(batch))
		for i, e := range batch {
			list[i] = e.item
		}
		body, err := json.Marshal(list)
		if err != nil {
			return fmt.Errorf("wazzup: encoding %ss: %w", kind, err)
		}
		if err := a.do(ctx, http.MethodPost, path, body, nil); err != nil {
			return err
		}
		a.mu.Lock()
		if len(a.pushed)+len(batch) > a.max {
			clear(a.pushed) // forgetting costs only a repeated upsert
		}
		for _, e := range batch {
			a.pushed[e.key] = e.json
		}
		a.mu.Unlock()
	}
	return nil
}

// ChatSync is what the host decided about one client's chat, in plain
// values: who owns the client, the deals to show, and who may see the
// chat.
type ChatSync struct {
	// Chat is the client's chat; both of its fields are required.
	Chat channel.Chat
	// Kind is the kind of the chat's channel; it gives the contact's
	// chatType ([ChatType]). Required.
	Kind channel.Kind
	// ContactID, ContactName and ContactURI describe the client's CRM
	// contact; the name defaults to the chat ID.
	ContactID, ContactName, ContactURI string
	// OtherChats are the contact's other chats the host knows of (another
	// messenger, another number). Wazzup's contactData is the contact's
	// whole list, so the Account sends this chat, OtherChats and every
	// chat it synced for the contact before.
	OtherChats []ContactChat
	// Responsible is the user who owns the client now: the winner of a
	// first-responder claim, else the CRM's responsible user. Empty while
	// the chat is offered and unclaimed: nothing is pushed, and Wazzup
	// shows a client nobody is responsible for to its sales reps
	// receiving new clients.
	Responsible string
	// Deals are shown in Wazzup's Deals list; their responsible users see
	// the chat too, so give the open deal (whose responsible is normally
	// Responsible). Contacts is set to ContactID.
	Deals []Deal
	// Viewers are the users who may see the chat (the routing rules'
	// CanView). When set and the Account has a Team, SyncChat checks that
	// Wazzup will show the chat to exactly these users.
	Viewers []string
}

// ErrViewMismatch matches a *ViewError.
var ErrViewMismatch = errors.New("wazzup: Wazzup's chat window would show the chat to other users than the rules allow")

// ViewError says that, with the team set up as AccountOptions.Team says,
// Wazzup's window shows a chat to users the rules forbid (Extra) or hides
// it from users they allow (Missing). The contact and deals were pushed
// all the same; fix the roles in Wazzup or the team. It matches
// ErrViewMismatch.
type ViewError struct {
	// Chat is the chat SyncChat was given.
	Chat channel.Chat
	// Extra are the users Wazzup would show the chat to against the
	// rules, Missing those it would hide it from though the rules allow
	// them. Both hold user IDs as in ChatSync.Viewers; either may be
	// empty.
	Extra, Missing []string
}

// Error implements the error interface.
func (e *ViewError) Error() string {
	var parts []string
	if len(e.Extra) > 0 {
		parts = append(parts, "shown to "+strings.Join(e.Extra, ", ")+" against the rules")
	}
	if len(e.Missing) > 0 {
		parts = append(parts, "hidden from "+strings.Join(e.Missing, ", ")+" whom the rules allow")
	}
	return fmt.Sprintf("wazzup: chat %s in Wazzup's window: %s", e.Chat, strings.Join(parts, "; "))
}

// Is reports whether target is ErrViewMismatch.
func (e *ViewError) Is(target error) bool { return target == ErrViewMismatch }

// SyncChat pushes the engine's decision about one chat to Wazzup: the
// contact with Responsible as its responsible user, then the deals. With
// no Responsible it pushes nothing (an offered chat). It then checks the
// Viewers (see ChatSync) and returns a *ViewError when Wazzup disagrees.
// Errors: channel.ErrInvalid for a chat without channel, chat ID or kind,
// or a Responsible without ContactID; Wazzup's errors as for Send.
func (a *Account) SyncChat(ctx context.Context, cs ChatSync) error {
	switch {
	case cs.Chat.Channel == "" || cs.Chat.ChatID == "":
		return fmt.Errorf("%w: ChatSync.Chat is incomplete", channel.ErrInvalid)
	case cs.Kind == "":
		return fmt.Errorf("%w: ChatSync.Kind is empty", channel.ErrInvalid)
	case cs.Responsible != "" && cs.ContactID == "":
		return fmt.Errorf("%w: ChatSync.ContactID is empty", channel.ErrInvalid)
	}
	var deals []Deal
	if cs.Responsible != "" {
		name := cs.ContactName
		if name == "" {
			name = cs.Chat.ChatID
		}
		this := ContactChat{ChatType: ChatType(cs.Kind), ChatID: cs.Chat.ChatID}
		c := Contact{ID: cs.ContactID, ResponsibleUserID: cs.Responsible, Name: name, URI: cs.ContactURI,
			Chats: a.contactChats(cs.ContactID, this, cs.OtherChats)}
		if err := a.UpsertContacts(ctx, []Contact{c}); err != nil {
			return err
		}
		a.rememberChats(cs.ContactID, c.Chats)
		for _, d := range cs.Deals {
			d.Contacts = []string{cs.ContactID}
			deals = append(deals, d)
		}
		if err := a.UpsertDeals(ctx, deals); err != nil {
			return err
		}
	}
	if a.team == nil || cs.Viewers == nil {
		return nil
	}
	var extra, missing []string
	for _, u := range a.teamOn(cs.Chat.Channel) {
		shown := a.shows(u, cs, deals)
		allowed := slices.Contains(cs.Viewers, u.User.ID)
		switch {
		case shown && !allowed:
			extra = append(extra, u.User.ID)
		case !shown && allowed:
			missing = append(missing, u.User.ID)
		}
	}
	for _, v := range cs.Viewers {
		if !slices.ContainsFunc(a.teamOn(cs.Chat.Channel), func(m Member) bool { return m.User.ID == v }) {
			missing = append(missing, v) // no role in Wazzup: sees nothing
		}
	}
	if len(extra) > 0 || len(missing) > 0 {
		slices.Sort(extra)
		slices.Sort(missing)
		return &ViewError{Chat: cs.Chat, Extra: extra, Missing: slices.Compact(missing)}
	}
	return nil
}

// contactChats is the union of the chats synced for contact id, this and
// others, in that order, without repeats.
func (a *Account) contactChats(id string, this ContactChat, others []ContactChat) []ContactChat {
	a.mu.Lock()
	out := slices.Clone(a.chats[id])
	a.mu.Unlock()
	for _, c := range append([]ContactChat{this}, others...) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func (a *Account) rememberChats(id string, chats []ContactChat) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.chats[id]; !ok && len(a.chats) >= a.max {
		clear(a.chats) // forgetting costs only chats the host passes again
	}
	a.chats[id] = chats
}

// teamOn returns the members on channel ch.
func (a *Account) teamOn(ch channel.ID) []Member {
	var out []Member
	for _, m := range a.team {
		if m.Channel == ch {
			out = append(out, m)
		}
	}
	return out
}

// shows predicts whether Wazzup's window shows the chat to m, assuming
// Wazzup knows the client only through this sync.
func (a *Account) shows(m Member, cs ChatSync, deals []Deal) bool {
	switch m.Role {
	case RoleQualityControl, RoleManager:
		return true
	}
	if cs.Responsible == "" {
		return m.ReceivesNewClients
	}
	return m.User.ID == cs.Responsible ||
		slices.ContainsFunc(deals, func(d Deal) bool { return d.ResponsibleUserID == m.User.ID })
}

// WebhookSettings is the webhook subscription of PATCH /v3/webhooks.
type WebhookSettings struct {
	// URI receives the webhooks (webhooksUri), at most 200 characters.
	URI string
	// MessagesAndStatuses: new messages and outgoing statuses.
	MessagesAndStatuses bool
	// ContactsAndDealsCreation: createContact / createDeal; leave it off
	// when the host distributes clients itself.
	ContactsAndDealsCreation bool
	// ChannelsUpdates: channel state changes.
	ChannelsUpdates bool
	// TemplateStatus: WABA template moderation.
	TemplateStatus bool
}

type wireWebhookSettings struct {
	WebhooksURI   string `json:"webhooksUri"`
	Subscriptions struct {
		MessagesAndStatuses      bool `json:"messagesAndStatuses"`
		ContactsAndDealsCreation bool `json:"contactsAndDealsCreation"`
		ChannelsUpdates          bool `json:"channelsUpdates"`
		TemplateStatus           bool `json:"templateStatus"`
	} `json:"subscriptions"`
}

// SetWebhooks subscribes the account's webhooks (PATCH /v3/webhooks).
// Wazzup first POSTs {"test": true} to the URI and refuses the
// subscription unless it gets 200 (a Handler does). Errors:
// channel.ErrInvalid for a URI that is not absolute http(s) or is over
// 200 characters (also Wazzup's uriNotValid); channel.ErrRejected when
// the test POST failed (testPostNotPassed); Wazzup's errors as for Send.
func (a *Account) SetWebhooks(ctx context.Context, set WebhookSettings) error {
	u, err := url.Parse(set.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || utf8.RuneCountInString(set.URI) > 200 {
		return fmt.Errorf("%w: webhook URI %q must be an absolute http(s) URL of at most 200 characters", channel.ErrInvalid, truncate(set.URI, 60))
	}
	var w wireWebhookSettings
	w.WebhooksURI = set.URI
	w.Subscriptions.MessagesAndStatuses = set.MessagesAndStatuses
	w.Subscriptions.ContactsAndDealsCreation = set.ContactsAndDealsCreation
	w.Subscriptions.ChannelsUpdates = set.ChannelsUpdates
	w.Subscriptions.TemplateStatus = set.TemplateStatus
	body, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("wazzup: encoding webhook settings: %w", err)
	}
	return a.do(ctx, http.MethodPatch, "/v3/webhooks", body, nil)
}

// Webhooks returns the current subscription (GET /v3/webhooks).
func (a *Account) Webhooks(ctx context.Context) (WebhookSettings, error) {
	var w wireWebhookSettings
	if err := a.do(ctx, http.MethodGet, "/v3/webhooks", nil, &w); err != nil {
		return WebhookSettings{}, err
	}
	return WebhookSettings{URI: w.WebhooksURI, MessagesAndStatuses: w.Subscriptions.MessagesAndStatuses,
		ContactsAndDealsCreation: w.Subscriptions.ContactsAndDealsCreation,
		ChannelsUpdates:          w.Subscriptions.ChannelsUpdates, TemplateStatus: w.Subscriptions.TemplateStatus}, nil
}

// Format formats AccountOptions for every verb with the API key redacted.
func (o AccountOptions) Format(f fmt.State, verb rune) {
	type plain AccountOptions // without this method; Options keeps its own
	fmt.Fprintf(f, fmt.FormatString(f, verb), plain(o))
}
