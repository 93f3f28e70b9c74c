package amocrm

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// EventKind is what a webhook event reports.
type EventKind int

// Kinds of webhook events. amoCRM sends one per entity and action
// subscribed to in the account's webhook settings.
const (
	// OtherEvent is any entity or action without a kind of its own
	// (companies, customers, tasks, notes, catalogs…): see Entity and
	// Action.
	OtherEvent  EventKind = iota
	DealAdded             // leads[add]: a deal was created
	DealUpdated           // leads[update]: a deal was changed
	// DealStatusChanged: the deal moved to another stage (OldStage,
	// OldPipeline hold where it was).
	DealStatusChanged
	// DealResponsibleChanged: OldResponsible was responsible before.
	DealResponsibleChanged
	DealDeleted               // leads[delete]: a deal was deleted
	DealRestored              // leads[restore]: a deleted deal is back
	ContactAdded              // contacts[add]: a contact was created
	ContactUpdated            // contacts[update]: a contact was changed
	ContactResponsibleChanged // contacts[responsible]: its responsible user changed
	ContactDeleted            // contacts[delete]: a contact was deleted
	ContactRestored           // contacts[restore]: a deleted contact is back
)

var kindNames = [...]string{"other", "deal added", "deal updated", "deal status changed", "deal responsible changed",
	"deal deleted", "deal restored", "contact added", "contact updated", "contact responsible changed",
	"contact deleted", "contact restored"}

// String names the kind.
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// WebhookEvent is one entity of an amoCRM webhook delivery.
type WebhookEvent struct {
	// Kind classifies the event by Entity and Action; OtherEvent for a
	// pair without a kind of its own, for a company, and for an item
	// without an id.
	Kind EventKind
	// Entity and Action are amoCRM's names ("leads", "status";
	// "contacts", "update"; "companies" for a contacts event about a
	// company).
	Entity, Action string
	// ID is the entity's ID.
	ID string
	// Deal is set for deal events: ID, Name, Pipeline, Stage, Status,
	// Responsible, UpdatedAt as far as the delivery carries them (a
	// deletion carries only the ID). Status follows status_id, and is
	// DealOpen when the delivery has none (a deletion, for one): it then
	// says nothing of whether the deal is closed (Client.GetDeal tells).
	// Contacts are not part of lead webhooks.
	Deal crm.Deal
	// OldStage is the deal's stage before a DealStatusChanged event
	// (old_status_id); empty when the delivery does not carry it.
	OldStage crm.StageID
	// OldPipeline is the deal's pipeline before a DealStatusChanged event
	// (old_pipeline_id); empty when the delivery does not carry it.
	OldPipeline crm.PipelineID
	// OldResponsible is the responsible user before a
	// DealResponsibleChanged or ContactResponsibleChanged event
	// (old_responsible_user_id); empty when the delivery does not carry
	// it.
	OldResponsible crm.UserID
	// Contact is set for contact events: ID, Name, Responsible,
	// UpdatedAt, and the phones and identities of its custom fields, so
	// an index of contacts by phone can be kept current. Phones holds the
	// values of the field whose code is PHONE and of
	// WebhookOptions.PhoneFieldIDs: whether amoCRM names system fields by
	// code in webhooks is not documented, so set PhoneFieldIDs to the
	// PHONE field's id to be sure an empty Phones means no phone.
	Contact crm.Contact
	// Account is the account's subdomain (account[subdomain]) and
	// AccountID its ID (account[id]), when sent.
	Account, AccountID string
}

// WebhookOptions configure [NewWebhookHandler].
type WebhookOptions struct {
	// Handle receives the events of one delivery in body order, on the
	// request's goroutine; it should be quick (invalidate or update a
	// record). An error answers 500. Required.
	Handle func(ctx context.Context, events []WebhookEvent) error
	// Secret, when set, must be the value of the query parameter
	// "secret" of the webhook URL registered in amoCRM
	// (https://host/amocrm/hook?secret=…): amoCRM signs no webhook, so
	// an unguessable URL is what tells its deliveries from forgeries.
	// Requests without it answer 403.
	Secret string
	// Accounts, when set, are the account subdomains or IDs accepted in
	// account[subdomain]/account[id]; others answer 403.
	Accounts []string
	// MaxBody bounds the body. 0: 1 MiB.
	MaxBody int64
	// PhoneFieldIDs are contact fields read as phones besides the system
	// field whose code is PHONE.
	PhoneFieldIDs []int
	// IdentityField is the field code of the contact field holding
	// messenger identities, as Options.IdentityField. "": "IM". Ignored
	// when IdentityFieldID is set.
	IdentityField string
	// IdentityFieldID is the field id of the identity field, as
	// Options.IdentityFieldID; 0: the field is found by IdentityField.
	IdentityFieldID int
	// Logger receives one record per refused delivery. nil: silent.
	Logger *slog.Logger
}

