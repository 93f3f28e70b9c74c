// Package wazzuptest is a fake Wazzup API v3 server for tests and demos,
// on loopback: POST /v3/message with Wazzup's validation, error bodies,
// crmMessageId idempotency and rate limit; GET /v3/channels; POST and GET
// /v3/users; POST /v3/contacts and /v3/deals; PATCH and GET /v3/webhooks.
// It models who Wazzup's chat window shows a chat to (SeesChat), injects
// failures on demand, and posts webhooks (client and group messages,
// echoes, statuses, creation requests) to a webhook handler. It also
// ships TestReceiptStore, the conformance suite of wazzup.ReceiptStore.
//
// # Sources
//
// Each behaviour cites its source where it is implemented. The sources:
//
//   - Sending, editing, errors when sending, 60-second crmMessageId
//     window: https://wazzup24.com/help/api-en/sending-messages/
//   - Chat types telegroup, max, maxgroup (not on the English page):
//     https://wazzup24.ru/help/api/otpravka-soobshhenij
//   - Channels and transports: https://wazzup24.com/help/api-en/working-with-channels/
//   - Webhooks (subscription, test POST, messages[], statuses[],
//     createContact / createDeal and the answer they expect):
//     https://wazzup24.com/help/api-en/webhooks/
//   - Rate limit (500 requests per 5 s, 429), TOO_MANY_ENTITIES (100 per
//     call), error body shape: https://wazzup24.com/help/api-en/common-errors/
//   - Users, contacts, deals:
//     https://wazzup24.com/help/api-en/working-with-the-user-entity/,
//     https://wazzup24.com/help/api-en/working-with-contacts/,
//     https://wazzup24.com/help/api-en/working-with-a-list-of-deals/
//   - Roles and who sees which chat:
//     https://wazzup24.com/help/kommo-en/integration-settings-with-kommo-en/,
//     https://wazzup24.com/help/api-en/unanswered-counter/
//   - Payload shapes: the examples on those pages (a WhatsApp sticker and
//     poll, a delivered status), and open-source Wazzup clients' test
//     fixtures for group chat IDs ("79132123789-1581764243").
//
// # Unverified
//
// Where the documentation is silent the fake decides, and says so:
// unknown channels are answered 400 CHANNEL_NOT_FOUND; the API key is
// checked on every route and a wrong key gets 401 with an empty body; the
// success bodies of POST /v3/users, /v3/contacts and /v3/deals are empty
// and their validation errors use VALIDATION_ERROR (users:
// INVALID_USERS_DATA, documented) with data.index; a contact's
// responsibleUserId is not checked against the users; the transport
// maxbot (seen in clients, absent from the channels page) sends to chat
// type max; which contact a group message carries is not documented
// (GroupWrites names the member); whether a closed deal's responsible
// user still sees the chat is not documented (SeesChat says yes); the
// retry policy of webhooks is not documented (the fake posts once); the
// 24-hour window of WhatsApp Business is not tracked (inject it with
// FailNextWith or PostStatusError).
//
// # Testing
//
// A Server is safe for concurrent use. IDs it makes are deterministic
// (counters formatted as UUIDs); time comes from Options.Now.
package wazzuptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/crmbridge/crmbridge/channel"
)

// DefaultAPIKey is the API key of a Server whose Options.APIKey is empty.
const DefaultAPIKey = "wazzuptest-api-key"

// Defaults of Options.
const (
	DefaultIdempotencyWindow = 60 * time.Second
	DefaultRateLimit         = 500
)

// RateWindow is the span of Wazzup's rate-limit counter, which resets
// every 5 seconds.
const RateWindow = 5 * time.Second

// Channel is a channel of the fake account.
type Channel struct {
	// ID is the channelId; POST /v3/message accepts only a UUID
	// (AddChannel makes one).
	ID channel.ID
	// Transport is Wazzup's channel type: whatsapp, wapi, instagram,
	// tgapi, telegram, vk, avito (documented), viber, max, maxbot (seen in
	// clients, not on the channels page).
	Transport string
	// PlainID is the number, username or ID of the account.
	PlainID string
	// State is active (""), disabled, notEnoughMoney, phoneUnavailable, …
	State string
}

