package wazzup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crmbridge/crmbridge/channel"
)

// DefaultMaxBodyBytes is the webhook body limit when
// HandlerOptions.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// Events is what one webhook POST carried, decoded.
type Events struct {
	// Messages are new, edited or deleted messages, in the order Wazzup
	// sent them. An echo (isEcho) is Outbound; anything else Inbound.
	// Messages of group chats have Group set.
	Messages []channel.Message
	// Details[i] is what Wazzup says about Messages[i] beyond
	// channel.Message; len(Details) == len(Messages).
	Details []MessageDetails
	// Statuses are delivery status updates of outgoing messages.
	Statuses []Status
	// Rejected are the items of the body that could not be decoded, each
	// with its reason; the other items are in Messages and Statuses.
	Rejected []Rejected
}

// Rejected is an item of a webhook body that could not be decoded.
type Rejected struct {
	// Item names the item the way the body does: "messages[3]",
	// "statuses[0]". Items are counted in body order, across repeated
	// keys.
	Item string
	// Reason says what was wrong, in the payload's terms.
	Reason string
	// Raw is the item as received, cut at 4 KiB.
	Raw json.RawMessage
}

// String implements fmt.Stringer.
func (r Rejected) String() string { return r.Item + ": " + r.Reason }

// MessageStatus is Wazzup's status of a message.
type MessageStatus string

// Message statuses. Inbound is only on messages[]; Edited only on
// statuses[] (a message edited in the messenger itself).
const (
	StatusInbound   MessageStatus = "inbound"
	StatusSent      MessageStatus = "sent"
	StatusDelivered MessageStatus = "delivered"
	StatusRead      MessageStatus = "read"
	StatusError     MessageStatus = "error"
	StatusEdited    MessageStatus = "edited"
)

// MessageDetails is Wazzup's data about a webhook message that
// channel.Message has no field for.
type MessageDetails struct {
	// ChatType is Wazzup's chat type: whatsapp, whatsgroup, telegram, …
	ChatType string
	// Type is the content type: text, image, audio, video, document,
	// vcard, geo, wapi_template, unsupported, missing_call, unknown.
	Type string
	// Status is the message status.
	Status MessageStatus
	// AuthorName is the name of the employee who wrote an echo, if any.
	AuthorName string
	// ContactName is contact.name as Wazzup sent it. For a group chat
	// Wazzup's documentation does not say whether it names the group or
	// the member, so it is not copied to channel.Message.ClientName.
	ContactName string
	// SentFromApp is true when an echo was written in Wazzup's own chat
	// window or app.
	SentFromApp bool
	// Edited and Deleted tell that this is an update of a message already
	// delivered under the same ID.
	Edited, Deleted bool
	// Error is set when Status is StatusError.
	Error *DeliveryError
}

// Status is a status update of an outgoing message.
type Status struct {
	// MessageID is Wazzup's message ID: the ProviderID of a Send receipt.
	MessageID string
	// Status is StatusSent, StatusDelivered, StatusRead, StatusError or
	// StatusEdited; other values are passed on as they are.
	Status MessageStatus
	// Time is when Wazzup learnt the status; zero when not given.
	Time time.Time
	// Error is set when Status is StatusError.
	Error *DeliveryError
}

// DeliveryError is the reason Wazzup gives for a message it could not
// deliver, such as BAD_CONTACT, TOO_LONG_TEXT, SPAM or 24_HOURS_EXCEEDED.
// It matches channel.ErrRejected, and ErrWindowClosed when the
// messenger's reply window was closed.
type DeliveryError struct {
	// Code is Wazzup's error code, e.g. "24_HOURS_EXCEEDED".
	Code string
	// Description is Wazzup's English description, if any.
	Description string
}

// Error implements the error interface.
func (e *DeliveryError) Error() string {
	if e.Description == "" {
		return "wazzup: not delivered: " + e.Code
	}
	return "wazzup: not delivered: " + e.Code + ": " + e.Description
}

