package app_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault"
)

// vworld is a running Rampart with an org acme, its project web, the
// repository acme/app in that project and a clone of it.
type vworld struct {
	a     *apptest.App
	admin *apptest.Client
	token string
	git   string
	home  string
	dir   string
}

const vapi = httpapi.Prefix + "/orgs/acme"

func newVWorld(t *testing.T, opts ...apptest.Option) *vworld {
	t.Helper()
	w := &vworld{git: testenv.LookPath(t, "git"), home: t.TempDir(), dir: t.TempDir()}
	w.a = apptest.Start(t, opts...)
	if rt := w.a.NodeRuntime; rt != nil {
		t.Cleanup(func() { w.a.Stop(t); _ = rt.StopAll(t.Context()) })
	}
	w.token = w.a.AdminToken(t)
	w.admin = w.a.Client(t, w.token)
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	w.admin.Must(http.StatusCreated, "POST", vapi+"/projects", httpapi.CreateProjectRequest{Name: "web"})
	w.admin.Must(http.StatusCreated, "POST", vapi+"/repos", scm.CreateRepoRequest{Name: "app", Project: "web"})
	u, _ := url.Parse(w.a.URL + "/acme/app.git")
	u.User = url.UserPassword("admin", w.token)
	w.gitMust(t, "init", "--quiet", "--initial-branch=main")
	w.gitMust(t, "config", "commit.gpgsign", "false")
	w.gitMust(t, "remote", "add", "origin", u.String())
	return w
}

