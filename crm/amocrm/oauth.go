package amocrm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// ErrReauthorize matches the errors after which only a new authorization
// of the integration restores access: nothing is stored in the
// [TokenStore], or amoCRM refused the stored refresh token ([*RevokedError]).
var ErrReauthorize = errors.New("amocrm: the integration must be authorized again")

// RevokedError is amoCRM refusing the stored refresh token ("Token has
// been revoked"). Refresh tokens are single-use, so this happens when the
// token was already spent: by a refresh whose answer was lost (a timeout
// or a crash after amoCRM answered), by a process that does not share this
// [TokenStore], or by a refresh token left unused for three months or
// revoked when the integration was uninstalled. Nothing stored can be
// refreshed again. The host must have an account administrator authorize
// the integration again (the integration's authorization button or its
// "Install" in the account) and pass the new authorization code to
// [OAuth.Exchange]. It matches ErrReauthorize and crm.ErrUnauthorized.
type RevokedError struct {
	// Status is the HTTP status of the refusal (400 or 401).
	Status int
	// Hint is amoCRM's explanation ("Token has been revoked").
	Hint string
}

// Error implements the error interface.
func (e *RevokedError) Error() string {
	return fmt.Sprintf("amocrm: OAuthRefresh: POST /oauth2/access_token: %d: refresh token refused (%s): it was already spent or revoked; authorize the integration again and pass the new code to OAuth.Exchange", e.Status, e.Hint)
}

// Is reports whether target is ErrReauthorize or crm.ErrUnauthorized.
func (e *RevokedError) Is(target error) bool {
	return target == ErrReauthorize || target == crm.ErrUnauthorized
}

// Hosts accepted by default as amoCRM account addresses: the Russian
// product, the legacy international one and Kommo.
var defaultHostSuffixes = []string{".amocrm.ru", ".amocrm.com", ".kommo.com"}

// OAuthConfig configures [NewOAuth]. Every format verb prints it with the
// client secret redacted.
type OAuthConfig struct {
	// BaseURL is the account's address, as for [Options.BaseURL], used
	// until a stored pair names another (after [OAuth.Exchange] or an
	// account rename). The token endpoint is BaseURL +
	// "/oauth2/access_token". Required.
	BaseURL string
	// ClientID, ClientSecret and RedirectURI are the integration's, from
	// its settings in the account. amoCRM checks redirect_uri against the
	// registered value on every exchange and refresh, so RedirectURI must
	// be exactly that value. All three are required.
	ClientID, ClientSecret, RedirectURI string
	// Hosts are extra host names accepted as account addresses besides
	// *.amocrm.ru, *.amocrm.com and *.kommo.com (and BaseURL's host):
	// "crm.example.com" exactly, ".example.com" for its subdomains. The
	// authorization redirect's referer and the answer of amoCRM's
	// subdomain lookup are checked against them, so the client secret and
	// refresh token are only ever sent to these hosts.
	Hosts []string
	// HTTPClient for the token endpoint. nil: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry and locks. nil: time.Now.
	Now func() time.Time
	// RefreshBefore refreshes proactively when the access token expires
	// within this margin. 0: 5 minutes.
	RefreshBefore time.Duration
	// LockTTL is how long one process may hold the store's refresh lock
	// before others may take it. 0: 2 minutes.
	LockTTL time.Duration
	// PollInterval is how often a process waiting for another's refresh
	// reads the store again. 0: 500 ms.
	PollInterval time.Duration
	// Sleep waits d or until ctx is done. nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives one record per token request (never a token or a
	// secret). nil: silent.
	Logger *slog.Logger
}

// Format implements fmt.Formatter: the client secret is redacted in every
// verb.
func (c OAuthConfig) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "amocrm.OAuthConfig{BaseURL: %q, ClientID: %q, ClientSecret: redacted, RedirectURI: %q}", c.BaseURL, c.ClientID, c.RedirectURI)
}

