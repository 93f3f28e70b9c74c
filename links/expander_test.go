package links

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"
)

func TestExpandRedirects(t *testing.T) {
	t.Parallel()
	final := page("text/html; charset=utf-8", "<html><head><title>Каталог</title></head><body>ok</body></html>")
	ts := newTestServer(t, routes(map[string]http.HandlerFunc{
		"/chain":    redirect(http.StatusFound, "/hop2"),
		"/hop2":     redirect(http.StatusMovedPermanently, "/hop3"),
		"/hop3":     redirect(http.StatusSeeOther, "/hop4"),
		"/hop4":     redirect(http.StatusTemporaryRedirect, "/hop5"),
		"/hop5":     redirect(http.StatusPermanentRedirect, "/final"),
		"/rel":      redirect(http.StatusFound, "sub/page"),
		"/dots/x":   redirect(http.StatusFound, "../final?q=1#frag"),
		"/sub/page": final,
		"/final":    final,
		"/to404":    redirect(http.StatusFound, "/missing"),
		"/space":    redirect(http.StatusFound, "/final?q=a b&c=\"д\""),
		"/pdf":      redirect(http.StatusFound, "/doc.pdf"),
		"/doc.pdf": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/pdf")
			w.Write(bytes.Repeat([]byte("%PDF"), 1<<16))
		},
		"/img": redirect(http.StatusFound, "/i.png"),
		"/i.png": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte("\x89PNG"))
		},
	}))
	base := ts.URL
	tests := map[string]struct {
		path     string
		wantLong string
		wantHops int
		wantVia  []Via
	}{
		"302 301 303 307 308 chain": {"/chain", base + "/final", 5, []Via{ViaLocation, ViaLocation, ViaLocation, ViaLocation, ViaLocation, ""}},
		"relative location":         {"/rel", base + "/sub/page", 1, []Via{ViaLocation, ""}},
		"dot-dot location":          {"/dots/x", base + "/final?q=1#frag", 1, []Via{ViaLocation, ""}},
		"non-HTML target (PDF)":     {"/pdf", base + "/doc.pdf", 1, []Via{ViaLocation, ""}},
		"non-HTML target (image)":   {"/img", base + "/i.png", 1, []Via{ViaLocation, ""}},
		"error status after a hop":  {"/to404", base + "/missing", 1, []Via{ViaLocation, ""}},
		"raw query escaped":         {"/space", base + "/final?q=a%20b&c=%22%D0%B4%22", 1, []Via{ViaLocation, ""}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := NewExpander(testOptions())
			text := "Смотрите «" + base + tc.path + "», спасибо!"
			res := mustExpand(t, e, text)
			if len(res.Links) != 1 {
				t.Fatalf("Links = %+v; want 1", res.Links)
			}
			l := res.Links[0]
			if l.Err != nil || !l.Replaced {
				t.Fatalf("link = %+v; want replaced without error", l)
			}
			if l.Long != tc.wantLong || l.Hops != tc.wantHops {
				t.Errorf("Long, Hops = %q, %d; want %q, %d", l.Long, l.Hops, tc.wantLong, tc.wantHops)
			}
			var vias []Via
			for _, h := range l.Trail {
				vias = append(vias, h.Via)
			}
			if fmt.Sprint(vias) != fmt.Sprint(tc.wantVia) {
				t.Errorf("Trail vias = %v; want %v", vias, tc.wantVia)
			}
			if want := "Смотрите «" + tc.wantLong + "», спасибо!"; res.Text != want {
				t.Errorf("Text = %q; want %q", res.Text, want)
			}
		})
	}
}

