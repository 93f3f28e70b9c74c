package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// TokenSource supplies the bearer token for each request. Implementations
// must be safe for concurrent use.
type TokenSource interface {
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

// StaticToken is a long-lived token (private integrations). It is never
// refreshed; a 401 is reported as crm.ErrUnauthorized. Its String and
// GoString methods hide the value.
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

// TokenPair is an OAuth access token with its refresh token. String and
// GoString hide the tokens.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	// Expiry of the access token; zero: unknown (used until a 401).
	Expiry time.Time
}

// String implements fmt.Stringer.
func (p TokenPair) String() string {
	return "amocrm.TokenPair{redacted, expiry " + p.Expiry.UTC().Format(time.RFC3339) + "}"
}

// GoString implements fmt.GoStringer without revealing the secret.
func (p TokenPair) GoString() string { return p.String() }

// TokenStore keeps the current OAuth pair for the host. amoCRM refresh
// tokens are single-use: after a refresh the old one is revoked, so Save
// must persist the new pair durably before the host restarts, and all
// processes of one integration must share one store and one [OAuth].
type TokenStore interface {
	Load(ctx context.Context) (TokenPair, error)
	Save(ctx context.Context, p TokenPair) error
}

// MemoryStore is an in-memory TokenStore for tests and single-process
// hosts that accept re-authorising after a restart. Safe for concurrent use.
type MemoryStore struct {
	mu sync.Mutex
	p  TokenPair
}

// NewMemoryStore returns a store holding p.
func NewMemoryStore(p TokenPair) *MemoryStore { return &MemoryStore{p: p} }

// Load returns the stored pair.
func (m *MemoryStore) Load(ctx context.Context) (TokenPair, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p, nil
}

// Save replaces the stored pair.
func (m *MemoryStore) Save(ctx context.Context, p TokenPair) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p = p
	return nil
}

// OAuthConfig configures [NewOAuth].
type OAuthConfig struct {
	// BaseURL is the account's address, as for [Options.BaseURL]; the
	// token endpoint is BaseURL + "/oauth2/access_token". Required.
	BaseURL string
	// ClientID, ClientSecret and RedirectURI are the integration's. The
	// first two are required.
	ClientID, ClientSecret, RedirectURI string
	// HTTPClient for the token endpoint. nil: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry. nil: time.Now.
	Now func() time.Time
	// RefreshBefore refreshes proactively when the access token expires
	// within this margin. 0: 5 minutes.
	RefreshBefore time.Duration
}

// OAuth is a [Refresher] over amoCRM's OAuth 2.0 refresh flow. It loads the
// pair from the host's [TokenStore] on first use, refreshes it before
// expiry or after a 401, and saves every new pair to the store.
//
// Refreshes are serialized: at most one is in flight, and concurrent
// callers wait for it and share its result, so a single-use refresh token
// is never sent twice. The refresh runs to completion even when the caller
// that started it gives up (its context is cancelled), because the old
// refresh token is spent as soon as amoCRM answers. Safe for concurrent use.
type OAuth struct {
	cfg   OAuthConfig
	base  baseURL
	store TokenStore
	hc    *http.Client

	mu     sync.Mutex
	pair   TokenPair
	loaded bool
	flight *flight
}

type flight struct {
	done chan struct{}
	err  error
}

// NewOAuth returns an OAuth token source. Errors are *OptionError.
func NewOAuth(cfg OAuthConfig, store TokenStore) (*OAuth, error) {
	o := &OAuth{cfg: cfg, store: store, hc: cfg.HTTPClient}
	if err := o.base.set(cfg.BaseURL, "OAuthConfig.BaseURL"); err != nil {
		return nil, err
	}
	switch {
	case cfg.ClientID == "":
		return nil, &OptionError{Field: "OAuthConfig.ClientID", Reason: "required"}
	case cfg.ClientSecret == "":
		return nil, &OptionError{Field: "OAuthConfig.ClientSecret", Reason: "required"}
	case store == nil:
		return nil, &OptionError{Field: "store", Reason: "a TokenStore is required"}
	case cfg.RefreshBefore < 0:
		return nil, &OptionError{Field: "OAuthConfig.RefreshBefore", Reason: "must not be negative"}
	}
	if o.hc == nil {
		o.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if o.cfg.Now == nil {
		o.cfg.Now = time.Now
	}
	if o.cfg.RefreshBefore == 0 {
		o.cfg.RefreshBefore = 5 * time.Minute
	}
	return o, nil
}

// SetBaseURL changes the account address used for refreshes (after a
// subdomain change). Safe for concurrent use.
func (o *OAuth) SetBaseURL(u string) error { return o.base.set(u, "base URL") }

// Token returns a valid access token, loading or refreshing as needed.
func (o *OAuth) Token(ctx context.Context) (string, error) { return o.get(ctx, "") }

// Refresh returns an access token other than rejected: the current one if
// another caller already refreshed, else a new one from a refresh.
func (o *OAuth) Refresh(ctx context.Context, rejected string) (string, error) {
	return o.get(ctx, rejected)
}

func (o *OAuth) usable(p TokenPair, rejected string) bool {
	if p.AccessToken == "" || p.AccessToken == rejected {
		return false
	}
	return p.Expiry.IsZero() || o.cfg.Now().Add(o.cfg.RefreshBefore).Before(p.Expiry)
}

func (o *OAuth) get(ctx context.Context, rejected string) (string, error) {
	for flights := 0; ; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		o.mu.Lock()
		if f := o.flight; f != nil {
			o.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			if f.err != nil {
				return "", f.err
			}
			flights++
			continue
		}
		// After two flights, accept what we have rather than loop.
		if o.loaded && (o.usable(o.pair, rejected) || (flights >= 2 && o.pair.AccessToken != "")) {
			tok := o.pair.AccessToken
			o.mu.Unlock()
			return tok, nil
		}
		f := &flight{done: make(chan struct{})}
		o.flight = f
		needLoad, cur := !o.loaded, o.pair
		o.mu.Unlock()
		go o.fly(context.WithoutCancel(ctx), f, needLoad, cur, rejected)
	}
}

