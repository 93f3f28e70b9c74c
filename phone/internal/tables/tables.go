// Package tables generates phone's fast-path tables from the metadata of
// github.com/nyaruka/phonenumbers, so that they decide exactly as the
// library does. It is run by go generate in package phone (see gen), and
// phone's TestTablesUpToDate checks that the committed table.go is what
// Generate produces from the metadata linked into the test.
//
// Two tries are built, both over digits 0–9 with nodes of ten entries:
//
//   - trie7 decides validity and region (RU, KZ) of a 10-digit national
//     number of country code 7: the +7 reading of "8 916 …" and "+7 916 …".
//   - trie8 decides the international reading of 11 to 13 digits starting
//     with 8 ("8 (495) 123-45-67" read as +84 95 …, "8613800138000" as
//     +86 …): the digits after the 8 lead to invalid (no country code, or
//     no valid number), a region, or "slow" where the library must decide
//     (the country's national prefix could be stripped from the number).
//
// A prefix becomes a leaf once every pattern the library consults for it
// (the general, per-type and leading-digits patterns of every region of
// the country code; for trie8 also the national prefix for parsing) matches
// either all or none of its completions, so the library gives one answer
// for all of them; that answer is taken from the library itself on several
// completions (all zeros, all nines, random ones), which must agree.
package tables

import (
	"bytes"
	"fmt"
	"go/format"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Leaves of trie7 (fixed: the phone package names them).
const (
	leaf7Invalid = 0
	leaf7RU      = 1
	leaf7KZ      = 2
	leaf7Count   = 3
)

// trie8 reads numbers of minTotal8 to maxTotal8 digits, the leading 8
// included.
const (
	minTotal8 = 11
	maxTotal8 = 13
)

// Leaves of trie8 below the region leaves.
const (
	leaf8Invalid = 0
	leaf8Slow    = 1
	leaf8First   = 2 // first region leaf
)

// Generate returns the gofmt-ed source of phone's table.go.
func Generate() ([]byte, error) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return nil, err
	}
	g := &generator{coll: coll, rng: rand.New(rand.NewPCG(8, 7))}
	t7, err := g.trie7()
	if err != nil {
		return nil, err
	}
	t8, roots, regions, err := g.trie8()
	if err != nil {
		return nil, err
	}
	return render(t7, t8, roots, regions)
}

type generator struct {
	coll *phonenumbers.PhoneMetadataCollection
	rng  *rand.Rand
}

func (g *generator) metadata(region string, cc int) *phonenumbers.PhoneMetadata {
	for _, m := range g.coll.Metadata {
		if m.GetId() == region && int(m.GetCountryCode()) == cc {
			return m
		}
	}
	return nil
}

// patterns lists the patterns the library consults to validate a number of
// country code cc and find its region.
func (g *generator) patterns(cc int) ([]string, error) {
	var out []string
	for _, region := range phonenumbers.GetRegionCodesForCountryCode(cc) {
		md := g.metadata(region, cc)
		if md == nil {
			return nil, fmt.Errorf("no metadata for region %s of +%d", region, cc)
		}
		for _, d := range []*phonenumbers.PhoneNumberDesc{md.GeneralDesc, md.FixedLine, md.Mobile,
			md.TollFree, md.PremiumRate, md.SharedCost, md.PersonalNumber, md.Voip, md.Pager,
			md.Uan, md.Voicemail} {
			if d != nil && d.GetNationalNumberPattern() != "" {
				out = append(out, d.GetNationalNumberPattern())
			}
		}
		if ld := md.GetLeadingDigits(); ld != "" {
			out = append(out, "(?:"+ld+")[0-9]*")
		}
	}
	return out, nil
}

