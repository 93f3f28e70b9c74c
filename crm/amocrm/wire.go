package amocrm

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// Wire shapes of amoCRM API v4 (JSON field names as in the official PHP SDK).

const (
	wonStatusID    = 142
	lostStatusID   = 143
	unsortedType   = 1
	pageLimit      = 250 // amoCRM's maximum limit
	writeBatch     = 50  // recommended maximum entities per write
	maxSearchPages = 40  // 10 000 hits: a phone or identity query never needs more
	maxListPages   = 200
)

type cfValueOut struct {
	Value    string `json:"value"`
	EnumCode string `json:"enum_code,omitempty"`
}

type cfOut struct {
	FieldID   int          `json:"field_id,omitempty"`
	FieldCode string       `json:"field_code,omitempty"`
	Values    []cfValueOut `json:"values"`
}

type cfIn struct {
	FieldID   int    `json:"field_id"`
	FieldCode string `json:"field_code"`
	Values    []struct {
		Value    json.RawMessage `json:"value"`
		EnumCode string          `json:"enum_code"`
	} `json:"values"`
}

type idRef struct {
	ID     int  `json:"id"`
	IsMain bool `json:"is_main,omitempty"`
}

type contactOut struct {
	ID                 int     `json:"id,omitempty"`
	Name               string  `json:"name,omitempty"`
	ResponsibleUserID  int     `json:"responsible_user_id,omitempty"`
	CustomFieldsValues []cfOut `json:"custom_fields_values,omitempty"`
	RequestID          string  `json:"request_id,omitempty"`
}

type contactIn struct {
	ID                 int    `json:"id"`
	Name               string `json:"name"`
	FirstName          string `json:"first_name"`
	LastName           string `json:"last_name"`
	ResponsibleUserID  int    `json:"responsible_user_id"`
	UpdatedAt          int64  `json:"updated_at"`
	CustomFieldsValues []cfIn `json:"custom_fields_values"`
	Embedded           struct {
		Leads []idRef `json:"leads"`
	} `json:"_embedded"`
}

