package phone

import (
	"errors"
	"flag"
	"runtime"
	"sync"
	"testing"
)

var longDiff = flag.Bool("phone.long", false, "run the differential test on 1M generated numbers")

// sameResult reports whether two Parse results are identical: equal Number
// values (number, extension, region, ambiguity and alternative) and equal
// errors (same *ParseError fields).
func sameResult(n1 Number, e1 error, n2 Number, e2 error) bool {
	if n1 != n2 || (e1 == nil) != (e2 == nil) {
		return false
	}
	if e1 == nil {
		return true
	}
	p1, ok1 := errors.AsType[*ParseError](e1)
	p2, ok2 := errors.AsType[*ParseError](e2)
	return ok1 && ok2 && *p1 == *p2
}

// checkFast compares the fast path with the library path for s under every
// option set; it returns how many of them the fast path handled.
func checkFast(t testing.TB, s string) (handled int) {
	for _, opt := range []Options{{}, {DisableEightAsSeven: true}, {Region: "RU"}} {
		fn, fe, ok := parseFast(s, opt)
		if !ok {
			continue
		}
		handled++
		sn, se := parseSlow(s, opt)
		if !sameResult(fn, fe, sn, se) {
			t.Errorf("Parse(%q, %+v): fast path = %#v, %v; library path = %#v, %v", s, opt, fn, fe, sn, se)
		}
	}
	if fn, fe, ok := parseChatFast(s); ok {
		handled++
		if sn, se := parseChatSlow(s); !sameResult(fn, fe, sn, se) {
			t.Errorf("ParseChatID(%q): fast path = %#v, %v; library path = %#v, %v", s, fn, fe, sn, se)
		}
	}
	return handled
}

// TestFastPathMatchesLibrary runs the differential test: on a generated
// corpus of CRM-like inputs, every input the fast path handles must give
// exactly the library path's result. 50k inputs normally (10k under
// -short); 1M with -phone.long (skipped under -short).
func TestFastPathMatchesLibrary(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 10_000
	}
	if *longDiff {
		if testing.Short() {
			t.Skip("long differential run skipped under -short")
		}
		n = 1_000_000
	}
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := newCorpus(uint64(w) + 1)
			handled := 0
			for i := w; i < n; i += workers {
				if checkFast(t, c.next()) > 0 {
					handled++
				}
			}
			mu.Lock()
			total += handled
			mu.Unlock()
		})
	}
	wg.Wait()
	// About 63% of the corpus is taken by the fast path (84…/88…/87[08]…
	// and non-ASCII inputs go to the library); the test means little if
	// the fast path stopped taking them.
	if total < n*55/100 {
		t.Errorf("fast path handled %d of %d inputs, want at least 55%%", total, n)
	}
	t.Logf("fast path handled %d of %d inputs", total, n)
}
