package registry_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/testenv"
)

// layerTar writes a tar layer holding files (path → content).
func layerTar(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg,
			ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// home is a client's home directory, where logins are stored.
type home struct{ dir string }

func newHome(t *testing.T) home { return home{dir: t.TempDir()} }

func (h home) env() []string {
	return []string{"HOME=" + h.dir, "DOCKER_CONFIG=" + filepath.Join(h.dir, ".docker"), "XDG_RUNTIME_DIR=" + h.dir,
		"REGISTRY_AUTH_FILE=" + filepath.Join(h.dir, "auth.json")}
}

// waitScanned waits until the scanner has decided about repo@digest.
func waitScanned(t *testing.T, w *world, repo, digest string) registry.ManifestJSON {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		r, err := w.a.OCI.Repository(t.Context(), repo)
		if err == nil {
			d, err := w.a.OCI.Detail(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range d.Manifests {
				if m.Digest == digest && m.ScanStatus != registry.ScanPending {
					return m
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s@%s was not scanned within 90s", repo, digest)
	return registry.ManifestJSON{}
}

// TestClients_LoginPushPull logs in with crane, oras and skopeo using
// Rampart tokens, pushes and pulls, and checks what each role may do.
func TestClients_LoginPushPull(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	oras := tool(t, "oras", orasVersion)
	skopeo := testenv.LookPath(t, "skopeo")
	w := newWorld(t)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	reader := w.member(t, o, "viewer", authz.Reader)
	outsider := w.member(t, o, "outsider", authz.NoRole)
	ref := w.host + "/acme/app:v1"

	devHome := newHome(t)
	mustRun(t, devHome.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	layer := layerTar(t, map[string]string{"app/README": "hello from rampart\n"})
	mustRun(t, devHome.env(), crane, "append", "--insecure", "-f", layer, "-t", ref)
	digest := strings.TrimSpace(mustRun(t, devHome.env(), crane, "digest", "--insecure", ref))
	if m := waitScanned(t, w, "acme/app", digest); m.ScanStatus != registry.ScanPassed {
		t.Fatalf("clean image scan = %s (%s), want passed", m.ScanStatus, m.ScanReason)
	}
	pulled := filepath.Join(t.TempDir(), "img.tar")
	mustRun(t, devHome.env(), crane, "pull", "--insecure", ref, pulled)
	if fi, err := os.Stat(pulled); err != nil || fi.Size() == 0 {
		t.Fatalf("crane pull wrote nothing: %v", err)
	}

	t.Run("reader pulls but cannot push", func(t *testing.T) {
		h := newHome(t)
		mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "viewer", "-p", reader)
		mustRun(t, h.env(), crane, "manifest", "--insecure", ref)
		out, err := run(t, h.env(), crane, "append", "--insecure", "-f", layer, "-t", w.host+"/acme/app:by-reader")
		if err == nil || !strings.Contains(out, "UNAUTHORIZED") && !strings.Contains(out, "DENIED") {
			t.Fatalf("push as reader: err %v, output %s", err, out)
		}
	})
	t.Run("outsider and anonymous cannot pull a private repository", func(t *testing.T) {
		h := newHome(t)
		mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "outsider", "-p", outsider)
		if out, err := run(t, h.env(), crane, "manifest", "--insecure", ref); err == nil {
			t.Fatalf("outsider pulled a private image: %s", out)
		}
		if out, err := run(t, newHome(t).env(), crane, "manifest", "--insecure", ref); err == nil {
			t.Fatalf("anonymous pulled a private image: %s", out)
		}
	})
	t.Run("a wrong password is refused at login", func(t *testing.T) {
		out, err := run(t, newHome(t).env(), skopeo, "login", "--tls-verify=false", "-u", "dev", "-p", "rpt_wrong", w.host)
		if err == nil {
			t.Fatalf("skopeo login with a bad token succeeded: %s", out)
		}
	})
	t.Run("anonymous pull of a public repository", func(t *testing.T) {
		w.configure(t, "acme/app", registry.RepositorySettings{Public: ptr(true)})
		defer w.configure(t, "acme/app", registry.RepositorySettings{Public: ptr(false)})
		mustRun(t, newHome(t).env(), crane, "manifest", "--insecure", ref)
	})
	t.Run("skopeo copies between tags", func(t *testing.T) {
		h := newHome(t)
		mustRun(t, h.env(), skopeo, "login", "--tls-verify=false", "-u", "dev", "-p", dev, w.host)
		mustRun(t, h.env(), skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://"+ref, "docker://"+w.host+"/acme/app:v2")
		dir := filepath.Join(t.TempDir(), "out")
		mustRun(t, h.env(), skopeo, "copy", "--src-tls-verify=false", "docker://"+w.host+"/acme/app:v2", "dir:"+dir)
		if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
			t.Fatalf("skopeo copy to dir: %v", err)
		}
	})
	t.Run("oras pushes and pulls an artifact", func(t *testing.T) {
		h := newHome(t)
		cfg := filepath.Join(h.dir, "oras.json")
		mustRun(t, h.env(), oras, "login", "--plain-http", "--registry-config", cfg, "-u", "dev", "-p", dev, w.host)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("release notes\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runIn(t, dir, h.env(), oras, "push", "--plain-http", "--registry-config", cfg, w.host+"/acme/files:v1",
			"--artifact-type", "application/vnd.example.notes", "notes.txt:text/plain")
		must(t, out, err)
		// An artifact is not an image: it is not quarantined.
		pullDir := t.TempDir()
		mustRunIn(t, pullDir, h.env(), oras, "pull", "--plain-http", "--registry-config", cfg, w.host+"/acme/files:v1")
		b, err := os.ReadFile(filepath.Join(pullDir, "notes.txt"))
		if err != nil || string(b) != "release notes\n" {
			t.Fatalf("oras pull: %q, %v", b, err)
		}
	})
	t.Run("oras attaches an SBOM and provenance as referrers", func(t *testing.T) {
		h := newHome(t)
		cfg := filepath.Join(h.dir, "oras.json")
		mustRun(t, h.env(), oras, "login", "--plain-http", "--registry-config", cfg, "-u", "dev", "-p", dev, w.host)
		dir := t.TempDir()
		files := map[string]string{"sbom.spdx.json": `{"spdxVersion":"SPDX-2.3"}`, "provenance.json": `{"_type":"https://in-toto.io/Statement/v1"}`}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		subject := w.host + "/acme/app@" + digest
		mustRunIn(t, dir, h.env(), oras, "attach", "--plain-http", "--registry-config", cfg, "--artifact-type", "application/spdx+json",
			subject, "sbom.spdx.json:application/spdx+json")
		mustRunIn(t, dir, h.env(), oras, "attach", "--plain-http", "--registry-config", cfg, "--artifact-type", "application/vnd.in-toto+json",
			subject, "provenance.json:application/vnd.in-toto+json")
		out := mustRun(t, h.env(), oras, "discover", "--plain-http", "--registry-config", cfg, "--format", "json", subject)
		for _, at := range []string{"application/spdx+json", "application/vnd.in-toto+json", registry.ArtifactScanReport, registry.ArtifactSBOM} {
			if !strings.Contains(out, `"`+at+`"`) {
				t.Errorf("oras discover does not list a %s referrer:\n%s", at, out)
			}
		}
		// The attached provenance can be pulled back (artifacts are never
		// quarantined).
		pullDir := t.TempDir()
		var refs struct {
			Referrers []struct {
				Digest       string `json:"digest"`
				ArtifactType string `json:"artifactType"`
			} `json:"referrers"`
		}
		if err := json.Unmarshal([]byte(out), &refs); err != nil {
			t.Fatalf("oras discover output: %v\n%s", err, out)
		}
		for _, r := range refs.Referrers {
			if r.ArtifactType == "application/vnd.in-toto+json" {
				mustRunIn(t, pullDir, h.env(), oras, "pull", "--plain-http", "--registry-config", cfg, w.host+"/acme/app@"+r.Digest)
			}
		}
		if b, err := os.ReadFile(filepath.Join(pullDir, "provenance.json")); err != nil || string(b) != files["provenance.json"] {
			t.Fatalf("pulled provenance: %q, %v", b, err)
		}
	})
	t.Run("a robot account (service account token) pushes with skopeo", func(t *testing.T) {
		bot, err := w.a.IDs.CreateServiceAccount(t.Context(), o, "ci", "CI pushes", authz.Developer)
		if err != nil {
			t.Fatal(err)
		}
		raw, _, err := w.a.IDs.CreateToken(t.Context(), bot.ID, identity.NewToken{Name: "push",
			Scopes: []authz.Scope{authz.ScopeRegistryPull, authz.ScopeRegistryPush}})
		if err != nil {
			t.Fatal(err)
		}
		h := newHome(t)
		mustRun(t, h.env(), skopeo, "login", "--tls-verify=false", "-u", bot.Username, "-p", raw, w.host)
		mustRun(t, h.env(), skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://"+ref, "docker://"+w.host+"/acme/app:by-robot")
		if got := strings.TrimSpace(mustRun(t, devHome.env(), crane, "digest", "--insecure", w.host+"/acme/app:by-robot")); got != digest {
			t.Fatalf("robot's tag points at %s, want %s", got, digest)
		}
	})
	t.Run("the token endpoint grants only what authz allows", func(t *testing.T) {
		req, _ := http.NewRequest("GET", w.a.URL+"/v2/token?service="+strings.TrimPrefix(w.a.URL, "http://")+
			"&scope=repository:acme/app:pull,push,delete", nil)
		req.SetBasicAuth("viewer", reader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr registry.TokenResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
			t.Fatalf("token: %d %v", resp.StatusCode, err)
		}
		parts := strings.Split(tr.Token, ".")
		if len(parts) != 3 {
			t.Fatalf("token %q is not a JWS", tr.Token)
		}
		payload, _ := decodeSegment(parts[1])
		if !strings.Contains(payload, `"actions":["pull"]`) {
			t.Fatalf("reader's token grants more than pull: %s", payload)
		}
	})
}
