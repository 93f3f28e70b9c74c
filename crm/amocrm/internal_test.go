package amocrm

import (
	"net/http"
	"testing"

	"github.com/crmbridge/crmbridge/phone"
)

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		status int
		safe   bool
		want   bool
	}{
		{http.StatusTooManyRequests, true, true},
		{http.StatusTooManyRequests, false, true}, // refused, not processed: retry even creations
		{0, true, true},   // transport failure / timeout
		{0, false, false}, // a creation may have happened
		{http.StatusInternalServerError, true, true},
		{http.StatusInternalServerError, false, false},
		{http.StatusBadGateway, true, true},
		{http.StatusServiceUnavailable, true, true},
		{http.StatusServiceUnavailable, false, false},
		{http.StatusGatewayTimeout, true, true},
		{http.StatusGatewayTimeout, false, false},
		{http.StatusNotImplemented, true, false},
		{http.StatusForbidden, true, false}, // account block: never
		{http.StatusUnauthorized, true, false},
		{http.StatusBadRequest, true, false},
		{http.StatusNotFound, true, false},
		{http.StatusPaymentRequired, true, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.safe, tt.status); got != tt.want {
			t.Errorf("retryable(safe=%v, %d) = %v, want %v", tt.safe, tt.status, got, tt.want)
		}
	}
}

func TestFieldPath(t *testing.T) {
	tests := []struct{ rid, path, want string }{
		{"0", "custom_fields_values.0.field_id", "[0].custom_fields_values[0].field_id"},
		{"3", "status_id", "[3].status_id"},
		{"", "_embedded.contacts.0.id", "_embedded.contacts[0].id"},
		{"0", "", "[0]"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := fieldPath(tt.rid, tt.path); got != tt.want {
			t.Errorf("fieldPath(%q, %q) = %q, want %q", tt.rid, tt.path, got, tt.want)
		}
	}
}

func TestNationalDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+79161234567", "9161234567"},
		{"+77011234567", "7011234567"},  // Kazakhstan shares +7
		{"+442079460958", "2079460958"}, // UK
		{"+4930123456", "30123456"},     // Germany, short national number
		{"+8613800138000", "13800138000"},
		{"+380501234567", "501234567"},
	}
	for _, tt := range tests {
		n, err := phone.Parse(tt.in, phone.Options{})
		if err != nil {
			t.Fatalf("parse %s: %v", tt.in, err)
		}
		if got := nationalDigits(n); got != tt.want {
			t.Errorf("nationalDigits(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct{ v, enum, kind, value string }{
		{"telegram:ivan", "OTHER", "telegram", "ivan"},
		{"ivan_skype", "SKYPE", "skype", "ivan_skype"},
		{"https://t.me/ivan", "OTHER", "other", "https://t.me/ivan"}, // a URL, not kind:value
		{"a b:c", "OTHER", "other", "a b:c"},
		{":x", "", "", ":x"},
	}
	for _, tt := range tests {
		got := parseIdentity(tt.v, tt.enum)
		if got.Kind != tt.kind || got.Value != tt.value {
			t.Errorf("parseIdentity(%q, %q) = %+v, want {%s %s}", tt.v, tt.enum, got, tt.kind, tt.value)
		}
	}
}
