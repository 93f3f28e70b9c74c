package links

import (
	"sort"
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
	if len(hosts) == 0 {
		return findHost(nil, text, DefaultHost)
	}
	var spans []Span
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimSpace(h), ".")
		if !validHost(h) {
			continue
		}
		spans = findHost(spans, text, h)
	}
	if len(hosts) > 1 && len(spans) > 1 {
		sort.SliceStable(spans, func(i, j int) bool {
			if spans[i].Start != spans[j].Start {
				return spans[i].Start < spans[j].Start
			}
			return spans[i].End > spans[j].End
		})
		out := spans[:1]
		for _, s := range spans[1:] {
			if s.Start >= out[len(out)-1].End {
				out = append(out, s)
			}
		}
		spans = out
	}
	return spans
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

// findHost appends to spans the links on host h found in text.
func findHost(spans []Span, text, h string) []Span {
	first := lower(h[0])
	for i := 0; i+len(h) < len(text); i++ {
		if lower(text[i]) != first || !hasPrefixFold(text[i:], h) {
			continue
		}
		s, ok := matchAt(text, i, h)
		if !ok {
			continue
		}
		spans = append(spans, s)
		i = s.End - 1
	}
	return spans
}

// matchAt tries to read a link whose host h starts at text[i].
func matchAt(text string, i int, h string) (Span, bool) {
	// Right side: optional port, then '/' and a path starting with alnum.
	pos := i + len(h)
	portStart, portEnd := pos, pos
	if pos < len(text) && text[pos] == ':' {
		j := pos + 1
		for j < len(text) && '0' <= text[j] && text[j] <= '9' {
			j++
		}
		if n := j - pos - 1; n == 0 || n > 5 {
			return Span{}, false
		}
		portStart, portEnd = pos+1, j
		pos = j
	}
	if pos+1 >= len(text) || text[pos] != '/' || !isAlnum(text[pos+1]) {
		return Span{}, false
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
		return Span{}, false
	}

	hostStart := i
	if start < i && text[i-1] == '.' { // "www." written in the text
		hostStart = i - 4
	}
	port := text[portStart:portEnd]
	if port != "" {
		if n := atoi(port); n == 0 || n > 65535 {
			return Span{}, false
		}
		if port == "443" && scheme == "https" || port == "80" && scheme == "http" {
			port = ""
		}
	}
	return Span{
		Start: start,
		End:   pos,
		Text:  text[start:pos],
		URL:   buildURL(scheme, text[hostStart:i+len(h)], port, text[pathStart:pos]),
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

// buildURL concatenates the parts with one allocation, lower-casing the host.
func buildURL(scheme, host, port, rest string) string {
	n := len(scheme) + 3 + len(host) + len(rest)
	if port != "" {
		n += 1 + len(port)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(scheme)
	b.WriteString("://")
	for i := 0; i < len(host); i++ {
		b.WriteByte(lower(host[i]))
	}
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(rest)
	return b.String()
}