func TestExpandFailuresKeepShortLink(t *testing.T) {
	t.Parallel()
	hops := map[string]http.HandlerFunc{
		"/loop1":   redirect(http.StatusFound, "/loop2"),
		"/loop2":   redirect(http.StatusFound, "/loop1"),
		"/self":    redirect(http.StatusFound, "/self#again"),
		"/file":    redirect(http.StatusFound, "file:///etc/passwd"),
		"/js":      redirect(http.StatusFound, "javascript:alert(1)"),
		"/data":    redirect(http.StatusFound, "data:text/html,<h1>x</h1>"),
		"/tg":      redirect(http.StatusFound, "tg://resolve?domain=shop"),
		"/nohost":  redirect(http.StatusFound, "http:///path"),
		"/noloc":   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) },
		"/page":    page("text/html", "<html><head><title>amo</title></head><body></body></html>"),
		"/gone":    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusGone) },
		"/private": redirect(http.StatusFound, "http://10.0.0.1/admin"),
		"/meta":    redirect(http.StatusFound, "http://169.254.169.254/latest/meta-data/"),
		"/v6":      redirect(http.StatusFound, "http://[::1]:1/"),
		"/mapped":  redirect(http.StatusFound, "http://[::ffff:127.0.0.2]:1/"),
		"/zero":    redirect(http.StatusFound, "http://0.0.0.0:1/"),
		"/lo2":     redirect(http.StatusFound, "http://127.0.0.2:1/"),
		"/cgnat":   redirect(http.StatusFound, "http://100.100.100.200/latest/meta-data/"),
		"/ec2v6":   redirect(http.StatusFound, "http://[fd00:ec2::254]/"),
		"/longloc": redirect(http.StatusFound, "/"+strings.Repeat("a", 9000)),
	}
	for i := 0; i < 30; i++ {
		hops[fmt.Sprintf("/h%d", i)] = redirect(http.StatusFound, fmt.Sprintf("/h%d", i+1))
	}
	ts := newTestServer(t, routes(hops))
	tests := map[string]struct {
		path    string
		wantErr error
		wantHop int
	}{
		"loop":                        {"/loop1", ErrLoop, 2},
		"self loop ignoring fragment": {"/self", ErrLoop, 1},
		"file scheme":                 {"/file", ErrScheme, 1},
		"javascript scheme":           {"/js", ErrScheme, 1},
		"data scheme":                 {"/data", ErrScheme, 1},
		"tg scheme":                   {"/tg", ErrScheme, 1},
		"location without host":       {"/nohost", ErrBadLocation, 1},
		"3xx without location":        {"/noloc", ErrBadLocation, 0},
		"location too long":           {"/longloc", ErrBadLocation, 0},
		"page instead of redirect":    {"/page", ErrNoRedirect, 0},
		"error status":                {"/gone", ErrStatus, 0},
		"too many hops (default 5)":   {"/h0", ErrTooManyHops, 5},
		"redirect to private":         {"/private", ErrBlockedAddress, 1},
		"redirect to metadata":        {"/meta", ErrBlockedAddress, 1},
		"redirect to [::1]":           {"/v6", ErrBlockedAddress, 1},
		"redirect to mapped loopback": {"/mapped", ErrBlockedAddress, 1},
		"redirect to 0.0.0.0":         {"/zero", ErrBlockedAddress, 1},
		"redirect to 127.0.0.2":       {"/lo2", ErrBlockedAddress, 1},
		"redirect to CGNAT metadata":  {"/cgnat", ErrBlockedAddress, 1},
		"redirect to fd00:ec2::254":   {"/ec2v6", ErrBlockedAddress, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := NewExpander(testOptions())
			text := "Ссылка: (" + ts.URL + tc.path + ")."
			res := mustExpand(t, e, text)
			if res.Text != text {
				t.Errorf("Text = %q; want unchanged %q", res.Text, text)
			}
			if len(res.Links) != 1 {
				t.Fatalf("Links = %+v; want 1", res.Links)
			}
			l := res.Links[0]
			if !errors.Is(l.Err, tc.wantErr) {
				t.Fatalf("Err = %v; want errors.Is %v", l.Err, tc.wantErr)
			}
			var le *LinkError
			if !errors.As(l.Err, &le) {
				t.Fatalf("Err = %T; want *LinkError", l.Err)
			}
			if le.Hop != tc.wantHop || l.Hops != tc.wantHop {
				t.Errorf("LinkError.Hop, Hops = %d, %d; want %d", le.Hop, l.Hops, tc.wantHop)
			}
			if l.Replaced || l.Long != "" {
				t.Errorf("Replaced, Long = %v, %q; want false, \"\"", l.Replaced, l.Long)
			}
		})
	}
}