// trie7 builds the validity trie for 10-digit national numbers of country
// code 7.
func (g *generator) trie7() ([]uint16, error) {
	pats, err := g.patterns(7)
	if err != nil {
		return nil, err
	}
	tr, sets, err := newTracker(pats)
	if err != nil {
		return nil, err
	}
	var nodes []uint16
	var build func(prefix string, sets [][]uint32) (uint16, error)
	build = func(prefix string, sets [][]uint32) (uint16, error) {
		r := 10 - len(prefix)
		if prefix != "" && tr.decided(sets, r) {
			rep := prefix + strings.Repeat("0", r)
			pn, err := phonenumbers.Parse("+7"+rep, "ZZ")
			if err != nil {
				return 0, fmt.Errorf("+7%s: %w", rep, err)
			}
			if !phonenumbers.IsValidNumber(pn) {
				return leaf7Invalid, nil
			}
			switch reg := phonenumbers.GetRegionCodeForNumber(pn); reg {
			case "RU":
				return leaf7RU, nil
			case "KZ":
				return leaf7KZ, nil
			default:
				return 0, fmt.Errorf("+7%s: unexpected region %q", rep, reg)
			}
		}
		if r == 0 {
			return 0, fmt.Errorf("prefix %s undecided at full length", prefix)
		}
		idx := len(nodes) / 10
		nodes = append(nodes, make([]uint16, 10)...)
		for d := byte('0'); d <= '9'; d++ {
			v, err := build(prefix+string(d), tr.step(sets, d))
			if err != nil {
				return 0, err
			}
			nodes[idx*10+int(d-'0')] = v
		}
		if idx+leaf7Count > 0xffff {
			return 0, fmt.Errorf("trie7 too large for uint16")
		}
		return uint16(idx + leaf7Count), nil
	}
	if _, err := build("", sets); err != nil {
		return nil, err
	}
	return nodes, nil
}

// ccInfo is what trie8 needs of a country code starting with 8.
type ccInfo struct {
	code string
	tr   *tracker
	sets [][]uint32
	npfp int // index of the national-prefix pattern in tr, or -1
}

// trie8 builds the trie of the international reading of "8" followed by
// ten to twelve digits (one root per digit count, see minTotal8), and the
// list of regions its leaves name.
func (g *generator) trie8() (nodes, roots []uint16, regions []string, err error) {
	ccs := map[string]*ccInfo{}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		s := strconv.Itoa(cc)
		if s[0] != '8' {
			continue
		}
		if len(s) == 1 {
			return nil, nil, nil, fmt.Errorf("8 is a country calling code")
		}
		pats, err := g.patterns(cc)
		if err != nil {
			return nil, nil, nil, err
		}
		info := &ccInfo{code: s, npfp: -1}
		main := phonenumbers.GetRegionCodeForCountryCode(cc)
		md := g.metadata(main, cc)
		if md == nil {
			return nil, nil, nil, fmt.Errorf("no metadata for region %s of +%d", main, cc)
		}
		if np := md.GetNationalPrefixForParsing(); np != "" {
			info.npfp = len(pats)
			pats = append(pats, "(?:"+np+")[0-9]*")
		}
		if info.tr, info.sets, err = newTracker(pats); err != nil {
			return nil, nil, nil, err
		}
		ccs[s] = info
		for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			if !slices.Contains(regions, r) {
				regions = append(regions, r)
			}
		}
	}
	slices.Sort(regions)
	leafCount := leaf8First + len(regions)
	leafOf := map[string]uint16{}
	for i, r := range regions {
		leafOf[r] = uint16(leaf8First + i)
	}

	newNode := func() int {
		nodes = append(nodes, make([]uint16, 10)...)
		return len(nodes)/10 - 1
	}
	ref := func(idx int) (uint16, error) {
		if idx+leafCount > 0xffff {
			return 0, fmt.Errorf("trie8 too large for uint16")
		}
		return uint16(idx + leafCount), nil
	}
	seen := map[string]uint16{}
	// inCC builds below a known country code; nsn is the national number
	// so far, r the digits still to come.
	var inCC func(c *ccInfo, nsn string, sets [][]uint32, total int) (uint16, error)
	inCC = func(c *ccInfo, nsn string, sets [][]uint32, total int) (uint16, error) {
		r := total - len(c.code) - len(nsn)
		if c.tr.decided(sets, r) {
			if c.npfp >= 0 && c.tr.cover(c.npfp, sets[c.npfp], r) != matchNone {
				// The library may strip a national prefix from these
				// numbers (even after "+"), so it decides them.
				return leaf8Slow, nil
			}
			// The library's answer depends only on which patterns match,
			// so leaves with the same coverage share it: ask once.
			sig := []byte(fmt.Sprint(c.code, "/", total, "/"))
			for i := range c.tr.nfas {
				sig = append(sig, byte('0'+c.tr.cover(i, sets[i], r)))
			}
			if l, ok := seen[string(sig)]; ok {
				return l, nil
			}
			l, err := g.leaf8(c.code+nsn, r, leafOf)
			seen[string(sig)] = l
			return l, err
		}
		if r == 0 {
			return 0, fmt.Errorf("+%s%s undecided at full length", c.code, nsn)
		}
		idx := newNode()
		for d := byte('0'); d <= '9'; d++ {
			v, err := inCC(c, nsn+string(d), c.tr.step(sets, d), total)
			if err != nil {
				return 0, err
			}
			nodes[idx*10+int(d-'0')] = v
		}
		return ref(idx)
	}
	// top builds above the country code: digits is "8" and what follows.
	var top func(digits string, total int) (uint16, error)
	top = func(digits string, total int) (uint16, error) {
		if c, ok := ccs[digits]; ok {
			return inCC(c, "", c.sets, total)
		}
		prefixOfCC := false
		for code := range ccs {
			if strings.HasPrefix(code, digits) {
				prefixOfCC = true
			}
		}
		if !prefixOfCC {
			return leaf8Invalid, nil // no country code: the library fails
		}
		idx := newNode()
		for d := byte('0'); d <= '9'; d++ {
			v, err := top(digits+string(d), total)
			if err != nil {
				return 0, err
			}
			nodes[idx*10+int(d-'0')] = v
		}
		return ref(idx)
	}

	for total := minTotal8; total <= maxTotal8; total++ {
		root, err := top("8", total)
		if err != nil {
			return nil, nil, nil, err
		}
		roots = append(roots, root)
	}
	return nodes, roots, regions, nil
}

