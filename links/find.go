package links

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultHost is the shortener host used when no hosts are configured:
// amoCRM Salesbot's link shortener.
const DefaultHost = "amo.sh"

// Span is one short link found in a text by [Find].
type Span struct {
	// Start and End are byte offsets into the text: text[Start:End] is the
	// link exactly as written (scheme and "www." included when present,
	// surrounding punctuation excluded).
	Start, End int
	// Text is text[Start:End].
	Text string
	// URL is the normalised absolute form of the link and the cache key:
	// scheme lower-cased ("https" when the text has none), host lower-cased,
	// default port dropped, path, query and fragment kept byte for byte.
	URL string
}

// Find returns the short links on the given hosts in text, in order of
// appearance, never overlapping. hosts are compared case-insensitively; a nil
// or empty slice means {[DefaultHost]}. Empty hosts and hosts with characters
// other than ASCII letters, digits, '.' and '-' are ignored (see
// [Options.Validate] for a checked configuration).
//
// A link is the host, optionally preceded by "http://" or "https://" and/or
// "www.", optionally followed by ":port", then "/" and a path whose first
// character is an ASCII letter or digit; path segments of letters, digits,
// '-', '_', '.', '~' and %XX escapes; an optional query and fragment. Trailing
// '.', ',', ':', ';', '!' and '?' are left to the sentence. The character
// before the link must not be a letter or digit of any script, nor one of
// ._@/-=%&?#~+\ so that "ivan@amo.sh", "notamo.sh/1", "ссылкаamo.sh/1" and
// links inside other URLs are not matched.
//
// Find is pure and safe for concurrent use. It does not allocate when text
// holds no link.
func Find(text string, hosts []string) []Span {
	var spans []Span
	sc := newScanner(text, hosts)
	for m, ok := sc.next(); ok; m, ok = sc.next() {
		spans = append(spans, m.span(text))
	}
	return spans
}

// scanner yields the links of a text one at a time, in order of appearance
// and never overlapping, without collecting them: each host's matches are
// found left to right (the next search starts at the end of the host's
// previous match) and the per-host sequences are merged by start offset,
// the longer link first on a tie, skipping a link that overlaps the one
// before. [Find] and [Expander.ExpandText] both read links through it, so
// they always agree.
type scanner struct {
	text  string
	hosts []string // as given; nil or empty: DefaultHost
	init  bool
	end   int     // end of the last link yielded
	fixed [2]head // the next match of hosts[0] and hosts[1]
	more  []head  // of hosts[2:]
}

// head is the next match of one host; ok is false once the host has no
// more (or is not a valid host).
type head struct {
	m  match
	ok bool
}

func newScanner(text string, hosts []string) scanner {
	return scanner{text: text, hosts: hosts}
}

func (s *scanner) numHosts() int { return max(len(s.hosts), 1) }

func (s *scanner) host(i int) string {
	if len(s.hosts) == 0 {
		return DefaultHost
	}
	return strings.TrimSuffix(strings.TrimSpace(s.hosts[i]), ".")
}

func (s *scanner) head(i int) *head {
	if i < len(s.fixed) {
		return &s.fixed[i]
	}
	return &s.more[i-len(s.fixed)]
}

// next returns the next link, or false when there is none.
func (s *scanner) next() (match, bool) {
	n := s.numHosts()
	if !s.init {
		s.init = true
		if n > len(s.fixed) {
			s.more = make([]head, n-len(s.fixed))
		}
		for i := range n {
			if h := s.host(i); validHost(h) {
				hd := s.head(i)
				hd.m, hd.ok = nextMatch(s.text, 0, h)
			}
		}
	}
	for {
		best := -1
		var bm match
		for i := range n {
			hd := s.head(i)
			if hd.ok && (best < 0 || hd.m.start < bm.start || hd.m.start == bm.start && hd.m.end > bm.end) {
				best, bm = i, hd.m
			}
		}
		if best < 0 {
			return match{}, false
		}
		hd := s.head(best)
		hd.m, hd.ok = nextMatch(s.text, bm.end, s.host(best))
		if bm.start >= s.end {
			s.end = bm.end
			return bm, true
		}
	}
}

// validHost reports whether h is a plausible ASCII host name.
func validHost(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || h[0] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(isAlnum(c) || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix p,
// ignoring ASCII case.
func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if lower(s[i]) != lower(p[i]) {
			return false
		}
	}
	return true
}

// pathByte reports whether c may appear in a path segment (the '%' case is
// checked separately).
func pathByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~'
}

// queryByte reports whether c may appear in a query or fragment. Quotes,
// brackets and parentheses are excluded: they belong to the sentence.
func queryByte(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '-', '_', '.', '~', '!', '$', '&', '*', '+', ',', ';', '=', ':', '@', '/', '?':
		return true
	}
	return false
}

// trailingPunct is what a sentence may put right after a link.
func trailingPunct(c byte) bool {
	switch c {
	case '.', ',', ':', ';', '!', '?':
		return true
	}
	return false
}

