package wazzuptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crmbridge/crmbridge/channel"
)

// maxEntities is the documented limit of entities per call on POST
// /v3/users, /v3/contacts and /v3/deals: "TOO_MANY_ENTITIES"
// (https://wazzup24.com/help/api-en/common-errors/).
const maxEntities = 100

// User is a user of the fake account (POST /v3/users,
// https://wazzup24.com/help/api-en/working-with-the-user-entity/).
type User struct {
	// ID is the CRM user's id; required, at most 200 characters.
	ID string `json:"id"`
	// Name is the user's name; required, at most 200 characters.
	Name string `json:"name"`
	// Phone is the user's phone in international digits; the fake drops
	// one that is not all digits, and refuses two users with one phone.
	Phone string `json:"phone,omitempty"`
}

// ContactChat is one item of a contact's contactData
// (https://wazzup24.com/help/api-en/working-with-contacts/).
type ContactChat struct {
	// ChatType is the chat's chatType ("whatsapp", "telegram", …);
	// required.
	ChatType string `json:"chatType"`
	// ChatID is the client's chatId on the messenger; required except for
	// a Telegram chat given by Username or Phone.
	ChatID string `json:"chatId,omitempty"`
	// Username is the client's Telegram username (no "@").
	Username string `json:"username,omitempty"`
	// Phone is the client's Telegram phone, international digits.
	Phone string `json:"phone,omitempty"`
}

// Contact is a contact of the fake account (POST /v3/contacts,
// https://wazzup24.com/help/api-en/working-with-contacts/).
type Contact struct {
	// ID is the CRM contact's id; required, at most 100 characters.
	ID string `json:"id"`
	// ResponsibleUserID is the id of the user responsible for the
	// contact; required, at most 100 characters. The fake does not check
	// that it names a user.
	ResponsibleUserID string `json:"responsibleUserId"`
	// Name is the contact's name; required, at most 200 characters.
	Name string `json:"name"`
	// ContactData are the client's chats; at least one.
	ContactData []ContactChat `json:"contactData"`
	// URI links to the contact in the CRM; at most 200 characters.
	URI string `json:"uri,omitempty"`
}

// Deal is a deal of the fake account (POST /v3/deals,
// https://wazzup24.com/help/api-en/working-with-a-list-of-deals/).
type Deal struct {
	// ID is the CRM deal's id; required, at most 100 characters.
	ID string `json:"id"`
	// ResponsibleUserID is the id of the user responsible for the deal;
	// required, at most 100 characters. That user sees the chats of the
	// deal's contacts (SeesChat).
	ResponsibleUserID string `json:"responsibleUserId"`
	// Name is the deal's name; required, not empty.
	Name string `json:"name"`
	// URI links to the deal in the CRM; the key is required.
	URI string `json:"uri"`
	// Contacts are the ids of the deal's contacts; the key is required.
	Contacts []string `json:"contacts"`
	// Closed is true for a won or lost deal; the key is required.
	Closed bool `json:"closed"`
}

// Role is a user's role on a channel in Wazzup's integration settings
// (https://wazzup24.com/help/kommo-en/integration-settings-with-kommo-en/):
// set in Wazzup's interface, not through API v3, so tests set it with
// SetRole.
type Role string

// Wazzup's roles.
const (
	// RoleQualityControl sees every dialog of the channel and cannot write.
	RoleQualityControl Role = "qualityControl"
	// RoleSalesRep (RU «Менеджер») sees and writes to the clients they
	// are responsible for.
	RoleSalesRep Role = "salesRep"
	// RoleManager (RU «Руководитель») sees and writes to every dialog.
	RoleManager Role = "manager"
)

type roleSetting struct {
	role               Role
	receivesNewClients bool
}

// Subscriptions are the webhook kinds of PATCH /v3/webhooks
// (https://wazzup24.com/help/api-en/webhooks/).
type Subscriptions struct {
	// MessagesAndStatuses subscribes to the messages[] and statuses[]
	// webhooks.
	MessagesAndStatuses bool `json:"messagesAndStatuses"`
	// ContactsAndDealsCreation subscribes to the createContact and
	// createDeal webhooks.
	ContactsAndDealsCreation bool `json:"contactsAndDealsCreation"`
	// ChannelsUpdates subscribes to the webhook on a channel's status
	// changes.
	ChannelsUpdates bool `json:"channelsUpdates"`
	// TemplateStatus subscribes to the webhook on a WABA template's
	// moderation status.
	TemplateStatus bool `json:"templateStatus"`
}

