package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"sort"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing/telemetry"
)

// A host wraps its CRM adapter once and hands the wrapped Client to the
// engine. Here the adapter is the in-memory Fake and the metrics are read
// back with the SDK's manual reader; a real host passes the MeterProvider
// and TracerProvider of its exporter.
func ExampleWrapCRM() {
	reader := sdkmetric.NewManualReader()
	fake := crmtest.NewSeeded(nil)
	client := telemetry.WrapCRM(fake, telemetry.Options{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Account:       "acme",
	})

	ctx := context.Background()
	client.ListUsers(ctx)
	client.ListUsers(ctx)
	fake.FailNext(crmtest.MethodListPipelines, 1, crm.ErrRateLimited)
	if _, err := client.ListPipelines(ctx); errors.Is(err, crm.ErrRateLimited) {
		fmt.Println("the adapter's error comes back unchanged")
	}

	var rm metricdata.ResourceMetrics
	reader.Collect(ctx, &rm)
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range sum.DataPoints {
					method, _ := p.Attributes.Value(telemetry.MethodKey)
					status, _ := p.Attributes.Value(telemetry.StatusKey)
					lines = append(lines, fmt.Sprintf("%s %s %s: %d", m.Name, method.AsString(), status.AsString(), p.Value))
				}
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// the adapter's error comes back unchanged
	// crmbridge.crm.calls ListPipelines rate_limited: 1
	// crmbridge.crm.calls ListUsers ok: 2
}
