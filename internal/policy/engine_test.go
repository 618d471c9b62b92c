package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/exception"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// testSettings point the library at a registry the test inputs use.
var testSettings = map[string]any{"rampart_registry": "rampart.example:8443", "approved_base_images": []any{"rampart.example:8443/base/*"}}

func builtin(t testing.TB) *Bundle {
	t.Helper()
	b, err := Builtin{}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func engine(t testing.TB, extra ...*Bundle) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), append([]*Bundle{builtin(t)}, extra...), EngineOptions{Settings: testSettings})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// bundle makes a bundle of files.
func bundle(name string, files map[string]string) *Bundle {
	b := &Bundle{Name: name, Revision: "test@" + name, Files: map[string][]byte{}}
	for k, v := range files {
		b.Files[k] = []byte(v)
	}
	return b
}

func readInput(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "inputs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuiltinLibrary(t *testing.T) {
	e := engine(t)
	ps := e.Policies()
	if len(ps) < 20 {
		t.Fatalf("the built-in library has %d policies, want at least 20", len(ps))
	}
	perGate := map[Gate]int{}
	for _, p := range ps {
		perGate[p.Gate]++
		if !p.BuiltIn || !strings.HasPrefix(p.File, "library/") {
			t.Errorf("%s: builtin=%v file=%s", p.ID, p.BuiltIn, p.File)
		}
	}
	for _, g := range Gates() {
		if perGate[g] == 0 {
			t.Errorf("gate %s has no built-in policy", g)
		}
	}
	// The list, by id.
	for _, id := range []string{
		"RMP-DEP-001", // signed by Rampart's key
		"RMP-DEP-002", // provenance from a protected branch of a Rampart repository
		"RMP-DEP-003", // no fixable critical or high vulnerability
		"RMP-DEP-004", // SBOM present
		"RMP-DEP-005", // no secrets found
		"RMP-ADM-001", // non-root
		"RMP-ADM-002", // resource limits
		"RMP-ADM-003", // no privileged
		"RMP-ADM-004", // no hostPath
		"RMP-ADM-005", // no hostNetwork
		"RMP-ADM-006", // allowed registries
		"RMP-ADM-007", // no :latest
		"RMP-ADM-008", // required labels
		"RMP-DEP-008", // approved base images
	} {
		if !slices.ContainsFunc(ps, func(p Policy) bool { return p.ID == id }) {
			t.Errorf("the library lacks %s", id)
		}
	}
	if !strings.HasPrefix(e.Revision(), "builtin@") {
		t.Errorf("revision %q", e.Revision())
	}
}

// TestBuiltinLibrary_RegoTests runs the library's own Rego unit tests, as
// `rampart policy test` does.
func TestBuiltinLibrary_RegoTests(t *testing.T) {
	res, err := RunTests(t.Context(), []*Bundle{builtin(t)}, TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 40 {
		t.Errorf("%d Rego tests ran, want at least 40", len(res))
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s (%s:%d): %s %s", r.Name, r.File, r.Line, r.Error, r.Output)
		}
	}
}

