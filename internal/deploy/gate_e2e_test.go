package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// withPreDeployAudited runs the pre-deploy policies in audit mode: for
// tests about the board and approvals, whose images (on a closed port)
// could never show the evidence the policies ask for.
func withPreDeployAudited(t *testing.T) apptest.Option {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("modes:\n  - policy: RMP-DEP-*\n    mode: audit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return apptest.WithConfig(func(c *config.Config) { c.Policy.Dir = dir })
}

// TestPreDeployGate_RegistryEvidence deploys one image of Rampart's own
// registry as its evidence grows: unsigned and without provenance it is
// denied (RMP-DEP-001/002, in the decision log, nothing runs); an org
// exception lets it into staging; signed, with an SBOM and a signed
// provenance attestation from a protected branch it reaches production,
// where the node runtime pulls it with a pull-only token minted for the
// deployer.
func TestPreDeployGate_RegistryEvidence(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testPreDeployGate(t, apptest.WithStore(b.URL(t))) })
	}
}

func testPreDeployGate(t *testing.T, store apptest.Option) {
	a := apptest.Start(t, store)
	if a.NodeRuntime != nil {
		rt := a.NodeRuntime
		t.Cleanup(func() { a.Stop(t); _ = rt.StopAll(context.Background()) })
	}
	ctx := t.Context()
	admin := a.Client(t, a.AdminToken(t))
	mariaToken := a.CreateUser(t, admin, "maria")
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", map[string]string{"name": "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", map[string]string{"name": "web"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/maria", map[string]string{"role": "maintainer"})
	maria := a.Client(t, mariaToken)
	maria.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/repos", map[string]string{"name": "web"})

	host := strings.TrimPrefix(a.URL, "http://")
	push := image.PushOptions{Auth: &authn.Basic{Username: "maria", Password: mariaToken}, Insecure: true}
	img := deploytest.Image(t, "v1")
	pushed, err := image.Push(ctx, img, host+"/acme/web:v1", nil, push)
	if err != nil {
		t.Fatal(err)
	}
	digest := pushed.Image.DigestStr()
	commit := strings.Repeat("c0", 20)

	p := httpapi.Prefix + "/orgs/acme/projects/web"
	for _, env := range []string{"staging", "production"} {
		admin.Must(http.StatusOK, "PUT", p+"/environments/"+env, deploy.EnvironmentSpec{})
	}
	maria.Must(http.StatusCreated, "POST", p+"/releases", map[string]any{"image": host + "/acme/web", "digest": digest,
		"source_commit": commit, "source_branch": "main", "repository": "acme/web"})

	// deployTo asks for a deployment of release #1 and returns it with
	// the answer's status.
	deployTo := func(t *testing.T, env string) (int, string) {
		t.Helper()
		r := maria.Do("POST", p+"/deployments", deploy.DeployRequest{Environment: env, Release: 1, Reason: "test"})
		return r.Status, string(r.Body)
	}
	latest := func(t *testing.T) deploy.Deployment {
		t.Helper()
		var ds []deploy.Deployment
		maria.Must(http.StatusOK, "GET", p+"/deployments", nil).Decode(t, &ds)
		if len(ds) == 0 {
			t.Fatal("no deployment recorded")
		}
		slices.SortFunc(ds, func(x, y deploy.Deployment) int { return int(y.ID - x.ID) })
		return ds[0]
	}
	decision := func(t *testing.T, d deploy.Deployment) policy.Decision {
		t.Helper()
		if len(d.Decisions) == 0 || d.Decisions[0].Gate != deploy.GatePreDeploy || d.Decisions[0].ID == "" {
			t.Fatalf("deployment %d records no pre-deploy decision: %+v", d.ID, d.Decisions)
		}
		var pd policy.Decision
		admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/policy/decisions/"+d.Decisions[0].ID, nil).Decode(t, &pd)
		if pd.Gate != policy.GatePreDeploy || pd.Caller != d.CreatedBy || pd.Environment != d.Environment || pd.Subject != "release:acme/web#1" {
			t.Errorf("decision log entry %s: gate %q caller %q environment %q subject %q", pd.ID, pd.Gate, pd.Caller, pd.Environment, pd.Subject)
		}
		return pd
	}
	policies := func(vs []policy.Violation) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Policy)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	environment := func(t *testing.T, env string) deploy.Environment {
		t.Helper()
		var e deploy.Environment
		maria.Must(http.StatusOK, "GET", p+"/environments/"+env, nil).Decode(t, &e)
		return e
	}

	// (a) Unsigned, no provenance: denied, recorded, nothing runs.
	status, body := deployTo(t, "production")
	if status != http.StatusForbidden || !strings.Contains(body, "RMP-DEP-001") || !strings.Contains(body, "RMP-DEP-002") {
		t.Fatalf("unsigned image without provenance: %d %s", status, body)
	}
	d := latest(t)
	if d.State != deploy.StateDenied || d.Decisions[0].Allow {
		t.Errorf("deployment %d: state %s, decisions %+v", d.ID, d.State, d.Decisions)
	}
	if got := policies(decision(t, d).Deny); !slices.Contains(got, "RMP-DEP-001") || !slices.Contains(got, "RMP-DEP-002") {
		t.Errorf("the decision log denies for %v, want RMP-DEP-001 and RMP-DEP-002 among them", got)
	}
	if e := environment(t, "production"); e.CurrentReleaseID != 0 {
		t.Errorf("production runs release id %d after a denied deployment", e.CurrentReleaseID)
	}
	if a.NodeRuntime != nil {
		var ins []deploy.InstanceJSON
		maria.Must(http.StatusOK, "GET", p+"/environments/production/instances", nil).Decode(t, &ins)
		if len(ins) != 0 {
			t.Errorf("production has instances after a denied deployment: %+v", ins)
		}
	}

	// The registry scans the image (and attaches an SBOM of its own);
	// then only the signature and the provenance are missing.
	waitScanned(t, maria, digest)
	status, body = deployTo(t, "production")
	if got := policies(decision(t, latest(t)).Deny); status != http.StatusForbidden || !slices.Equal(got, []string{"RMP-DEP-001", "RMP-DEP-002"}) {
		t.Fatalf("scanned, unsigned image without provenance: %d, denied for %v (%s)", status, got, body)
	}

	// (c) An org exception for staging lets the same release through
	// there, and the decision log says what it set aside.
	expires := time.Now().AddDate(0, 0, 30).Format(time.DateOnly)
	for _, id := range []string{"RMP-DEP-001", "RMP-DEP-002"} {
		admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/exceptions", policy.ExceptionRequest{ID: id, Environment: "staging",
			Reason: "staging may run unsigned builds", Owner: "maria", Expires: expires})
	}
	if status, body := deployTo(t, "staging"); status != http.StatusCreated {
		t.Fatalf("deploy to staging with exceptions: %d %s", status, body)
	}
	d = latest(t)
	if !d.Decisions[0].Allow || !strings.Contains(strings.Join(d.Decisions[0].Reasons, "\n"), "set aside by an exception: RMP-DEP-001") {
		t.Errorf("staging deployment decisions %+v", d.Decisions)
	}
	if pd := decision(t, d); !pd.Allow || !slices.Equal(policies(pd.Excepted), []string{"RMP-DEP-001", "RMP-DEP-002"}) {
		t.Errorf("decision log: allow %v, excepted %v", pd.Allow, policies(pd.Excepted))
	}
	waitDeployed(t, a, maria, p, d.ID)
	// The exceptions are scoped to staging: production still refuses.
	if status, _ := deployTo(t, "production"); status != http.StatusForbidden {
		t.Fatalf("production with staging exceptions: %d", status)
	}

	// (b) Evidence arrives step by step; each missing piece is named.
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	st := image.Statement{Type: image.StatementType, PredicateType: image.PredicateSLSA,
		Subject: []image.StatementTarget{{Name: "acme/web", Digest: map[string]string{desc.Digest.Algorithm: desc.Digest.Hex}}}}
	st.Predicate.BuildDefinition.BuildType = image.BuildType
	st.Predicate.BuildDefinition.ExternalParameters.Source = image.Source{Repository: a.URL + "/acme/web.git", Commit: commit, Ref: "refs/heads/main"}
	st.Predicate.RunDetails.Builder.ID = image.DefaultBuilderID
	prov, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	sbom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[]}`)
	withEvidence, err := image.Push(ctx, img, host+"/acme/web:v1", &image.Evidence{Subject: *desc, SBOM: sbom, Provenance: prov}, push)
	if err != nil {
		t.Fatal(err)
	}
	if len(withEvidence.Referrers) != 2 {
		t.Fatalf("pushed referrers %v", withEvidence.Referrers)
	}
	attestation := withEvidence.Referrers[1].DigestStr()
	sign := func(t *testing.T, dg string) {
		t.Helper()
		maria.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/registry/repositories/web/signatures", map[string]string{"digest": dg})
	}
	for _, step := range []struct {
		name string
		do   func(t *testing.T)
		want string // in the denial; "" allows
	}{
		{"image signed, attestation not", func(t *testing.T) { sign(t, digest) }, "has a provenance attestation whose signature was not verified"},
		{"attestation signed, main unprotected", func(t *testing.T) { sign(t, attestation) }, "was built from refs/heads/main of acme/web, which is not a protected branch"},
		{"main protected", func(t *testing.T) {
			maria.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/repos/web/protections", map[string]any{"pattern": "main"})
		}, ""},
	} {
		step.do(t)
		status, body := deployTo(t, "production")
		d := latest(t)
		pd := decision(t, d)
		if step.want != "" {
			if status != http.StatusForbidden || !slices.Equal(policies(pd.Deny), []string{"RMP-DEP-002"}) || !strings.Contains(body, step.want) {
				t.Fatalf("%s: %d, denied for %v: %s", step.name, status, policies(pd.Deny), body)
			}
			continue
		}
		if status != http.StatusCreated || !pd.Allow || len(d.Decisions[0].Reasons) != 0 {
			t.Fatalf("%s: %d, decision %+v: %s", step.name, status, d.Decisions, body)
		}
		if a.NodeRuntime == nil {
			t.Log("no node runtime (runc and root): the release is allowed but not run")
			return
		}
		waitDeployed(t, a, maria, p, d.ID)
		if e := environment(t, "production"); e.CurrentReleaseID != d.ReleaseID {
			t.Errorf("production runs release id %d, want %d", e.CurrentReleaseID, d.ReleaseID)
		}
		var ins []deploy.InstanceJSON
		maria.Must(http.StatusOK, "GET", p+"/environments/production/instances", nil).Decode(t, &ins)
		if len(ins) != 1 || ins[0].State != "running" {
			t.Fatalf("production instances %+v", ins)
		}
		resp, err := http.Get("http://" + ins[0].Addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(answer), "v1 ") {
			t.Errorf("the production instance answers %q", answer)
		}
		// The runtime holds the image since the staging rollout, which
		// pulled it with a token minted for maria (checked below).
	}
	mints := 0
	for _, e := range a.AuditSince(t, 0) {
		if e.Action != "registry.token.mint" {
			continue
		}
		mints++
		if e.ActorName != "maria" || e.TargetName != "acme/web" || !strings.Contains(string(mustJSON(e.Details)), `"actions":["pull"]`) {
			t.Errorf("token mint %+v: want a pull-only token for acme/web minted for maria", e)
		}
	}
	if a.NodeRuntime != nil && mints == 0 {
		t.Error("the node runtime pulled without a minted registry token")
	}
}

// waitScanned waits until the registry has scanned acme/web@digest.
func waitScanned(t *testing.T, c *apptest.Client, digest string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var v struct {
			ScanStatus string `json:"scan_status"`
		}
		c.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/registry/repositories/web/manifests/"+digest+"/verification", nil).Decode(t, &v)
		if v.ScanStatus != "pending" {
			if v.ScanStatus != "passed" {
				t.Fatalf("scan status %q", v.ScanStatus)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the registry did not scan the image in 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDeployed waits for deployment id to finish and fails unless it
// succeeded (when this machine runs the node runtime).
func waitDeployed(t *testing.T, a *apptest.App, c *apptest.Client, p string, id int64) {
	t.Helper()
	if a.NodeRuntime == nil {
		return
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		var d deploy.Deployment
		c.Must(http.StatusOK, "GET", p+"/deployments/"+strconv.FormatInt(id, 10), nil).Decode(t, &d)
		switch d.State {
		case deploy.StateSucceeded:
			return
		case deploy.StateFailed, deploy.StateRolledBack, deploy.StateDenied:
			t.Fatalf("deployment %d %s: %s", id, d.State, d.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %d still %s after 90s (%s)", id, d.State, d.Step)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
