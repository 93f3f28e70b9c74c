package telemetry_test

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

func traceSpan(ctx context.Context) trace.Span { return trace.SpanFromContext(ctx) }