func TestExpandTwentyHops(t *testing.T) {
	t.Parallel()
	hops := map[string]http.HandlerFunc{"/h20": page("text/plain", "end")}
	for i := 0; i < 20; i++ {
		hops[fmt.Sprintf("/h%d", i)] = redirect(http.StatusFound, fmt.Sprintf("/h%d", i+1))
	}
	ts := newTestServer(t, routes(hops))
	for _, tc := range []struct {
		maxHops int
		wantErr error
	}{
		{20, nil},
		{19, ErrTooManyHops},
		{0, ErrTooManyHops}, // default 5
	} {
		t.Run(fmt.Sprint(tc.maxHops), func(t *testing.T) {
			opt := testOptions()
			opt.MaxHops = tc.maxHops
			res := mustExpand(t, NewExpander(opt), ts.URL+"/h0")
			l := res.Links[0]
			if !errors.Is(l.Err, tc.wantErr) {
				t.Fatalf("MaxHops %d: Err = %v; want %v", tc.maxHops, l.Err, tc.wantErr)
			}
			if tc.wantErr == nil && (l.Hops != 20 || l.Long != ts.URL+"/h20" || res.Text != ts.URL+"/h20") {
				t.Errorf("MaxHops 20: Hops, Long, Text = %d, %q, %q; want 20 hops to /h20", l.Hops, l.Long, res.Text)
			}
		})
	}
}

func TestExpandRefresh(t *testing.T) {
	t.Parallel()
	final := page("text/html", "<title>final</title>")
	ts := newTestServer(t, routes(map[string]http.HandlerFunc{
		"/meta":      page("text/html", `<html><head><META HTTP-EQUIV="Refresh" CONTENT="0; URL='/final'"></head><body></body></html>`),
		"/meta-rel":  page("text/html", `<meta http-equiv="refresh" content="5, url=final">`),
		"/meta-bare": page("text/html", `<meta http-equiv="refresh" content="0;/final">`),
		"/header": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Refresh", "0; url=/final")
			w.Header().Set("Content-Type", "text/html")
		},
		"/after-body": page("text/html", `<html><head></head><body><meta http-equiv="refresh" content="0; url=/final"></body></html>`),
		"/reload":     page("text/html", `<meta http-equiv="refresh" content="30">`),
		"/meta-js":    page("text/html", `<meta http-equiv="refresh" content="0; url=javascript:alert(1)">`),
		"/cp1251": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			b, _ := charmap.Windows1251.NewEncoder().String(`<meta charset="windows-1251"><title>Переход</title><meta http-equiv="refresh" content="0; url=/final?q=да">`)
			io.WriteString(w, b)
		},
		"/final": final,
	}))
	tests := map[string]struct {
		path    string
		want    string
		wantVia Via
		wantErr error
	}{
		"meta refresh upper case, quoted": {path: "/meta", want: ts.URL + "/final", wantVia: ViaMetaRefresh},
		"meta refresh comma, relative":    {path: "/meta-rel", want: ts.URL + "/final", wantVia: ViaMetaRefresh},
		"meta refresh without url=":       {path: "/meta-bare", want: ts.URL + "/final", wantVia: ViaMetaRefresh},
		"Refresh header":                  {path: "/header", want: ts.URL + "/final", wantVia: ViaRefreshHeader},
		"windows-1251 page":               {path: "/cp1251", want: ts.URL + "/final?q=%D0%B4%D0%B0", wantVia: ViaMetaRefresh},
		"refresh after body ignored":      {path: "/after-body", wantErr: ErrNoRedirect},
		"reload without url":              {path: "/reload", wantErr: ErrNoRedirect},
		"refresh to javascript":           {path: "/meta-js", wantErr: ErrScheme},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := mustExpand(t, NewExpander(testOptions()), ts.URL+tc.path)
			l := res.Links[0]
			if !errors.Is(l.Err, tc.wantErr) {
				t.Fatalf("Err = %v; want %v", l.Err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if l.Long != tc.want || l.Trail[0].Via != tc.wantVia {
				t.Errorf("Long, Via = %q, %q; want %q, %q", l.Long, l.Trail[0].Via, tc.want, tc.wantVia)
			}
		})
	}
}

// countingBody is a response body that counts the bytes read from it.
type countingBody struct {
	r    io.Reader
	mu   sync.Mutex
	read int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.read += int64(n)
	c.mu.Unlock()
	return n, err
}
func (c *countingBody) Close() error { return nil }

// endless yields '<meta name="x" content="y">' forever.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	const unit = `<meta name="x" content="y">`
	for i := range p {
		p[i] = unit[e.n%int64(len(unit))]
		e.n++
	}
	return len(p), nil
}

