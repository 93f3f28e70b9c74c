package links

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// benchMsg is a 300-byte Russian Salesbot message with two short links.
var benchMsg = func() string {
	s := "Здравствуйте, Анна! Ваш каталог: amo.sh/4823 — скидка до пятницы. Оплата: https://amo.sh/K/YNTCBS/YJMC10. Спасибо, что с нами!"
	for len(s) < 300 {
		s += " ок"
	}
	return s[:300]
}()

// benchPlain is the same size without links.
var benchPlain = strings.Repeat("Здравствуйте! ", 300/len("Здравствуйте! ")+1)[:300]

// baselineRE is the dedicated regexp recommended by the reference notes
// (reference/phone-and-links.md §2.4), the baseline the finder is compared to.
var baselineRE = regexp.MustCompile(`(?i)(?:^|[^\p{L}\p{N}._@/-])((?:https?://)?(?:www\.)?amo\.sh(?::\d+)?/[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9_-]+)*/?)`)

func TestBenchMessages(t *testing.T) {
	if len(benchMsg) != 300 || len(Find(benchMsg, nil)) != 2 || len(Find(benchPlain, nil)) != 0 {
		t.Fatalf("benchmark inputs: %d bytes, %d links", len(benchMsg), len(Find(benchMsg, nil)))
	}
	if n := len(baselineRE.FindAllStringSubmatchIndex(benchMsg, -1)); n != 2 {
		t.Fatalf("baseline regexp finds %d links; want 2", n)
	}
}

// BenchmarkFind compares the hand-written finder with the regexp baseline
// on the same 300-byte message (target: ≤ 10 µs per message).
func BenchmarkFind(b *testing.B) {
	b.Run("finder/2links", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Find(benchMsg, nil)
		}
	})
	b.Run("regexp-baseline/2links", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			baselineRE.FindAllStringSubmatchIndex(benchMsg, -1)
		}
	})
	b.Run("finder/nolinks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Find(benchPlain, nil)
		}
	})
	b.Run("regexp-baseline/nolinks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			baselineRE.FindAllStringSubmatchIndex(benchPlain, -1)
		}
	})
}

// BenchmarkExpandText measures the cache-hit path (both links cached: no
// request, no timer) against Find alone and a message without links.
func BenchmarkExpandText(b *testing.B) {
	mt := newMemTransport()
	mt.handle("https://amo.sh/4823", memRedirect("https://kruglosutka.ru/catalog"))
	mt.handle("https://amo.sh/K/YNTCBS/YJMC10", memRedirect("https://kruglosutka.ru/pay"))
	e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}})
	ctx := context.Background()
	if res, err := e.ExpandText(ctx, benchMsg); err != nil || !res.Links[0].Replaced || !res.Links[1].Replaced {
		b.Fatalf("warm-up: %+v, %v", res, err)
	}
	b.Run("cache-hit/2links", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, _ := e.ExpandText(ctx, benchMsg)
			if !res.Links[1].Cached {
				b.Fatal("not served from the cache")
			}
		}
	})
	b.Run("find-only-baseline/2links", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Find(benchMsg, nil)
		}
	})
	b.Run("nolinks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e.ExpandText(ctx, benchPlain)
		}
	})
	if n := mt.count("https://amo.sh/4823"); n != 1 {
		b.Fatalf("%d requests; want 1", n)
	}
}
