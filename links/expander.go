package links

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults used for zero Options fields.
const (
	DefaultMaxHops              = 5
	DefaultPerLinkTimeout       = 5 * time.Second
	DefaultPerMessageTimeout    = 8 * time.Second
	DefaultMaxBodyBytes         = defaultMaxBody
	DefaultMaxLinksPerMessage   = 20
	DefaultMaxConcurrentFetches = 32
	DefaultCacheSize            = 1024
	DefaultCacheTTL             = 24 * time.Hour
	DefaultFailureTTL           = time.Minute
	DefaultUserAgent            = "crmbridge-links/1.0"
)

const (
	defaultMaxBody = 64 << 10
	// maxDrain is the most bytes of an unread response body read before
	// closing it, so that its connection can carry the next request; the
	// standard client does the same, with 2 KiB, between the redirects it
	// follows (net/http/client.go, maxBodySlurpSize).
	maxDrain     = 4 << 10
	maxURLLen    = 8 << 10
	maxHopsLimit = 100
)

// Options configure an [Expander]. The zero value means the documented
// defaults: amo.sh only, 5 redirects, 5 s per link, 8 s per message, 64 KiB
// read per response, 20 distinct links per message, 32 fetches at a time, a
// 1024-entry cache keeping successes for 24 h and failures for 1 min, no
// preview, no logging, and the guarded default HTTP client. Negative
// durations and counts are invalid unless stated otherwise.
//
// Whether an Expander is used at all is the host's global setting "Expand
// Salesbot links", which must stay OFF by default: see the package
// documentation, section "The setting and amoCRM click tracking".
type Options struct {
	// Hosts are the shortener hosts whose links are expanded, compared
	// case-insensitively. nil or empty: {DefaultHost} ("amo.sh").
	Hosts []string
	// MaxHops is the most redirects (3xx, Refresh header or meta refresh)
	// followed for one link; one more gives ErrTooManyHops. 0: 5; at most 100.
	MaxHops int
	// PerLinkTimeout bounds the whole expansion of one link from the moment
	// it is requested: the wait for a fetch slot (see MaxConcurrentFetches)
	// and all hops included. 0: 5 s.
	PerLinkTimeout time.Duration
	// PerMessageTimeout bounds one ExpandText call. Links not expanded by
	// then are reported with context.DeadlineExceeded and left as they are;
	// their fetches continue in the background for at most PerLinkTimeout
	// and their results are cached. 0: 8 s.
	PerMessageTimeout time.Duration
	// MaxBodyBytes is the most bytes read from one response (only HTML
	// bodies are read, and only up to <body>). 0: 64 KiB.
	MaxBodyBytes int64
	// MaxLinksPerMessage is the most distinct short links expanded in one
	// message; links beyond are left as written, unexamined, and counted in
	// Result.Skipped. Repeats of a link count once. 0: 20.
	MaxLinksPerMessage int
	// MaxConcurrentFetches is the most links (and Preview addresses) this
	// Expander follows at the same time, over all calls; each followed
	// link makes one request at a time. Further fetches wait for a slot
	// within their PerLinkTimeout; a link that gets none fails with
	// context.DeadlineExceeded and that outcome is not cached.
	// 0: DefaultMaxConcurrentFetches (32).
	MaxConcurrentFetches int
	// CacheSize is the number of short links whose outcome is remembered
	// (LRU). 0: 1024; negative: nothing is remembered (concurrent requests
	// for one link still share one fetch).
	CacheSize int
	// CacheTTL is how long a successful expansion is remembered. 0: 24 h.
	CacheTTL time.Duration
	// FailureTTL is how long a failed expansion is remembered, so a broken
	// link is not fetched for every message. 0: 1 min; negative: failures
	// are not remembered.
	FailureTTL time.Duration
	// WithPreview makes ExpandText also read the preview data (OpenGraph,
	// Twitter card, <title>, description, image) of the final page, from the
	// same response, into LinkResult.Preview.
	WithPreview bool
	// UserAgent is sent with every request. "": DefaultUserAgent.
	UserAgent string
	// HTTPClient, if set, is used instead of the guarded default client.
	// The Expander uses a shallow copy whose CheckRedirect stops at the
	// first response (redirects are followed by hand). The dial guard is
	// then the host's responsibility: build the transport with
	// Guard.NewTransport or Guard.Control, or the client can reach internal
	// addresses. AllowAddrs is ignored.
	HTTPClient *http.Client
	// AllowAddrs are prefixes the default client's dial guard lets through
	// although they are blocked (loopback, private, ...). This is the
	// documented escape hatch for tests on httptest servers:
	// []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}. Keep it empty
	// in production.
	AllowAddrs []netip.Prefix
	// Now returns the current time, used for cache expiry only (logged
	// durations use the monotonic clock). nil: time.Now.
	Now func() time.Time
	// Logger, if set, receives one record per link followed (not per cache
	// hit): at Debug when the link led somewhere, at Warn when it failed.
	// Attributes: "host" (the short link's host), "long_host" (the final
	// host, on success), "hops", "status" (the last HTTP status, 0 if none),
	// "duration", "outcome": one of "expanded", "fetched" (a Preview),
	// "no_redirect", "status", "blocked", "scheme", "loop", "too_many_hops",
	// "bad_location", "timeout", "canceled", "no_slot" (no fetch slot within
	// PerLinkTimeout) or "error" (a network error). Paths, queries,
	// fragments and error texts are never logged: short links are
	// per-contact tracking addresses and long ones may carry tokens in
	// their query. nil: silent.
	Logger *slog.Logger
}