// Is reports whether target is channel.ErrRejected, or ErrWindowClosed
// for the codes of a closed window.
func (e *DeliveryError) Is(target error) bool {
	return target == channel.ErrRejected || (target == ErrWindowClosed && windowCode(e.Code))
}

// EventHandler receives the events of a webhook. The Handler answers
// Wazzup with 200 only after HandleEvents returned nil; an error makes the
// answer 500 so that Wazzup delivers the events again. HandleEvents must
// therefore be idempotent by message ID, and should return well within
// Wazzup's 30 second timeout (queue the work, then return). Events may
// hold only Rejected items: returning nil then acknowledges them.
type EventHandler interface {
	// HandleEvents processes the events of one delivery; nil
	// acknowledges them, an error has Wazzup deliver them again.
	HandleEvents(ctx context.Context, ev Events) error
}

// EventHandlerFunc adapts a function to EventHandler.
type EventHandlerFunc func(ctx context.Context, ev Events) error

// HandleEvents calls f.
func (f EventHandlerFunc) HandleEvents(ctx context.Context, ev Events) error { return f(ctx, ev) }

// ContactRequest is Wazzup's createContact webhook: Wazzup wants the CRM
// to create a contact for a new client.
type ContactRequest struct {
	// ResponsibleUserID is the user Wazzup's own distribution picked (the
	// first responder, or the next in turn).
	ResponsibleUserID string
	// Name is the contact's name in Wazzup.
	Name string
	// Chats are the client's chats.
	Chats []ContactChat
	// Source is "auto" (a message came or went) or "byUser" (the "+"
	// button of Wazzup's Deals list).
	Source string
}

// DealRequest is Wazzup's createDeal webhook: Wazzup wants the CRM to
// create a deal.
type DealRequest struct {
	// ResponsibleUserID is the user Wazzup's distribution picked.
	ResponsibleUserID string
	// Contacts are the IDs of the deal's contacts.
	Contacts []string
	// Source is "auto" or "byUser", as for ContactRequest.
	Source string
}

// Creator creates the entities Wazzup asks for with its createContact
// and createDeal webhooks (subscription contactsAndDealsCreation). The
// Handler answers with the created entity, as Wazzup requires; an error
// makes the answer 500.
//
// These webhooks carry Wazzup's own choice of responsible user: a host
// that distributes clients itself (with crmbridge's routing) subscribes
// with contactsAndDealsCreation off and pushes contacts and deals with
// an [Account] instead.
type Creator interface {
	// CreateContact creates the contact req asks for and returns it as
	// Wazzup will know it. The contact must have an ID, a
	// ResponsibleUserID and at least one chat, else the Handler answers
	// 500.
	CreateContact(ctx context.Context, req ContactRequest) (Contact, error)
	// CreateDeal creates the deal req asks for and returns it as Wazzup
	// will know it. The deal must have an ID and a ResponsibleUserID,
	// else the Handler answers 500.
	CreateDeal(ctx context.Context, req DealRequest) (Deal, error)
}

// HandlerOptions configures a Handler. The zero value is valid: no bearer
// check, a DefaultMaxBodyBytes limit, and no Creator.
type HandlerOptions struct {
	// BearerKey, when set, is the crmKey Wazzup was given: every request
	// must carry "Authorization: Bearer <BearerKey>" or is answered 401.
	// Compared in constant time; never logged.
	BearerKey string
	// MaxBodyBytes bounds the request body; bigger bodies are answered
	// 413. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Creator answers createContact and createDeal webhooks; nil means the
	// EventHandler when it implements Creator, else such webhooks are
	// answered 501 (subscribe with contactsAndDealsCreation off).
	Creator Creator
	// Logger receives a record for every rejected or failed request and
	// every rejected item; nil means no logging.
	Logger *slog.Logger
}

