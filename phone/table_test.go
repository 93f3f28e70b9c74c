package phone

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/crmbridge/crmbridge/phone/internal/tables"
	"github.com/nyaruka/phonenumbers"
)

// TestTablesUpToDate regenerates the fast path's tables from the
// phonenumbers metadata linked into this test and checks that table.go is
// exactly that file. After a phonenumbers upgrade run: go generate ./phone
//
// Under -race it runs only with CRMBRIDGE_LONG=1: generating the tables
// walks the whole metadata, tens of times slower under the detector, and
// is single-threaded, so the plain go test run checks it alike.
func TestTablesUpToDate(t *testing.T) {
	if raceEnabled && !longRun() {
		t.Skip("generating the tables is slow under -race and has no concurrency; the plain run checks it (CRMBRIDGE_LONG=1 runs it here)")
	}
	src, err := tables.Generate()
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("table.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, have) {
		t.Errorf("table.go is stale: it differs from what the phonenumbers metadata gives; run: go generate ./phone")
	}
}

// TestTrie8MatchesLibrary compares trie8 with the library on uniformly
// random "+8" followed by 10–12 digits, a spread the CRM-like corpus
// lacks, and checks that the national (+7) reading of such a number with
// 11 or 12 digits after the 8 is never valid, 810 aside (decide relies on
// it).
func TestTrie8MatchesLibrary(t *testing.T) {
	n := 20_000
	if raceEnabled {
		n = 600 // as in TestFastPathMatchesLibrary
	}
	if longRun() {
		n = 1_000_000
	}
	r := rand.New(rand.NewPCG(88, 1))
	decided := 0
	for i := range n {
		total := 11 + i%3
		d := make([]byte, total)
		s := make([]byte, 1+total)
		d[0], s[0], s[1] = 8, '+', '8'
		for i := 1; i < len(d); i++ {
			d[i] = byte(r.IntN(10))
			s[1+i] = '0' + d[i]
		}
		if total > 11 && (d[1] != 1 || d[2] != 0) { // 810 is an international prefix
			if e164, _, _, ok := lib(string(s[1:]), "RU"); ok {
				t.Errorf("%s read in RU is valid (%s); decide assumes it is not", s[1:], e164)
			}
		}
		leaf := lookup8(d[1:])
		if leaf == leaf8Slow {
			continue
		}
		decided++
		e164, reg, _, ok := lib(string(s), "ZZ")
		switch {
		case ok != (leaf != leaf8Invalid):
			t.Errorf("%s: trie8 leaf %d, library valid %v", s, leaf, ok)
		case ok && (e164 != string(s) || reg != leaf8Region[leaf]):
			t.Errorf("%s: trie8 says %s, library says %s %s", s, leaf8Region[leaf], e164, reg)
		}
	}
	if decided < n*9/10 {
		t.Errorf("trie8 decided %d of %d numbers, want at least 90%%", decided, n)
	}
}

// TestTrie8Regions checks that every region trie8 names is one the
// library gives a country code starting with 8.
func TestTrie8Regions(t *testing.T) {
	for _, r := range leaf8Region[2:] {
		cc := phonenumbers.GetCountryCodeForRegion(r)
		if r == "001" {
			continue
		}
		if cc < 80 || (cc > 89 && cc < 800) || cc > 899 {
			t.Errorf("region %s has country code %d, not one starting with 8", r, cc)
		}
	}
}
