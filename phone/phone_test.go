package phone

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// want is the expected result of one Parse call: either a number (E164,
// region, extension, alternative) or a sentinel error.
type want struct {
	e164, region, ext, alt string
	err                    error
	errAlt                 string // ParseError.Alternative.E164()
}

func ok(e164, region string) want { return want{e164: e164, region: region} }
func amb(e164, region, alt string) want {
	return want{e164: e164, region: region, alt: alt}
}
func fail(err error) want { return want{err: err} }

func check(t *testing.T, call string, n Number, err error, w want) {
	t.Helper()
	if w.err != nil {
		if !errors.Is(err, w.err) {
			t.Errorf("%s = %v, %v; want error %v", call, n, err, w.err)
			return
		}
		if n != (Number{}) {
			t.Errorf("%s = %#v with error; want the zero Number", call, n)
		}
		pe, isPE := errors.AsType[*ParseError](err)
		if !isPE {
			t.Errorf("%s: error %T is not *ParseError", call, err)
			return
		}
		if got := pe.Alternative.E164(); got != w.errAlt {
			t.Errorf("%s: ParseError.Alternative = %q; want %q", call, got, w.errAlt)
		}
		return
	}
	if err != nil {
		t.Errorf("%s = error %v; want %s", call, err, w.e164)
		return
	}
	if n.E164() != w.e164 || n.Region() != w.region || n.Extension() != w.ext ||
		n.Alternative().E164() != w.alt || n.Ambiguous() != (w.alt != "") {
		t.Errorf("%s = %s region %q ext %q ambiguous %v alt %q; want %s region %q ext %q alt %q",
			call, n.E164(), n.Region(), n.Extension(), n.Ambiguous(), n.Alternative().E164(),
			w.e164, w.region, w.ext, w.alt)
	}
	if n.Digits() != strings.TrimPrefix(n.E164(), "+") {
		t.Errorf("%s: Digits() = %q, E164() = %q", call, n.Digits(), n.E164())
	}
}

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in      string
		on, off want // default options; DisableEightAsSeven
	}{
		// The reference's prototype table (phone-and-links.md §1.7).
		"8 parens":           {"8 (916) 123-45-67", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"8 bare":             {"89161234567", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"8 newline":          {"8-916-123-45-67\n", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"7 bare":             {"79161234567", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"ten digits":         {"9161234567", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"CN no plus":         {"8613800138000", ok("+8613800138000", "CN"), ok("+8613800138000", "CN")},
		"JP no plus":         {"81312345678", ok("+81312345678", "JP"), ok("+81312345678", "JP")},
		"KR no plus":         {"821012345678", ok("+821012345678", "KR"), ok("+821012345678", "KR")},
		"84 ambiguous":       {"84912345678", amb("+74912345678", "RU", "+84912345678"), amb("+84912345678", "VN", "+74912345678")},
		"Moscow ambiguous":   {"8 (495) 123-45-67", amb("+74951234567", "RU", "+84951234567"), amb("+84951234567", "VN", "+74951234567")},
		"KZ mobile":          {"87012345678", ok("+77012345678", "KZ"), want{err: ErrInvalid, errAlt: "+77012345678"}},
		"810 IDD":            {"8 10 86 138 0013 8000", ok("+8613800138000", "CN"), ok("+8613800138000", "CN")},
		"TW no plus":         {"886912345678", ok("+886912345678", "TW"), ok("+886912345678", "TW")},
		"BD no plus":         {"8801712345678", ok("+8801712345678", "BD"), ok("+8801712345678", "BD")},
		"toll free":          {"88005553535", ok("+78005553535", "RU"), want{err: ErrInvalid, errAlt: "+78005553535"}},
		"toll free spaced":   {"8800 555 35 35", ok("+78005553535", "RU"), want{err: ErrInvalid, errAlt: "+78005553535"}},
		"8 + nine digits":    {"8916123456", fail(ErrInvalid), fail(ErrInvalid)},
		"emergency":          {"112", fail(ErrTooShort), fail(ErrTooShort)},
		"letters":            {"abc", fail(ErrInvalid), fail(ErrInvalid)},
		"empty":              {"", fail(ErrEmpty), fail(ErrEmpty)},
		"blank":              {" \t\u00a0\n", fail(ErrEmpty), fail(ErrEmpty)},
		"punctuation only":   {" ;-() ", fail(ErrEmpty), fail(ErrEmpty)},
		"lone plus":          {"+", fail(ErrTooShort), fail(ErrTooShort)},
		"plus seven":         {"+7", fail(ErrTooShort), fail(ErrTooShort)},
		"300 chars":          {strings.Repeat("8 916 ", 50), fail(ErrTooLong), fail(ErrTooLong)},
		"two numbers":        {"+7 916 123 45 67 / 8 916 765 43 21", fail(ErrTooLong), fail(ErrTooLong)},
		"too many digits":    {"8916123456789012345678", fail(ErrTooLong), fail(ErrTooLong)},
		"explicit plus":      {"+7 916 123-45-67", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"plus CN":            {"+86 138 0013 8000", ok("+8613800138000", "CN"), ok("+8613800138000", "CN")},
		"plus US":            {"+1 (415) 555-2671", ok("+14155552671", "US"), ok("+14155552671", "US")},
		"plus invalid":       {"+8 916 123 45 67", fail(ErrInvalid), fail(ErrInvalid)},
		"plus VN":            {"+84912345678", ok("+84912345678", "VN"), ok("+84912345678", "VN")},
		"plus KZ Almaty":     {"+7 727 258 12 34", ok("+77272581234", "KZ"), ok("+77272581234", "KZ")},
		"plus unassigned KZ": {"+7 (727) 123-45-67", fail(ErrInvalid), fail(ErrInvalid)},
		"double plus":        {"++79161234567", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"plus space":         {"+ 7 916 123 45 67", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"00 CN":              {"0086 138 0013 8000", ok("+8613800138000", "CN"), ok("+8613800138000", "CN")},
		"00 RU":              {"007 916 123-45-67", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"810 compact":        {"81086 138 0013 8000", ok("+8613800138000", "CN"), ok("+8613800138000", "CN")},
		"Astana 8":           {"8 (7172) 12-34-56", ok("+77172123456", "KZ"), want{err: ErrInvalid, errAlt: "+77172123456"}},
		"St Petersburg":      {"8 (812) 123-45-67", ok("+78121234567", "RU"), want{err: ErrInvalid, errAlt: "+78121234567"}},
		"+7 812":             {"+7 812 123-45-67", ok("+78121234567", "RU"), ok("+78121234567", "RU")},
		"JP 81 + 10":         {"8 (131) 234-56-78", ok("+81312345678", "JP"), ok("+81312345678", "JP")},

		// Junk CRM users leave: trailing punctuation (v1 fails on it), NBSP,
		// Unicode dashes, fullwidth and other scripts' digits.
		"semicolon":        {"89161234567;", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"comma":            {"+7 916 123 45 67,", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"guillemet":        {"«+7 916 123 45 67»", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"tab CRLF":         {" \t+7 916 123 45 67\r\n", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"full stop":        {"тел: +7 916 123 45 67.", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"leading name":     {"Иван +7 916 123 45 67", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"trailing name":    {"+7 916 123 45 67 (Иван)", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"phone colon":      {"phone: 8(916)1234567;", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"NBSP":             {"+7\u00a0916\u00a0123\u00a045\u00a067", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"narrow NBSP":      {"+7\u202f916\u202f123\u202f45\u202f67", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"en dash":          {"8–916–123–45–67", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"minus sign":       {"8\u2212916\u2212123\u221245\u221267", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"non-breaking hyp": {"+7\u2011916\u20111234567", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"zero width":       {"+7\u200b916\u200b1234567\ufeff", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"fullwidth":        {"８９１６１２３４５６７", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"fullwidth plus":   {"＋７９１６１２３４５６７", ok("+79161234567", "RU"), ok("+79161234567", "RU")},
		"arabic-indic":     {"٨٩١٦١٢٣٤٥٦٧", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"persian":          {"۸۹۱۶۱۲۳۴۵۶۷", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"devanagari":       {"८९१६१२३४५६७", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},
		"math bold":        {"𝟖𝟗𝟏𝟔𝟏𝟐𝟑𝟒𝟓𝟔𝟕", ok("+79161234567", "RU"), want{err: ErrInvalid, errAlt: "+79161234567"}},

		// Extensions are kept apart.
		"доб":           {"+7 916 123-45-67 доб. 123", want{e164: "+79161234567", region: "RU", ext: "123"}, want{e164: "+79161234567", region: "RU", ext: "123"}},
		"доб paren":     {"8 (495) 123-45-67 (доб. 123)", want{e164: "+74951234567", region: "RU", ext: "123", alt: "+84951234567"}, want{e164: "+84951234567", region: "VN", ext: "123", alt: "+74951234567"}},
		"доп":           {"+7 495 123-45-67 доп. 45", want{e164: "+74951234567", region: "RU", ext: "45"}, want{e164: "+74951234567", region: "RU", ext: "45"}},
		"добавочный":    {"+7 495 123-45-67, добавочный 4567", want{e164: "+74951234567", region: "RU", ext: "4567"}, want{e164: "+74951234567", region: "RU", ext: "4567"}},
		"вн":            {"+7 495 123-45-67 вн. 2", want{e164: "+74951234567", region: "RU", ext: "2"}, want{e164: "+74951234567", region: "RU", ext: "2"}},
		"ext":           {"+7 495 123-45-67 ext. 12", want{e164: "+74951234567", region: "RU", ext: "12"}, want{e164: "+74951234567", region: "RU", ext: "12"}},
		"EXT upper":     {"+7 495 123-45-67 EXT 12", want{e164: "+74951234567", region: "RU", ext: "12"}, want{e164: "+74951234567", region: "RU", ext: "12"}},
		"x":             {"+7 495 123-45-67 x12", want{e164: "+74951234567", region: "RU", ext: "12"}, want{e164: "+74951234567", region: "RU", ext: "12"}},
		"hash":          {"+7 495 123-45-67 #12", want{e164: "+74951234567", region: "RU", ext: "12"}, want{e164: "+74951234567", region: "RU", ext: "12"}},
		"RFC 3966":      {"tel:+7-495-123-45-67;ext=12", want{e164: "+74951234567", region: "RU", ext: "12"}, want{e164: "+74951234567", region: "RU", ext: "12"}},
		"double comma":  {"+7 495 123-45-67,,12", want{e164: "+74951234567", region: "RU", ext: "12"}, want{e164: "+74951234567", region: "RU", ext: "12"}},
		"label no num":  {"доб. 123", fail(ErrTooShort), fail(ErrTooShort)},
		"ext too short": {"+7 495 x12", fail(ErrTooShort), fail(ErrTooShort)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tt.in, Options{})
			check(t, "Parse("+quote(tt.in)+", {})", n, err, tt.on)
			n, err = Parse(tt.in, Options{DisableEightAsSeven: true})
			check(t, "Parse("+quote(tt.in)+", {DisableEightAsSeven})", n, err, tt.off)
			// Region "RU" is the default spelled out.
			n1, err1 := Parse(tt.in, Options{Region: "RU"})
			n2, err2 := Parse(tt.in, Options{})
			if !sameResult(n1, err1, n2, err2) {
				t.Errorf("Region \"RU\" and \"\" differ: %v, %v / %v, %v", n1, err1, n2, err2)
			}
			// Whatever path Parse took, the library path agrees.
			checkFast(t, tt.in)
		})
	}
}

func quote(s string) string { return `"` + s + `"` }

func TestParseRegion(t *testing.T) {
	// A national number read with another default region.
	n, err := Parse("030 1234567", Options{Region: "DE"})
	check(t, `Parse("030 1234567", {Region: DE})`, n, err, ok("+49301234567", "DE"))
	// The fast path is RU-only; with another region 7… and 8… numbers go to
	// the library, whose national reading then differs.
	n, err = Parse("+7 916 123-45-67", Options{Region: "DE"})
	check(t, `Parse("+7 916 123-45-67", {Region: DE})`, n, err, ok("+79161234567", "RU"))
	// An unknown region leaves only the international reading.
	n, err = Parse("79161234567", Options{Region: "XX"})
	check(t, `Parse("79161234567", {Region: XX})`, n, err, ok("+79161234567", "RU"))
}

func TestParseChatID(t *testing.T) {
	tests := map[string]struct {
		in string
		w  want
	}{
		"whatsapp RU":      {"79161234567", ok("+79161234567", "RU")},
		"with plus":        {"+79161234567", ok("+79161234567", "RU")},
		"KZ":               {"77012345678", ok("+77012345678", "KZ")},
		"VN":               {"84912345678", ok("+84912345678", "VN")},
		"CN":               {"8613800138000", ok("+8613800138000", "CN")},
		"no trunk rule":    {"89161234567", fail(ErrInvalid)},
		"no 810 rule":      {"81086138001380", fail(ErrInvalid)},
		"national ten":     {"9161234567", fail(ErrInvalid)},
		"unassigned +7":    {"70001234567", fail(ErrInvalid)},
		"letters":          {"7916123456a7", fail(ErrInvalid)},
		"extension":        {"79161234567 доб. 1", fail(ErrInvalid)},
		"empty":            {"", fail(ErrEmpty)},
		"short":            {"7916", fail(ErrTooShort)},
		"too long":         {strings.Repeat("7", 30), fail(ErrTooLong)},
		"spaces trimmed":   {" 79161234567\n", ok("+79161234567", "RU")},
		"fullwidth chat":   {"７９１６１２３４５６７", ok("+79161234567", "RU")},
		"formatted 8 chat": {"8 (495) 123-45-67", ok("+84951234567", "VN")},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n, err := ParseChatID(tt.in)
			check(t, "ParseChatID("+quote(tt.in)+")", n, err, tt.w)
			if err == nil && n.Ambiguous() {
				t.Errorf("ParseChatID(%q) is ambiguous; chat IDs never are", tt.in)
			}
			checkFast(t, tt.in)
		})
	}
}

func TestMatch(t *testing.T) {
	tests := map[string]struct {
		chat   string
		stored []string
		opt    Options
		want   int // -1: no match
	}{
		"8 matches 7 with the rule on":       {"79161234567", []string{"8 (916) 123-45-67"}, Options{}, 0},
		"8 does not match 7 with it off":     {"79161234567", []string{"8 (916) 123-45-67"}, Options{DisableEightAsSeven: true}, -1},
		"second phone":                       {"79161234567", []string{"+7 903 765-43-21", "+7 916 123-45-67"}, Options{}, 1},
		"first of two equal":                 {"79161234567", []string{"89161234567", "+79161234567"}, Options{}, 0},
		"junk entries skipped":               {"79161234567", []string{"", "abc", "112", "89161234567;"}, Options{}, 3},
		"extension ignored":                  {"74951234567", []string{"+7 495 123-45-67 доб. 12"}, Options{}, 0},
		"CN without plus":                    {"8613800138000", []string{"8613800138000"}, Options{}, 0},
		"810 form":                           {"8613800138000", []string{"8 10 86 138 0013 8000"}, Options{}, 0},
		"ambiguous chosen reading":           {"74951234567", []string{"8 (495) 123-45-67"}, Options{}, 0},
		"formatted alternative never":        {"84951234567", []string{"8 (495) 123-45-67"}, Options{}, -1},
		"copied chat ID matches alternative": {"84912345678", []string{"84912345678"}, Options{}, 0},
		"copied ID loses to chosen reading":  {"84912345678", []string{"84912345678", "+84 91 234 56 78"}, Options{}, 1},
		"off: chosen is +84":                 {"84912345678", []string{"8 491 234-56-78"}, Options{DisableEightAsSeven: true}, 0},
		"off: copied +7 alternative":         {"74912345678", []string{"84912345678"}, Options{DisableEightAsSeven: true}, -1},
		"different number":                   {"79161234567", []string{"+7 916 123-45-68"}, Options{}, -1},
		"empty list":                         {"79161234567", nil, Options{}, -1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			chat, err := ParseChatID(tt.chat)
			if err != nil {
				t.Fatal(err)
			}
			i, found := Match(chat, tt.stored, tt.opt)
			if i != tt.want || found != (tt.want >= 0) {
				t.Errorf("Match(%s, %q, %+v) = %d, %v; want %d, %v", tt.chat, tt.stored, tt.opt, i, found, tt.want, tt.want >= 0)
			}
			if j, f := MatchString(tt.chat, tt.stored, tt.opt); j != i || f != found {
				t.Errorf("MatchString = %d, %v; Match = %d, %v", j, f, i, found)
			}
		})
	}
	if i, found := Match(Number{}, []string{""}, Options{}); i != -1 || found {
		t.Errorf("Match(zero Number) = %d, %v; want -1, false", i, found)
	}
	if i, found := MatchString("abc", []string{"abc"}, Options{}); i != -1 || found {
		t.Errorf(`MatchString("abc") = %d, %v; want -1, false`, i, found)
	}
}

func TestNumberValue(t *testing.T) {
	var zero Number
	if zero.IsValid() || zero.E164() != "" || zero.Digits() != "" || zero.String() != "" ||
		zero.Ambiguous() || zero.Alternative() != (Number{}) || zero.Equal(zero) {
		t.Errorf("zero Number = %#v: want invalid with empty accessors", zero)
	}
	n := MustParse("8 (495) 123-45-67 доб. 12")
	if got, want := n.String(), "+74951234567 ext. 12"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	alt := n.Alternative()
	if alt.E164() != "+84951234567" || alt.Extension() != "12" || !alt.Ambiguous() || alt.Alternative() != n {
		t.Errorf("Alternative() = %#v; want +84951234567 ext 12, ambiguous, with n as its alternative", alt)
	}
	plain := MustParse("+7 495 123-45-67")
	if !plain.Equal(n) || plain == n {
		t.Errorf("Equal ignores extension and ambiguity, == does not: Equal %v, == %v", plain.Equal(n), plain == n)
	}
	if MustParse("89161234567") != MustParse("+7 (916) 123-45-67") {
		t.Error("equal inputs give unequal Numbers")
	}
	// Round trip: String() parses back to the same Number.
	for _, s := range []string{"+7 916 123-45-67", "+7 495 123-45-67 ext. 12", "+86 138 0013 8000"} {
		n := MustParse(s)
		if back := MustParse(n.String()); back != n {
			t.Errorf("Parse(%q) = %#v; want %#v", n.String(), back, n)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse(\"abc\") did not panic")
		}
	}()
	MustParse("abc")
}

func TestParseError(t *testing.T) {
	_, err := Parse("8 916 12", Options{})
	if !errors.Is(err, ErrTooShort) || errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is: %v matches ErrTooShort %v, ErrInvalid %v", err, errors.Is(err, ErrTooShort), errors.Is(err, ErrInvalid))
	}
	pe, isPE := errors.AsType[*ParseError](err)
	if !isPE || pe.Input != "8 916 12" || pe.Unwrap() != ErrTooShort {
		t.Fatalf("errors.AsType = %#v, %v", pe, isPE)
	}
	if got, want := err.Error(), `phone: number too short "8 916 12"`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	_, err = Parse("8 916 123-45-67", Options{DisableEightAsSeven: true})
	if got, want := err.Error(), `phone: invalid number "8 916 123-45-67" (a leading 8 read as +7 would give +79161234567, but DisableEightAsSeven is set)`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	long := strings.Repeat("я", 100)
	_, err = Parse(long, Options{})
	if msg := err.Error(); !errors.Is(err, ErrTooLong) || !strings.HasSuffix(msg, `…"`) || strings.Count(msg, "я") != MaxInputRunes {
		t.Errorf("Error() for a 100-rune input = %q; want ErrTooLong quoting %d runes and …", msg, MaxInputRunes)
	}
}

func TestDigitValue(t *testing.T) {
	for _, r := range "0123456789０１２３４５６７８９٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९০১২৩৪৫৬৭৮৯𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗𝟘𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠𝟡" {
		var want byte
		switch {
		case r >= '𝟘':
			want = byte(r - '𝟘')
		case r >= '𝟎':
			want = byte(r - '𝟎')
		case r >= '০':
			want = byte(r - '০')
		case r >= '०':
			want = byte(r - '०')
		case r >= '۰':
			want = byte(r - '۰')
		case r >= '٠':
			want = byte(r - '٠')
		case r >= '０':
			want = byte(r - '０')
		default:
			want = byte(r - '0')
		}
		if r >= '０' && r <= '９' {
			want = byte(r - '０')
		}
		if got := digitValue(r); got != want {
			t.Errorf("digitValue(%q) = %d; want %d", r, got, want)
		}
	}
}

// TestConcurrentParse: Parse, ParseChatID and Match are safe for
// concurrent use (no shared mutable state); run under -race.
func TestConcurrentParse(t *testing.T) {
	inputs := []string{"8 (916) 123-45-67", "8 (495) 123-45-67", "+86 138 0013 8000", "0086 138 0013 8000",
		"+7 495 123-45-67 доб. 12", "abc", "", "87012345678", "٨٩١٦١٢٣٤٥٦٧"}
	type result struct {
		n   Number
		err string
	}
	want := make([]result, len(inputs))
	for i, s := range inputs {
		n, err := Parse(s, Options{})
		want[i] = result{n, errString(err)}
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for k := range 20 {
				i := (g + k) % len(inputs)
				n, err := Parse(inputs[i], Options{})
				if got := (result{n, errString(err)}); got != want[i] {
					t.Errorf("goroutine %d: Parse(%q) = %v; want %v", g, inputs[i], got, want[i])
				}
				if _, err := ParseChatID("79161234567"); err != nil {
					t.Error(err)
				}
				if _, found := MatchString("79161234567", inputs, Options{}); !found {
					t.Error("MatchString found nothing")
				}
			}
		})
	}
	wg.Wait()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
