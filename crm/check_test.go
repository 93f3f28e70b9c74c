package crm

import (
	"slices"
	"testing"
	"time"
)

func paths(fes []FieldError) []string {
	var out []string
	for _, fe := range fes {
		out = append(out, fe.Path)
	}
	return out
}

// TestProblems: each contract rule is reported under its field's path,
// with the caller's prefix, and valid input has none.
func TestProblems(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		what string
		got  []FieldError
		want []string
	}{
		{"a valid contact", NewContact{Phones: []string{"+79161234567"}, Identities: []Identity{{Kind: "telegram", Value: "@a"}}}.Problems(""), nil},
		{"a blank phone and an identity without Value", NewContact{Phones: []string{"+7916", " "}, Identities: []Identity{{Kind: "telegram"}}}.Problems("[2]."), []string{"[2].Phones[1]", "[2].Identities[0]"}},
		{"an identity without Kind", Identity{Value: "x"}.Problems(), []string{"Identity"}},
		{"a valid deal", NewDeal{Pipeline: "1", Stage: "2", Contact: "5"}.Problems(""), nil},
		{"a deal with both contacts, no stage", NewDeal{Pipeline: "1", Contact: "5", NewContact: &NewContact{Phones: []string{""}}}.Problems("[0]."), []string{"[0].Contact", "[0].Stage"}},
		{"a deal with neither contact, no pipeline", NewDeal{Stage: "2"}.Problems(""), []string{"Contact", "Pipeline"}},
		{"a valid task", NewTask{Deal: "7", Text: "call back", Deadline: at}.Problems(""), nil},
		{"a task on both, blank, no deadline", NewTask{Deal: "7", Contact: "5", Text: "  "}.Problems("[1]."), []string{"[1].Deal", "[1].Text", "[1].Deadline"}},
		{"a valid note", Note{Contact: "5", Text: "hi"}.Problems(), nil},
		{"a note on nothing, blank", Note{}.Problems(), []string{"Deal", "Text"}},
	} {
		if got := paths(c.got); !slices.Equal(got, c.want) {
			t.Errorf("%s: problems at %q; want %q", c.what, got, c.want)
		}
	}
}