// WebhookSettings is what PATCH /v3/webhooks set.
type WebhookSettings struct {
	// WebhooksURI is the http(s) address webhooks are posted to; at most
	// 200 characters.
	WebhooksURI string `json:"webhooksUri"`
	// Subscriptions are the webhook kinds asked for. The fake records
	// them; its Post methods send whatever they are asked to.
	Subscriptions Subscriptions `json:"subscriptions"`
}

// entities is the account's users, contacts, deals, roles and webhook
// settings; guarded by Server.mu.
type entities struct {
	users    map[string]User
	contacts map[string]Contact
	deals    map[string]Deal
	roles    map[channel.ID]map[string]roleSetting
	webhooks WebhookSettings
	// entityRequests counts POSTs per path.
	entityRequests map[string]int
}

func newEntities() entities {
	return entities{
		users:          map[string]User{},
		contacts:       map[string]Contact{},
		deals:          map[string]Deal{},
		roles:          map[channel.ID]map[string]roleSetting{},
		entityRequests: map[string]int{},
	}
}

// SetRole gives user a role on channel ch, as an administrator does in
// Wazzup's integration settings; "" removes it. receivesNewClients is the
// "Receives new clients" switch, ignored for quality control.
func (s *Server) SetRole(ch channel.ID, user string, role Role, receivesNewClients bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[ch] == nil {
		s.roles[ch] = map[string]roleSetting{}
	}
	if role == "" {
		delete(s.roles[ch], user)
		return
	}
	s.roles[ch][user] = roleSetting{role, receivesNewClients && role != RoleQualityControl}
}

// Users returns the users, sorted by ID.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedValues(s.users, func(u User) string { return u.ID })
}

// Contacts returns the contacts, sorted by ID.
func (s *Server) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedValues(s.contacts, func(c Contact) string { return c.ID })
}

// Deals returns the deals, sorted by ID.
func (s *Server) Deals() []Deal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedValues(s.deals, func(d Deal) string { return d.ID })
}

// EntityRequests returns how many POST requests path (/v3/users,
// /v3/contacts, /v3/deals) received with the right key.
func (s *Server) EntityRequests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entityRequests[path]
}

// Webhooks returns the settings of the last successful PATCH
// /v3/webhooks.
func (s *Server) Webhooks() WebhookSettings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhooks
}

func sortedValues[T any](m map[string]T, id func(T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	return out
}

// SeesChat reports whether Wazzup's chat window shows chat to user. The
// model, from Wazzup's help pages:
//
//   - a user that was not created through /v3/users, or has no role on
//     the chat's channel, sees nothing;
//   - quality control and managers see every chat of the channel
//     (integration settings page, "Roles");
//   - a sales rep sees the chat when a contact holding it (same chatType
//     and chatId in contactData) names them responsibleUserId
//     ("Fill in this field to have the dialog displayed in the Wazzup
//     chat window of the person responsible for the contact",
//     working-with-contacts page), or a deal of such a contact does (the
//     deals page's example of one client with two deals and two
//     responsible users; inferred, unverified for closed deals: the fake
//     counts them);
//   - a chat no contact holds is a new client: every sales rep with
//     "Receives new clients" sees it until someone is responsible
//     (https://wazzup24.com/help/api-en/unanswered-counter/, and the
//     integration settings: "the chat disappears for the others").
func (s *Server) SeesChat(user string, chat channel.Chat) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seesLocked(user, chat)
}

// Viewers returns the users SeesChat is true for, sorted.
func (s *Server) Viewers(chat channel.Chat) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.users {
		if s.seesLocked(id, chat) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) seesLocked(user string, chat channel.Chat) bool {
	if _, ok := s.users[user]; !ok {
		return false
	}
	rs, ok := s.roles[chat.Channel][user]
	if !ok {
		return false
	}
	if rs.role == RoleQualityControl || rs.role == RoleManager {
		return true
	}
	var transport string
	for _, c := range s.channels {
		if c.ID == chat.Channel {
			transport = c.Transport
		}
	}
	chatType := chatTypeOf(transport)
	held := false
	for _, c := range s.contacts {
		if !slices.ContainsFunc(c.ContactData, func(d ContactChat) bool {
			return d.ChatType == chatType && d.ChatID == chat.ChatID
		}) {
			continue
		}
		held = true
		if c.ResponsibleUserID == user {
			return true
		}
		for _, d := range s.deals {
			if d.ResponsibleUserID == user && slices.Contains(d.Contacts, c.ID) {
				return true
			}
		}
	}
	return !held && rs.receivesNewClients
}