// fly loads and/or refreshes the pair; exactly one runs at a time.
func (o *OAuth) fly(ctx context.Context, f *flight, needLoad bool, cur TokenPair, rejected string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pair, err := cur, error(nil)
	if needLoad {
		pair, err = o.store.Load(ctx)
		if err != nil {
			err = &Error{Op: "OAuthLoad", Detail: "token store", Err: errors.Join(crm.ErrUnauthorized, err)}
		}
	}
	refreshed := false
	if err == nil && !o.usable(pair, rejected) {
		var np TokenPair
		np, err = o.refresh(ctx, pair.RefreshToken)
		if err == nil {
			pair, refreshed = np, true
		}
	}
	o.mu.Lock()
	if err == nil {
		o.pair, o.loaded = pair, true
	}
	o.mu.Unlock()
	if refreshed {
		// The old refresh token is spent: keep the new pair in memory even
		// if the store fails, and report the failure.
		if serr := o.store.Save(ctx, pair); serr != nil {
			err = &Error{Op: "OAuthSave", Detail: "token refreshed but the store failed to save it", Err: errors.Join(crm.ErrUnavailable, serr)}
		}
	}
	o.mu.Lock()
	o.flight = nil
	f.err = err
	o.mu.Unlock()
	close(f.done)
}

// refresh exchanges a refresh token for a new pair.
func (o *OAuth) refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	const op, path = "OAuthRefresh", "/oauth2/access_token"
	fail := func(status int, detail string, err error) (TokenPair, error) {
		return TokenPair{}, &Error{Op: op, Method: http.MethodPost, Path: path, Status: status, Detail: detail, Err: err}
	}
	if refreshToken == "" {
		return fail(0, "no refresh token in the store", crm.ErrUnauthorized)
	}
	body, _ := json.Marshal(map[string]string{
		"client_id":     o.cfg.ClientID,
		"client_secret": o.cfg.ClientSecret,
		"grant_type":    "refresh_token",
		"refresh_token": refreshToken,
		"redirect_uri":  o.cfg.RedirectURI,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base.get().JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return fail(0, "building request", crm.ErrUnavailable)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := o.hc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fail(0, "", cerr)
		}
		return fail(0, "transport failure", crm.ErrUnavailable)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		var tr struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int64  `json:"expires_in"`
		}
		if json.Unmarshal(raw, &tr) != nil || tr.AccessToken == "" || tr.RefreshToken == "" {
			return fail(resp.StatusCode, "malformed token response", crm.ErrUnavailable)
		}
		p := TokenPair{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken}
		if tr.ExpiresIn > 0 {
			p.Expiry = o.cfg.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
		}
		return p, nil
	}
	if resp.StatusCode == http.StatusForbidden && !isJSON(resp.Header.Get("Content-Type"), raw) {
		return TokenPair{}, &BlockedError{Op: op, Method: http.MethodPost, Path: path}
	}
	var pr problem
	_ = json.Unmarshal(raw, &pr)
	detail := pr.Hint
	if detail == "" {
		detail = pr.Detail
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return fail(resp.StatusCode, detail, crm.ErrRateLimited)
	case resp.StatusCode >= 500:
		return fail(resp.StatusCode, detail, crm.ErrUnavailable)
	default:
		return fail(resp.StatusCode, detail, crm.ErrUnauthorized)
	}
}