func TestRunTests_ReportsFailures(t *testing.T) {
	b := bundle("mine", map[string]string{
		"mine/p.rego":      "package rampart.gates.image.mine\n\nmetadata := {\"id\": \"MINE-1\", \"title\": \"t\", \"remediation\": \"r\"}\n\ndeny contains \"no\" if input.action == \"pull\"\n",
		"mine/p_test.rego": "package rampart.tests.mine\n\nimport data.rampart.gates.image.mine\n\ntest_pull_denied if count(mine.deny) == 1 with input as {\"action\": \"pull\"}\n\ntest_wrong if count(mine.deny) == 1 with input as {\"action\": \"push\"}\n",
	})
	res, err := RunTests(t.Context(), []*Bundle{builtin(t), b}, TestOptions{Run: "tests.mine"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range res {
		got[r.Name] = r.Pass
	}
	want := map[string]bool{"rampart.tests.mine.test_pull_denied": true, "rampart.tests.mine.test_wrong": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestNewEngine_RefusesBadBundles: a bundle that does not parse, compile
// or follow the contract is refused with the file and line at fault.
func TestNewEngine_RefusesBadBundles(t *testing.T) {
	const meta = `metadata := {"id": "X-1", "title": "t", "remediation": "r"}` + "\n"
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"syntax error", map[string]string{"p.rego": "package rampart.gates.image.p\n\n" + meta + "deny contains x if {\n"},
			"repo:p.rego:5"},
		{"undefined reference", map[string]string{"p.rego": "package rampart.gates.image.p\n\n" + meta + "\ndeny contains x if {\n\tx := data.nowhere.f(1)\n}\n"},
			"repo:p.rego:6: undefined function data.nowhere.f"},
		{"network built-in", map[string]string{"p.rego": "package rampart.gates.image.p\n\n" + meta + "\ndeny contains x if {\n\tx := http.send({\"method\": \"GET\", \"url\": \"http://x\"})\n}\n"},
			"repo:p.rego:6: undefined function http.send"},
		{"unknown gate", map[string]string{"p.rego": "package rampart.gates.deploy.p\n\n" + meta + "deny contains 1 if false\n"},
			`repo:p.rego:1: package rampart.gates.deploy.p: unknown gate "deploy"`},
		{"no metadata", map[string]string{"p.rego": "package rampart.gates.image.p\n\ndeny contains 1 if false\n"},
			"repo:p.rego:1: no metadata"},
		{"deny not a set", map[string]string{"p.rego": "package rampart.gates.image.p\n\n" + meta + "deny := true\n"},
			"repo:p.rego:4: deny must be a set"},
		{"metadata not literal", map[string]string{"p.rego": "package rampart.gates.image.p\n\nmetadata := {\"id\": input.x, \"title\": \"t\", \"remediation\": \"r\"}\n\ndeny contains 1 if false\n"},
			"repo:p.rego:3: metadata must be a literal object"},
		{"metadata without title", map[string]string{"p.rego": "package rampart.gates.image.p\n\nmetadata := {\"id\": \"X-1\", \"remediation\": \"r\"}\n\ndeny contains 1 if false\n"},
			"repo:p.rego:3: metadata has no title string"},
		{"bad mode", map[string]string{"p.rego": "package rampart.gates.image.p\n\nmetadata := {\"id\": \"X-1\", \"title\": \"t\", \"remediation\": \"r\", \"mode\": \"loud\"}\n\ndeny contains 1 if false\n"},
			`repo:p.rego:3: metadata mode loud`},
		{"duplicate id", map[string]string{
			"a.rego": "package rampart.gates.image.a\n\n" + meta + "deny contains 1 if false\n",
			"b.rego": "package rampart.gates.image.b\n\n" + meta + "deny contains 1 if false\n"},
			"repo:b.rego:1: policy id X-1 is also used by repo:a.rego"},
		{"id of the library", map[string]string{"p.rego": "package rampart.gates.image.p\n\nmetadata := {\"id\": \"RMP-IMG-001\", \"title\": \"t\", \"remediation\": \"r\"}\n\ndeny contains 1 if false\n"},
			"policy id RMP-IMG-001 is also used by library/image/quarantine.rego"},
		{"short package", map[string]string{"p.rego": "package rampart.gates.image\n\n" + meta + "deny contains 1 if false\n"},
			"repo:p.rego:1: package rampart.gates.image: a policy's package is rampart.gates.<gate>.<name>"},
		{"policy.yaml unknown field", map[string]string{"policy.yaml": "settings: {}\nmode: []\n"},
			"repo:policy.yaml: yaml: unmarshal errors:\n  line 2: field mode not found"},
		{"policy.yaml bad mode", map[string]string{"policy.yaml": "modes:\n  - policy: RMP-*\n    mode: loud\n"},
			`repo:policy.yaml:2: mode "loud": want enforce, warn or audit`},
		{"policy.yaml bad glob", map[string]string{"policy.yaml": "modes:\n  - policy: 'RMP-['\n    mode: warn\n"},
			`repo:policy.yaml:2: invalid glob "RMP-["`},
		{"exceptions.yaml without reason", map[string]string{"exceptions.yaml": "exceptions:\n  - id: RMP-DEP-001\n"},
			"repo:exceptions.yaml:2: an exception needs a reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEngine(t.Context(), []*Bundle{builtin(t), bundle("repo", tt.files)}, EngineOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewEngine error = %v\nwant it to contain %q", err, tt.want)
			}
			if apperr.KindOf(err) != apperr.Invalid {
				t.Errorf("kind %v, want invalid", apperr.KindOf(err))
			}
		})
	}
}

