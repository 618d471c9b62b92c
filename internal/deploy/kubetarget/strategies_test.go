package kubetarget_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/kubetarget"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/kubetest"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// world is a deploy service with a Kubernetes target on the test
// cluster, and a hook that records what the cluster shows at every step
// (the pause) and fails the steps it is told to.
type world struct {
	t      *testing.T
	c      *kubetest.Cluster
	svc    *deploy.Service
	routes *gateway.Service
	sc     deploy.Scope
	owner  context.Context
	dev    context.Context
	ca     string
	deps   deploy.Deps
	halt   func()

	mu      sync.Mutex
	observe func(s deploy.StepInfo) string
	seen    []string
	fail    map[[2]int64]string // {release, step} → the analysis' verdict
	block   chan struct{}       // when set, the hook signals it at its first step and waits for the stop
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := cluster.Get(t)
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), audit.Migrations, deploy.Migrations, gateway.Migrations); err != nil {
		t.Fatal(err)
	}
	keys, _ := keyring.FromKey(make([]byte, 32))
	log := logging.New(testWriter{t}, "warn")
	w := &world{t: t, c: c, ca: string(ca), fail: map[[2]int64]string{}, sc: deploy.Scope{OrgID: 1, ProjectID: 1, Org: "acme", Project: "web"}}

	// Rampart's gateway route service: it is never started, so nothing
	// connects to the (fake) Service addresses it is given.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	gw, err := gateway.New(gateway.Options{Listener: ln, Logger: log, Registry: prometheus.NewRegistry(), WAF: waf.NewEngine(waf.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if w.routes, err = gateway.NewService(gateway.ServiceDeps{DB: db, Audit: audit.New(db, nil), Gateway: gw, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if err := w.routes.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	hook := deploy.HookFunc(func(ctx context.Context, s deploy.StepInfo) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.observe != nil {
			w.seen = append(w.seen, fmt.Sprintf("r%d %d/%d %d%%: %s", s.Release, s.Step, s.Of, s.Weight, w.observe(s)))
		}
		if w.block != nil {
			close(w.block)
			w.block = nil
			w.mu.Unlock()
			<-ctx.Done()
			w.mu.Lock()
			return ctx.Err()
		}
		if why := w.fail[[2]int64{s.Release, int64(s.Step)}]; why != "" {
			return errors.New(why)
		}
		return nil
	})
	kt := &kubetarget.Target{Logger: log, Poll: 100 * time.Millisecond, Router: w.routes,
		PullAuth: func(ctx context.Context, image string) (string, deploy.Value, bool) {
			return "rampart-pull", "rpt_pulltoken", true
		}}
	w.deps = deploy.Deps{DB: db, Audit: audit.New(db, nil), Sealer: keys, Logger: log, Hook: hook, Poll: 50 * time.Millisecond,
		Targets: map[string]deploy.Target{deploy.KindKubernetes: kt}, Secrets: secrets{"web/db#password": "hunter2-but-longer"}}
	w.start()
	t.Cleanup(func() { w.stop() })
	return w
}

// start runs a deploy service (Rampart starting); stop stops it as a
// shutdown does, leaving a rollout in flight unfinished.
func (w *world) start() {
	w.t.Helper()
	svc, err := deploy.New(w.deps)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	w.svc, w.halt = svc, func() { cancel(); <-done }
	w.owner, w.dev = reqinfo.WithActor(context.Background(), 1, "owner"), reqinfo.WithActor(context.Background(), 2, "dev")
}

func (w *world) stop() {
	if w.halt != nil {
		w.halt()
		w.halt = nil
	}
}

