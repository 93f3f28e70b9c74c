package amocrm_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// sleepRecorder is an injectable Sleep that returns at once and records
// the waits asked for.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
	// advance, when set, is called with each wait (to move a fake clock).
	advance func(time.Duration)
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	adv := s.advance
	s.mu.Unlock()
	if adv != nil {
		adv(d)
	}
	return nil
}

func (s *sleepRecorder) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newFake starts a fake server closed at test end.
func newFake(t *testing.T, opt amocrmtest.Options) *amocrmtest.Server {
	t.Helper()
	srv := amocrmtest.NewServer(opt)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client on srv with no client-side rate limit and
// instant retries; mutate adjusts the options.
func newClient(t *testing.T, srv *amocrmtest.Server, mutate func(*amocrm.Options)) (*amocrm.Client, *sleepRecorder) {
	t.Helper()
	sl := &sleepRecorder{}
	opt := amocrm.Options{
		BaseURL:    srv.URL(),
		Tokens:     amocrm.StaticToken(srv.Token()),
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		RateLimit:  rate.Inf,
		Sleep:      sl.Sleep,
	}
	if mutate != nil {
		mutate(&opt)
	}
	c, err := amocrm.New(opt)
	if err != nil {
		t.Fatalf("amocrm.New: %v", err)
	}
	return c, sl
}
