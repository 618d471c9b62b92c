package kubetarget_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/kubetarget"
	"github.com/rampartsec/rampart/internal/kubetest"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

var cluster kubetest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type secrets map[string]string

func (s secrets) Resolve(ctx context.Context, sc deploy.Scope, refs []deploy.SecretRef) (map[string]deploy.Value, error) {
	out := map[string]deploy.Value{}
	for _, r := range refs {
		out[r.Env] = deploy.Value(s[r.Ref])
	}
	return out, nil
}

// deployer creates a namespace with a service account allowed to manage
// Deployments, Services and Secrets there and nowhere else, and returns
// a token of it: what an operator gives Rampart.
func deployer(t *testing.T, c *kubetest.Cluster, ns string) string {
	t.Helper()
	c.Namespace(t, ns, nil)
	c.Must(t, http.StatusCreated, "POST", "/api/v1/namespaces/"+ns+"/serviceaccounts", map[string]any{"metadata": map[string]any{"name": "rampart"}})
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	c.Must(t, http.StatusCreated, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/"+ns+"/roles", map[string]any{
		"metadata": map[string]any{"name": "rampart-deployer"},
		"rules": []any{
			map[string]any{"apiGroups": []string{"apps"}, "resources": []string{"deployments"}, "verbs": verbs},
			map[string]any{"apiGroups": []string{""}, "resources": []string{"services", "secrets", "configmaps"}, "verbs": verbs},
		}})
	c.Must(t, http.StatusCreated, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/"+ns+"/rolebindings", map[string]any{
		"metadata": map[string]any{"name": "rampart-deployer"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rampart-deployer"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "rampart", "namespace": ns}}})
	r := c.Must(t, http.StatusCreated, "POST", "/api/v1/namespaces/"+ns+"/serviceaccounts/rampart/token", map[string]any{
		"spec": map[string]any{"expirationSeconds": 3600}})
	var tr struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &tr); err != nil || tr.Status.Token == "" {
		t.Fatalf("token request: %s", r.Body)
	}
	return tr.Status.Token
}

const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	digest3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func TestKubernetes_ApplyRolloutRollback(t *testing.T) {
	c := cluster.Get(t)
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), audit.Migrations, deploy.Migrations); err != nil {
		t.Fatal(err)
	}
	keys, _ := keyring.FromKey(make([]byte, 32))
	log := logging.New(testWriter{t}, "warn")
	failRelease := int64(3)
	hook := deploy.HookFunc(func(ctx context.Context, s deploy.StepInfo) error {
		if s.Release == failRelease {
			return errors.New("p99 latency 2.3s above 500ms")
		}
		return nil
	})
	kt := &kubetarget.Target{Logger: log, Poll: 100 * time.Millisecond,
		PullAuth: func(ctx context.Context, image string) (string, deploy.Value, bool) {
			return "rampart-pull", "rpt_pulltoken", true
		}}
	secs := secrets{"web/db#password": "hunter2-but-longer"}
	svc, err := deploy.New(deploy.Deps{DB: db, Audit: audit.New(db, nil), Sealer: keys, Logger: log, Hook: hook, Poll: 50 * time.Millisecond,
		Targets: map[string]deploy.Target{deploy.KindKubernetes: kt}, Secrets: secs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	sc := deploy.Scope{OrgID: 1, ProjectID: 1, Org: "acme", Project: "web"}
	owner, dev := reqinfo.WithActor(ctx, 1, "owner"), reqinfo.WithActor(ctx, 2, "dev")
	env := deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: deploy.KindKubernetes, Replicas: 2, Port: 8080,
		HealthTimeout: deploy.Duration(20 * time.Second), Strategy: deploy.Strategy{Kind: deploy.Rolling}}}
	tokens := map[string]string{}
	for name, ns := range map[string]string{"prod": "web-prod", "admin": "web-admin", "custom": "web-custom"} {
		if _, _, err := svc.PutEnvironment(owner, sc, name, env); err != nil {
			t.Fatal(err)
		}
		token := c.Token // a cluster-admin credential, which Rampart refuses
		if name != "admin" {
			token = deployer(t, c, ns)
		} else {
			c.Namespace(t, ns, nil)
		}
		tokens[name] = token
		if _, err := svc.PutConnection(owner, sc, name, deploy.ConnectionSpec{Kind: deploy.KindKubernetes, Server: c.URL, Namespace: ns,
			CACert: string(ca), Token: token}); err != nil {
			t.Fatal(err)
		}
	}
	release := func(digest string) deploy.Release {
		r, err := svc.CreateRelease(dev, sc, deploy.Release{Image: "registry.acme.test/acme/web", Digest: digest, SourceBranch: "main",
			Config:     deploy.ReleaseConfig{Env: map[string]string{"MODE": "production"}},
			SecretRefs: []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "web/db#password"}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	run := func(envName string, r deploy.Release) deploy.Deployment {
		t.Helper()
		d, err := svc.Deploy(dev, sc, deploy.DeployRequest{Environment: envName, Release: r.Number})
		if err != nil {
			t.Fatal(err)
		}
		kubetest.Eventually(t, 120*time.Second, "deployment ends", func() bool {
			d, _ = svc.Deployment(owner, sc, d.ID)
			return d.State != deploy.StateQueued && d.State != deploy.StateRunning
		})
		return d
	}
	type deployment struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Image string `json:"image"`
						Env   []struct {
							Name      string          `json:"name"`
							Value     string          `json:"value"`
							ValueFrom json.RawMessage `json:"valueFrom"`
						} `json:"env"`
						SecurityContext struct {
							RunAsNonRoot             bool `json:"runAsNonRoot"`
							ReadOnlyRootFilesystem   bool `json:"readOnlyRootFilesystem"`
							AllowPrivilegeEscalation bool `json:"allowPrivilegeEscalation"`
							SeccompProfile           struct {
								Type string `json:"type"`
							} `json:"seccompProfile"`
						} `json:"securityContext"`
					} `json:"containers"`
					ImagePullSecrets []struct {
						Name string `json:"name"`
					} `json:"imagePullSecrets"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
		Status struct {
			AvailableReplicas int `json:"availableReplicas"`
		} `json:"status"`
	}
	read := func() deployment {
		var d deployment
		r := c.Must(t, http.StatusOK, "GET", "/apis/apps/v1/namespaces/web-prod/deployments/web", nil)
		if err := json.Unmarshal(r.Body, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	r1 := release(digest1)
	if d := run("prod", r1); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %q", d.State, d.Message)
	}
	got := read()
	ctr := got.Spec.Template.Spec.Containers[0]
	if ctr.Image != "registry.acme.test/acme/web@"+digest1 || got.Metadata.Annotations["rampart.dev/release"] != "1" || got.Status.AvailableReplicas != 2 {
		t.Errorf("Deployment after release 1: image %s, annotations %v, %d available", ctr.Image, got.Metadata.Annotations, got.Status.AvailableReplicas)
	}
	sec := ctr.SecurityContext
	if !sec.RunAsNonRoot || !sec.ReadOnlyRootFilesystem || sec.AllowPrivilegeEscalation || sec.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("security context %+v", sec)
	}
	envs := map[string]string{}
	for _, e := range ctr.Env {
		envs[e.Name] = e.Value + string(e.ValueFrom)
	}
	if envs["MODE"] != "production" || envs["PORT"] != "8080" || !strings.Contains(envs["DB_PASSWORD"], `"secretKeyRef"`) ||
		strings.Contains(envs["DB_PASSWORD"], "hunter2") {
		t.Errorf("container env %v: want MODE, PORT and DB_PASSWORD from a secretKeyRef (never the value)", envs)
	}
	if ps := got.Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != "web-pull" {
		t.Errorf("pull secrets %v", ps)
	}
	var secret struct {
		Data map[string][]byte `json:"data"`
	}
	_ = json.Unmarshal(c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/web-prod/secrets/web-secrets", nil).Body, &secret)
	if string(secret.Data["DB_PASSWORD"]) != "hunter2-but-longer" {
		t.Errorf("secret data %q", secret.Data["DB_PASSWORD"])
	}
	c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/web-prod/services/web", nil)

	r2 := release(digest2)
	if d := run("prod", r2); d.State != deploy.StateSucceeded {
		t.Fatalf("release 2: %s %q", d.State, d.Message)
	}
	if img := read().Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, digest2) {
		t.Errorf("after release 2 the Deployment runs %s", img)
	}
	// Release 3 rolls out but fails its analysis: release 2 comes back.
	r3 := release(digest3)
	d := run("prod", r3)
	if d.State != deploy.StateRolledBack || !strings.Contains(d.Message, "p99 latency") {
		t.Errorf("release 3: %s %q, want rolled back", d.State, d.Message)
	}
	got = read()
	if img := got.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, digest2) || got.Metadata.Annotations["rampart.dev/release"] != "2" {
		t.Errorf("after the rollback the Deployment runs %s (release %s), want release 2", img, got.Metadata.Annotations["rampart.dev/release"])
	}
	e, _ := svc.Environment(owner, sc, "prod")
	if e.CurrentReleaseID != r2.ID {
		t.Errorf("environment records release %d as current, want %d", e.CurrentReleaseID, r2.ID)
	}

	// The target goes down (its API server does not answer): the deployment
	// fails saying so, and release 2 stays current and running.
	if _, err := svc.PutConnection(owner, sc, "prod", deploy.ConnectionSpec{Kind: deploy.KindKubernetes, Server: "https://127.0.0.1:9", Namespace: "web-prod",
		CACert: string(ca), Token: tokens["prod"]}); err != nil {
		t.Fatal(err)
	}
	if d := run("prod", r1); d.State == deploy.StateSucceeded || !strings.Contains(d.Message, "127.0.0.1:9") {
		t.Errorf("deployment to a target that is down: %s %q, want it failed naming the target", d.State, d.Message)
	}
	if e, _ := svc.Environment(owner, sc, "prod"); e.CurrentReleaseID != r2.ID {
		t.Errorf("after a deployment to a target that is down the environment records release %d, want %d", e.CurrentReleaseID, r2.ID)
	}
	if img := read().Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, digest2) {
		t.Errorf("after a deployment to a target that is down the Deployment runs %s, want release 2", img)
	}
	if _, err := svc.PutConnection(owner, sc, "prod", deploy.ConnectionSpec{Kind: deploy.KindKubernetes, Server: c.URL, Namespace: "web-prod",
		CACert: string(ca), Token: tokens["prod"]}); err != nil {
		t.Fatal(err)
	}

	// The secret is rotated and the project restarts on rotation: the
	// running release's pods are replaced, rolling, and read the new value
	// from the release's Secret; the release stays the same.
	secs["web/db#password"] = "rotated-and-longer-still"
	restarts, err := svc.RestartUsing(owner, "acme", "web", func(ref string) bool { return ref == "web/db#password" }, "vault: web/db rotated")
	if err != nil || len(restarts) != 1 {
		t.Fatalf("RestartUsing: %d deployments, %v; want one (prod)", len(restarts), err)
	}
	kubetest.Eventually(t, 120*time.Second, "restart ends", func() bool {
		restarts[0], _ = svc.Deployment(owner, sc, restarts[0].ID)
		return restarts[0].State != deploy.StateQueued && restarts[0].State != deploy.StateRunning
	})
	if restarts[0].State != deploy.StateSucceeded || restarts[0].ReleaseID != r2.ID {
		t.Errorf("restart: %s %q of release %d, want succeeded with release %d", restarts[0].State, restarts[0].Message, restarts[0].ReleaseID, r2.ID)
	}
	_ = json.Unmarshal(c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/web-prod/secrets/web-secrets", nil).Body, &secret)
	if string(secret.Data["DB_PASSWORD"]) != "rotated-and-longer-still" {
		t.Errorf("after the restart the Secret holds %q, want the rotated value", secret.Data["DB_PASSWORD"])
	}
	var restarted struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			} `json:"template"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(c.Must(t, http.StatusOK, "GET", "/apis/apps/v1/namespaces/web-prod/deployments/web", nil).Body, &restarted)
	if restarted.Spec.Template.Metadata.Annotations["rampart.dev/restarted-at"] == "" {
		t.Errorf("pod template annotations %v: no restart, so the pods keep the old value", restarted.Spec.Template.Metadata.Annotations)
	}
	if got := read(); !strings.HasSuffix(got.Spec.Template.Spec.Containers[0].Image, digest2) || got.Status.AvailableReplicas != 2 {
		t.Errorf("after the restart the Deployment runs %s with %d available, want release 2 with 2", got.Spec.Template.Spec.Containers[0].Image, got.Status.AvailableReplicas)
	}

	// The project's own manifests, with the image by digest put in.
	own, err := svc.CreateRelease(dev, sc, deploy.Release{Image: "registry.acme.test/acme/web", Digest: digest1, SourceBranch: "main",
		Config: deploy.ReleaseConfig{Manifests: ownManifests}})
	if err != nil {
		t.Fatal(err)
	}
	if d := run("custom", own); d.State != deploy.StateSucceeded {
		t.Fatalf("own manifests: %s %q", d.State, d.Message)
	}
	c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/web-custom/configmaps/web-settings", nil)
	var custom deployment
	_ = json.Unmarshal(c.Must(t, http.StatusOK, "GET", "/apis/apps/v1/namespaces/web-custom/deployments/web", nil).Body, &custom)
	if img := custom.Spec.Template.Spec.Containers[0].Image; img != "registry.acme.test/acme/web@"+digest1 || custom.Metadata.Annotations["rampart.dev/release"] != "4" {
		t.Errorf("own Deployment runs %q with annotations %v", img, custom.Metadata.Annotations)
	}
	clusterWide, err := svc.CreateRelease(dev, sc, deploy.Release{Image: "registry.acme.test/acme/web", Digest: digest2, SourceBranch: "main",
		Config: deploy.ReleaseConfig{Manifests: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: grab\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := run("custom", clusterWide); d.State != deploy.StateRolledBack || !strings.Contains(d.Message, "cluster-scoped") {
		t.Errorf("a cluster-scoped manifest: %s %q, want rolled back", d.State, d.Message)
	}
	if code, _, _ := c.Do(t.Context(), "GET", "/api/v1/namespaces/grab", nil); code != http.StatusNotFound {
		t.Errorf("namespace grab exists (status %d)", code)
	}

	// A cluster-admin credential is refused before anything is applied.
	d = run("admin", r1)
	if d.State != deploy.StateFailed || !strings.Contains(d.Message, "cluster-wide") {
		t.Errorf("deployment with a cluster-admin token: %s %q", d.State, d.Message)
	}
	if code, _, _ := c.Do(t.Context(), "GET", "/apis/apps/v1/namespaces/web-admin/deployments/web", nil); code != http.StatusNotFound {
		t.Errorf("a Deployment was applied with the cluster-admin token (status %d)", code)
	}
}

const ownManifests = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-settings
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: ${IMAGE}
`
