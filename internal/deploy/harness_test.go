package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/deploy/noderuntime"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// harness is the deploy service on a real store, with the real gateway
// routing to instances of the real node runtime (runc), pulling from a
// real registry.
type harness struct {
	t      testing.TB
	db     *store.DB
	dir    string
	svc    *deploy.Service
	rt     *noderuntime.Runtime
	routes *gateway.Service
	gwURL  string
	reg    *deploytest.Registry
	sc     deploy.Scope
	hook   deploy.Hook
	gate   deploy.Gate
	stop   context.CancelFunc
	done   chan error
}

var testScope = deploy.Scope{OrgID: 1, ProjectID: 1, Org: "acme", Project: "web"}

func needRuntime(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (runc needs it to create containers)")
	}
}

// newHarness starts everything; db nil means a fresh SQLite store.
func newHarness(t testing.TB, db *store.DB, hook deploy.Hook, gate deploy.Gate) *harness {
	t.Helper()
	if db == nil {
		db = storetest.OpenSQLite(t)
		if err := db.Migrate(context.Background(), audit.Migrations, events.Migrations, gateway.Migrations, deploy.Migrations); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, db: db, dir: t.TempDir(), reg: deploytest.StartRegistry(t), sc: testScope, hook: hook, gate: gate}
	log := logging.New(testWriter{t}, "warn")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{Listener: ln, Logger: log, Registry: prometheus.NewRegistry(), WAF: waf.NewEngine(waf.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(context.Background())
	gdone := make(chan error, 1)
	go func() { gdone <- gw.Run(gctx, time.Second) }()
	t.Cleanup(func() { gcancel(); <-gdone })
	h.gwURL = "http://" + ln.Addr().String()
	if h.routes, err = gateway.NewService(gateway.ServiceDeps{DB: db, Audit: audit.New(db, nil), Gateway: gw, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if err := h.routes.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.start()
	t.Cleanup(func() {
		h.halt()
		if err := h.rt.StopAll(context.Background()); err != nil {
			t.Errorf("stop instances: %v", err)
		}
	})
	return h
}

// start opens the runtime and runs the service (again, after halt).
func (h *harness) start() {
	t := h.t
	t.Helper()
	needRuntime(t)
	log := logging.New(testWriter{t}, "warn")
	var err error
	if h.rt, err = noderuntime.Open(noderuntime.Options{Dir: h.dir, Logger: log, Insecure: true,
		BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.FromKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	nt := &deploy.NodeTarget{Runtime: h.rt, Router: h.routes, Logger: log}
	d := deploy.Deps{DB: h.db, Audit: audit.New(h.db, nil), Sealer: keys, Logger: log, Runtime: h.rt, Hook: h.hook,
		Targets: map[string]deploy.Target{deploy.KindNode: nt}, Poll: 50 * time.Millisecond, Secrets: fixedSecrets{"db/password#value": "s3cret-value"},
		Events: events.New(h.db, log, nil)}
	if h.gate != nil {
		d.Gate = h.gate
	}
	if h.svc, err = deploy.New(d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.svc.Run(ctx) }()
	select {
	case <-h.svc.Started():
	case <-time.After(60 * time.Second):
		t.Fatal("deploy service did not start")
	}
}

// halt stops the service and closes the runtime as a stopping Rampart
// does: the containers keep running.
func (h *harness) halt() {
	if h.stop == nil {
		return
	}
	h.stop()
	<-h.done
	h.stop = nil
	h.rt.Close()
}

// fixedSecrets resolves references from a map: the vault's contract
// (package vault is wired in by the app).
type fixedSecrets map[string]string

func (f fixedSecrets) Resolve(ctx context.Context, sc deploy.Scope, refs []deploy.SecretRef) (map[string]deploy.Value, error) {
	out := map[string]deploy.Value{}
	for _, r := range refs {
		v, ok := f[r.Ref]
		if !ok {
			return nil, io.ErrUnexpectedEOF
		}
		out[r.Env] = deploy.Value(v)
	}
	return out, nil
}

func as(user string, id int64) context.Context {
	return reqinfo.WithActor(context.Background(), id, user)
}

func (h *harness) env(name string, spec deploy.EnvironmentSpec) deploy.Environment {
	h.t.Helper()
	e, _, err := h.svc.PutEnvironment(as("owner", 1), h.sc, name, spec)
	if err != nil {
		h.t.Fatalf("put environment %s: %v", name, err)
	}
	return e
}

func (h *harness) release(version string, extraEnv ...string) deploy.Release {
	h.t.Helper()
	image, digest := h.reg.Push(h.t, "acme/web", deploytest.Image(h.t, version, extraEnv...))
	r, err := h.svc.CreateRelease(as("dev", 2), h.sc, deploy.Release{Image: image, Digest: digest, SourceBranch: "main",
		SourceCommit: strings.Repeat("ab", 20), Reason: "ship " + version,
		SecretRefs: []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "db/password#value"}}})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) deploy(env string, rel deploy.Release) deploy.Deployment {
	h.t.Helper()
	d, err := h.svc.Deploy(as("dev", 2), h.sc, deploy.DeployRequest{Environment: env, Release: rel.Number, Reason: "test"})
	if err != nil {
		h.t.Fatalf("deploy release #%d to %s: %v", rel.Number, env, err)
	}
	return d
}

// wait polls a deployment until it ends.
func (h *harness) wait(id int64) deploy.Deployment {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := h.svc.Deployment(context.Background(), h.sc, id)
		if err != nil {
			h.t.Fatal(err)
		}
		switch d.State {
		case deploy.StateSucceeded, deploy.StateRolledBack, deploy.StateFailed, deploy.StateRejected, deploy.StateExpired, deploy.StateDenied:
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("deployment %d still %s (step %q) after 90s", id, d.State, d.Step)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get asks the gateway for host's path and returns the body's first
// word (the application's version).
func (h *harness) get(host, path string) string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.gwURL+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s%s through the gateway: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.Status
	}
	return strings.Fields(string(b) + " -")[0]
}

// versions counts the versions answering n requests through the gateway.
func (h *harness) versions(host string, n int) map[string]int {
	out := map[string]int{}
	for range n {
		out[h.get(host, "/")]++
	}
	return out
}

// instances returns the release ids of an environment's instances.
func (h *harness) instances(e deploy.Environment) []int64 {
	h.t.Helper()
	ins, err := h.rt.Instances(context.Background(), deploy.GroupOf(e.ID))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []int64
	for _, in := range ins {
		out = append(out, in.ReleaseID)
	}
	return out
}

// finished returns the deploy.deployment.finished events published.
func (h *harness) finished() []deploy.FinishedEvent {
	h.t.Helper()
	rows, err := h.db.Query(context.Background(), "SELECT payload FROM events WHERE type = ? ORDER BY seq", deploy.EventFinished)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []deploy.FinishedEvent
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			h.t.Fatal(err)
		}
		var e deploy.FinishedEvent
		if err := json.Unmarshal([]byte(p), &e); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
