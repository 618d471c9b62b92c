package cli_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets/secretstest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// plant returns a line holding a fresh synthetic secret of rule, and the
// secret (made at run time, so this file holds none).
func plant(t *testing.T, template string) (line, secret string) {
	t.Helper()
	line, secret, _ = secretstest.Expand(template, rand.New(rand.NewPCG(7, 11)))
	return line, secret
}

const advisoryText = `{"id":"GO-2021-0113","modified":"2024-01-01T00:00:00Z","summary":"Out-of-bounds read in golang.org/x/text/language",
	"aliases":["CVE-2021-38561","GHSA-ppp9-7jff-5vj2"],
	"affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/text"},
	"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.7"}]}]}]}`

// scanFixture is a small project with one problem of each kind.
type scanFixture struct {
	dir, db, secret string
	env             map[string]string
}

func newScanFixture(t *testing.T) *scanFixture {
	t.Helper()
	root := t.TempDir()
	f := &scanFixture{dir: filepath.Join(root, "app"), db: filepath.Join(root, "adv.db")}
	line, secret := plant(t, `GITHUB_TOKEN=«ghp_{n:36}»`)
	f.secret = secret
	write := func(rel, content string) {
		p := filepath.Join(f.dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config/ci.env", "LOG_LEVEL=info\n"+line+"\n")
	write("go.mod", "module example.com/app\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.6\n")
	write("deploy/app.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
spec:
  containers:
    - name: web
      image: nginx:1.27.3
      securityContext:
        privileged: true
`)
	osv := filepath.Join(root, "osv")
	write("../osv/GO-2021-0113.json", advisoryText)
	f.env = map[string]string{"RAMPART_ADVISORY_DB": f.db, "NO_COLOR": "1"}
	if code, _, errOut := runCLI(t, f.env, "db", "import", osv); code != 0 {
		t.Fatalf("db import: %s", errOut)
	}
	return f
}

func TestScan_DirFindsEachKindAndSetsTheExitCode(t *testing.T) {
	f := newScanFixture(t)
	code, out, errOut := runCLI(t, f.env, "scan", f.dir)
	if code != 1 {
		t.Fatalf("scan: exit %d, want 1 (findings at or above high)\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"CRITICAL", "github-pat", "config/ci.env:2", "GO-2021-0113", "golang.org/x/text 0.3.6 → 0.3.7",
		"RMP-K8S-001", "deploy/app.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, f.secret) || strings.Contains(errOut, f.secret) {
		t.Fatal("the whole secret was printed")
	}
	if !strings.Contains(errOut, "at or above high") {
		t.Errorf("stderr does not say why it failed: %q", errOut)
	}
	if code, _, _ := runCLI(t, f.env, "scan", f.dir, "--fail-on", "none"); code != 0 {
		t.Errorf("--fail-on none: exit %d, want 0", code)
	}
	if code, _, _ := runCLI(t, f.env, "scan", f.dir, "--kinds", "deps", "--fail-on", "critical"); code != 0 {
		t.Errorf("only dependencies, fail on critical: exit %d, want 0 (the advisory counts as high)", code)
	}
	if code, _, _ := runCLI(t, f.env, "scan", f.dir, "--kinds", "deps", "--fail-on", "high"); code != 1 {
		t.Errorf("only dependencies, fail on high: exit %d, want 1 (an advisory without severity counts as high)", code)
	}
}

func TestScan_Formats(t *testing.T) {
	f := newScanFixture(t)
	for _, format := range []string{"json", "sarif", "cyclonedx", "spdx"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report")
			code, stdout, errOut := runCLI(t, f.env, "scan", f.dir, "--format", format, "--out", out, "--fail-on", "none")
			if code != 0 || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, errOut)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), f.secret) {
				t.Fatal("the whole secret is in the report")
			}
			switch format {
			case "json":
				var r report.Report
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				kinds := map[report.Kind]bool{}
				for _, fd := range r.Findings {
					kinds[fd.Kind] = true
				}
				if len(kinds) != 3 || len(r.Packages) != 1 {
					t.Errorf("kinds %v, packages %v; want all three kinds and one package", kinds, r.Packages)
				}
			case "sarif":
				var doc struct {
					Version string
					Runs    []struct{ Results []struct{ RuleID string } }
				}
				if err := json.Unmarshal(b, &doc); err != nil || doc.Version != "2.1.0" || len(doc.Runs) != 1 || len(doc.Runs[0].Results) < 3 {
					t.Errorf("SARIF = %+v, %v", doc, err)
				}
			case "cyclonedx":
				if !strings.Contains(string(b), `"specVersion": "1.6"`) || !strings.Contains(string(b), "pkg:golang/golang.org/x/text@0.3.6") ||
					!strings.Contains(string(b), "GO-2021-0113") {
					t.Errorf("CycloneDX lacks the spec version, the package purl or the vulnerability:\n%s", b)
				}
			case "spdx":
				doc, err := spdxjson.Read(strings.NewReader(string(b)))
				if err != nil || len(doc.Packages) != 2 {
					t.Errorf("SPDX = %v packages, %v", len(doc.Packages), err)
				}
			}
		})
	}
	if code, _, _ := runCLI(t, f.env, "scan", f.dir, "--format", "xml"); code != 2 {
		t.Errorf("--format xml: exit %d, want 2", code)
	}
}

func TestScan_Suppressions(t *testing.T) {
	f := newScanFixture(t)
	ignore := filepath.Join(f.dir, ".rampart", "ignore.yaml")
	os.MkdirAll(filepath.Dir(ignore), 0o755)
	os.WriteFile(ignore, []byte(`suppressions:
  - id: github-pat
    reason: revoked test token
    expires: 2099-12-31
  - id: CVE-2021-38561
    reason: language tags come from our own config only
  - paths: ["deploy/**"]
    reason: dev cluster manifests
    expires: 2020-01-01
`), 0o644)
	code, out, _ := runCLI(t, f.env, "scan", f.dir)
	// The secret and the advisory (by its alias) are suppressed; the IaC
	// suppression expired, so the privileged pod still fails the scan.
	if code != 1 {
		t.Fatalf("exit %d, want 1 (expired suppression):\n%s", code, out)
	}
	high := out[:strings.Index(out, "SUPPRESSED")]
	if strings.Contains(high, "github-pat") || strings.Contains(high, "GO-2021-0113") || !strings.Contains(high, "RMP-K8S-001") {
		t.Errorf("wrong findings left unsuppressed:\n%s", out)
	}
	if !strings.Contains(out, "revoked test token") || !strings.Contains(out, "expired on 2020-01-01") {
		t.Errorf("suppression reasons or the expiry note missing:\n%s", out)
	}
	os.WriteFile(ignore, []byte("suppressions:\n  - id: x\n"), 0o644)
	if code, _, errOut := runCLI(t, f.env, "scan", f.dir); code != 2 || !strings.Contains(errOut, "needs a reason") {
		t.Errorf("invalid ignore file: exit %d, %q; want 2 and the reason", code, errOut)
	}
}

func TestScan_Errors(t *testing.T) {
	f := newScanFixture(t)
	rules := filepath.Join(t.TempDir(), "rules.toml")
	os.WriteFile(rules, []byte("[[rules]]\nid = \"bad\"\nregex = \"(unclosed\"\n"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing path", []string{"scan", filepath.Join(f.dir, "nope")}, "cannot scan"},
		{"file not dir", []string{"scan", filepath.Join(f.dir, "go.mod")}, "not a directory"},
		{"bad severity", []string{"scan", f.dir, "--fail-on", "severe"}, "--fail-on"},
		{"bad kinds", []string{"scan", f.dir, "--kinds", "viruses"}, "unknown scan kind"},
		{"bad rules", []string{"scan", f.dir, "--rules", rules}, "bad"},
		{"deps in git mode", []string{"scan", "git", f.dir, "--kinds", "deps"}, "secrets only"},
		{"not a repository", []string{"scan", "git", f.dir}, ""},
		{"not an image", []string{"scan", "image", f.dir}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, f.env, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "panic") {
				t.Errorf("exit %d, stderr %q; want 2 mentioning %q", code, errOut, tt.want)
			}
		})
	}
}

func TestScan_GitHistory(t *testing.T) {
	gitBin := testenv.LookPath(t, "git")
	repo := t.TempDir()
	line, secret := plant(t, `GITHUB_TOKEN=«ghp_{n:36}»`)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Mallory", "GIT_AUTHOR_EMAIL=mallory@example.test",
			"GIT_COMMITTER_NAME=Mallory", "GIT_COMMITTER_EMAIL=mallory@example.test", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(repo, "ci.env"), []byte(line+"\n"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "add CI settings")
	os.Remove(filepath.Join(repo, "ci.env"))
	os.WriteFile(filepath.Join(repo, "README"), []byte("nothing to see\n"), 0o644)
	git("add", "-A")
	git("commit", "-q", "-m", "remove the token")

	code, out, errOut := runCLI(t, map[string]string{"NO_COLOR": "1"}, "scan", "git", repo, "--format", "json")
	if code != 1 {
		t.Fatalf("scan git: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Location.Author != "Mallory" || r.Findings[0].Location.Commit == "" ||
		r.Findings[0].Location.Path != "ci.env" {
		t.Fatalf("findings = %+v; want the deleted token, attributed to Mallory's commit", r.Findings)
	}
	if strings.Contains(out, secret) {
		t.Fatal("the whole secret was printed")
	}
	if code, _, errOut := runCLI(t, nil, "scan", "git", repo, "--since", "HEAD"); code != 0 {
		t.Errorf("--since HEAD: exit %d (%s), want 0: nothing new", code, errOut)
	}
}

func TestScan_Image(t *testing.T) {
	line, secret := plant(t, `GITHUB_TOKEN=«ghp_{n:36}»`)
	layer, err := tarball.LayerFromOpener(tarOpener(t, map[string]string{
		"app/.env":            line + "\n",
		"var/lib/dpkg/status": "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\nSource: zlib\n\n",
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, map[string]string{"NO_COLOR": "1", "RAMPART_ADVISORY_DB": filepath.Join(t.TempDir(), "none.db")},
		"scan", "image", dir, "--format", "json")
	if code != 1 {
		t.Fatalf("scan image: exit %d\n%s\n%s", code, out, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Location.Path != "app/.env" || !strings.HasPrefix(r.Findings[0].Location.Layer, "sha256:") {
		t.Errorf("findings = %+v; want the token in app/.env with its layer", r.Findings)
	}
	found := false
	for _, p := range r.Packages {
		found = found || p.Name == "zlib1g"
	}
	if !found {
		t.Errorf("packages = %+v; want zlib1g from the dpkg database", r.Packages)
	}
	if strings.Contains(out, secret) {
		t.Fatal("the whole secret was printed")
	}
}
