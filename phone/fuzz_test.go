package phone

import (
	"testing"
)

// FuzzParse checks that Parse and ParseChatID never panic, that the fast
// path agrees with the library path on every input it takes, and that a
// parsed number is stable: its String() parses back to the same number.
// The seed corpus (run by plain go test) mixes the table tests' inputs
// with generated ones.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"8 (916) 123-45-67", "+7 916 1234567", "89161234567;", "8 10 86 138 0013 8000",
		"8 (495) 123-45-67", "84912345678", "88679762082", "0086 138 0013 8000", "79161234567",
		"+7 916 123-45-67 доб. 123", "+7 495 123-45-67 ext. 12", "tel:+7-495-123-45-67;ext=12",
		"８９１６１２３４５６７", "٨٩١٦١٢٣٤٥٦٧", "𝟖𝟗𝟏𝟔𝟏𝟐𝟑𝟒𝟓𝟔𝟕", "8–916–123–45–67", "+7\u00a0916\u00a0123\u00a045\u00a067",
		"", "abc", "112", "+", "++79161234567", "(+7) 916 123 45 67", "8-800-SAMSUNG", "8 916 123 45 67 8 916",
		"+7 916 123 45 67 (Иван)", "7 (701) 234-56-78\n", "8 (383) 222-33-44,", "8)))916(((1234567",
	} {
		f.Add(s)
	}
	c := newCorpus(7)
	for range 200 {
		f.Add(c.next())
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFast(t, s)
		for _, opt := range []Options{{}, {DisableEightAsSeven: true}} {
			n, err := Parse(s, opt)
			if err != nil {
				if n != (Number{}) {
					t.Errorf("Parse(%q) returned %#v with error %v", s, n, err)
				}
				if _, isPE := err.(*ParseError); !isPE {
					t.Errorf("Parse(%q) error %T is not *ParseError", s, err)
				}
				continue
			}
			if !n.IsValid() || n.E164()[0] != '+' {
				t.Errorf("Parse(%q) = %#v: not a valid E.164 number", s, n)
			}
			back, err := Parse(n.String(), opt)
			if err != nil || back.E164() != n.E164() || back.Extension() != n.Extension() {
				t.Errorf("Parse(%q) = %q, but Parse(%q) = %q, %v", s, n, n.String(), back, err)
			}
			if n.Ambiguous() && n.Alternative().Alternative() != n {
				t.Errorf("Parse(%q): Alternative().Alternative() = %#v; want %#v", s, n.Alternative().Alternative(), n)
			}
		}
		if n, err := ParseChatID(s); err == nil {
			if back, err := ParseChatID(n.Digits()); err != nil || back != n {
				t.Errorf("ParseChatID(%q) = %#v, but ParseChatID(%q) = %#v, %v", s, n, n.Digits(), back, err)
			}
		}
	})
}