// tooLong reports whether s has more than n characters.
func tooLong(s string, n int) bool { return utf8.RuneCountInString(s) > n }

// decodeEntities reads a JSON array body of at most maxEntities items.
// It answers the error itself and returns false when the body is not
// one. The 1 MiB body limit and the error text are the fake's choice
// (UNVERIFIED).
func (s *Server) decodeEntities(w http.ResponseWriter, r *http.Request, code string, v any) bool {
	var raw []json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&raw); err != nil {
		s.writeError(w, 400, code, "Request body must be an array of objects", nil)
		return false
	}
	if len(raw) > maxEntities {
		s.writeError(w, 400, "TOO_MANY_ENTITIES", fmt.Sprintf("No more than %d entities per request", maxEntities), nil)
		return false
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, v); err != nil {
		s.writeError(w, 400, code, "Request body must be an array of objects", nil)
		return false
	}
	return true
}

// postUsers upserts users by id: id and name required, at most 200
// characters each; a malformed phone is dropped, not refused; two users
// may not share a phone (working-with-the-user-entity page). Error code
// INVALID_USERS_DATA as on that page; the success body is not
// documented: the fake answers 200 with none.
func (s *Server) postUsers(w http.ResponseWriter, r *http.Request, _ time.Time) {
	s.countEntityRequest(r.URL.Path)
	var us []User
	if !s.decodeEntities(w, r, "INVALID_USERS_DATA", &us) {
		return
	}
	for i, u := range us {
		if u.ID == "" || u.Name == "" || tooLong(u.ID, 200) || tooLong(u.Name, 200) {
			s.writeError(w, 400, "INVALID_USERS_DATA", "User data is invalid", map[string]any{"index": i})
			return
		}
		if !digits(u.Phone) {
			us[i].Phone = ""
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	phones := map[string]string{}
	for _, u := range s.users {
		if u.Phone != "" {
			phones[u.Phone] = u.ID
		}
	}
	for i, u := range us {
		if owner, ok := phones[u.Phone]; ok && u.Phone != "" && owner != u.ID {
			s.writeErrorLocked(w, 400, "INVALID_USERS_DATA", "Users cannot share a phone", map[string]any{"index": i})
			return
		}
		if u.Phone != "" {
			phones[u.Phone] = u.ID
		}
	}
	for _, u := range us {
		s.users[u.ID] = u
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) getUsers(w http.ResponseWriter, _ *http.Request, _ time.Time) {
	writeJSON(w, http.StatusOK, s.Users())
}

// postContacts upserts contacts by id: id and responsibleUserId at most
// 100 characters, name at most 200, contactData required (chatId
// required except for Telegram with username or phone), uri at most 200
// (working-with-contacts page). The error code of invalid contacts is not
// documented: the fake answers VALIDATION_ERROR (a documented generic
// code) with data.index; the success body is not documented either: 200
// with none. Whether Wazzup checks that responsibleUserId names a user is
// not documented: the fake does not.
func (s *Server) postContacts(w http.ResponseWriter, r *http.Request, _ time.Time) {
	s.countEntityRequest(r.URL.Path)
	var cs []Contact
	if !s.decodeEntities(w, r, "VALIDATION_ERROR", &cs) {
		return
	}
	for i, c := range cs {
		if reason := checkContact(c); reason != "" {
			s.writeError(w, 400, "VALIDATION_ERROR", reason, map[string]any{"index": i})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		s.contacts[c.ID] = c
	}
	w.WriteHeader(http.StatusOK)
}

// checkIDs checks the id and responsibleUserId every contact and deal
// has: required, at most 100 characters (contacts and deals pages).
func checkIDs(id, responsibleUserID string) string {
	switch {
	case id == "" || tooLong(id, 100):
		return "id is required, at most 100 characters"
	case responsibleUserID == "" || tooLong(responsibleUserID, 100):
		return "responsibleUserId is required, at most 100 characters"
	}
	return ""
}

func checkContact(c Contact) string {
	if reason := checkIDs(c.ID, c.ResponsibleUserID); reason != "" {
		return reason
	}
	switch {
	case c.Name == "" || tooLong(c.Name, 200):
		return "name is required, at most 200 characters"
	case len(c.ContactData) == 0:
		return "contactData is required"
	case tooLong(c.URI, 200):
		return "uri is at most 200 characters"
	}
	for _, d := range c.ContactData {
		if !slices.Contains(chatTypes, d.ChatType) {
			return "contactData.chatType is invalid"
		}
		if d.ChatID == "" && (d.ChatType != "telegram" || (d.Username == "" && d.Phone == "")) {
			return "contactData.chatId is required"
		}
	}
	return ""
}

// postDeals upserts deals by id: id, responsibleUserId, name, uri,
// contacts and closed are all required (working-with-a-list-of-deals
// page). Error code and success body as for contacts (undocumented).
func (s *Server) postDeals(w http.ResponseWriter, r *http.Request, _ time.Time) {
	s.countEntityRequest(r.URL.Path)
	var raw []map[string]json.RawMessage
	if !s.decodeEntities(w, r, "VALIDATION_ERROR", &raw) {
		return
	}
	ds := make([]Deal, len(raw))
	for i, m := range raw {
		for _, f := range []string{"id", "responsibleUserId", "name", "uri", "contacts", "closed"} {
			if _, ok := m[f]; !ok {
				s.writeError(w, 400, "VALIDATION_ERROR", f+" is required", map[string]any{"index": i})
				return
			}
		}
		b, _ := json.Marshal(m)
		if err := json.Unmarshal(b, &ds[i]); err != nil || checkDeal(ds[i]) != "" {
			s.writeError(w, 400, "VALIDATION_ERROR", "Deal data is invalid", map[string]any{"index": i})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.deals[d.ID] = d
	}
	w.WriteHeader(http.StatusOK)
}

func checkDeal(d Deal) string {
	if reason := checkIDs(d.ID, d.ResponsibleUserID); reason != "" {
		return reason
	}
	if d.Name == "" {
		return "name is required"
	}
	return ""
}

func (s *Server) countEntityRequest(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entityRequests[path]++
}

// patchWebhooks subscribes to webhooks
// (https://wazzup24.com/help/api-en/webhooks/): webhooksUri at most 200
// characters, else 400 uriNotValid; Wazzup then POSTs {"test": true} to
// it and answers 400 testPostNotPassed unless that got 200. The page's
// answer example is "{ ok }"; the fake answers {"ok": true}. The shape
// of testPostNotPassed's data is unclear on the page; the fake sends
// {"status": <code>}.
func (s *Server) patchWebhooks(w http.ResponseWriter, r *http.Request, _ time.Time) {
	var set WebhookSettings
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&set); err != nil {
		s.writeError(w, 400, "VALIDATION_ERROR", "Request body must be a JSON object", nil)
		return
	}
	u, err := url.Parse(set.WebhooksURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || tooLong(set.WebhooksURI, 200) {
		s.writeError(w, 400, "uriNotValid", "Provided URI is not valid URI", nil)
		return
	}
	if err := s.PostTest(r.Context(), set.WebhooksURI); err != nil {
		status := 0
		if we, ok := err.(*WebhookError); ok {
			status = we.Status
		}
		s.writeError(w, 400, "testPostNotPassed", "URI does not return 200 OK on test request", map[string]any{"status": status})
		return
	}
	s.mu.Lock()
	s.webhooks = set
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// getWebhooks answers the last PATCHed settings; the shape of Wazzup's
// GET /v3/webhooks answer is UNVERIFIED.
func (s *Server) getWebhooks(w http.ResponseWriter, _ *http.Request, _ time.Time) {
	writeJSON(w, http.StatusOK, s.Webhooks())
}

// GroupWrites posts to webhookURL the webhook of a member writing text in
// the group chat groupID (whatsgroup, telegroup or maxgroup by the
// channel's transport; a WhatsApp group ID looks like
// "79132123789-1581764243"). Which contact Wazzup puts on a group message
// is not documented: the fake names the member in contact.name.
func (s *Server) GroupWrites(ctx context.Context, webhookURL string, ch channel.ID, groupID, member, text string) (string, error) {
	c, ok := s.channel(ch)
	if !ok {
		return "", fmt.Errorf("wazzuptest: unknown channel %q", ch)
	}
	ct := groupChatTypeOf(c.Transport)
	if ct == "" {
		return "", fmt.Errorf("wazzuptest: a %s channel has no group chats", c.Transport)
	}
	s.mu.Lock()
	s.nextID++
	id := uuid(0x1a, s.nextID)
	now := s.opt.Now()
	s.mu.Unlock()
	return id, s.PostMessages(ctx, webhookURL, WebhookMessage{
		MessageID: id,
		DateTime:  now.UTC().Format("2006-01-02T15:04:05.000Z"),
		ChannelID: string(ch),
		ChatType:  ct,
		ChatID:    groupID,
		Type:      "text",
		Contact:   &WebhookContact{Name: member},
		Text:      text,
		Status:    "inbound",
	})
}

// PostStatusError posts a statuses[] webhook telling that messageID
// failed with Wazzup's error code (24_HOURS_EXCEEDED, BAD_CONTACT, …,
// webhooks page). The shape of the status's error object
// ({"error": code, "description": …}) is UNVERIFIED.
func (s *Server) PostStatusError(ctx context.Context, webhookURL, messageID, code, description string) error {
	st := map[string]any{
		"messageId": messageID,
		"timestamp": s.opt.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"status":    "error",
		"error":     map[string]string{"error": code, "description": description},
	}
	return s.PostWebhook(ctx, webhookURL, map[string]any{"statuses": []any{st}})
}

// ContactCreation is the body of a createContact webhook
// (https://wazzup24.com/help/api-en/webhooks/).
type ContactCreation struct {
	// ResponsibleUserID is the user Wazzup's own distribution picked.
	ResponsibleUserID string `json:"responsibleUserId"`
	// Name is the client's name in Wazzup.
	Name string `json:"name"`
	// ContactData are the client's chats.
	ContactData []ContactChat `json:"contactData"`
	// Source is "auto" or "byUser".
	Source string `json:"source"`
}

// DealCreation is the body of a createDeal webhook (webhooks page).
type DealCreation struct {
	// ResponsibleUserID is the user Wazzup's own distribution picked.
	ResponsibleUserID string `json:"responsibleUserId"`
	// Contacts are the ids of the deal's contacts.
	Contacts []string `json:"contacts"`
	// Source is "auto" or "byUser", as for ContactCreation.
	Source string `json:"source"`
}

// RequestContact posts a createContact webhook and, as Wazzup does,
// expects 200 with the created contact "matching the CRUD route signature
// for contacts" (webhooks page); the contact is then known to the
// account. It fails with a *WebhookError on another status and an error
// naming the problem when the answer is not a valid contact.
func (s *Server) RequestContact(ctx context.Context, webhookURL string, req ContactCreation) (Contact, error) {
	var c Contact
	if err := s.postCreation(ctx, webhookURL, map[string]any{"createContact": req}, &c); err != nil {
		return Contact{}, err
	}
	if reason := checkContact(c); reason != "" {
		return Contact{}, fmt.Errorf("wazzuptest: createContact answer is not a contact: %s", reason)
	}
	s.mu.Lock()
	s.contacts[c.ID] = c
	s.mu.Unlock()
	return c, nil
}

// RequestDeal posts a createDeal webhook, expecting the created deal in
// the answer, like RequestContact.
func (s *Server) RequestDeal(ctx context.Context, webhookURL string, req DealCreation) (Deal, error) {
	var d Deal
	if err := s.postCreation(ctx, webhookURL, map[string]any{"createDeal": req}, &d); err != nil {
		return Deal{}, err
	}
	if reason := checkDeal(d); reason != "" {
		return Deal{}, fmt.Errorf("wazzuptest: createDeal answer is not a deal: %s", reason)
	}
	s.mu.Lock()
	s.deals[d.ID] = d
	s.mu.Unlock()
	return d, nil
}

func (s *Server) postCreation(ctx context.Context, webhookURL string, body, out any) error {
	b, err := s.post(ctx, webhookURL, body, 1<<16)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("wazzuptest: the answer is not the created entity as JSON: %v", err)
	}
	return nil
}