// Format implements fmt.Formatter: the secret is never printed.
func (o WebhookOptions) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "amocrm.WebhookOptions{Secret: redacted, Accounts: %q, MaxBody: %d}", o.Accounts, o.MaxBody)
}

// WebhookHandler is an http.Handler for amoCRM's webhooks. amoCRM posts
// application/x-www-form-urlencoded bodies with PHP-style keys
// entity[action][index][field] — leads[status][0][id]=…,
// contacts[update][0][custom_fields][0][values][0][value]=…,
// account[subdomain]=… — with the legacy field names (date_create,
// last_modified, old_status_id, old_responsible_user_id, custom_fields).
// It decodes them into [WebhookEvent] values and passes them to
// WebhookOptions.Handle.
//
// Answers: 200 when Handle accepted the events; 400 with a one-line
// reason for a body that is not a webhook (wrong content type, bad
// encoding, no entity, an ID that is not a positive integer, too many
// items); 403 for a wrong secret or account; 405 for a method other than
// POST; 413 for a body over MaxBody; 500 when Handle failed. Safe for
// concurrent use.
type WebhookHandler struct {
	opt WebhookOptions
	log *slog.Logger
}

// NewWebhookHandler returns the handler. Errors are *OptionError.
func NewWebhookHandler(opt WebhookOptions) (*WebhookHandler, error) {
	if opt.Handle == nil {
		return nil, &OptionError{Field: "WebhookOptions.Handle", Reason: "required"}
	}
	if opt.MaxBody < 0 {
		return nil, &OptionError{Field: "WebhookOptions.MaxBody", Reason: "must not be negative"}
	}
	if opt.MaxBody == 0 {
		opt.MaxBody = 1 << 20
	}
	if opt.IdentityField == "" {
		opt.IdentityField = DefaultIdentityField
	}
	h := &WebhookHandler{opt: opt, log: opt.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Format implements fmt.Formatter: the secret is never printed.
func (h *WebhookHandler) Format(f fmt.State, verb rune) {
	io.WriteString(f, "&amocrm.WebhookHandler{}")
}

// ServeHTTP implements http.Handler.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, reason string) {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "amocrm: webhook refused", slog.Int("status", status), slog.String("reason", reason))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, reason+"\n")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "amoCRM webhooks are POST requests")
		return
	}
	if h.opt.Secret != "" && subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("secret")), []byte(h.opt.Secret)) != 1 {
		refuse(http.StatusForbidden, "wrong or missing secret")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		refuse(http.StatusBadRequest, "content type must be application/x-www-form-urlencoded")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opt.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", h.opt.MaxBody))
			return
		}
		refuse(http.StatusBadRequest, "reading the body failed")
		return
	}
	events, err := h.Decode(body)
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	if len(h.opt.Accounts) > 0 && !slices.ContainsFunc(h.opt.Accounts, func(a string) bool {
		return a != "" && (a == events[0].Account || a == events[0].AccountID)
	}) {
		refuse(http.StatusForbidden, "account not accepted")
		return
	}
	if err := h.opt.Handle(r.Context(), events); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "amocrm: webhook handler failed", slog.String("error", err.Error()))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Limits of one delivery.
const (
	maxWebhookItems  = 1000 // entities
	maxWebhookFields = 200  // custom fields of one entity
	maxWebhookValues = 50   // values of one custom field
	maxWebhookDepth  = 8    // bracket segments of one key
)

// WebhookError is a body the webhook decoder refused.
type WebhookError struct {
	// Key is the offending form key, when there is one.
	Key string
	// Reason says what is wrong with the body or the key.
	Reason string
}

// Error implements the error interface.
func (e *WebhookError) Error() string {
	if e.Key == "" {
		return "amocrm: webhook: " + e.Reason
	}
	return "amocrm: webhook: " + e.Key + ": " + e.Reason
}

// Is reports whether target is crm.ErrInvalid.
func (e *WebhookError) Is(target error) bool { return target == crm.ErrInvalid }

// item is one entity of the body: flat fields plus custom fields.
type item struct {
	fields map[string]string
	cfs    map[int]*cfItem
}

type cfItem struct {
	id, code, name string
	values         map[int]string
}

