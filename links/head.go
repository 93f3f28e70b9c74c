package links

import (
	"bytes"
	"io"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// Preview is the data a messenger-like link preview is built from, read from
// the <head> of an HTML page: OpenGraph first, then Twitter card, then the
// plain <title> and <meta name="description">. Texts are decoded to UTF-8
// (windows-1251 and other charsets included), whitespace-collapsed and cut
// to MaxPreviewTitle / MaxPreviewDescription runes. Image is an absolute
// http(s) URL resolved against the page (and its <base href>), or "".
type Preview struct {
	// URL is the page the data was read from (after redirects).
	URL string
	// ContentType is the page's media type, e.g. "text/html",
	// "application/pdf".
	ContentType string
	// Title is og:title, else twitter:title, else <title>; "" if none.
	Title string
	// Description is og:description, else twitter:description, else
	// <meta name="description">; "" if none.
	Description string
	// Image is the first of og:image, og:image:url, og:image:secure_url,
	// twitter:image and twitter:image:src that resolves to an absolute
	// http(s) URL; "" if none.
	Image string
	// SiteName is og:site_name; "" if none.
	SiteName string
	// Type is og:type, e.g. "website", "article"; "" if none.
	Type string
}

// Limits on the texts in a Preview, in runes.
const (
	MaxPreviewTitle       = 300
	MaxPreviewDescription = 1000
)

// IsZero reports whether p holds no preview data (URL and ContentType aside).
func (p Preview) IsZero() bool {
	return p.Title == "" && p.Description == "" && p.Image == "" && p.SiteName == "" && p.Type == ""
}

// ParsePreview reads the preview data from an HTML document without any
// network access. contentType is the Content-Type header ("" if unknown; it
// is used for the charset), pageURL the address of the page (used to resolve
// a relative image; may be ""). At most maxBytes bytes are read (≤ 0: 64 KiB)
// and reading stops at <body> or </head>. It returns an error only when r
// fails before any data could be read.
func ParsePreview(r io.Reader, contentType, pageURL string, maxBytes int64) (Preview, error) {
	if maxBytes <= 0 {
		maxBytes = defaultMaxBody
	}
	base, _ := url.Parse(pageURL)
	h, err := scanHead(io.LimitReader(r, maxBytes), contentType, base, true)
	p := h.preview
	p.URL = pageURL
	p.ContentType = mediaType(contentType)
	return p, err
}

// headInfo is what scanHead found.
type headInfo struct {
	refresh string // raw content of <meta http-equiv="refresh">, "" if none
	preview Preview
}

// scanHead tokenizes r (already size-limited) until <body>, </head> or EOF,
// collecting the refresh tag and, when wantPreview is set, the preview data.
func scanHead(r io.Reader, contentType string, base *url.URL, wantPreview bool) (headInfo, error) {
	var info headInfo
	dec, err := decodeReader(r, contentType)
	if err != nil {
		return info, err
	}
	z := html.NewTokenizer(dec)
	z.SetMaxBuf(64 << 10)
	meta := map[string]string{}
	var title string
	inTitle, haveTitle := false, false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			goto done
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "body":
				goto done
			case "title":
				inTitle = tt == html.StartTagToken && !haveTitle
			case "base":
				if hasAttr && base != nil {
					if href := attrs(z)["href"]; href != "" {
						if u, err := base.Parse(strings.TrimSpace(href)); err == nil {
							base = u
						}
					}
				}
			case "meta":
				if !hasAttr {
					continue
				}
				a := attrs(z)
				content := a["content"]
				if strings.EqualFold(strings.TrimSpace(a["http-equiv"]), "refresh") {
					if info.refresh == "" {
						info.refresh = content
					}
					continue
				}
				if !wantPreview {
					continue
				}
				key := strings.ToLower(strings.TrimSpace(a["property"]))
				if key == "" {
					key = strings.ToLower(strings.TrimSpace(a["name"]))
				}
				if key != "" && content != "" {
					if _, seen := meta[key]; !seen {
						meta[key] = content
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "head":
				goto done
			case "title":
				if inTitle {
					inTitle, haveTitle = false, true
				}
			}
		case html.TextToken:
			if inTitle && wantPreview && len(title) < 4*MaxPreviewTitle {
				title += string(z.Text())
			}
		}
	}
done:
	if wantPreview {
		p := &info.preview
		p.Title = clean(first(meta["og:title"], meta["twitter:title"], title), MaxPreviewTitle)
		p.Description = clean(first(meta["og:description"], meta["twitter:description"], meta["description"]), MaxPreviewDescription)
		p.SiteName = clean(meta["og:site_name"], MaxPreviewTitle)
		p.Type = clean(meta["og:type"], 64)
		for _, k := range []string{"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"} {
			if img := absHTTP(base, meta[k]); img != "" {
				p.Image = img
				break
			}
		}
	}
	return info, nil
}

