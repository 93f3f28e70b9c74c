package amocrmtest

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Contact is a snapshot of a stored contact.
type Contact struct {
	// ID is the contact's id, assigned by the server (ignored by
	// AddContact).
	ID int
	// Name is the contact's name.
	Name string
	// Responsible is the responsible user's id (responsible_user_id).
	Responsible int
	// Phones are the PHONE values as stored.
	Phones []string
	// Fields holds every custom field's values keyed by field code
	// ("PHONE", "IM") or, for fields without a code, "id:<field_id>".
	Fields map[string][]string
	// Unsorted is true while the contact belongs to an Unsorted lead not
	// yet accepted.
	Unsorted bool
	// Leads are the ids of the leads linked to the contact, in the order
	// they were linked (ignored by AddContact).
	Leads []int
	// UpdatedAt is the contact's updated_at: Unix seconds on the server's
	// clock (ignored by AddContact, which sets it to now).
	UpdatedAt int64
}

// Lead is a snapshot of a stored lead.
type Lead struct {
	// ID is the lead's id, assigned by the server.
	ID int
	// Name is the lead's name; a lead created with none or an empty one
	// is named "Сделка".
	Name string
	// Price is the lead's budget (price).
	Price int
	// Pipeline is the lead's pipeline_id.
	Pipeline int
	// Status is the lead's status_id: a status of Pipeline, WonStatusID
	// or LostStatusID.
	Status int
	// Responsible is the responsible user's id (responsible_user_id).
	Responsible int
	// Contacts are the linked contacts, the main one first.
	Contacts []int
	// UpdatedAt is the lead's updated_at: Unix seconds on the server's
	// clock.
	UpdatedAt int64
	// ClosedAt is the lead's closed_at: Unix seconds of its move to
	// WonStatusID or LostStatusID; 0 while it is open.
	ClosedAt int64
}

// Task is a snapshot of a stored task.
type Task struct {
	// ID is the task's id, assigned by the server.
	ID int
	// EntityType is what the task is attached to: "leads", "contacts"
	// or "" (unattached).
	EntityType string
	// EntityID is the id of the lead or contact; 0 when unattached.
	EntityID int
	// Responsible is the responsible user's id (responsible_user_id).
	Responsible int
	// TaskType is the task_type_id; 1 ("follow-up") when the request gave
	// none.
	TaskType int
	// Text is the task's text.
	Text string
	// CompleteTill is the task's deadline (complete_till), in Unix
	// seconds.
	CompleteTill int64
	// Completed is the task's is_completed.
	Completed bool
	// Result is the text of the result given when the task was completed
	// (result.text); "" before.
	Result string
}

// Note is a stored note.
type Note struct {
	// ID is the note's id, assigned by the server.
	ID int
	// EntityType is what the note is on: "leads" or "contacts".
	EntityType string
	// EntityID is the id of the lead or contact.
	EntityID int
	// Type is the note_type, e.g. "common".
	Type string
	// Text is the note's params.text.
	Text string
}

// UnsortedEntry is a snapshot of an Unsorted (incoming) entry.
type UnsortedEntry struct {
	// UID is the entry's uid, which the accept endpoint takes in its path.
	UID string
	// SourceUID is the source_uid the request gave (the UID itself for a
	// lead created by POST /api/v4/leads/complex in an Unsorted status).
	SourceUID string
	// SourceName is the source_name the request gave ("complex" for a
	// lead created by POST /api/v4/leads/complex).
	SourceName string
	// Category is the entry's category; always "forms" in this fake.
	Category string
	// Pipeline is the pipeline_id of the entry's lead.
	Pipeline int
	// Lead is the id of the entry's lead.
	Lead int
	// Contacts are the ids of the entry's contacts.
	Contacts []int
	// Accepted is true once the entry was accepted (POST
	// /api/v4/leads/unsorted/{uid}/accept); an accepted entry is no
	// longer listed or accepted again.
	Accepted bool
}

type cfVal struct {
	value    string
	enumCode string
	enumID   int
}

type cf struct {
	id     int
	code   string
	name   string
	typ    string
	values []cfVal
}

// System contact fields every account has (ids are account-specific in
// reality; these are the fake's).
var systemFields = map[string]struct {
	id   int
	name string
}{
	"PHONE":    {264001, "Phone"},
	"EMAIL":    {264003, "Email"},
	"IM":       {264005, "Instant messenger"},
	"POSITION": {264007, "Position"},
}

var enumIDs = map[string]int{"WORK": 1, "WORKDD": 2, "MOB": 3, "FAX": 4, "HOME": 5, "OTHER": 6, "PRIV": 7,
	"SKYPE": 8, "ICQ": 9, "JABBER": 10, "GTALK": 11, "MSN": 12, "TELEGRAM": 13}