// Decode decodes a webhook body into events, in order of entity, action
// and index. Errors are *WebhookError (matching crm.ErrInvalid).
func (h *WebhookHandler) Decode(body []byte) ([]WebhookEvent, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &WebhookError{Reason: "body is not form-encoded"}
	}
	type itemKey struct {
		entity, action string
		index          int
	}
	items := map[itemKey]*item{}
	var account, accountID string
	for key, vals := range form {
		segs, ok := splitKey(key)
		if !ok {
			return nil, &WebhookError{Key: key, Reason: "malformed key"}
		}
		val := ""
		if len(vals) > 0 {
			val = vals[len(vals)-1]
		}
		if segs[0] == "account" {
			if len(segs) == 2 && segs[1] == "subdomain" {
				account = val
			} else if len(segs) == 2 && segs[1] == "id" {
				accountID = val
			}
			continue
		}
		if len(segs) < 4 {
			continue // not entity[action][index][field]
		}
		if segs[1] == "" || segs[3] == "" {
			return nil, &WebhookError{Key: key, Reason: "empty action or field name"}
		}
		idx, err := strconv.Atoi(segs[2])
		if err != nil || idx < 0 || idx >= maxWebhookItems {
			return nil, &WebhookError{Key: key, Reason: "index is not a number below " + strconv.Itoa(maxWebhookItems)}
		}
		k := itemKey{segs[0], segs[1], idx}
		it := items[k]
		if it == nil {
			if len(items) >= maxWebhookItems {
				return nil, &WebhookError{Reason: "too many entities"}
			}
			it = &item{fields: map[string]string{}}
			items[k] = it
		}
		if err := it.add(key, segs[3:], val); err != nil {
			return nil, err
		}
	}
	keys := make([]itemKey, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, &WebhookError{Reason: "no entity in the body"}
	}
	slices.SortFunc(keys, func(a, b itemKey) int {
		if c := strings.Compare(a.entity, b.entity); c != 0 {
			return c
		}
		if c := strings.Compare(a.action, b.action); c != 0 {
			return c
		}
		return a.index - b.index
	})
	out := make([]WebhookEvent, 0, len(keys))
	for _, k := range keys {
		ev, err := h.event(k.entity, k.action, items[k])
		if err != nil {
			return nil, err
		}
		ev.Account, ev.AccountID = account, accountID
		out = append(out, ev)
	}
	return out, nil
}

// splitKey splits "a[b][c]" into [a b c].
func splitKey(key string) ([]string, bool) {
	name, rest, _ := strings.Cut(key, "[")
	if name == "" {
		return nil, false
	}
	segs := []string{name}
	if rest == "" && !strings.Contains(key, "[") {
		return segs, true
	}
	rest = "[" + rest
	for rest != "" {
		if rest[0] != '[' {
			return nil, false
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, false
		}
		segs = append(segs, rest[1:end])
		rest = rest[end+1:]
		if len(segs) > maxWebhookDepth {
			return nil, false
		}
	}
	return segs, true
}

// add stores one field of an item: a flat field, or a custom field part
// (custom_fields][k][id|name|code] or [values][j][value] or [values][j]).
func (it *item) add(key string, segs []string, val string) error {
	if segs[0] != "custom_fields" {
		if len(segs) == 1 {
			it.fields[segs[0]] = val
		}
		return nil // tags and other nested parts are not needed
	}
	if len(segs) < 3 {
		return nil
	}
	k, err := strconv.Atoi(segs[1])
	if err != nil || k < 0 || k >= maxWebhookFields {
		return &WebhookError{Key: key, Reason: "custom field index is not a number below " + strconv.Itoa(maxWebhookFields)}
	}
	if it.cfs == nil {
		it.cfs = map[int]*cfItem{}
	}
	cf := it.cfs[k]
	if cf == nil {
		if len(it.cfs) >= maxWebhookFields {
			return &WebhookError{Key: key, Reason: "too many custom fields"}
		}
		cf = &cfItem{values: map[int]string{}}
		it.cfs[k] = cf
	}
	switch segs[2] {
	case "id":
		cf.id = val
	case "code":
		cf.code = val
	case "name":
		cf.name = val
	case "values":
		if len(segs) < 4 {
			return nil
		}
		j, err := strconv.Atoi(segs[3])
		if err != nil || j < 0 || j >= maxWebhookValues {
			return &WebhookError{Key: key, Reason: "value index is not a number below " + strconv.Itoa(maxWebhookValues)}
		}
		// [values][j][value] holds the value; a date field sends
		// [values][j] itself (recorded in public webhook fixtures).
		if len(segs) == 4 || segs[4] == "value" {
			if len(cf.values) >= maxWebhookValues {
				return &WebhookError{Key: key, Reason: "too many values"}
			}
			cf.values[j] = val
		}
	}
	return nil
}

