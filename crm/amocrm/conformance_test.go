package amocrm_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// TestConformance runs the crm conformance suite against the adapter on
// the fake server. Retries are off so that one injected failure surfaces.
func TestConformance(t *testing.T) {
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		srv := newFake(t, amocrmtest.Options{})
		c, _ := newClient(t, srv, func(o *amocrm.Options) { o.MaxRetries = amocrm.NoRetries })
		return crmtest.Harness{
			Client: c,
			FailNext: func(op string, n int, want error) {
				srv.FailNext("*", n, failStatus(t, want))
			},
			PhoneRuleOff: phoneRuleOff(srv),
		}
	})
}

// TestConformanceWithAPIFilter runs the suite on an account with API
// filtering, where ListDeals reads leads through filter[id].
func TestConformanceWithAPIFilter(t *testing.T) {
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		srv := newFake(t, amocrmtest.Options{APIFilter: true})
		c, _ := newClient(t, srv, func(o *amocrm.Options) { o.MaxRetries = amocrm.NoRetries })
		return crmtest.Harness{Client: c, PhoneRuleOff: phoneRuleOff(srv)}
	})
}

// TestConformanceWithRetries runs the suite with retries on: injected
// failures beyond the retry count must still surface.
func TestConformanceWithRetries(t *testing.T) {
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		srv := newFake(t, amocrmtest.Options{})
		c, _ := newClient(t, srv, func(o *amocrm.Options) { o.MaxRetries = 2 })
		return crmtest.Harness{
			Client: c,
			FailNext: func(op string, n int, want error) {
				// Each call makes MaxRetries+1 attempts, except on a
				// block (403), which is never retried.
				st := failStatus(t, want)
				if st != http.StatusForbidden {
					n *= 3
				}
				srv.FailNext("*", n, st)
			},
			PhoneRuleOff: phoneRuleOff(srv),
		}
	})
}

func failStatus(t *testing.T, want error) int {
	switch {
	case errors.Is(want, crm.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(want, crm.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(want, crm.ErrUnauthorized):
		return http.StatusForbidden
	}
	t.Fatalf("FailNext: unsupported error %v", want)
	return 0
}
