package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// A Wednesday, 12:00 UTC.
var wednesdayNoon = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// gateFunc is a policy gate answering from a function (package policy's
// Decide is wired in by the app; these tests check what deploy does with
// its answers).
type gateFunc func(gate string, in deploy.GateInput) (deploy.GateDecision, error)

func (f gateFunc) Decide(ctx context.Context, gate string, in deploy.GateInput) (deploy.GateDecision, error) {
	return f(gate, in)
}

type svcEnv struct {
	svc   *deploy.Service
	db    *store.DB
	log   *audit.Log
	clock *fakeclock.Clock
}

// newService returns the service with targets that have no runtime:
// deployments are recorded, approved and queued; one that runs fails.
func newService(t *testing.T, db *store.DB, gate deploy.Gate) svcEnv {
	t.Helper()
	keys, err := keyring.FromKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New(wednesdayNoon)
	al := audit.New(db, clock.Now)
	d := deploy.Deps{DB: db, Audit: al, Sealer: keys, Logger: logging.New(testWriter{t}, "warn"), Now: clock.Now,
		Targets: map[string]deploy.Target{deploy.KindNode: &deploy.NodeTarget{}, deploy.KindKubernetes: &deploy.NodeTarget{}}, Poll: 10 * time.Millisecond}
	if gate != nil {
		d.Gate = gate
	}
	svc, err := deploy.New(d)
	if err != nil {
		t.Fatal(err)
	}
	return svcEnv{svc: svc, db: db, log: al, clock: clock}
}

func eachStore(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	storetest.Each(t, fn, audit.Migrations, deploy.Migrations)
}

func kindOf(err error) apperr.Kind { return apperr.KindOf(err) }

func TestService_EnvironmentValidation(t *testing.T) {
	eachStore(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db, nil)
		ctx := as("owner", 1)
		for _, tt := range []struct {
			name, env, field string
			spec             deploy.EnvironmentSpec
		}{
			{"bad name", "Prod!", "name", deploy.EnvironmentSpec{}},
			{"too many approvals", "prod", "protection.required_approvals", deploy.EnvironmentSpec{Protection: deploy.Protection{RequiredApprovals: 11}}},
			{"fewer approvers than approvals", "prod", "protection.approvers", deploy.EnvironmentSpec{Protection: deploy.Protection{RequiredApprovals: 2, Approvers: []string{"alice"}}}},
			{"window ends before it starts", "prod", "protection.windows", deploy.EnvironmentSpec{Protection: deploy.Protection{Windows: []deploy.Window{{Start: "17:00", End: "09:00"}}}}},
			{"unknown day", "prod", "protection.windows", deploy.EnvironmentSpec{Protection: deploy.Protection{Windows: []deploy.Window{{Days: []string{"funday"}, Start: "09:00", End: "17:00"}}}}},
			{"bad branch pattern", "prod", "protection.allowed_branches", deploy.EnvironmentSpec{Protection: deploy.Protection{AllowedBranches: []string{"release/["}}}},
			{"unknown target", "prod", "target.kind", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: "mainframe"}}},
			{"too many replicas", "prod", "target.replicas", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Replicas: 21}}},
			{"canary not ending at 100", "prod", "target.strategy.steps", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Strategy: deploy.Strategy{Kind: deploy.Canary, Steps: []int{10, 50}}}}},
			{"canary steps falling", "prod", "target.strategy.steps", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Strategy: deploy.Strategy{Kind: deploy.Canary, Steps: []int{50, 10, 100}}}}},
			{"steps on rolling", "prod", "target.strategy.steps", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Strategy: deploy.Strategy{Kind: deploy.Rolling, Steps: []int{100}}}}},
			{"unknown strategy", "prod", "target.strategy.kind", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Strategy: deploy.Strategy{Kind: "yolo"}}}},
			{"relative health path", "prod", "target.health_path", deploy.EnvironmentSpec{Target: deploy.TargetSpec{HealthPath: "healthz"}}},
			{"tiny memory", "prod", "target.memory_bytes", deploy.EnvironmentSpec{Target: deploy.TargetSpec{MemoryBytes: 1024}}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := s.svc.PutEnvironment(ctx, testScope, tt.env, tt.spec)
				if kindOf(err) != apperr.Invalid || apperr.FieldOf(err) != tt.field {
					t.Fatalf("err = %v (field %q), want invalid %s", err, apperr.FieldOf(err), tt.field)
				}
			})
		}
		if es, _ := s.svc.Environments(ctx, testScope); len(es) != 0 {
			t.Errorf("refused environments were stored: %v", es)
		}
		e, created, err := s.svc.PutEnvironment(ctx, testScope, "prod", deploy.EnvironmentSpec{})
		if err != nil || !created {
			t.Fatalf("create with defaults: %v", err)
		}
		want := deploy.TargetSpec{Kind: deploy.KindNode, Replicas: 1, Port: 8080, HealthPath: "/healthz", HealthTimeout: deploy.Duration(30 * time.Second),
			Strategy: deploy.Strategy{Kind: deploy.Rolling}, MemoryBytes: 256 << 20, CPUMillis: 1000, Pids: 256}
		if diff := cmp.Diff(want, e.Target); diff != "" {
			t.Errorf("defaults (-want +got):\n%s", diff)
		}
		if e.Protection.ApprovalTimeout.D() != 24*time.Hour {
			t.Errorf("approval timeout default = %s", e.Protection.ApprovalTimeout.D())
		}
		entries, _ := s.log.List(ctx, audit.Filter{Action: "deploy.environment"})
		if len(entries) != 1 || entries[0].Action != "deploy.environment.create" || entries[0].ActorName != "owner" {
			t.Errorf("audit = %+v, want one deploy.environment.create by owner", entries)
		}
	})
}

