package links

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestConnectionReuse checks that sequential expansions share one
// keep-alive connection: redirect bodies (http.Redirect writes a short HTML
// body) and the unread rest of small final pages are drained before the
// body is closed, so the connection returns to the pool.
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	tail := strings.Repeat("<p>каталог</p>", 100) // 2.1 KB after </head>: drained, not parsed
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/s/") {
			http.Redirect(w, r, "/final"+strings.TrimPrefix(r.URL.Path, "/s"), http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html><head><title>x</title></head><body>"+tail+"</body></html>")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	e := NewExpander(testOptions())
	const n = 20
	for i := range n {
		res := mustExpand(t, e, fmt.Sprintf("%s/s/%d", srv.URL, i))
		if l := res.Links[0]; !l.Replaced || l.Cached {
			t.Fatalf("expansion %d: %+v; want a fresh fetch, replaced", i, l)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d expansions (2 requests each) opened %d connections; want 1 (keep-alive reuse)", n, got)
	}
}

// TestConcurrentFetchCap checks on a blocking httptest server that no more
// than MaxConcurrentFetches requests are in flight at once, however many
// messages and links arrive together. The server holds every request until
// the test releases it; the test releases one request per arrival it has
// seen beyond the cap, so that a missing cap would show up as an arrival
// while the cap's worth of requests are still held.
func TestConcurrentFetchCap(t *testing.T) {
	t.Parallel()
	const (
		limit    = 4
		messages = 10
		perMsg   = 5
	)
	var (
		mu       sync.Mutex
		inflight int
		peak     int
	)
	arrived := make(chan struct{}, messages*perMsg)
	release := make(chan struct{})
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" { // the second hop, within the link's slot
			io.WriteString(w, "final")
			return
		}
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		mu.Unlock()
		arrived <- struct{}{}
		<-release
		mu.Lock()
		inflight--
		mu.Unlock()
		http.Redirect(w, r, "/final", http.StatusFound)
	})
	opt := testOptions()
	opt.MaxConcurrentFetches = limit
	opt.PerLinkTimeout, opt.PerMessageTimeout = time.Minute, time.Minute
	e := NewExpander(opt)

	var wg sync.WaitGroup
	results := make([]Result, messages)
	for m := range messages {
		var parts []string
		for l := range perMsg {
			parts = append(parts, fmt.Sprintf("%s/s/%d-%d", srv.URL, m, l))
		}
		wg.Go(func() { results[m] = mustExpand(t, e, strings.Join(parts, " ")) })
	}
	for range limit {
		<-arrived
	}
	for range messages*perMsg - limit {
		release <- struct{}{}
		<-arrived
	}
	for range limit {
		release <- struct{}{}
	}
	wg.Wait()
	if peak != limit {
		t.Errorf("peak in-flight requests = %d; want exactly the cap %d", peak, limit)
	}
	for m, res := range results {
		for _, l := range res.Links {
			if !l.Replaced {
				t.Errorf("message %d: %s not expanded: %v", m, l.Short, l.Err)
			}
		}
	}
}

// TestConcurrentFetchCapExact counts, in a synctest bubble, the requests
// in flight once every goroutine is blocked: exactly the cap, whatever the
// number of links waiting.
func TestConcurrentFetchCapExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		var inflight atomic.Int64
		release := make(chan struct{})
		mt := newMemTransport()
		var texts []string
		for m := range 20 {
			var parts []string
			for l := range 5 {
				u := fmt.Sprintf("https://amo.sh/%d-%d", m, l)
				mt.handle(u, func(r *http.Request) *http.Response {
					inflight.Add(1)
					defer inflight.Add(-1)
					<-release
					return memRedirect("https://x.example/")(r)
				})
				parts = append(parts, u)
			}
			texts = append(texts, strings.Join(parts, " "))
		}
		e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}, MaxConcurrentFetches: limit})
		var wg sync.WaitGroup
		for _, text := range texts {
			wg.Go(func() { mustExpand(t, e, text) })
		}
		synctest.Wait()
		if got := inflight.Load(); got != limit {
			t.Errorf("%d requests in flight with 100 links waiting; want %d", got, limit)
		}
		close(release)
		wg.Wait()
		if got := mt.total.Load(); got != 200 {
			t.Errorf("%d requests; want 200 (each short link and its target)", got)
		}
	})
}

