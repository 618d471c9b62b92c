package registry_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs a browser in through the login form.
func signIn(t *testing.T, a *apptest.App, user, password string) *http.Client {
	t.Helper()
	b := a.Browser(t)
	get := func(p string) string {
		resp, err := b.Get(a.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	m := csrfRE.FindStringSubmatch(get("/login"))
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	resp, err := b.PostForm(a.URL+"/login", url.Values{"username": {user}, "password": {password}, "csrf_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	return b
}

// TestWeb_RepositoryPage shows a repository with its tags, images, scan
// status, findings and signatures.
func TestWeb_RepositoryPage(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	w := newWorld(t)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"root/.aws/credentials": plantedSecret}), "-t", w.host+"/acme/leaky:v1")
	digest := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", w.host+"/acme/leaky:v1"))
	waitScanned(t, w, "acme/leaky", digest)
	w.a.Client(t, dev).Must(201, "POST", "/api/v1/orgs/acme/registry/repositories/leaky/signatures", map[string]string{"digest": digest})

	b := signIn(t, w.a, "admin", apptest.AdminPassword)
	for path, want := range map[string][]string{
		"/registry":            {"acme/leaky"},
		"/registry/acme/leaky": {"v1", digest, "quarantined", "secret", "1 verified", "vnd.cyclonedx", "vnd.rampart.scan.report", "/manifests/" + digest + "/sbom"},
	} {
		resp, err := b.Get(w.a.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		for _, s := range want {
			if !strings.Contains(string(body), s) {
				t.Errorf("GET %s does not show %q", path, s)
			}
		}
	}
	// The page links the SBOM, which the signed-in browser can fetch.
	resp, err := b.Get(w.a.URL + "/api/v1/orgs/acme/registry/repositories/leaky/manifests/" + digest + "/sbom")
	if err != nil {
		t.Fatal(err)
	}
	sbom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(sbom), `"bomFormat": "CycloneDX"`) && !strings.Contains(string(sbom), `"bomFormat":"CycloneDX"`) {
		t.Fatalf("GET the SBOM = %d %.300s", resp.StatusCode, sbom)
	}
}
