package registry_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/testenv"
)

// Pinned client and suite versions; .ci/run builds them into .cache/tools.
const (
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
	craneVersion       = "v0.22.1"
	orasVersion        = "v1.3.6"
	cosignVersion      = "v2.6.5"
)

// repoRoot finds the repository root (the directory holding go.mod).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// tool returns a client built by .ci/run into .cache/tools, or handles it
// as missing.
func tool(t testing.TB, name, version string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), ".cache", "tools", name+"-"+version)
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, p+" (built by .ci/run: go install "+name+"@"+version+")")
	}
	return p
}

// world is a running Rampart with an org and users for registry tests.
type world struct {
	a     *apptest.App
	admin string // admin-scoped token of the site administrator
	host  string // 127.0.0.1:PORT
}

func newWorld(t *testing.T, opts ...apptest.Option) *world {
	t.Helper()
	a := apptest.Start(t, opts...)
	w := &world{a: a, admin: a.AdminToken(t), host: strings.TrimPrefix(a.URL, "http://")}
	w.host = strings.Replace(w.host, "localhost", "127.0.0.1", 1)
	return w
}

// org creates an org owned by the admin.
func (w *world) org(t *testing.T, name string) identity.Org {
	t.Helper()
	admin, err := w.a.IDs.UserByName(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	o, err := w.a.IDs.CreateOrg(t.Context(), admin.ID, name, "")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// member creates a user with a role in org and returns a token of theirs
// with the given scopes.
func (w *world) member(t *testing.T, o identity.Org, name string, role authz.Role, scopes ...authz.Scope) string {
	t.Helper()
	ctx := t.Context()
	u, err := w.a.IDs.CreateUser(ctx, identity.NewUser{Username: name})
	if err != nil {
		t.Fatal(err)
	}
	if role != authz.NoRole {
		if err := w.a.IDs.SetMember(ctx, o.ID, u.ID, role); err != nil {
			t.Fatal(err)
		}
	}
	if len(scopes) == 0 {
		scopes = []authz.Scope{authz.ScopeRegistryPull, authz.ScopeRegistryPush}
	}
	raw, _, err := w.a.IDs.CreateToken(ctx, u.ID, identity.NewToken{Name: "registry", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// configure changes a repository's settings directly.
func (w *world) configure(t *testing.T, name string, set registry.RepositorySettings) {
	t.Helper()
	if _, err := w.a.OCI.Configure(t.Context(), name, set); err != nil {
		t.Fatalf("configure %s: %v", name, err)
	}
}

// run runs a client binary with a timeout and returns its combined output.
func run(t *testing.T, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func must(t *testing.T, out string, err error) string {
	t.Helper()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// runIn is run in a given working directory.
func runIn(t *testing.T, dir string, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func decodeSegment(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}

func mustRun(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	out, err := run(t, env, bin, args...)
	return must(t, out, err)
}

func mustRunIn(t *testing.T, dir string, env []string, bin string, args ...string) string {
	t.Helper()
	out, err := runIn(t, dir, env, bin, args...)
	return must(t, out, err)
}
