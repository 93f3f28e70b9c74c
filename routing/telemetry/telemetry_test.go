package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/routing/telemetry"
)

// rig is a metric reader and a span recorder behind Options.
type rig struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	opts   telemetry.Options
}

func newRig(account string) *rig {
	r := &rig{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	r.opts = telemetry.Options{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader)),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans)),
		Account:        account,
	}
	return r
}

// points returns, for the named metric, the value of each data point (a
// counter's sum, a histogram's count) keyed by its attributes rendered as
// "k=v k=v" in key order.
func (r *rig) points(t *testing.T, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != telemetry.ScopeName {
			t.Errorf("scope %q; want %q", sm.Scope.Name, telemetry.ScopeName)
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Errorf("%s is not monotonic", name)
				}
				for _, p := range d.DataPoints {
					out[render(p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				if m.Unit != "s" {
					t.Errorf("%s unit %q; want s", name, m.Unit)
				}
				for _, p := range d.DataPoints {
					out[render(p.Attributes)] += int64(p.Count)
					if p.Sum < 0 {
						t.Errorf("%s: negative duration sum %v", name, p.Sum)
					}
				}
			default:
				t.Fatalf("%s has data %T", name, m.Data)
			}
		}
	}
	return out
}

func render(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func diffPoints(t *testing.T, name string, got, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s{%s} = %d; want %d", name, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s{%s} = %d; not expected", name, k, v)
		}
	}
}

