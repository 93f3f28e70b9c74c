package amocrm

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// TokenSource supplies the bearer token for each request. Implementations
// must be safe for concurrent use.
type TokenSource interface {
	// Token returns the access token to send as "Authorization: Bearer"
	// on the next request; the Client calls it before every attempt. An
	// error matching none of the crm sentinels is reported as
	// crm.ErrUnauthorized; one matching a sentinel (e.g. crm.ErrUnavailable
	// while amoCRM's token endpoint is down) keeps its classification.
	Token(ctx context.Context) (string, error)
}

// Refresher is a TokenSource that can replace a token the API rejected
// with 401. The Client calls Refresh once per request before giving up.
type Refresher interface {
	TokenSource
	// Refresh returns a token other than rejected, refreshing if no other
	// caller already did.
	Refresh(ctx context.Context, rejected string) (string, error)
}

// StaticToken is a long-lived token: private integrations generate one
// (valid from one day to five years) in the integration's "Keys and
// scopes" tab. It is never refreshed; a 401 (expired or revoked in the
// account) is reported as crm.ErrUnauthorized. Every format verb hides the
// value.
type StaticToken string

// Token returns the token, or an error when it is empty.
func (t StaticToken) Token(ctx context.Context) (string, error) {
	if t == "" {
		return "", &Error{Op: "Token", Detail: "empty StaticToken", Err: crm.ErrUnauthorized}
	}
	return string(t), nil
}

// String implements fmt.Stringer.
func (t StaticToken) String() string { return "amocrm.StaticToken(redacted)" }

// GoString implements fmt.GoStringer without revealing the secret.
func (t StaticToken) GoString() string { return "amocrm.StaticToken(redacted)" }

// Format implements fmt.Formatter: every verb (%v, %+v, %#v, %s, %q, %x…)
// prints String.
func (t StaticToken) Format(f fmt.State, verb rune) { io.WriteString(f, t.String()) }

// TokenPair is an OAuth access token with its refresh token. Every format
// verb prints it with the tokens redacted.
type TokenPair struct {
	// AccessToken is the bearer token sent on API requests (amoCRM:
	// access_token).
	AccessToken string
	// RefreshToken obtains the next pair (amoCRM: refresh_token); amoCRM
	// accepts it once, so the pair it returns must replace this one.
	RefreshToken string
	// Expiry of the access token; zero: unknown (used until a 401).
	Expiry time.Time
	// BaseURL is the account address the pair belongs to
	// ("https://example.amocrm.ru"), kept with the pair because an
	// account can be renamed; "": OAuthConfig.BaseURL.
	BaseURL string
}

// String implements fmt.Stringer.
func (p TokenPair) String() string {
	return "amocrm.TokenPair{redacted, expiry " + p.Expiry.UTC().Format(time.RFC3339) + ", base " + p.BaseURL + "}"
}

// GoString implements fmt.GoStringer without revealing the secret.
func (p TokenPair) GoString() string { return p.String() }

// Format implements fmt.Formatter: every verb prints String.
func (p TokenPair) Format(f fmt.State, verb rune) { io.WriteString(f, p.String()) }