func TestService_Releases(t *testing.T) {
	eachStore(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db, nil)
		ctx := as("dev", 2)
		good := deploy.Release{Image: "registry.example.com/acme/web", Digest: digest1}
		for _, tt := range []struct {
			name, field string
			edit        func(r *deploy.Release)
		}{
			{"tag instead of digest", "digest", func(r *deploy.Release) { r.Digest = "latest" }},
			{"image with a tag", "image", func(r *deploy.Release) { r.Image += ":v1" }},
			{"image with a scheme", "image", func(r *deploy.Release) { r.Image = "https://registry.example.com/acme/web" }},
			{"bad variable name", "config.env", func(r *deploy.Release) { r.Config.Env = map[string]string{"1X": "y"} }},
			{"PORT is the runtime's", "config.env", func(r *deploy.Release) { r.Config.Env = map[string]string{"PORT": "1"} }},
			{"NUL in a value", "config.env", func(r *deploy.Release) { r.Config.Env = map[string]string{"X": "a\x00b"} }},
			{"secret ref and variable clash", "secret_refs", func(r *deploy.Release) {
				r.Config.Env = map[string]string{"DB": "x"}
				r.SecretRefs = []deploy.SecretRef{{Env: "DB", Ref: "db/password"}}
			}},
			{"bad secret ref", "secret_refs", func(r *deploy.Release) { r.SecretRefs = []deploy.SecretRef{{Env: "DB", Ref: "../../etc shadow"}} }},
			{"bad commit", "source_commit", func(r *deploy.Release) { r.SourceCommit = "HEAD~1" }},
			{"bad branch", "source_branch", func(r *deploy.Release) { r.SourceBranch = "a b" }},
			{"long reason", "reason", func(r *deploy.Release) { r.Reason = strings.Repeat("x", 1001) }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := good
				tt.edit(&r)
				if _, err := s.svc.CreateRelease(ctx, testScope, r); kindOf(err) != apperr.Invalid || apperr.FieldOf(err) != tt.field {
					t.Fatalf("err = %v (field %q), want invalid %s", err, apperr.FieldOf(err), tt.field)
				}
			})
		}
		if rs, _ := s.svc.Releases(ctx, testScope, 10); len(rs) != 0 {
			t.Fatalf("refused releases were stored: %v", rs)
		}
		r1, err := s.svc.CreateRelease(ctx, testScope, deploy.Release{Image: good.Image, Digest: digest1, SourceCommit: "abcdef1",
			SourceBranch: "main", PullRequest: 12, WorkItems: []string{"WEB-1"}, Config: deploy.ReleaseConfig{Env: map[string]string{"MODE": "a"}},
			SecretRefs: []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "db/password#value"}}, Reason: "first"})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := s.svc.CreateRelease(ctx, testScope, deploy.Release{Image: good.Image, Digest: digest2, SourceCommit: "abcdef2",
			SourceBranch: "main", PullRequest: 13, WorkItems: []string{"WEB-1", "WEB-2"}, Config: deploy.ReleaseConfig{Env: map[string]string{"MODE": "b", "NEW": "1"}},
			SecretRefs: []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "db/password2#value"}}})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Number != 1 || r2.Number != 2 || r1.CreatedBy != "dev" {
			t.Errorf("numbers %d, %d by %q, want 1, 2 by dev", r1.Number, r2.Number, r1.CreatedBy)
		}
		want := []deploy.Change{
			{Field: "digest", From: digest1, To: digest2},
			{Field: "source_commit", From: "abcdef1", To: "abcdef2"},
			{Field: "pull_request", From: "#12", To: "#13"},
			{Field: "work_items", From: "WEB-1", To: "WEB-1,WEB-2"},
			{Field: "env.MODE", From: "a", To: "b"},
			{Field: "env.NEW", From: "", To: "1"},
			{Field: "secret.DB_PASSWORD", From: "db/password#value", To: "db/password2#value"},
		}
		if diff := cmp.Diff(want, deploy.Diff(r1, r2)); diff != "" {
			t.Errorf("diff (-want +got):\n%s", diff)
		}
		got, err := s.svc.Release(ctx, testScope, 1)
		if err != nil || got.Digest != digest1 || got.SecretRefs[0].Ref != "db/password#value" {
			t.Errorf("release 1 read back as %+v (%v)", got, err)
		}
	})
}

