package deploy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/store"
)

// TestService_GateAskedAgainAfterApprovals: a deployment that waited for
// its approval asks the gates again right before its rollout, with what
// they know then; both answers stay on the deployment. When the gate now
// denies (an exception expired, a vulnerability was found meanwhile) the
// deployment ends denied and the target is never called.
func TestService_GateAskedAgainAfterApprovals(t *testing.T) {
	for _, tt := range []struct {
		name      string
		later     bool // the gate's answer once approvals are in
		wantState string
		wantMsg   string
	}{
		{"still allowed: the rollout starts", true, deploy.StateFailed, "no node runtime"},
		{"now denied: nothing is rolled out", false, deploy.StateDenied, "denied by policy before the rollout: pre-deploy: CVE-2026-0001 found since"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, db *store.DB) {
				var approved atomic.Bool
				asked := atomic.Int32{}
				gate := gateFunc(func(gate string, in deploy.GateInput) (deploy.GateDecision, error) {
					asked.Add(1)
					if approved.Load() && !tt.later {
						return deploy.GateDecision{ID: "d-late", Allow: false, Reasons: []string{"CVE-2026-0001 found since"}}, nil
					}
					return deploy.GateDecision{ID: "d-" + strings.Repeat("x", int(asked.Load())), Allow: true}, nil
				})
				s := newService(t, db, gate)
				owner, dev, alice := as("owner", 1), as("dev", 2), as("alice", 3)
				if _, _, err := s.svc.PutEnvironment(owner, testScope, "prod", deploy.EnvironmentSpec{Protection: deploy.Protection{RequiredApprovals: 1}}); err != nil {
					t.Fatal(err)
				}
				r, err := s.svc.CreateRelease(dev, testScope, deploy.Release{Image: "registry.example.com/acme/web", Digest: digest1})
				if err != nil {
					t.Fatal(err)
				}
				d, err := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: r.Number})
				if err != nil || d.State != deploy.StateAwaitingApproval || len(d.Decisions) != 1 {
					t.Fatalf("deploy: %v %+v; want awaiting approval with one decision", err, d)
				}
				approved.Store(true)
				if _, err := s.svc.Approve(alice, testScope, d.ID, deploy.ApproveRequest{Approve: true}); err != nil {
					t.Fatal(err)
				}
				mark := auditCount(t, s.log)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- s.svc.Run(ctx) }()
				var got deploy.Deployment
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					got, _ = s.svc.Deployment(owner, testScope, d.ID)
					if got.FinishedAt != nil || time.Now().After(deadline) {
						break
					}
				}
				cancel()
				<-done
				if got.State != tt.wantState || !strings.Contains(got.Message, tt.wantMsg) {
					t.Fatalf("deployment %s %q; want %s with %q", got.State, got.Message, tt.wantState, tt.wantMsg)
				}
				if len(got.Decisions) != 2 || got.Decisions[0].Stage != "" || got.Decisions[1].Stage != deploy.StageBeforeRollout ||
					got.Decisions[1].Allow != tt.later || !got.Decisions[0].Allow {
					t.Errorf("decisions %+v; want the request's (allowed) and the one before the rollout (%t)", got.Decisions, tt.later)
				}
				entries, err := s.log.List(owner, audit.Filter{Action: "deploy.deployment.gate"})
				if err != nil {
					t.Fatal(err)
				}
				want := audit.Success
				if !tt.later {
					want = audit.Denied
				}
				if len(entries) != 1 || entries[0].Outcome != want || entries[0].Details["stage"] != deploy.StageBeforeRollout {
					t.Errorf("audited gate decisions %+v; want one %s", entries, want)
				}
				if n := auditCount(t, s.log); !tt.later && n != mark+1 {
					t.Errorf("%d audit entries after the denial; want only the gate's", n-mark)
				}
				env, _ := s.svc.Environment(owner, testScope, "prod")
				if env.CurrentReleaseID != 0 || (!tt.later && env.Status != "empty") {
					t.Errorf("environment %+v; want untouched", env)
				}
			})
		})
	}
}

func auditCount(t *testing.T, l *audit.Log) int {
	t.Helper()
	es, err := l.List(as("owner", 1), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
