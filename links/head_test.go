package links

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding/charmap"
)

func cp1251(t *testing.T, s string) string {
	t.Helper()
	b, err := charmap.Windows1251.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePreview(t *testing.T) {
	t.Parallel()
	const pageURL = "https://shop.example/catalog/item?id=1"
	tests := map[string]struct {
		html, contentType string
		max               int64
		want              Preview
	}{
		"opengraph": {
			html: `<html><head><title>Fallback</title>
				<meta property="og:title" content="Круглосуточно &amp; рядом">
				<meta property="og:description" content="  Доставка
					воды  ">
				<meta property="og:image" content="/i.png">
				<meta property="og:site_name" content="Круглосутка">
				<meta property="og:type" content="website">
				</head><body><meta property="og:title" content="after body"></body></html>`,
			contentType: "text/html; charset=utf-8",
			want: Preview{Title: "Круглосуточно & рядом", Description: "Доставка воды", Image: "https://shop.example/i.png",
				SiteName: "Круглосутка", Type: "website"},
		},
		"og via name=, first value wins, upper-case keys": {
			html: `<meta NAME="OG:TITLE" content="one"><meta name="og:title" content="two">
				<meta name="og:image" content="//cdn.example/x.jpg">`,
			want: Preview{Title: "one", Image: "https://cdn.example/x.jpg"},
		},
		"twitter card fallback": {
			html: `<meta name="twitter:title" content="tw"><meta name="twitter:description" content="twd">
				<meta name="twitter:image" content="https://img.example/t.png"><title>plain</title>`,
			want: Preview{Title: "tw", Description: "twd", Image: "https://img.example/t.png"},
		},
		"title and description fallback": {
			html: `<head><title> Простой
				заголовок </title><meta name="description" content="Описание"></head>`,
			want: Preview{Title: "Простой заголовок", Description: "Описание"},
		},
		"base href resolves image": {
			html: `<base href="https://static.example/dir/"><meta property="og:image" content="a.png">`,
			want: Preview{Image: "https://static.example/dir/a.png"},
		},
		"bad image schemes dropped": {
			html: `<meta property="og:image" content="javascript:alert(1)"><meta property="og:image:secure_url" content="data:image/png;base64,AAAA"><meta name="twitter:image" content="/ok.png">`,
			want: Preview{Image: "https://shop.example/ok.png"},
		},
		"windows-1251 by header": {
			html:        "<title>" + "\xca\xe0\xf2\xe0\xeb\xee\xe3" + "</title>", // "Каталог" in cp1251
			contentType: "text/html; charset=windows-1251",
			want:        Preview{Title: "Каталог"},
		},
		"windows-1251 by meta http-equiv": {
			html:        `<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><meta property="og:title" content="` + "\xc2\xee\xe4\xe0" + `">`,
			contentType: "text/html",
			want:        Preview{Title: "Вода"},
		},
		"size bound stops reading": {
			html: "<title>x</title>" + strings.Repeat("<!-- pad -->", 100) + `<meta property="og:description" content="late">`,
			max:  200,
			want: Preview{Title: "x"},
		},
		"title cut to limit": {
			html: "<title>" + strings.Repeat("я", MaxPreviewTitle+50) + "</title>",
			want: Preview{Title: strings.Repeat("я", MaxPreviewTitle) + "…"},
		},
		"empty document": {html: "", want: Preview{}},
		"not html at all": {
			html: "\x00\x01\x02 binary", want: Preview{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePreview(strings.NewReader(tc.html), tc.contentType, pageURL, tc.max)
			if err != nil {
				t.Fatalf("ParsePreview error = %v", err)
			}
			tc.want.URL = pageURL
			tc.want.ContentType = mediaType(tc.contentType)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePreview (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePreviewReaderError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	if _, err := ParsePreview(iotest.ErrReader(boom), "", "", 0); !errors.Is(err, boom) {
		t.Errorf("err = %v; want the reader's error", err)
	}
	// Data before the error is still used.
	r := io.MultiReader(strings.NewReader("<title>ok</title>"), iotest.ErrReader(boom))
	if p, err := ParsePreview(r, "", "", 0); err != nil || p.Title != "ok" {
		t.Errorf("ParsePreview = %+v, %v; want title ok", p, err)
	}
}

func TestRefreshURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"0; url=/final":        "/final",
		"0;URL='/final'":       "/final",
		`0; URL="/a b"`:        "/a b",
		"5, url=x":             "x",
		"0; /final":            "/final",
		"  3.5 ;  Url = /f ":   "/f",
		"0 https://x.example/": "https://x.example/",
		"0;url='/unterminated": "/unterminated",
		"30":                   "",
		"":                     "",
		"x; url=/f":            "",
		"5x":                   "",
		"0;":                   "",
		"0; url=":              "",
		"0; urlx=/f":           "urlx=/f", // as the HTML standard says
	}
	for in, want := range tests {
		if got := refreshURL(in); got != want {
			t.Errorf("refreshURL(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestExpanderPreview(t *testing.T) {
	t.Parallel()
	og := `<html><head><meta charset="windows-1251"><meta property="og:title" content="Каталог"><meta property="og:image" content="/i.png"></head><body>` + strings.Repeat("x", 1<<20) + `</body></html>`
	ts := newTestServer(t, routes(map[string]http.HandlerFunc{
		"/short":  redirect(http.StatusFound, "/page"),
		"/page":   page("text/html", cp1251(t, og)),
		"/pdf":    page("application/pdf", "%PDF-1.4"),
		"/broken": redirect(http.StatusFound, "file:///etc/passwd"),
	}))

	t.Run("Preview method", func(t *testing.T) {
		t.Parallel()
		e := NewExpander(testOptions())
		p, err := e.Preview(context.Background(), ts.URL+"/short")
		if err != nil {
			t.Fatal(err)
		}
		want := Preview{URL: ts.URL + "/page", ContentType: "text/html", Title: "Каталог", Image: ts.URL + "/i.png"}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("Preview (-want +got):\n%s", diff)
		}
		p, err = e.Preview(context.Background(), ts.URL+"/pdf")
		if err != nil || p.URL != ts.URL+"/pdf" || p.ContentType != "application/pdf" || !p.IsZero() {
			t.Errorf("Preview(pdf) = %+v, %v; want URL and ContentType only", p, err)
		}
		for _, bad := range []string{"file:///etc/passwd", "javascript:alert(1)", ts.URL + "/broken", "%zz"} {
			if _, err := e.Preview(context.Background(), bad); err == nil {
				t.Errorf("Preview(%q) succeeded; want an error", bad)
			}
		}
		if _, err := e.Preview(context.Background(), "file:///etc/passwd"); !errors.Is(err, ErrScheme) {
			t.Errorf("Preview(file:) err = %v; want ErrScheme", err)
		}
	})
	t.Run("WithPreview in ExpandText", func(t *testing.T) {
		t.Parallel()
		opt := testOptions()
		opt.WithPreview = true
		res := mustExpand(t, NewExpander(opt), ts.URL+"/short")
		l := res.Links[0]
		if l.Preview == nil || l.Preview.Title != "Каталог" || l.Preview.URL != ts.URL+"/page" {
			t.Fatalf("Preview = %+v; want the page's OpenGraph data", l.Preview)
		}
		l.Preview.Title = "mutated" // results are the caller's own copy
		l.Trail[0].URL = "mutated"
		res = mustExpand(t, NewExpander(opt), ts.URL+"/short")
		if res.Links[0].Preview.Title != "Каталог" {
			t.Error("a caller's change to a result leaked into the cache")
		}
	})
	t.Run("no preview by default", func(t *testing.T) {
		t.Parallel()
		res := mustExpand(t, NewExpander(testOptions()), ts.URL+"/short")
		if res.Links[0].Preview != nil {
			t.Errorf("Preview = %+v; want nil without WithPreview", res.Links[0].Preview)
		}
	})
}
