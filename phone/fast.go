package phone

// Leaf values of trie7.
const (
	leafInvalid = iota
	leafRU
	leafKZ
	leafCount
)

// leafRegion maps a trie7 leaf to the region the library reports.
var leafRegion = [leafCount]string{leafInvalid: "", leafRU: "RU", leafKZ: "KZ"}

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

// scan11 accepts the shapes the fast path handles: optional leading spaces
// and "(", at most one "+" before the first digit, exactly 11 ASCII digits
// separated by spaces, "-", "(", ")" or ".", and after the last digit only
// those or trailing "\t\r\n;,". It returns the digit values and whether a
// "+" was seen; ok is false for anything else (the library path decides).
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

// number7 builds the Number +7<nsn> for a trie7 leaf other than leafInvalid;
// its one allocation is the E.164 string.
func number7(nsn []byte, leaf int) Number {
	var b [12]byte
	b[0], b[1] = '+', '7'
	for i, v := range nsn {
		b[2+i] = '0' + v
	}
	return Number{e164: string(b[:]), region: leafRegion[leaf]}
}

// parseFast is the fast path of Parse: +7, 7 or 8 followed by ten digits, in
// any of the formatting scan11 accepts, with the default region. It gives
// exactly the result of parseSlow (checked by the differential tests). ok is
// false when the input is not such a shape or when the answer needs the
// library: an 8 followed by digits that start a country calling code (81…,
// 82…, 84…, 86…, 800…, 870…, 880…: the international reading may be valid,
// so the number may be ambiguous).
func parseFast(s string, opt Options) (n Number, err error, ok bool) {
	if opt.Region != "" && opt.Region != "RU" {
		return Number{}, nil, false
	}
	d, plus, ok := scan11(s)
	if !ok {
		return Number{}, nil, false
	}
	nsn := d[1:]
	switch {
	case d[0] == 7:
		// "+7…" is read internationally; bare "7…" has two readings, national
		// (the library strips the country code 7) and international, and
		// both give +7<nsn>.
	case d[0] == 8 && !plus:
		if cc8Two&(1<<d[1]) != 0 || cc8Three[d[1]]&(1<<d[2]) != 0 {
			return Number{}, nil, false
		}
		// No country code starts with these digits, so the international
		// reading is invalid and only the +7 one is left.
		if opt.DisableEightAsSeven {
			pe := &ParseError{Input: s, Err: ErrInvalid}
			if leaf := lookup7(nsn); leaf != leafInvalid {
				pe.Alternative = number7(nsn, leaf)
			}
			return Number{}, pe, true
		}
	default:
		return Number{}, nil, false
	}
	leaf := lookup7(nsn)
	if leaf == leafInvalid {
		return Number{}, &ParseError{Input: s, Err: ErrInvalid}, true
	}
	return number7(nsn, leaf), nil, true
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
	return number7(d[1:], leaf), nil, true
}