// Validate reports the first invalid field as an *OptionsError (errors.Is
// ErrInvalidOptions), or nil.
func (o Options) Validate() error {
	for i, h := range o.Hosts {
		if !validHost(strings.TrimSuffix(strings.TrimSpace(h), ".")) {
			return &OptionsError{Field: fmt.Sprintf("Hosts[%d]", i), Reason: fmt.Sprintf("%q is not an ASCII host name (letters, digits, '.', '-')", h)}
		}
	}
	switch {
	case o.MaxHops < 0 || o.MaxHops > maxHopsLimit:
		return &OptionsError{Field: "MaxHops", Reason: fmt.Sprintf("%d is outside 0..%d", o.MaxHops, maxHopsLimit)}
	case o.PerLinkTimeout < 0:
		return &OptionsError{Field: "PerLinkTimeout", Reason: "negative"}
	case o.PerMessageTimeout < 0:
		return &OptionsError{Field: "PerMessageTimeout", Reason: "negative"}
	case o.MaxBodyBytes < 0:
		return &OptionsError{Field: "MaxBodyBytes", Reason: "negative"}
	case o.MaxLinksPerMessage < 0:
		return &OptionsError{Field: "MaxLinksPerMessage", Reason: "negative"}
	case o.MaxConcurrentFetches < 0:
		return &OptionsError{Field: "MaxConcurrentFetches", Reason: "negative"}
	case o.CacheTTL < 0:
		return &OptionsError{Field: "CacheTTL", Reason: "negative"}
	}
	for i, p := range o.AllowAddrs {
		if !p.IsValid() {
			return &OptionsError{Field: fmt.Sprintf("AllowAddrs[%d]", i), Reason: "invalid prefix"}
		}
	}
	return nil
}

// Expander finds short links in message texts and replaces them by the
// addresses they redirect to. Create it with [NewExpander]; the zero
// Expander behaves as NewExpander(Options{}).
//
// An Expander is safe for concurrent use by any number of goroutines. Each
// short link is fetched at most once at a time however many messages and
// goroutines carry it (single flight), and its outcome is then served from a
// bounded cache until it expires.
type Expander struct {
	opt  Options
	once sync.Once

	err        error // from Options.Validate
	hosts      []string
	maxHops    int
	perLink    time.Duration
	perMessage time.Duration
	maxBody    int64
	maxLinks   int
	cacheTTL   time.Duration
	failTTL    time.Duration
	ua         string
	now        func() time.Time
	client     *http.Client
	cache      *cache
	slots      chan struct{} // one token per fetch in progress
	log        *slog.Logger  // nil: silent
}

