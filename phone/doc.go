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
// The shapes that make up almost all CRM data — "+7", "7" or "8" followed
// by ten digits, formatted with spaces, "-", "(", ")" or ".", optionally
// followed by ";", "," or a newline — are parsed without the library. A
// trie generated from the library's RU and KZ metadata (table.go, 92
// nodes) decides validity and region of the ten national digits exactly
// as the library does. An 8 followed by digits that begin a country
// calling code (81, 82, 84, 86, 800, 808, 85x, 870, 878, 88x) goes to the
// library, since the international reading may be valid and the number
// ambiguous; so do other regions, extensions and non-ASCII input. The
// result is identical to the library path's, ambiguity flags and errors
// included (see Testing).
//
// Figures (go test -bench, Go 1.26, AMD EPYC, 2 shared noisy cores; the
// library path is this package's own, two library readings per number):
//
//	BenchmarkParse/fast       57–70 ns/op     16 B/op     1 allocs/op
//	BenchmarkParse/library    29–40 µs/op   3.7 KB/op    91 allocs/op   (≈ 420–500× slower)
//	BenchmarkParseAmbiguous   35–60 µs/op   5.2 KB/op   126 allocs/op   ("8 (495) 123-45-67", library path)
//	BenchmarkBulk/fast        5.5 s per 100k contacts (≈200k phones, Match of one chat ID against each)
//	BenchmarkBulk/library    13.4 s for the same phones on the library path only (2.4×)
//
// The bulk gain is smaller than the per-number one because the generated
// corpus sends ~37% of its phones to the library (8 4xx / 8 8xx / 8 870 /
// 8 878 numbers, extensions, Unicode), and those dominate the time.
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
// differential test: 50k generated CRM-like inputs (10k under -short; 1M
// with -phone.long, skipped under -short), each compared between the fast
// path and the library path under every option set — identical Number and
// identical error. FuzzParse checks no panic, fast == library and
// String() round trips; its seed corpus runs with plain go test.
// TestTablesUpToDate regenerates the trie from the library's metadata and
// fails when table.go is stale; after a phonenumbers upgrade run
//
//	go test ./phone -run TestTablesUpToDate -update
package phone
