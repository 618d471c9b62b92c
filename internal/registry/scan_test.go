package registry_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/registry"
)

// A planted secret of a common format (an AWS key pair).
const plantedSecret = "aws_access_key_id = AKIAZ7Q4N3X2WRAMPART\naws_secret_access_key = 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\n"

// packageLock is an npm lockfile naming one package.
const packageLock = `{"name":"app","version":"1.0.0","lockfileVersion":3,"requires":true,
"packages":{"":{"name":"app","version":"1.0.0","dependencies":{"rampart-demo-pkg":"1.0.0"}},
"node_modules/rampart-demo-pkg":{"version":"1.0.0","resolved":"https://registry.npmjs.org/rampart-demo-pkg/-/rampart-demo-pkg-1.0.0.tgz"}}}`

// advisory is an OSV record: a critical vulnerability fixed in 1.0.1.
const advisoryJSON = `{"id":"GHSA-rmpt-demo-0001","modified":"2026-01-01T00:00:00Z","published":"2026-01-01T00:00:00Z",
"summary":"Remote code execution in rampart-demo-pkg","aliases":["CVE-2026-99999"],
"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
"affected":[{"package":{"ecosystem":"npm","name":"rampart-demo-pkg"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.1"}]}]}]}`

// TestScanOnPush_QuarantinesSecrets pushes an image with a secret in a
// layer: it is scanned, quarantined with the reason, and its report and
// SBOM are attached as referrers.
func TestScanOnPush_QuarantinesSecrets(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	w := newWorld(t)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	ref := w.host + "/acme/leaky:v1"
	mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"root/.aws/credentials": plantedSecret}), "-t", ref)
	digest := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", ref))
	m := waitScanned(t, w, "acme/leaky", digest)
	// The policy engine's image gate decided, and says which policy.
	if m.ScanStatus != registry.ScanQuarantined || !strings.Contains(m.ScanReason, "RMP-IMG-003") || !strings.Contains(m.ScanReason, "secret") {
		t.Fatalf("scan = %s (%q), want quarantined for a secret by RMP-IMG-003", m.ScanStatus, m.ScanReason)
	}
	out, err := run(t, h.env(), crane, "pull", "--insecure", ref, filepath.Join(t.TempDir(), "x.tar"))
	if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "RMP-IMG-003") {
		t.Fatalf("pull of a quarantined image: err %v, output %s", err, out)
	}
	// The report and SBOM hang off the image.
	res := w.a.Client(t, w.admin).Do("GET", "/v2/acme/leaky/referrers/"+digest, nil)
	var idx struct {
		Manifests []registry.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(res.Body, &idx); err != nil || res.Status != 200 {
		t.Fatalf("referrers: %d %s", res.Status, res.Body)
	}
	types := map[string]bool{}
	for _, d := range idx.Manifests {
		types[d.ArtifactType] = true
	}
	if !types[registry.ArtifactScanReport] || !types[registry.ArtifactSBOM] {
		t.Fatalf("referrers = %+v, want a scan report and an SBOM", idx.Manifests)
	}
	rep := w.a.Client(t, dev).Must(200, "GET", "/api/v1/orgs/acme/registry/repositories/leaky/manifests/"+digest+"/report", nil)
	if !strings.Contains(string(rep.Body), "aws") || strings.Contains(string(rep.Body), "9dK3mQ7vLx2pR8sT4wY6zB1nC5fH0jG3kE7uA2qW") {
		t.Fatalf("report does not name the secret, or shows it whole: %s", rep.Body)
	}
	found := false
	for _, e := range w.a.AuditSince(t, 0) {
		if e.Action == "registry.image.scan" && e.Outcome == audit.Failure {
			found = true
		}
	}
	if !found {
		t.Error("the quarantine decision is not in the audit log")
	}
}

// TestScanOnPush_RescanOnAdvisoryChange pushes an image with an npm
// lockfile; it passes, then an advisory arrives for its package and the
// image is rescanned and quarantined for a fixable critical vulnerability.
func TestScanOnPush_RescanOnAdvisoryChange(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	clock := apptest.NewClock(time.Now())
	w := newWorld(t, apptest.WithClock(clock.Now))
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	ref := w.host + "/acme/web:v1"
	mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"app/package-lock.json": packageLock}), "-t", ref)
	digest := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", ref))
	if m := waitScanned(t, w, "acme/web", digest); m.ScanStatus != registry.ScanPassed || m.Summary == nil || m.Summary.Packages == 0 {
		t.Fatalf("before the advisory: %+v, want passed with the package inventoried", m)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "GHSA-rmpt-demo-0001.json"), []byte(advisoryJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.a.Advisories.Import(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute) // the worker looks for a new database every minute
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r, _ := w.a.OCI.Repository(t.Context(), "acme/web")
		d, err := w.a.OCI.Detail(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range d.Manifests {
			if m.Digest == digest && m.ScanStatus == registry.ScanQuarantined {
				if !strings.Contains(m.ScanReason, "GHSA-rmpt-demo-0001") || !strings.Contains(m.ScanReason, "1.0.1") {
					t.Fatalf("reason %q does not name the advisory and the fix", m.ScanReason)
				}
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the image was not rescanned and quarantined after the advisory arrived")
}
