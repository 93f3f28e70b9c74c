package phone

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// prepared is an input after cleaning: num runs from the first '+' or digit
// to the last digit of the number, with every Unicode decimal digit made
// ASCII, Unicode spaces made ' ', Unicode dashes made '-', and format
// characters removed. ext is an extension found by a Russian or English
// label; digits counts the ASCII digits in num.
type prepared struct {
	num    string
	ext    string
	digits int
}

// prepare cleans s. The errors it returns are sentinels.
func prepare(s string) (prepared, error) {
	t := strings.TrimFunc(s, isBlank)
	if t == "" {
		return prepared{}, ErrEmpty
	}
	if len(t) > 4*MaxInputRunes || utf8.RuneCountInString(t) > MaxInputRunes {
		return prepared{}, ErrTooLong
	}
	var b strings.Builder
	b.Grow(len(t))
	letters := false
	for _, r := range t {
		switch {
		case r < utf8.RuneSelf:
			if isASCIILetter(r) {
				letters = true
			}
			if r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' {
				r = ' '
			}
			b.WriteByte(byte(r))
		case unicode.IsDigit(r):
			b.WriteByte('0' + digitValue(r))
		case r == '＋':
			b.WriteByte('+')
		case isDash(r):
			b.WriteByte('-')
		case isBlank(r):
			if unicode.Is(unicode.Cf, r) {
				continue // zero-width and direction marks
			}
			b.WriteByte(' ')
		default:
			if unicode.IsLetter(r) {
				letters = true
			}
			b.WriteRune(r)
		}
	}
	c := b.String()
	start := strings.IndexFunc(c, func(r rune) bool { return r == '+' || isASCIIDigit(r) })
	if start < 0 {
		if letters || strings.ContainsFunc(c, unicode.IsNumber) {
			return prepared{}, ErrInvalid
		}
		return prepared{}, ErrEmpty
	}
	last := strings.LastIndexFunc(c, isASCIIDigit)
	if last < start {
		return prepared{}, ErrTooShort // a lone "+"
	}
	c = c[start : last+1] // leading junk and trailing junk ("…;", "(Иван)") dropped
	p := prepared{num: c}
	if num, ext, ok := splitExtension(c); ok {
		p.num, p.ext = num, ext
	}
	for i := 0; i < len(p.num); i++ {
		if isASCIIDigit(rune(p.num[i])) {
			p.digits++
		}
	}
	switch {
	case p.digits < MinDigits:
		return p, ErrTooShort
	case p.digits > MaxDigits:
		return p, ErrTooLong
	}
	return p, nil
}

// extLabels are the extension labels recognised by splitExtension, lower
// case. The library itself also knows "ext", "x", "#", ",," and ";", but not
// the Russian ones except "доб".
var extLabels = [...]string{
	"доб", "доп", "добавочный", "дополнительный", "вн", "внутр", "внутренний",
	"ext", "extn", "extension", "x",
}

// splitExtension finds "<number> <label>[.:] <digits>" at the end of c.
func splitExtension(c string) (num, ext string, ok bool) {
	i := len(c)
	for i > 0 && isASCIIDigit(rune(c[i-1])) {
		i--
	}
	ext = c[i:]
	if len(ext) == 0 || len(ext) > 10 {
		return "", "", false
	}
	j := strings.TrimRightFunc(c[:i], func(r rune) bool {
		return r == ' ' || r == '.' || r == ':' || r == '-' || r == ',' || r == '№'
	})
	k := strings.LastIndexFunc(j, func(r rune) bool { return !unicode.IsLetter(r) })
	label := strings.ToLower(j[k+1:])
	found := false
	for _, l := range extLabels {
		if label == l {
			found = true
			break
		}
	}
	if !found {
		return "", "", false
	}
	num = strings.TrimRightFunc(j[:k+1], func(r rune) bool { return !isASCIIDigit(r) })
	if num == "" {
		return "", "", false
	}
	return num, ext, true
}

// parseSlow is the library path of Parse.
func parseSlow(s string, opt Options) (Number, error) {
	p, err := prepare(s)
	if err != nil {
		return Number{}, &ParseError{Input: s, Err: err}
	}
	return parsePrepared(s, p, opt)
}

