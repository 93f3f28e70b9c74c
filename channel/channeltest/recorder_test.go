package channeltest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
)

func recorderHarness(t *testing.T) channeltest.Harness {
	r := channeltest.NewRecorder("wa-1")
	return channeltest.Harness{
		Sender:         r,
		Chat:           channel.Chat{Channel: "wa-1", ChatID: "79161234567"},
		UnknownChannel: "nope",
		FailNext:       r.FailNext,
		Delivered:      func() int { return len(r.Sent()) },
	}
}

func TestRecorderConformance(t *testing.T) {
	channeltest.TestSender(t, recorderHarness)
}

// noDedup sends every message again, ignoring the idempotency key.
type noDedup struct {
	mu sync.Mutex
	n  int
}

func (s *noDedup) Send(ctx context.Context, m channel.Outgoing) (channel.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, err
	}
	if err := m.Validate(); err != nil {
		return channel.Receipt{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return channel.Receipt{ProviderID: strings.Repeat("x", s.n)}, nil
}

// noValidate accepts anything.
type noValidate struct{ *channeltest.Recorder }

func (s noValidate) Send(ctx context.Context, m channel.Outgoing) (channel.Receipt, error) {
	if m.IdempotencyKey == "" {
		m.IdempotencyKey = "generated"
	}
	if m.Text == "" && m.ContentURI == "" {
		m.Text = " "
	}
	if m.Chat.ChatID == "" {
		m.Chat.ChatID = "0"
	}
	if m.Chat.Channel == "" {
		m.Chat.Channel = "wa-1"
	}
	return s.Recorder.Send(ctx, m)
}

// opaqueErrors loses the error classification.
type opaqueErrors struct{ *channeltest.Recorder }

func (s opaqueErrors) Send(ctx context.Context, m channel.Outgoing) (channel.Receipt, error) {
	rc, err := s.Recorder.Send(ctx, m)
	if err != nil && !errors.Is(err, context.Canceled) {
		return rc, errors.New("send failed")
	}
	return rc, err
}

var broken = map[string]struct {
	harness func() channeltest.Harness
	clause  string
}{
	"dedup": {func() channeltest.Harness {
		s := &noDedup{}
		return channeltest.Harness{Sender: s, Chat: channel.Chat{Channel: "wa-1", ChatID: "1"}}
	}, "a second Send with the same IdempotencyKey must return the first ProviderID"},
	"validate": {func() channeltest.Harness {
		r := channeltest.NewRecorder("wa-1")
		return channeltest.Harness{Sender: noValidate{r}, Chat: channel.Chat{Channel: "wa-1", ChatID: "1"}}
	}, "must fail with channel.ErrInvalid"},
	"errors": {func() channeltest.Harness {
		r := channeltest.NewRecorder("wa-1")
		return channeltest.Harness{Sender: opaqueErrors{r}, Chat: channel.Chat{Channel: "wa-1", ChatID: "1"}, FailNext: r.FailNext}
	}, "must be reported as an error matching it"},
}

func TestSuiteFailsOnBrokenSenders(t *testing.T) {
	if name := os.Getenv("CHANNELTEST_BROKEN"); name != "" {
		channeltest.TestSender(t, func(*testing.T) channeltest.Harness { return broken[name].harness() })
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestSuiteFailsOnBrokenSenders$", "-test.count=1")
			cmd.Env = append(os.Environ(), "CHANNELTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken sender (%s); output:\n%s", name, out)
			}
			if !strings.Contains(string(out), b.clause) {
				t.Errorf("the suite failed on %s without naming the clause %q; output:\n%s", name, b.clause, out)
			}
		})
	}
}

func TestFailing(t *testing.T) {
	s := channeltest.Failing(channel.ErrUnavailable)
	if _, err := s.Send(t.Context(), channel.Outgoing{}); !errors.Is(err, channel.ErrUnavailable) {
		t.Errorf("Failing.Send = %v; want ErrUnavailable", err)
	}
}
