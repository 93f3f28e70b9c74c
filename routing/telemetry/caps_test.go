package telemetry

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// TestCapabilitiesMirrored wraps, for every combination of the optional
// capabilities, a Client having exactly that combination (built with the
// same generated combinations around crmtest.Minimal, which has none and
// hides the Fake's) and checks that WrapCRM claims exactly the same ones,
// directly and through a second wrapper.
func TestCapabilitiesMirrored(t *testing.T) {
	fake := crmtest.NewSeeded(nil)
	has := func(c crm.Client) int {
		m := 0
		for i, ok := range []bool{
			is[crm.Noter](c), is[crm.TaskBatcher](c), is[crm.ContactLister](c),
			is[crm.DealBatcher](c), is[crm.TaskCompleter](c), is[crm.ResponsibleBatcher](c),
		} {
			if ok {
				m |= 1 << i
			}
		}
		return m
	}
	if got := has(fake); got != 1<<6-1 {
		t.Fatalf("the Fake has capabilities %b; want all six", got)
	}
	for mask := range 1 << 6 {
		inner := withCaps(&crmClient{next: crmtest.Minimal(fake), in: mustInstruments(t), attrs: newAttrCache(MethodKey, nil)}, mask)
		if got := has(inner); got != mask {
			t.Fatalf("mask %06b: test double has %06b", mask, got)
		}
		w := WrapCRM(inner, Options{})
		if got := has(w); got != mask {
			t.Errorf("WrapCRM of a Client with capabilities %06b claims %06b", mask, got)
		}
		if got := has(WrapCRM(w, Options{})); got != mask {
			t.Errorf("WrapCRM twice of %06b claims %06b", mask, got)
		}
		if mask&1 != 0 {
			if err := crm.AddNote(context.Background(), w, crm.Note{Deal: "no-such-deal", Text: "x"}); err == nil {
				t.Errorf("mask %06b: AddNote on a missing deal succeeded", mask)
			}
		}
	}
}

func is[T any](c crm.Client) bool {
	_, ok := c.(T)
	return ok
}

func mustInstruments(t *testing.T) instruments {
	t.Helper()
	in, err := newInstruments(Options{}, CRMCallsMetric, "{call}", "d", CRMDurationMetric, "d")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestInstrumentNamesValid creates every instrument on the SDK, which
// rejects invalid names and histogram bucket boundaries (sdk/metric
// meter.go: validateInstrumentName, histogramAggs); it does not check
// units. WrapCRM, WrapSender and NewObserver cannot report such an
// error, so it is checked here.
func TestInstrumentNamesValid(t *testing.T) {
	o := Options{MeterProvider: sdkmetric.NewMeterProvider()}
	for _, names := range [][2]string{
		{CRMCallsMetric, CRMDurationMetric},
		{SendsMetric, SendDurationMetric},
		{EventsMetric, EventDurationMetric},
	} {
		if _, err := newInstruments(o, names[0], "{x}", "d", names[1], "d"); err != nil {
			t.Errorf("%v: %v", names, err)
		}
	}
}
