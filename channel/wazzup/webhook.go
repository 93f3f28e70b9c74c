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
	"strconv"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
)

// DefaultMaxBodyBytes is the webhook body limit when
// HandlerOptions.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// Events is what one webhook POST carried, decoded.
type Events struct {
	// Messages are new, edited or deleted messages, in the order Wazzup
	// sent them. An echo (isEcho) is Outbound; anything else Inbound.
	Messages []channel.Message
	// Details[i] is what Wazzup says about Messages[i] beyond
	// channel.Message; len(Details) == len(Messages).
	Details []MessageDetails
	// Statuses are delivery status updates of outgoing messages.
	Statuses []Status
}

// MessageDetails is Wazzup's data about a webhook message that
// channel.Message has no field for.
type MessageDetails struct {
	// ChatType is Wazzup's chat type: whatsapp, whatsgroup, telegram, …
	ChatType string
	// Type is the content type: text, image, audio, video, document,
	// vcard, geo, wapi_template, unsupported, missing_call, unknown.
	Type string
	// Status is the message status: inbound, sent, delivered, read, error.
	Status string
	// AuthorName is the name of the employee who wrote an echo, if any.
	AuthorName string
	// SentFromApp is true when an echo was written in Wazzup's own chat
	// window or app.
	SentFromApp bool
	// Edited and Deleted tell that this is an update of a message already
	// delivered under the same ID.
	Edited, Deleted bool
	// Error is set when Status is "error".
	Error *DeliveryError
}

// Status is a status update of an outgoing message.
type Status struct {
	// MessageID is Wazzup's message ID: the ProviderID of a Send receipt.
	MessageID string
	// Status is sent, delivered, read, error or edited.
	Status string
	// Time is when Wazzup learnt the status; zero when not given.
	Time time.Time
	// Error is set when Status is "error".
	Error *DeliveryError
}

// DeliveryError is the reason Wazzup gives for a message it could not
// deliver, such as BAD_CONTACT, TOO_LONG_TEXT, SPAM or 24_HOURS_EXCEEDED.
type DeliveryError struct {
	Code        string
	Description string
}

// EventHandler receives the events of a webhook. The Handler answers
// Wazzup with 200 only after HandleEvents returned nil; an error makes the
// answer 500 so that Wazzup delivers the events again. HandleEvents must
// therefore be idempotent by message ID, and should return well within
// Wazzup's 30 second timeout (queue the work, then return).
type EventHandler interface {
	HandleEvents(ctx context.Context, ev Events) error
}

// EventHandlerFunc adapts a function to EventHandler.
type EventHandlerFunc func(ctx context.Context, ev Events) error

// HandleEvents calls f.
func (f EventHandlerFunc) HandleEvents(ctx context.Context, ev Events) error { return f(ctx, ev) }

// HandlerOptions configures a Handler. The zero value is valid: no bearer
// check and a DefaultMaxBodyBytes limit.
type HandlerOptions struct {
	// BearerKey, when set, is the crmKey Wazzup was given: every request
	// must carry "Authorization: Bearer <BearerKey>" or is answered 401.
	// Compared in constant time; never logged.
	BearerKey string
	// MaxBodyBytes bounds the request body; bigger bodies are answered
	// 413. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives a record for every rejected or failed request; nil
	// means no logging.
	Logger *slog.Logger
}