func TestExpandBigBody(t *testing.T) {
	t.Parallel()
	t.Run("httptest 10 MB head", func(t *testing.T) {
		t.Parallel()
		// 10 MB of head with a refresh at the very end: never reached.
		big := "<html><head>" + strings.Repeat(`<meta name="x" content="y">`, 10<<20/27) +
			`<meta http-equiv="refresh" content="0; url=/final"></head><body></body></html>`
		ts := newTestServer(t, routes(map[string]http.HandlerFunc{
			"/short": redirect(http.StatusFound, "/big"),
			"/big":   page("text/html", big),
			"/final": page("text/plain", "x"),
		}))
		res := mustExpand(t, NewExpander(testOptions()), ts.URL+"/short")
		l := res.Links[0]
		if l.Err != nil || l.Long != ts.URL+"/big" {
			t.Errorf("link = %+v; want expanded to /big (refresh beyond the read limit ignored)", l)
		}
		if ts.hit("/final") != 0 {
			t.Errorf("/final fetched; the read limit was not applied")
		}
	})
	t.Run("bytes read bounded", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []int64{0, 1000, 256 << 10} {
			mt := newMemTransport()
			body := &countingBody{r: &endless{}}
			mt.handle("https://amo.sh/1", memRedirect("https://shop.example/"))
			mt.handle("https://shop.example/", func(r *http.Request) *http.Response {
				resp := memResponse(r, 200, http.Header{"Content-Type": {"text/html"}}, "")
				resp.Body = body
				return resp
			})
			e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}, MaxBodyBytes: limit})
			res := mustExpand(t, e, "amo.sh/1")
			if res.Text != "https://shop.example/" {
				t.Errorf("Text = %q", res.Text)
			}
			want := limit
			if want == 0 {
				want = DefaultMaxBodyBytes
			}
			if body.read > want {
				t.Errorf("MaxBodyBytes %d: read %d bytes; want ≤ %d", limit, body.read, want)
			}
			if body.read < want/2 {
				t.Errorf("MaxBodyBytes %d: read only %d bytes; the test body should have been read up to the limit", limit, body.read)
			}
		}
	})
}

func TestExpandSlowServer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	ts := newTestServer(t, routes(map[string]http.HandlerFunc{
		"/slow": func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			select {
			case <-release:
				redirect(http.StatusFound, "/final")(w, r)
			case <-r.Context().Done():
			}
		},
		"/final": page("text/plain", "ok"),
	}))
	t.Cleanup(func() { close(release) })

	t.Run("per-link budget", func(t *testing.T) {
		opt := testOptions()
		opt.PerLinkTimeout = 100 * time.Millisecond
		opt.FailureTTL = -1
		start := time.Now()
		res := mustExpand(t, NewExpander(opt), "a "+ts.URL+"/slow b")
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("ExpandText took %v with a 100ms per-link budget", el)
		}
		if l := res.Links[0]; !errors.Is(l.Err, context.DeadlineExceeded) || res.Text != "a "+ts.URL+"/slow b" {
			t.Errorf("Err, Text = %v, %q; want DeadlineExceeded, text unchanged", l.Err, res.Text)
		}
		<-entered
	})
	t.Run("per-message budget, fetch finishes in background", func(t *testing.T) {
		opt := testOptions()
		opt.PerMessageTimeout = 50 * time.Millisecond
		opt.PerLinkTimeout = time.Minute
		e := NewExpander(opt)
		text := ts.URL + "/slow?m=1"
		res := mustExpand(t, e, text)
		if l := res.Links[0]; !errors.Is(l.Err, context.DeadlineExceeded) || res.Text != text {
			t.Fatalf("Err, Text = %v, %q; want DeadlineExceeded, text unchanged", l.Err, res.Text)
		}
		<-entered
		release <- struct{}{} // not closed: lets exactly the pending request through
		// The next message gets the background fetch's result (joined or
		// cached). A message that joins the fetch still waits at most its
		// own 50ms budget, so on a loaded machine a few may come back
		// before the fetch ends; none of them fetches again.
		for range 200 {
			res = mustExpand(t, e, text)
			if l := res.Links[0]; !errors.Is(l.Err, context.DeadlineExceeded) || !l.Cached {
				break
			}
		}
		if l := res.Links[0]; l.Err != nil || l.Long != ts.URL+"/final" || !l.Cached {
			t.Errorf("second message: link = %+v; want the background result, Cached", l)
		}
		if n := ts.hit("/slow"); n != 2 { // one per subtest
			t.Errorf("/slow hit %d times; want 2", n)
		}
	})
}

