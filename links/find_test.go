package links

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFind(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		text  string
		hosts []string
		want  []string // Span.Text of each match
		urls  []string // Span.URL of each match (nil: not checked)
	}{
		"seed message, both forms": {
			text: "Здравствуйте! Каталог по ссылке amo.sh/4823 — или https://amo.sh/K/YNTCBS/YJMC10. Если…",
			want: []string{"amo.sh/4823", "https://amo.sh/K/YNTCBS/YJMC10"},
			urls: []string{"https://amo.sh/4823", "https://amo.sh/K/YNTCBS/YJMC10"},
		},
		"colon and full stop":   {text: "Перейдите: amo.sh/4823.", want: []string{"amo.sh/4823"}},
		"parentheses and dot":   {text: "(amo.sh/4823).", want: []string{"amo.sh/4823"}},
		"guillemets":            {text: "«amo.sh/4823»", want: []string{"amo.sh/4823"}},
		"quotes":                {text: `"amo.sh/4823"`, want: []string{"amo.sh/4823"}},
		"ellipsis rune":         {text: "amo.sh/4823…", want: []string{"amo.sh/4823"}},
		"ascii ellipsis":        {text: "amo.sh/4823...", want: []string{"amo.sh/4823"}},
		"exclamation":           {text: "https://amo.sh/K/YNTCBS/YJMC10!", want: []string{"https://amo.sh/K/YNTCBS/YJMC10"}},
		"question":              {text: "амо amo.sh/I/HQ8G2K/TTW5EI?", want: []string{"amo.sh/I/HQ8G2K/TTW5EI"}},
		"markdown":              {text: "[link](https://amo.sh/4823)", want: []string{"https://amo.sh/4823"}},
		"query kept":            {text: "http://amo.sh/4823?utm=1&x=2).", want: []string{"http://amo.sh/4823?utm=1&x=2"}, urls: []string{"http://amo.sh/4823?utm=1&x=2"}},
		"fragment kept":         {text: "amo.sh/4823#top, ok", want: []string{"amo.sh/4823#top"}},
		"trailing slash kept":   {text: "amo.sh/4823/ ok", want: []string{"amo.sh/4823/"}},
		"percent escape":        {text: "amo.sh/a%20b %zz", want: []string{"amo.sh/a%20b"}},
		"bad percent stops":     {text: "amo.sh/ab%zz", want: []string{"amo.sh/ab"}},
		"port 443 dropped":      {text: "https://amo.sh:443/4823", want: []string{"https://amo.sh:443/4823"}, urls: []string{"https://amo.sh/4823"}},
		"other port kept":       {text: "http://amo.sh:8080/4823", want: []string{"http://amo.sh:8080/4823"}, urls: []string{"http://amo.sh:8080/4823"}},
		"port out of range":     {text: "amo.sh:70000/4823 amo.sh:123456/1", want: nil},
		"five-digit port":       {text: "amo.sh:65535/4823", want: []string{"amo.sh:65535/4823"}},
		"port not digits":       {text: "amo.sh:ab/4823", want: nil},
		"upper case host":       {text: "AMO.SH/4823", want: []string{"AMO.SH/4823"}, urls: []string{"https://amo.sh/4823"}},
		"upper case scheme":     {text: "HTTPS://Amo.Sh/Ab", want: []string{"HTTPS://Amo.Sh/Ab"}, urls: []string{"https://amo.sh/Ab"}},
		"www":                   {text: "см. www.amo.sh/1", want: []string{"www.amo.sh/1"}, urls: []string{"https://www.amo.sh/1"}},
		"scheme and www":        {text: "http://www.amo.sh/1", want: []string{"http://www.amo.sh/1"}, urls: []string{"http://www.amo.sh/1"}},
		"glued cyrillic":        {text: "ссылкаamo.sh/4823", want: nil},
		"glued latin":           {text: "notamo.sh/4823", want: nil},
		"glued digit":           {text: "1amo.sh/4823", want: nil},
		"other tld":             {text: "amo.shop/1 amo.sh.evil.com/1", want: nil},
		"subdomain":             {text: "xamo.sh/1 x.amo.sh/1", want: nil},
		"email":                 {text: "ivan@amo.sh", want: nil},
		"email with path":       {text: "ivan@amo.sh/1", want: nil},
		"inside other url":      {text: "https://x.ru/?u=amo.sh/1 https://x.ru/amo.sh/1", want: nil},
		"scheme glued":          {text: "xhttps://amo.sh/1", want: nil},
		"no path":               {text: "amo.sh amo.sh/ https://amo.sh", want: nil},
		"path must start alnum": {text: "amo.sh/-x amo.sh/_x", want: nil},
		"ftp scheme is text":    {text: "ftp://amo.sh/1", want: nil},
		"newline and tab":       {text: "a\namo.sh/1\tamo.sh/2\n", want: []string{"amo.sh/1", "amo.sh/2"}},
		"adjacent":              {text: "amo.sh/1,amo.sh/2", want: []string{"amo.sh/1", "amo.sh/2"}},
		"empty":                 {text: "", want: nil},
		"just host":             {text: "amo.sh", want: nil},
		"host at end":           {text: "x amo.sh/", want: nil},
		"configured hosts": {
			text:  "a amo.sh/1 b clck.ru/Ab1 c amo.sh/2",
			hosts: []string{"CLCK.RU", " amo.sh. "},
			want:  []string{"amo.sh/1", "clck.ru/Ab1", "amo.sh/2"},
		},
		"configured hosts replace default": {
			text:  "amo.sh/1 clck.ru/2",
			hosts: []string{"clck.ru"},
			want:  []string{"clck.ru/2"},
		},
		"invalid hosts ignored": {
			text:  "amo.sh/1",
			hosts: []string{"", "a/b", "amo.sh"},
			want:  []string{"amo.sh/1"},
		},
		"overlapping hosts": {
			text:  "go.amo.sh/1",
			hosts: []string{"amo.sh", "go.amo.sh"},
			want:  []string{"go.amo.sh/1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spans := Find(tc.text, tc.hosts)
			var got, urls []string
			for _, s := range spans {
				if s.Text != tc.text[s.Start:s.End] {
					t.Errorf("span %+v: Text != text[Start:End] = %q", s, tc.text[s.Start:s.End])
				}
				got = append(got, s.Text)
				urls = append(urls, s.URL)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Find(%q) texts (-want +got):\n%s", tc.text, diff)
			}
			if tc.urls != nil {
				if diff := cmp.Diff(tc.urls, urls); diff != "" {
					t.Errorf("Find(%q) URLs (-want +got):\n%s", tc.text, diff)
				}
			}
		})
	}
}

func TestFindNoAllocWithoutLinks(t *testing.T) {
	msg := strings.Repeat("Здравствуйте, Иван! Ваш заказ готов. ", 8)
	if n := testing.AllocsPerRun(100, func() { _ = Find(msg, nil) }); n != 0 {
		t.Errorf("Find on a text without links allocates %v times; want 0", n)
	}
}
