package iac_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan/iac"
	"github.com/rampartsec/rampart/internal/scan/report"
)

func TestScanner_Applies(t *testing.T) {
	s := scanner(t)
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"infra/main.tf", true},
		{"deploy/app.yaml", true},
		{"deploy/app.YML", true},
		{"Dockerfile", true},
		{"build/api.Dockerfile", true},
		{"Dockerfile.prod", true},
		{"dockerfile", true},
		{"Containerfile", true},
		{`windows\path\Dockerfile`, true},
		{"Dockerfile.dockerignore", false},
		{"main.tf.bak", false},
		{"main.go", false},
		{"Dockerfile/README.md", false},
		{"values.json", false},
	} {
		if got := s.Applies(tt.path); got != tt.want {
			t.Errorf("Applies(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if f, n := s.Scan(t.Context(), "main.go", []byte("package main")); f != nil || n != nil {
		t.Errorf("Scan of a file it does not apply to = %v, %v", f, n)
	}
}

func readBad(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bad", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// garbage is binary noise, with or without NUL bytes.
func garbage(n int, nul bool) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
		if !nul && b[i] == 0 {
			b[i] = 0xff
		}
	}
	return b
}

// TestScan_BadInput: a file that cannot be read as its kind yields one
// Note naming the problem, and no finding; a scan of a good file after it
// is unaffected. Nothing panics or exhausts memory.
func TestScan_BadInput(t *testing.T) {
	s := scanner(t)
	for _, tt := range []struct {
		name, path string
		data       []byte
		note       string // in the Note's message
	}{
		{"invalid HCL", "main.tf", readBad(t, "invalid.tf"), "invalid Terraform, not scanned: line 3"},
		{"YAML syntax error", "pod.yaml", readBad(t, "syntax.yaml"), "invalid YAML, not scanned: "},
		{"Dockerfile the parser rejects", "Dockerfile", readBad(t, "rejected.Dockerfile"), "invalid Dockerfile, not scanned: line 2: ENV must have two arguments"},
		{"YAML alias bomb", "bomb.yaml", readBad(t, "bomb.yaml"), "aliases are expanded"},
		{"YAML bomb of nested Lists", "lists.yaml", readBad(t, "listbomb.yaml"), "aliases are expanded"},
		{"YAML bomb of merge keys", "merge.yaml", readBad(t, "mergebomb.yaml"), "aliases are expanded"},
		{"YAML alias cycle", "cycle.yaml", []byte("apiVersion: v1\nkind: Pod\nspec: &s\n  self: *s\n"), "invalid YAML"},
		{"binary garbage (Terraform)", "main.tf", garbage(4096, true), "binary data"},
		{"binary garbage (YAML)", "pod.yaml", garbage(4096, true), "binary data"},
		{"binary garbage (Dockerfile)", "Dockerfile", garbage(4096, true), "binary data"},
		{"noise without NUL (Terraform)", "main.tf", garbage(4096, false), "invalid Terraform"},
		{"noise without NUL (YAML)", "pod.yaml", garbage(4096, false), "invalid YAML"},
		{"HCL nested a million deep", "main.tf", []byte("a = " + strings.Repeat("[", 1<<20-10)), "nested deeper than"},
		{"HCL nested 100 deep", "main.tf", []byte("a = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"), "nested deeper than 64"},
		{"HCL unary operators a million long", "main.tf", []byte("a = " + strings.Repeat("!", 1<<20-10) + "true\n"), "operator"},
		{"HCL unary operators spaced out", "main.tf", []byte("a = " + strings.Repeat("! ", 1000) + "true\n"), "more than 256 operators"},
		{"HCL conditional chain", "main.tf", []byte("a = (" + strings.Repeat("x ? y :\n", 50_000) + "z)\n"), "more than 256 operators"},
		{"YAML nested a million deep", "deep.yaml", []byte("apiVersion: v1\nkind: Pod\nspec: " + strings.Repeat("[", 1<<20)), "invalid YAML"},
		{"ONBUILD chain", "Dockerfile", []byte("FROM a\n" + strings.Repeat("ONBUILD ", 100_000) + "RUN x\n"), "ONBUILD nested more than"},
		{"Dockerfile of comments only", "Dockerfile", []byte("# nothing\n"), "invalid Dockerfile"},
		{"YAML over the size limit", "big.yaml", bytes.Repeat([]byte("# padding\n"), iac.MaxYAMLSize/10+1), "over the"},
		{"Terraform over the size limit", "big.tf", bytes.Repeat([]byte("# padding\n"), iac.MaxTerraformSize/10+1), "over the"},
		{"Dockerfile over the size limit", "Dockerfile", bytes.Repeat([]byte("# padding\n"), iac.MaxDockerfileSize/10+1), "over the"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			findings, notes := s.Scan(t.Context(), tt.path, tt.data)
			runtime.ReadMemStats(&after)
			if len(findings) != 0 {
				t.Errorf("%d findings, want none: %v", len(findings), findings)
			}
			if len(notes) != 1 || notes[0].Path != tt.path || !strings.Contains(notes[0].Message, tt.note) {
				t.Errorf("notes = %+v, want one for %s containing %q", notes, tt.path, tt.note)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
				t.Errorf("scanning allocated %d MiB", alloc>>20)
			}
		})
	}
	// The scanner still works after all of that.
	f, n := s.Scan(t.Context(), "pod.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: true\n"))
	if n != nil || !slices.ContainsFunc(f, func(f report.Finding) bool { return f.RuleID == "RMP-K8S-010" }) {
		t.Errorf("good file after bad ones: findings %v, notes %v", f, n)
	}
}

