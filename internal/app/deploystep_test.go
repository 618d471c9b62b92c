package app_test

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
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
