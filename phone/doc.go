// Package phone normalises phone numbers typed into a CRM as free text and
// matches them against messenger chat IDs.
//
// CRM users type "8 (916) 123-45-67", "+7 916 1234567", "89161234567;" or
// "8 10 86 138 0013 8000"; messengers identify clients by international
// digits ("79161234567"). [Parse] turns the former into a [Number] (E.164,
// region, extension, ambiguity), [ParseChatID] reads the latter, and
// [Match] finds a chat's phone among a contact's stored phones. Number is a
// comparable value type in the style of netip.Addr: the zero Number is
// invalid.
//
// The package is built on github.com/nyaruka/phonenumbers v1 (not /v2).
// The two major versions cannot be linked into one binary (the program
// panics at init with a protobuf registration conflict), so a host that
// imports phonenumbers/v2 cannot use this package.
//
// # Rules
//
// Input is cleaned first: surrounding whitespace and leading text ("тел:",
// a name) are dropped, and so is everything after the last digit (";",
// "\n", "»", "(Иван)"), which v1 of the library otherwise rejects. NBSP and
// other Unicode spaces, Unicode dashes and minus signs, zero-width
// characters, fullwidth "＋" and the decimal digits of every script
// (fullwidth, Arabic-Indic, Devanagari, math bold, …) are normalised.
// Extensions are kept apart: Russian labels ("доб.", "доп.", "добавочный",
// "вн.", "внутр.") and English ones ("ext.", "x") are recognised here,
// "#", ",," and RFC 3966 ";ext=" by the library. Inputs longer than
// [MaxInputRunes] runes are rejected before the library is called.
//
// The number is then read:
//
//   - an explicit "+" (or "＋") → international;
//   - "00" → international (not Russia's prefix, but widely typed);
//   - "810" (Russia's international prefix, "8 10 86 …") → international;
//   - otherwise both readings are tried: national in [Options.Region]
//     (default RU; a leading 8 is the trunk prefix, so "8 916 …" is
//     +7 916 …) and international without the "+" ("8613800138000" is
//     +86 …). Validity decides. When both are valid and different, the
//     setting breaks the tie (national by default, international with
//     [Options.DisableEightAsSeven]); the Number is [Number.Ambiguous] and
//     carries the other reading as [Number.Alternative]. Only 11-digit
//     numbers starting 84 (Vietnam) or 88 (Taiwan 886, …) are ever
//     ambiguous — including Moscow's "8 (495) 123-45-67" = +84 95 123 4567.
//
// With DisableEightAsSeven a leading 8 (other than 810) never becomes +7:
// "8 916 123-45-67" fails with ErrInvalid, and the *ParseError's
// Alternative holds +79161234567 so the caller can say why. When the
// international reading is valid too, the +7 reading is the Alternative of
// the result.
//
// ParseChatID always reads international digits and never applies the
// trunk, 00 or 810 rules: chat "89161234567" is invalid, not +7 916 ….
//
// Match compares by the reading Parse chooses for each stored phone,
// ignoring extensions. The Alternative of an ambiguous stored phone matches
// only as a last resort, when the stored text is exactly the chat ID's
// digits (a phone copied from the messenger): a formatted "8 (495)
// 123-45-67" never matches a Vietnamese chat, so clients are not wrongly
// merged, while a copied "84912345678" still finds its contact, so no
// duplicate is created.
//
// Validity is the library's (metadata of phonenumbers v1.8.1): it follows
// number ranges, which change with routine metadata updates. The region is
// the library's too: +7 7xx is KZ, other valid +7 numbers RU.
//
// # Fast path
//
// Parse decides almost every CRM phone without the library, with the
// library's answer. The shapes that make up most CRM data — "+7", "7" or
// "8" followed by ten digits, formatted with spaces, "-", "(", ")" or ".",
// optionally followed by ";", "," or a newline — are read as they are.
// Anything else is cleaned first, exactly as for the library (trailing
// junk such as "»" or "!", leading text, extensions, Unicode digits,
// spaces and dashes, several "+", a ",," extension), and read the same way
// when the cleaned number has 11 to 13 digits.
//
// Two tries generated from the library's metadata (table.go, written by
// go generate from the program in internal/tables) decide validity and
// region as the library does: one for the ten national digits of country
// code 7 (RU, KZ), one for the international reading of an 8 followed by
// ten to twelve digits (every country code starting with 8: Japan, Korea,
// Vietnam, China, Taiwan, Bangladesh, the international services, …).
// Both readings of "8 (495) 123-45-67" are thus known without the
// library, ambiguity included.
//
// Left to the library: other regions than RU in [Options.Region], numbers
// with "+" of country codes other than 7 and 8x, other digit counts, the
// 00 and 810 prefixes, and the few 8x numbers whose country's national
// prefix the library may strip (such as +84 0…). The result is identical
// either way, errors included (see Testing).
//
// # Errors
//
// Every error is a *[ParseError] carrying the input; it matches one of the
// sentinels with errors.Is: [ErrEmpty] (nothing but whitespace and
// punctuation), [ErrTooShort] (fewer than [MinDigits] digits), [ErrTooLong]
// (more than [MaxInputRunes] runes or [MaxDigits] digits, e.g. two numbers
// in one field) or [ErrInvalid] (no valid reading). Parse never panics: the
// library call is guarded by recover.
//
// # Concurrency
//
// All functions are safe for concurrent use: the package has no mutable
// state (the fast-path tables are read-only), and the library's lazy
// regexp cache is behind its own mutex.
//
// # Testing
//
// Table tests cover the reference's inputs with both settings, junk, Unicode,
// extensions, errors and Match. TestFastPathMatchesLibrary is the
// differential test: generated CRM-like inputs, plus 8 and +8 followed by
// random digits, each compared between the fast path and the library path
// under both settings — identical Number and identical error. It runs 20k
// inputs (600 under -race, where the library is tens of times slower); set
// CRMBRIDGE_LONG=1 for 1M. TestTrie8MatchesLibrary compares the
// international trie with the library on uniformly random numbers (same
// sizes). FuzzParse checks no panic, fast == library and String() round
// trips; its seed corpus runs with plain go test. TestTablesUpToDate
// regenerates table.go from the library's metadata and fails when it is
// stale (under -race only with CRMBRIDGE_LONG=1); after a phonenumbers
// upgrade run
//
//	go generate ./phone
//
// BenchmarkBulk measures normalising a batch of realistic CRM phones with
// Parse against calling the library directly (phonenumbers.Parse,
// IsValidNumber and Format) on the same batch; BenchmarkParse does the
// same per number.
package phone
