package phone

import (
	"testing"
)

// benchInputs are the shapes that make up most CRM data; all of them take
// the fast path.
var benchInputs = []string{
	"8 (916) 123-45-67", "+7 916 1234567", "89161234567;", "+79161234567",
	"8-912-345-67-89", "7 (903) 765 43 21", "8 (383) 222-33-44", "+7 (701) 234-56-78\n",
}

func TestBenchInputsTakeFastPath(t *testing.T) {
	for _, s := range benchInputs {
		if _, err, ok := parseFast(s, Options{}); !ok || err != nil {
			t.Errorf("parseFast(%q) = ok %v, err %v; want the fast path to succeed", s, ok, err)
		}
	}
}

// BenchmarkParse compares Parse (fast path) with the library path on the
// same inputs; one op parses one number.
func BenchmarkParse(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := Parse(benchInputs[i%len(benchInputs)], Options{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := parseSlow(benchInputs[i%len(benchInputs)], Options{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkParseAmbiguous is the library path that "8 (495) 123-45-67" takes.
func BenchmarkParseAmbiguous(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if n, err := Parse("8 (495) 123-45-67", Options{}); err != nil || !n.Ambiguous() {
			b.Fatal(n, err)
		}
	}
}

// contacts returns n CRM contacts with 1–3 phones each in the corpus's mixed
// formats.
func contacts(n int) [][]string {
	c := newCorpus(42)
	out := make([][]string, n)
	for i := range out {
		phones := make([]string, 1+c.r.IntN(3))
		for j := range phones {
			phones[j] = c.next()
		}
		out[i] = phones
	}
	return out
}

// BenchmarkBulk parses every phone of 100k CRM contacts (1–3 phones each,
// realistic mixed formats) and matches a chat ID against each contact;
// one op is the whole batch. "library" is the same work on the library path
// only (run it with -benchtime=1x: it takes seconds).
func BenchmarkBulk(b *testing.B) {
	cs := contacts(100_000)
	chat, err := ParseChatID("79161234567")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, phones := range cs {
				Match(chat, phones, Options{})
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, phones := range cs {
				for _, p := range phones {
					_, _ = parseSlow(p, Options{})
				}
			}
		}
	})
}
