package phone

import "strings"

//go:generate go run ./internal/tables/gen -o table.go

// Leaf values of trie7.
const (
	leafInvalid = iota
	leafRU
	leafKZ
	leafCount
)

// leafRegion maps a trie7 leaf to the region the library reports.
var leafRegion = [leafCount]string{leafInvalid: "", leafRU: "RU", leafKZ: "KZ"}

// The first leaf values of trie8; region leaves follow (leaf8Region).
const (
	leaf8Invalid = 0 // the international reading is not a valid number
	leaf8Slow    = 1 // the library decides (a national prefix may be stripped)
)

// lookup7 returns the trie7 leaf for the 10-digit national number nsn
// (digit values 0–9) of country code 7.
func lookup7(nsn []byte) int {
	node := 0
	for _, d := range nsn {
		v := int(trie7[node*10+int(d)])
		if v < leafCount {
			return v
		}
		node = v - leafCount
	}
	return leafInvalid // unreachable: trie7 decides every number by its last digit
}

// lookup8 returns the trie8 leaf for the international reading of "8"
// followed by rest, ten to twelve digits (digit values 0–9).
func lookup8(rest []byte) int {
	node := int(trie8Root[len(rest)-10]) - leaf8Count
	for _, d := range rest {
		v := int(trie8[node*10+int(d)])
		if v < leaf8Count {
			return v
		}
		node = v - leaf8Count
	}
	return leaf8Slow // unreachable: trie8 decides every number by its last digit
}

// scan11 accepts the shapes the first fast path handles: optional leading
// spaces and "(", at most one "+" before the first digit, exactly 11 ASCII
// digits separated by spaces, "-", "(", ")" or ".", and after the last
// digit only those or trailing "\t\r\n;,". It returns the digit values and
// whether a "+" was seen; ok is false for anything else.
func scan11(s string) (d [11]byte, plus, ok bool) {
	if len(s) > MaxInputRunes {
		return d, false, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			if n == len(d) {
				return d, false, false
			}
			d[n] = c - '0'
			n++
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '.':
		case c == '+':
			if n > 0 || plus {
				return d, false, false
			}
			plus = true
		case (c == '\t' || c == '\r' || c == '\n') && (n == 0 || n == len(d)):
		case (c == ';' || c == ',') && n == len(d):
		default:
			return d, false, false
		}
	}
	return d, plus, n == len(d)
}

// cleaned reads a cleaned number (prepared.num: it starts with "+" or a
// digit and ends with a digit) made of 11 to 13 ASCII digits and the
// separators scan11 accepts, after one or more "+" (the library reads
// "++7 …" as "+7 …"), and optionally followed by ",," and an extension of
// 1–15 digits (the library's auto-dialling form). n is the digit count.
func cleaned(num string) (d [13]byte, n int, plus bool, ext string, ok bool) {
	i := 0
	for i < len(num) && num[i] == '+' {
		plus = true
		i++
	}
	if j := strings.Index(num, ",,"); j > 0 && isASCIIDigit(rune(num[j-1])) {
		ext = num[j+2:]
		if len(ext) == 0 || len(ext) > 15 || strings.ContainsFunc(ext, func(r rune) bool { return !isASCIIDigit(r) }) {
			return d, 0, false, "", false
		}
		num = num[:j]
	}
	for ; i < len(num); i++ {
		c := num[i]
		switch {
		case '0' <= c && c <= '9':
			if n == len(d) {
				return d, 0, false, "", false
			}
			d[n] = c - '0'
			n++
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '.':
		default:
			return d, 0, false, "", false
		}
	}
	return d, n, plus, ext, n >= 11
}

// number7 builds the Number +7<nsn> for a trie7 leaf other than leafInvalid;
// its one allocation is the E.164 string.
func number7(nsn []byte, leaf int, ext string) Number {
	var b [12]byte
	b[0], b[1] = '+', '7'
	for i, v := range nsn {
		b[2+i] = '0' + v
	}
	return Number{e164: string(b[:]), region: leafRegion[leaf], ext: ext}
}

// number8 builds the Number +<d> for a trie8 region leaf.
func number8(d []byte, leaf int, ext string) Number {
	var b [14]byte
	b[0] = '+'
	for i, v := range d {
		b[1+i] = '0' + v
	}
	return Number{e164: string(b[:1+len(d)]), region: leaf8Region[leaf], ext: ext}
}

// How far the fast path got.
const (
	fastDone     = iota // n, err are the answer
	fastPrepared        // not decided; p holds the cleaned input
	fastNone            // not decided; the input was not cleaned
)

