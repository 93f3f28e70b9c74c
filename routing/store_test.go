package routing

import (
	"slices"
	"testing"

	"github.com/crmbridge/crmbridge/crm"
)

// The store contracts are checked by the exported suites in package
// routingtest, run against the memory stores there.

func TestMemoryStoreOfferLargeGroup(t *testing.T) {
	s := &MemoryClaims{}
	var users, want []crm.UserID
	for i := range 40 {
		u := crm.UserID(string(rune('A' + i)))
		users = append(users, u, u)
		want = append(want, u)
	}
	st, _, err := s.Offer(t.Context(), chatWA, users)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Offered, want) {
		t.Errorf("Offered = %v; want %v", st.Offered, want)
	}
}
