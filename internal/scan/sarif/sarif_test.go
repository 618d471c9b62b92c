package sarif_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/sarif"
	"github.com/rampartsec/rampart/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleReport has one finding of each kind, a suppressed one, and a note.
func sampleReport() *report.Report {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return &report.Report{
		Target: "/src/app", TargetKind: "dir", StartedAt: t0, FinishedAt: t0.Add(1500 * time.Millisecond),
		Findings: []report.Finding{
			{Kind: report.KindSecret, RuleID: "aws-access-key-id", Title: "AWS access key ID", Severity: report.SeverityCritical,
				Location:    report.Location{Path: "config/prod.env", StartLine: 3, StartCol: 19, EndLine: 3, EndCol: 39, Commit: "0123abcd", Author: "Alice"},
				Fingerprint: "fp-secret", Secret: &report.Secret{Redacted: "AKIA…"}},
			{Kind: report.KindVulnerability, RuleID: "GO-2024-2687", Title: "HTTP/2 CONTINUATION flood in net/http", Severity: report.SeverityHigh,
				Location: report.Location{Path: "go.mod"}, Fingerprint: "fp-vuln",
				Vuln: &report.Vulnerability{ID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"},
					Package: report.Package{Name: "golang.org/x/net", Version: "v0.22.0", Ecosystem: "Go"}, FixedVersion: "v0.23.0", CVSSScore: 7.5}},
			{Kind: report.KindMisconfiguration, RuleID: "RMP-K8S-001", Title: "Privileged container", Severity: report.SeverityHigh,
				Description: "container \"web\" runs privileged", Remediation: "Set securityContext.privileged to false.",
				Location: report.Location{Path: "deploy/app with space.yaml", StartLine: 21}, Fingerprint: "fp-iac"},
			{Kind: report.KindMisconfiguration, RuleID: "RMP-DF-002", Title: "Image runs as root", Severity: report.SeverityMedium,
				Location: report.Location{Path: "Dockerfile", StartLine: 1}, Fingerprint: "fp-df",
				Suppressed: &report.Suppressed{Reason: "build image only"}},
		},
		Notes: []report.Note{{Path: "vendor/big.bin", Message: "skipped: larger than 10 MiB"}},
	}
}

func TestWrite_GoldenAndSchema(t *testing.T) {
	var buf bytes.Buffer
	if err := sarif.Write(&buf, sampleReport(), sarif.Tool{Name: "Rampart", Version: "1.0.0", InformationURI: "https://rampart.example/docs"}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.sarif")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("SARIF differs from %s (run with -update if intended):\n%s", golden, buf.String())
	}
	validate(t, buf.Bytes())
	if strings.Contains(buf.String(), "AKIAIOSFODNN7EXAMPLE") {
		t.Error("a secret reached the SARIF output")
	}
}

func TestWrite_EmptyReportIsValid(t *testing.T) {
	var buf bytes.Buffer
	if err := sarif.Write(&buf, &report.Report{Target: "x"}, sarif.Tool{Name: "Rampart"}); err != nil {
		t.Fatal(err)
	}
	validate(t, buf.Bytes())
}

// validate checks doc against the official SARIF 2.1.0 JSON schema.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	if err := schemaCheck(t, doc); err != nil {
		t.Fatalf("SARIF fails the schema: %v", err)
	}
}

func TestSchemaCheckRejectsInvalidSARIF(t *testing.T) {
	var buf bytes.Buffer
	if err := sarif.Write(&buf, sampleReport(), sarif.Tool{Name: "Rampart"}); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(buf.Bytes(), []byte(`"level": "error"`), []byte(`"level": "fatal"`), 1)
	if schemaCheck(t, bad) == nil {
		t.Fatal("the schema check accepted a result level SARIF does not define")
	}
}

// schemaCheck validates doc against the official SARIF 2.1.0 JSON schema,
// read from a Go module that ships it (never copied into this repository).
func schemaCheck(t *testing.T, doc []byte) error {
	t.Helper()
	dir := testenv.GoModule(t, "github.com/owenrumney/go-sarif/v3", "v3.3.1")
	src, err := os.ReadFile(filepath.Join(dir, "pkg/report/v210/sarif/schema.go"))
	if err != nil {
		t.Fatal(err)
	}
	start, end := bytes.IndexByte(src, '`'), bytes.LastIndexByte(src, '`')
	if start < 0 || end <= start {
		t.Fatal("no schema literal in go-sarif's schema.go")
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src[start+1 : end]))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif-schema-2.1.0.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	return sch.Validate(v)
}
