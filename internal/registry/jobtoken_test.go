package registry_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/registry"
)

// jobPrincipal is what a pipeline job acts as: its trigger, with the
// registry scopes.
func jobPrincipal(t *testing.T, w *world, user string) *authn.Principal {
	t.Helper()
	u, err := w.a.IDs.UserByName(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := w.a.IDs.Subject(t.Context(), u, []authz.Scope{authz.ScopeRegistryPull, authz.ScopeRegistryPush}, "job")
	if err != nil {
		t.Fatal(err)
	}
	return &authn.Principal{User: u, Subject: sub}
}

// TestJobToken mints pipeline job tokens and uses them with crane (as a
// registry token in its Docker config, the way a job hands it over): the
// token pushes and pulls its one repository, reaches no other, and cannot
// be minted beyond what the job's principal may do.
func TestJobToken(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	w := newWorld(t)
	o := w.org(t, "acme")
	w.member(t, o, "dev", authz.Developer)
	w.member(t, o, "viewer", authz.Reader)
	devHome := newHome(t)
	devToken := w.member(t, o, "dev2", authz.Developer)
	mustRun(t, devHome.env(), crane, "auth", "login", w.host, "-u", "dev2", "-p", devToken)
	mustRun(t, devHome.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"other": "x"}), "-t", w.host+"/acme/other:v1")
	w.configure(t, "acme/other", registry.RepositorySettings{Quarantine: ptr(false)})

	// jobHome is a client whose only credential is a job token.
	jobHome := func(t *testing.T, token string) home {
		h := newHome(t)
		cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{w.host: map[string]string{"registrytoken": token}}})
		if err := os.MkdirAll(filepath.Join(h.dir, ".docker"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(h.dir, ".docker", "config.json"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		return h
	}

	push, err := w.a.OCI.MintRepositoryToken(t.Context(), jobPrincipal(t, w, "dev"), "acme/app", true, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h := jobHome(t, push)
	ref := w.host + "/acme/app:build-1"
	mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"app/bin": "built by a job\n"}), "-t", ref)
	digest := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", ref))
	waitScanned(t, w, "acme/app", digest)
	mustRun(t, h.env(), crane, "pull", "--insecure", ref, filepath.Join(t.TempDir(), "img.tar"))

	t.Run("another repository is out of reach", func(t *testing.T) {
		if out, err := run(t, h.env(), crane, "manifest", "--insecure", w.host+"/acme/other:v1"); err == nil {
			t.Fatalf("a job token for acme/app pulled acme/other: %s", out)
		}
		if out, err := run(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"x": "y"}), "-t", w.host+"/acme/other:job"); err == nil {
			t.Fatalf("a job token for acme/app pushed to acme/other: %s", out)
		}
	})
	t.Run("a pull token cannot push", func(t *testing.T) {
		pull, err := w.a.OCI.MintRepositoryToken(t.Context(), jobPrincipal(t, w, "dev"), "acme/app", false, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ph := jobHome(t, pull)
		mustRun(t, ph.env(), crane, "manifest", "--insecure", ref)
		if out, err := run(t, ph.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"x": "z"}), "-t", w.host+"/acme/app:pull-only"); err == nil {
			t.Fatalf("a pull job token pushed: %s", out)
		}
	})
	t.Run("a pull token as a Basic password", func(t *testing.T) {
		// What a Kubernetes pull secret carries: user name and token in
		// "auth". The client exchanges them at the token endpoint.
		pull, err := w.a.OCI.MintRepositoryToken(t.Context(), jobPrincipal(t, w, "dev"), "acme/app", false, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		bh := newHome(t)
		mustRun(t, bh.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", pull)
		mustRun(t, bh.env(), crane, "manifest", "--insecure", ref)
		if out, err := run(t, bh.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"x": "b"}), "-t", w.host+"/acme/app:basic"); err == nil {
			t.Fatalf("a pull token sent as a Basic password pushed: %s", out)
		}
		if out, err := run(t, bh.env(), crane, "manifest", "--insecure", w.host+"/acme/other:v1"); err == nil {
			t.Fatalf("a pull token for acme/app sent as a Basic password pulled acme/other: %s", out)
		}
		wrong := newHome(t)
		mustRun(t, wrong.env(), crane, "auth", "login", w.host, "-u", "viewer", "-p", pull)
		if out, err := run(t, wrong.env(), crane, "manifest", "--insecure", ref); err == nil {
			t.Fatalf("dev's token was accepted for viewer: %s", out)
		}
		forged := newHome(t)
		mustRun(t, forged.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", pull[:len(pull)-4]+"AAAA")
		if out, err := run(t, forged.env(), crane, "manifest", "--insecure", ref); err == nil {
			t.Fatalf("a token with a forged signature was accepted: %s", out)
		}
	})
	t.Run("minting is limited by the principal and the lifetime", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			user string
			repo string
			push bool
			ttl  time.Duration
			kind apperr.Kind
		}{
			{"a reader's job cannot push", "viewer", "acme/app", true, time.Minute, apperr.Forbidden},
			{"longer than an hour", "dev", "acme/app", false, 2 * time.Hour, apperr.Invalid},
			{"a bad name", "dev", "acme/../app", false, time.Minute, apperr.Invalid},
			{"an org it is not in", "dev", "nobody/app", false, time.Minute, apperr.Forbidden},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := w.a.OCI.MintRepositoryToken(t.Context(), jobPrincipal(t, w, tt.user), tt.repo, tt.push, tt.ttl)
				if apperr.KindOf(err) != tt.kind {
					t.Fatalf("mint = %v, want %v", err, tt.kind)
				}
			})
		}
	})
	entries, err := w.a.Audit.List(t.Context(), audit.Filter{Action: "registry.token.mint"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d registry.token.mint audit entries, want 3 (the refused mints are not tokens)", len(entries))
	}
}