func TestGuardRefusesWithoutEscapeHatch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, page("text/plain", "secret"))
	port := ts.URL[strings.LastIndexByte(ts.URL, ':')+1:]
	opt := testOptions()
	opt.AllowAddrs = nil // hatch closed
	opt.Hosts = []string{"127.0.0.1", "localhost"}
	e := NewExpander(opt)
	for _, link := range []string{ts.URL + "/x", "http://localhost:" + port + "/x"} {
		res := mustExpand(t, e, link)
		l := res.Links[0]
		var be *BlockedAddressError
		if !errors.Is(l.Err, ErrBlockedAddress) || !errors.As(l.Err, &be) {
			t.Errorf("%s: Err = %v; want *BlockedAddressError", link, l.Err)
			continue
		}
		if !be.Addr.IsLoopback() {
			t.Errorf("%s: blocked address %v; want a loopback address", link, be.Addr)
		}
	}
	if n := ts.hit("/x"); n != 0 {
		t.Errorf("server reached %d times; want 0", n)
	}
	if _, err := e.Preview(context.Background(), ts.URL+"/x"); !errors.Is(err, ErrBlockedAddress) {
		t.Errorf("Preview err = %v; want ErrBlockedAddress", err)
	}
}

func TestExpandConcurrentOneFetch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, routes(map[string]http.HandlerFunc{
		"/4823":  redirect(http.StatusFound, "/final"),
		"/final": page("text/html", "<title>x</title>"),
	}))
	e := NewExpander(testOptions())
	const n = 64
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			text := fmt.Sprintf("Сообщение %d: %s/4823 и ещё раз (%s/4823).", i, ts.URL, ts.URL)
			results[i], errs[i] = e.ExpandText(context.Background(), text)
		})
	}
	wg.Wait()
	for i, res := range results {
		want := fmt.Sprintf("Сообщение %d: %s/final и ещё раз (%s/final).", i, ts.URL, ts.URL)
		if errs[i] != nil || res.Text != want {
			t.Errorf("message %d: %q, %v; want %q", i, res.Text, errs[i], want)
		}
	}
	if a, b := ts.hit("/4823"), ts.hit("/final"); a != 1 || b != 1 {
		t.Errorf("hits /4823=%d /final=%d; want 1 each", a, b)
	}
	fetched := 0
	for i, res := range results {
		if len(res.Links) != 1 || res.Links[0].Count != 2 {
			t.Fatalf("message %d: Links = %+v; want one link occurring twice", i, res.Links)
		}
		if !res.Links[0].Cached {
			fetched++
		}
	}
	if fetched != 1 {
		t.Errorf("%d link results not Cached; want 1 (the fetching message)", fetched)
	}
}

func TestExpandCacheTTLAndLRU(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	for _, p := range []string{"1", "2", "3"} {
		mt.handle("https://amo.sh/"+p, memRedirect("https://shop.example/"+p))
		mt.handle("https://shop.example/"+p, memPage("<title>p</title>"))
	}
	mt.handle("https://amo.sh/bad", memRedirect("file:///etc/passwd"))
	clock := newFakeClock()
	e := NewExpander(Options{
		HTTPClient: &http.Client{Transport: mt},
		Now:        clock.Now,
		CacheSize:  2,
		CacheTTL:   time.Hour,
		FailureTTL: time.Minute,
	})
	steps := []struct {
		advance time.Duration
		text    string
		want    int // requests to the short link so far
		cached  bool
	}{
		{0, "amo.sh/1", 1, false},
		{59 * time.Minute, "amo.sh/1", 1, true},
		{time.Minute, "amo.sh/1", 2, false}, // TTL reached
		{0, "amo.sh/2", 1, false},
		{0, "amo.sh/3", 1, false}, // evicts /1 (LRU, size 2)
		{0, "amo.sh/1", 3, false},
		{0, "amo.sh/3", 1, true},
		{0, "amo.sh/bad", 1, false},
		{30 * time.Second, "amo.sh/bad", 1, true}, // failure cached
		{30 * time.Second, "amo.sh/bad", 2, false},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		res := mustExpand(t, e, s.text)
		if got := mt.count("https://" + s.text); got != s.want {
			t.Errorf("step %d (%s): %d requests; want %d", i, s.text, got, s.want)
		}
		if res.Links[0].Cached != s.cached {
			t.Errorf("step %d (%s): Cached = %v; want %v", i, s.text, res.Links[0].Cached, s.cached)
		}
	}
	if n := e.cache.len(); n > 2 {
		t.Errorf("cache holds %d entries; want ≤ 2", n)
	}
}

