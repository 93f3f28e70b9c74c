package phone

import (
	"math/rand/v2"
	"strings"
)

// corpus generates deterministic CRM-like phone strings: mostly the fast
// path's shapes (+7 / 7 / 8 and ten digits in many formattings, with
// trailing junk), mixed with shapes only the library path handles
// (extensions, 00/810 prefixes, foreign numbers, Unicode digits and
// dashes, 84…/88… numbers that may be ambiguous, malformed input).
type corpus struct{ r *rand.Rand }

func newCorpus(seed uint64) *corpus { return &corpus{rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))} }

// templates use 'P' for the prefix and 'D' for the next national digit.
var templates = [...]string{
	"P (DDD) DDD-DD-DD", "P DDD DDD DD DD", "PDDDDDDDDDD", "P-DDD-DDD-DD-DD",
	"P (DDD) DDDDDDD", "P.DDD.DDD.DD.DD", "P(DDD)DDD-DDDD", "P DDD DDDDDDD",
	"P(DDD) DDD DD DD", "P DDD-DDD-DDDD", "(P DDD) DDD-DD-DD", "P (DDDD) DD-DD-DD",
	"P DD DD DDD DDD", "P -DDD- DDD DD DD", "P  DDD  DDD  DD  DD",
}

var trailers = [...]string{"", "", "", "", "", ";", "\n", ",", ".", " ", "\t", ")", "\r\n", ";\n", "!", "»"}

// nsn returns ten national digits, weighted towards real Russian and
// Kazakh ranges, with uniformly random numbers mixed in.
func (c *corpus) nsn() string {
	var b [10]byte
	first := map[int]string{0: "9", 1: "9", 2: "9", 3: "9", 4: "9", 5: "49", 6: "8", 7: "7", 8: "3", 9: ""}[c.r.IntN(10)]
	i := copy(b[:], first)
	if first == "49" {
		b[2] = "5959"[c.r.IntN(4)] // 495, 499
		i = 3
	}
	for ; i < len(b); i++ {
		b[i] = byte('0' + c.r.IntN(10))
	}
	return string(b[:])
}

func (c *corpus) format(prefix, nsn string) string {
	t := templates[c.r.IntN(len(templates))]
	var b strings.Builder
	k := 0
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case 'P':
			b.WriteString(prefix)
		case 'D':
			if k < len(nsn) {
				b.WriteByte(nsn[k])
				k++
			}
		default:
			b.WriteByte(t[i])
		}
	}
	b.WriteString(nsn[k:])
	return b.String()
}

var foreign = [...]string{
	"+86 138 0013 8000", "8613800138000", "+1 (415) 555-2671", "81312345678", "821012345678",
	"886912345678", "8801712345678", "+84 91 234 56 78", "+49 30 1234567", "+380 44 123 4567",
	"+998 90 123 45 67", "+375 29 123-45-67", "84849047626", "88679762082",
}

// next returns one input.
func (c *corpus) next() string {
	switch k := c.r.IntN(100); {
	case k < 80: // fast-path shapes
		prefix := [...]string{"8", "8", "8", "+7", "+7", "7", "+ 7"}[c.r.IntN(7)]
		s := c.format(prefix, c.nsn())
		if c.r.IntN(8) == 0 {
			s = "  " + s
		}
		return s + trailers[c.r.IntN(len(trailers))]
	case k < 86: // 8 followed by digits that start a country code (84…, 88…)
		return c.format("8", "4"+c.nsn()[1:]) + trailers[c.r.IntN(len(trailers))]
	case k < 90: // extensions and labels
		s := c.format([...]string{"8", "+7"}[c.r.IntN(2)], c.nsn())
		ext := [...]string{" доб. ", " доб ", " ext. ", " x", ",,", " (доб. ", " вн. ", " доп. "}[c.r.IntN(8)]
		return s + ext + c.digits(1+c.r.IntN(4))
	case k < 93: // Unicode: NBSP, dashes, fullwidth and other digits
		s := c.format([...]string{"8", "+7"}[c.r.IntN(2)], c.nsn())
		s = strings.NewReplacer(" ", "\u00a0", "-", "\u2013").Replace(s)
		if c.r.IntN(2) == 0 {
			s = strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r - '0' + []rune{'０', '٠', '०', '𝟎'}[c.r.IntN(4)]
				}
				return r
			}, s)
		}
		return s
	case k < 96:
		return foreign[c.r.IntN(len(foreign))] + trailers[c.r.IntN(len(trailers))]
	default: // malformed: wrong digit counts, junk, prefixes
		return [...]func() string{
			func() string { return "8" + c.digits(c.r.IntN(14)) },
			func() string { return "+" + c.digits(c.r.IntN(20)) },
			func() string { return "00" + c.digits(6+c.r.IntN(10)) },
			func() string { return "810" + c.digits(6+c.r.IntN(10)) },
			func() string { return c.digits(10) },
			func() string { return "тел: " + c.format("8", c.nsn()) },
			func() string { return c.format("8", c.nsn()) + " / " + c.format("8", c.nsn()) },
			func() string { return "++" + c.format("7", c.nsn()) },
		}[c.r.IntN(8)]()
	}
}

func (c *corpus) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + c.r.IntN(10))
	}
	return string(b)
}

// eight returns "8" or "+8" followed by 10–12 uniformly random digits in one
// of the corpus's formattings: every country code starting with 8 is
// reached, not only the ranges of real Russian numbers.
func (c *corpus) eight() string {
	prefix := [...]string{"8", "8", "+8"}[c.r.IntN(3)]
	return c.format(prefix, c.digits([...]int{10, 10, 10, 11, 12}[c.r.IntN(5)])) + trailers[c.r.IntN(len(trailers))]
}