func TestService_ProtectionRules(t *testing.T) {
	eachStore(t, func(t *testing.T, db *store.DB) {
		var asked []string
		gate := gateFunc(func(g string, in deploy.GateInput) (deploy.GateDecision, error) {
			asked = append(asked, g)
			rel := in.Document["release"].(map[string]any)
			switch {
			case g == "vulnerabilities" && rel["digest"] == digest2:
				return deploy.GateDecision{ID: "d-2", Allow: false, Reasons: []string{"CVE-2026-0001 is critical"}}, nil
			case g == "broken":
				return deploy.GateDecision{}, errors.New("policy bundle failed to load")
			}
			return deploy.GateDecision{ID: "d-1", Allow: true}, nil
		})
		s := newService(t, db, gate)
		owner, dev := as("owner", 1), as("dev", 2)
		mk := func(name string, p deploy.Protection) {
			if _, _, err := s.svc.PutEnvironment(owner, testScope, name, deploy.EnvironmentSpec{Protection: p}); err != nil {
				t.Fatal(err)
			}
		}
		mk("prod", deploy.Protection{AllowedBranches: []string{"main", "release/*"}, RequiredGates: []string{"vulnerabilities"}})
		mk("weekend", deploy.Protection{Windows: []deploy.Window{{Days: []string{"sat", "sun"}, Start: "00:00", End: "24:00"}}})
		mk("fragile", deploy.Protection{RequiredGates: []string{"broken"}})
		rel := func(branch, digest string) deploy.Release {
			r, err := s.svc.CreateRelease(dev, testScope, deploy.Release{Image: "registry.example.com/acme/web", Digest: digest, SourceBranch: branch})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		feature, clean, vulnerable, hotfix := rel("feature/x", digest1), rel("main", digest1), rel("main", digest2), rel("release/2.1", digest1)

		_, err := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: feature.Number})
		if kindOf(err) != apperr.Forbidden || !strings.Contains(apperr.Message(err), `branch "feature/x"`) {
			t.Errorf("feature branch to prod: %v, want forbidden naming the branch", err)
		}
		_, err = s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "weekend", Release: clean.Number})
		if kindOf(err) != apperr.Forbidden || !strings.Contains(apperr.Message(err), "sat,sun 00:00-24:00") {
			t.Errorf("outside the window: %v, want forbidden naming the window", err)
		}
		if ds, _ := s.svc.Deployments(dev, testScope, "", 10); len(ds) != 0 {
			t.Errorf("refused requests left deployments: %+v", ds)
		}

		d, err := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: vulnerable.Number})
		if kindOf(err) != apperr.Forbidden || !strings.Contains(apperr.Message(err), "CVE-2026-0001") {
			t.Errorf("vulnerable release: %v, want forbidden with the gate's reason", err)
		}
		if d.State != deploy.StateDenied || len(d.Decisions) != 2 || d.Decisions[1].Allow || d.Decisions[1].ID != "d-2" {
			t.Errorf("denied deployment recorded as %+v", d)
		}
		if diff := cmp.Diff([]string{"pre-deploy", "vulnerabilities"}, asked); diff != "" {
			t.Errorf("gates asked (-want +got):\n%s", diff)
		}
		_, err = s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "fragile", Release: clean.Number})
		if kindOf(err) != apperr.Forbidden || !strings.Contains(apperr.Message(err), "could not decide") {
			t.Errorf("a gate that fails must deny: %v", err)
		}
		for _, r := range []deploy.Release{clean, hotfix} {
			d, err := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: r.Number})
			if err != nil || d.State != deploy.StateQueued {
				t.Errorf("release from %s: %v %+v, want queued", r.SourceBranch, err, d)
			}
		}
		entries, _ := s.log.List(owner, audit.Filter{Action: "deploy.deployment.create", Outcome: audit.Denied})
		if len(entries) != 4 {
			t.Errorf("%d denied deployment requests audited, want 4 (branch, window, gate, broken gate)", len(entries))
		}
	})
}