// Options configures a Server. The zero value is a server with no
// channels, DefaultAPIKey, the documented window and limit.
type Options struct {
	// APIKey is the key the server accepts; "" means DefaultAPIKey.
	APIKey string
	// Channels are the channels of the account; add more with AddChannel.
	Channels []Channel
	// CRMKey, when set, is sent as "Authorization: Bearer <CRMKey>" with
	// every webhook the server posts.
	CRMKey string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IdempotencyWindow is how long a crmMessageId is remembered; 0 means
	// DefaultIdempotencyWindow (Wazzup's 60 s), negative means forever.
	IdempotencyWindow time.Duration
	// RateLimit is how many requests each RateWindow accepts before
	// answering 429; 0 means DefaultRateLimit, negative means no limit.
	RateLimit int
	// HTTPClient posts webhooks; nil means a client with a 10 s timeout
	// (shorter than Wazzup's documented 30 s, so slow handlers fail
	// sooner in tests; webhooks page).
	HTTPClient *http.Client
}

// SentMessage is a message the server accepted on POST /v3/message.
type SentMessage struct {
	// MessageID is the messageId the server answered with (a UUID).
	MessageID string
	// ChannelID is the request's channelId.
	ChannelID channel.ID
	// ChatType is the request's chatType.
	ChatType string
	// ChatID is the request's chatId.
	ChatID string
	// Text is the request's text; "" for a media message.
	Text string
	// ContentURI is the request's contentUri; "" for a text message.
	ContentURI string
	// CrmUserID is the request's crmUserId, the CRM user shown as author;
	// "" when absent.
	CrmUserID string
	// CrmMessageID is the request's crmMessageId, the idempotency key;
	// "" when absent.
	CrmMessageID string
	// ClearUnanswered is the request's clearUnanswered; nil when absent.
	ClearUnanswered *bool
	// Time is when the server accepted the message, on Options.Now.
	Time time.Time
}

// Server is the fake Wazzup API. Its URL is the base URL to give
// wazzup.Options.BaseURL.
type Server struct {
	// URL is the base URL of the server, http://127.0.0.1:port.
	URL string
	// APIKey is the API key the server accepts.
	APIKey string

	opt    Options
	ts     *httptest.Server
	client *http.Client

	mu        sync.Mutex
	channels  []Channel
	sent      []SentMessage
	keys      map[string]time.Time // crmMessageId → first accepted
	requests  int
	winStart  time.Time
	winCount  int
	failures  []failure
	nextID    uint64
	nextReqID uint64

	entities // users, contacts, deals, roles, webhooks settings
}

type failure struct {
	status int
	code   string
	desc   string
}