// leaf8 asks the library about several completions of prefix (digits
// after the "+", r of them still to come) and returns the leaf they agree
// on, or leaf8Slow when they do not.
func (g *generator) leaf8(prefix string, r int, leafOf map[string]uint16) (uint16, error) {
	reps := []string{strings.Repeat("0", r), strings.Repeat("9", r)}
	for range 4 {
		var b strings.Builder
		for range r {
			b.WriteByte(byte('0' + g.rng.IntN(10)))
		}
		reps = append(reps, b.String())
	}
	var leaf uint16
	for i, rep := range reps {
		digits := prefix + rep
		l := uint16(leaf8Invalid)
		pn, err := phonenumbers.Parse("+"+digits, "ZZ")
		if err == nil && phonenumbers.IsValidNumber(pn) {
			reg := phonenumbers.GetRegionCodeForNumber(pn)
			var ok bool
			if l, ok = leafOf[reg]; !ok {
				return 0, fmt.Errorf("+%s: unexpected region %q", digits, reg)
			}
			if phonenumbers.Format(pn, phonenumbers.E164) != "+"+digits {
				l = leaf8Slow
			}
		}
		if i > 0 && l != leaf {
			return leaf8Slow, nil
		}
		leaf = l
	}
	return leaf, nil
}

func render(t7, t8, roots []uint16, regions []string) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("// Code generated by go run ./internal/tables/gen from github.com/nyaruka/phonenumbers metadata; DO NOT EDIT.\n\n")
	p("package phone\n\n")
	p("// trie7 decides validity and region of a 10-digit national number of\n")
	p("// country code 7 exactly as the library does. Node i occupies entries\n")
	p("// [10i, 10i+10), one per next digit; a value below leafCount is a leaf\n")
	p("// (leafInvalid, leafRU, leafKZ), any other value v is node v-leafCount.\n")
	table(&b, "trie7", t7)
	p("// trie8 decides the international reading of \"8\" followed by ten to\n")
	p("// twelve digits, walked with those digits from trie8Root: a value below\n")
	p("// leaf8Count is a leaf (leaf8Invalid, leaf8Slow: the library decides,\n")
	p("// or a region of leaf8Region), any other value v is node v-leaf8Count.\n")
	table(&b, "trie8", t8)
	p("// trie8Root[n-%d] is the root of numbers of n digits, the 8 included.\n", minTotal8)
	p("var trie8Root = [%d]uint16{", len(roots))
	for _, r := range roots {
		p("%d, ", r)
	}
	p("}\n\n")
	p("// leaf8Count is the number of trie8 leaf values.\n")
	p("const leaf8Count = %d\n\n", leaf8First+len(regions))
	p("// leaf8Region is the region of each trie8 leaf (\"\" for the first two).\n")
	p("var leaf8Region = [leaf8Count]string{\"\", \"\", ")
	for _, r := range regions {
		p("%q, ", r)
	}
	p("}\n")
	return format.Source(b.Bytes())
}

func table(b *bytes.Buffer, name string, nodes []uint16) {
	fmt.Fprintf(b, "var %s = [%d]uint16{\n", name, len(nodes))
	for i := 0; i < len(nodes); i += 10 {
		for _, v := range nodes[i : i+10] {
			fmt.Fprintf(b, "%d, ", v)
		}
		fmt.Fprintf(b, "\n")
	}
	fmt.Fprintf(b, "}\n\n")
}