func TestWrapCRMRecordsCallsByMethodAndStatus(t *testing.T) {
	r := newRig("acme")
	fake := crmtest.NewSeeded(nil)
	c := telemetry.WrapCRM(fake, r.opts)
	ctx := context.Background()

	if _, err := c.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	fake.FailNext(crmtest.MethodListUsers, 1, &crm.RetryAfterError{RetryAfter: time.Second, Err: crm.ErrRateLimited})
	if _, err := c.ListUsers(ctx); !errors.Is(err, crm.ErrRateLimited) {
		t.Fatalf("ListUsers err = %v; want the adapter's rate limit, unchanged", err)
	}
	fake.FailNext(crmtest.MethodListPipelines, 1, crm.ErrUnauthorized)
	c.ListPipelines(ctx)
	fake.FailNext(crmtest.MethodListPipelines, 1, crm.ErrUnavailable)
	c.ListPipelines(ctx)
	fake.FailNext(crmtest.MethodListPipelines, 1, errors.New("boom"))
	c.ListPipelines(ctx)
	if _, err := c.ListDeals(ctx, "no-such-contact"); !errors.Is(err, crm.ErrNotFound) {
		t.Fatalf("ListDeals err = %v; want ErrNotFound", err)
	}
	if _, err := c.CreateTask(ctx, crm.NewTask{Text: "neither deal nor contact"}); !errors.Is(err, crm.ErrInvalid) {
		t.Fatalf("CreateTask err = %v; want ErrInvalid", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	c.FindContactsByPhone(cancelled, "+79161234567")

	want := map[string]int64{
		"crmbridge.account=acme crmbridge.crm.method=ListUsers crmbridge.status=ok":                 2,
		"crmbridge.account=acme crmbridge.crm.method=ListUsers crmbridge.status=rate_limited":       1,
		"crmbridge.account=acme crmbridge.crm.method=ListPipelines crmbridge.status=unauthorized":   1,
		"crmbridge.account=acme crmbridge.crm.method=ListPipelines crmbridge.status=unavailable":    1,
		"crmbridge.account=acme crmbridge.crm.method=ListPipelines crmbridge.status=other":          1,
		"crmbridge.account=acme crmbridge.crm.method=ListDeals crmbridge.status=not_found":          1,
		"crmbridge.account=acme crmbridge.crm.method=CreateTask crmbridge.status=invalid":           1,
		"crmbridge.account=acme crmbridge.crm.method=FindContactsByPhone crmbridge.status=canceled": 1,
	}
	diffPoints(t, telemetry.CRMCallsMetric, r.points(t, telemetry.CRMCallsMetric), want)
	diffPoints(t, telemetry.CRMDurationMetric, r.points(t, telemetry.CRMDurationMetric), want)

	spans := r.spans.Ended()
	if len(spans) != 9 {
		t.Fatalf("%d spans; want 9", len(spans))
	}
	for _, s := range spans {
		attrs := attribute.NewSet(s.Attributes()...)
		method, _ := attrs.Value(telemetry.MethodKey)
		status, _ := attrs.Value(telemetry.StatusKey)
		account, _ := attrs.Value(telemetry.AccountKey)
		if s.Name() != "crm."+method.AsString() || account.AsString() != "acme" {
			t.Errorf("span %q: method %q, account %q", s.Name(), method.AsString(), account.AsString())
		}
		errType, failed := attrs.Value(telemetry.ErrorTypeKey)
		if ok := status.AsString() == "ok"; ok == failed || ok != (s.Status().Code == codes.Unset) {
			t.Errorf("span %s status %s: error.type %q, code %v", s.Name(), status.AsString(), errType.AsString(), s.Status().Code)
		}
		if failed && (errType.AsString() != status.AsString() || s.Status().Description != status.AsString()) {
			t.Errorf("span %s: error.type %q, description %q; want the status %q", s.Name(), errType.AsString(), s.Status().Description, status.AsString())
		}
		if len(s.Events()) != 0 {
			t.Errorf("span %s has events %v; error texts must not be recorded", s.Name(), s.Events())
		}
	}
}

func TestWrapCRMSpanIsParentOfAdapterWork(t *testing.T) {
	r := newRig("")
	fake := crmtest.NewSeeded(nil)
	var sawSpan bool
	c := telemetry.WrapCRM(spyCtx{Client: fake, saw: &sawSpan}, r.opts)
	tracer := r.opts.TracerProvider.Tracer("host")
	ctx, parent := tracer.Start(context.Background(), "event")
	c.ListUsers(ctx)
	parent.End()
	if !sawSpan {
		t.Error("the adapter was not called with the call's span in its context")
	}
	spans := r.spans.Ended()
	if len(spans) != 2 || spans[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v; want crm.ListUsers as a child of the host's span", spans)
	}
	for _, kv := range spans[0].Attributes() {
		if kv.Key == telemetry.AccountKey {
			t.Errorf("account attribute %v recorded without Options.Account", kv)
		}
	}
}

// spyCtx checks that the adapter sees the wrapper's span.
type spyCtx struct {
	crm.Client
	saw *bool
}

func (s spyCtx) ListUsers(ctx context.Context) ([]crm.User, error) {
	*s.saw = traceSpanName(ctx) == "crm.ListUsers"
	return s.Client.ListUsers(ctx)
}

func traceSpanName(ctx context.Context) string {
	if ro, ok := trace.SpanFromContext(ctx).(sdktrace.ReadOnlySpan); ok {
		return ro.Name()
	}
	return ""
}

func TestWrapCRMCapabilities(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		minimal   bool
		wantCalls map[string]int64 // method/status -> calls
	}{
		{"adapter with capabilities", false, map[string]int64{
			"CreateTasks/ok": 1, "AddNote/ok": 1, "ListContacts/ok": 1, "CreateDeals/ok": 1,
			"CompleteTasks/ok": 1, "SetResponsibles/ok": 1,
		}},
		{"minimal adapter: the helpers' fallbacks", true, map[string]int64{
			// one call per item, through the wrapper; no capability call
			"CreateTask/ok": 2, "CreateDeal/ok": 1, "CompleteTask/ok": 2, "SetResponsible/ok": 1,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig("")
			fake := crmtest.NewSeeded(nil)
			var inner crm.Client = fake
			if tc.minimal {
				inner = crmtest.Minimal(fake)
			}
			c := telemetry.WrapCRM(inner, r.opts)
			if w, ok := c.(crm.Wrapper); !ok || w.Unwrap() != inner {
				t.Fatalf("WrapCRM result does not unwrap to the adapter")
			}
			_, noter := c.(crm.Noter)
			_, lister := c.(crm.ContactLister)
			_, batcher := c.(crm.TaskBatcher)
			if noter == tc.minimal || lister == tc.minimal || batcher == tc.minimal {
				t.Errorf("wrapper claims Noter %v, ContactLister %v, TaskBatcher %v; want what the adapter has (%v)", noter, lister, batcher, !tc.minimal)
			}
			deal, contact, err := fake.CreateDeal(ctx, crm.NewDeal{Pipeline: "10", Stage: "101", Responsible: "1",
				NewContact: &crm.NewContact{Name: "Ivan", Phones: []string{"+79161234567"}}})
			if err != nil {
				t.Fatal(err)
			}
			due := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) // crm.Client refuses a task without a deadline
			tasks, err := crm.CreateTasks(ctx, c, []crm.NewTask{{Deal: deal.ID, Text: "a", Deadline: due}, {Deal: deal.ID, Text: "b", Deadline: due}})
			if err != nil || len(tasks) != 2 {
				t.Fatalf("CreateTasks = %v, %v", tasks, err)
			}
			noteErr := crm.AddNote(ctx, c, crm.Note{Deal: deal.ID, Text: "n"})
			var listErr error
			n := 0
			for _, err := range crm.AllContacts(ctx, c, crm.ContactQuery{}) {
				if err != nil {
					listErr = err
					break
				}
				n++
			}
			created, err := crm.CreateDeals(ctx, c, []crm.NewDeal{{Pipeline: "10", Stage: "101", Responsible: "2", Contact: contact.ID}})
			if err != nil || len(created) != 1 {
				t.Fatalf("CreateDeals = %v, %v", created, err)
			}
			if err := crm.CompleteTasks(ctx, c, []crm.TaskID{tasks[0].ID, tasks[1].ID}); err != nil {
				t.Fatal(err)
			}
			if err := crm.SetResponsibles(ctx, c, []crm.ResponsibleChange{{Deal: deal.ID, User: "3"}}); err != nil {
				t.Fatal(err)
			}
			if tc.minimal {
				if !errors.Is(noteErr, errors.ErrUnsupported) || !errors.Is(listErr, errors.ErrUnsupported) {
					t.Errorf("AddNote, AllContacts errors = %v, %v; want errors.ErrUnsupported as on the bare adapter", noteErr, listErr)
				}
			} else if noteErr != nil || listErr != nil || n == 0 {
				t.Errorf("AddNote, AllContacts = %v, %v (%d contacts); want the adapter's capabilities", noteErr, listErr, n)
			}

			got := map[string]int64{}
			for k, v := range r.points(t, telemetry.CRMCallsMetric) {
				var method, status string
				for _, f := range strings.Fields(k) {
					if v, ok := strings.CutPrefix(f, "crmbridge.crm.method="); ok {
						method = v
					}
					if v, ok := strings.CutPrefix(f, "crmbridge.status="); ok {
						status = v
					}
				}
				got[method+"/"+status] = v
			}
			diffPoints(t, telemetry.CRMCallsMetric, got, tc.wantCalls)
		})
	}
}

