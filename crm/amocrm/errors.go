package amocrm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/crmbridge/crmbridge/crm"
)

// Error is a failed amoCRM operation. Err classifies it: one of the crm
// sentinels (crm.ErrNotFound, crm.ErrRateLimited, ...), a
// *crm.InvalidError for validation failures, or the context's error.
// Error never carries tokens or client secrets.
type Error struct {
	// Op is the crm operation ("CreateDeal") or "OAuthRefresh".
	Op string
	// Method and Path name the HTTP request ("POST", "/api/v4/leads"),
	// without the query string; empty when no request was made.
	Method, Path string
	// Status is the HTTP status, 0 when there was no response.
	Status int
	// Detail is the API's explanation (problem detail, OAuth hint) or the
	// adapter's, when there is one.
	Detail string
	// Err is the classification.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("amocrm: ")
	b.WriteString(e.Op)
	if e.Method != "" {
		b.WriteString(": " + e.Method + " " + e.Path)
	}
	if e.Status != 0 {
		b.WriteString(": " + strconv.Itoa(e.Status))
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the classification.
func (e *Error) Unwrap() error { return e.Err }

// BlockedError is amoCRM's answer to an account or IP blocked for abusing
// the API: an HTML (non-JSON) 403 on every request, lifted only by amoCRM
// support. It matches crm.ErrUnauthorized and is never retried.
type BlockedError struct {
	// Op, Method and Path name the refused call: the operation (e.g.
	// "CreateDeal", "OAuthRefresh") and its HTTP method and URL path.
	Op, Method, Path string
}

// Error implements the error interface.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("amocrm: %s: %s %s: 403: API access blocked by amoCRM (HTML 403); ask amoCRM support to lift the block, giving the server IP and account subdomain", e.Op, e.Method, e.Path)
}

// Is reports whether target is crm.ErrUnauthorized.
func (e *BlockedError) Is(target error) bool { return target == crm.ErrUnauthorized }

// OptionError names an invalid field of [Options] or [OAuthConfig].
type OptionError struct {
	// Field is the invalid field, qualified by its struct, e.g.
	// "Options.BaseURL".
	Field string
	// Reason says what is wrong with the field's value, e.g. "must not
	// be negative".
	Reason string
}

// Error implements the error interface.
func (e *OptionError) Error() string { return "amocrm: " + e.Field + ": " + e.Reason }

// invalidInput reports bad input caught before any request.
func invalidInput(op string, fields ...crm.FieldError) error {
	return &Error{Op: op, Err: &crm.InvalidError{Op: op, Fields: fields}}
}

// notFoundID reports an ID that cannot be an amoCRM ID.
func notFoundID(op, what, id string) error {
	return &Error{Op: op, Detail: fmt.Sprintf("%s %q is not an amoCRM id", what, id), Err: crm.ErrNotFound}
}

// referenceFields are the request fields naming other entities: a
// validation failure on them means the named entity does not exist.
var referenceFields = map[string]bool{
	"responsible_user_id": true, "user_id": true, "entity_id": true,
	"pipeline_id": true, "status_id": true, "id": true,
}

// missingReference reports whether every rejected field of inv names
// another entity (an unknown user, pipeline, stage, linked contact...).
func missingReference(inv *crm.InvalidError) bool {
	if inv == nil || len(inv.Fields) == 0 {
		return false
	}
	for _, f := range inv.Fields {
		p := f.Path
		if i := strings.LastIndexByte(p, '.'); i >= 0 {
			p = p[i+1:]
		} else if i := strings.LastIndexByte(p, ']'); i >= 0 {
			p = p[i+1:]
		}
		if !referenceFields[p] {
			return false
		}
	}
	return true
}

// asNotFound turns a validation failure on reference fields into
// crm.ErrNotFound, keeping the field paths in Detail.
func asNotFound(err error) error {
	var e *Error
	var inv *crm.InvalidError
	if !errors.As(err, &e) || !errors.As(err, &inv) || !missingReference(inv) {
		return err
	}
	out := *e
	paths := make([]string, len(inv.Fields))
	for i, f := range inv.Fields {
		paths[i] = f.Path
	}
	out.Detail = "no such entity: " + strings.Join(paths, ", ")
	out.Err = crm.ErrNotFound
	return &out
}

// isSentinel reports whether err already matches one of the crm sentinels.
func isSentinel(err error) bool {
	for _, s := range []error{crm.ErrNotFound, crm.ErrConflict, crm.ErrRateLimited, crm.ErrUnavailable, crm.ErrUnauthorized, crm.ErrInvalid} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// canceled reports a context that ended before the operation started.
func canceled(op string, err error) error { return &Error{Op: op, Err: err} }
