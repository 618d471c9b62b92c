package scm_test

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// eachStore runs fn on SQLite and, when RAMPART_TEST_POSTGRES is set (or
// under CI), on PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, store apptest.Option)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, apptest.WithStore(b.URL(t))) })
	}
}

// world is a running Rampart with an org "acme" whose owner is the
// admin, and a git client set up to talk to it.
type world struct {
	a     *apptest.App
	admin *apptest.Client
	token string // the admin's token
	git   string
	home  string
}

func newWorld(t *testing.T, opts ...apptest.Option) *world {
	t.Helper()
	gitBin := testenv.LookPath(t, "git")
	opts = append([]apptest.Option{apptest.WithConfig(func(c *config.Config) {
		c.SCM.SSHAddr = "127.0.0.1:0"
		c.SCM.WebhookBackoff = 200 * time.Millisecond
		c.SCM.WebhookTimeout = 2 * time.Second
		c.SCM.WebhookAttempts = 3
	})}, opts...)
	a := apptest.Start(t, opts...)
	w := &world{a: a, token: a.AdminToken(t), git: gitBin, home: t.TempDir()}
	w.admin = a.Client(t, w.token)
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	return w
}

// createRepo creates acme/NAME through the API.
func (w *world) createRepo(t *testing.T, name string) scm.RepoJSON {
	t.Helper()
	var r scm.RepoJSON
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/repos", scm.CreateRepoRequest{Name: name}).Decode(t, &r)
	return r
}

// cloneURL returns the repository's HTTP URL with token as the password.
func (w *world) cloneURL(t *testing.T, repo, user, token string) string {
	t.Helper()
	u, err := url.Parse(w.a.URL + "/acme/" + repo + ".git")
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		u.User = url.UserPassword(user, token)
	}
	return u.String()
}

// run runs the real git client in dir; it returns combined output.
func (w *world) run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(w.git, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+w.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(w.home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "LANG=C", "LC_ALL=C",
		"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.test", "GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.test")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs git and fails the test on error.
func (w *world) must(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := w.run(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// workdir makes a fresh local repository with one commit on main,
// pointing its origin at remote.
func (w *world) workdir(t *testing.T, remote string) string {
	t.Helper()
	dir := t.TempDir()
	w.must(t, dir, "init", "--quiet", "--initial-branch=main")
	w.must(t, dir, "config", "commit.gpgsign", "false")
	w.write(t, dir, "README.md", "# app\n")
	w.must(t, dir, "add", ".")
	w.must(t, dir, "commit", "--quiet", "-m", "first commit")
	w.must(t, dir, "remote", "add", "origin", remote)
	return dir
}

func (w *world) write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit writes files and commits them.
func (w *world) commit(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		w.write(t, dir, name, content)
	}
	w.must(t, dir, "add", "-A")
	w.must(t, dir, "commit", "--quiet", "-m", msg)
	return strings.TrimSpace(w.must(t, dir, "rev-parse", "HEAD"))
}