// env creates an environment deploying to namespace ns through a
// namespaced service account.
func (w *world) env(name, ns string, spec deploy.TargetSpec) {
	w.t.Helper()
	spec.Kind, spec.Port, spec.HealthTimeout = deploy.KindKubernetes, 8080, deploy.Duration(20*time.Second)
	if _, _, err := w.svc.PutEnvironment(w.owner, w.sc, name, deploy.EnvironmentSpec{Target: spec}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.svc.PutConnection(w.owner, w.sc, name, deploy.ConnectionSpec{Kind: deploy.KindKubernetes, Server: w.c.URL, Namespace: ns,
		CACert: w.ca, Token: deployer(w.t, w.c, ns)}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) release(digest string) deploy.Release {
	w.t.Helper()
	r, err := w.svc.CreateRelease(w.dev, w.sc, deploy.Release{Image: "registry.acme.test/acme/web", Digest: digest, SourceBranch: "main",
		SecretRefs: []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "web/db#password"}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// wait waits for a deployment to end.
func (w *world) wait(d deploy.Deployment) deploy.Deployment {
	w.t.Helper()
	kubetest.Eventually(w.t, 120*time.Second, "deployment ends", func() bool {
		d, _ = w.svc.Deployment(w.owner, w.sc, d.ID)
		return d.State != deploy.StateQueued && d.State != deploy.StateRunning
	})
	return d
}

func (w *world) deploy(env string, r deploy.Release) deploy.Deployment {
	w.t.Helper()
	d, err := w.svc.Deploy(w.dev, w.sc, deploy.DeployRequest{Environment: env, Release: r.Number})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.wait(d)
}

// watch makes the hook record observe's words at every step.
func (w *world) watch(observe func(s deploy.StepInfo) string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.observe, w.seen = observe, nil
}

func (w *world) steps() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

func (w *world) failAt(release int64, step int, why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail[[2]int64{release, int64(step)}] = why
}

// kdeployment is what the tests read of a Deployment.
type kdeployment struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Replicas int `json:"replicas"`
		Template struct {
			Spec struct {
				Containers []struct {
					Image string `json:"image"`
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

// dep reads a Deployment: "release N: S/A" (spec replicas / available),
// or "none".
func (w *world) dep(ns, name string) string {
	code, body, err := w.c.Do(context.Background(), "GET", "/apis/apps/v1/namespaces/"+ns+"/deployments/"+name, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if code == http.StatusNotFound {
		return "none"
	}
	var d kdeployment
	if err := json.Unmarshal(body, &d); err != nil {
		w.t.Fatal(err)
	}
	return fmt.Sprintf("release %s: %d/%d", d.Metadata.Annotations["rampart.dev/release"], d.Spec.Replicas, d.Status.AvailableReplicas)
}

// selects returns the Deployment a Service selects ("*" for every
// Deployment of the project, "none" without the Service).
func (w *world) selects(ns, svc string) string {
	code, body, err := w.c.Do(context.Background(), "GET", "/api/v1/namespaces/"+ns+"/services/"+svc, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if code == http.StatusNotFound {
		return "none"
	}
	var s struct {
		Spec struct {
			Selector map[string]string `json:"selector"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		w.t.Fatal(err)
	}
	if s.Spec.Selector["app.kubernetes.io/name"] != "web" {
		return fmt.Sprintf("foreign selector %v", s.Spec.Selector)
	}
	if set := s.Spec.Selector["rampart.dev/deployment"]; set != "" {
		return set
	}
	return "*"
}

// settled waits until the named Deployments show the wanted state
// (scaled-down pods may take a moment to go).
func (w *world) settled(ns string, want map[string]string) {
	w.t.Helper()
	got := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		for name := range want {
			got[name] = w.dep(ns, name)
		}
		if cmp.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("Deployments in %s (-want +got):\n%s", ns, cmp.Diff(want, got))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKubernetes_BlueGreen(t *testing.T) {
	w := newWorld(t)
	const ns = "web-bluegreen"
	w.env("prod", ns, deploy.TargetSpec{Replicas: 2, Strategy: deploy.Strategy{Kind: deploy.BlueGreen, Preview: true}})
	w.watch(func(s deploy.StepInfo) string {
		return fmt.Sprintf("web→%s preview→%s blue %s green %s", w.selects(ns, "web"), w.selects(ns, "web-preview"),
			w.dep(ns, "web-blue"), w.dep(ns, "web-green"))
	})

	r1 := w.release(digest1)
	if d := w.deploy("prod", r1); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %q", d.State, d.Message)
	}
	if got := w.selects(ns, "web"); got != "web-blue" {
		t.Errorf("after release 1 Service web selects %s, want web-blue", got)
	}
	w.settled(ns, map[string]string{"web-blue": "release 1: 2/2", "web-green": "none", "web": "none"})
	var blue kdeployment
	_ = json.Unmarshal(w.c.Must(t, http.StatusOK, "GET", "/apis/apps/v1/namespaces/"+ns+"/deployments/web-blue", nil).Body, &blue)
	if ps := blue.Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != "web-pull" {
		t.Errorf("web-blue's pull secrets: %v, want web-pull", ps)
	}
	var pull struct {
		Type string            `json:"type"`
		Data map[string][]byte `json:"data"`
	}
	_ = json.Unmarshal(w.c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/"+ns+"/secrets/web-pull", nil).Body, &pull)
	if pull.Type != "kubernetes.io/dockerconfigjson" || !strings.Contains(string(pull.Data[".dockerconfigjson"]), "registry.acme.test") {
		t.Errorf("pull secret: type %q, data %q", pull.Type, pull.Data[".dockerconfigjson"])
	}

	// Release 2 comes up as green beside blue, is seen through the
	// preview Service, then the Service switches and blue goes.
	w.watch(w.observe)
	r2 := w.release(digest2)
	d := w.deploy("prod", r2)
	if d.State != deploy.StateSucceeded {
		t.Fatalf("release 2: %s %q", d.State, d.Message)
	}
	want := []string{
		"r2 1/2 0%: web→web-blue preview→web-green blue release 1: 2/2 green release 2: 2/2",
		"r2 2/2 100%: web→web-green preview→web-green blue release 1: 2/2 green release 2: 2/2",
	}
	if diff := cmp.Diff(want, w.steps()); diff != "" {
		t.Errorf("blue-green steps (-want +got):\n%s", diff)
	}
	if want := "release #2 serves from web-green alone; Service web selects it"; d.Step != want {
		t.Errorf("deployment step %q, want %q", d.Step, want)
	}
	w.settled(ns, map[string]string{"web-blue": "release 1: 0/0", "web-green": "release 2: 2/2"})

	// Release 3 goes to blue, the Service switches, the analysis fails:
	// the selector switches back to green, which kept its pods.
	w.watch(w.observe)
	w.failAt(3, 2, "error rate 7% above 1%")
	r3 := w.release(digest3)
	d = w.deploy("prod", r3)
	if d.State != deploy.StateRolledBack || !strings.Contains(d.Message, "error rate 7%") {
		t.Errorf("release 3: %s %q, want rolled back", d.State, d.Message)
	}
	want = []string{
		"r3 1/2 0%: web→web-green preview→web-blue blue release 3: 2/2 green release 2: 2/2",
		"r3 2/2 100%: web→web-blue preview→web-blue blue release 3: 2/2 green release 2: 2/2",
	}
	if diff := cmp.Diff(want, w.steps()); diff != "" {
		t.Errorf("release 3 steps (-want +got):\n%s", diff)
	}
	if got := w.selects(ns, "web"); got != "web-green" {
		t.Errorf("after the rollback Service web selects %s, want web-green", got)
	}
	w.settled(ns, map[string]string{"web-blue": "release 3: 0/0", "web-green": "release 2: 2/2"})

	// An operator's rollback to release 1 scales blue up with it and
	// switches the selector.
	e, _ := w.svc.Environment(w.owner, w.sc, "prod")
	if e.CurrentReleaseID != r2.ID || e.PreviousReleaseID != r1.ID {
		t.Fatalf("environment: current %d previous %d, want %d and %d", e.CurrentReleaseID, e.PreviousReleaseID, r2.ID, r1.ID)
	}
	rb, err := w.svc.Rollback(w.owner, w.sc, "prod", "release 2 leaks memory")
	if err != nil {
		t.Fatal(err)
	}
	if rb = w.wait(rb); rb.State != deploy.StateSucceeded {
		t.Fatalf("rollback: %s %q", rb.State, rb.Message)
	}
	if got := w.selects(ns, "web"); got != "web-blue" {
		t.Errorf("after the rollback to release 1 Service web selects %s, want web-blue", got)
	}
	w.settled(ns, map[string]string{"web-blue": "release 1: 2/2", "web-green": "release 2: 0/0"})

	// Someone scales the idle colour up behind Rampart's back; at its
	// next start Rampart leaves the current release serving alone.
	w.c.Must(t, http.StatusOK, "PUT", "/apis/apps/v1/namespaces/"+ns+"/deployments/web-green/scale", map[string]any{
		"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": map[string]any{"name": "web-green", "namespace": ns},
		"spec": map[string]any{"replicas": 1}})
	w.settled(ns, map[string]string{"web-green": "release 2: 1/1"})
	w.stop()
	w.start()
	w.settled(ns, map[string]string{"web-blue": "release 1: 2/2", "web-green": "release 2: 0/0"})
	if got := w.selects(ns, "web"); got != "web-blue" {
		t.Errorf("after the restart Service web selects %s, want web-blue", got)
	}
}

func TestKubernetes_CanaryReplicaRatio(t *testing.T) {
	w := newWorld(t)
	const ns = "web-canary"
	w.env("prod", ns, deploy.TargetSpec{Replicas: 4, Strategy: deploy.Strategy{Kind: deploy.Canary, Pause: deploy.Duration(50 * time.Millisecond)}})
	r1 := w.release(digest1)
	if d := w.deploy("prod", r1); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %q", d.State, d.Message)
	}
	w.settled(ns, map[string]string{"web": "release 1: 4/4", "web-canary": "none"})

	var steps []string
	w.watch(func(s deploy.StepInfo) string {
		ds, _ := w.svc.Deployments(w.owner, w.sc, "prod", 1)
		if len(ds) == 1 {
			steps = append(steps, ds[0].Step)
		}
		return fmt.Sprintf("web→%s web %s canary %s", w.selects(ns, "web"), w.dep(ns, "web"), w.dep(ns, "web-canary"))
	})
	r2 := w.release(digest2)
	if d := w.deploy("prod", r2); d.State != deploy.StateSucceeded {
		t.Fatalf("release 2: %s %q", d.State, d.Message)
	}
	want := []string{
		"r2 1/3 10%: web→* web release 1: 3/3 canary release 2: 1/1",
		"r2 2/3 50%: web→* web release 1: 2/2 canary release 2: 2/2",
		"r2 3/3 100%: web→web web release 2: 4/4 canary release 2: 0/0",
	}
	if diff := cmp.Diff(want, w.steps()); diff != "" {
		t.Errorf("canary steps, observed at each pause (-want +got):\n%s", diff)
	}
	wantSteps := []string{
		"step 1/3: 10% of traffic on release #2 asked; 1 of 4 pods run it (web 3, web-canary 1)",
		"step 2/3: 50% of traffic on release #2 asked; 2 of 4 pods run it (web 2, web-canary 2)",
		"step 3/3: release #2 promoted: Deployment web runs it alone",
	}
	if diff := cmp.Diff(wantSteps, steps); diff != "" {
		t.Errorf("the deployment's step at each pause (-want +got):\n%s", diff)
	}

	// Release 3 fails its analysis at 50 %: the canary goes to zero,
	// the stable Deployment is back at full strength and alone.
	steps = nil
	w.watch(w.observe)
	w.failAt(3, 2, "p99 latency 2.3s above 500ms")
	r3 := w.release(digest3)
	d := w.deploy("prod", r3)
	if d.State != deploy.StateRolledBack || !strings.Contains(d.Message, "step 2/3 failed its analysis: p99 latency") {
		t.Errorf("release 3: %s %q, want rolled back at step 2", d.State, d.Message)
	}
	if got := len(w.steps()); got != 2 {
		t.Errorf("release 3 went through %d steps, want 2: %q", got, w.steps())
	}
	if got := w.selects(ns, "web"); got != "web" {
		t.Errorf("after the rollback Service web selects %s, want web alone", got)
	}
	w.settled(ns, map[string]string{"web": "release 2: 4/4", "web-canary": "release 3: 0/0"})
	if want := "rolled back: release #2 serves alone"; d.Step != want {
		t.Errorf("deployment step %q, want %q", d.Step, want)
	}
}

func TestKubernetes_CanaryGatewayWeights(t *testing.T) {
	w := newWorld(t)
	const ns = "web-edge"
	w.env("edge", ns, deploy.TargetSpec{Replicas: 2, Host: "web.acme.test", Strategy: deploy.Strategy{Kind: deploy.Canary, Steps: []int{10, 50, 100}}})
	gsc := gateway.Scope{OrgID: 1, ProjectID: 1, OrgName: "acme", ProjectName: "web"}
	route := func() string {
		r, err := w.routes.Get(context.Background(), gsc, deploy.RouteName("edge"))
		if err != nil {
			return "no route: " + err.Error()
		}
		var parts []string
		for _, b := range r.Spec.Backends {
			parts = append(parts, fmt.Sprintf("%s=%d(%s)", strings.TrimPrefix(b.URL, "http://"), b.W(), b.Version))
		}
		return r.Spec.Host + " " + strings.Join(parts, " ")
	}
	r1 := w.release(digest1)
	if d := w.deploy("edge", r1); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %q", d.State, d.Message)
	}
	if got, want := route(), "web.acme.test web.web-edge.svc.cluster.local=1(r1)"; got != want {
		t.Errorf("route after release 1: %q, want %q", got, want)
	}
	w.watch(func(s deploy.StepInfo) string {
		return fmt.Sprintf("%s | stable→%s canary→%s web %s canary %s", route(), w.selects(ns, "web-stable"), w.selects(ns, "web-canary"),
			w.dep(ns, "web"), w.dep(ns, "web-canary"))
	})
	r2 := w.release(digest2)
	if d := w.deploy("edge", r2); d.State != deploy.StateSucceeded {
		t.Fatalf("release 2: %s %q", d.State, d.Message)
	}
	want := []string{
		"r2 1/3 10%: web.acme.test web-stable.web-edge.svc.cluster.local=90(r1) web-canary.web-edge.svc.cluster.local=10(r2) | stable→web canary→web-canary web release 1: 2/2 canary release 2: 1/1",
		"r2 2/3 50%: web.acme.test web-stable.web-edge.svc.cluster.local=50(r1) web-canary.web-edge.svc.cluster.local=50(r2) | stable→web canary→web-canary web release 1: 2/2 canary release 2: 1/1",
		"r2 3/3 100%: web.acme.test web.web-edge.svc.cluster.local=1(r2) | stable→web canary→web-canary web release 2: 2/2 canary release 2: 0/0",
	}
	if diff := cmp.Diff(want, w.steps()); diff != "" {
		t.Errorf("canary steps through the gateway (-want +got):\n%s", diff)
	}

	// A failed first step takes the canary out of the route at once.
	w.watch(nil)
	w.failAt(3, 1, "5xx rate 12%")
	if d := w.deploy("edge", w.release(digest3)); d.State != deploy.StateRolledBack {
		t.Errorf("release 3: %s %q, want rolled back", d.State, d.Message)
	}
	if got, want := route(), "web.acme.test web.web-edge.svc.cluster.local=1(r2)"; got != want {
		t.Errorf("route after the rollback: %q, want %q", got, want)
	}
	w.settled(ns, map[string]string{"web": "release 2: 2/2", "web-canary": "release 3: 0/0"})
}

// TestKubernetes_CanaryPodsNotCreated: a quota leaves no room for the
// canary's pods; the step fails and the stable release keeps serving.
func TestKubernetes_CanaryPodsNotCreated(t *testing.T) {
	w := newWorld(t)
	const ns = "web-quota"
	w.env("prod", ns, deploy.TargetSpec{Replicas: 2, Strategy: deploy.Strategy{Kind: deploy.Canary}})
	if d := w.deploy("prod", w.release(digest1)); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %q", d.State, d.Message)
	}
	w.c.Must(t, http.StatusCreated, "POST", "/api/v1/namespaces/"+ns+"/resourcequotas", map[string]any{
		"metadata": map[string]any{"name": "pods"}, "spec": map[string]any{"hard": map[string]any{"pods": "2"}}})
	kubetest.Eventually(t, 30*time.Second, "quota counted", func() bool {
		var q struct {
			Status struct {
				Used map[string]string `json:"used"`
			} `json:"status"`
		}
		_ = json.Unmarshal(w.c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/"+ns+"/resourcequotas/pods", nil).Body, &q)
		return q.Status.Used["pods"] == "2"
	})
	w.watch(func(deploy.StepInfo) string { return "reached" })
	d := w.deploy("prod", w.release(digest2))
	if d.State != deploy.StateRolledBack || !strings.Contains(d.Message, "web-canary cannot be created") {
		t.Errorf("release 2: %s %q, want rolled back because the canary's pods cannot be created", d.State, d.Message)
	}
	if s := w.steps(); len(s) != 0 {
		t.Errorf("the hook was called for a canary without pods: %q", s)
	}
	if got := w.selects(ns, "web"); got != "web" {
		t.Errorf("Service web selects %s, want web", got)
	}
	w.settled(ns, map[string]string{"web": "release 1: 2/2", "web-canary": "release 2: 0/0"})

	// One namespace per environment: staging's objects go to its own.
	w.env("staging", ns+"-staging", deploy.TargetSpec{Replicas: 1})
	if d := w.deploy("staging", w.release(digest3)); d.State != deploy.StateSucceeded {
		t.Fatalf("staging: %s %q", d.State, d.Message)
	}
	for namespace, want := range map[string][]string{ns: {"web prod", "web-canary prod"}, ns + "-staging": {"web staging"}} {
		var l struct {
			Items []struct {
				Metadata struct {
					Name   string            `json:"name"`
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			} `json:"items"`
		}
		_ = json.Unmarshal(w.c.Must(t, http.StatusOK, "GET", "/apis/apps/v1/namespaces/"+namespace+"/deployments", nil).Body, &l)
		var got []string
		for _, it := range l.Items {
			got = append(got, it.Metadata.Name+" "+it.Metadata.Labels["rampart.dev/environment"])
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Deployments in namespace %s (-want +got):\n%s", namespace, diff)
		}
	}
}

// TestKubernetes_CanaryInterrupted: Rampart stops at the canary's first
// step; at the next start the stable release serves alone again and
// the deployment says so.
func TestKubernetes_CanaryInterrupted(t *testing.T) {
	w := newWorld(t)
	const ns = "web-restart"
	w.env("prod", ns, deploy.TargetSpec{Replicas: 2, Strategy: deploy.Strategy{Kind: deploy.Canary}})
	if d := w.deploy("prod", w.release(digest1)); d.State != deploy.StateSucceeded {
		t.Fatalf("release 1: %s %q", d.State, d.Message)
	}
	reached := make(chan struct{})
	w.mu.Lock()
	w.block = reached
	w.mu.Unlock()
	d, err := w.svc.Deploy(w.dev, w.sc, deploy.DeployRequest{Environment: "prod", Release: w.release(digest2).Number})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("the canary's first step was not reached")
	}
	if got := w.selects(ns, "web"); got != "*" {
		t.Errorf("at the first step Service web selects %s, want both Deployments", got)
	}
	w.stop()
	if d, _ = w.svc.Deployment(w.owner, w.sc, d.ID); d.State != deploy.StateRunning {
		t.Fatalf("after the stop the deployment is %s, want running", d.State)
	}
	w.start()
	if d = w.wait(d); d.State != deploy.StateRolledBack || !strings.Contains(d.Message, "interrupted") {
		t.Errorf("after the restart: %s %q, want rolled back (interrupted)", d.State, d.Message)
	}
	if got := w.selects(ns, "web"); got != "web" {
		t.Errorf("after the restart Service web selects %s, want web", got)
	}
	w.settled(ns, map[string]string{"web": "release 1: 2/2", "web-canary": "release 2: 0/0"})
	e, _ := w.svc.Environment(w.owner, w.sc, "prod")
	if e.Status != "running" || e.CurrentReleaseID != 1 {
		t.Errorf("environment %s with release %d, want running release 1", e.Status, e.CurrentReleaseID)
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		n, weight, canary, stable int
		gateway                   bool
	}{
		{4, 10, 1, 3, false},
		{4, 50, 2, 2, false},
		{4, 75, 3, 1, false},
		{1, 10, 1, 1, false},
		{10, 25, 3, 7, false},
		{4, 10, 1, 4, true},
		{4, 50, 2, 4, true},
		{1, 99, 1, 1, true},
	} {
		canary, stable := kubetarget.Split(c.n, c.weight, c.gateway)
		if canary != c.canary || stable != c.stable {
			t.Errorf("Split(%d, %d, %v) = %d, %d; want %d, %d", c.n, c.weight, c.gateway, canary, stable, c.canary, c.stable)
		}
	}
}