func (h *WebhookHandler) event(entity, action string, it *item) (WebhookEvent, error) {
	ev := WebhookEvent{Entity: entity, Action: action, ID: it.fields["id"]}
	if ev.ID != "" {
		if _, ok := parseID(ev.ID); !ok {
			return WebhookEvent{}, &WebhookError{Key: entity + "[" + action + "][…][id]", Reason: fmt.Sprintf("id %q is not a positive integer", ev.ID)}
		}
	}
	if entity == "contacts" && it.fields["type"] == "company" {
		ev.Entity = "companies"
		return ev, nil
	}
	updated := it.fields["updated_at"]
	if updated == "" {
		updated = it.fields["last_modified"]
	}
	switch entity {
	case "leads":
		kinds := map[string]EventKind{"add": DealAdded, "update": DealUpdated, "status": DealStatusChanged,
			"responsible": DealResponsibleChanged, "delete": DealDeleted, "restore": DealRestored}
		kind, ok := kinds[action]
		if !ok || ev.ID == "" {
			return ev, nil
		}
		ev.Kind = kind
		d := crm.Deal{ID: crm.DealID(ev.ID), Name: it.fields["name"], Pipeline: crm.PipelineID(idField(it.fields["pipeline_id"])),
			Stage: crm.StageID(idField(it.fields["status_id"])), Responsible: crm.UserID(idField(it.fields["responsible_user_id"])),
			UpdatedAt: unixField(updated)}
		if st, err := strconv.Atoi(it.fields["status_id"]); err == nil {
			d.Status = dealStatus(st)
		}
		ev.Deal = d
		ev.OldStage = crm.StageID(idField(it.fields["old_status_id"]))
		ev.OldPipeline = crm.PipelineID(idField(it.fields["old_pipeline_id"]))
		ev.OldResponsible = crm.UserID(idField(it.fields["old_responsible_user_id"]))
	case "contacts":
		kinds := map[string]EventKind{"add": ContactAdded, "update": ContactUpdated, "responsible": ContactResponsibleChanged,
			"delete": ContactDeleted, "restore": ContactRestored}
		kind, ok := kinds[action]
		if !ok || ev.ID == "" {
			return ev, nil
		}
		ev.Kind = kind
		ev.Contact = crm.Contact{ID: crm.ContactID(ev.ID), Name: it.fields["name"],
			Responsible: crm.UserID(idField(it.fields["responsible_user_id"])), UpdatedAt: unixField(updated)}
		ev.OldResponsible = crm.UserID(idField(it.fields["old_responsible_user_id"]))
		h.contactFields(&ev.Contact, it)
	}
	return ev, nil
}

// contactFields reads phones and identities from the custom fields.
// Which fields are phones: the one with code PHONE, and PhoneFieldIDs.
// Whether amoCRM sends the code of system fields in webhooks is not
// documented: configure PhoneFieldIDs (the PHONE field's id, from
// GET /api/v4/contacts/custom_fields) to be independent of it.
func (h *WebhookHandler) contactFields(c *crm.Contact, it *item) {
	ks := make([]int, 0, len(it.cfs))
	for k := range it.cfs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		cf := it.cfs[k]
		id, _ := strconv.Atoi(cf.id)
		isPhone := strings.EqualFold(cf.code, "PHONE") || (id != 0 && slices.Contains(h.opt.PhoneFieldIDs, id))
		isIdentity := (h.opt.IdentityFieldID != 0 && id == h.opt.IdentityFieldID) ||
			(h.opt.IdentityFieldID == 0 && cf.code != "" && strings.EqualFold(cf.code, h.opt.IdentityField))
		if !isPhone && !isIdentity {
			continue
		}
		js := make([]int, 0, len(cf.values))
		for j := range cf.values {
			js = append(js, j)
		}
		slices.Sort(js)
		for _, j := range js {
			v := strings.TrimSpace(cf.values[j])
			switch {
			case v == "":
			case isPhone:
				c.Phones = append(c.Phones, v)
			default:
				c.Identities = append(c.Identities, parseIdentity(v, ""))
			}
		}
	}
}

// idField keeps a positive integer ID, else "".
func idField(s string) string {
	if _, ok := parseID(s); ok {
		return s
	}
	return ""
}

func unixField(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return unix(n)
}