type contact struct {
	id          int
	name        string
	responsible int
	fields      []cf
	unsorted    bool
	leads       []int
	createdAt   int64
	updatedAt   int64
}

func (c *contact) snapshot() Contact {
	out := Contact{ID: c.id, Name: c.name, Responsible: c.responsible, Unsorted: c.unsorted,
		Leads: slices.Clone(c.leads), UpdatedAt: c.updatedAt, Fields: map[string][]string{}}
	for _, f := range c.fields {
		key := f.code
		if key == "" {
			key = "id:" + strconv.Itoa(f.id)
		}
		for _, v := range f.values {
			out.Fields[key] = append(out.Fields[key], v.value)
			if f.code == "PHONE" {
				out.Phones = append(out.Phones, v.value)
			}
		}
	}
	return out
}

type lead struct {
	id          int
	name        string
	price       int
	pipeline    int
	status      int
	responsible int
	contacts    []int
	createdAt   int64
	updatedAt   int64
	closedAt    int64
}

func (l *lead) snapshot() Lead {
	return Lead{ID: l.id, Name: l.name, Price: l.price, Pipeline: l.pipeline, Status: l.status,
		Responsible: l.responsible, Contacts: slices.Clone(l.contacts), UpdatedAt: l.updatedAt, ClosedAt: l.closedAt}
}

type task struct {
	Task
	createdAt int64
	updatedAt int64
}

type unsortedEntry struct {
	UnsortedEntry
	createdAt int64
}

// JSON input shapes.

type cfValIn struct {
	Value    json.RawMessage `json:"value"`
	EnumCode string          `json:"enum_code"`
	EnumID   int             `json:"enum_id"`
}

type cfIn struct {
	FieldID   int       `json:"field_id"`
	FieldCode string    `json:"field_code"`
	Values    []cfValIn `json:"values"`
}

type contactIn struct {
	ID                 int     `json:"id"`
	Name               *string `json:"name"`
	FirstName          string  `json:"first_name"`
	LastName           string  `json:"last_name"`
	ResponsibleUserID  *int    `json:"responsible_user_id"`
	CustomFieldsValues []cfIn  `json:"custom_fields_values"`
	IsMain             bool    `json:"is_main"`
	RequestID          string  `json:"request_id"`
}

type leadIn struct {
	ID                int     `json:"id"`
	Name              *string `json:"name"`
	Price             *int    `json:"price"`
	StatusID          *int    `json:"status_id"`
	PipelineID        *int    `json:"pipeline_id"`
	ResponsibleUserID *int    `json:"responsible_user_id"`
	RequestID         string  `json:"request_id"`
	Embedded          struct {
		Contacts []contactIn    `json:"contacts"`
		Metadata map[string]any `json:"metadata"`
	} `json:"_embedded"`
}

type taskIn struct {
	ID                int     `json:"id"`
	Text              *string `json:"text"`
	CompleteTill      *int64  `json:"complete_till"`
	EntityID          *int    `json:"entity_id"`
	EntityType        *string `json:"entity_type"`
	ResponsibleUserID *int    `json:"responsible_user_id"`
	TaskTypeID        *int    `json:"task_type_id"`
	IsCompleted       *bool   `json:"is_completed"`
	Result            *struct {
		Text string `json:"text"`
	} `json:"result"`
	RequestID string `json:"request_id"`
}

type noteIn struct {
	NoteType string `json:"note_type"`
	Params   struct {
		Text string `json:"text"`
	} `json:"params"`
	RequestID string `json:"request_id"`
}

type unsortedIn struct {
	SourceUID  string         `json:"source_uid"`
	SourceName string         `json:"source_name"`
	PipelineID *int           `json:"pipeline_id"`
	CreatedAt  int64          `json:"created_at"`
	Metadata   map[string]any `json:"metadata"`
	RequestID  string         `json:"request_id"`
	Embedded   struct {
		Leads    []leadIn    `json:"leads"`
		Contacts []contactIn `json:"contacts"`
	} `json:"_embedded"`
}

// rawString renders a custom field value: strings as they are, anything
// else as its JSON text.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// matches reports whether the contact matches a query the way the fake
// models amoCRM's full-text search.
func (c *contact) matches(q string) bool {
	lq := strings.ToLower(q)
	if strings.Contains(strings.ToLower(c.name), lq) {
		return true
	}
	digitQuery := allDigits(q)
	for _, f := range c.fields {
		for _, v := range f.values {
			if strings.Contains(strings.ToLower(v.value), lq) {
				return true
			}
			if digitQuery && f.code == "PHONE" && strings.Contains(digitsOf(v.value), q) {
				return true
			}
		}
	}
	return false
}
