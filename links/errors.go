package links

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Sentinel errors. Test for them with errors.Is; the concrete errors carry
// the details (which URL, which hop, which address).
var (
	// ErrBlockedAddress: a connection to a loopback, private, link-local,
	// CGNAT, unspecified, multicast, reserved or cloud-metadata address was
	// refused by the dial guard. The concrete error is a *BlockedAddressError.
	ErrBlockedAddress = errors.New("links: address not allowed")
	// ErrScheme: a link or redirect pointed at a scheme other than http or
	// https (file:, javascript:, data:, tg:, ...).
	ErrScheme = errors.New("links: scheme not allowed")
	// ErrLoop: a redirect led back to an address already visited.
	ErrLoop = errors.New("links: redirect loop")
	// ErrTooManyHops: the redirect chain is longer than Options.MaxHops.
	ErrTooManyHops = errors.New("links: too many redirects")
	// ErrBadLocation: a redirect target (Location header or refresh URL) is
	// not a usable absolute or relative http(s) URL, or is too long.
	ErrBadLocation = errors.New("links: bad redirect target")
	// ErrNoRedirect: the short link answered with a page of its own instead
	// of redirecting (no 3xx, no refresh), so there is no longer address.
	ErrNoRedirect = errors.New("links: short link did not redirect")
	// ErrStatus: the short link itself answered with an HTTP error status.
	// The concrete error is a *StatusError.
	ErrStatus = errors.New("links: unexpected HTTP status")
	// ErrInvalidOptions: the Options given to NewExpander are invalid.
	// The concrete error is an *OptionsError.
	ErrInvalidOptions = errors.New("links: invalid options")
	// ErrNilContext: a nil context.Context was passed.
	ErrNilContext = errors.New("links: nil context")
)

// BlockedAddressError reports an address refused by the dial guard.
type BlockedAddressError struct {
	// Addr is the address that was about to be dialled.
	Addr netip.Addr
	// Reason is the range it falls in, e.g. "loopback", "private",
	// "cloud metadata".
	Reason string
}

// Error implements the error interface.
func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("links: address %s not allowed (%s)", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrBlockedAddress) true.
func (e *BlockedAddressError) Is(target error) bool { return target == ErrBlockedAddress }

// StatusError reports an HTTP error status answered by the short link.
type StatusError struct {
	// URL is the short link as requested.
	URL string
	// Code is the HTTP status it answered: not a 2xx, and with no
	// redirect to follow.
	Code int
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	return fmt.Sprintf("links: %s answered HTTP %d", e.URL, e.Code)
}

// Is makes errors.Is(err, ErrStatus) true.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// LinkError reports why one short link was not expanded: the short link, the
// hop at which it failed (0 is the short link itself), the URL requested at
// that hop, and the cause. Unwrap gives the cause, so errors.Is works with the
// sentinels above and with context.DeadlineExceeded / context.Canceled.
type LinkError struct {
	// Short is the normalised short link.
	Short string
	// Hop is the number of redirects followed before the failure.
	Hop int
	// URL is the URL being requested or followed when it failed.
	URL string
	// Err is the cause: one of the package sentinels (or an error
	// matching one) or a context error.
	Err error
}

// Error implements the error interface.
func (e *LinkError) Error() string {
	cause := "<nil>"
	if e.Err != nil {
		cause = strings.TrimPrefix(e.Err.Error(), "links: ")
	}
	if e.URL == "" || e.URL == e.Short {
		return fmt.Sprintf("links: expanding %s: %s", e.Short, cause)
	}
	return fmt.Sprintf("links: expanding %s: hop %d (%s): %s", e.Short, e.Hop, e.URL, cause)
}

// Unwrap returns the cause.
func (e *LinkError) Unwrap() error { return e.Err }

// OptionsError names an invalid Options field.
type OptionsError struct {
	// Field names the invalid field, e.g. "Hosts[1]", "MaxHops".
	Field string
	// Reason says what is wrong with its value, e.g. "negative".
	Reason string
}

// Error implements the error interface.
func (e *OptionsError) Error() string {
	return fmt.Sprintf("links: invalid option %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidOptions) true.
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }
