package app_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault"
)

func needNodeRuntime(t *testing.T) {
	t.Helper()
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 || !container.Available() {
		testenv.Missing(t, "root with runc (the node runtime)")
	}
}

// secretSeen asks every instance of staging what it sees of
// DB_PASSWORD and returns the instances' ids and answers.
func secretSeen(t *testing.T, w *vworld) (ids []string, answers []string) {
	t.Helper()
	var ins []deploy.InstanceJSON
	w.admin.Must(http.StatusOK, "GET", vapi+"/projects/web/environments/staging/instances", nil).Decode(t, &ins)
	for _, in := range ins {
		resp, err := http.Get("http://" + in.Addr + "/secret")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ids = append(ids, in.ID)
		answers = append(answers, strings.TrimSpace(string(b)))
	}
	return ids, answers
}

// TestDeployWire_RotationRestartsWhereAsked: a release referencing a
// vault secret runs two replicas. Rotating the secret while the project
// has not asked for restarts restarts nothing; once the project asks
// (restart_on_rotate), a rotation makes a new deployment of the same
// release — rolling, in the history, audited — after which every
// instance is new and sees the new value.
func TestDeployWire_RotationRestartsWhereAsked(t *testing.T) {
	needNodeRuntime(t)
	w := newVWorld(t, apptest.WithPreDeployAudited(t))
	if w.a.NodeRuntime == nil {
		t.Fatal("no node runtime although runc and root are available")
	}
	reg := deploytest.StartRegistry(t)
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1"))
	p := vapi + "/projects/web"
	w.admin.Must(http.StatusOK, "PUT", p+"/environments/staging", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: deploy.KindNode,
		Replicas: 2, HealthTimeout: deploy.Duration(30 * time.Second), MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64,
		Strategy: deploy.Strategy{Kind: deploy.Recreate}}})
	first := randomValue(t, "pw-")
	w.setSecret(t, "/projects/web/envs/staging", "DB_PASSWORD", first)
	w.grant(t, "staging", []string{"web/staging/DB_PASSWORD"}, []string{"deployment:web:staging"})
	w.admin.Must(http.StatusCreated, "POST", p+"/releases", map[string]any{"image": image, "digest": digest,
		"secret_refs": []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "acme/web/staging/DB_PASSWORD"}}})
	var dep deploy.Deployment
	w.admin.Must(http.StatusCreated, "POST", p+"/deployments", deploy.DeployRequest{Environment: "staging", Release: 1}).Decode(t, &dep)
	if dep = waitDeployment(t, w, dep.ID); dep.State != deploy.StateSucceeded {
		t.Fatalf("first deployment %+v; want succeeded", dep)
	}
	before, seen := secretSeen(t, w)
	if want := "set=true len=" + strconv.Itoa(len(first)); len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Fatalf("instances see %q; want two answering %q", seen, want)
	}
	deployments := func() []deploy.Deployment {
		var ds []deploy.Deployment
		w.admin.Must(http.StatusOK, "GET", p+"/deployments", nil).Decode(t, &ds)
		return ds
	}

	// Without the project's opt-in a rotation restarts nothing.
	rotate := func(v string) {
		w.admin.Must(http.StatusOK, "POST", p+"/envs/staging/secrets/DB_PASSWORD/rotate", vault.RotateRequest{Value: &v})
	}
	rotate(randomValue(t, "not-restarted-"))
	time.Sleep(1500 * time.Millisecond)
	if ds := deployments(); len(ds) != 1 {
		t.Fatalf("deployments after a rotation without opt-in: %+v; want only the first", ds)
	}
	if ids, _ := secretSeen(t, w); strings.Join(ids, ",") != strings.Join(before, ",") {
		t.Fatalf("instances %v after a rotation without opt-in; want %v untouched", ids, before)
	}

	// With it, the rotation restarts the release one instance at a time.
	on := true
	w.admin.Must(http.StatusOK, "PATCH", p+"/vault/settings", vault.SettingsRequest{RestartOnRotate: &on})
	mark := w.a.AuditHead(t)
	second := randomValue(t, "rotated-and-longer-")
	rotate(second)
	var restart deploy.Deployment
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if ds := deployments(); len(ds) == 2 {
			restart = ds[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no restart deployment within 30s of the rotation")
		}
	}
	restart = waitDeployment(t, w, restart.ID)
	if restart.State != deploy.StateSucceeded || restart.ReleaseNumber != 1 || restart.Strategy != deploy.Rolling ||
		!strings.Contains(restart.Reason, "acme/web/staging/DB_PASSWORD rotated") || restart.CreatedBy != "vault" {
		t.Fatalf("restart deployment %+v; want release 1 redeployed rolling by the vault, succeeded", restart)
	}
	after, seen := secretSeen(t, w)
	if want := "set=true len=" + strconv.Itoa(len(second)); len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Errorf("instances see %q after the restart; want two answering %q", seen, want)
	}
	for _, id := range after {
		for _, old := range before {
			if id == old {
				t.Errorf("instance %s survived the restart", id)
			}
		}
	}
	if !processHasEnv("DB_PASSWORD=" + second) {
		t.Error("no process on this machine has DB_PASSWORD set to the rotated value")
	}
	if rs := audited(t, w.a, mark, "deploy.deployment.restart"); len(rs) != 1 || rs[0].Outcome != audit.Success {
		t.Errorf("audited restarts %+v; want one", rs)
	}
	var env deploy.EnvironmentJSON
	w.admin.Must(http.StatusOK, "GET", p+"/environments/staging", nil).Decode(t, &env)
	if env.Current == nil || env.Current.Number != 1 || env.Status != "running" {
		t.Errorf("environment after the restart: %+v; want release 1 running", env.Environment)
	}
}