func TestExpandNoCacheNegativeFailureTTL(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	mt.handle("https://amo.sh/1", memRedirect("https://shop.example/1"))
	mt.handle("https://amo.sh/bad", memRedirect("javascript:x"))
	e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}, CacheSize: -1, FailureTTL: -1})
	for range 3 {
		mustExpand(t, e, "amo.sh/1 amo.sh/bad")
	}
	if a, b := mt.count("https://amo.sh/1"), mt.count("https://amo.sh/bad"); a != 3 || b != 3 {
		t.Errorf("requests = %d, %d; want 3, 3 with the cache disabled", a, b)
	}
}

func TestExpandTextShapes(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	mt.handle("https://amo.sh/4823", memRedirect("https://kruglosutka.ru/catalog"))
	mt.handle("https://amo.sh/K/YNTCBS/YJMC10", memRedirect("https://kruglosutka.ru/a?b=1"))
	mt.handle("https://kruglosutka.ru/catalog", memPage("<title>Каталог</title>"))
	mt.handle("https://kruglosutka.ru/a", memPage(""))
	e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}})
	tests := map[string]struct{ in, want string }{
		"no link":             {"Привет! Как дела?", "Привет! Как дела?"},
		"empty":               {"", ""},
		"one":                 {"Каталог: amo.sh/4823.", "Каталог: https://kruglosutka.ru/catalog."},
		"guillemets":          {"«amo.sh/4823»", "«https://kruglosutka.ru/catalog»"},
		"two kinds":           {"(amo.sh/4823) и https://amo.sh/K/YNTCBS/YJMC10!", "(https://kruglosutka.ru/catalog) и https://kruglosutka.ru/a?b=1!"},
		"duplicate":           {"amo.sh/4823 amo.sh/4823", "https://kruglosutka.ru/catalog https://kruglosutka.ru/catalog"},
		"mixed fail":          {"amo.sh/404 и amo.sh/4823", "amo.sh/404 и https://kruglosutka.ru/catalog"},
		"invalid utf8 around": {"\xff amo.sh/4823 \xfe", "\xff https://kruglosutka.ru/catalog \xfe"},
	}
	t.Cleanup(func() { // after the parallel subtests
		if n := mt.count("https://amo.sh/4823"); n != 1 {
			t.Errorf("amo.sh/4823 requested %d times; want 1", n)
		}
		if n := mt.count("https://amo.sh/404"); n != 1 {
			t.Errorf("amo.sh/404 requested %d times; want 1 (failure cached)", n)
		}
	})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := mustExpand(t, e, tc.in)
			if res.Text != tc.want {
				t.Errorf("ExpandText(%q) = %q; want %q", tc.in, res.Text, tc.want)
			}
		})
	}
}

func TestExpandTooManyLinks(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	for i := range 5 {
		mt.handle(fmt.Sprintf("https://amo.sh/%d", i), memRedirect(fmt.Sprintf("https://x.example/%d", i)))
	}
	e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}, MaxLinksPerMessage: 3})
	// Repeats count once: amo.sh/0 twice (two spellings) still leaves room
	// for amo.sh/1 and /2; /3 and /4 are beyond the limit.
	res := mustExpand(t, e, "amo.sh/0 amo.sh/1 https://amo.sh/0 amo.sh/2 amo.sh/3 amo.sh/4 amo.sh/3")
	want := "https://x.example/0 https://x.example/1 https://x.example/0 https://x.example/2 amo.sh/3 amo.sh/4 amo.sh/3"
	if res.Text != want {
		t.Errorf("Text = %q; want %q", res.Text, want)
	}
	var got []string
	for _, l := range res.Links {
		got = append(got, fmt.Sprintf("%s×%d", l.URL, l.Count))
	}
	if w := []string{"https://amo.sh/0×2", "https://amo.sh/1×1", "https://amo.sh/2×1"}; fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("Links = %v; want %v", got, w)
	}
	if res.Skipped != 3 {
		t.Errorf("Skipped = %d; want 3 (amo.sh/3 twice, amo.sh/4)", res.Skipped)
	}
	for i, want := range []int{1, 1, 1, 0, 0} {
		if got := mt.count(fmt.Sprintf("https://amo.sh/%d", i)); got != want {
			t.Errorf("amo.sh/%d requested %d times; want %d", i, got, want)
		}
	}
}

