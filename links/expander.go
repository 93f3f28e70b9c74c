package links

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	DefaultMaxHops            = 5
	DefaultPerLinkTimeout     = 5 * time.Second
	DefaultPerMessageTimeout  = 8 * time.Second
	DefaultMaxBodyBytes       = defaultMaxBody
	DefaultMaxLinksPerMessage = 20
	DefaultCacheSize          = 1024
	DefaultCacheTTL           = 24 * time.Hour
	DefaultFailureTTL         = time.Minute
	DefaultUserAgent          = "crmbridge-links/1.0"
)

const (
	defaultMaxBody = 64 << 10
	maxURLLen      = 8 << 10
	maxHopsLimit   = 100
)

// Options configure an [Expander]. The zero value means the documented
// defaults: amo.sh only, 5 redirects, 5 s per link, 8 s per message, 64 KiB
// read per response, 20 links per message, a 1024-entry cache keeping
// successes for 24 h and failures for 1 min, no preview, and the guarded
// default HTTP client. Negative durations and counts are invalid unless
// stated otherwise.
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
	// PerLinkTimeout bounds the whole expansion of one link, all hops
	// included. 0: 5 s.
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
	// message; the rest are reported with ErrTooManyLinks. 0: 20.
	MaxLinksPerMessage int
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
	// Now returns the current time, used for cache expiry only. nil: time.Now.
	Now func() time.Time
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
	e.cache = newCache(or(o.CacheSize, DefaultCacheSize))
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
	URL         string
	Status      int    // HTTP status; 0 if no response was received
	ContentType string // media type of the response, "" if none
	Via         Via    // how the next hop was found; "" for the last request
}

// LinkResult reports what happened to one short link of a message.
type LinkResult struct {
	// Start and End are the byte offsets of the link in the ORIGINAL text.
	Start, End int
	// Short is the link as written; URL its normalised form (the cache key).
	Short, URL string
	// Long is the address the link leads to ("" if it was not expanded).
	Long string
	// Replaced is true when Long was written into Result.Text in place of
	// Short; false when expansion failed (Err != nil).
	Replaced bool
	// Err says why the link was not expanded: a *LinkError wrapping one of
	// the package sentinels or a context error; nil when Replaced.
	Err error
	// Hops is the number of redirects followed; Trail lists every request.
	Hops  int
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
	// Text is the message text with every expanded short link replaced by
	// its long address; every other byte is unchanged. It is always usable,
	// even when ExpandText returns an error (then it is the input text).
	Text string
	// Links has one entry per short link occurrence, in text order.
	Links []LinkResult
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
// A text without short links costs no allocation besides the Result and
// makes no request.
func (e *Expander) ExpandText(ctx context.Context, text string) (Result, error) {
	res := Result{Text: text}
	if ctx == nil {
		return res, ErrNilContext
	}
	if err := e.init(); err != nil {
		return res, err
	}
	spans := Find(text, e.hosts)
	if len(spans) == 0 {
		return res, nil
	}
	res.Links = make([]LinkResult, len(spans))
	for i, s := range spans {
		res.Links[i] = LinkResult{Start: s.Start, End: s.End, Short: s.Text, URL: s.URL}
	}
	if err := ctx.Err(); err != nil {
		for i := range res.Links {
			res.Links[i].Err = &LinkError{Short: res.Links[i].URL, Err: err}
		}
		return res, err
	}
	// One expansion per distinct link: cached ones first, the rest
	// concurrently under the message budget.
	index := make(map[string]int, len(spans))
	var keys []string
	for _, s := range spans {
		if _, ok := index[s.URL]; !ok {
			index[s.URL] = len(keys)
			keys = append(keys, s.URL)
		}
	}
	type outcome struct {
		val    expansion
		shared bool
		done   bool
	}
	outs := make([]outcome, len(keys))
	pending := 0
	now := e.now()
	for k, key := range keys {
		if k >= e.maxLinks {
			outs[k] = outcome{val: expansion{err: &LinkError{Short: key, Err: fmt.Errorf("%w: limit is %d", ErrTooManyLinks, e.maxLinks)}}, done: true}
		} else if v, ok := e.cache.get(key, now); ok {
			outs[k] = outcome{val: v, shared: true, done: true}
		} else {
			pending++
		}
	}
	if pending > 0 {
		mctx, cancel := context.WithTimeout(ctx, e.perMessage)
		var wg sync.WaitGroup
		for k, key := range keys {
			if outs[k].done {
				continue
			}
			if pending == 1 {
				v, sh := e.expandOne(mctx, key)
				outs[k] = outcome{val: v, shared: sh}
				break
			}
			wg.Go(func() {
				v, sh := e.expandOne(mctx, key)
				outs[k] = outcome{val: v, shared: sh}
			})
		}
		wg.Wait()
		cancel()
	}

	var b strings.Builder
	last := 0
	for i := range res.Links {
		l := &res.Links[i]
		o := outs[index[l.URL]]
		l.Trail, l.Cached = slices.Clone(o.val.trail), o.shared
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
		if l.Long == "" || l.Long == l.URL {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(text) + 64)
		}
		b.WriteString(text[last:l.Start])
		b.WriteString(l.Long)
		last = l.End
		l.Replaced = true
	}
	if last > 0 {
		b.WriteString(text[last:])
		res.Text = b.String()
	}
	return res, nil
}

// expandOne returns the outcome for one normalised short link, from the
// cache, a fetch in flight, or a new fetch.
func (e *Expander) expandOne(ctx context.Context, key string) (expansion, bool) {
	v, shared, err := e.cache.do(ctx, key, e.now, e.ttl, func() expansion {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.perLink)
		defer cancel()
		return e.follow(fctx, key, e.opt.WithPreview, true)
	})
	if err != nil {
		return expansion{err: &LinkError{Short: key, URL: key, Err: err}}, shared
	}
	return v, shared
}

func (e *Expander) ttl(v expansion) time.Duration {
	if v.err != nil {
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

// follow requests start and follows redirects by hand until a final
// response. requireRedirect makes a final response at hop 0 an error (a
// short link that does not redirect has no long address).
func (e *Expander) follow(ctx context.Context, start string, wantPreview, requireRedirect bool) expansion {
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
	defer resp.Body.Close()
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
	info, err = scanHead(io.LimitReader(resp.Body, e.maxBody), ct, u, wantPreview)
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