// boundaryOK reports whether a link may start right after prefix.
func boundaryOK(prefix string) bool {
	if prefix == "" {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(prefix)
	if r < utf8.RuneSelf {
		c := byte(r)
		if isAlnum(c) {
			return false
		}
		switch c {
		case '.', '_', '@', '/', '-', '=', '%', '&', '?', '#', '~', '+', '\\':
			return false
		}
		return true
	}
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
}

// nextMatch returns the first link on host h whose host name starts at or
// after text[from].
func nextMatch(text string, from int, h string) (match, bool) {
	first := lower(h[0])
	for i := from; i+len(h) < len(text); i++ {
		if lower(text[i]) != first || !hasPrefixFold(text[i:], h) {
			continue
		}
		if m, ok := matchAt(text, i, h); ok {
			return m, true
		}
	}
	return match{}, false
}

// match is one link found in a text, as offsets: building its Span (and
// the normalised URL) is left to the caller, so scanning allocates nothing.
type match struct {
	start, end         int    // the link as written
	scheme             string // "http" or "https"
	hostStart, hostEnd int    // the host as written, "www." included
	port               string // "" when absent or the scheme's default
	pathStart          int    // path, query and fragment: text[pathStart:end]
}

// span returns m as a Span of text, with one allocation for the URL.
func (m match) span(text string) Span {
	host, rest := text[m.hostStart:m.hostEnd], text[m.pathStart:m.end]
	var b strings.Builder
	b.Grow(len(m.scheme) + 3 + len(host) + len(m.port) + 1 + len(rest))
	b.WriteString(m.scheme)
	b.WriteString("://")
	for i := 0; i < len(host); i++ {
		b.WriteByte(lower(host[i]))
	}
	if m.port != "" {
		b.WriteByte(':')
		b.WriteString(m.port)
	}
	b.WriteString(rest)
	return Span{Start: m.start, End: m.end, Text: text[m.start:m.end], URL: b.String()}
}

// appendURL appends the Span.URL of m to buf, for look-ups that must not
// allocate.
func (m match) appendURL(buf []byte, text string) []byte {
	buf = append(buf, m.scheme...)
	buf = append(buf, "://"...)
	for i := m.hostStart; i < m.hostEnd; i++ {
		buf = append(buf, lower(text[i]))
	}
	if m.port != "" {
		buf = append(buf, ':')
		buf = append(buf, m.port...)
	}
	return append(buf, text[m.pathStart:m.end]...)
}

// matchAt tries to read a link whose host h starts at text[i].
func matchAt(text string, i int, h string) (match, bool) {
	// Right side: optional port, then '/' and a path starting with alnum.
	pos := i + len(h)
	portStart, portEnd := pos, pos
	if pos < len(text) && text[pos] == ':' {
		j := pos + 1
		for j < len(text) && '0' <= text[j] && text[j] <= '9' {
			j++
		}
		if n := j - pos - 1; n == 0 || n > 5 {
			return match{}, false
		}
		portStart, portEnd = pos+1, j
		pos = j
	}
	if pos+1 >= len(text) || text[pos] != '/' || !isAlnum(text[pos+1]) {
		return match{}, false
	}
	pathStart := pos
	pos++
	for pos < len(text) {
		c := text[pos]
		switch {
		case pathByte(c) || c == '/':
			pos++
		case c == '%' && pos+2 < len(text) && isHex(text[pos+1]) && isHex(text[pos+2]):
			pos += 3
		default:
			goto query
		}
	}
query:
	if pos < len(text) && text[pos] == '?' {
		pos = scanQuery(text, pos+1)
	}
	if pos < len(text) && text[pos] == '#' {
		pos = scanQuery(text, pos+1)
	}
	for pos > pathStart+2 && trailingPunct(text[pos-1]) {
		pos--
	}

	// Left side: optional "www.", optional scheme, then the boundary.
	start := i
	if !strings.HasPrefix(h, "www.") && start >= 4 && hasPrefixFold(text[start-4:], "www.") {
		start -= 4
	}
	scheme := "https"
	switch {
	case start >= 8 && hasPrefixFold(text[start-8:], "https://"):
		start -= 8
	case start >= 7 && hasPrefixFold(text[start-7:], "http://"):
		start -= 7
		scheme = "http"
	}
	if !boundaryOK(text[:start]) {
		return match{}, false
	}

	hostStart := i
	if start < i && text[i-1] == '.' { // "www." written in the text
		hostStart = i - 4
	}
	port := text[portStart:portEnd]
	if port != "" {
		if n := atoi(port); n == 0 || n > 65535 {
			return match{}, false
		}
		if port == "443" && scheme == "https" || port == "80" && scheme == "http" {
			port = ""
		}
	}
	return match{
		start: start, end: pos, scheme: scheme,
		hostStart: hostStart, hostEnd: i + len(h),
		port: port, pathStart: pathStart,
	}, true
}

func scanQuery(text string, pos int) int {
	for pos < len(text) {
		c := text[pos]
		switch {
		case queryByte(c):
			pos++
		case c == '%' && pos+2 < len(text) && isHex(text[pos+1]) && isHex(text[pos+2]):
			pos += 3
		default:
			return pos
		}
	}
	return pos
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
