package links_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/crmbridge/crmbridge/links"
)

func ExampleFind() {
	text := "Каталог: «amo.sh/4823», оплата (https://amo.sh/K/YNTCBS/YJMC10). Почта: ivan@amo.sh"
	for _, s := range links.Find(text, nil) {
		fmt.Printf("%d..%d %s -> %s\n", s.Start, s.End, s.Text, s.URL)
	}
	// Output:
	// 18..29 amo.sh/4823 -> https://amo.sh/4823
	// 47..77 https://amo.sh/K/YNTCBS/YJMC10 -> https://amo.sh/K/YNTCBS/YJMC10
}

// fakeAmo is an in-memory amo.sh for the example: a RoundTripper, so no
// network is used. Hosts normally leave Options.HTTPClient nil and get the
// guarded default client.
type fakeAmo map[string]string

func (f fakeAmo) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}
	if loc, ok := f[r.URL.Path]; ok && r.URL.Host == "amo.sh" {
		resp.StatusCode = http.StatusFound
		resp.Header.Set("Location", loc)
	} else if r.URL.Host == "kruglosutka.ru" {
		resp.StatusCode = http.StatusOK
		resp.Header.Set("Content-Type", "text/html; charset=utf-8")
		resp.Body = io.NopCloser(strings.NewReader(`<html><head><meta property="og:title" content="Вода 24/7"></head></html>`))
	}
	return resp, nil
}

func ExampleExpander_ExpandText() {
	e := links.NewExpander(links.Options{
		HTTPClient:  &http.Client{Transport: fakeAmo{"/4823": "https://kruglosutka.ru/catalog"}},
		WithPreview: true,
	})
	res, err := e.ExpandText(context.Background(), "Каталог: amo.sh/4823. Старая ссылка: amo.sh/1.")
	if err != nil {
		fmt.Println("error:", err) // only for a nil/done ctx or invalid options
	}
	fmt.Println(res.Text)
	for _, l := range res.Links {
		switch {
		case l.Replaced:
			fmt.Printf("%s -> %s in %d hop(s), preview %q\n", l.Short, l.Long, l.Hops, l.Preview.Title)
		case errors.Is(l.Err, links.ErrStatus):
			fmt.Printf("%s kept: %v\n", l.Short, l.Err)
		}
	}
	// Output:
	// Каталог: https://kruglosutka.ru/catalog. Старая ссылка: amo.sh/1.
	// amo.sh/4823 -> https://kruglosutka.ru/catalog in 1 hop(s), preview "Вода 24/7"
	// amo.sh/1 kept: links: expanding https://amo.sh/1: https://amo.sh/1 answered HTTP 404
}

// Tests against an httptest server (on 127.0.0.1) open the dial guard for
// that one address with Options.AllowAddrs and list the server's host as a
// shortener host.
func ExampleOptions_allowAddrs() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/4823" {
			http.Redirect(w, r, "/catalog", http.StatusFound)
			return
		}
		io.WriteString(w, "catalog")
	}))
	defer srv.Close()

	opt := links.Options{Hosts: []string{"127.0.0.1"}}
	closed, _ := links.NewExpander(opt).ExpandText(context.Background(), srv.URL+"/4823")
	fmt.Println("hatch closed:", errors.Is(closed.Links[0].Err, links.ErrBlockedAddress))

	opt.AllowAddrs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	open, _ := links.NewExpander(opt).ExpandText(context.Background(), srv.URL+"/4823")
	fmt.Println("hatch open:", strings.Replace(open.Text, srv.URL, "http://test", 1))
	// Output:
	// hatch closed: true
	// hatch open: http://test/catalog
}

func ExampleGuard_Check() {
	var g links.Guard // zero Guard: production rules
	for _, a := range []string{"93.184.216.34", "169.254.169.254", "::ffff:127.0.0.1", "100.100.100.200"} {
		fmt.Println(a, g.Check(netip.MustParseAddr(a)))
	}
	// Output:
	// 93.184.216.34 <nil>
	// 169.254.169.254 links: address 169.254.169.254 not allowed (link-local (and cloud metadata 169.254.169.254))
	// ::ffff:127.0.0.1 links: address 127.0.0.1 not allowed (loopback)
	// 100.100.100.200 links: address 100.100.100.200 not allowed (CGNAT (and Alibaba Cloud metadata 100.100.100.200))
}

func ExampleParsePreview() {
	page := "<html><head><meta charset=\"windows-1251\"><title>\xca\xe0\xf2\xe0\xeb\xee\xe3</title>" +
		`<meta property="og:image" content="/img/cover.jpg"></head><body>...</body></html>`
	p, _ := links.ParsePreview(strings.NewReader(page), "text/html", "https://kruglosutka.ru/catalog", 0)
	fmt.Println(p.Title)
	fmt.Println(p.Image)
	// Output:
	// Каталог
	// https://kruglosutka.ru/img/cover.jpg
}
