package crm

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Adapters return errors matching exactly one of these
// (errors.Is) for every failure they can classify.
var (
	// ErrNotFound: the entity an operation names (by ID) does not exist.
	ErrNotFound = errors.New("crm: not found")
	// ErrConflict: the change conflicts with the entity's current state
	// (for example completing a task that is already complete in a way the
	// CRM refuses, or a concurrent modification).
	ErrConflict = errors.New("crm: conflict")
	// ErrRateLimited: the CRM refused the request because of request rate.
	// Transient: retry later.
	ErrRateLimited = errors.New("crm: rate limited")
	// ErrUnavailable: the CRM could not be reached or failed (5xx, timeout,
	// connection reset). Transient.
	ErrUnavailable = errors.New("crm: unavailable")
	// ErrUnauthorized: credentials are missing, expired, revoked, or the
	// account is blocked. Not transient: a retry will not help.
	ErrUnauthorized = errors.New("crm: unauthorized")
	// ErrInvalid: the CRM rejected the request's content (validation).
	ErrInvalid = errors.New("crm: invalid request")
)

// RetryAfterError is returned when the CRM says how long to wait before
// retrying. Err is the classification (usually ErrRateLimited or
// ErrUnavailable, possibly wrapping vendor detail).
type RetryAfterError struct {
	// RetryAfter is how long the CRM asked the caller to wait before
	// retrying; zero means it asked for no wait.
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

// FieldError is one rejected field of a request, as the CRM reported it.
type FieldError struct {
	// Path locates the field, e.g. "[0].custom_fields_values[1].values[0].value".
	Path string
	// Code is the CRM's machine-readable reason, when given.
	Code string
	// Detail is the CRM's human-readable reason, when given.
	Detail string
}

// InvalidError is a validation failure that names the rejected fields.
// It matches ErrInvalid.
type InvalidError struct {
	// Op is the operation, e.g. "CreateDeal"; may be empty.
	Op string
	// Fields are the rejected fields, in the order the CRM or the adapter
	// reported them; may be empty when the CRM named none.
	Fields []FieldError
}

// Error implements the error interface.
func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("crm: invalid request")
	if e.Op != "" {
		b.WriteString(" in ")
		b.WriteString(e.Op)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Path)
		if f.Code != "" {
			b.WriteString(" " + f.Code)
		}
		if f.Detail != "" {
			b.WriteString(" (" + f.Detail + ")")
		}
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Temporary reports whether err is transient: a rate limit or an outage,
// after which retrying an operation documented as safe to retry may succeed.
// Context cancellation and deadlines are not temporary.
func Temporary(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

// RetryAfter returns the wait the CRM asked for, if err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.RetryAfter, true
	}
	return 0, false
}