// NewExpander returns an Expander configured by opt (zero fields: defaults).
// It never fails: if opt is invalid (see [Options.Validate]) every method of
// the returned Expander returns that *OptionsError and leaves texts as they
// are. Call opt.Validate first to reject a bad configuration early.
func NewExpander(opt Options) *Expander {
	opt.Hosts = append([]string(nil), opt.Hosts...)
	opt.AllowAddrs = append([]netip.Prefix(nil), opt.AllowAddrs...)
	e := &Expander{opt: opt}
	e.once.Do(e.setup)
	return e
}

func (e *Expander) setup() {
	o := e.opt
	if e.err = o.Validate(); e.err != nil {
		return
	}
	for _, h := range o.Hosts {
		e.hosts = append(e.hosts, strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), ".")))
	}
	e.maxHops = or(o.MaxHops, DefaultMaxHops)
	e.perLink = or(o.PerLinkTimeout, DefaultPerLinkTimeout)
	e.perMessage = or(o.PerMessageTimeout, DefaultPerMessageTimeout)
	e.maxBody = or(o.MaxBodyBytes, DefaultMaxBodyBytes)
	e.maxLinks = or(o.MaxLinksPerMessage, DefaultMaxLinksPerMessage)
	e.cacheTTL = or(o.CacheTTL, DefaultCacheTTL)
	e.failTTL = or(o.FailureTTL, DefaultFailureTTL)
	e.ua = or(o.UserAgent, DefaultUserAgent)
	e.now = o.Now
	if e.now == nil {
		e.now = time.Now
	}
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		c.CheckRedirect = noRedirect
		e.client = &c
	} else {
		e.client = Guard{Allow: o.AllowAddrs}.NewClient()
	}
	e.cache = newCache(or(o.CacheSize, DefaultCacheSize), e.now, e.ttl, e.fetch)
	e.slots = make(chan struct{}, or(o.MaxConcurrentFetches, DefaultMaxConcurrentFetches))
	e.log = o.Logger
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// init makes the zero Expander usable and reports a configuration error.
func (e *Expander) init() error {
	if e == nil {
		return &OptionsError{Field: "Expander", Reason: "nil *Expander"}
	}
	e.once.Do(e.setup)
	return e.err
}

// Via says how a hop led to the next one.
type Via string

// How the next address was found.
const (
	ViaLocation      Via = "location"       // a 3xx response's Location header
	ViaRefreshHeader Via = "refresh-header" // a Refresh response header
	ViaMetaRefresh   Via = "meta-refresh"   // <meta http-equiv="refresh"> in the HTML head
)

// Hop is one request made while expanding a link.
type Hop struct {
	// URL is the address requested.
	URL string
	// Status is the HTTP status; 0 if no response was received.
	Status int
	// ContentType is the media type of the response, "" if none.
	ContentType string
	// Via is how the next hop was found; "" for the last request.
	Via Via
}

// LinkResult reports what happened to one distinct short link of a message
// (all its occurrences).
type LinkResult struct {
	// Start and End are the byte offsets of the link's first occurrence in
	// the ORIGINAL text.
	Start, End int
	// Short is the first occurrence as written; URL its normalised form
	// (the cache key), shared by all occurrences however they are written.
	Short, URL string
	// Count is the number of occurrences of the link in the text.
	Count int
	// Long is the address the link leads to ("" if it was not expanded).
	Long string
	// Replaced is true when Long was written into Result.Text in place of
	// every occurrence; false when expansion failed (Err != nil).
	Replaced bool
	// Err says why the link was not expanded: a *LinkError wrapping one of
	// the package sentinels or a context error; nil when Replaced.
	Err error
	// Hops is the number of redirects followed.
	Hops int
	// Trail lists the requests of the fetch that gave the outcome (also
	// when Cached), in order, a failed one included; empty when no
	// request was made.
	Trail []Hop
	// Cached is true when this call did not fetch the link itself: the
	// outcome came from the cache or from a concurrent call's fetch.
	Cached bool
	// Preview holds the final page's preview data when Options.WithPreview
	// is set and the page is HTML; nil otherwise.
	Preview *Preview
}