// OAuth is a [Refresher] over amoCRM's OAuth 2.0 flow: [OAuth.Exchange]
// turns the first authorization code into a pair; afterwards OAuth loads
// the pair from the host's [TokenStore], refreshes it before expiry or
// after a 401, and saves every new pair there.
//
// Within a process refreshes are serialized: at most one is in flight,
// and concurrent callers wait for it and share its result. Across
// processes sharing one store, the store's refresh lock and versioned Save
// let exactly one process refresh a given pair; the others wait for the
// new version and use it. A refresh runs to completion even when the
// caller that started it gives up, because the old refresh token is spent
// as soon as amoCRM answers.
//
// When a refresh fails with 401 or 404 and the access token names
// amoCRM's shared API domain, OAuth asks it for the account's current
// address (the account may have been renamed) and refreshes there; the
// new address is saved with the pair and used by every [Client] whose
// Tokens is this OAuth. Safe for concurrent use.
type OAuth struct {
	cfg   OAuthConfig
	base  baseURL
	store TokenStore
	hc    *http.Client
	owner string
	log   *slog.Logger

	mu      sync.Mutex
	rec     TokenRecord // last loaded or saved
	loaded  bool
	unsaved bool // rec.Pair is newer than the store (Save failed)
	flight  *flight
}

type flight struct {
	done chan struct{}
	err  error
}

// NewOAuth returns an OAuth token source. Errors are *OptionError.
func NewOAuth(cfg OAuthConfig, store TokenStore) (*OAuth, error) {
	o := &OAuth{cfg: cfg, store: store, hc: cfg.HTTPClient, log: cfg.Logger}
	if err := o.base.set(cfg.BaseURL, "OAuthConfig.BaseURL"); err != nil {
		return nil, err
	}
	switch {
	case cfg.ClientID == "":
		return nil, &OptionError{Field: "OAuthConfig.ClientID", Reason: "required"}
	case cfg.ClientSecret == "":
		return nil, &OptionError{Field: "OAuthConfig.ClientSecret", Reason: "required"}
	case cfg.RedirectURI == "":
		return nil, &OptionError{Field: "OAuthConfig.RedirectURI", Reason: "required: amoCRM checks it on every token request"}
	case store == nil:
		return nil, &OptionError{Field: "store", Reason: "a TokenStore is required"}
	case cfg.RefreshBefore < 0:
		return nil, &OptionError{Field: "OAuthConfig.RefreshBefore", Reason: "must not be negative"}
	case cfg.LockTTL < 0:
		return nil, &OptionError{Field: "OAuthConfig.LockTTL", Reason: "must not be negative"}
	case cfg.PollInterval < 0:
		return nil, &OptionError{Field: "OAuthConfig.PollInterval", Reason: "must not be negative"}
	}
	if u, err := url.Parse(cfg.RedirectURI); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, &OptionError{Field: "OAuthConfig.RedirectURI", Reason: "must be an absolute http(s) URL"}
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
	if o.cfg.LockTTL == 0 {
		o.cfg.LockTTL = 2 * time.Minute
	}
	if o.cfg.PollInterval == 0 {
		o.cfg.PollInterval = 500 * time.Millisecond
	}
	if o.cfg.Sleep == nil {
		o.cfg.Sleep = sleepCtx
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	o.owner = hex.EncodeToString(id[:])
	return o, nil
}

// Format implements fmt.Formatter: no verb prints a token or the secret.
func (o *OAuth) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "&amocrm.OAuth{%v}", o.cfg)
}

// SetBaseURL changes the account address used until a stored pair names
// one. Safe for concurrent use.
func (o *OAuth) SetBaseURL(u string) error { return o.base.set(u, "base URL") }

// BaseURL returns the account address: the one stored with the current
// pair, else OAuthConfig.BaseURL (or the last SetBaseURL).
func (o *OAuth) BaseURL() string { return o.account().String() }

func (o *OAuth) account() *url.URL {
	if u := o.stored(); u != nil {
		return u
	}
	return o.base.get()
}

// stored is the address kept with the current pair, or nil.
func (o *OAuth) stored() *url.URL {
	o.mu.Lock()
	b := o.rec.Pair.BaseURL
	o.mu.Unlock()
	if b != "" {
		if u, err := url.Parse(b); err == nil && u.Host != "" {
			return u
		}
	}
	return nil
}

// Token returns a valid access token, loading or refreshing as needed.
func (o *OAuth) Token(ctx context.Context) (string, error) { return o.get(ctx, "") }

// Refresh returns an access token other than rejected: the current one if
// another caller or process already refreshed, else a new one.
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
		f := o.flight
		if f == nil {
			// After two flights, accept what we have rather than loop.
			if o.loaded && (o.usable(o.rec.Pair, rejected) || (flights >= 2 && o.rec.Pair.AccessToken != "")) {
				tok := o.rec.Pair.AccessToken
				o.mu.Unlock()
				return tok, nil
			}
			f = &flight{done: make(chan struct{})}
			o.flight = f
			go o.fly(context.WithoutCancel(ctx), f, rejected)
		}
		o.mu.Unlock()
		// Wait for the flight, ours or another caller's, and take its
		// outcome, error included.
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if f.err != nil {
			return "", f.err
		}
		flights++
	}
}