// TestNoSlotNotCached checks that a link which found no fetch slot within
// its budget is reported as a timeout, kept as written, and tried again by
// the next message instead of being remembered as a failure.
func TestNoSlotNotCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		mt := newMemTransport()
		mt.handle("https://amo.sh/busy", func(r *http.Request) *http.Response {
			<-release
			return memRedirect("https://x.example/busy")(r)
		})
		mt.handle("https://amo.sh/next", memRedirect("https://x.example/next"))
		var logs bytes.Buffer
		e := NewExpander(Options{
			HTTPClient:           &http.Client{Transport: mt},
			MaxConcurrentFetches: 1,
			PerLinkTimeout:       time.Second,
			Logger:               slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		first := make(chan Result)
		go func() { first <- mustExpand(t, e, "amo.sh/busy") }()
		synctest.Wait() // the first link holds the only slot

		res := mustExpand(t, e, "amo.sh/next")
		if l := res.Links[0]; res.Text != "amo.sh/next" || !errors.Is(l.Err, context.DeadlineExceeded) {
			t.Fatalf("Text, Err = %q, %v; want the link kept with DeadlineExceeded", res.Text, l.Err)
		}
		if n := mt.count("https://amo.sh/next"); n != 0 {
			t.Fatalf("amo.sh/next requested %d times while the slot was taken", n)
		}
		close(release)
		<-first
		res = mustExpand(t, e, "amo.sh/next")
		if l := res.Links[0]; !l.Replaced || l.Cached {
			t.Errorf("after the slot freed: %+v; want a fresh fetch, replaced", l)
		}
		if !strings.Contains(logs.String(), "outcome=no_slot") {
			t.Errorf("log lacks outcome=no_slot:\n%s", logs.String())
		}
	})
}

// recorder is a slog.Handler keeping the records it is given.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func TestLogger(t *testing.T) {
	t.Parallel()
	mt := newMemTransport()
	mt.handle("https://amo.sh/K/SECRETPATH", memRedirect("https://user:pw@shop.example/pay?token=SECRETTOKEN"))
	mt.handle("https://shop.example/pay", memPage("<title>pay</title>"))
	mt.handle("https://amo.sh/gone", func(r *http.Request) *http.Response { return memResponse(r, http.StatusGone, nil, "") })
	rec := &recorder{}
	e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}, Logger: slog.New(rec)})
	text := "amo.sh/K/SECRETPATH amo.sh/gone amo.sh/K/SECRETPATH"
	mustExpand(t, e, text)
	mustExpand(t, e, text) // cache hits: not logged

	got := map[string]map[string]string{}
	var all strings.Builder
	for _, r := range rec.recs {
		attrs := map[string]string{"level": r.Level.String(), "msg": r.Message}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		all.WriteString(fmt.Sprint(attrs))
		got[attrs["outcome"]] = attrs
	}
	if len(rec.recs) != 2 {
		t.Fatalf("%d records; want 2 (one per link fetched, none for cache hits): %s", len(rec.recs), all.String())
	}
	ok, bad := got["expanded"], got["status"]
	if ok == nil || bad == nil {
		t.Fatalf("records %s; want outcomes expanded and status", all.String())
	}
	for k, want := range map[string]string{"level": "DEBUG", "host": "amo.sh", "long_host": "shop.example", "hops": "1", "status": "200"} {
		if ok[k] != want {
			t.Errorf("expanded record %s = %q; want %q", k, ok[k], want)
		}
	}
	for k, want := range map[string]string{"level": "WARN", "host": "amo.sh", "hops": "0", "status": "410"} {
		if bad[k] != want {
			t.Errorf("failed record %s = %q; want %q", k, bad[k], want)
		}
	}
	if _, ok := ok["duration"]; !ok {
		t.Error("no duration attribute")
	}
	for _, secret := range []string{"SECRET", "pw", "token", "/gone"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("log holds %q: %s", secret, all.String())
		}
	}
}