const vruns = vapi + "/repos/app/pipelines/runs"

// waitRun waits for run n of acme/app to finish and returns it with its
// first job's log.
func waitRun(t *testing.T, w *vworld, n int64) (pipeline.RunJSON, string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp := w.admin.Do("GET", vruns+"/"+strconv.FormatInt(n, 10), nil)
		if resp.Status != http.StatusOK {
			continue
		}
		var r pipeline.RunJSON
		resp.Decode(t, &r)
		if r.Status == pipeline.StatusQueued || r.Status == pipeline.StatusRunning || len(r.Jobs) == 0 {
			continue
		}
		log := w.admin.Must(http.StatusOK, "GET", fmt.Sprintf("%s/%d/jobs/%d/log", vruns, n, r.Jobs[0].ID), nil).Body
		return r, string(log)
	}
	t.Fatalf("run #%d did not finish within 3 minutes", n)
	return pipeline.RunJSON{}, ""
}

// TestDeployWire_PipelineDeployStep: a push to acme/app runs a pipeline
// that builds an image of the test application, pushes it to Rampart's
// registry and deploys it with a deploy step to staging on the node
// runtime. The step's log shows the release, the gate's decision and the
// rollout; the release names the commit, branch, run and the work item
// the commit mentions; the workload answers. A second push deploys to
// production, which needs an approval that does not come within the
// step's approval-timeout: the step shows the wait, gives up and fails,
// and production runs nothing.
func TestDeployWire_PipelineDeployStep(t *testing.T) {
	needNodeRuntime(t)
	w := newVWorld(t, apptest.WithPreDeployAudited(t))
	if w.a.NodeRuntime == nil {
		t.Fatal("no node runtime although runc and root are available")
	}
	host := strings.TrimPrefix(w.a.URL, "http://")
	p := vapi + "/projects/web"
	for env, approvals := range map[string]int{"staging": 0, "production": 1} {
		w.admin.Must(http.StatusOK, "PUT", p+"/environments/"+env, deploy.EnvironmentSpec{
			Protection: deploy.Protection{RequiredApprovals: approvals, AllowedBranches: []string{"main"}},
			Target: deploy.TargetSpec{Kind: deploy.KindNode, Replicas: 2, HealthTimeout: deploy.Duration(30 * time.Second),
				MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64, Strategy: deploy.Strategy{Kind: deploy.Rolling}}})
	}
	definition := func(env, extra string) string {
		return `on:
  push:
    branches: [main]
jobs:
  ship:
    steps:
      - build-image: {tag: "app:1", context: ., dockerfile: Dockerfile}
      - push-image: {image: "app:1", to: "` + host + `/acme/app:1"}
      - deploy: {environment: ` + env + `, image: "app:1", reason: "continuous delivery"` + extra + `}
`
	}
	if err := os.WriteFile(filepath.Join(w.dir, "app"), deploytest.AppBinary(t), 0o755); err != nil {
		t.Fatal(err)
	}
	w.commit(t, map[string]string{
		"Dockerfile":            "FROM scratch\nCOPY app /app\nENV VERSION=piped\nENTRYPOINT [\"/app\"]\n",
		pipeline.DefinitionPath: definition("staging", ""),
	})
	w.gitMust(t, "commit", "--quiet", "--amend", "-m", "ship the app, fixes AB#7")
	w.gitMust(t, "push", "--quiet", "origin", "main")
	sha := strings.TrimSpace(w.gitMust(t, "rev-parse", "HEAD"))
	r, log := waitRun(t, w, 1)
	if r.Status != pipeline.StatusSuccess {
		t.Fatalf("run #1 %s (%s):\n%s", r.Status, r.Reason, log)
	}
	for _, want := range []string{"deploying " + host + "/acme/app@sha256:", "release #1 recorded", "gate pre-deploy (at request): allow",
		"deployment 1 of release #1 to staging: queued", "succeeded: release #1 runs"} {
		if !strings.Contains(log, want) {
			t.Errorf("the step's log lacks %q:\n%s", want, log)
		}
	}
	var rel deploy.Release
	w.admin.Must(http.StatusOK, "GET", p+"/releases/1", nil).Decode(t, &rel)
	if rel.SourceCommit != sha || rel.SourceBranch != "main" || rel.Repository != "acme/app" || rel.Image != host+"/acme/app" ||
		strings.Join(rel.WorkItems, ",") != "AB#7" || !strings.Contains(rel.Reason, "/acme/repos/app/pipelines/1)") || rel.CreatedBy != "admin" {
		t.Errorf("release %+v; want commit %s on main of acme/app, AB#7, the run named, by admin", rel, sha)
	}
	var ins []deploy.InstanceJSON
	w.admin.Must(http.StatusOK, "GET", p+"/environments/staging/instances", nil).Decode(t, &ins)
	if len(ins) != 2 {
		t.Fatalf("staging instances %+v; want two", ins)
	}
	for _, in := range ins {
		resp, err := http.Get("http://" + in.Addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), "piped ") || in.ReleaseNumber != 1 {
			t.Errorf("instance %s of release %d answers %q; want the built application of release 1", in.ID, in.ReleaseNumber, b)
		}
	}

	// Production needs an approval that never comes.
	w.commit(t, map[string]string{pipeline.DefinitionPath: definition("production", `, approval-timeout: 2s`)})
	w.gitMust(t, "push", "--quiet", "origin", "main")
	r, log = waitRun(t, w, 2)
	if r.Status != pipeline.StatusFailed {
		t.Fatalf("run #2 %s; want failed:\n%s", r.Status, log)
	}
	for _, want := range []string{"release #2 recorded", "awaiting_approval: waiting for 1 approval(s)", "expired: no approval within the step's approval-timeout of 2s"} {
		if !strings.Contains(log, want) {
			t.Errorf("the step's log lacks %q:\n%s", want, log)
		}
	}
	var env deploy.EnvironmentJSON
	w.admin.Must(http.StatusOK, "GET", p+"/environments/production", nil).Decode(t, &env)
	if env.CurrentReleaseID != 0 {
		t.Errorf("production runs release %d; want nothing", env.CurrentReleaseID)
	}

	// Images the job did not push, or of another registry, are refused
	// before any release is recorded.
	w.commit(t, map[string]string{pipeline.DefinitionPath: `on:
  push:
    branches: [main]
jobs:
  ship:
    steps:
      - deploy: {environment: staging, image: "app:9"}
        continue-on-error: true
      - deploy: {environment: staging, image: "registry.example.com/acme/app@sha256:` + strings.Repeat("a", 64) + `"}
`})
	w.gitMust(t, "push", "--quiet", "origin", "main")
	r, log = waitRun(t, w, 3)
	for _, want := range []string{`deploy: image "app:9" was not pushed by an earlier push-image step of this job`,
		"is not in this Rampart's registry"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	var rels []deploy.Release
	w.admin.Must(http.StatusOK, "GET", p+"/releases", nil).Decode(t, &rels)
	if r.Status != pipeline.StatusFailed || len(rels) != 2 {
		t.Errorf("run #3 %s with %d releases recorded; want failed, no new release", r.Status, len(rels))
	}
}
