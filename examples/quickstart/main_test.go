package main

import (
	"strings"
	"testing"
)

// TestStory runs the quickstart and checks the decisions it prints.
func TestStory(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"notify Anna, Boris; responsible: nobody yet",
		"claims the chat (now responsible in the CRM)",
		"Boris replies \"Здравствуйте!\" → refused",
		"12 new clients: Boris 6, Vera 6 (equal shares)",
		"may not write in wa/79161112233: quality control",
		"returning_notify; notify Anna",
		"deals of the contact: 1 (none created)",
		"returning_new_deal",
		"deals of the contact: 2 (a new one; contacts named Офис: 1, reused)",
		"tasks on Ольга's deal: 1 for 3 messages, still open: 0",
		`sent: "Наш каталог: http://shortener/catalog/water-19l"`,
		"matched contact",
		"ambiguous: true (also +84951234567)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out.String())
		}
	}
}