type leadOut struct {
	Name              string `json:"name,omitempty"`
	PipelineID        int    `json:"pipeline_id,omitempty"`
	StatusID          int    `json:"status_id,omitempty"`
	ResponsibleUserID int    `json:"responsible_user_id,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
	Embedded          *struct {
		Contacts []any `json:"contacts,omitempty"`
	} `json:"_embedded,omitempty"`
}

type leadIn struct {
	ID                int    `json:"id"`
	Name              string `json:"name"`
	StatusID          int    `json:"status_id"`
	PipelineID        int    `json:"pipeline_id"`
	ResponsibleUserID int    `json:"responsible_user_id"`
	UpdatedAt         int64  `json:"updated_at"`
	Embedded          struct {
		Contacts []idRef `json:"contacts"`
	} `json:"_embedded"`
}

type statusIn struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Sort int    `json:"sort"`
	Type int    `json:"type"`
}

type pipelineIn struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Sort     int    `json:"sort"`
	IsMain   bool   `json:"is_main"`
	IsArch   bool   `json:"is_archive"`
	Embedded struct {
		Statuses []statusIn `json:"statuses"`
	} `json:"_embedded"`
}

type userIn struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Rights struct {
		IsActive *bool `json:"is_active"`
	} `json:"rights"`
}

type taskOut struct {
	Text              string `json:"text"`
	CompleteTill      int64  `json:"complete_till"`
	EntityID          int    `json:"entity_id"`
	EntityType        string `json:"entity_type"`
	ResponsibleUserID int    `json:"responsible_user_id,omitempty"`
	TaskTypeID        int    `json:"task_type_id"`
	RequestID         string `json:"request_id"`
}

// created is the item of a create response's _embedded list. amoCRM's
// examples of create answers show id, request_id and _links only
// (POST /api/v4/leads, /api/v4/contacts); UpdatedAt is read in case an
// answer carries updated_at, as the official SDK reads it when present
// (amocrm/amocrm-api-php Contacts::processModelAction, isset
// $entity['updated_at']). Zero: not given.
type created struct {
	ID        int    `json:"id"`
	RequestID string `json:"request_id"`
	UpdatedAt int64  `json:"updated_at"`
}

type embedded[T any] struct {
	Links struct {
		Next *struct {
			Href string `json:"href"`
		} `json:"next"`
	} `json:"_links"`
	Embedded map[string][]T `json:"_embedded"`
}

// listAll reads every page of a list endpoint (204 ends it).
func listAll[T any](ctx context.Context, c *Client, op, path string, q url.Values, key string, maxPages int) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	var out []T
	for page := 1; page <= maxPages; page++ {
		q.Set("page", strconv.Itoa(page))
		q.Set("limit", strconv.Itoa(pageLimit))
		var resp embedded[T]
		status, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, query: q, safe: true}, &resp)
		if err != nil {
			return nil, err
		}
		if status == http.StatusNoContent {
			break
		}
		items := resp.Embedded[key]
		out = append(out, items...)
		if resp.Links.Next == nil || len(items) == 0 {
			break
		}
	}
	return out, nil
}

func unix(ts int64) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return time.Unix(ts, 0).UTC()
}

func idStr(id int) string {
	if id == 0 {
		return ""
	}
	return strconv.Itoa(id)
}

// parseID converts a crm ID; ok is false when it cannot be an amoCRM ID.
func parseID(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

func valueString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// identityValue is how an identity is stored: "kind:value".
func identityValue(id crm.Identity) string { return id.Kind + ":" + id.Value }

// parseIdentity reads a stored identity value; values typed by hand
// without a kind take the field's enum code ("TELEGRAM" → "telegram").
func parseIdentity(v, enumCode string) crm.Identity {
	if kind, val, ok := strings.Cut(v, ":"); ok && kind != "" && val != "" && !strings.ContainsAny(kind, " /") && !strings.HasPrefix(val, "//") {
		return crm.Identity{Kind: kind, Value: val}
	}
	return crm.Identity{Kind: strings.ToLower(enumCode), Value: v}
}

func (c *Client) isIdentityField(f cfIn) bool {
	if c.idFieldID != 0 {
		return f.FieldID == c.idFieldID
	}
	return strings.EqualFold(f.FieldCode, c.idCode)
}

func (c *Client) toContact(in contactIn) crm.Contact {
	out := crm.Contact{ID: crm.ContactID(idStr(in.ID)), Name: in.Name, Responsible: crm.UserID(idStr(in.ResponsibleUserID)), UpdatedAt: unix(in.UpdatedAt)}
	if out.Name == "" {
		out.Name = strings.TrimSpace(in.FirstName + " " + in.LastName)
	}
	for _, f := range in.CustomFieldsValues {
		switch {
		case f.FieldCode == "PHONE":
			for _, v := range f.Values {
				if s := valueString(v.Value); s != "" {
					out.Phones = append(out.Phones, s)
				}
			}
		case c.isIdentityField(f):
			for _, v := range f.Values {
				if s := valueString(v.Value); s != "" {
					out.Identities = append(out.Identities, parseIdentity(s, v.EnumCode))
				}
			}
		}
	}
	return out
}

// contactFields builds custom_fields_values for a new contact.
func (c *Client) contactFields(phones []string, ids []crm.Identity) []cfOut {
	var out []cfOut
	if len(phones) > 0 {
		f := cfOut{FieldCode: "PHONE"}
		for _, p := range phones {
			f.Values = append(f.Values, cfValueOut{Value: p, EnumCode: "MOB"})
		}
		out = append(out, f)
	}
	if len(ids) > 0 {
		f := cfOut{FieldCode: c.idCode}
		enum := ""
		if c.idFieldID != 0 {
			f = cfOut{FieldID: c.idFieldID}
		} else if strings.EqualFold(c.idCode, "IM") {
			enum = "OTHER"
		}
		for _, id := range ids {
			f.Values = append(f.Values, cfValueOut{Value: identityValue(id), EnumCode: enum})
		}
		out = append(out, f)
	}
	return out
}

func dealStatus(statusID int) crm.DealStatus {
	switch statusID {
	case wonStatusID:
		return crm.DealWon
	case lostStatusID:
		return crm.DealLost
	}
	return crm.DealOpen
}

func stageKind(s statusIn) crm.StageKind {
	switch {
	case s.ID == wonStatusID:
		return crm.StageWon
	case s.ID == lostStatusID:
		return crm.StageLost
	case s.Type == unsortedType:
		return crm.StageUnsorted
	}
	return crm.StageOpen
}

func toDeal(in leadIn) crm.Deal {
	d := crm.Deal{
		ID:          crm.DealID(idStr(in.ID)),
		Name:        in.Name,
		Pipeline:    crm.PipelineID(idStr(in.PipelineID)),
		Stage:       crm.StageID(idStr(in.StatusID)),
		Status:      dealStatus(in.StatusID),
		Responsible: crm.UserID(idStr(in.ResponsibleUserID)),
		UpdatedAt:   unix(in.UpdatedAt),
	}
	// The main contact first.
	for _, ct := range in.Embedded.Contacts {
		if ct.IsMain {
			d.Contacts = append(d.Contacts, crm.ContactID(idStr(ct.ID)))
		}
	}
	for _, ct := range in.Embedded.Contacts {
		if !ct.IsMain {
			d.Contacts = append(d.Contacts, crm.ContactID(idStr(ct.ID)))
		}
	}
	return d
}

// nationalDigits returns the digits of n after its country code: the
// part every stored format of the number shares ("8 (916) 123-45-67",
// "+7 916 …" and "916…" all contain 9161234567).
func nationalDigits(n phone.Number) string {
	digits := n.Digits()
	if cc := phonenumbers.GetCountryCodeForRegion(n.Region()); cc > 0 {
		if rest, ok := strings.CutPrefix(digits, strconv.Itoa(cc)); ok && len(rest) >= 4 {
			return rest
		}
	}
	if len(digits) > 10 {
		return digits[len(digits)-10:]
	}
	return digits
}

// taskIn is a task as GET /api/v4/tasks returns it
// (https://www.amocrm.ru/developers/content/crm_platform/tasks-api).
type taskIn struct {
	ID                int    `json:"id"`
	ResponsibleUserID int    `json:"responsible_user_id"`
	EntityID          int    `json:"entity_id"`
	EntityType        string `json:"entity_type"`
	IsCompleted       bool   `json:"is_completed"`
	Text              string `json:"text"`
	CompleteTill      int64  `json:"complete_till"`
}

func toTask(in taskIn) crm.Task {
	t := crm.Task{ID: crm.TaskID(idStr(in.ID)), Responsible: crm.UserID(idStr(in.ResponsibleUserID)),
		Text: in.Text, Deadline: unix(in.CompleteTill), Done: in.IsCompleted}
	switch in.EntityType {
	case "leads":
		t.Deal = crm.DealID(idStr(in.EntityID))
	case "contacts":
		t.Contact = crm.ContactID(idStr(in.EntityID))
	}
	return t
}