func TestExpandContextAndOptionErrors(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	mt.handle("https://amo.sh/1", memRedirect("https://x.example/1"))
	client := &http.Client{Transport: mt}
	text := "go amo.sh/1"

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	e := NewExpander(Options{HTTPClient: client})
	res, err := e.ExpandText(cancelled, text)
	if !errors.Is(err, context.Canceled) || res.Text != text || !errors.Is(res.Links[0].Err, context.Canceled) {
		t.Errorf("cancelled ctx: %q, %v, %v; want text unchanged and context.Canceled", res.Text, err, res.Links[0].Err)
	}
	//lint:ignore SA1012 a nil context is the bad input under test
	if res, err := e.ExpandText(nil, text); !errors.Is(err, ErrNilContext) || res.Text != text {
		t.Errorf("nil ctx: %q, %v; want ErrNilContext", res.Text, err)
	}
	//lint:ignore SA1012 a nil context is the bad input under test
	if _, err := e.Preview(nil, "https://x.example/1"); !errors.Is(err, ErrNilContext) {
		t.Errorf("Preview(nil ctx) err = %v; want ErrNilContext", err)
	}
	if mt.total.Load() != 0 {
		t.Errorf("%d requests made with a done context; want 0", mt.total.Load())
	}

	bad := map[string]Options{
		"Hosts[1]":             {Hosts: []string{"amo.sh", "amo.sh/x"}},
		"Hosts[0]":             {Hosts: []string{""}},
		"MaxHops":              {MaxHops: -1},
		"PerLinkTimeout":       {PerLinkTimeout: -time.Second},
		"PerMessageTimeout":    {PerMessageTimeout: -time.Second},
		"MaxBodyBytes":         {MaxBodyBytes: -1},
		"MaxLinksPerMessage":   {MaxLinksPerMessage: -1},
		"MaxConcurrentFetches": {MaxConcurrentFetches: -1},
		"CacheTTL":             {CacheTTL: -1},
		"AllowAddrs[0]":        {AllowAddrs: []netip.Prefix{{}}},
	}
	for field, opt := range bad {
		var oe *OptionsError
		if err := opt.Validate(); !errors.As(err, &oe) || oe.Field != field || !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Validate() = %v; want *OptionsError for %s", err, field)
		}
		opt.HTTPClient = client
		res, err := NewExpander(opt).ExpandText(context.Background(), text)
		if !errors.Is(err, ErrInvalidOptions) || res.Text != text {
			t.Errorf("%s: ExpandText = %q, %v; want text unchanged, ErrInvalidOptions", field, res.Text, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: Validate() = %v", err)
	}
	var nilE *Expander
	if _, err := nilE.ExpandText(context.Background(), text); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("nil *Expander: err = %v; want ErrInvalidOptions", err)
	}
}

func TestZeroExpanderUsesDefaults(t *testing.T) {
	t.Parallel()
	var e Expander // guarded default client, amo.sh only
	res := mustExpand(t, &e, "http://127.0.0.1:1/x без ссылок")
	if len(res.Links) != 0 {
		t.Errorf("zero Expander matched a non-amo.sh link: %+v", res.Links)
	}
	if e.maxHops != DefaultMaxHops || e.perLink != DefaultPerLinkTimeout || e.maxBody != DefaultMaxBodyBytes {
		t.Errorf("zero Expander limits = %d, %v, %d; want defaults", e.maxHops, e.perLink, e.maxBody)
	}
	if tr, ok := e.client.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Errorf("default transport %T must be an *http.Transport without proxy", e.client.Transport)
	}
}

func TestInjectedClientNotMutated(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	mt.handle("https://amo.sh/1", memRedirect("https://x.example/1"))
	mt.handle("https://x.example/1", memRedirect("https://x.example/2"))
	client := &http.Client{Transport: mt} // nil CheckRedirect: would follow 10 on its own
	e := NewExpander(Options{HTTPClient: client})
	res := mustExpand(t, e, "amo.sh/1")
	if client.CheckRedirect != nil {
		t.Error("the injected client's CheckRedirect was modified")
	}
	if l := res.Links[0]; l.Long != "https://x.example/2" || l.Hops != 2 {
		t.Errorf("Long, Hops = %q, %d; want the hand-followed chain", l.Long, l.Hops)
	}
}