func TestService_Approvals(t *testing.T) {
	eachStore(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db, nil)
		owner, dev := as("owner", 1), as("dev", 2)
		alice, bob, carol, mallory := as("alice", 3), as("bob", 4), as("carol", 5), as("mallory", 6)
		if _, _, err := s.svc.PutEnvironment(owner, testScope, "prod", deploy.EnvironmentSpec{Protection: deploy.Protection{
			RequiredApprovals: 2, Approvers: []string{"alice", "bob", "carol", "dev"}, ApprovalTimeout: deploy.Duration(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		r, err := s.svc.CreateRelease(dev, testScope, deploy.Release{Image: "registry.example.com/acme/web", Digest: digest1})
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: r.Number, Reason: "launch"})
		if err != nil || d.State != deploy.StateAwaitingApproval {
			t.Fatalf("deploy: %v %+v, want awaiting approval", err, d)
		}
		yes := deploy.ApproveRequest{Approve: true, Comment: "looks good"}
		for _, tt := range []struct {
			name string
			ctx  context.Context
			kind apperr.Kind
		}{
			{"the requester", dev, apperr.Forbidden},
			{"not an approver", mallory, apperr.Forbidden},
		} {
			if _, err := s.svc.Approve(tt.ctx, testScope, d.ID, yes); kindOf(err) != tt.kind {
				t.Errorf("approval by %s: %v, want %s", tt.name, err, tt.kind)
			}
		}
		got, err := s.svc.Approve(alice, testScope, d.ID, yes)
		if err != nil || got.State != deploy.StateAwaitingApproval || got.Message != "1 of 2 approvals" {
			t.Fatalf("first approval: %v %s %q", err, got.State, got.Message)
		}
		if _, err := s.svc.Approve(alice, testScope, d.ID, yes); kindOf(err) != apperr.Conflict {
			t.Errorf("second answer by alice: %v, want conflict", err)
		}
		got, err = s.svc.Approve(bob, testScope, d.ID, yes)
		if err != nil || got.State != deploy.StateQueued || len(got.Approvals) != 2 {
			t.Fatalf("second approval: %v %+v, want queued with two approvals", err, got)
		}
		if _, err := s.svc.Approve(carol, testScope, d.ID, yes); kindOf(err) != apperr.Conflict {
			t.Errorf("approving a queued deployment: %v, want conflict", err)
		}

		d2, _ := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: r.Number})
		got, err = s.svc.Approve(carol, testScope, d2.ID, deploy.ApproveRequest{Approve: false, Comment: "not during the sale"})
		if err != nil || got.State != deploy.StateRejected || got.FinishedAt == nil {
			t.Errorf("rejection: %v %+v", err, got)
		}
		for action, n := range map[string]int{"deploy.deployment.approve": 2, "deploy.deployment.reject": 1} {
			entries, _ := s.log.List(owner, audit.Filter{Action: action})
			if len(entries) != n {
				t.Errorf("%d %s entries, want %d", len(entries), action, n)
			}
		}

		// An approval that never comes: the deployment expires and
		// nothing is deployed.
		d3, _ := s.svc.Deploy(dev, testScope, deploy.DeployRequest{Environment: "prod", Release: r.Number})
		s.clock.Advance(2 * time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.svc.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ = s.svc.Deployment(owner, testScope, d3.ID)
			if got.State == deploy.StateExpired || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if got.State != deploy.StateExpired || !strings.Contains(got.Message, "keeps its release") {
			t.Errorf("unanswered deployment: %s %q, want expired", got.State, got.Message)
		}
		if got, _ := s.svc.Deployment(owner, testScope, d.ID); got.State == deploy.StateExpired {
			t.Errorf("the approved deployment expired; expiry must touch only unanswered ones")
		}
	})
}

