package deploy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
)

// stepLog records the hook's calls.
type stepLog struct {
	mu    sync.Mutex
	steps []deploy.StepInfo
	// fail, when set, fails the step it returns true for.
	fail func(s deploy.StepInfo) bool
	// during runs inside the hook (to look at the traffic mid-rollout).
	during func(s deploy.StepInfo)
}

func (l *stepLog) Step(ctx context.Context, s deploy.StepInfo) error {
	l.mu.Lock()
	l.steps = append(l.steps, s)
	during, fail := l.during, l.fail
	l.mu.Unlock()
	if during != nil {
		during(s)
	}
	if fail != nil && fail(s) {
		return errors.New("error rate 12% above the 1% threshold")
	}
	return nil
}

func (l *stepLog) weights(release int64) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, s := range l.steps {
		if s.Release == release {
			out = append(out, s.Weight)
		}
	}
	return out
}

func spec(strategy string, host string) deploy.EnvironmentSpec {
	return deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: deploy.KindNode, Replicas: 2, Host: host,
		HealthTimeout: deploy.Duration(20 * time.Second), MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64,
		Strategy: deploy.Strategy{Kind: strategy, Pause: deploy.Duration(10 * time.Millisecond)}}}
}

func TestRollout_Strategies(t *testing.T) {
	needRuntime(t)
	for _, tt := range []struct {
		strategy string
		weights  []int // the new release's share of traffic at each step
	}{
		{deploy.Recreate, []int{100}},
		{deploy.Rolling, []int{50, 100}},
		{deploy.BlueGreen, []int{100}},
		{deploy.Canary, []int{10, 50, 100}},
	} {
		t.Run(tt.strategy, func(t *testing.T) {
			steps := &stepLog{}
			h := newHarness(t, nil, steps, nil)
			host := strings.ReplaceAll(tt.strategy, "_", "") + ".web.test"
			e := h.env("staging", spec(tt.strategy, host))
			v1, v2 := h.release("v1"), h.release("v2")
			if d := h.wait(h.deploy("staging", v1).ID); d.State != deploy.StateSucceeded {
				t.Fatalf("first deployment %s: %s", d.State, d.Message)
			}
			if got := h.versions(host, 4); got["v1"] != 4 {
				t.Fatalf("after release 1 the gateway answers %v, want v1 only", got)
			}
			var mid map[string]int
			steps.during = func(s deploy.StepInfo) {
				if s.Release == v2.Number && s.Weight == 50 {
					mid = h.versions(host, 20)
				}
			}
			d := h.wait(h.deploy("staging", v2).ID)
			if d.State != deploy.StateSucceeded {
				t.Fatalf("second deployment %s: %s", d.State, d.Message)
			}
			if got := h.versions(host, 6); got["v2"] != 6 {
				t.Errorf("after release 2 the gateway answers %v, want v2 only", got)
			}
			if diff := cmp.Diff(tt.weights, steps.weights(v2.Number)); diff != "" {
				t.Errorf("steps' traffic shares (-want +got):\n%s", diff)
			}
			if slices.Contains(tt.weights, 50) && (mid["v1"] == 0 || mid["v2"] == 0) {
				t.Errorf("at 50%% the gateway answered %v, want both releases", mid)
			}
			if got := h.instances(e); !slices.Equal(got, []int64{v2.ID, v2.ID}) {
				t.Errorf("instances run releases %v, want two of release %d", got, v2.ID)
			}
			env, _ := h.svc.Environment(context.Background(), h.sc, "staging")
			if env.CurrentReleaseID != v2.ID || env.PreviousReleaseID != v1.ID || env.Status != "running" {
				t.Errorf("environment current=%d previous=%d status=%s, want %d, %d, running", env.CurrentReleaseID, env.PreviousReleaseID, env.Status, v2.ID, v1.ID)
			}
			if got := h.get(host, "/secret"); got != "set=true" {
				t.Errorf("secret reference not injected: /secret = %q", got)
			}
		})
	}
}

