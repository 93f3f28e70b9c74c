package links

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// shortenerTransport answers every request to a shortener host with a
// redirect to a distinct long URL, and every other request with a page.
type shortenerTransport struct{ n atomic.Int64 }

func (s *shortenerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "long.example" {
		return memResponse(r, 200, http.Header{"Content-Type": {"text/plain"}}, "ok"), nil
	}
	return memResponse(r, http.StatusFound, http.Header{"Location": {fmt.Sprintf("https://long.example/L%d", s.n.Add(1))}}, ""), nil
}

var fuzzSeeds = []string{
	"",
	"amo.sh/4823",
	"Здравствуйте! Каталог по ссылке amo.sh/4823 — или https://amo.sh/K/YNTCBS/YJMC10. Если…",
	"(amo.sh/4823).", "«amo.sh/4823»", "[x](https://amo.sh/4823)", "http://amo.sh/4823?utm=1&x=2).",
	"ссылкаamo.sh/4823 notamo.sh/1 ivan@amo.sh amo.shop/1", "AMO.SH:443/a%2Fb#c", "www.amo.sh/1...",
	"amo.sh:99999/1 amo.sh/", "\xffamo.sh/1\xfe", "amo.sh/1amo.sh/2", "https://https://amo.sh/1",
	"amo.sh/1 https://AMO.SH/1 amo.sh/1#x amo.sh/1",
}

func FuzzExpandText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	e := NewExpander(Options{HTTPClient: &http.Client{Transport: &shortenerTransport{}}, CacheSize: 64})
	f.Fuzz(func(t *testing.T, text string) {
		spans := Find(text, nil)
		end := 0
		for _, s := range spans {
			if s.Start < end || s.End <= s.Start || s.End > len(text) || s.Text != text[s.Start:s.End] {
				t.Fatalf("bad span %+v in %q (previous end %d)", s, text, end)
			}
			if !boundaryOK(text[:s.Start]) {
				t.Fatalf("span %+v starts after a word character in %q", s, text)
			}
			if !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
				t.Fatalf("span URL %q is not absolute", s.URL)
			}
			again := Find(s.Text, nil)
			if len(again) != 1 || again[0].Text != s.Text || again[0].URL != s.URL {
				t.Fatalf("Find(%q) = %+v; want the span itself", s.Text, again)
			}
			end = s.End
		}

		res, err := e.ExpandText(context.Background(), text)
		if err != nil {
			t.Fatalf("ExpandText error = %v", err)
		}
		// One result per distinct URL, in order of first appearance; the
		// occurrences add up to the spans.
		byURL := map[string]LinkResult{}
		total := res.Skipped
		for _, l := range res.Links {
			if _, dup := byURL[l.URL]; dup || l.Count < 1 {
				t.Fatalf("link %+v listed twice or with no occurrence", l)
			}
			byURL[l.URL] = l
			total += l.Count
		}
		if total != len(spans) {
			t.Fatalf("%d occurrences (%d skipped) for %d spans", total, res.Skipped, len(spans))
		}
		// Rebuild the output from the original text: every byte outside the
		// links must come through unchanged.
		var want strings.Builder
		last := 0
		for _, s := range spans {
			want.WriteString(text[last:s.Start])
			if l, ok := byURL[s.URL]; ok && l.Replaced {
				if !strings.HasPrefix(l.Long, "https://long.example/L") {
					t.Fatalf("link %s replaced by %q", s.URL, l.Long)
				}
				want.WriteString(l.Long)
			} else {
				want.WriteString(s.Text)
			}
			last = s.End
		}
		want.WriteString(text[last:])
		if res.Text != want.String() {
			t.Fatalf("ExpandText(%q) = %q; want %q", text, res.Text, want.String())
		}
	})
}
