package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/scan/report"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

func goldenReport() *report.Report {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return &report.Report{
		Target: "/src/app", TargetKind: "dir", StartedAt: t0, FinishedAt: t0.Add(1200 * time.Millisecond),
		Stats: report.Stats{Files: 1234, Bytes: 5 << 20},
		Findings: []report.Finding{
			{Kind: report.KindSecret, RuleID: "aws-access-key-id", Title: "AWS access key ID", Severity: report.SeverityCritical,
				Location:    report.Location{Path: "config/prod.env", StartLine: 3, Commit: "0123456789abcdef", Author: "Alice"},
				Fingerprint: "fp1", Secret: &report.Secret{Redacted: "AKIA…"}},
			{Kind: report.KindVulnerability, RuleID: "GO-2024-2687", Title: "HTTP/2 CONTINUATION flood", Severity: report.SeverityHigh,
				Location: report.Location{Path: "go.mod"}, Fingerprint: "fp2",
				Vuln: &report.Vulnerability{ID: "GO-2024-2687", Package: report.Package{Name: "golang.org/x/net", Version: "0.22.0"}, FixedVersion: "0.23.0"}},
			{Kind: report.KindMisconfiguration, RuleID: "RMP-K8S-001", Title: "Privileged container", Severity: report.SeverityHigh,
				Description: `container "web" runs privileged`, Location: report.Location{Path: "deploy/app.yaml", StartLine: 21}, Fingerprint: "fp3"},
			{Kind: report.KindSecret, RuleID: "generic-api-key", Title: "Generic API key", Severity: report.SeverityMedium,
				Location: report.Location{Path: "app.tar/etc/app.conf", StartLine: 1, Layer: "sha256:0123456789abcdef0123"}, Fingerprint: "fp4",
				Secret: &report.Secret{Redacted: "k3y…"}},
			{Kind: report.KindMisconfiguration, RuleID: "RMP-DF-002", Title: "Runs as root", Severity: report.SeverityMedium,
				Location: report.Location{Path: "Dockerfile", StartLine: 1}, Fingerprint: "fp5", Suppressed: &report.Suppressed{Reason: "build image only"}},
		},
		Packages: []report.Package{{Name: "golang.org/x/net", Version: "0.22.0", Ecosystem: "Go"}},
		Notes:    []report.Note{{Path: "big.bin", Message: "skipped: larger than 10 MiB"}, {Message: "no advisory database"}},
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run Golden -update to accept):\n%s", p, got)
	}
}

func TestScanOutput_Golden(t *testing.T) {
	var table, colored, js bytes.Buffer
	writeTable(&table, goldenReport(), false, 1200*time.Millisecond)
	checkGolden(t, "scan-table.golden", table.Bytes())
	writeTable(&colored, goldenReport(), true, 1200*time.Millisecond)
	checkGolden(t, "scan-table-color.golden", colored.Bytes())
	if err := writeJSON(&js, goldenReport()); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "scan-report.json.golden", js.Bytes())
}