// NewServer starts a Server on loopback. Close it when done.
func NewServer(opt Options) *Server {
	s := newServer(opt)
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

func newServer(opt Options) *Server {
	if opt.APIKey == "" {
		opt.APIKey = DefaultAPIKey
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.IdempotencyWindow == 0 {
		opt.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if opt.RateLimit == 0 {
		opt.RateLimit = DefaultRateLimit
	}
	s := &Server{
		APIKey:   opt.APIKey,
		opt:      opt,
		client:   opt.HTTPClient,
		channels: slices.Clone(opt.Channels),
		keys:     make(map[string]time.Time),
		entities: newEntities(),
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	for i := range s.channels {
		if s.channels[i].State == "" {
			s.channels[i].State = "active"
		}
	}
	return s
}

// Close shuts the server down.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// uuid formats a counter as a UUID v4 string; kind separates ID spaces.
func uuid(kind uint32, n uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, n)
}

// AddChannel adds an active channel with the given transport (whatsapp,
// wapi, tgapi, telegram, instagram, vk, avito, …) and returns its ID.
func (s *Server) AddChannel(transport, plainID string) channel.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := channel.ID(uuid(0xc4a77e1, s.nextID))
	s.channels = append(s.channels, Channel{ID: id, Transport: transport, PlainID: plainID, State: "active"})
	return id
}

// SetChannelState changes a channel's state (e.g. "disabled"); it reports
// whether the channel exists.
func (s *Server) SetChannelState(id channel.ID, state string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.channels {
		if s.channels[i].ID == id {
			s.channels[i].State = state
			return true
		}
	}
	return false
}

// Channels returns the channels of the account.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.channels)
}

// Sent returns the messages accepted so far, in order.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Delivered returns how many messages were accepted (repeats excluded).
func (s *Server) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// Requests returns how many API requests carried the right key.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// FailNext makes the next n POST /v3/message requests fail the way a
// Wazzup adapter must report as an error matching want:
// channel.ErrRateLimited → 429 (no Retry-After, as documented);
// channel.ErrUnavailable → 500 UNKNOWN_ERROR; channel.ErrUnauthorized →
// 401; channel.ErrRejected → 400 BAD_CONTACT; channel.ErrNotFound → 400
// CHANNEL_NOT_FOUND; channel.ErrInvalid → 400 INVALID_MESSAGE_DATA;
// anything else → 500. The codes are the sending page's error table; the
// statuses other than 429 and 401 (common errors page) are UNVERIFIED.
func (s *Server) FailNext(n int, want error) {
	f := failure{status: 500, code: "UNKNOWN_ERROR", desc: "Unknown error"}
	switch {
	case errors.Is(want, channel.ErrRateLimited):
		f = failure{status: 429}
	case errors.Is(want, channel.ErrUnauthorized):
		f = failure{status: 401}
	case errors.Is(want, channel.ErrRejected):
		f = failure{status: 400, code: "BAD_CONTACT", desc: "Message not sent. Number may not be on WhatsApp"}
	case errors.Is(want, channel.ErrNotFound):
		f = failure{status: 400, code: "CHANNEL_NOT_FOUND", desc: "Channel not found"}
	case errors.Is(want, channel.ErrInvalid):
		f = failure{status: 400, code: "INVALID_MESSAGE_DATA", desc: "Message data is invalid"}
	}
	s.failNext(n, f)
}

// FailNextWith makes the next n POST /v3/message requests answer status
// with Wazzup's error body {error: code, description} (no body when code
// is empty).
func (s *Server) FailNextWith(n, status int, code, description string) {
	s.failNext(n, failure{status: status, code: code, desc: description})
}

func (s *Server) failNext(n int, f failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// ServeHTTP serves the fake API; NewServer serves it on loopback, and a
// test may call it in-process.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// "Authorization: Bearer <apiKey>" on every route; 401 when the key
	// is missing or wrong (common errors page). The empty body is the
	// fake's choice.
	if r.Header.Get("Authorization") != "Bearer "+s.opt.APIKey {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	s.requests++
	now := s.opt.Now()
	limited := false
	// At most 500 requests per 5 seconds, the counter resetting every
	// 5 seconds (common errors page).
	if s.opt.RateLimit > 0 {
		if start := now.Truncate(RateWindow); !start.Equal(s.winStart) {
			s.winStart, s.winCount = start, 0
		}
		s.winCount++
		limited = s.winCount > s.opt.RateLimit
	}
	s.mu.Unlock()
	if limited {
		// The common errors page documents 429 and no Retry-After header.
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	route := routes[r.URL.Path]
	if route == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h := route[r.Method]
	if h == nil {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	h(s, w, r, now)
}

// routes are the API routes the fake serves, by path and method.
var routes = map[string]map[string]func(s *Server, w http.ResponseWriter, r *http.Request, now time.Time){
	"/v3/message":  {http.MethodPost: (*Server).postMessage},
	"/v3/channels": {http.MethodGet: func(s *Server, w http.ResponseWriter, _ *http.Request, _ time.Time) { s.getChannels(w) }},
	"/v3/webhooks": {http.MethodPatch: (*Server).patchWebhooks, http.MethodGet: (*Server).getWebhooks},
	"/v3/users":    {http.MethodPost: (*Server).postUsers, http.MethodGet: (*Server).getUsers},
	"/v3/contacts": {http.MethodPost: (*Server).postContacts},
	"/v3/deals":    {http.MethodPost: (*Server).postDeals},
}

// getChannels answers [{channelId, transport, plainId, state}]
// (https://wazzup24.com/help/api-en/working-with-channels/).
func (s *Server) getChannels(w http.ResponseWriter) {
	type wire struct {
		ChannelID string `json:"channelId"`
		Transport string `json:"transport"`
		PlainID   string `json:"plainId"`
		State     string `json:"state"`
	}
	chs := s.Channels()
	out := make([]wire, 0, len(chs))
	for _, c := range chs {
		out = append(out, wire{string(c.ID), c.Transport, c.PlainID, c.State})
	}
	writeJSON(w, http.StatusOK, out)
}

type messageRequest struct {
	ChannelID       *string `json:"channelId"`
	ChatType        *string `json:"chatType"`
	ChatID          *string `json:"chatId"`
	Text            *string `json:"text"`
	ContentURI      *string `json:"contentUri"`
	RefMessageID    *string `json:"refMessageId"`
	CrmUserID       *string `json:"crmUserId"`
	CrmMessageID    *string `json:"crmMessageId"`
	ClearUnanswered *bool   `json:"clearUnanswered"`
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// The chat types of the sending pages (English and Russian).
	chatTypes = []string{"whatsapp", "whatsgroup", "viber", "instagram", "telegram", "telegroup", "vk", "avito", "max", "maxgroup"}
)

// transportChatTypes lists the chat types each transport can send to;
// another is WRONG_TRANSPORT (sending page, "Mismatch Between Transport
// Type and Channel"). Which transports reach group chats is inferred from
// the chat types' names; maxbot is seen in clients only.
var transportChatTypes = map[string][]string{
	"whatsapp":  {"whatsapp", "whatsgroup"},
	"wapi":      {"whatsapp"},
	"tgapi":     {"telegram", "telegroup"},
	"telegram":  {"telegram", "telegroup"},
	"instagram": {"instagram"},
	"vk":        {"vk"},
	"avito":     {"avito"},
	"viber":     {"viber"},
	"max":       {"max", "maxgroup"},
	"maxbot":    {"max", "maxgroup"},
}

// textLimits are the text length limits and codes of the sending page's
// error table, in characters.
var textLimits = map[string]struct {
	max  int
	code string
}{
	"whatsapp":  {10000, "MESSAGE_TEXT_TOO_LONG"},
	"telegram":  {4096, "MESSAGES_TOO_LONG_TELEGRAM"},
	"instagram": {10000, "MESSAGES_TOO_LONG_INSTAGRAM"},
	"vk":        {4096, "MESSAGES_TOO_LONG_VK"},
	"avito":     {1000, "MESSAGES_TOO_LONG_AVITO"},
	"viber":     {6999, "MESSAGES_TOO_LONG_VIBER"},
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, now time.Time) {
	s.mu.Lock()
	var fail *failure
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		fail = &f
	}
	s.mu.Unlock()
	if fail != nil {
		switch {
		case fail.code == "":
			w.WriteHeader(fail.status)
		default:
			s.writeError(w, fail.status, fail.code, fail.desc, nil)
		}
		return
	}

	var req messageRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, 400, "INVALID_MESSAGE_DATA", "Message data is invalid", map[string]any{"fields": []string{"body"}})
		return
	}
	var bad []string
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	// INVALID_MESSAGE_DATA naming the bad fields in data.fields (sending
	// page, "Invalid Parameter Values").
	if !uuidRE.MatchString(str(req.ChannelID)) {
		bad = append(bad, "channelId")
	}
	if !slices.Contains(chatTypes, str(req.ChatType)) {
		bad = append(bad, "chatType")
	}
	if str(req.ChatID) == "" {
		bad = append(bad, "chatId")
	}
	if len(bad) > 0 {
		s.writeError(w, 400, "INVALID_MESSAGE_DATA", "Message data is invalid", map[string]any{"fields": bad})
		return
	}
	chID, chatType, chatID := channel.ID(*req.ChannelID), *req.ChatType, *req.ChatID

	s.mu.Lock()
	defer s.mu.Unlock()
	var ch *Channel
	for i := range s.channels {
		if s.channels[i].ID == chID {
			ch = &s.channels[i]
		}
	}
	if ch == nil {
		// The error table's CHANNEL_NOT_FOUND; its status (400) is the
		// fake's choice.
		s.writeErrorLocked(w, 400, "CHANNEL_NOT_FOUND", "Channel not found", nil)
		return
	}
	// Channel states of the channels page, mapped to the error table's
	// CHANNEL_BLOCKED (off), CHANNEL_NO_MONEY (not paid) and
	// MESSAGE_CHANNEL_UNAVAILABLE (phone unavailable and the rest).
	switch ch.State {
	case "active":
	case "disabled":
		s.writeErrorLocked(w, 400, "CHANNEL_BLOCKED", "Channel is turned off", nil)
		return
	case "notEnoughMoney":
		s.writeErrorLocked(w, 400, "CHANNEL_NO_MONEY", "Channel is not paid", nil)
		return
	default:
		s.writeErrorLocked(w, 400, "MESSAGE_CHANNEL_UNAVAILABLE", "Channel is not available", nil)
		return
	}
	if !slices.Contains(transportChatTypes[ch.Transport], chatType) {
		s.writeErrorLocked(w, 400, "WRONG_TRANSPORT",
			fmt.Sprintf("You can't send message to %s chat from %s transport", chatType, ch.Transport),
			map[string]any{"channelId": string(ch.ID), "transport": ch.Transport, "chatType": chatType})
		return
	}
	// "Both text and contentUri cannot be sent at the same time"; one is
	// required (sending page and its error table).
	text, content := str(req.Text), str(req.ContentURI)
	switch {
	case text != "" && content != "":
		s.writeErrorLocked(w, 400, "MESSAGE_ONLY_TEXT_OR_CONTENT", "Message can contain text or content", nil)
		return
	case text == "" && content == "":
		s.writeErrorLocked(w, 400, "MESSAGE_NOTHING_TO_SEND", "No message text was found", nil)
		return
	}
	// "for whatsapp and viber — only numbers" (sending page, chatId).
	if (chatType == "whatsapp" || chatType == "viber") && !digits(chatID) {
		s.writeErrorLocked(w, 400, "INVALID_MESSAGE_DATA", "Message data is invalid", map[string]any{"fields": []string{"chatId"}})
		return
	}
	if l, ok := textLimits[chatType]; ok && utf8.RuneCountInString(text) > l.max {
		s.writeErrorLocked(w, 400, l.code, fmt.Sprintf("Text exceeds %d characters", l.max), nil)
		return
	}
	// A crmMessageId used in the last 60 seconds is refused (sending
	// page, "Reusing crmMessageId").
	key := str(req.CrmMessageID)
	if key != "" {
		if at, ok := s.keys[key]; ok && (s.opt.IdempotencyWindow < 0 || now.Sub(at) < s.opt.IdempotencyWindow) {
			// The sending page's text spells the code repeatedCrmMessageId
			// (its error example REPEATED_CRM_MESSAGE_ID; the Sender takes
			// both).
			s.writeErrorLocked(w, 400, "repeatedCrmMessageId", "You have already sent message with the same crmMessageId",
				map[string]any{"crmMessageId": key})
			return
		}
		s.keys[key] = now
	}
	s.nextID++
	msg := SentMessage{
		MessageID:       uuid(0x5e17, s.nextID),
		ChannelID:       ch.ID,
		ChatType:        chatType,
		ChatID:          chatID,
		Text:            text,
		ContentURI:      content,
		CrmUserID:       str(req.CrmUserID),
		CrmMessageID:    key,
		ClearUnanswered: req.ClearUnanswered,
		Time:            now,
	}
	s.sent = append(s.sent, msg)
	// "HTTP/1.1 201 OK" with messageId and chatId (sending page,
	// response example).
	writeJSON(w, http.StatusCreated, map[string]string{"messageId": msg.MessageID, "chatId": chatID})
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (s *Server) writeError(w http.ResponseWriter, status int, code, desc string, data any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeErrorLocked(w, status, code, desc, data)
}

// writeErrorLocked writes Wazzup's error body {status, requestId, error,
// description, data?} (sending page's error examples).
func (s *Server) writeErrorLocked(w http.ResponseWriter, status int, code, desc string, data any) {
	s.nextReqID++
	body := map[string]any{
		"status":      status,
		"requestId":   fmt.Sprintf("%032x", s.nextReqID),
		"error":       code,
		"description": desc,
	}
	if data != nil {
		body["data"] = data
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WebhookMessage is one item of a webhook's messages[], as Wazzup sends
// it (fields of https://wazzup24.com/help/api-en/webhooks/ and its
// examples). Empty fields are left out; that Wazzup omits them rather
// than sending null is UNVERIFIED.
type WebhookMessage struct {
	// MessageID is Wazzup's id of the message.
	MessageID string `json:"messageId"`
	// DateTime is when the message was sent, an ISO 8601 string such as
	// "2026-07-27T14:50:59.220Z".
	DateTime string `json:"dateTime,omitempty"`
	// ChannelID is the channel the message came or went through.
	ChannelID string `json:"channelId"`
	// ChatType is the chat's type ("whatsapp", "whatsgroup", …).
	ChatType string `json:"chatType"`
	// ChatID is the chat's id: the client, or the group.
	ChatID string `json:"chatId"`
	// Type is the content type: text, image, audio, video, document,
	// vcard, geo, wapi_template, unsupported, missing_call.
	Type string `json:"type,omitempty"`
	// IsEcho is false for a message from the client, true for one sent to
	// them (from the CRM, the Wazzup app or the phone).
	IsEcho bool `json:"isEcho"`
	// Contact describes the sender as the messenger shows them; nil
	// leaves it out.
	Contact *WebhookContact `json:"contact,omitempty"`
	// Text is the message's text.
	Text string `json:"text,omitempty"`
	// ContentURI is the address of the message's media.
	ContentURI string `json:"contentUri,omitempty"`
	// Status is "inbound" for a client's message, else the delivery
	// status: sent, delivered, read, error.
	Status string `json:"status,omitempty"`
	// AuthorName is the name of the employee who wrote an echo.
	AuthorName string `json:"authorName,omitempty"`
	// AuthorID is the CRM user id of the employee who wrote an echo.
	AuthorID string `json:"authorId,omitempty"`
	// SentFromApp is true for an echo written in the Wazzup app.
	SentFromApp bool `json:"sentFromApp,omitempty"`
}

// WebhookContact is the contact object of a webhook message (webhooks
// page).
type WebhookContact struct {
	// Name is the sender's name on the messenger.
	Name string `json:"name,omitempty"`
	// AvatarURI is the address of the sender's avatar.
	AvatarURI string `json:"avatarUri,omitempty"`
	// Username is the sender's username on the messenger.
	Username string `json:"username,omitempty"`
	// Phone is the sender's phone, international digits.
	Phone string `json:"phone,omitempty"`
}

// WebhookStatus is one item of a webhook's statuses[] (webhooks page).
type WebhookStatus struct {
	// MessageID is Wazzup's id of the outgoing message.
	MessageID string `json:"messageId"`
	// Timestamp is when the status changed, an ISO 8601 string.
	Timestamp string `json:"timestamp"`
	// Status is the new status: sent, delivered, read, error, edited.
	Status string `json:"status"`
}

// WebhookError is returned when a webhook handler did not answer 200.
type WebhookError struct {
	// Status is the HTTP status the handler answered.
	Status int
	// Body is the start of the handler's answer (at most 4 KiB, or
	// 64 KiB for a creation webhook).
	Body string
}

// Error implements the error interface.
func (e *WebhookError) Error() string {
	return fmt.Sprintf("wazzuptest: webhook answered %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// chatTypeOf is the one-to-one chat type of a transport.
func chatTypeOf(transport string) string {
	switch transport {
	case "wapi":
		return "whatsapp"
	case "tgapi":
		return "telegram"
	case "maxbot":
		return "max"
	}
	return transport
}

// groupChatTypeOf is the group chat type of a transport, "" when it has
// none (WABA, Instagram, VK, Avito, Viber).
func groupChatTypeOf(transport string) string {
	switch chatTypeOf(transport) {
	case "whatsapp":
		if transport == "wapi" {
			return ""
		}
		return "whatsgroup"
	case "telegram":
		return "telegroup"
	case "max":
		return "maxgroup"
	}
	return ""
}

func (s *Server) channel(id channel.ID) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		if c.ID == id {
			return c, true
		}
	}
	return Channel{}, false
}

// ClientWrites posts to webhookURL the webhook Wazzup sends when a client
// writes text in chatID on channel ch, and returns the new message's ID.
// The message has the fields of the webhooks page's examples; the
// contact is named after chatID on WhatsApp-like channels (as in those
// examples, a client without a profile name) and "Client <chatID>"
// elsewhere. It fails when ch is unknown or the handler does not answer
// 200 (a *WebhookError).
func (s *Server) ClientWrites(ctx context.Context, webhookURL string, ch channel.ID, chatID, text string) (string, error) {
	c, ok := s.channel(ch)
	if !ok {
		return "", fmt.Errorf("wazzuptest: unknown channel %q", ch)
	}
	s.mu.Lock()
	s.nextID++
	id := uuid(0x1a, s.nextID)
	now := s.opt.Now()
	s.mu.Unlock()
	ct := chatTypeOf(c.Transport)
	contact := &WebhookContact{Name: chatID}
	if ct != "whatsapp" && ct != "viber" {
		contact.Name = "Client " + chatID
	}
	m := WebhookMessage{
		MessageID: id,
		DateTime:  now.UTC().Format("2006-01-02T15:04:05.000Z"),
		ChannelID: string(ch),
		ChatType:  ct,
		ChatID:    chatID,
		Type:      "text",
		Contact:   contact,
		Text:      text,
		Status:    "inbound",
	}
	return id, s.PostMessages(ctx, webhookURL, m)
}

// Echo posts to webhookURL the echo Wazzup sends for a message it sent
// (see Sent): isEcho true, with authorId set to the message's crmUserId
// (webhooks page: authorId is "User ID in your CRM"; whether Wazzup echoes
// messages sent through the API itself is not documented: the page says
// isEcho marks outgoing messages "sent not from this API").
func (s *Server) Echo(ctx context.Context, webhookURL string, m SentMessage) error {
	return s.PostMessages(ctx, webhookURL, WebhookMessage{
		MessageID:  m.MessageID,
		DateTime:   m.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		ChannelID:  string(m.ChannelID),
		ChatType:   m.ChatType,
		ChatID:     m.ChatID,
		Type:       "text",
		IsEcho:     true,
		Text:       m.Text,
		ContentURI: m.ContentURI,
		Status:     "sent",
		AuthorID:   m.CrmUserID,
	})
}

// PostMessages posts a messages[] webhook.
func (s *Server) PostMessages(ctx context.Context, webhookURL string, msgs ...WebhookMessage) error {
	return s.PostWebhook(ctx, webhookURL, map[string]any{"messages": msgs})
}

// PostStatus posts a statuses[] webhook telling that messageID reached
// status (sent, delivered, read, error, edited).
func (s *Server) PostStatus(ctx context.Context, webhookURL, messageID, status string) error {
	st := WebhookStatus{
		MessageID: messageID,
		Timestamp: s.opt.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		Status:    status,
	}
	return s.PostWebhook(ctx, webhookURL, map[string]any{"statuses": []WebhookStatus{st}})
}

// PostTest posts the subscription test {"test": true}, as Wazzup does on
// PATCH /v3/webhooks.
func (s *Server) PostTest(ctx context.Context, webhookURL string) error {
	return s.PostWebhook(ctx, webhookURL, map[string]bool{"test": true})
}

// PostWebhook posts body, encoded as JSON, to webhookURL the way Wazzup
// does (with the bearer CRMKey if set) and fails unless the answer is 200.
func (s *Server) PostWebhook(ctx context.Context, webhookURL string, body any) error {
	_, err := s.post(ctx, webhookURL, body, 4096)
	return err
}

// post posts body as a Wazzup webhook and returns at most limit bytes of
// a 200 answer; another status is a *WebhookError.
func (s *Server) post(ctx context.Context, webhookURL string, body any, limit int64) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("wazzuptest: encoding webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhookURL, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("wazzuptest: %w", err)
	}
	// Wazzup's documented content type, typo included (webhooks page,
	// https://wazzup24.com/help/api-en/webhooks/).
	req.Header.Set("Content-Type", "application/json; charset-utf-8")
	if s.opt.CRMKey != "" {
		// "If we have your crmKey, we add the Authorization: Bearer
		// ${crmKey} header" (webhooks page).
		req.Header.Set("Authorization", "Bearer "+s.opt.CRMKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wazzuptest: posting webhook: %w", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(io.LimitReader(resp.Body, limit))
	if resp.StatusCode != http.StatusOK {
		return nil, &WebhookError{Status: resp.StatusCode, Body: buf.String()}
	}
	return buf.Bytes(), nil
}