// Result is the outcome of ExpandText.
type Result struct {
	// Text is the message text with every occurrence of an expanded short
	// link replaced by its long address; every other byte is unchanged. It
	// is always usable, even when ExpandText returns an error (then it is
	// the input text).
	Text string
	// Links has one entry per distinct short link (by URL), in order of
	// first appearance, at most Options.MaxLinksPerMessage.
	Links []LinkResult
	// Skipped counts the occurrences of the links beyond
	// Options.MaxLinksPerMessage distinct ones: they are left as written
	// and not examined.
	Skipped int
}

// ExpandText replaces the short links in text by the addresses they
// redirect to. It is the whole feature of the global setting "Expand
// Salesbot links": call it only when that setting is on (it is off by
// default because amoCRM may count the fetch as a click; see the package
// documentation).
//
// A link that cannot be expanded (timeout, blocked address, loop, bad
// scheme, error status, ...) stays as written and is reported in
// Result.Links with its reason; it never makes ExpandText fail. ExpandText
// returns within Options.PerMessageTimeout or when ctx ends. Its error is
// non-nil only when ctx is nil or already done on entry, or the Options were
// invalid; Result.Text is the unchanged text then.
//
// Each distinct link is expanded once however often the text repeats it,
// and the text is read twice (once to list the links, once to write the
// result) rather than held as a list of occurrences, so the memory used
// is the result text plus a bounded amount per distinct link. A text
// without short links costs no allocation besides the Result and makes no
// request.
func (e *Expander) ExpandText(ctx context.Context, text string) (Result, error) {
	res := Result{Text: text}
	if ctx == nil {
		return res, ErrNilContext
	}
	if err := e.init(); err != nil {
		return res, err
	}
	// The distinct links, in order of first appearance. The URL of each
	// occurrence is built in a reusable buffer: looking it up allocates
	// nothing.
	var (
		index   map[string]int // URL -> position in res.Links
		scratch [256]byte
	)
	buf := scratch[:0]
	sc := newScanner(text, e.hosts)
	for m, ok := sc.next(); ok; m, ok = sc.next() {
		buf = m.appendURL(buf[:0], text)
		if k, seen := index[string(buf)]; seen {
			res.Links[k].Count++
			continue
		}
		if len(res.Links) == e.maxLinks {
			res.Skipped++
			continue
		}
		if index == nil {
			index = make(map[string]int)
		}
		key := string(buf)
		index[key] = len(res.Links)
		res.Links = append(res.Links, LinkResult{Start: m.start, End: m.end, Short: text[m.start:m.end], URL: key, Count: 1})
	}
	if len(res.Links) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		for i := range res.Links {
			res.Links[i].Err = &LinkError{Short: res.Links[i].URL, Err: err}
		}
		return res, err
	}

	// Cached outcomes at once; the rest are fetched concurrently, each by
	// one goroutine however many callers want it, and waited for under the
	// message budget.
	type outcome struct {
		val    expansion
		flight *flight // nil: served from the cache
		joined bool
	}
	outs := make([]outcome, len(res.Links))
	waiting := false
	for k := range res.Links {
		v, f, joined := e.cache.start(ctx, res.Links[k].URL)
		outs[k] = outcome{val: v, flight: f, joined: joined}
		waiting = waiting || f != nil
	}
	if waiting {
		mctx, cancel := context.WithTimeout(ctx, e.perMessage)
		for k := range outs {
			f := outs[k].flight
			if f == nil {
				continue
			}
			select {
			case <-f.done:
			case <-mctx.Done():
			}
			select {
			case <-f.done: // preferred, even if the budget ran out meanwhile
				outs[k].val = f.val
			default:
				key := res.Links[k].URL
				outs[k].val = expansion{err: &LinkError{Short: key, URL: key, Err: mctx.Err()}}
			}
		}
		cancel()
	}

	replaced := false
	grow := 0
	for k := range res.Links {
		l, o := &res.Links[k], outs[k]
		l.Trail, l.Cached = slices.Clone(o.val.trail), o.flight == nil || o.joined
		if o.val.preview != nil {
			p := *o.val.preview
			l.Preview = &p
		}
		if len(o.val.trail) > 0 {
			l.Hops = len(o.val.trail) - 1
		}
		if o.val.err != nil {
			l.Err = o.val.err
			if le := (*LinkError)(nil); errors.As(l.Err, &le) && le.Hop > 0 {
				l.Hops = le.Hop
			}
			continue
		}
		l.Long = o.val.long
		if l.Long != "" && l.Long != l.URL {
			l.Replaced, replaced = true, true
			grow += l.Count * max(len(l.Long)-len(l.Short), 0)
		}
	}
	if !replaced {
		return res, nil
	}

	// Second pass: write the text, replacing each occurrence of a link
	// that was expanded.
	var b strings.Builder
	b.Grow(len(text) + grow)
	last := 0
	sc = newScanner(text, e.hosts)
	for m, ok := sc.next(); ok; m, ok = sc.next() {
		buf = m.appendURL(buf[:0], text)
		k, found := index[string(buf)]
		if !found || !res.Links[k].Replaced {
			continue
		}
		b.WriteString(text[last:m.start])
		b.WriteString(res.Links[k].Long)
		last = m.end
	}
	b.WriteString(text[last:])
	res.Text = b.String()
	return res, nil
}