// parsePrepared is the library path of Parse for s, cleaned into p.
func parsePrepared(s string, p prepared, opt Options) (Number, error) {
	// Position of the n-th digit in p.num, for the prefix rules.
	dig := func(n int) (byte, int) {
		for i := 0; i < len(p.num); i++ {
			if isASCIIDigit(rune(p.num[i])) {
				if n == 0 {
					return p.num[i], i
				}
				n--
			}
		}
		return 0, -1
	}
	d0, _ := dig(0)
	d1, i1 := dig(1)
	d2, i2 := dig(2)
	var one Number
	var ok bool
	switch {
	case p.num[0] == '+':
		one, ok = reading(p.num, "ZZ", p.ext)
	case d0 == '0' && d1 == '0':
		one, ok = reading("+"+p.num[i1+1:], "ZZ", p.ext)
	case d0 == '8' && d1 == '1' && d2 == '0':
		one, ok = reading("+"+p.num[i2+1:], "ZZ", p.ext)
	default:
		nat, natOK := reading(p.num, opt.region(), p.ext)
		intl, intlOK := reading("+"+p.num, "ZZ", p.ext)
		blocked := opt.DisableEightAsSeven && d0 == '8'
		switch {
		case natOK && intlOK && nat.e164 != intl.e164:
			if blocked || opt.DisableEightAsSeven {
				one = ambiguous(intl, nat)
			} else {
				one = ambiguous(nat, intl)
			}
			ok = true
		case natOK && !blocked:
			one, ok = nat, true
		case intlOK:
			one, ok = intl, true
		case natOK: // blocked: the +7 reading is the only valid one
			return Number{}, &ParseError{Input: s, Err: ErrInvalid, Alternative: nat}
		}
	}
	if !ok {
		return Number{}, &ParseError{Input: s, Err: ErrInvalid}
	}
	return one, nil
}

// parseChatSlow is the library path of ParseChatID.
func parseChatSlow(id string) (Number, error) {
	p, err := prepare(id)
	if err == nil && p.ext != "" {
		err = ErrInvalid
	}
	if err == nil && strings.ContainsFunc(p.num, unicode.IsLetter) {
		err = ErrInvalid
	}
	if err != nil {
		return Number{}, &ParseError{Input: id, Err: err}
	}
	num := p.num
	if num[0] != '+' {
		num = "+" + num
	}
	n, ok := reading(num, "ZZ", "")
	if !ok || n.ext != "" {
		return Number{}, &ParseError{Input: id, Err: ErrInvalid}
	}
	return n, nil
}

// reading is one library reading of s; ext, when set, overrides the
// extension the library found.
func reading(s, region, ext string) (Number, bool) {
	e164, reg, libExt, ok := lib(s, region)
	if !ok {
		return Number{}, false
	}
	if ext == "" {
		ext = libExt
	}
	return Number{e164: e164, region: reg, ext: ext}, true
}

// ambiguous returns chosen with other recorded as its alternative.
func ambiguous(chosen, other Number) Number {
	chosen.alt, chosen.altRegion = other.e164, other.region
	return chosen
}

func isASCIIDigit(r rune) bool  { return '0' <= r && r <= '9' }
func isASCIILetter(r rune) bool { return 'a' <= r|0x20 && r|0x20 <= 'z' }

// isBlank reports whitespace, including NBSP and the narrow/figure spaces,
// and invisible format characters (zero-width space, BOM, direction marks).
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || r == '\u00a0' || r == '\u2007' || r == '\u202f' ||
		r == '\u200b' || r == '\u2060' || r == '\ufeff' || (r >= 0x80 && unicode.Is(unicode.Cf, r))
}

// isDash reports the Unicode hyphens, dashes and minus signs.
func isDash(r rune) bool {
	return (r >= '\u2010' && r <= '\u2015') || r == '\u2212' || r == '\ufe58' ||
		r == '\ufe63' || r == '\uff0d' || r == '\u2043'
}

// digitValue returns the value of a Unicode decimal digit (category Nd).
// Unicode allocates decimal digits in contiguous runs starting at zero, and
// every range of unicode.Nd starts at a zero, so the value is the offset
// from the range start modulo 10.
func digitValue(r rune) byte {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) % 10)
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) % 10)
		}
	}
	return 0
}
