package phone

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"os"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

var updateTables = flag.Bool("update", false, "regenerate table.go from the phonenumbers metadata")

// TestTablesUpToDate rebuilds the fast path's tables from the phonenumbers
// metadata and checks that table.go holds exactly them. After a
// phonenumbers upgrade run: go test ./phone -run TestTablesUpToDate -update
func TestTablesUpToDate(t *testing.T) {
	nodes := buildTrie7(t)
	two, three := buildCC8()
	src := renderTables(t, nodes, two, three)
	if *updateTables {
		if err := os.WriteFile("table.go", src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !slices.Equal(nodes, trie7[:]) {
		t.Errorf("trie7 is stale (%d nodes generated, %d in table.go); run: go test ./phone -run TestTablesUpToDate -update", len(nodes)/10, len(trie7)/10)
	}
	if two != cc8Two || three != cc8Three {
		t.Errorf("cc8 tables are stale; run: go test ./phone -run TestTablesUpToDate -update")
	}
}

// buildCC8 lists which 2- and 3-digit prefixes starting with 8 are country
// calling codes known to the library.
func buildCC8() (two uint16, three [10]uint16) {
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		s := strconv.Itoa(cc)
		if s[0] != '8' {
			continue
		}
		switch len(s) {
		case 1:
			panic("8 is a country code")
		case 2:
			two |= 1 << (s[1] - '0')
		case 3:
			three[s[1]-'0'] |= 1 << (s[2] - '0')
		}
	}
	return two, three
}

// nfa is a compiled pattern, matched as a whole against digit strings.
type nfa struct{ prog *syntax.Prog }

func compileNFA(t *testing.T, pattern string) nfa {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	return nfa{prog}
}

func (a nfa) closure(pcs []uint32) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	var visit func(pc uint32)
	visit = func(pc uint32) {
		if seen[pc] {
			return
		}
		seen[pc] = true
		in := &a.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			visit(in.Out)
			visit(in.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			// The patterns hold no anchors; empty-width ops are ^/$ at most,
			// which hold at the ends of a whole-string match.
			visit(in.Out)
		default:
			out = append(out, pc)
		}
	}
	for _, pc := range pcs {
		visit(pc)
	}
	slices.Sort(out)
	return out
}

func (a nfa) start() []uint32 { return a.closure([]uint32{uint32(a.prog.Start)}) }

func (a nfa) step(set []uint32, d byte) []uint32 {
	var next []uint32
	for _, pc := range set {
		in := &a.prog.Inst[pc]
		switch in.Op {
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			if in.MatchRune(rune(d)) {
				next = append(next, in.Out)
			}
		}
	}
	return a.closure(next)
}

func (a nfa) accepts(set []uint32) bool {
	for _, pc := range set {
		if a.prog.Inst[pc].Op == syntax.InstMatch {
			return true
		}
	}
	return false
}

type coverage int8

const (
	matchNone coverage = iota
	matchAll
	matchSome
)

// cover reports whether all, none or some of the digit strings of length r
// take the NFA from set to a match.
func (a nfa) cover(set []uint32, r int, memo map[string]coverage) coverage {
	key := fmt.Sprint(set, r)
	if c, ok := memo[key]; ok {
		return c
	}
	var c coverage
	switch {
	case len(set) == 0:
		c = matchNone
	case r == 0:
		c = matchNone
		if a.accepts(set) {
			c = matchAll
		}
	default:
		for d := byte('0'); d <= '9'; d++ {
			cd := a.cover(a.step(set, d), r-1, memo)
			if d == '0' {
				c = cd
			} else if cd != c {
				c = matchSome
			}
			if c == matchSome {
				break
			}
		}
	}
	memo[key] = c
	return c
}

