package registry_test

import (
	"encoding/json"
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
	var rep struct {
		Counts map[string]int `json:"counts"`
	}
	if b, rerr := os.ReadFile(filepath.Join(results, "results.json")); rerr == nil {
		_ = json.Unmarshal(b, &rep)
	}
	t.Logf("conformance counts: %v", rep.Counts)
	if err != nil {
		t.Fatalf("conformance suite failed: %v\n%s", err, tail(out, 20000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
