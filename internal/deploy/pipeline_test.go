package deploy_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
)

// lines collects what DeployAndWait reports.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }

func (l *lines) String() string { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.l, "\n") }

// TestDeployAndWait follows deployments as a pipeline's deploy step
// does: a healthy release ends running and the report says the release,
// the gate's decision and the rollout's steps; a crash-looping one is
// rolled back and fails the call, with the previous release running.
func TestDeployAndWait(t *testing.T) {
	h := newHarness(t, nil, nil, nil)
	h.env("staging", spec(deploy.Rolling, ""))
	run := func(version string, extraEnv ...string) (deploy.Deployment, string, error) {
		t.Helper()
		image, digest := h.reg.Push(t, "acme/web", deploytest.Image(t, version, extraEnv...))
		var got lines
		ctx, cancel := context.WithTimeout(as("dev", 2), 2*time.Minute)
		defer cancel()
		d, err := h.svc.DeployAndWait(ctx, h.sc, deploy.PipelineDeploy{Environment: "staging", Poll: 20 * time.Millisecond,
			Release: deploy.Release{Image: image, Digest: digest, SourceCommit: strings.Repeat("ab", 20), SourceBranch: "main", Reason: "pipeline"}}, got.add)
		return d, got.String(), err
	}
	d, log, err := run("v1")
	if err != nil || d.State != deploy.StateSucceeded {
		t.Fatalf("first release: %v %+v\n%s", err, d, log)
	}
	for _, want := range []string{"release #1 recorded: ", " on main)", "gate pre-deploy (at request): allow", "to staging: queued", "succeeded: release #1 runs"} {
		if !strings.Contains(log, want) {
			t.Errorf("report lacks %q:\n%s", want, log)
		}
	}
	d, log, err = run("v2", "CRASH=1")
	if err == nil || d.State != deploy.StateRolledBack || !strings.Contains(err.Error(), "ended rolled_back") {
		t.Fatalf("crash-looping release: %v %+v; want an error, rolled back\n%s", err, d, log)
	}
	if !strings.Contains(log, "rolled_back: release #2 failed") {
		t.Errorf("report lacks the rollback:\n%s", log)
	}
	e, _ := h.svc.Environment(context.Background(), h.sc, "staging")
	if ins := h.instances(e); e.CurrentReleaseID != 1 || len(ins) != 2 || ins[0] != 1 || ins[1] != 1 {
		t.Errorf("staging runs release %d with instances of releases %v; want release 1's two instances", e.CurrentReleaseID, ins)
	}
}
