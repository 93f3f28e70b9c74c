package phone

import (
	"errors"
	"os"
	"sync"
	"testing"
)

// longRun reports whether the long differential runs are asked for
// (CRMBRIDGE_LONG=1).
func longRun() bool { return os.Getenv("CRMBRIDGE_LONG") == "1" }

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
	for _, opt := range []Options{{}, {DisableEightAsSeven: true}} {
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

// TestFastPathMatchesLibrary runs the differential test: on generated
// CRM-like inputs (the corpus, plus one input in four an 8 or +8 followed
// by ten uniformly random digits, formatted), every input the fast path
// decides must give exactly the library path's result under every option
// set. 20k inputs by default; 600 under -race, where the library path
// runs tens of times slower and the detector adds nothing to a comparison
// of values (the plain go test run, which CI makes too, takes the 20k);
// 1M with CRMBRIDGE_LONG=1.
func TestFastPathMatchesLibrary(t *testing.T) {
	n := 20_000
	if raceEnabled {
		n = 600
	}
	if longRun() {
		n = 1_000_000
	}
	// A fixed number of shards, each with its own seed, so every machine
	// tests the same inputs whatever its number of CPUs.
	const workers = 8
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := newCorpus(uint64(w) + 1)
			handled := 0
			for i := w; i < n; i += workers {
				s := c.next()
				if i%4 == 3 {
					s = c.eight()
				}
				if checkFast(t, s) > 0 {
					handled++
				}
			}
			mu.Lock()
			total += handled
			mu.Unlock()
		})
	}
	wg.Wait()
	// About 95% of the inputs are decided by the fast path; the test
	// means little if the fast path stopped deciding them.
	if total < n*85/100 {
		t.Errorf("fast path handled %d of %d inputs, want at least 85%%", total, n)
	}
	t.Logf("fast path handled %d of %d inputs", total, n)
}
