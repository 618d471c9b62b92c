package policy

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkDecide measures one decision of the built-in library, from the
// input's JSON to the assembled decision (decode, schema check, digest,
// every policy of the gate, modes and exceptions), one at a time, and
// reports its p50 and p99 latency. The target: p99 ≤ 5 ms for the
// pre-deploy set on two cores.
//
//	go test -run XXX -bench Decide -benchtime 2000x ./internal/policy
func BenchmarkDecide(b *testing.B) {
	e := engine(b)
	for _, tt := range []struct {
		name, input string
		gate        Gate
	}{
		{"pre-deploy/allow", "pre-deploy-good.json", GatePreDeploy},
		{"pre-deploy/deny", "pre-deploy-bad.json", GatePreDeploy},
		{"admission/deny", "admission-privileged.json", GateAdmission},
	} {
		doc := readInput(b, tt.input)
		b.Run(tt.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := e.Decide(b.Context(), tt.gate, Input{Subject: "bench", Environment: "production", Document: doc}, nil, testNow); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkDecideParallel measures decisions per second with every core
// busy (the engine is shared by all callers).
func BenchmarkDecideParallel(b *testing.B) {
	e := engine(b)
	doc := readInput(b, "pre-deploy-good.json")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Decide(b.Context(), GatePreDeploy, Input{Subject: "bench", Document: doc}, nil, testNow); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
