package registry_test

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/registry"
)

// TestConformance runs the OCI distribution-spec conformance suite (every
// API and data group on, spec 1.1) against Rampart, authenticating through
// the token endpoint with the admin's token. All checks must pass.
func TestConformance(t *testing.T) {
	bin := tool(t, "conformance", conformanceVersion)
	w := newWorld(t)
	w.org(t, "conformance")
	// The suite pulls what it has just pushed: quarantine is off for its
	// repositories (the scanner still scans every image).
	for _, r := range []string{"conformance/repo1", "conformance/repo2"} {
		w.configure(t, r, registry.RepositorySettings{Quarantine: ptr(false)})
	}
	results := t.TempDir()
	out, err := run(t, []string{
		"OCI_REGISTRY=" + w.host, "OCI_TLS=disabled", "OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_VERSION=1.1", "OCI_USERNAME=admin", "OCI_PASSWORD=" + w.admin, "OCI_RESULTS_DIR=" + results, "OCI_LOG=error",
	}, bin)
	if err != nil {
		t.Fatalf("conformance suite failed: %v\n%s", err, tail(out, 20000))
	}
	tests, failed, disabled := junitCounts(t, filepath.Join(results, "junit.xml"))
	passed := tests - failed - disabled
	t.Logf("conformance: %d passed, %d failed, %d disabled", passed, failed, disabled)
	// The suite counts a check per request it makes; with every default
	// group on it makes at least 852 of them.
	if failed != 0 || passed < 852 {
		t.Fatalf("conformance: %d passed, %d failed; want at least 852 passed and none failed\n%s", passed, failed, tail(out, 20000))
	}
}

// junitCounts reads the totals of the suite's JUnit report.
func junitCounts(t *testing.T, path string) (tests, failures, disabled int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the suite wrote no report: %v", err)
	}
	var r struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Disabled int `xml:"disabled,attr"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return r.Tests, r.Failures + r.Errors, r.Disabled
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