// fetch expands one short link for the cache, within PerLinkTimeout.
func (e *Expander) fetch(ctx context.Context, key string) expansion {
	ctx, cancel := context.WithTimeout(ctx, e.perLink)
	defer cancel()
	return e.follow(ctx, key, e.opt.WithPreview, true)
}

func (e *Expander) ttl(v expansion) time.Duration {
	switch {
	case v.noSlot:
		return 0 // the link was not tried: the next message tries again
	case v.err != nil:
		return max(e.failTTL, 0)
	}
	return e.cacheTTL
}

// Preview fetches rawURL (an http or https address, typically a
// LinkResult.Long), follows its redirects under the same rules and guard as
// expansion, and returns the final page's preview data. A non-HTML page
// gives a Preview with only URL and ContentType set. Previews are not
// cached. The error is a *LinkError wrapping the cause, or an *OptionsError,
// or ErrNilContext.
func (e *Expander) Preview(ctx context.Context, rawURL string) (Preview, error) {
	if ctx == nil {
		return Preview{}, ErrNilContext
	}
	if err := e.init(); err != nil {
		return Preview{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.perLink)
	defer cancel()
	ex := e.follow(ctx, strings.TrimSpace(rawURL), true, false)
	if ex.err != nil {
		return Preview{}, ex.err
	}
	var p Preview
	if ex.preview != nil {
		p = *ex.preview
	}
	p.URL = ex.long
	p.ContentType = ex.trail[len(ex.trail)-1].ContentType
	return p, nil
}

// follow waits for a fetch slot, then chases start, and logs the outcome.
func (e *Expander) follow(ctx context.Context, start string, wantPreview, requireRedirect bool) expansion {
	began := time.Now()
	var ex expansion
	select {
	case e.slots <- struct{}{}:
	default:
		select {
		case e.slots <- struct{}{}:
		case <-ctx.Done():
			ex.err = &LinkError{Short: start, URL: start, Err: fmt.Errorf("%w: waited %v for one of %d fetch slots", ctx.Err(), time.Since(began).Round(time.Millisecond), cap(e.slots))}
			ex.noSlot = true
		}
	}
	if !ex.noSlot {
		func() {
			defer func() { <-e.slots }()
			ex = e.chase(ctx, start, wantPreview, requireRedirect)
		}()
	}
	if e.log != nil {
		e.logFetch(ctx, start, ex, requireRedirect, time.Since(began))
	}
	return ex
}

// logFetch writes the record documented at Options.Logger.
func (e *Expander) logFetch(ctx context.Context, start string, ex expansion, expand bool, d time.Duration) {
	level, msg := slog.LevelDebug, "links: short link expanded"
	switch {
	case ex.err != nil && expand:
		level, msg = slog.LevelWarn, "links: short link not expanded"
	case ex.err != nil:
		level, msg = slog.LevelWarn, "links: preview not fetched"
	case !expand:
		msg = "links: preview fetched"
	}
	if !e.log.Enabled(ctx, level) {
		return
	}
	status := 0
	if len(ex.trail) > 0 {
		status = ex.trail[len(ex.trail)-1].Status
	}
	hops := max(len(ex.trail)-1, 0)
	if le := (*LinkError)(nil); errors.As(ex.err, &le) {
		hops = le.Hop
	}
	attrs := []slog.Attr{slog.String("host", hostOf(start))}
	if ex.err == nil {
		attrs = append(attrs, slog.String("long_host", hostOf(ex.long)))
	}
	attrs = append(attrs,
		slog.Int("hops", hops),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.String("outcome", outcomeOf(ex, expand)),
	)
	e.log.LogAttrs(ctx, level, msg, attrs...)
}

// hostOf returns the host (and port) of an address, without user
// information, path or query; "" if it does not parse.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// outcomeOf names an expansion's outcome for the log.
func outcomeOf(ex expansion, expand bool) string {
	err := ex.err
	switch {
	case err == nil && expand:
		return "expanded"
	case err == nil:
		return "fetched"
	case ex.noSlot:
		return "no_slot"
	case errors.Is(err, ErrNoRedirect):
		return "no_redirect"
	case errors.Is(err, ErrStatus):
		return "status"
	case errors.Is(err, ErrBlockedAddress):
		return "blocked"
	case errors.Is(err, ErrScheme):
		return "scheme"
	case errors.Is(err, ErrLoop):
		return "loop"
	case errors.Is(err, ErrTooManyHops):
		return "too_many_hops"
	case errors.Is(err, ErrBadLocation):
		return "bad_location"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// chase requests start and follows redirects by hand until a final
// response. requireRedirect makes a final response at hop 0 an error (a
// short link that does not redirect has no long address).
func (e *Expander) chase(ctx context.Context, start string, wantPreview, requireRedirect bool) expansion {
	var ex expansion
	cur, err := url.Parse(start)
	if err != nil || len(start) > maxURLLen {
		ex.err = &LinkError{Short: start, URL: start, Err: fmt.Errorf("%w: %q", ErrBadLocation, start)}
		return ex
	}
	visited := make(map[string]bool, 4)
	for hop := 0; ; hop++ {
		fail := func(err error) expansion {
			ex.err = &LinkError{Short: start, Hop: hop, URL: cur.String(), Err: err}
			return ex
		}
		if cur.Scheme != "http" && cur.Scheme != "https" {
			return fail(fmt.Errorf("%w: %q", ErrScheme, cur.Scheme))
		}
		if cur.Host == "" {
			return fail(fmt.Errorf("%w: no host", ErrBadLocation))
		}
		k := *cur
		k.Fragment, k.RawFragment = "", ""
		key := k.String()
		if visited[key] {
			return fail(fmt.Errorf("%w: %s visited twice", ErrLoop, key))
		}
		visited[key] = true

		next, step, info, err := e.request(ctx, cur, wantPreview)
		ex.trail = append(ex.trail, step)
		if err != nil {
			return fail(err)
		}
		if next == nil {
			if hop == 0 && requireRedirect {
				if step.Status < 200 || step.Status >= 300 {
					return fail(&StatusError{URL: cur.String(), Code: step.Status})
				}
				return fail(ErrNoRedirect)
			}
			ex.long = cur.String()
			if wantPreview && isHTML(step.ContentType) && step.Status >= 200 && step.Status < 300 {
				p := info.preview
				p.URL, p.ContentType = ex.long, step.ContentType
				ex.preview = &p
			}
			return ex
		}
		if hop+1 > e.maxHops {
			return fail(fmt.Errorf("%w: more than %d", ErrTooManyHops, e.maxHops))
		}
		cur = next
	}
}

// request makes one GET and decides whether it leads somewhere else.
func (e *Expander) request(ctx context.Context, u *url.URL, wantPreview bool) (next *url.URL, step Hop, info headInfo, err error) {
	step.URL = u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, step.URL, nil)
	if err != nil {
		return nil, step, info, fmt.Errorf("%w: %v", ErrBadLocation, err)
	}
	req.Header.Set("User-Agent", e.ua)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, step, info, netErr(ctx, err)
	}
	var read int64 // bytes of the body consumed below
	defer func() {
		// Read what little is left, within MaxBodyBytes, so that the
		// connection goes back to the pool; a body known to be larger is
		// cut off (closing it closes the connection) rather than read.
		n := min(maxDrain, e.maxBody-read)
		if resp.ContentLength < 0 || resp.ContentLength-read <= n {
			io.CopyN(io.Discard, resp.Body, n)
		}
		resp.Body.Close()
	}()
	step.Status = resp.StatusCode
	ct := resp.Header.Get("Content-Type")
	step.ContentType = mediaType(ct)

	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc := resp.Header.Get("Location")
		if loc == "" {
			if resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusMultipleChoices {
				return nil, step, info, nil
			}
			return nil, step, info, fmt.Errorf("%w: HTTP %d without Location", ErrBadLocation, resp.StatusCode)
		}
		step.Via = ViaLocation
		next, err = resolve(u, loc)
		return next, step, info, err
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, step, info, nil
	}
	if ref := refreshURL(resp.Header.Get("Refresh")); ref != "" {
		step.Via = ViaRefreshHeader
		next, err = resolve(u, ref)
		return next, step, info, err
	}
	if !isHTML(ct) {
		return nil, step, info, nil // not read: PDFs, images, ...
	}
	body := &io.LimitedReader{R: resp.Body, N: e.maxBody}
	info, err = scanHead(body, ct, u, wantPreview)
	read = e.maxBody - body.N
	if cerr := ctx.Err(); cerr != nil {
		return nil, step, info, cerr
	}
	if err != nil {
		return nil, step, info, fmt.Errorf("links: reading %s: %w", step.URL, err)
	}
	if ref := refreshURL(info.refresh); ref != "" {
		step.Via = ViaMetaRefresh
		next, err = resolve(u, ref)
		return next, step, info, err
	}
	return nil, step, info, nil
}

// resolve parses a redirect target relative to the current URL.
func resolve(base *url.URL, ref string) (*url.URL, error) {
	ref = strings.TrimSpace(ref)
	if len(ref) > maxURLLen {
		return nil, fmt.Errorf("%w: %d bytes long", ErrBadLocation, len(ref))
	}
	u, err := base.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadLocation, ref, err)
	}
	u.RawQuery = escapeLoose(u.RawQuery)
	return u, nil
}

// escapeLoose percent-encodes the bytes url.URL.String leaves raw in a
// query but that must not appear in a URL written into a message: spaces,
// controls, quotes, angle brackets and non-ASCII bytes.
func escapeLoose(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if looseEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; looseEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func looseEscape(c byte) bool {
	switch c {
	case ' ', '"', '<', '>', '\\', '^', '`', '{', '|', '}':
		return true
	}
	return c < 0x20 || c >= 0x7f
}

// netErr strips *url.Error (LinkError already names the URL) and makes sure
// a timeout or cancellation matches the context error.
func netErr(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %v", cerr, err)
	}
	return err
}