// Handler is the http.Handler receiving Wazzup's webhooks (the
// webhooksUri of PATCH /v3/webhooks). It is safe for concurrent use.
//
// Answers: 200 to the subscription test ({"test": true}), to bodies with
// neither messages nor statuses (other webhook kinds, ignored), and after
// the EventHandler accepted the events; 400 with a reason for a malformed
// body; 401 for a missing or wrong bearer key; 405 for a method other
// than POST; 413 for a body over the limit; 500 when the EventHandler
// failed.
type Handler struct {
	keySum  [sha256.Size]byte
	hasKey  bool
	maxBody int64
	h       EventHandler
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
	hd := &Handler{maxBody: opt.MaxBodyBytes, h: h, log: opt.Logger}
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
	return fmt.Sprintf("wazzup.Handler(bearer check: %t, max body: %d)", hd.hasKey, hd.maxBody)
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
		hd.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if wh.Test || (len(wh.Events.Messages) == 0 && len(wh.Events.Statuses) == 0) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := hd.h.HandleEvents(r.Context(), wh.Events); err != nil {
		hd.log.ErrorContext(r.Context(), "wazzup webhook: event handler failed; Wazzup should retry",
			"messages", len(wh.Events.Messages), "statuses", len(wh.Events.Statuses), "err", err)
		http.Error(w, "wazzup webhook: events not accepted, retry later", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (hd *Handler) reject(w http.ResponseWriter, r *http.Request, status int, reason string) {
	hd.log.WarnContext(r.Context(), "wazzup webhook: rejected", "status", status, "reason", reason,
		"remote", r.RemoteAddr)
	http.Error(w, "wazzup webhook: "+reason, status)
}

// ErrMalformed matches every error of DecodeWebhook.
var ErrMalformed = errors.New("wazzup: malformed webhook")

// MalformedError says why a webhook body was rejected. It matches
// ErrMalformed.
type MalformedError struct {
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
	// Test is true for the subscription test body {"test": true}.
	Test   bool
	Events Events
}

// wire types of the webhook body.
type (
	wireBody struct {
		Test          *bool           `json:"test"`
		Messages      []wireMessage   `json:"messages"`
		Statuses      []wireStatus    `json:"statuses"`
		CreateContact json.RawMessage `json:"createContact"`
		CreateDeal    json.RawMessage `json:"createDeal"`
	}
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
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
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
	return time.Time{}, fmt.Errorf("time %q is not ISO 8601 nor Unix milliseconds", truncate(s, 40))
}

// DecodeWebhook decodes a webhook body. The error, always a
// *MalformedError, says what was wrong: not a JSON object, a field of the
// wrong type, a message without messageId, channelId or chatId, a status
// without messageId or status, an unparseable time, or a createContact /
// createDeal webhook (not supported: subscribe with
// contactsAndDealsCreation off). Unknown fields and other webhook kinds
// (channelsUpdates, templateStatus) are ignored.
func DecodeWebhook(body []byte) (Webhook, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return Webhook{}, malformed("empty body")
	}
	if trimmed[0] != '{' {
		return Webhook{}, malformed("body is not a JSON object")
	}
	var wb wireBody
	if err := json.Unmarshal(trimmed, &wb); err != nil {
		return Webhook{}, malformed("%s", jsonReason(err))
	}
	if wb.Test != nil && *wb.Test {
		return Webhook{Test: true}, nil
	}
	if wb.CreateContact != nil || wb.CreateDeal != nil {
		return Webhook{}, malformed("createContact/createDeal webhooks are not supported; subscribe with contactsAndDealsCreation false")
	}
	var ev Events
	if n := len(wb.Messages); n > 0 {
		ev.Messages = make([]channel.Message, 0, n)
		ev.Details = make([]MessageDetails, 0, n)
	}
	for i, wm := range wb.Messages {
		m, d, err := wm.decode()
		if err != nil {
			return Webhook{}, malformed("messages[%d]: %s", i, err)
		}
		ev.Messages = append(ev.Messages, m)
		ev.Details = append(ev.Details, d)
	}
	for i, ws := range wb.Statuses {
		if ws.MessageID == "" {
			return Webhook{}, malformed("statuses[%d]: messageId is missing", i)
		}
		if ws.Status == "" {
			return Webhook{}, malformed("statuses[%d]: status is missing", i)
		}
		ev.Statuses = append(ev.Statuses, Status{
			MessageID: ws.MessageID,
			Status:    ws.Status,
			Time:      ws.Timestamp.t,
			Error:     ws.Error.decode(),
		})
	}
	return Webhook{Events: ev}, nil
}

func (we *wireError) decode() *DeliveryError {
	if we == nil || (we.Error == "" && we.Description == "") {
		return nil
	}
	return &DeliveryError{Code: we.Error, Description: we.Description}
}

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
	d := MessageDetails{
		ChatType:    wm.ChatType,
		Type:        wm.Type,
		Status:      wm.Status,
		AuthorName:  wm.AuthorName,
		SentFromApp: wm.SentFromApp,
		Edited:      wm.IsEdited,
		Deleted:     wm.IsDeleted,
		Error:       wm.Error.decode(),
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

// jsonReason words a JSON decoding error for the 400 answer.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fmt.Sprintf("%s: %s where %s was expected", field, te.Value, te.Type)
	case errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end"):
		return "truncated JSON"
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	return truncate(err.Error(), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