// buildTrie7 builds the validity trie for 10-digit national numbers of
// country code 7. Every pattern the library consults (the general, type and
// leading-digits patterns of RU and KZ) is tracked as an NFA; a prefix
// becomes a leaf once every pattern matches all or none of its completions,
// so the library's answer is the same for all of them and one call on a
// representative gives it.
func buildTrie7(t *testing.T) []uint16 {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, region := range phonenumbers.GetRegionCodesForCountryCode(7) {
		var md *phonenumbers.PhoneMetadata
		for _, m := range coll.Metadata {
			if m.GetId() == region {
				md = m
			}
		}
		if md == nil {
			t.Fatalf("no metadata for %s", region)
		}
		for _, d := range []*phonenumbers.PhoneNumberDesc{md.GeneralDesc, md.FixedLine, md.Mobile,
			md.TollFree, md.PremiumRate, md.SharedCost, md.PersonalNumber, md.Voip, md.Pager,
			md.Uan, md.Voicemail} {
			if d != nil && d.GetNationalNumberPattern() != "" {
				patterns = append(patterns, d.GetNationalNumberPattern())
			}
		}
		if ld := md.GetLeadingDigits(); ld != "" {
			patterns = append(patterns, "(?:"+ld+")[0-9]*")
		}
	}
	nfas := make([]nfa, len(patterns))
	sets := make([][]uint32, len(patterns))
	memos := make([]map[string]coverage, len(patterns))
	for i, p := range patterns {
		nfas[i] = compileNFA(t, p)
		sets[i] = nfas[i].start()
		memos[i] = map[string]coverage{}
	}
	var nodes []uint16
	var build func(prefix string, sets [][]uint32) uint16
	build = func(prefix string, sets [][]uint32) uint16 {
		r := 10 - len(prefix)
		decided := true
		for i, a := range nfas {
			if a.cover(sets[i], r, memos[i]) == matchSome {
				decided = false
				break
			}
		}
		if decided && prefix != "" {
			rep := prefix + strings.Repeat("0", r)
			pn, err := phonenumbers.Parse("+7"+rep, "ZZ")
			if err != nil {
				t.Fatalf("+7%s: %v", rep, err)
			}
			if !phonenumbers.IsValidNumber(pn) {
				return leafInvalid
			}
			switch reg := phonenumbers.GetRegionCodeForNumber(pn); reg {
			case "RU":
				return leafRU
			case "KZ":
				return leafKZ
			default:
				t.Fatalf("+7%s: unexpected region %q", rep, reg)
			}
		}
		if r == 0 {
			t.Fatalf("prefix %s undecided at full length", prefix)
		}
		idx := len(nodes) / 10
		nodes = append(nodes, make([]uint16, 10)...)
		for d := byte('0'); d <= '9'; d++ {
			next := make([][]uint32, len(sets))
			for i, a := range nfas {
				next[i] = a.step(sets[i], d)
			}
			v := build(prefix+string(d), next)
			nodes[idx*10+int(d-'0')] = v
		}
		if idx+leafCount > 0xffff {
			t.Fatal("trie too large for uint16")
		}
		return uint16(idx + leafCount)
	}
	build("", sets)
	return nodes
}

func renderTables(t *testing.T, nodes []uint16, two uint16, three [10]uint16) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by TestTablesUpToDate -update from github.com/nyaruka/phonenumbers metadata; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package phone\n\n")
	fmt.Fprintf(&b, "// trie7 decides validity and region of a 10-digit national number of\n")
	fmt.Fprintf(&b, "// country code 7 exactly as the library does. Node i occupies entries\n")
	fmt.Fprintf(&b, "// [10i, 10i+10), one per next digit; a value below leafCount is a leaf\n")
	fmt.Fprintf(&b, "// (leafInvalid, leafRU, leafKZ), any other value v is node v-leafCount.\n")
	fmt.Fprintf(&b, "var trie7 = [%d]uint16{\n", len(nodes))
	for i := 0; i < len(nodes); i += 10 {
		for _, v := range nodes[i : i+10] {
			fmt.Fprintf(&b, "%d, ", v)
		}
		fmt.Fprintf(&b, "\n")
	}
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "// cc8Two has bit d set when \"8d\" is a country calling code.\n")
	fmt.Fprintf(&b, "const cc8Two = %#04x\n\n", two)
	fmt.Fprintf(&b, "// cc8Three[d] has bit e set when \"8de\" is a country calling code.\n")
	fmt.Fprintf(&b, "var cc8Three = [10]uint16{")
	for _, v := range three {
		fmt.Fprintf(&b, "%#04x, ", v)
	}
	fmt.Fprintf(&b, "}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return src
}
