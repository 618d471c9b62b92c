package iac_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/iac"
	"github.com/rampartsec/rampart/internal/scan/report"
)

func scanner(t testing.TB) *iac.Scanner {
	t.Helper()
	s, err := iac.SharedScanner()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// wantLines reads the lines a fixture expects findings on: the line after
// each comment line "# want".
func wantLines(data []byte) []int {
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "# want" {
			lines = append(lines, n+1)
		}
	}
	return lines
}

// fixture finds the file of a check's fixture directory named name.*.
func fixture(t *testing.T, dir, name string) (string, []byte) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, name+".*"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("want exactly one %s/%s.* fixture, found %v (%v)", dir, name, matches, err)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(matches[0]), data
}

// findingLines runs the scanner over a fixture and returns the distinct
// lines of the findings of one check.
func findingLines(t *testing.T, s *iac.Scanner, id, path string, data []byte) []int {
	t.Helper()
	if !s.Applies(path) {
		t.Fatalf("Applies(%q) = false", path)
	}
	findings, notes := s.Scan(t.Context(), path, data)
	if len(notes) > 0 {
		t.Fatalf("notes for %s: %v", path, notes)
	}
	lines := []int{}
	for _, f := range findings {
		if f.RuleID != id {
			continue
		}
		if f.Kind != report.KindMisconfiguration || f.Location.Path != path || f.Fingerprint == "" || f.Description == "" {
			t.Errorf("malformed finding %+v", f)
		}
		if !slices.Contains(lines, f.Location.StartLine) {
			lines = append(lines, f.Location.StartLine)
		}
	}
	slices.Sort(lines)
	return lines
}

// TestChecks_Fixtures runs every built-in check over its two fixtures in
// testdata/checks/<id>: fail.* must raise the check exactly on the lines
// marked "# want", pass.* must not raise it at all.
func TestChecks_Fixtures(t *testing.T) {
	s := scanner(t)
	checks := iac.Checks()
	for _, c := range checks {
		t.Run(c.ID, func(t *testing.T) {
			dir := filepath.Join("testdata", "checks", c.ID)
			path, data := fixture(t, dir, "fail")
			want := wantLines(data)
			if len(want) == 0 {
				t.Fatalf("%s marks no line with # want", path)
			}
			if got := findingLines(t, s, c.ID, path, data); !cmp.Equal(got, want) {
				t.Errorf("%s: %s on lines %v, want %v", path, c.ID, got, want)
			}
			path, data = fixture(t, dir, "pass")
			if got := findingLines(t, s, c.ID, path, data); len(got) > 0 {
				t.Errorf("%s: %s on lines %v, want none", path, c.ID, got)
			}
		})
	}
	// Every fixture directory belongs to a check.
	dirs, err := os.ReadDir(filepath.Join("testdata", "checks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !slices.ContainsFunc(checks, func(c iac.CheckInfo) bool { return c.ID == d.Name() }) {
			t.Errorf("testdata/checks/%s matches no built-in check", d.Name())
		}
	}
}

// TestChecks_Metadata: the built-in checks are many, cover the three
// kinds, and each can be shown to a user as it is.
func TestChecks_Metadata(t *testing.T) {
	checks := iac.Checks()
	if len(checks) < 40 {
		t.Errorf("%d built-in checks, want at least 40", len(checks))
	}
	perKind := map[iac.InputKind]int{}
	prefix := map[iac.InputKind]string{iac.KindKubernetes: "RMP-K8S-", iac.KindTerraform: "RMP-TF-", iac.KindDockerfile: "RMP-DF-"}
	for _, c := range checks {
		perKind[c.Kind]++
		if !strings.HasPrefix(c.ID, prefix[c.Kind]) {
			t.Errorf("%s: id does not start with %s", c.ID, prefix[c.Kind])
		}
		if c.Severity < report.SeverityLow || c.Title == "" || !strings.HasSuffix(c.Remediation, ".") || !c.BuiltIn {
			t.Errorf("%s: incomplete metadata %+v", c.ID, c)
		}
	}
	for kind, n := range perKind {
		if n < 10 {
			t.Errorf("%d %s checks, want at least 10", n, kind)
		}
	}
	if len(perKind) != 3 {
		t.Errorf("checks for kinds %v, want dockerfile, kubernetes and terraform", perKind)
	}
}
