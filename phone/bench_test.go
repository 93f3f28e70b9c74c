package phone

import (
	"testing"

	"github.com/nyaruka/phonenumbers"
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
// same inputs; one op parses one number. Same run as BenchmarkBulk's
// figures: fast 222 ns/op, 16 B, 1 alloc; library 69 µs/op, 3.7 KB, 91
// allocs (≈ 310×). BenchmarkParseAmbiguous ("8 (495) 123-45-67", both
// readings from the tables): 226 ns/op, 2 allocs.
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

// BenchmarkParseAmbiguous parses "8 (495) 123-45-67", valid both as +7 495
// and as +84 95.
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

// bulkContacts is the size of BenchmarkBulk's batch.
const bulkContacts = 20_000

// BenchmarkBulk normalises every phone of 20k CRM contacts (1–3 phones
// each, ≈40k phones in the corpus's realistic mix of formats: about 80%
// the plain +7/7/8 shapes, with trailing junk such as "»" or "!" on some;
// 6% 8 4xx numbers that are also valid abroad; extensions; Unicode digits
// and dashes; foreign and malformed numbers). One op is the whole batch;
// ns/phone is the cost per phone.
//
//   - phone: Parse, what an index build does.
//   - nyaruka: the library called directly: phonenumbers.Parse (region RU),
//     IsValidNumber, Format(E164). The baseline.
//   - library: this package's library path only (two library readings for
//     numbers without "+", the cleaning, the extension rules).
//   - match: Match of one chat ID against each contact's phones.
//
// Figures (Go 1.26, 2 vCPUs shared with other jobs, load average ≈ 9;
// go test ./phone -run '^$' -bench . -benchmem, one run):
//
//	BenchmarkBulk/phone      1256 ns/phone    3.7 allocs/phone
//	BenchmarkBulk/nyaruka   14777 ns/phone     35 allocs/phone   (11.8× phone)
//	BenchmarkBulk/library   37764 ns/phone     86 allocs/phone   (30× phone)
//	BenchmarkBulk/match      1705 ns/phone
//
// 96% of the batch's phones are decided without the library
// (TestBulkCorpusMostlyFast); the rest (numbers with "+" of other
// countries, other digit counts, 00/810 prefixes) cost one or two library
// readings each and make up most of the time.
func BenchmarkBulk(b *testing.B) {
	cs := contacts(bulkContacts)
	phones := 0
	for _, c := range cs {
		phones += len(c)
	}
	perPhone := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(phones), "ns/phone")
	}
	b.Run("phone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range cs {
				for _, p := range c {
					_, _ = Parse(p, Options{})
				}
			}
		}
		perPhone(b)
	})
	b.Run("nyaruka", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range cs {
				for _, p := range c {
					if pn, err := phonenumbers.Parse(p, "RU"); err == nil && phonenumbers.IsValidNumber(pn) {
						_ = phonenumbers.Format(pn, phonenumbers.E164)
					}
				}
			}
		}
		perPhone(b)
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range cs {
				for _, p := range c {
					_, _ = parseSlow(p, Options{})
				}
			}
		}
		perPhone(b)
	})
	chat, err := ParseChatID("79161234567")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range cs {
				Match(chat, c, Options{})
			}
		}
		perPhone(b)
	})
}

// TestBulkCorpusMostlyFast guards BenchmarkBulk's premise: most of its
// phones are decided without the library.
func TestBulkCorpusMostlyFast(t *testing.T) {
	total, fast := 0, 0
	for _, c := range contacts(2_000) {
		for _, p := range c {
			total++
			if _, _, ok := parseFast(p, Options{}); ok {
				fast++
			}
		}
	}
	if fast < total*90/100 {
		t.Errorf("the fast path decides %d of %d bulk phones, want at least 90%%", fast, total)
	}
	t.Logf("the fast path decides %d of %d bulk phones", fast, total)
}

// TestCleanedInputsTakeFastPath lists inputs that left the fast path
// before cleaning and the 8x tables existed; they must now be decided
// without the library, with the library path's result.
func TestCleanedInputsTakeFastPath(t *testing.T) {
	for _, s := range []string{
		"8 (495) 123-45-67", "84912345678", "8 (916) 123-45-67»", "+7 916 123 45 67!",
		"８９１６１２３４５６７", "8–916–123–45–67", "+7\u00a0916\u00a0123\u00a045\u00a067",
		"+7 495 123-45-67 доб. 12", "8 495 123-45-67,,12", "++79161234567", "тел: 8 916 123 45 67",
		"8613800138000", "+84 91 234 56 78", "886912345678", "8801712345678", "81312345678",
		"88679762082", "+7 (701) 234-56-78 (Иван)",
	} {
		for _, opt := range []Options{{}, {DisableEightAsSeven: true}} {
			fn, fe, ok := parseFast(s, opt)
			if !ok {
				t.Errorf("parseFast(%q, %+v) left it to the library", s, opt)
				continue
			}
			if sn, se := parseSlow(s, opt); !sameResult(fn, fe, sn, se) {
				t.Errorf("Parse(%q, %+v): fast path = %#v, %v; library path = %#v, %v", s, opt, fn, fe, sn, se)
			}
		}
	}
}