func TestService_Connections(t *testing.T) {
	eachStore(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db, nil)
		owner := as("owner", 1)
		if _, _, err := s.svc.PutEnvironment(owner, testScope, "aks", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: deploy.KindKubernetes}}); err != nil {
			t.Fatal(err)
		}
		good := deploy.ConnectionSpec{Kind: deploy.KindKubernetes, Server: "https://127.0.0.1:6443", Namespace: "web-prod", Token: "eyJhbGciOiJSUzI1NiJ9.secret-token-value"}
		for _, tt := range []struct {
			name, field string
			edit        func(c *deploy.ConnectionSpec)
		}{
			{"plain http", "server", func(c *deploy.ConnectionSpec) { c.Server = "http://127.0.0.1:6443" }},
			{"credentials in the URL", "server", func(c *deploy.ConnectionSpec) { c.Server = "https://u:p@127.0.0.1:6443" }},
			{"no token", "token", func(c *deploy.ConnectionSpec) { c.Token = "" }},
			{"token with a newline", "token", func(c *deploy.ConnectionSpec) { c.Token = "a\nb" }},
			{"bad namespace", "namespace", func(c *deploy.ConnectionSpec) { c.Namespace = "Kube_System" }},
			{"not PEM", "ca_cert", func(c *deploy.ConnectionSpec) { c.CACert = "hello" }},
			{"node kind", "kind", func(c *deploy.ConnectionSpec) { c.Kind = deploy.KindNode }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c := good
				tt.edit(&c)
				_, err := s.svc.PutConnection(owner, testScope, "aks", c)
				if kindOf(err) != apperr.Invalid || apperr.FieldOf(err) != tt.field {
					t.Fatalf("err = %v (field %q), want invalid %s", err, apperr.FieldOf(err), tt.field)
				}
				if strings.Contains(err.Error(), "secret-token-value") {
					t.Errorf("the error shows the token: %v", err)
				}
			})
		}
		c, err := s.svc.PutConnection(owner, testScope, "aks", good)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(c)
		if !c.HasCredential || strings.Contains(string(js), "secret-token") {
			t.Errorf("connection JSON %s: want has_credential and no token", js)
		}
		var raw []byte
		if err := db.QueryRow(owner, "SELECT credential FROM deploy_connections").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "secret-token") {
			t.Error("the token is stored in the clear")
		}
		entries, _ := s.log.List(owner, audit.Filter{Action: "deploy.connection"})
		for _, e := range entries {
			if b, _ := json.Marshal(e.Details); strings.Contains(string(b), "secret-token") {
				t.Errorf("audit details show the token: %s", b)
			}
		}
		if len(entries) != 1 {
			t.Errorf("%d connection audit entries, want 1", len(entries))
		}
		if _, _, err := s.svc.PutEnvironment(owner, testScope, "aks2", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: deploy.KindKubernetes}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.svc.PutConnection(owner, testScope, "aks2", good); kindOf(err) != apperr.Conflict {
			t.Errorf("a second environment in the same namespace: %v, want conflict", err)
		}
	})
}

func openFuzzStore(f *testing.F) *store.DB {
	db := storetest.OpenSQLite(f)
	if err := db.Migrate(context.Background(), audit.Migrations, deploy.Migrations); err != nil {
		f.Fatal(err)
	}
	return db
}

func newFuzzService(f *testing.F, db *store.DB) *deploy.Service {
	keys, _ := keyring.FromKey(make([]byte, 32))
	svc, err := deploy.New(deploy.Deps{DB: db, Audit: audit.New(db, nil), Sealer: keys, Logger: logging.New(io.Discard, "error"),
		Targets: map[string]deploy.Target{deploy.KindNode: &deploy.NodeTarget{}, deploy.KindKubernetes: &deploy.NodeTarget{}}})
	if err != nil {
		f.Fatal(err)
	}
	return svc
}