// TestScan_PartialYAML: the documents before a syntax error are scanned,
// and the Note says the rest were not.
func TestScan_PartialYAML(t *testing.T) {
	findings, notes := scanner(t).Scan(t.Context(), "pods.yaml", readBad(t, "partial.yaml"))
	if !slices.ContainsFunc(findings, func(f report.Finding) bool { return f.RuleID == "RMP-K8S-009" && f.Location.StartLine == 6 }) {
		t.Errorf("first document not scanned: %v", findings)
	}
	if len(notes) != 1 || !strings.Contains(notes[0].Message, "partly scanned: line 15:") || !strings.Contains(notes[0].Message, "only the 1 document(s) before it were scanned") {
		t.Errorf("notes = %+v", notes)
	}
}

// TestScan_Finding: a finding carries what the user needs to act on it.
func TestScan_Finding(t *testing.T) {
	src := []byte("FROM debian:12-slim\nHEALTHCHECK CMD true\nUSER app\nEXPOSE 22\n")
	findings, notes := scanner(t).Scan(t.Context(), "svc/Dockerfile", src)
	if notes != nil {
		t.Fatal(notes)
	}
	var info iac.CheckInfo
	for _, c := range iac.Checks() {
		if c.ID == "RMP-DF-011" {
			info = c
		}
	}
	want := []report.Finding{{
		Kind:        report.KindMisconfiguration,
		RuleID:      "RMP-DF-011",
		Title:       info.Title,
		Severity:    report.SeverityMedium,
		Location:    report.Location{Path: "svc/Dockerfile", StartLine: 4, EndLine: 4},
		Fingerprint: findings[0].Fingerprint,
		Description: "EXPOSE 22 advertises an SSH server",
		Remediation: info.Remediation,
	}}
	if diff := cmp.Diff(want, findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestScan_FingerprintsStable: moving a resource within its file keeps
// its fingerprints, so suppressions and "new in this pull request" hold;
// another path or another resource changes them.
func TestScan_FingerprintsStable(t *testing.T) {
	s := scanner(t)
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  hostNetwork: true\n  containers: [{name: app, image: nginx}]\n"
	fps := func(path, src string) map[string]string {
		findings, _ := s.Scan(t.Context(), path, []byte(src))
		out := map[string]string{}
		for _, f := range findings {
			if _, dup := out[f.RuleID]; dup {
				t.Fatalf("two %s findings", f.RuleID)
			}
			out[f.RuleID] = f.Fingerprint
		}
		return out
	}
	base := fps("k8s/pod.yaml", strings.Replace(pod, "%s", "web", 1))
	if len(base) < 5 {
		t.Fatalf("only %d findings", len(base))
	}
	moved := fps("k8s/pod.yaml", "# a comment\n\n---\n"+strings.Replace(pod, "%s", "web", 1))
	if diff := cmp.Diff(base, moved); diff != "" {
		t.Errorf("fingerprints changed when the object moved down (-before +after):\n%s", diff)
	}
	for name, other := range map[string]map[string]string{
		"another path":   fps("k8s/other.yaml", strings.Replace(pod, "%s", "web", 1)),
		"another object": fps("k8s/pod.yaml", strings.Replace(pod, "%s", "api", 1)),
	} {
		for id, fp := range other {
			if base[id] == fp {
				t.Errorf("%s: %s keeps fingerprint %s", name, id, fp)
			}
		}
	}
	// Findings of one check on two lines naming one resource differ too.
	findings, _ := s.Scan(t.Context(), "Dockerfile", []byte("FROM a:1\nRUN sudo x\nRUN sudo x\n"))
	var sudo []string
	for _, f := range findings {
		if f.RuleID == "RMP-DF-010" {
			sudo = append(sudo, f.Fingerprint)
		}
	}
	if len(sudo) != 2 || sudo[0] == sudo[1] {
		t.Errorf("fingerprints of two identical RUN sudo = %v", sudo)
	}
}

// TestScan_Concurrent: one Scanner serves many goroutines with the same
// results as one.
func TestScan_Concurrent(t *testing.T) {
	s := scanner(t)
	files, err := filepath.Glob(filepath.Join("testdata", "checks", "*", "fail.*"))
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	want := map[string][]report.Finding{}
	for _, p := range files {
		data, _ := os.ReadFile(p)
		want[p], _ = s.Scan(t.Context(), p, data)
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(files)*4)
	for range 4 {
		wg.Go(func() {
			for _, p := range files {
				data, _ := os.ReadFile(p)
				got, _ := s.Scan(t.Context(), p, data)
				if !cmp.Equal(want[p], got) {
					errs <- p
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for p := range errs {
		t.Errorf("%s: concurrent scan differs", p)
	}
}

// TestScan_Cancelled: a cancelled context stops evaluation with a Note.
func TestScan_Cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	data, _ := os.ReadFile(filepath.Join("testdata", "checks", "RMP-K8S-001", "fail.yaml"))
	findings, notes := scanner(t).Scan(ctx, "pod.yaml", data)
	if len(findings) != 0 || len(notes) != 1 || !strings.Contains(notes[0].Message, "cancel") {
		t.Errorf("findings %v, notes %+v", findings, notes)
	}
}

func writeChecks(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const userCheck = `package rampart.checks.kubernetes.team_label

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "ACME-001",
	"severity": "low",
	"title": "Object has no team label",
	"remediation": "Add metadata.labels.team.",
}

deny contains {"message": msg, "line": k8s.line(doc, ["metadata"]), "resource": doc.resource} if {
	some doc in input.documents
	not doc.object.metadata.labels.team
	msg := sprintf("%s has no team label", [doc.resource])
}
`

// TestNew_UserChecks: checks from a directory run beside the built-in
// ones, may use our helper packages and their own, and OPA test files
// are left out.
func TestNew_UserChecks(t *testing.T) {
	dir := writeChecks(t, map[string]string{
		"team_label.rego": userCheck,
		"nested/dockerfile_maintainer.rego": `package rampart.checks.dockerfile.maintainer

import data.acme.util

metadata := {"id": "ACME-002", "severity": "info", "title": "MAINTAINER is deprecated", "remediation": "Use LABEL org.opencontainers.image.authors."}

deny contains {"message": "MAINTAINER is deprecated", "line": i.line} if {
	some i in input.instructions
	util.is(i, "maintainer")
}
`,
		"nested/util.rego":     "package acme.util\n\nis(i, cmd) if i.cmd == cmd\n",
		"team_label_test.rego": "package rampart.checks.kubernetes.team_label_test\n\ntest_x if true\n",
		"README.md":            "not a check",
	})
	s, err := iac.New(t.Context(), iac.Options{ExtraChecksDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var user []string
	for _, c := range s.Checks() {
		if !c.BuiltIn {
			user = append(user, c.ID+" "+string(c.Kind)+" "+c.Severity.String())
		}
	}
	if diff := cmp.Diff([]string{"ACME-001 kubernetes low", "ACME-002 dockerfile info"}, user); diff != "" {
		t.Errorf("user checks (-want +got):\n%s", diff)
	}
	if len(s.Checks()) != len(iac.Checks())+2 {
		t.Errorf("%d checks, want the built-in ones and 2", len(s.Checks()))
	}
	lines := func(path, src, id string) []int {
		findings, notes := s.Scan(t.Context(), path, []byte(src))
		if notes != nil {
			t.Fatal(notes)
		}
		var out []int
		for _, f := range findings {
			if f.RuleID == id {
				out = append(out, f.Location.StartLine)
				if f.Title == "" || f.Remediation == "" || f.Fingerprint == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
		}
		return out
	}
	if got := lines("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  labels: {team: a}\n", "ACME-001"); !cmp.Equal(got, []int{3}) {
		t.Errorf("ACME-001 on lines %v, want [3]", got)
	}
	if got := lines("Dockerfile", "FROM a:1\nMAINTAINER me\n", "ACME-002"); !cmp.Equal(got, []int{2}) {
		t.Errorf("ACME-002 on lines %v, want [2]", got)
	}
	// The built-in checks still run.
	if got := lines("Dockerfile", "FROM a:1\nEXPOSE 22\n", "RMP-DF-011"); !cmp.Equal(got, []int{2}) {
		t.Errorf("RMP-DF-011 on lines %v, want [2]", got)
	}
}

// TestScan_FailingUserCheck: a check that fails while it runs costs its
// own results and a Note naming it, not those of the other checks.
func TestScan_FailingUserCheck(t *testing.T) {
	dir := writeChecks(t, map[string]string{"conflict.rego": `package rampart.checks.dockerfile.conflict

metadata := {"id": "ACME-003", "severity": "low", "title": "t", "remediation": "r."}

stage := s.name if some s in input.stages

deny contains {"message": stage} if true
`})
	s, err := iac.New(t.Context(), iac.Options{ExtraChecksDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Fine with one stage.
	findings, notes := s.Scan(t.Context(), "Dockerfile", []byte("FROM a:1 AS one\nEXPOSE 22\n"))
	if notes != nil || !slices.ContainsFunc(findings, func(f report.Finding) bool { return f.RuleID == "ACME-003" }) {
		t.Fatalf("one stage: findings %v, notes %v", findings, notes)
	}
	// Two stages give stage two values: an evaluation error.
	findings, notes = s.Scan(t.Context(), "Dockerfile", []byte("FROM a:1 AS one\nFROM a:1 AS two\nEXPOSE 22\n"))
	if len(notes) != 1 || !strings.Contains(notes[0].Message, "check ACME-003 failed") || !strings.Contains(notes[0].Message, "conflict.rego:5") {
		t.Errorf("notes = %+v, want one naming ACME-003 and its file", notes)
	}
	var ids []string
	for _, f := range findings {
		ids = append(ids, f.RuleID)
	}
	if !slices.Contains(ids, "RMP-DF-011") || slices.Contains(ids, "ACME-003") {
		t.Errorf("findings %v, want the built-in ones only", ids)
	}
}

// TestNew_BrokenUserChecks: a user check that cannot be used stops New
// with an Invalid error naming the file, the line where there is one,
// and the problem.
func TestNew_BrokenUserChecks(t *testing.T) {
	meta := `metadata := {"id": "ACME-009", "severity": "high", "title": "t", "remediation": "r."}`
	for _, tt := range []struct {
		name string
		src  string
		want []string
	}{
		{"syntax error", "package rampart.checks.kubernetes.x\n\n" + meta + "\n\ndeny contains {\"message\": \"m\"} if {\n  some doc in input.documents\n  doc.kind ==\n}\n",
			[]string{"broken.rego:8:", "rego_parse_error"}},
		{"Rego v0 syntax", "package rampart.checks.kubernetes.x\n\n" + meta + "\n\ndeny[msg] {\n  msg := \"m\"\n}\n",
			[]string{"broken.rego:5:", "rego_parse_error"}},
		{"undefined function", "package rampart.checks.kubernetes.x\n\n" + meta + "\n\ndeny contains {\"message\": m} if {\n  m := nosuch(1)\n}\n",
			[]string{"broken.rego:6:", "nosuch"}},
		{"network access", "package rampart.checks.kubernetes.x\n\n" + meta + "\n\ndeny contains {\"message\": r.body} if {\n  r := http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1/\"})\n}\n",
			[]string{"broken.rego:6:", "http.send"}},
		{"no metadata", "package rampart.checks.kubernetes.x\n\ndeny contains {\"message\": \"m\"} if false\n",
			[]string{"broken.rego:1:", "no metadata"}},
		{"no deny", "package rampart.checks.kubernetes.x\n\n" + meta + "\n",
			[]string{"broken.rego:1:", "no deny rule"}},
		{"deny not a set", "package rampart.checks.kubernetes.x\n\n" + meta + "\n\ndeny := {\"message\": \"m\"}\n",
			[]string{"broken.rego:1:", "deny must be a set"}},
		{"bad severity", "package rampart.checks.kubernetes.x\n\nmetadata := {\"id\": \"ACME-009\", \"severity\": \"severe\", \"title\": \"t\", \"remediation\": \"r.\"}\n\ndeny contains {\"message\": \"m\"} if false\n",
			[]string{"broken.rego:1:", `severity "severe"`}},
		{"computed metadata", "package rampart.checks.kubernetes.x\n\nmetadata := {\"id\": concat(\"-\", [\"A\", \"1\"]), \"severity\": \"low\", \"title\": \"t\", \"remediation\": \"r.\"}\n\ndeny contains {\"message\": \"m\"} if false\n",
			[]string{"broken.rego:1:", "metadata must be a literal object"}},
		{"unknown kind", "package rampart.checks.helm.x\n\n" + meta + "\n\ndeny contains {\"message\": \"m\"} if false\n",
			[]string{"broken.rego:1:", `unknown kind "helm"`}},
		{"id of a built-in check", "package rampart.checks.kubernetes.x\n\nmetadata := {\"id\": \"RMP-K8S-001\", \"severity\": \"low\", \"title\": \"t\", \"remediation\": \"r.\"}\n\ndeny contains {\"message\": \"m\"} if false\n",
			[]string{"broken.rego:1:", "RMP-K8S-001 is used by another check"}},
		{"package of a built-in check", "package rampart.checks.kubernetes.privileged\n\n" + meta + "\n\ndeny contains {\"message\": \"m\"} if false\n",
			[]string{"broken.rego:1:", "also declared by checks/kubernetes/privileged.rego"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeChecks(t, map[string]string{"good.rego": userCheck, "broken.rego": tt.src})
			s, err := iac.New(t.Context(), iac.Options{ExtraChecksDir: dir})
			if err == nil {
				t.Fatalf("New succeeded with %d checks", len(s.Checks()))
			}
			if !apperr.Is(err, apperr.Invalid) {
				t.Errorf("error kind %v, want invalid: %v", apperr.KindOf(err), err)
			}
			msg := apperr.Message(err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
	_, err := iac.New(t.Context(), iac.Options{ExtraChecksDir: filepath.Join(t.TempDir(), "missing")})
	if !apperr.Is(err, apperr.Invalid) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}
