//go:build !unix

package crmindex_test

import "time"

// cpuTime is not measured on this platform; BenchmarkSync falls back to
// wall time.
func cpuTime() (time.Duration, bool) { return 0, false }