// parseQuick is the fast path of Parse. It gives exactly the result of
// parseSlow (checked by the differential tests) whenever it decides:
//
//   - +7, 7 or 8 followed by ten digits in the shapes scan11 accepts are
//     read without cleaning;
//   - anything else is cleaned first (prepare: trailing junk such as "»"
//     or "!", extensions, Unicode digits, spaces and dashes), and the
//     cleaned number is read the same way when it has those shapes.
//
// An 8 followed by ten digits has two readings, +7 (trie7) and
// international (trie8, which knows every country code starting with 8),
// combined as parseSlow combines the library's. Other regions than RU,
// other digit counts, the 00 and 810 prefixes and the few numbers trie8
// leaves to the library are not decided here.
func parseQuick(s string, opt Options) (n Number, p prepared, state int, err error) {
	if opt.Region != "" && opt.Region != "RU" {
		return Number{}, p, fastNone, nil
	}
	if d, plus, ok := scan11(s); ok {
		if n, err, ok := decide(s, d[:], plus, "", opt); ok {
			return n, p, fastDone, err
		}
		return Number{}, p, fastNone, nil
	}
	p, perr := prepare(s)
	if perr != nil {
		return Number{}, p, fastDone, &ParseError{Input: s, Err: perr}
	}
	if d, nd, plus, ext, ok := cleaned(p.num); ok && (ext == "" || p.ext == "") {
		if ext == "" {
			ext = p.ext
		}
		if n, err, ok := decide(s, d[:nd], plus, ext, opt); ok {
			return n, p, fastDone, err
		}
	}
	return Number{}, p, fastPrepared, nil
}

// parseFast reports the fast path's answer for s, ok false when it leaves
// s to the library.
func parseFast(s string, opt Options) (n Number, err error, ok bool) {
	n, _, state, err := parseQuick(s, opt)
	return n, err, state == fastDone
}

// decide reads the 11 to 13 digits d (ext: the extension cleaned off the
// input) as parseSlow would, or reports ok false when the library must.
func decide(s string, d []byte, plus bool, ext string, opt Options) (n Number, err error, ok bool) {
	nsn := d[1:]
	switch {
	case d[0] == 7 && len(d) == 11:
		// "+7…" is read internationally; bare "7…" has two readings, national
		// (the library strips the country code 7) and international, and
		// both give +7<nsn>.
		leaf := lookup7(nsn)
		if leaf == leafInvalid {
			return Number{}, &ParseError{Input: s, Err: ErrInvalid}, true
		}
		return number7(nsn, leaf, ext), nil, true
	case d[0] == 8 && plus:
		leaf := lookup8(nsn)
		switch leaf {
		case leaf8Slow:
			return Number{}, nil, false
		case leaf8Invalid:
			return Number{}, &ParseError{Input: s, Err: ErrInvalid}, true
		}
		return number8(d, leaf, ext), nil, true
	case d[0] == 8:
		if d[1] == 1 && d[2] == 0 {
			return Number{}, nil, false // 810: Russia's international prefix
		}
		l8 := lookup8(nsn)
		if l8 == leaf8Slow {
			return Number{}, nil, false
		}
		// The +7 reading needs exactly ten digits after the 8: country
		// code 7 has no national numbers of other lengths.
		l7 := leafInvalid
		if len(d) == 11 {
			l7 = lookup7(nsn)
		}
		natOK, intlOK := l7 != leafInvalid, l8 != leaf8Invalid
		switch {
		case natOK && intlOK:
			nat, intl := number7(nsn, l7, ext), number8(d, l8, ext)
			if opt.DisableEightAsSeven {
				return ambiguous(intl, nat), nil, true
			}
			return ambiguous(nat, intl), nil, true
		case natOK && !opt.DisableEightAsSeven:
			return number7(nsn, l7, ext), nil, true
		case intlOK:
			return number8(d, l8, ext), nil, true
		case natOK: // the +7 reading is the only valid one, and it is off
			return Number{}, &ParseError{Input: s, Err: ErrInvalid, Alternative: number7(nsn, l7, ext)}, true
		}
		return Number{}, &ParseError{Input: s, Err: ErrInvalid}, true
	}
	return Number{}, nil, false
}

// parseChatFast is the fast path of ParseChatID: 7 followed by ten digits.
func parseChatFast(id string) (n Number, err error, ok bool) {
	d, _, ok := scan11(id)
	if !ok || d[0] != 7 {
		return Number{}, nil, false
	}
	leaf := lookup7(d[1:])
	if leaf == leafInvalid {
		return Number{}, &ParseError{Input: id, Err: ErrInvalid}, true
	}
	return number7(d[1:], leaf, ""), nil, true
}
