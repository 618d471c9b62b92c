package alerts_test

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// find returns the alert of source and kind in as.
func find(as []alerts.AlertJSON, source, kind string) (alerts.AlertJSON, bool) {
	for _, a := range as {
		if a.Source == source && a.Kind == kind {
			return a, true
		}
	}
	return alerts.AlertJSON{}, false
}

// TestSCM_PushesRaiseAndFixAlerts pushes to a repository of scm with the
// real git client: a vulnerable go.mod on the default branch opens an
// alert; a secret refused by push protection and then pushed with
// -o secret-bypass opens one alert for the default branch's scan and one
// for the bypass; a later push removing both fixes the scan's alerts and
// leaves the bypass open (the secret stays in the history).
func TestSCM_PushesRaiseAndFixAlerts(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testSCM_PushesRaiseAndFixAlerts(t, apptest.WithStore(b.URL(t))) })
	}
}

func testSCM_PushesRaiseAndFixAlerts(t *testing.T, store apptest.Option) {
	gitBin := testenv.LookPath(t, "git")
	a := apptest.Start(t, store)
	advisories(t, filepath.Join(a.DataDir, "advisories.db"))
	token := a.AdminToken(t)
	admin := a.Client(t, token)
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	var repo scm.RepoJSON
	admin.Must(http.StatusCreated, "POST", api+"acme/repos", scm.CreateRepoRequest{Name: "shop"}).Decode(t, &repo)
	w := &world{a: a, dev: admin}

	home, dir := t.TempDir(), t.TempDir()
	git := func(args ...string) (string, error) {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
			"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "LANG=C", "LC_ALL=C",
			"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.test", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.test")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := git(args...)
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}
	commit := func(msg string, files map[string]string) string {
		t.Helper()
		for name, content := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if content == "" {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		must("add", "-A")
		must("commit", "--quiet", "-m", msg)
		return must("rev-parse", "HEAD")
	}
	remote, err := url.Parse(repo.CloneURL)
	if err != nil {
		t.Fatal(err)
	}
	remote.User = url.UserPassword("admin", token)
	must("init", "--quiet", "--initial-branch=main")
	must("remote", "add", "origin", remote.String())

	// A vulnerable dependency on the default branch.
	c1 := commit("first commit", map[string]string{"README.md": "# shop\n", "go.mod": goMod("1.1.0")})
	must("push", "--quiet", "origin", "main")
	as := w.until(t, "the vulnerability alert", "", func(as []alerts.AlertJSON) bool { _, ok := find(as, "scan", "vulnerability"); return ok })
	vuln, _ := find(as, "scan", "vulnerability")
	if vuln.Repo != "acme/shop" || vuln.Path != "go.mod" || vuln.FirstCommit != c1 || vuln.Package == nil || vuln.Package.FixedVersion != "1.2.0" {
		t.Errorf("vulnerability alert: %+v", vuln)
	}

	// A secret: refused, then pushed past push protection with a reason.
	c2 := commit("add prod config", map[string]string{"config/prod.env": awsKey(11) + "\n"})
	out, err := git("push", "origin", "main")
	if err == nil || !strings.Contains(out, "push refused by push protection") || !strings.Contains(out, "config/prod.env:1") {
		t.Fatalf("the push of a secret: err=%v\n%s", err, out)
	}
	must("push", "--quiet", "-o", "secret-bypass=fixture key, revoked", "origin", "main")
	as = w.until(t, "the secret alerts", "?kind=secret", func(as []alerts.AlertJSON) bool {
		_, scanned := find(as, "scan", "secret")
		_, bypassed := find(as, "bypass", "secret")
		return scanned && bypassed
	})
	secret, _ := find(as, "scan", "secret")
	bypass, _ := find(as, "bypass", "secret")
	if secret.Path != "config/prod.env" || secret.Line != 1 || secret.FirstCommit != c2 || secret.State != "open" {
		t.Errorf("the scan's secret alert: %+v", secret)
	}
	if bypass.Path != "config/prod.env" || bypass.Line != 1 || bypass.FirstCommit != c2 || bypass.State != "open" ||
		!strings.Contains(bypass.Description, "fixture key, revoked") || !strings.Contains(bypass.Description, "admin") {
		t.Errorf("the bypass alert: %+v", bypass)
	}

	// A later push removes the secret and upgrades the dependency: the
	// scan's alerts are fixed at that commit, the bypass stays open.
	c3 := commit("remove the key; upgrade vulnlib", map[string]string{"config/prod.env": "", "go.mod": goMod("1.2.0")})
	must("push", "--quiet", "origin", "main")
	fixed := w.until(t, "both scan alerts fixed", "?state=fixed", func(as []alerts.AlertJSON) bool { return len(as) == 2 })
	for _, f := range fixed {
		if (f.ID != vuln.ID && f.ID != secret.ID) || f.FixedCommit != c3 || f.FixedAt == nil {
			t.Errorf("fixed alert: %+v", f)
		}
	}
	var open []alerts.AlertJSON
	admin.Must(http.StatusOK, "GET", api+"acme/alerts?state=open", nil).Decode(t, &open)
	if len(open) != 1 || open[0].ID != bypass.ID {
		t.Errorf("open alerts after the fix: %+v", open)
	}
}