func TestRollout_FailuresLeaveThePreviousReleaseRunning(t *testing.T) {
	needRuntime(t)
	for _, tt := range []struct {
		name     string
		strategy string
		env      []string // of the bad release's image
		failStep int      // the hook fails this step (0: never)
		want     string   // in the deployment's message
	}{
		{"canary analysis fails at 50%", deploy.Canary, nil, 2, "step 2/3 failed its analysis: error rate 12%"},
		{"rolling crash loop", deploy.Rolling, []string{"CRASH=1"}, 0, "crash-loops"},
		{"blue-green never healthy", deploy.BlueGreen, []string{"UNHEALTHY=1"}, 0, "not healthy"},
		{"recreate crash loop", deploy.Recreate, []string{"CRASH=1"}, 0, "crash-loops"},
		{"registry down", deploy.Rolling, []string{"REGISTRY=down"}, 0, "pull 127.0.0.1:9/acme/web"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			steps := &stepLog{}
			h := newHarness(t, nil, steps, nil)
			host := "fail.web.test"
			sp := spec(tt.strategy, host)
			sp.Target.HealthTimeout = deploy.Duration(3 * time.Second)
			e := h.env("prod", sp)
			v1 := h.release("v1")
			if d := h.wait(h.deploy("prod", v1).ID); d.State != deploy.StateSucceeded {
				t.Fatalf("first deployment %s: %s", d.State, d.Message)
			}
			var bad deploy.Release
			if slices.Contains(tt.env, "REGISTRY=down") {
				// The target's registry does not answer (a closed loopback port).
				var err error
				bad, err = h.svc.CreateRelease(as("dev", 2), h.sc, deploy.Release{Image: "127.0.0.1:9/acme/web", Digest: digest1, SourceBranch: "main"})
				if err != nil {
					t.Fatal(err)
				}
			} else {
				bad = h.release("v2", tt.env...)
			}
			steps.fail = func(s deploy.StepInfo) bool { return s.Release == bad.Number && s.Step == tt.failStep }
			d := h.wait(h.deploy("prod", bad).ID)
			if d.State != deploy.StateRolledBack || !strings.Contains(d.Message, tt.want) {
				t.Fatalf("deployment %s: %q, want rolled_back saying %q", d.State, d.Message, tt.want)
			}
			if !strings.Contains(d.Message, "release #1 runs again") {
				t.Errorf("message %q does not say which release runs", d.Message)
			}
			if got := h.versions(host, 6); got["v1"] != 6 {
				t.Errorf("after the rollback the gateway answers %v, want v1 only", got)
			}
			if got := h.instances(e); !slices.Equal(got, []int64{v1.ID, v1.ID}) {
				t.Errorf("instances run releases %v, want two of release %d", got, v1.ID)
			}
			env, _ := h.svc.Environment(context.Background(), h.sc, "prod")
			if env.CurrentReleaseID != v1.ID || env.Status != "running" {
				t.Errorf("environment current=%d status=%s, want %d running", env.CurrentReleaseID, env.Status, v1.ID)
			}
			evs := h.finished()
			if len(evs) != 2 || evs[1].State != deploy.StateRolledBack || evs[1].Release != bad.Number || evs[1].RunningNumber != v1.Number || evs[1].Environment != "prod" {
				t.Errorf("finished events %+v, want the second rolled back with release #%d running", evs, v1.Number)
			}
		})
	}
}

func TestRollout_FirstReleaseThatFailsLeavesNothingHalfRunning(t *testing.T) {
	h := newHarness(t, nil, nil, nil)
	sp := spec(deploy.Rolling, "")
	sp.Target.HealthTimeout = deploy.Duration(2 * time.Second)
	e := h.env("dev", sp)
	d := h.wait(h.deploy("dev", h.release("v1", "CRASH=1")).ID)
	if d.State != deploy.StateFailed || !strings.Contains(d.Message, "nothing ran before it") {
		t.Fatalf("deployment %s: %q, want failed", d.State, d.Message)
	}
	if got := h.instances(e); len(got) != 0 {
		t.Errorf("instances left behind: %v", got)
	}
}

// TestRollout_KilledMidRollout stops Rampart (service and runtime) while
// a canary holds 10% of the traffic; at the next start the previous
// release runs at full strength, alone, and the deployment says so.
func TestRollout_KilledMidRollout(t *testing.T) {
	steps := &stepLog{}
	h := newHarness(t, nil, steps, nil)
	host := "kill.web.test"
	e := h.env("prod", spec(deploy.Canary, host))
	v1 := h.release("v1")
	h.wait(h.deploy("prod", v1).ID)
	v2 := h.release("v2")
	reached := make(chan struct{})
	release := make(chan struct{})
	steps.during = func(s deploy.StepInfo) {
		if s.Release == v2.Number && s.Weight == 10 {
			close(reached)
			<-release
		}
	}
	d := h.deploy("prod", v2)
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("the canary never reached 10%")
	}
	// Rampart stops here: the rollout's context ends, the containers
	// of both releases keep running.
	go func() { time.Sleep(100 * time.Millisecond); close(release) }()
	h.halt()
	if got, _ := h.svc.Deployment(context.Background(), h.sc, d.ID); got.State != deploy.StateRunning {
		t.Fatalf("after the stop the deployment is %s, want still running (settled at the next start)", got.State)
	}
	steps.during = nil
	h.start()
	got := h.wait(d.ID)
	if got.State != deploy.StateRolledBack || !strings.Contains(got.Message, "interrupted") {
		t.Errorf("deployment after restart: %s %q, want rolled_back, interrupted", got.State, got.Message)
	}
	if v := h.versions(host, 6); v["v1"] != 6 {
		t.Errorf("after the restart the gateway answers %v, want v1 only", v)
	}
	if ids := h.instances(e); !slices.Equal(ids, []int64{v1.ID, v1.ID}) {
		t.Errorf("instances run releases %v, want exactly two of release %d", ids, v1.ID)
	}
}

