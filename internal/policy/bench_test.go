package policy

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

// BenchmarkDecide measures one decision of the built-in library, from the
// input's JSON to the assembled decision (decode, schema check, digest,
// every policy of the gate, modes and exceptions), one at a time, and
// reports its p50 and p99 latency, in wall time and in CPU time. The
// issue's target: p99 ≤ 5 ms for the pre-deploy set on two cores. Each
// case runs twice: Rampart's whole decision, and (opa-only) the same
// prepared query evaluated by OPA alone, the floor any embedding of OPA
// pays.
//
//	go test -run XXX -bench Decide -benchtime 2000x ./internal/policy
func BenchmarkDecide(b *testing.B) {
	e := engine(b)
	for _, tt := range []struct {
		name, input string
		gate        Gate
		// cached keeps the admission gate's result cache between
		// decisions (the same review again); otherwise it is emptied
		// before each, so that every decision evaluates.
		cached bool
	}{
		{"pre-deploy/allow", "pre-deploy-good.json", GatePreDeploy, false},
		{"pre-deploy/deny", "pre-deploy-bad.json", GatePreDeploy, false},
		{"admission/deny", "admission-privileged.json", GateAdmission, false},
		{"admission/deny/cached", "admission-privileged.json", GateAdmission, true},
	} {
		doc := readInput(b, tt.input)
		// The peer: the same gate's prepared query evaluated by OPA alone
		// on input already parsed (what any embedding of OPA pays at
		// least); the difference is Rampart's decoding, schema check,
		// digest, modes, exceptions and assembly.
		opaOnly := func(b *testing.B) {
			in, err := decodeInput(tt.gate, doc)
			if err != nil {
				b.Fatal(err)
			}
			input, err := in.regoValue()
			if err != nil {
				b.Fatal(err)
			}
			q := e.gates[tt.gate].query
			var m latencies
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for b.Loop() {
				start, cpu := time.Now(), threadCPU()
				if _, err := q.Eval(b.Context(), rego.EvalParsedInput(input)); err != nil {
					b.Fatal(err)
				}
				m.add(start, cpu)
			}
			m.report(b)
		}
		if !tt.cached { // OPA alone has no cache to compare with
			b.Run(tt.name+"/opa-only", opaOnly)
		}
		b.Run(tt.name, func(b *testing.B) {
			var m latencies
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for b.Loop() {
				if !tt.cached {
					e.results = newResultCache()
				}
				start, cpu := time.Now(), threadCPU()
				if _, err := e.Decide(b.Context(), tt.gate, Input{Subject: "bench", Environment: "production", Document: doc}, nil, testNow); err != nil {
					b.Fatal(err)
				}
				m.add(start, cpu)
			}
			m.report(b)
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

// latencies collects each decision's wall time and the CPU time of the
// thread that made it. On a machine shared with other work the wall-time
// tail measures the scheduler as much as the decision; the CPU-time tail
// measures the decision alone (the goroutine is locked to its thread).
type latencies struct{ wall, cpu []time.Duration }

func (l *latencies) add(start time.Time, cpu time.Duration) {
	l.wall = append(l.wall, time.Since(start))
	l.cpu = append(l.cpu, threadCPU()-cpu)
}

// report adds p50 and p99 of both, in milliseconds.
func (l *latencies) report(b *testing.B) {
	if len(l.wall) == 0 {
		return
	}
	at := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	slices.Sort(l.wall)
	slices.Sort(l.cpu)
	b.ReportMetric(at(l.wall, 0.50), "p50-ms")
	b.ReportMetric(at(l.wall, 0.99), "p99-ms")
	b.ReportMetric(at(l.cpu, 0.50), "cpu-p50-ms")
	b.ReportMetric(at(l.cpu, 0.99), "cpu-p99-ms")
}