func TestWrapCRMConformance(t *testing.T) {
	r := newRig("acme")
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		f := crmtest.NewSeeded(nil)
		return crmtest.Harness{Client: telemetry.WrapCRM(f, r.opts), FailNext: f.FailNext,
			PhoneRuleOff: func(*testing.T) crm.Client {
				return telemetry.WrapCRM(f.WithPhoneOptions(phone.Options{DisableEightAsSeven: true}), r.opts)
			}}
	})
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		f := crmtest.NewSeeded(nil)
		return crmtest.Harness{Client: telemetry.WrapCRM(crmtest.Minimal(f), telemetry.Options{}), FailNext: f.FailNext}
	})
}

func TestWrapSender(t *testing.T) {
	r := newRig("acme")
	rec := channeltest.NewRecorder("wa-1")
	s := telemetry.WrapSender(rec, r.opts)
	ctx := context.Background()
	m := channel.Outgoing{Chat: channel.Chat{Channel: "wa-1", ChatID: "79161234567"}, Text: "Здравствуйте", IdempotencyKey: "k1"}
	if _, err := s.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if rc, err := s.Send(ctx, m); err != nil || !rc.Duplicate {
		t.Fatalf("second Send = %+v, %v; want a duplicate receipt", rc, err)
	}
	rec.FailNext(1, &channel.RetryAfterError{RetryAfter: time.Second, Err: channel.ErrRateLimited})
	m.IdempotencyKey = "k2"
	if _, err := s.Send(ctx, m); !errors.Is(err, channel.ErrRateLimited) {
		t.Fatalf("Send err = %v; want the rate limit, unchanged", err)
	}
	s.Send(ctx, channel.Outgoing{Chat: channel.Chat{Channel: "tg-9", ChatID: "x"}, Text: "x", IdempotencyKey: "k3"})
	s.Send(ctx, channel.Outgoing{Chat: channel.Chat{Channel: "wa-1", ChatID: "x"}, Text: "x"})
	rec.FailNext(1, channel.ErrRejected)
	m.IdempotencyKey = "k4"
	s.Send(ctx, m)

	want := map[string]int64{
		"crmbridge.account=acme crmbridge.channel=wa-1 crmbridge.status=ok":           1,
		"crmbridge.account=acme crmbridge.channel=wa-1 crmbridge.status=duplicate":    1,
		"crmbridge.account=acme crmbridge.channel=wa-1 crmbridge.status=rate_limited": 1,
		"crmbridge.account=acme crmbridge.channel=tg-9 crmbridge.status=not_found":    1,
		"crmbridge.account=acme crmbridge.channel=wa-1 crmbridge.status=invalid":      1,
		"crmbridge.account=acme crmbridge.channel=wa-1 crmbridge.status=rejected":     1,
	}
	diffPoints(t, telemetry.SendsMetric, r.points(t, telemetry.SendsMetric), want)
	diffPoints(t, telemetry.SendDurationMetric, r.points(t, telemetry.SendDurationMetric), want)
	spans := r.spans.Ended()
	if len(spans) != 6 {
		t.Fatalf("%d spans; want 6", len(spans))
	}
	for _, sp := range spans {
		if sp.Name() != "channel.Send" {
			t.Errorf("span %q; want channel.Send", sp.Name())
		}
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.String(), "79161234567") || strings.Contains(kv.Value.String(), "Здравствуйте") {
				t.Errorf("span attribute %v holds the chat or the text", kv)
			}
		}
	}
}