func (w *vworld) gitRun(args ...string) (string, error) {
	cmd := exec.Command(w.git, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "HOME="+w.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(w.home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0", "LANG=C", "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.test",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.test")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (w *vworld) gitMust(t *testing.T, args ...string) string {
	t.Helper()
	out, err := w.gitRun(args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// commit writes files and commits them on the current branch.
func (w *vworld) commit(t *testing.T, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(w.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.gitMust(t, "add", "-A")
	w.gitMust(t, "commit", "--quiet", "--allow-empty", "-m", "change")
}

// setSecret stores a secret in the vault through the API.
func (w *vworld) setSecret(t *testing.T, scopePath, name, value string) {
	t.Helper()
	w.admin.Must(http.StatusOK, "PUT", vapi+scopePath+"/secrets/"+name, vault.SetSecretRequest{Value: value})
}

// grant puts a vault policy of acme.
func (w *vworld) grant(t *testing.T, name string, secrets, subjects []string) {
	t.Helper()
	w.admin.Must(http.StatusOK, "PUT", vapi+"/vault/policies/"+name, vault.PutPolicyRequest{Secrets: secrets, Subjects: subjects})
}

// audited returns the audit entries of action since mark.
func audited(t *testing.T, a *apptest.App, since int64, action string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, e := range a.AuditSince(t, since) {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// randomValue is a fresh secret value: prefix and 32 hex characters.
func randomValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func waitRunDone(t *testing.T, w *vworld, n int64) pipeline.RunJSON {
	t.Helper()
	p := vapi + "/repos/app/pipelines/runs/" + strconv.FormatInt(n, 10)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp := w.admin.Do("GET", p, nil)
		if resp.Status == http.StatusOK {
			var r pipeline.RunJSON
			resp.Decode(t, &r)
			if r.Status != pipeline.StatusQueued && r.Status != pipeline.StatusRunning {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run #%d did not finish in time (last answer %d %s)", n, resp.Status, resp.Body)
		}
	}
}

// TestVaultWire_PipelineSecrets: a job gets a vault secret granted to its
// branch in its environment, its log masks the value and its base64 form,
// and the vault audits the read on the run's behalf; a secret the branch
// may not read refuses the run before any job starts.
func TestVaultWire_PipelineSecrets(t *testing.T) {
	w := newVWorld(t)
	token := randomValue(t, "tok-")
	w.setSecret(t, "/projects/web", "DEPLOY_TOKEN", token)
	w.setSecret(t, "/projects/web", "PROD_KEY", randomValue(t, "prod-"))
	w.grant(t, "ci-main", []string{"web/DEPLOY_TOKEN"}, []string{"pipeline:web:main:*"})
	w.grant(t, "ci-release", []string{"web/PROD_KEY"}, []string{"pipeline:web:release/*:*"})
	mark := w.a.AuditHead(t)

	w.commit(t, map[string]string{pipeline.DefinitionPath: `on:
  push:
    branches: ["*"]
jobs:
  use:
    secrets:
      DEPLOY_TOKEN: acme/web/DEPLOY_TOKEN
    steps:
      - run: |
          echo "token=$DEPLOY_TOKEN"
          printf '%s' "$DEPLOY_TOKEN" | base64
          printf '%s' "$DEPLOY_TOKEN" | sha256sum
`})
	w.gitMust(t, "push", "--quiet", "origin", "main")
	r := waitRunDone(t, w, 1)
	if r.Status != pipeline.StatusSuccess || len(r.Jobs) != 1 {
		t.Fatalf("run %+v; want one successful job", r)
	}
	log := string(w.admin.Must(http.StatusOK, "GET", vapi+"/repos/app/pipelines/runs/1/jobs/"+strconv.FormatInt(r.Jobs[0].ID, 10)+"/log", nil).Body)
	sum := sha256.Sum256([]byte(token))
	if !strings.Contains(log, hex.EncodeToString(sum[:])) {
		t.Errorf("the job did not see the secret's value (no sha256 %x in its log):\n%s", sum, log)
	}
	if !strings.Contains(log, "token=***") {
		t.Errorf("the value is not masked in the log:\n%s", log)
	}
	for _, leak := range []string{token, base64.StdEncoding.EncodeToString([]byte(token))} {
		if strings.Contains(log, leak) {
			t.Errorf("the log shows %q:\n%s", leak, log)
		}
	}
	reads := audited(t, w.a, mark, "vault.secret.read")
	var jobRead bool
	for _, e := range reads {
		reader, _ := e.Details["reader"].(string)
		if e.Outcome != audit.Success || e.TargetName != "acme/web/DEPLOY_TOKEN" || !strings.HasPrefix(reader, "pipeline acme/web branch main") {
			t.Errorf("unexpected read %+v", e)
		}
		if strings.Contains(reader, "job use") && e.Details["via"] == "pipeline" && e.Details["on_behalf_of"] == "admin" {
			jobRead = true
		}
	}
	if !jobRead {
		t.Errorf("no audited read on behalf of the job's run among %+v", reads)
	}

	// A branch the policy of PROD_KEY does not name: refused before start.
	mark = w.a.AuditHead(t)
	w.gitMust(t, "checkout", "--quiet", "-b", "feature")
	w.commit(t, map[string]string{pipeline.DefinitionPath: `on:
  push:
    branches: ["*"]
jobs:
  use:
    secrets:
      KEY: acme/web/PROD_KEY
    steps:
      - run: echo "should not run"
`})
	w.gitMust(t, "push", "--quiet", "origin", "feature")
	r = waitRunDone(t, w, 2)
	if r.Status != pipeline.StatusFailed || !strings.Contains(r.Reason, "secret acme/web/PROD_KEY: no vault policy lets pipeline acme/web branch feature") {
		t.Fatalf("run %+v; want refused naming the secret and the branch", r)
	}
	for _, j := range r.Jobs {
		if j.Status == pipeline.StatusSuccess || j.Status == pipeline.StatusRunning || j.StartedAt != nil {
			t.Errorf("job %+v started", j)
		}
	}
	denied := audited(t, w.a, mark, "vault.secret.read")
	if len(denied) == 0 || denied[0].Outcome != audit.Denied || denied[0].TargetName != "acme/web/PROD_KEY" {
		t.Errorf("audited reads %+v; want a denied read of acme/web/PROD_KEY", denied)
	}
}

// TestVaultWire_DeploySecrets: a release referencing a vault secret
// deploys on the node runtime and its container has the value in its
// environment; a release referencing an unknown secret fails clearly and
// starts nothing.
func TestVaultWire_DeploySecrets(t *testing.T) {
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 || !container.Available() {
		testenv.Missing(t, "root with runc (the node runtime)")
	}
	// The image comes from a throwaway registry, unsigned: the pre-deploy
	// policies only audit here (deploy's own tests exercise the gate).
	w := newVWorld(t, apptest.WithPreDeployAudited(t))
	if w.a.NodeRuntime == nil {
		t.Fatal("no node runtime although runc and root are available")
	}
	reg := deploytest.StartRegistry(t)
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1"))
	p := vapi + "/projects/web"
	w.admin.Must(http.StatusOK, "PUT", p+"/environments/staging", deploy.EnvironmentSpec{Target: deploy.TargetSpec{Kind: deploy.KindNode,
		Replicas: 1, HealthTimeout: deploy.Duration(30 * time.Second), MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64,
		Strategy: deploy.Strategy{Kind: deploy.Recreate}}})
	value := randomValue(t, "pw-")
	w.setSecret(t, "/projects/web/envs/staging", "DB_PASSWORD", value)
	w.grant(t, "staging", []string{"web/staging/DB_PASSWORD"}, []string{"deployment:web:staging"})
	mark := w.a.AuditHead(t)

	w.admin.Must(http.StatusCreated, "POST", p+"/releases", map[string]any{"image": image, "digest": digest,
		"secret_refs": []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "acme/web/staging/DB_PASSWORD"}}})
	var dep deploy.Deployment
	w.admin.Must(http.StatusCreated, "POST", p+"/deployments", deploy.DeployRequest{Environment: "staging", Release: 1}).Decode(t, &dep)
	dep = waitDeployment(t, w, dep.ID)
	if dep.State != deploy.StateSucceeded {
		t.Fatalf("deployment %+v; want succeeded", dep)
	}
	var ins []deploy.InstanceJSON
	w.admin.Must(http.StatusOK, "GET", p+"/environments/staging/instances", nil).Decode(t, &ins)
	if len(ins) != 1 || ins[0].ReleaseNumber != 1 {
		t.Fatalf("instances %+v; want one of release 1", ins)
	}
	resp, err := http.Get("http://" + ins[0].Addr + "/secret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "set=true len=" + strconv.Itoa(len(value)); strings.TrimSpace(string(body)) != want {
		t.Errorf("the workload says %q, want %q", body, want)
	}
	if !processHasEnv("DB_PASSWORD=" + value) {
		t.Error("no process on this machine has DB_PASSWORD set to the vault's value")
	}
	reads := audited(t, w.a, mark, "vault.secret.read")
	if len(reads) == 0 || reads[0].Outcome != audit.Success || reads[0].Details["via"] != "deployment" ||
		!strings.HasPrefix(reads[0].Details["reader"].(string), "deployment acme/web env staging release 1") {
		t.Errorf("audited reads %+v; want the deployment's read", reads)
	}

	// An unknown reference: the deployment fails naming it, before the
	// target is touched: the running instance is the same one.
	first := ins[0].ID
	w.admin.Must(http.StatusCreated, "POST", p+"/releases", map[string]any{"image": image, "digest": digest,
		"secret_refs": []deploy.SecretRef{{Env: "DB_PASSWORD", Ref: "acme/web/staging/NO_SUCH_SECRET"}}})
	w.admin.Must(http.StatusCreated, "POST", p+"/deployments", deploy.DeployRequest{Environment: "staging", Release: 2}).Decode(t, &dep)
	dep = waitDeployment(t, w, dep.ID)
	if (dep.State != deploy.StateRolledBack && dep.State != deploy.StateFailed) || !strings.Contains(dep.Message, "secret acme/web/staging/NO_SUCH_SECRET not found") {
		t.Fatalf("deployment %+v; want failed naming the unknown secret", dep)
	}
	w.admin.Must(http.StatusOK, "GET", p+"/environments/staging/instances", nil).Decode(t, &ins)
	if len(ins) != 1 || ins[0].ReleaseNumber != 1 || ins[0].ID != first || ins[0].Restarts != 0 {
		t.Errorf("instances %+v; want release 1's instance %s, untouched", ins, first)
	}
}

func waitDeployment(t *testing.T, w *vworld, id int64) deploy.Deployment {
	t.Helper()
	var d deploy.Deployment
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		w.admin.Must(http.StatusOK, "GET", vapi+"/projects/web/deployments/"+strconv.FormatInt(id, 10), nil).Decode(t, &d)
		if d.State != deploy.StateQueued && d.State != deploy.StateRunning && d.State != "" && d.FinishedAt != nil {
			return d
		}
	}
	t.Fatalf("deployment %d did not finish: %+v", id, d)
	return d
}

// processHasEnv reports whether a process of this machine has entry in
// its environment (containers' processes are visible to root).
func processHasEnv(entry string) bool {
	if runtime.GOOS != "linux" {
		return false
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, e := range bytes.Split(data, []byte{0}) {
			if string(e) == entry {
				return true
			}
		}
	}
	return false
}

// TestVaultWire_RegistrySignsWithVaultKey: the registry signs images with
// the vault's site key: cosign verifies a signature made through the
// registry's sign API with the key the registry publishes, which is the
// vault's, and the vault audits the signature.
func TestVaultWire_RegistrySignsWithVaultKey(t *testing.T) {
	crane := cachedTool(t, "crane", "v0.22.1")
	cosign := cachedTool(t, "cosign", "v2.6.5")
	w := newVWorld(t)
	host := strings.Replace(strings.TrimPrefix(w.a.URL, "http://"), "localhost", "127.0.0.1", 1)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"), "COSIGN_EXPERIMENTAL=0",
		"TUF_ROOT="+filepath.Join(home, "tuf"))
	runTool(t, env, crane, "auth", "login", host, "-u", "admin", "-p", w.token)
	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layer, "app/main.txt", "signed by the vault\n")
	ref := host + "/acme/app:v1"
	runTool(t, env, crane, "append", "--insecure", "-f", layer, "-t", ref)
	digest := strings.TrimSpace(runTool(t, env, crane, "digest", "--insecure", ref))

	mark := w.a.AuditHead(t)
	var v registry.Verification
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp := w.admin.Do("POST", vapi+"/registry/repositories/app/signatures", registry.SignRequest{Digest: digest})
		if resp.Status == http.StatusCreated {
			resp.Decode(t, &v)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign: %d %s", resp.Status, resp.Body)
		}
	}
	if !v.Signed || v.Signatures != 1 {
		t.Fatalf("after signing: %+v", v)
	}
	pub := w.a.Client(t, "").Must(http.StatusOK, "GET", httpapi.Prefix+"/registry/signing-key", nil).Body
	var site vault.SiteKeyJSON
	w.a.Client(t, "").Must(http.StatusOK, "GET", httpapi.Prefix+"/vault/site-key", nil).Decode(t, &site)
	if site.PublicKey == "" || site.PublicKey != string(pub) {
		t.Fatalf("the registry's key\n%s\nis not the vault's\n%s", pub, site.PublicKey)
	}
	key := filepath.Join(t.TempDir(), "rampart.pub")
	if err := os.WriteFile(key, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runTool(t, env, cosign, "verify", "--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry=true",
		"--allow-insecure-registry=true", host+"/acme/app@"+digest)
	if !strings.Contains(out, digest) {
		t.Errorf("cosign verify output does not name the digest: %s", out)
	}
	if signs := audited(t, w.a, mark, "vault.key.sign"); len(signs) != 1 || signs[0].TargetName != vault.SiteKeyRef {
		t.Errorf("vault.key.sign entries %+v; want one for the site key", signs)
	}
}

// cachedTool is a client built by .ci/run into .cache/tools.
func cachedTool(t *testing.T, name, version string) string {
	t.Helper()
	return testenv.Tool(t, name, version)
}

func runTool(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeTar writes a tar holding one file.
func writeTar(t *testing.T, path, name, content string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVaultWire_PushedSecretIsLeaked: a vault secret's value pushed past
// push protection (with a bypass reason) is marked leaked in the vault,
// with an open leak alert naming the push, and the leak is audited.
func TestVaultWire_PushedSecretIsLeaked(t *testing.T) {
	w := newVWorld(t)
	value := "ghp_" + strings.ToUpper(randomValue(t, "")[:4]) + randomValue(t, "")
	value = value[:40]
	w.setSecret(t, "/projects/web", "GH_TOKEN", value)
	w.setSecret(t, "/projects/web", "OTHER", randomValue(t, "other-"))
	w.commit(t, map[string]string{"README.md": "# app\n"})
	w.gitMust(t, "push", "--quiet", "origin", "main")
	mark := w.a.AuditHead(t)

	w.commit(t, map[string]string{"deploy/config.env": "GITHUB_TOKEN=" + value + "\n"})
	if out, err := w.gitRun("push", "origin", "main"); err == nil {
		t.Fatalf("push protection let the secret through:\n%s", out)
	}
	if leaks := audited(t, w.a, mark, "vault.secret.leaked"); len(leaks) != 0 {
		t.Fatalf("a refused push reported leaks: %+v", leaks)
	}
	w.gitMust(t, "push", "-o", "secret-bypass=test of leak to rotation", "origin", "main")

	var leaks []vault.LeakJSON
	w.admin.Must(http.StatusOK, "GET", vapi+"/vault/leaks?open=true", nil).Decode(t, &leaks)
	if len(leaks) != 1 || leaks[0].Ref != "acme/web/GH_TOKEN" || leaks[0].Source != "push-protection" ||
		!strings.Contains(leaks[0].Location, "acme/app@") || !strings.Contains(leaks[0].Location, "deploy/config.env:1") {
		t.Fatalf("leak alerts %+v; want one for acme/web/GH_TOKEN from the push", leaks)
	}
	var sec vault.SecretJSON
	w.admin.Must(http.StatusOK, "GET", vapi+"/projects/web/secrets/GH_TOKEN", nil).Decode(t, &sec)
	if sec.LeakedAt.IsZero() {
		t.Errorf("secret %+v is not marked leaked", sec)
	}
	var other vault.SecretJSON
	w.admin.Must(http.StatusOK, "GET", vapi+"/projects/web/secrets/OTHER", nil).Decode(t, &other)
	if !other.LeakedAt.IsZero() {
		t.Errorf("secret %+v marked leaked although it was not pushed", other)
	}
	got := audited(t, w.a, mark, "vault.secret.leaked")
	if len(got) != 1 || got[0].TargetName != "acme/web/GH_TOKEN" {
		t.Errorf("vault.secret.leaked entries %+v; want one for acme/web/GH_TOKEN", got)
	}
	for _, e := range w.a.AuditSince(t, mark) {
		if strings.Contains(e.TargetName+e.TargetID, value) || strings.Contains(toString(e.Details), value) {
			t.Errorf("audit entry %s holds the secret's value", e.Action)
		}
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
