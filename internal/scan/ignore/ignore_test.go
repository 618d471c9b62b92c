package ignore

import (
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/scan/report"
)

const sample = `# suppressions for this repository
suppressions:
  - id: RMP-K8S-004
    paths: ["deploy/dev/**"]
    reason: dev cluster only
    owner: platform-team
    expires: 2027-03-31
  - id: CVE-2024-0001
    reason: not reachable, see ticket AB#12
  - fingerprint: f00d
    reason: test fixture
  - id: OLD-1
    reason: was fine once
    expires: 2026-01-01
  - paths: ["testdata/**"]
    reason: fixtures
`

func TestApply(t *testing.T) {
	f, err := Parse("ignore.yaml", strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if f.Suppressions[0].Line != 3 || f.Suppressions[3].Line != 12 {
		t.Fatalf("lines = %d, %d", f.Suppressions[0].Line, f.Suppressions[3].Line)
	}
	r := &report.Report{Findings: []report.Finding{
		{RuleID: "RMP-K8S-004", Location: report.Location{Path: "deploy/dev/app.yaml"}, Severity: report.SeverityHigh},  // suppressed by path
		{RuleID: "RMP-K8S-004", Location: report.Location{Path: "deploy/prod/app.yaml"}, Severity: report.SeverityHigh}, // path outside
		{RuleID: "GHSA-xxxx", Vuln: &report.Vulnerability{Aliases: []string{"CVE-2024-0001"}}, Severity: report.SeverityCritical},
		{RuleID: "generic-api-key", Fingerprint: "f00d", Severity: report.SeverityHigh},
		{RuleID: "OLD-1", Severity: report.SeverityMedium},                                                        // its suppression expired
		{RuleID: "anything", Location: report.Location{Path: "testdata/a/b.yaml"}, Severity: report.SeverityHigh}, // path-only entry
	}}
	f.Apply(r, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	want := []bool{true, false, true, true, false, true}
	for i, fd := range r.Findings {
		if (fd.Suppressed != nil) != want[i] {
			t.Errorf("finding %d (%s %s) suppressed = %v, want %v", i, fd.RuleID, fd.Location.Path, fd.Suppressed != nil, want[i])
		}
	}
	if r.Findings[0].Suppressed.Reason != "dev cluster only" {
		t.Errorf("reason = %q", r.Findings[0].Suppressed.Reason)
	}
	if got := r.CountAtLeast(report.SeverityHigh); got != 1 {
		t.Errorf("unsuppressed high+ = %d, want 1", got)
	}
	var expired bool
	for _, n := range r.Notes {
		if strings.Contains(n.Message, "OLD-1 expired on 2026-01-01") && n.Path == "ignore.yaml:12" {
			expired = true
		}
	}
	if !expired {
		t.Errorf("expired suppression not reported: %+v", r.Notes)
	}
}

func TestApply_ExpiresAtTheEndOfItsDay(t *testing.T) {
	f, err := Parse("x", strings.NewReader("suppressions:\n- id: A\n  reason: r\n  expires: 2026-11-25\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC), true},
		{time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), false},
	} {
		r := &report.Report{Findings: []report.Finding{{RuleID: "A"}}}
		f.Apply(r, tt.now)
		if (r.Findings[0].Suppressed != nil) != tt.want {
			t.Errorf("at %v suppressed = %v", tt.now, !tt.want)
		}
	}
}

func TestParse_Errors(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"no reason", "suppressions:\n- id: A\n", "x:2: a suppression needs a reason"},
		{"nothing to match", "suppressions:\n- reason: because\n", "needs an id, paths or a fingerprint"},
		{"unknown field", "suppressions:\n- id: A\n  reason: r\n  until: 2027-01-01\n", "field until not found"},
		{"bad date", "suppressions:\n- id: A\n  reason: r\n  expires: next week\n", "must be a date"},
		{"bad glob", "suppressions:\n- id: A\n  reason: r\n  paths: ['a/[']\n", "invalid path glob"},
		{"not yaml", "suppressions: [\n", "x:"},
		{"control chars", "suppressions:\n- id: \"A\\u0007\"\n  reason: r\n", "single lines"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x", strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoad_MissingFileIsEmpty(t *testing.T) {
	f, err := Load(t.TempDir() + "/.rampart/ignore.yaml")
	if err != nil || len(f.Suppressions) != 0 {
		t.Fatalf("Load = %+v, %v", f, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("suppressions:\n- id: A\n  reason: r\n  paths: ['**/x']\n")
	f.Add("a: &a [*a]")
	f.Fuzz(func(t *testing.T, in string) {
		file, err := Parse("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		for _, e := range file.Suppressions {
			if e.Reason == "" || (e.ID == "" && e.Fingerprint == "" && len(e.Paths) == 0) {
				t.Fatalf("accepted an entry without reason or target: %+v", e)
			}
		}
		r := &report.Report{Findings: []report.Finding{{RuleID: "A", Location: report.Location{Path: "x/y"}}}}
		file.Apply(r, time.Now())
	})
}

// Entries scoped to an image or an environment are the same exception
// object the gates use: a source scan, which knows neither, never applies
// them and does not call them stale; an image scan applies those of its
// image.
func TestApply_ScopedEntries(t *testing.T) {
	f, err := Parse("ignore.yaml", strings.NewReader(`suppressions:
  - id: CVE-2024-0001
    environment: staging
    reason: staging only
  - id: CVE-2024-0002
    image: registry.local/acme/web
    reason: the image never calls it
`))
	if err != nil {
		t.Fatal(err)
	}
	findings := func() *report.Report {
		return &report.Report{Findings: []report.Finding{
			{RuleID: "CVE-2024-0001", Severity: report.SeverityHigh},
			{RuleID: "GHSA-2", Vuln: &report.Vulnerability{ID: "GHSA-2", Aliases: []string{"CVE-2024-0002"}}, Severity: report.SeverityHigh},
		}}
	}
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	src := findings()
	f.Apply(src, now)
	if src.CountAtLeast(report.SeverityHigh) != 2 || len(src.Notes) != 0 {
		t.Errorf("source scan: %d unsuppressed, notes %+v; want 2 and no notes", src.CountAtLeast(report.SeverityHigh), src.Notes)
	}
	f.Image = "registry.local/acme/web:1.4"
	img := findings()
	f.Apply(img, now)
	if img.Findings[0].Suppressed != nil || img.Findings[1].Suppressed == nil {
		t.Errorf("image scan: suppressed = %v, %v; want only the image's entry applied", img.Findings[0].Suppressed, img.Findings[1].Suppressed)
	}
}
