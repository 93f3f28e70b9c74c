package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Limits applied before the phonenumbers library is called.
const (
	// MaxInputRunes is the longest input (after trimming surrounding
	// whitespace) that is parsed; longer inputs fail with ErrTooLong without
	// reaching the library (a 250-character input costs it ~84 µs).
	MaxInputRunes = 64
	// MinDigits is the fewest digits a number may have (extension excluded).
	MinDigits = 7
	// MaxDigits is the most digits a number may have (extension excluded):
	// 15 digits of E.164 plus a 3-digit international prefix ("810").
	MaxDigits = 18
)

// Options control how free text is read. The zero value means the
// defaults: region RU, and a leading 8 counts as +7.
type Options struct {
	// Region is the ISO 3166 region used for national readings
	// ("8 916 …", "916 …"). "" means "RU". Never use "KZ": with it the
	// library reads "79161234567" as +779161234567.
	Region string
	// DisableEightAsSeven turns off the "leading 8 counts as +7" rule: digits
	// starting with 8 (other than the 810 international prefix) are then
	// never read as a national number. The +7 reading is still reported, as
	// Number.Alternative when the international reading is valid too, or as
	// ParseError.Alternative when it is the only valid one. Zero value: the
	// rule is on.
	DisableEightAsSeven bool
}

func (o Options) region() string {
	if o.Region == "" {
		return "RU"
	}
	return o.Region
}

// Number is a validated phone number: an immutable, comparable value like
// netip.Addr. The zero Number is invalid (IsValid reports false, every
// accessor returns ""). Two Numbers are == when all their parts are equal
// (number, extension, ambiguity); use Equal to compare the numbers alone.
type Number struct {
	e164      string // "+79161234567"; "" in the zero Number
	ext       string
	region    string
	alt       string // E.164 of the other valid reading, "" unless ambiguous
	altRegion string
}

// IsValid reports whether n is a parsed number rather than the zero Number.
func (n Number) IsValid() bool { return n.e164 != "" }

// E164 returns the number in E.164 form, "+79161234567", without extension.
func (n Number) E164() string { return n.e164 }

// Digits returns E.164 without the "+", "79161234567": the form messengers
// such as WhatsApp use as the chat ID. It does not allocate.
func (n Number) Digits() string {
	if n.e164 == "" {
		return ""
	}
	return n.e164[1:]
}

// Extension returns the extension typed after the number ("доб. 123",
// "ext. 12" → "123", "12"), or "".
func (n Number) Extension() string { return n.ext }

// Region returns the ISO 3166 region the number belongs to according to the
// phonenumbers metadata ("RU", "KZ", "VN"; "001" for non-geographic
// numbers), or "".
func (n Number) Region() string { return n.region }

// Ambiguous reports whether the input had two valid, different readings
// (for example "8 (495) 123-45-67": +74951234567 and +84951234567).
// Alternative returns the reading that was not chosen.
func (n Number) Ambiguous() bool { return n.alt != "" }

// Alternative returns the reading that was not chosen when n is Ambiguous,
// else the zero Number. The alternative carries the same extension and is
// itself ambiguous, with n as its alternative, so
// n.Alternative().Alternative() == n.
func (n Number) Alternative() Number {
	if n.alt == "" {
		return Number{}
	}
	return Number{e164: n.alt, ext: n.ext, region: n.altRegion, alt: n.e164, altRegion: n.region}
}

// Equal reports whether n and m are the same valid number, ignoring
// extensions and ambiguity.
func (n Number) Equal(m Number) bool { return n.e164 != "" && n.e164 == m.e164 }

// String returns E.164 followed by " ext. N" when there is an extension
// ("+74951234567 ext. 12"), or "" for the zero Number.
func (n Number) String() string {
	if n.ext == "" {
		return n.e164
	}
	return n.e164 + " ext. " + n.ext
}

// Parse reads a phone number typed as free text into a CRM ("8 (916)
// 123-45-67", "+7 916 1234567", "89161234567;", "8 10 86 138 0013 8000",
// "+7 495 123-45-67 доб. 12"). See the package documentation for the rules.
// Errors are *ParseError values matching ErrEmpty, ErrTooShort, ErrTooLong
// or ErrInvalid. Parse never panics and is safe for concurrent use.
func Parse(s string, opt Options) (Number, error) {
	n, p, state, err := parseQuick(s, opt)
	switch state {
	case fastDone:
		return n, err
	case fastPrepared:
		return parsePrepared(s, p, opt)
	}
	return parseSlow(s, opt)
}

// ParseChatID reads a messenger chat ID ("79161234567", WhatsApp's form) as
// international digits. It never applies the trunk rule: "89161234567" is
// read as +89…, which is invalid. A leading "+" and the formatting Parse
// accepts are tolerated; letters are not.
func ParseChatID(id string) (Number, error) {
	if n, err, ok := parseChatFast(id); ok {
		return n, err
	}
	return parseChatSlow(id)
}

// MustParse is like Parse with zero Options but panics on error. It is meant
// for tests and constant inputs.
func MustParse(s string) Number {
	n, err := Parse(s, Options{})
	if err != nil {
		panic(err)
	}
	return n
}

// Match reports the index of the first phone in stored (the phones of one
// CRM contact, as typed) that is the same number as chatID, ignoring
// extensions. Stored phones that fail to parse never match.
//
// A stored phone matches by the reading Parse chooses for it under opt.
// The other reading of an ambiguous stored phone matches only when no stored
// phone matches by its chosen reading and the stored text is exactly the
// chat ID's digits ("84912345678" stored, chat 84912345678): a phone copied
// from the messenger. A formatted entry such as "8 (495) 123-45-67" never
// matches the chat +84951234567, so a Vietnamese client is not merged into a
// Moscow contact; a copied ID still finds its contact, so no duplicate is
// created. Match returns (-1, false) when chatID is not valid.
func Match(chatID Number, stored []string, opt Options) (int, bool) {
	if !chatID.IsValid() {
		return -1, false
	}
	for i, s := range stored {
		if n, err := Parse(s, opt); err == nil && n.e164 == chatID.e164 {
			return i, true
		}
	}
	digits := chatID.Digits()
	for i, s := range stored {
		if strings.TrimSpace(s) != digits {
			continue
		}
		if n, err := Parse(s, opt); err == nil && n.alt == chatID.e164 {
			return i, true
		}
	}
	return -1, false
}

// MatchString is Match for a chat ID given as text: it parses chatID with
// ParseChatID first and returns (-1, false) when that fails.
func MatchString(chatID string, stored []string, opt Options) (int, bool) {
	n, err := ParseChatID(chatID)
	if err != nil {
		return -1, false
	}
	return Match(n, stored, opt)
}

// lib parses s with the library, requires validity, and returns the
// E.164 form, region and the extension the library found. It recovers from
// panics (the library has panicked on crafted input before).
func lib(s, region string) (e164, reg, ext string, ok bool) {
	defer func() {
		if recover() != nil {
			e164, reg, ext, ok = "", "", "", false
		}
	}()
	pn, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(pn) {
		return "", "", "", false
	}
	return phonenumbers.Format(pn, phonenumbers.E164), phonenumbers.GetRegionCodeForNumber(pn), pn.GetExtension(), true
}
