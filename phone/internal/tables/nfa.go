package tables

import (
	"fmt"
	"regexp/syntax"
	"slices"
)

// nfa is a compiled metadata pattern, matched as a whole against digit
// strings one digit at a time.
type nfa struct{ prog *syntax.Prog }

func compileNFA(pattern string) (nfa, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nfa{}, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nfa{}, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return nfa{prog}, nil
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
			// Empty-width assertions (^, $) are treated as always holding.
			// For the whole-string patterns of the metadata they hold at
			// the ends of the match; inside a national-prefix pattern
			// followed by more digits this over-approximates the strings
			// that match, which only sends more numbers to the library.
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

// coverage tells how many completions of a prefix a pattern matches.
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

// tracker follows several patterns digit by digit.
type tracker struct {
	nfas  []nfa
	memos []map[string]coverage
}

func newTracker(patterns []string) (*tracker, [][]uint32, error) {
	t := &tracker{}
	var sets [][]uint32
	for _, p := range patterns {
		a, err := compileNFA(p)
		if err != nil {
			return nil, nil, err
		}
		t.nfas = append(t.nfas, a)
		t.memos = append(t.memos, map[string]coverage{})
		sets = append(sets, a.start())
	}
	return t, sets, nil
}

func (t *tracker) step(sets [][]uint32, d byte) [][]uint32 {
	next := make([][]uint32, len(sets))
	for i, a := range t.nfas {
		next[i] = a.step(sets[i], d)
	}
	return next
}

func (t *tracker) cover(i int, set []uint32, r int) coverage {
	return t.nfas[i].cover(set, r, t.memos[i])
}

// decided reports whether every pattern matches all or none of the
// completions of length r.
func (t *tracker) decided(sets [][]uint32, r int) bool {
	for i := range t.nfas {
		if t.cover(i, sets[i], r) == matchSome {
			return false
		}
	}
	return true
}