// fly brings a usable pair into memory; exactly one runs at a time.
func (o *OAuth) fly(ctx context.Context, f *flight, rejected string) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.LockTTL+time.Minute)
	defer cancel()
	err := o.obtain(ctx, rejected)
	o.mu.Lock()
	o.flight = nil
	f.err = err
	o.mu.Unlock()
	close(f.done)
}

func (o *OAuth) adopt(rec TokenRecord, unsaved bool) {
	o.mu.Lock()
	o.rec, o.loaded, o.unsaved = rec, true, unsaved
	o.mu.Unlock()
}

// obtain loads the stored pair and, when it is not usable, refreshes it
// under the store's lock or waits for the process holding it.
func (o *OAuth) obtain(ctx context.Context, rejected string) error {
	o.mu.Lock()
	mine, unsaved := o.rec, o.unsaved
	o.mu.Unlock()
	if unsaved {
		// A refresh succeeded but its Save failed: the store still holds
		// the spent refresh token. Save ours first.
		if rec, err := o.store.Save(ctx, mine.Version, mine.Pair); err == nil {
			o.adopt(rec, false)
		} else if !errors.Is(err, ErrTokenConflict) {
			return storeErr("OAuthSave", "the refreshed pair is still not saved", err)
		}
	}
	for {
		rec, err := o.store.Load(ctx)
		if err != nil {
			return storeErr("OAuthLoad", "token store", err)
		}
		o.mu.Lock()
		if o.unsaved && rec.Version == o.rec.Version {
			rec = o.rec // ours is newer than the stored one
		}
		o.mu.Unlock()
		if rec.Version == 0 {
			return &Error{Op: "OAuthLoad", Detail: "no token stored: authorize the integration and pass the code to OAuth.Exchange", Err: errors.Join(ErrReauthorize, crm.ErrUnauthorized)}
		}
		if o.usable(rec.Pair, rejected) {
			o.adopt(rec, false)
			return nil
		}
		now := o.cfg.Now()
		ok, err := o.store.Lock(ctx, rec.Version, o.owner, now, now.Add(o.cfg.LockTTL))
		if err != nil {
			return storeErr("OAuthLock", "token store", err)
		}
		if ok {
			return o.refreshLocked(ctx, rec, rejected)
		}
		o.log.LogAttrs(ctx, slog.LevelDebug, "amocrm: waiting for another process's token refresh", slog.Int64("version", rec.Version))
		if err := o.cfg.Sleep(ctx, o.cfg.PollInterval); err != nil {
			return &Error{Op: "OAuthRefresh", Detail: "waiting for another process's refresh", Err: err}
		}
	}
}

// refreshLocked refreshes rec's pair while holding the store's lock on
// rec.Version, and saves the result.
func (o *OAuth) refreshLocked(ctx context.Context, rec TokenRecord, rejected string) error {
	base := o.base.get()
	if rec.Pair.BaseURL != "" {
		if u, err := url.Parse(rec.Pair.BaseURL); err == nil && u.Host != "" {
			base = u
		}
	}
	np, err := o.tokenRequest(ctx, "OAuthRefresh", base, map[string]string{"grant_type": "refresh_token", "refresh_token": rec.Pair.RefreshToken})
	if moved := o.renamed(ctx, err, rec.Pair, base); moved != nil {
		base = moved
		np, err = o.tokenRequest(ctx, "OAuthRefresh", base, map[string]string{"grant_type": "refresh_token", "refresh_token": rec.Pair.RefreshToken})
	}
	if err != nil {
		if uerr := o.store.Unlock(context.WithoutCancel(ctx), rec.Version, o.owner); uerr != nil {
			o.log.LogAttrs(ctx, slog.LevelWarn, "amocrm: releasing the token refresh lock failed", slog.String("error", uerr.Error()))
		}
		if errors.Is(err, ErrReauthorize) {
			// A process that did not wait for the lock may have refreshed
			// and saved meanwhile.
			if cur, lerr := o.store.Load(ctx); lerr == nil && cur.Version != rec.Version && o.usable(cur.Pair, rejected) {
				o.adopt(cur, false)
				return nil
			}
		}
		return err
	}
	if np.BaseURL = base.String(); np.BaseURL == o.base.get().String() && rec.Pair.BaseURL == "" {
		np.BaseURL = ""
	}
	saved, err := o.store.Save(ctx, rec.Version, np)
	switch {
	case err == nil:
		o.adopt(saved, false)
		return nil
	case errors.Is(err, ErrTokenConflict):
		// Our lock expired and another process saved a pair first. Ours
		// is the newest amoCRM issued: keep it in memory, leave theirs.
		o.log.LogAttrs(ctx, slog.LevelWarn, "amocrm: the token store changed while this process held the refresh lock; raise OAuthConfig.LockTTL")
		o.adopt(TokenRecord{Pair: np, Version: rec.Version}, false)
		return nil
	default:
		// The old refresh token is spent: keep the new pair in memory,
		// save it on the next flight, and report the failure.
		o.adopt(TokenRecord{Pair: np, Version: rec.Version}, true)
		return storeErr("OAuthSave", "token refreshed but the store failed to save it", err)
	}
}