// TestRollout_RestartReattaches restarts Rampart with a release running:
// the same instances serve, none is started twice.
func TestRollout_RestartReattaches(t *testing.T) {
	h := newHarness(t, nil, nil, nil)
	host := "again.web.test"
	e := h.env("prod", spec(deploy.Rolling, host))
	h.wait(h.deploy("prod", h.release("v1")).ID)
	before, _ := h.rt.Instances(context.Background(), deploy.GroupOf(e.ID))
	h.halt()
	h.start()
	after, _ := h.rt.Instances(context.Background(), deploy.GroupOf(e.ID))
	ids := func(ins []deploy.Instance) []string {
		var out []string
		for _, in := range ins {
			out = append(out, in.ID)
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff(ids(before), ids(after)); diff != "" || len(after) != 2 {
		t.Errorf("instances after the restart differ (-before +after):\n%s", diff)
	}
	if v := h.versions(host, 4); v["v1"] != 4 {
		t.Errorf("after the restart the gateway answers %v", v)
	}
}

// TestRollout_RollbackThatFailsToo: the new release crash-loops and the
// previous one cannot come back (its registry went down and its
// unpacked image is gone): the deployment fails and the environment is
// shown degraded, never as running a release it does not run.
func TestRollout_RollbackThatFailsToo(t *testing.T) {
	h := newHarness(t, nil, nil, nil)
	sp := spec(deploy.Recreate, "")
	sp.Target.HealthTimeout = deploy.Duration(3 * time.Second)
	h.env("prod", sp)
	other := deploytest.StartRegistry(t)
	image, digest := other.Push(t, "acme/web", deploytest.Image(t, "v1"))
	v1, err := h.svc.CreateRelease(as("dev", 2), h.sc, deploy.Release{Image: image, Digest: digest, SourceBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if d := h.wait(h.deploy("prod", v1).ID); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %s", d.State, d.Message)
	}
	other.Close()
	if err := os.RemoveAll(filepath.Join(h.dir, "images", strings.TrimPrefix(digest, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	d := h.wait(h.deploy("prod", h.release("v2", "CRASH=1")).ID)
	if d.State != deploy.StateFailed || !strings.Contains(d.Message, "the rollback to release #1 failed too") {
		t.Errorf("deployment %s %q, want failed with a failed rollback", d.State, d.Message)
	}
	env, _ := h.svc.Environment(context.Background(), h.sc, "prod")
	if env.Status != "degraded" || env.CurrentReleaseID != v1.ID {
		t.Errorf("environment %s, current %d: want degraded, still recording release 1 as the last good one", env.Status, env.CurrentReleaseID)
	}
}

// TestRollout_ApprovalThatNeverComes: production runs release 1; release
// 2 waits for an approval that never comes. When the environment's
// approval timeout passes the deployment expires, nothing is started,
// the same instances of release 1 keep serving, and a late approval is
// refused.
func TestRollout_ApprovalThatNeverComes(t *testing.T) {
	h := newHarness(t, nil, nil, nil)
	host := "approval.web.test"
	sp := spec(deploy.Rolling, host)
	e := h.env("prod", sp)
	v1, v2 := h.release("v1"), h.release("v2")
	if d := h.wait(h.deploy("prod", v1).ID); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %s", d.State, d.Message)
	}
	before, _ := h.rt.Instances(context.Background(), deploy.GroupOf(e.ID))
	sp.Protection = deploy.Protection{RequiredApprovals: 1, Approvers: []string{"alice"}, ApprovalTimeout: deploy.Duration(time.Second)}
	h.env("prod", sp)
	d := h.deploy("prod", v2)
	if d.State != deploy.StateAwaitingApproval {
		t.Fatalf("deployment of release 2 is %s, want awaiting_approval", d.State)
	}
	got := h.wait(d.ID)
	if got.State != deploy.StateExpired || !strings.Contains(got.Message, "keeps its release") {
		t.Errorf("unanswered deployment: %s %q, want expired", got.State, got.Message)
	}
	if _, err := h.svc.Approve(as("alice", 3), h.sc, d.ID, deploy.ApproveRequest{Approve: true}); err == nil {
		t.Error("an approval after the expiry was accepted")
	}
	after, _ := h.rt.Instances(context.Background(), deploy.GroupOf(e.ID))
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("instances changed although nothing was deployed (-before +after):\n%s", diff)
	}
	if v := h.versions(host, 4); v["v1"] != 4 {
		t.Errorf("the gateway answers %v, want v1 only", v)
	}
	env, _ := h.svc.Environment(context.Background(), h.sc, "prod")
	if env.CurrentReleaseID != v1.ID || env.Status != "running" {
		t.Errorf("environment current=%d status=%s, want %d running", env.CurrentReleaseID, env.Status, v1.ID)
	}
	if got.FinishedAt == nil || len(got.Journal) != 0 {
		t.Errorf("expired deployment: finished %v, journal %+v; want finished with no rollout step", got.FinishedAt, got.Journal)
	}
}
