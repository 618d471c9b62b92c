package deploy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deploy"
)

// BenchmarkDeploy_RollingTwoReplicas deploys a ready image (pushed,
// pulled and unpacked before the timer starts) to the node runtime: two
// replicas replaced one by one, each health-checked, the gateway route
// switched at every step. Each iteration deploys the other of two
// releases, so every one replaces two running instances. It reports the
// median seconds per deployment (the target is at most 5 s).
//
//	go test -run '^$' -bench Deploy_Rolling -benchtime 10x ./internal/deploy/
func BenchmarkDeploy_RollingTwoReplicas(b *testing.B) {
	h := newHarness(b, nil, nil, nil)
	host := "bench.web.test"
	sp := spec(deploy.Rolling, host)
	sp.Target.Strategy.Pause = 0
	h.env("prod", sp)
	rels := []deploy.Release{h.release("v1"), h.release("v2")}
	// Warm up: both images pulled and unpacked, release 1 running.
	for _, r := range []deploy.Release{rels[1], rels[0]} {
		if d := h.wait(h.deploy("prod", r).ID); d.State != deploy.StateSucceeded {
			b.Fatalf("warm-up deployment %s: %s", d.State, d.Message)
		}
	}
	var times []time.Duration
	b.ResetTimer()
	for i := range b.N {
		r := rels[(i+1)%2]
		start := time.Now()
		d := h.wait(h.deploy("prod", r).ID)
		times = append(times, time.Since(start))
		if d.State != deploy.StateSucceeded {
			b.Fatalf("deployment %s: %s", d.State, d.Message)
		}
	}
	b.StopTimer()
	if got := h.versions(host, 4); got[map[bool]string{true: "v1", false: "v2"}[b.N%2 == 0]] != 4 {
		b.Errorf("the gateway answers %v after the last deployment", got)
	}
	slices.Sort(times)
	b.ReportMetric(times[len(times)/2].Seconds(), "s-median/deploy")
	b.ReportMetric(times[len(times)-1].Seconds(), "s-max/deploy")
}