func storeErr(op, detail string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Op: op, Detail: detail, Err: err}
	}
	return &Error{Op: op, Detail: detail, Err: fmt.Errorf("%w: %w", crm.ErrUnavailable, err)}
}

// Exchange turns an authorization code into the first token pair and
// saves it, replacing whatever the store held (the install flow). account
// is the referer amoCRM sends with the code to the redirect URI
// ("example.amocrm.ru" or "https://example.kommo.com"); it must be an
// accepted host (see OAuthConfig.Hosts). "": OAuthConfig.BaseURL. The
// code is valid for a few minutes and can be exchanged once.
func (o *OAuth) Exchange(ctx context.Context, code, account string) error {
	const op = "OAuthExchange"
	if code == "" {
		return &Error{Op: op, Err: &crm.InvalidError{Op: op, Fields: []crm.FieldError{{Path: "code", Code: "Required"}}}}
	}
	base := o.base.get()
	if account != "" {
		u, err := o.accountURL(account)
		if err != nil {
			return &Error{Op: op, Detail: err.Error(), Err: &crm.InvalidError{Op: op, Fields: []crm.FieldError{{Path: "account", Code: "UnknownHost", Detail: err.Error()}}}}
		}
		base = u
	}
	np, err := o.tokenRequest(ctx, op, base, map[string]string{"grant_type": "authorization_code", "code": code})
	if err != nil {
		return err
	}
	np.BaseURL = base.String()
	for range 3 {
		cur, err := o.store.Load(ctx)
		if err != nil {
			o.adopt(TokenRecord{Pair: np}, true)
			return storeErr("OAuthSave", "token store", err)
		}
		saved, err := o.store.Save(ctx, cur.Version, np)
		if err == nil {
			o.adopt(saved, false)
			return nil
		}
		if !errors.Is(err, ErrTokenConflict) {
			o.adopt(TokenRecord{Pair: np, Version: cur.Version}, true)
			return storeErr("OAuthSave", "the new pair could not be saved", err)
		}
	}
	return &Error{Op: "OAuthSave", Detail: "the token store kept changing", Err: crm.ErrConflict}
}

