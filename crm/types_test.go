package crm_test

import (
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

func TestCompareIDs(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"10", "9", 1}, {"10", "10", 0}, {"100", "99", 1}, {"abc", "abd", -1},
	}
	for _, c := range cases {
		if got := crm.CompareIDs(c.a, c.b); got != c.want {
			t.Errorf("CompareIDs(%q, %q) = %d; want %d", c.a, c.b, got, c.want)
		}
	}
}

// Equal update times: the larger numeric ID wins, not the lexically larger.
func TestLatestOpenTieBreak(t *testing.T) {
	at := time.Unix(100, 0)
	d, ok := crm.LatestOpen([]crm.Deal{{ID: "9", UpdatedAt: at}, {ID: "10", UpdatedAt: at}})
	if !ok || d.ID != "10" {
		t.Errorf("LatestOpen = %q, %v; want 10", d.ID, ok)
	}
}