// decodeReader converts r to UTF-8 using the Content-Type charset, a BOM or
// a <meta charset> in the first 1024 bytes (the HTML sniffing algorithm of
// x/net/html/charset), falling back to windows-1252 as browsers do.
func decodeReader(r io.Reader, contentType string) (io.Reader, error) {
	buf := make([]byte, 1024)
	n, err := io.ReadFull(r, buf)
	buf = buf[:n]
	switch err {
	case nil, io.EOF, io.ErrUnexpectedEOF:
	default:
		if n == 0 {
			return nil, err
		}
	}
	var rest io.Reader = bytes.NewReader(buf)
	if err == nil {
		rest = io.MultiReader(rest, r)
	}
	if e, _, _ := charset.DetermineEncoding(buf, contentType); e != encoding.Nop {
		return transform.NewReader(rest, e.NewDecoder()), nil
	}
	return rest, nil
}

// attrs returns the tag's attributes with lower-case keys, first value wins.
func attrs(z *html.Tokenizer) map[string]string {
	m := make(map[string]string, 4)
	for {
		k, v, more := z.TagAttr()
		key := string(k)
		if _, ok := m[key]; !ok {
			m[key] = string(v)
		}
		if !more {
			return m
		}
	}
}

func first(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// clean collapses whitespace, drops control characters and invalid UTF-8,
// and cuts s to max runes (adding "…" when cut).
func clean(s string, max int) string {
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if r == utf8.RuneError || (unicode.IsControl(r) && !unicode.IsSpace(r)) {
			continue
		}
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// absHTTP resolves ref against base and returns it if it is an http(s) URL.
func absHTTP(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > maxURLLen {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// refreshURL extracts the URL from a refresh value ("0; url=/x",
// "0;URL='/x'", "5, url=x", "0; /x") following the HTML standard's parsing.
// It returns "" when the value has no URL (a plain reload).
func refreshURL(content string) string {
	s := strings.TrimLeft(content, " \t\n\f\r")
	i := 0
	for i < len(s) && ('0' <= s[i] && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return ""
	}
	rest := strings.TrimLeft(s[i:], " \t\n\f\r")
	switch {
	case rest == "":
		return ""
	case rest[0] == ';' || rest[0] == ',':
		rest = rest[1:]
	case len(rest) == len(s[i:]): // "5x": neither separator nor whitespace
		return ""
	}
	s = strings.TrimLeft(rest, " \t\n\f\r")
	if hasPrefixFold(s, "url") {
		t := strings.TrimLeft(s[3:], " \t\n\f\r")
		if strings.HasPrefix(t, "=") {
			s = strings.TrimLeft(t[1:], " \t\n\f\r")
		}
	}
	if s != "" && (s[0] == '\'' || s[0] == '"') {
		q := s[0]
		s = s[1:]
		if j := strings.IndexByte(s, q); j >= 0 {
			s = s[:j]
		}
	}
	return strings.TrimSpace(s)
}

// mediaType returns the lower-case media type of a Content-Type value.
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// isHTML reports whether a Content-Type announces HTML (an empty one may be
// HTML too).
func isHTML(contentType string) bool {
	switch mediaType(contentType) {
	case "", "text/html", "application/xhtml+xml":
		return true
	}
	return false
}