func TestWrapSenderConformance(t *testing.T) {
	channeltest.TestSender(t, func(t *testing.T) channeltest.Harness {
		rec := channeltest.NewRecorder("wa-1")
		return channeltest.Harness{
			Sender:         telemetry.WrapSender(rec, newRig("").opts),
			Chat:           channel.Chat{Channel: "wa-1", ChatID: "79161234567"},
			UnknownChannel: "nope",
			FailNext:       rec.FailNext,
			Delivered:      func() int { return len(rec.Sent()) },
		}
	})
}

// TestConcurrentRecording records from many goroutines under -race: the
// attribute cache and the instruments are shared.
func TestConcurrentRecording(t *testing.T) {
	r := newRig("acme")
	c := telemetry.WrapCRM(crmtest.NewSeeded(nil), r.opts)
	s := telemetry.WrapSender(channeltest.NewRecorder(), r.opts)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c.ListUsers(context.Background())
			s.Send(context.Background(), channel.Outgoing{Chat: channel.Chat{Channel: channel.ID(fmt.Sprint("ch-", i%5)), ChatID: "1"}, Text: "x", IdempotencyKey: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	if got := r.points(t, telemetry.CRMCallsMetric)["crmbridge.account=acme crmbridge.crm.method=ListUsers crmbridge.status=ok"]; got != n {
		t.Errorf("ListUsers calls = %d; want %d", got, n)
	}
	total := int64(0)
	for _, v := range r.points(t, telemetry.SendsMetric) {
		total += v
	}
	if total != n {
		t.Errorf("sends = %d; want %d", total, n)
	}
}

func TestNilAndZeroOptions(t *testing.T) {
	if telemetry.WrapCRM(nil, telemetry.Options{}) != nil || telemetry.WrapSender(nil, telemetry.Options{}) != nil {
		t.Error("wrapping nil must give nil")
	}
	c := telemetry.WrapCRM(crmtest.NewSeeded(nil), telemetry.Options{}) // no-op providers
	if us, err := c.ListUsers(context.Background()); err != nil || len(us) == 0 {
		t.Errorf("ListUsers through no-op telemetry = %v, %v", us, err)
	}
}