func TestDecide_Golden(t *testing.T) {
	e := engine(t)
	for _, tt := range []struct {
		input string
		gate  Gate
		allow bool
	}{
		{"pre-deploy-good.json", GatePreDeploy, true},
		{"pre-deploy-bad.json", GatePreDeploy, false},
		{"admission-privileged.json", GateAdmission, false},
	} {
		t.Run(tt.input, func(t *testing.T) {
			d, err := e.Decide(t.Context(), tt.gate, Input{Subject: "test", Environment: "production", Document: readInput(t, tt.input)}, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow {
				t.Errorf("allow = %v, want %v: %s", d.Allow, tt.allow, d.Message())
			}
			for _, v := range d.Deny {
				if v.Fix == "" || v.Message == "" || v.Title == "" {
					t.Errorf("denial without message, title or fix: %+v", v)
				}
			}
			d.Revision, d.DurationMS = "REVISION", 0
			got, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "decisions", strings.TrimSuffix(tt.input, ".json")+".golden")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)+"\n"); diff != "" {
				t.Errorf("decision differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// modeBundle has one policy that denies every pull, and mode rules.
func modeBundle(rules string) *Bundle {
	return bundle("repo", map[string]string{
		"p.rego": `package rampart.gates.image.always

metadata := {"id": "ACME-1", "title": "Always", "remediation": "Do not pull.", "mode": "warn"}

deny contains {"message": "pulled", "image": input.image.reference, "ids": ["CVE-2026-1"]} if input.action == "pull"
`,
		"policy.yaml": rules,
	})
}

func pull(ref string) []byte {
	return []byte(`{"action": "pull", "image": {"reference": "` + ref + `", "digest": "sha256:00", "config": {"user": "1000"}, "scan": {"status": "scanned"}, "signatures": [{"key": "rampart", "verified": true}]}}`)
}

func where(d Decision) map[string][]string {
	out := map[string][]string{}
	for k, vs := range map[string][]Violation{"deny": d.Deny, "warn": d.Warnings, "audit": d.Audited, "excepted": d.Excepted, "expired": d.Expired} {
		for _, v := range vs {
			out[k] = append(out[k], v.Policy)
		}
	}
	return out
}

func TestDecide_ModesPerPolicyAndEnvironment(t *testing.T) {
	e := engine(t, modeBundle(`modes:
  - policy: ACME-*
    environment: prod*
    mode: enforce
  - policy: ACME-1
    environment: dev
    mode: audit
`))
	tests := []struct {
		env  string
		want map[string][]string
	}{
		{"", map[string][]string{"warn": {"ACME-1"}}}, // the policy's own default
		{"production", map[string][]string{"deny": {"ACME-1"}}},
		{"dev", map[string][]string{"audit": {"ACME-1"}}},
		{"staging", map[string][]string{"warn": {"ACME-1"}}},
	}
	for _, tt := range tests {
		t.Run("env="+tt.env, func(t *testing.T) {
			d, err := e.Decide(t.Context(), GateImage, Input{Environment: tt.env, Document: pull("rampart.example:8443/acme/web@sha256:00")}, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, where(d)); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if d.Allow != (tt.want["deny"] == nil) {
				t.Errorf("allow = %v", d.Allow)
			}
		})
	}
	if m := e.ModeOf(Policy{ID: "ACME-1", Mode: ModeWarn}, "prod-eu"); m != ModeEnforce {
		t.Errorf("ModeOf(prod-eu) = %s", m)
	}
}

func TestDecide_Exceptions(t *testing.T) {
	e := engine(t, modeBundle("modes:\n  - policy: ACME-1\n    mode: enforce\n"))
	date := func(s string) exception.Date { d, _ := exception.ParseDate(s); return d }
	tests := []struct {
		name string
		exc  exception.Exception
		env  string
		want map[string][]string
	}{
		{"none matches", exception.Exception{ID: "ACME-2", Reason: "r"}, "", map[string][]string{"deny": {"ACME-1"}}},
		{"by policy id", exception.Exception{ID: "ACME-1", Reason: "r"}, "", map[string][]string{"excepted": {"ACME-1"}}},
		{"by advisory id the violation names", exception.Exception{ID: "cve-2026-1", Reason: "r", Expires: date("2026-12-01")}, "", map[string][]string{"excepted": {"ACME-1"}}},
		{"image scope", exception.Exception{ID: "ACME-1", Image: "rampart.example:8443/acme/*", Reason: "r"}, "", map[string][]string{"excepted": {"ACME-1"}}},
		{"other image", exception.Exception{ID: "ACME-1", Image: "rampart.example:8443/other/*", Reason: "r"}, "", map[string][]string{"deny": {"ACME-1"}}},
		{"environment scope", exception.Exception{ID: "ACME-1", Environment: "staging", Reason: "r"}, "staging", map[string][]string{"excepted": {"ACME-1"}}},
		{"environment scope elsewhere", exception.Exception{ID: "ACME-1", Environment: "staging", Reason: "r"}, "production", map[string][]string{"deny": {"ACME-1"}}},
		{"expired: denies and is reported", exception.Exception{ID: "ACME-1", Reason: "r", Expires: date("2026-11-24")}, "", map[string][]string{"deny": {"ACME-1"}, "expired": {"ACME-1"}}},
		{"expires today: still applies", exception.Exception{ID: "ACME-1", Reason: "r", Expires: date("2026-11-25")}, "", map[string][]string{"excepted": {"ACME-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.exc.Source = "test"
			d, err := e.Decide(t.Context(), GateImage, Input{Environment: tt.env, Document: pull("rampart.example:8443/acme/web@sha256:00")},
				[]exception.Exception{tt.exc}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, where(d)); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if len(d.Expired) > 0 && !strings.Contains(d.Message(), "expired on 2026-11-24 and no longer applies") {
				t.Errorf("message does not report the expired exception:\n%s", d.Message())
			}
		})
	}
}

// TestDecide_BundleExceptions: exceptions.yaml in a bundle is honoured
// like any other exception.
func TestDecide_BundleExceptions(t *testing.T) {
	b := modeBundle("modes:\n  - policy: ACME-1\n    mode: enforce\n")
	b.Files["exceptions.yaml"] = []byte("exceptions:\n  - id: ACME-1\n    image: rampart.example:8443/acme/web\n    reason: vendor image, reviewed\n    owner: sec\n    expires: 2027-01-31\n")
	e := engine(t, b)
	d, err := e.Decide(t.Context(), GateImage, Input{Document: pull("rampart.example:8443/acme/web:2@sha256:00")}, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || len(d.Excepted) != 1 || d.Excepted[0].Exception.Where() != "repo:exceptions.yaml:2" {
		t.Errorf("decision = %+v", d)
	}
}

// TestDecide_FailsClosed: a policy that errors, or does not finish in
// time, denies under enforce and warns under warn; the error is
// reported.
func TestDecide_FailsClosed(t *testing.T) {
	broken := func(mode string) *Bundle {
		return bundle("repo", map[string]string{
			"p.rego": `package rampart.gates.image.broken

metadata := {"id": "ACME-9", "title": "Broken", "remediation": "r", "mode": "` + mode + `"}

deny contains "never" if to_number(input.image.reference) > 0
`,
		})
	}
	slow := bundle("repo", map[string]string{
		"p.rego": `package rampart.gates.image.slow

metadata := {"id": "ACME-8", "title": "Slow", "remediation": "r"}

deny contains "done" if count([x | some x in numbers.range(1, 100000000); x < 0]) > 0
`,
	})
	tests := []struct {
		name    string
		b       *Bundle
		timeout time.Duration
		allow   bool
		errText string
	}{
		{"runtime error under enforce", broken("enforce"), 0, false, "to_number"},
		{"runtime error under warn", broken("warn"), 0, true, "to_number"},
		{"timeout", slow, 50 * time.Millisecond, false, "evaluation timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(t.Context(), []*Bundle{builtin(t), tt.b}, EngineOptions{Timeout: tt.timeout, Settings: testSettings})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			d, err := e.Decide(t.Context(), GateImage, Input{Document: pull("rampart.example:8443/acme/web@sha256:00")}, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if tt.timeout > 0 && time.Since(start) > 5*time.Second {
				t.Errorf("the timeout did not stop the evaluation: %s", time.Since(start))
			}
			if d.Allow != tt.allow {
				t.Errorf("allow = %v, want %v", d.Allow, tt.allow)
			}
			if len(d.Errors) == 0 || !strings.Contains(d.Errors[0].Message, tt.errText) {
				t.Errorf("errors = %+v, want one mentioning %q", d.Errors, tt.errText)
			}
			if !tt.allow && !strings.Contains(d.Message(), "fails closed") {
				t.Errorf("message does not say the gate failed closed:\n%s", d.Message())
			}
		})
	}
}

// TestDecide_OneBrokenPolicyCostsOnlyItsOwnResult: when one policy fails,
// the others still decide.
func TestDecide_OneBrokenPolicyCostsOnlyItsOwnResult(t *testing.T) {
	b := bundle("repo", map[string]string{
		"p.rego": `package rampart.gates.image.broken

metadata := {"id": "ACME-9", "title": "Broken", "remediation": "r", "mode": "audit"}

deny contains "never" if to_number("x") > 0
`,
	})
	e := engine(t, b)
	doc := pull("docker.io/library/nginx:latest")
	d, err := e.Decide(t.Context(), GateImage, Input{Document: doc}, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	// The library's quarantine policy still runs: the image is scanned, so
	// nothing denies; the audit-mode error is recorded, not enforced.
	if !d.Allow || len(d.Errors) != 1 || d.Errors[0].Policy != "ACME-9" || len(d.Audited) != 1 {
		t.Errorf("decision = allow %v, errors %+v, audited %+v", d.Allow, d.Errors, d.Audited)
	}
}

func TestDecide_BadInput(t *testing.T) {
	e := engine(t)
	tests := []struct {
		name string
		gate Gate
		doc  any
		kind apperr.Kind
		want string
	}{
		{"no input", GatePreDeploy, nil, apperr.Invalid, "no input document"},
		{"not JSON", GatePreDeploy, []byte(`{"release": `), apperr.Invalid, "empty or truncated JSON"},
		{"bad JSON", GatePreDeploy, []byte(`{"release" 1}`), apperr.Invalid, "not valid JSON"},
		{"array", GatePreDeploy, []byte(`[1, 2]`), apperr.Invalid, "must be a JSON object"},
		{"two values", GatePreDeploy, []byte(`{} {}`), apperr.Invalid, "more than one JSON value"},
		{"missing fields", GatePreDeploy, []byte(`{"release": {"name": "web"}}`), apperr.Invalid, "at /: missing properties 'environment', 'images'"},
		{"wrong type", GatePreDeploy, []byte(`{"release": {"name": "web"}, "environment": {"name": "prod"}, "images": [{"reference": 7, "digest": ""}]}`),
			apperr.Invalid, "at /images/0/reference: got number, want string"},
		{"bad enum", GateImage, []byte(`{"action": "delete", "image": {"reference": "a", "digest": ""}}`), apperr.Invalid, "at /action: value must be one of"},
		{"too large", GatePreDeploy, append([]byte(`{"x": "`), bytes.Repeat([]byte("a"), MaxInput)...), apperr.TooLarge, "over the 4194304-byte limit"},
		{"unknown gate", Gate("deploy"), []byte(`{}`), apperr.Invalid, `unknown gate "deploy"`},
		{"not an AdmissionReview", GateAdmission, []byte(`{"apiVersion": "v1", "kind": "Pod"}`), apperr.Invalid, "at /apiVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Decide(t.Context(), tt.gate, Input{Document: tt.doc}, nil, testNow)
			if err == nil || apperr.KindOf(err) != tt.kind || !strings.Contains(apperr.Message(err), tt.want) {
				t.Fatalf("err = %v (%v), want %v containing %q", err, apperr.KindOf(err), tt.kind, tt.want)
			}
		})
	}
}

// TestDecide_InputDigestIsCanonical: the same document written
// differently has the same digest; another document has another.
func TestDecide_InputDigestIsCanonical(t *testing.T) {
	e := engine(t)
	a := []byte(`{"action":"push","image":{"reference":"r","digest":"sha256:00"}}`)
	b := []byte("{\n  \"image\": {\"digest\": \"sha256:00\", \"reference\": \"r\"},\n  \"action\": \"push\"\n}")
	c := []byte(`{"action":"pull","image":{"reference":"r","digest":"sha256:00"}}`)
	digest := func(doc []byte) string {
		d, err := e.Decide(t.Context(), GateImage, Input{Document: doc}, nil, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return d.InputDigest
	}
	if digest(a) != digest(b) || digest(a) == digest(c) || !strings.HasPrefix(digest(a), "sha256:") {
		t.Errorf("digests %s %s %s", digest(a), digest(b), digest(c))
	}
}

func FuzzDecide(f *testing.F) {
	e := engine(f)
	for _, name := range []string{"pre-deploy-good.json", "pre-deploy-bad.json", "admission-privileged.json"} {
		f.Add(string(readInput(f, name)))
	}
	f.Add(`{"action": "pull", "image": {"reference": "a:b@c", "digest": "", "scan": {"status": "scanned", "vulnerabilities": [{"id": "x", "severity": "high", "fixed_version": "1"}]}}}`)
	f.Add(`{"plan": {"resource_changes": [{"address": "a.b", "type": "aws_security_group", "change": {"actions": ["create"], "after": {"ingress": [{"cidr_blocks": ["0.0.0.0/0"]}]}}}]}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		for _, g := range Gates() {
			d, err := e.Decide(context.Background(), g, Input{Document: []byte(doc)}, nil, testNow)
			if err != nil {
				if apperr.KindOf(err) == apperr.Internal {
					t.Fatalf("gate %s: unclassified error %v", g, err)
				}
				continue
			}
			if d.Allow != (len(d.Deny) == 0) || d.InputDigest == "" {
				t.Fatalf("gate %s: inconsistent decision %+v", g, d)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add(string(builtin(f).Files[ConfigFile]))
	f.Add("modes:\n  - policy: RMP-*\n    environment: prod*\n    mode: audit-only\n")
	f.Add("settings: {a: {1: 2}}\n")
	f.Add("settings: &a [*a]\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := parseConfig("policy.yaml", []byte(src))
		if err != nil {
			return
		}
		for _, r := range cfg.Modes {
			if _, err := ParseMode(string(r.Mode)); err != nil || r.Policy == "" {
				t.Fatalf("accepted a bad mode rule %+v", r)
			}
		}
		if _, err := configModule(cfg.Settings); err != nil {
			t.Fatalf("accepted settings that do not become Rego: %v", err)
		}
	})
}