// accountURL validates an account address given as a host or a URL.
func (o *OAuth) accountURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = o.base.get().Scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, errors.New("account address is not a bare host")
	}
	if !o.allowedHost(u.Hostname()) && u.Host != o.base.get().Host {
		return nil, fmt.Errorf("account host %q is not amoCRM's or Kommo's (see OAuthConfig.Hosts)", u.Hostname())
	}
	if u.Scheme != "https" && u.Scheme != o.base.get().Scheme {
		return nil, errors.New("account address must use https")
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

func (o *OAuth) allowedHost(host string) bool {
	host = strings.ToLower(host)
	if host == o.base.get().Hostname() {
		return true
	}
	for _, s := range defaultHostSuffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	for _, h := range o.cfg.Hosts {
		h = strings.ToLower(h)
		if host == h || (strings.HasPrefix(h, ".") && strings.HasSuffix(host, h) && len(host) > len(h)) {
			return true
		}
	}
	return false
}

// renamed handles an account whose subdomain changed, as the official PHP
// SDK does (AmoCRMOAuth::getAccessTokenByRefreshToken): after a 401 or
// 404 from the token endpoint it reads the shared API domain from the
// access token's api_domain claim and asks
// GET https://{api_domain}/oauth2/account/current/subdomain with the
// refresh token in X-Refresh-Token; the answer's domain is the account's
// current host. It returns the new base URL, or nil.
func (o *OAuth) renamed(ctx context.Context, err error, p TokenPair, base *url.URL) *url.URL {
	var e *Error
	var r *RevokedError
	status := 0
	switch {
	case errors.As(err, &r):
		status = r.Status
	case errors.As(err, &e):
		status = e.Status
	}
	if status != http.StatusUnauthorized && status != http.StatusNotFound {
		return nil
	}
	shared := jwtClaim(p.AccessToken, "api_domain")
	if su, err := url.Parse("//" + shared); shared == "" || err != nil || su.Host != shared || !o.allowedHost(su.Hostname()) {
		return nil
	}
	u := &url.URL{Scheme: base.Scheme, Host: shared, Path: "/oauth2/account/current/subdomain"}
	req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if rerr != nil {
		return nil
	}
	req.Header.Set("X-Refresh-Token", p.RefreshToken)
	req.Header.Set("Accept", "application/json")
	start := o.cfg.Now()
	resp, rerr := o.hc.Do(req)
	if rerr != nil {
		o.log.LogAttrs(ctx, slog.LevelWarn, "amocrm: account subdomain lookup failed", slog.String("host", shared), slog.String("error", causeText(rerr)))
		return nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	o.log.LogAttrs(ctx, slog.LevelInfo, "amocrm: account subdomain lookup", slog.String("host", shared), slog.Int("status", resp.StatusCode), slog.Duration("duration", o.cfg.Now().Sub(start)))
	var ad struct {
		Subdomain string `json:"subdomain"`
		Domain    string `json:"domain"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &ad) != nil || ad.Domain == "" {
		return nil
	}
	nu, aerr := o.accountURL(ad.Domain)
	if aerr != nil || nu.Host == base.Host {
		return nil
	}
	o.log.LogAttrs(ctx, slog.LevelWarn, "amocrm: account address changed", slog.String("from", base.Host), slog.String("to", nu.Host))
	return nu
}

// jwtClaim reads a string claim from a JWT's payload without verifying it
// (only used to find where to ask for the account address).
func jwtClaim(tok, name string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	s, _ := claims[name].(string)
	return s
}

// tokenRequest posts to the token endpoint with the integration's
// credentials and redirect_uri plus fields (grant_type and its input).
func (o *OAuth) tokenRequest(ctx context.Context, op string, base *url.URL, fields map[string]string) (TokenPair, error) {
	const path = "/oauth2/access_token"
	fail := func(status int, detail string, err error) (TokenPair, error) {
		return TokenPair{}, &Error{Op: op, Method: http.MethodPost, Path: path, Status: status, Detail: detail, Err: err}
	}
	if fields["grant_type"] == "refresh_token" && fields["refresh_token"] == "" {
		return fail(0, "no refresh token in the store", errors.Join(ErrReauthorize, crm.ErrUnauthorized))
	}
	body := map[string]string{
		"client_id":     o.cfg.ClientID,
		"client_secret": o.cfg.ClientSecret,
		"redirect_uri":  o.cfg.RedirectURI,
	}
	for k, v := range fields {
		body[k] = v
	}
	payload, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.JoinPath(path).String(), bytes.NewReader(payload))
	if err != nil {
		return fail(0, "building request", crm.ErrUnavailable)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	start := o.cfg.Now()
	resp, err := o.hc.Do(req)
	logAttrs := []slog.Attr{slog.String("op", op), slog.String("http_method", http.MethodPost), slog.String("host", base.Host), slog.String("path", path)}
	if err != nil {
		o.log.LogAttrs(ctx, slog.LevelWarn, "amocrm: token request failed", append(logAttrs, slog.Duration("duration", o.cfg.Now().Sub(start)), slog.String("error", causeText(err)))...)
		if cerr := ctx.Err(); cerr != nil {
			return fail(0, "", cerr)
		}
		detail := "transport failure"
		if op == "OAuthRefresh" {
			detail += " (if amoCRM carried the refresh out, the stored refresh token is spent)"
		}
		return fail(0, detail, transportErr(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	o.log.LogAttrs(ctx, slog.LevelInfo, "amocrm: token request", append(logAttrs, slog.Int("status", resp.StatusCode), slog.Duration("duration", o.cfg.Now().Sub(start)))...)
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
	var pr struct {
		problem
		Error string `json:"error"`
	}
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
	case op == "OAuthRefresh" && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized) &&
		(strings.Contains(strings.ToLower(pr.Hint), "revoked") || pr.Error == "invalid_grant" || strings.Contains(strings.ToLower(pr.Hint), "expired")):
		return TokenPair{}, &RevokedError{Status: resp.StatusCode, Hint: detail}
	default:
		return fail(resp.StatusCode, detail, crm.ErrUnauthorized)
	}
}