// Handler is the http.Handler receiving Wazzup's webhooks (the
// webhooksUri of PATCH /v3/webhooks). It is safe for concurrent use.
//
// Every item of a body the Handler answers 200 reached the EventHandler,
// decoded in Events.Messages or Events.Statuses, or reported in
// Events.Rejected with its reason: one bad item never blocks its
// neighbours. Answers: 200 to the subscription test ({"test": true}), to
// bodies with no items (other webhook kinds, ignored), and after the
// EventHandler accepted the events; 200 with the created entity after
// the Creator created it; 400 with a reason when the body as a whole is
// not a webhook (not a JSON object, messages not an array, …); 401 for a
// missing or wrong bearer key; 405 for a method other than POST; 413 for
// a body over the limit; 500 when the EventHandler or Creator failed;
// 501 for a creation webhook with no Creator.
type Handler struct {
	keySum  [sha256.Size]byte
	hasKey  bool
	maxBody int64
	h       EventHandler
	creator Creator
	log     *slog.Logger
}

// NewHandler returns a Handler passing events to h. It fails when h is
// nil or opt.MaxBodyBytes is negative.
func NewHandler(opt HandlerOptions, h EventHandler) (*Handler, error) {
	if h == nil {
		return nil, errors.New("wazzup: NewHandler: EventHandler is nil")
	}
	if opt.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("wazzup: NewHandler: MaxBodyBytes %d is negative", opt.MaxBodyBytes)
	}
	hd := &Handler{maxBody: opt.MaxBodyBytes, h: h, creator: opt.Creator, log: opt.Logger}
	if hd.creator == nil {
		hd.creator, _ = h.(Creator)
	}
	if hd.maxBody == 0 {
		hd.maxBody = DefaultMaxBodyBytes
	}
	if opt.BearerKey != "" {
		hd.keySum = sha256.Sum256([]byte("Bearer " + opt.BearerKey))
		hd.hasKey = true
	}
	if hd.log == nil {
		hd.log = slog.New(slog.DiscardHandler)
	}
	return hd, nil
}

// String describes the Handler without its bearer key.
func (hd *Handler) String() string {
	return fmt.Sprintf("wazzup.Handler(bearer check: %t, max body: %d, creator: %t)", hd.hasKey, hd.maxBody, hd.creator != nil)
}

// GoString is String, so that %#v does not reveal the key's hash.
func (hd *Handler) GoString() string { return hd.String() }

// ServeHTTP implements http.Handler.
func (hd *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		hd.reject(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use POST")
		return
	}
	if hd.hasKey {
		// Hashing first makes the comparison independent of the length of
		// the presented header, too.
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], hd.keySum[:]) != 1 {
			hd.reject(w, r, http.StatusUnauthorized, "missing or wrong bearer key")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, hd.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			hd.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", hd.maxBody))
			return
		}
		hd.reject(w, r, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	wh, err := DecodeWebhook(body)
	if err != nil {
		reason := err.Error()
		var me *MalformedError
		if errors.As(err, &me) {
			reason = me.Reason
		}
		hd.reject(w, r, http.StatusBadRequest, reason)
		return
	}
	ctx := r.Context()
	switch {
	case wh.CreateContact != nil || wh.CreateDeal != nil:
		hd.create(w, r, wh)
		return
	case len(wh.Events.Messages) == 0 && len(wh.Events.Statuses) == 0 && len(wh.Events.Rejected) == 0:
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, rj := range wh.Events.Rejected {
		hd.log.WarnContext(ctx, "wazzup webhook: item rejected, passed on as Events.Rejected",
			"item", rj.Item, "reason", rj.Reason)
	}
	if err := hd.h.HandleEvents(ctx, wh.Events); err != nil {
		hd.log.ErrorContext(ctx, "wazzup webhook: event handler failed; Wazzup should retry",
			"messages", len(wh.Events.Messages), "statuses", len(wh.Events.Statuses),
			"rejected", len(wh.Events.Rejected), "err", err)
		http.Error(w, "wazzup webhook: events not accepted, retry later", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// create answers a createContact or createDeal webhook with the entity
// the Creator made.
func (hd *Handler) create(w http.ResponseWriter, r *http.Request, wh Webhook) {
	ctx := r.Context()
	if hd.creator == nil {
		hd.reject(w, r, http.StatusNotImplemented,
			"this integration does not create contacts or deals; subscribe with contactsAndDealsCreation false")
		return
	}
	var (
		out  any
		err  error
		what string
	)
	if wh.CreateContact != nil {
		what = "createContact"
		var c Contact
		c, err = hd.creator.CreateContact(ctx, *wh.CreateContact)
		if err == nil && (c.ID == "" || c.ResponsibleUserID == "" || len(c.Chats) == 0) {
			err = errors.New("the created contact lacks id, responsibleUserId or contactData")
		}
		out = c
	} else {
		what = "createDeal"
		var d Deal
		d, err = hd.creator.CreateDeal(ctx, *wh.CreateDeal)
		if err == nil && (d.ID == "" || d.ResponsibleUserID == "") {
			err = errors.New("the created deal lacks id or responsibleUserId")
		}
		out = d
	}
	if err != nil {
		hd.log.ErrorContext(ctx, "wazzup webhook: creation failed", "webhook", what, "err", err)
		http.Error(w, "wazzup webhook: "+what+" failed, retry later", http.StatusInternalServerError)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "wazzup webhook: encoding the created entity failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (hd *Handler) reject(w http.ResponseWriter, r *http.Request, status int, reason string) {
	hd.log.WarnContext(r.Context(), "wazzup webhook: rejected", "status", status, "reason", reason,
		"remote", r.RemoteAddr)
	http.Error(w, "wazzup webhook: "+reason, status)
}

// ErrMalformed matches every error of DecodeWebhook.
var ErrMalformed = errors.New("wazzup: malformed webhook")

// MalformedError says why a webhook body was rejected as a whole. It
// matches ErrMalformed.
type MalformedError struct {
	// Reason says what is wrong with the body, e.g. "body is not a JSON
	// object".
	Reason string
}

// Error implements the error interface.
func (e *MalformedError) Error() string { return "malformed webhook: " + e.Reason }

// Is reports whether target is ErrMalformed.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// Webhook is one decoded webhook body.
type Webhook struct {
	// Test is true when the body carried "test": true (the subscription
	// test, which may come with items too: they are in Events).
	Test bool
	// Events are the body's messages and statuses; empty for a creation
	// webhook.
	Events Events
	// CreateContact is set for Wazzup's createContact webhook, which
	// carries nothing else; nil otherwise.
	CreateContact *ContactRequest
	// CreateDeal is set for Wazzup's createDeal webhook, which carries
	// nothing else; nil otherwise.
	CreateDeal *DealRequest
}

// wire types of the webhook body.
type (
	wireMessage struct {
		MessageID   string     `json:"messageId"`
		ChannelID   string     `json:"channelId"`
		ChatType    string     `json:"chatType"`
		ChatID      string     `json:"chatId"`
		DateTime    wireTime   `json:"dateTime"`
		Type        string     `json:"type"`
		IsEcho      bool       `json:"isEcho"`
		Contact     *wireCont  `json:"contact"`
		Text        string     `json:"text"`
		ContentURI  string     `json:"contentUri"`
		Status      string     `json:"status"`
		Error       *wireError `json:"error"`
		AuthorName  string     `json:"authorName"`
		AuthorID    string     `json:"authorId"`
		SentFromApp bool       `json:"sentFromApp"`
		IsEdited    bool       `json:"isEdited"`
		IsDeleted   bool       `json:"isDeleted"`
	}
	wireCont struct {
		Name     string `json:"name"`
		Username string `json:"username"`
		Phone    string `json:"phone"`
	}
	wireError struct {
		Error       string `json:"error"`
		Description string `json:"description"`
	}
	wireStatus struct {
		MessageID string     `json:"messageId"`
		Timestamp wireTime   `json:"timestamp"`
		Status    string     `json:"status"`
		Error     *wireError `json:"error"`
	}
	wireCreateContact struct {
		ResponsibleUserID string        `json:"responsibleUserId"`
		Name              string        `json:"name"`
		ContactData       []ContactChat `json:"contactData"`
		Source            string        `json:"source"`
	}
	wireCreateDeal struct {
		ResponsibleUserID string   `json:"responsibleUserId"`
		Contacts          []string `json:"contacts"`
		Source            string   `json:"source"`
	}
)

// wireTime accepts Wazzup's times: an ISO 8601 string with or without a
// zone (no zone means UTC), or Unix milliseconds as a number or string.
type wireTime struct{ t time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

func (wt *wireTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	switch {
	case len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b):
		// A plain string (every time Wazzup sends; the caller validated
		// the JSON): no reflection.
		s = string(b[1 : len(b)-1])
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	default:
		s = string(b)
	}
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	wt.t = t
	return nil
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > 1e15 {
			return time.Time{}, fmt.Errorf("time %s out of range", s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is neither ISO 8601 nor Unix milliseconds", truncate(s, 40))
}

// DecodeWebhook decodes a webhook body. The body as a whole must be one
// JSON object whose messages and statuses, when present, are arrays (or
// null), whose test is a boolean and whose createContact / createDeal are
// objects; otherwise the error, a *MalformedError, says what was wrong in
// the payload's terms.
//
// Items are decoded one by one: an item that is not an object, has a
// field of the wrong type, lacks messageId, channelId or chatId (a
// message) or messageId or status (a status), or has an unparseable time
// is reported in Events.Rejected and the others are decoded. A key given
// twice (messages, statuses) contributes the items of every occurrence,
// in order. Keys are matched without case, as encoding/json does; unknown
// keys and other webhook kinds (channelsUpdates, templateStatus) are
// ignored.
func DecodeWebhook(body []byte) (Webhook, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return Webhook{}, malformed("empty body")
	}
	if trimmed[0] != '{' {
		return Webhook{}, malformed("body is not a JSON object")
	}
	if wh, ok := decodeFast(trimmed); ok {
		return wh, nil
	}
	return decodeSlow(trimmed)
}

// wireBody is the webhook body for decodeFast.
type wireBody struct {
	Test          *bool           `json:"test"`
	Messages      []wireMessage   `json:"messages"`
	Statuses      []wireStatus    `json:"statuses"`
	CreateContact json.RawMessage `json:"createContact"`
	CreateDeal    json.RawMessage `json:"createDeal"`
}

// decodeFast decodes the common body (each key once, every item valid,
// no creation webhook) in one pass; it reports false whenever
// decodeSlow could decide differently, which then decides.
func decodeFast(body []byte) (Webhook, bool) {
	if mayHideKey(body) || countKey(body, "messages") > 1 || countKey(body, "statuses") > 1 || countKey(body, "test") > 1 {
		return Webhook{}, false
	}
	var wb wireBody
	if json.Unmarshal(body, &wb) != nil || wb.CreateContact != nil || wb.CreateDeal != nil {
		return Webhook{}, false
	}
	var wh Webhook
	if wb.Test != nil {
		wh.Test = *wb.Test
	}
	ev := &wh.Events
	if n := len(wb.Messages); n > 0 {
		ev.Messages = make([]channel.Message, 0, n)
		ev.Details = make([]MessageDetails, 0, n)
	}
	for i := range wb.Messages {
		m, d, err := wb.Messages[i].decode()
		if err != nil {
			return Webhook{}, false
		}
		ev.Messages = append(ev.Messages, m)
		ev.Details = append(ev.Details, d)
	}
	if n := len(wb.Statuses); n > 0 {
		ev.Statuses = make([]Status, 0, n)
	}
	for _, ws := range wb.Statuses {
		if ws.MessageID == "" || ws.Status == "" {
			return Webhook{}, false
		}
		ev.Statuses = append(ev.Statuses, Status{MessageID: ws.MessageID, Status: MessageStatus(ws.Status),
			Time: ws.Timestamp.t, Error: ws.Error.decode()})
	}
	return wh, true
}

// countKey counts the places where body may hold key as an object key:
// the quoted key in any letter case (encoding/json matches keys without
// case). It may count occurrences inside string values too; that only
// sends the body to the slow path. Keys spelled with escapes are
// mayHideKey's.
func countKey(body []byte, key string) int {
	n := 0
	for i := 0; i+len(key)+2 <= len(body); i++ {
		if body[i] != '"' {
			continue
		}
		if bytes.EqualFold(body[i+1:i+1+len(key)], []byte(key)) && body[i+1+len(key)] == '"' {
			n++
		}
	}
	return n
}

// mayHideKey reports whether body could spell a key countKey does not
// see: an escaped key, or one with the two non-ASCII letters that fold to
// ASCII (ſ to s, the Kelvin sign to k). The slow path then decides.
func mayHideKey(body []byte) bool {
	return bytes.Contains(body, []byte(`\u`)) || bytes.Contains(body, []byte("ſ")) || bytes.Contains(body, []byte("\u212a"))
}

// decodeSlow decodes the body key by key and item by item, rejecting
// bad items alone.
func decodeSlow(trimmed []byte) (Webhook, error) {
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // '{'
		return Webhook{}, malformed("%s", jsonReason("", err))
	}
	var (
		wh                    Webhook
		msgItems, statusItems []json.RawMessage
		kinds                 int // creation webhooks seen
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Webhook{}, malformed("%s", jsonReason("", err))
		}
		key, _ := tok.(string)
		// Keys match without case, as encoding/json matches them.
		for _, k := range []string{"messages", "statuses", "test", "createContact", "createDeal"} {
			if strings.EqualFold(key, k) {
				key = k
			}
		}
		switch key {
		case "messages", "statuses":
			// Stream the items, so that each is scanned once here and
			// decoded once below.
			items, err := decodeItems(dec, key)
			if err != nil {
				return Webhook{}, err
			}
			if key == "messages" {
				msgItems = append(msgItems, items...)
			} else {
				statusItems = append(statusItems, items...)
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Webhook{}, malformed("%s", jsonReason("", err))
		}
		switch key {
		case "test":
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil && !isNull(raw) {
				return Webhook{}, malformed("test: expected a boolean, got %s", jsonKind(raw))
			}
			wh.Test = b
		case "createContact":
			var w wireCreateContact
			if err := decodeObject(raw, &w); err != nil {
				return Webhook{}, malformed("createContact%s", err)
			}
			wh.CreateContact = &ContactRequest{ResponsibleUserID: w.ResponsibleUserID, Name: w.Name,
				Chats: w.ContactData, Source: w.Source}
			kinds++
		case "createDeal":
			var w wireCreateDeal
			if err := decodeObject(raw, &w); err != nil {
				return Webhook{}, malformed("createDeal%s", err)
			}
			wh.CreateDeal = &DealRequest{ResponsibleUserID: w.ResponsibleUserID, Contacts: w.Contacts, Source: w.Source}
			kinds++
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return Webhook{}, malformed("%s", jsonReason("", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Webhook{}, malformed("invalid JSON after top-level value")
	}
	if kinds > 1 || (kinds == 1 && len(msgItems)+len(statusItems) > 0) {
		return Webhook{}, malformed("a createContact or createDeal webhook carries nothing else")
	}
	ev := &wh.Events
	if n := len(msgItems); n > 0 {
		ev.Messages = make([]channel.Message, 0, n)
		ev.Details = make([]MessageDetails, 0, n)
	}
	for i, raw := range msgItems {
		var wm wireMessage
		if err := decodeObject(raw, &wm); err != nil {
			ev.Rejected = append(ev.Rejected, rejected("messages", i, raw, itemReason(err)))
			continue
		}
		m, d, err := wm.decode()
		if err != nil {
			ev.Rejected = append(ev.Rejected, rejected("messages", i, raw, err.Error()))
			continue
		}
		ev.Messages = append(ev.Messages, m)
		ev.Details = append(ev.Details, d)
	}
	for i, raw := range statusItems {
		var ws wireStatus
		if err := decodeObject(raw, &ws); err != nil {
			ev.Rejected = append(ev.Rejected, rejected("statuses", i, raw, itemReason(err)))
			continue
		}
		switch {
		case ws.MessageID == "":
			ev.Rejected = append(ev.Rejected, rejected("statuses", i, raw, "messageId is missing"))
		case ws.Status == "":
			ev.Rejected = append(ev.Rejected, rejected("statuses", i, raw, "status is missing"))
		default:
			ev.Statuses = append(ev.Statuses, Status{
				MessageID: ws.MessageID,
				Status:    MessageStatus(ws.Status),
				Time:      ws.Timestamp.t,
				Error:     ws.Error.decode(),
			})
		}
	}
	return wh, nil
}

// decodeItems reads the value of key messages or statuses: null or an
// array, whose items it returns undecoded.
func decodeItems(dec *json.Decoder, key string) ([]json.RawMessage, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed("%s", jsonReason("", err))
	}
	switch tok {
	case nil:
		return nil, nil
	case json.Delim('['):
	default:
		kind := "a number"
		switch tok.(type) {
		case json.Delim: // '{'
			kind = "an object"
		case string:
			kind = "a string"
		case bool:
			kind = "a boolean"
		}
		return nil, malformed("%s: expected an array, got %s", key, kind)
	}
	var items []json.RawMessage
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed("%s", jsonReason("", err))
		}
		items = append(items, raw)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, malformed("%s", jsonReason("", err))
	}
	return items, nil
}

// maxRawItem bounds Rejected.Raw.
const maxRawItem = 4 << 10

func rejected(key string, i int, raw json.RawMessage, reason string) Rejected {
	if len(raw) > maxRawItem {
		raw = raw[:maxRawItem]
	}
	return Rejected{Item: fmt.Sprintf("%s[%d]", key, i), Reason: reason, Raw: raw}
}

// decodeObject decodes an object into v; its error starts with ": " or
// with the field path (".isEcho: …"), so that the caller can prefix the
// item's name.
func decodeObject(raw json.RawMessage, v any) error {
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf(": expected an object, got %s", jsonKind(raw))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New(jsonReason("", err))
	}
	return nil
}

// itemReason turns a decodeObject error into a reason following an
// item's name.
func itemReason(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), ": "), ".")
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// jsonKind names the JSON type of raw: "an object", "a string", …
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// goKind names the JSON type a Go type decodes from.
func goKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t == reflect.TypeFor[wireTime]() {
		return "a time"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return goKind(t.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}

// jsonValueKind names the JSON type from an UnmarshalTypeError's Value
// ("string", "number", "bool", "array", "object").
func jsonValueKind(v string) string {
	switch {
	case v == "bool":
		return "a boolean"
	case v == "array" || v == "object":
		return "an " + v
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "string":
		return "a string"
	}
	return v
}

// jsonReason words a JSON decoding error in the payload's terms; field
// names the key being decoded, if any. Field paths come out as
// ".name: …" or ": …" when there is none, to follow an item's name.
func jsonReason(field string, err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	prefix := func(f string) string {
		if f == "" {
			return ": "
		}
		return "." + f + ": "
	}
	switch {
	case errors.As(err, &te):
		f := te.Field
		if field != "" {
			f = strings.TrimPrefix(field+"."+f, ".")
		}
		return prefix(f) + "expected " + goKind(te.Type) + ", got " + jsonValueKind(te.Value)
	case errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end"):
		return "truncated JSON"
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	// A field's own UnmarshalJSON failed (times).
	return strings.TrimPrefix(prefix(field), ".") + truncate(err.Error(), 200)
}

func (we *wireError) decode() *DeliveryError {
	if we == nil || (we.Error == "" && we.Description == "") {
		return nil
	}
	return &DeliveryError{Code: we.Error, Description: we.Description}
}

// groupChatTypes are Wazzup's chat types of group chats (whatsgroup in
// the webhooks and sending pages; telegroup and maxgroup on the Russian
// sending page).
var groupChatTypes = map[string]bool{"whatsgroup": true, "telegroup": true, "maxgroup": true}

// IsGroupChatType reports whether chatType is one of Wazzup's group chat
// types: whatsgroup, telegroup, maxgroup.
func IsGroupChatType(chatType string) bool { return groupChatTypes[strings.ToLower(chatType)] }

func (wm *wireMessage) decode() (channel.Message, MessageDetails, error) {
	switch {
	case wm.MessageID == "":
		return channel.Message{}, MessageDetails{}, errors.New("messageId is missing")
	case wm.ChannelID == "":
		return channel.Message{}, MessageDetails{}, errors.New("channelId is missing")
	case wm.ChatID == "":
		return channel.Message{}, MessageDetails{}, errors.New("chatId is missing")
	}
	m := channel.Message{
		ID:         wm.MessageID,
		Chat:       channel.Chat{Channel: channel.ID(wm.ChannelID), ChatID: wm.ChatID},
		Text:       wm.Text,
		ContentURI: wm.ContentURI,
		Time:       wm.DateTime.t,
	}
	if wm.IsEcho {
		m.Direction = channel.Outbound
		// An echo was written by an employee: through the CRM or Wazzup's
		// window (authorId names the CRM user) or on the phone itself (no
		// authorId: an employee the CRM cannot name).
		m.Author = channel.Author{Kind: channel.AuthorEmployee, UserID: wm.AuthorID}
	} else {
		m.Direction = channel.Inbound
		m.Author = channel.Author{Kind: channel.AuthorClient}
	}
	chatType := strings.ToLower(wm.ChatType)
	var c wireCont
	if wm.Contact != nil {
		c = *wm.Contact
	}
	d := MessageDetails{
		ChatType:    wm.ChatType,
		Type:        wm.Type,
		Status:      MessageStatus(wm.Status),
		AuthorName:  wm.AuthorName,
		ContactName: c.Name,
		SentFromApp: wm.SentFromApp,
		Edited:      wm.IsEdited,
		Deleted:     wm.IsDeleted,
		Error:       wm.Error.decode(),
	}
	if groupChatTypes[chatType] {
		// The chat is the group; the author a member, who is no client:
		// nothing here names a client.
		m.Group = true
		return m, d, nil
	}
	switch chatType {
	case "whatsapp", "viber":
		if allDigits(wm.ChatID) {
			m.Phone = "+" + wm.ChatID
		}
	case "instagram":
		m.Username = strings.TrimPrefix(wm.ChatID, "@")
	}
	if m.Phone == "" && c.Phone != "" {
		m.Phone = normPhone(c.Phone)
	}
	if c.Username != "" {
		m.Username = strings.TrimPrefix(c.Username, "@")
	}
	// Wazzup puts the number as the name of a WhatsApp contact without a
	// profile name; that is no name.
	if c.Name != wm.ChatID && normPhone(c.Name) != m.Phone {
		m.ClientName = c.Name
	}
	return m, d, nil
}

// normPhone turns international digits into "+digits" and leaves anything
// else as it is.
func normPhone(p string) string {
	p = strings.TrimSpace(p)
	if allDigits(p) {
		return "+" + p
	}
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
