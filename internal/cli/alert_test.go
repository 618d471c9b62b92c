package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/secrets/secretstest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// oneRepo is scm's directory of repositories with one: id 7.
type oneRepo struct{ path string }

func (r oneRepo) RepoPath(_ context.Context, id int64) (string, string, error) {
	if id != 7 {
		return "", "", apperr.E(apperr.NotFound, "no repository %d", id)
	}
	return r.path, "main", nil
}

// gitIn runs git in dir with a configuration of its own.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.LookPath(t, "git"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Dev",
		"GIT_AUTHOR_EMAIL=dev@example.test", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// alertCLI runs the CLI as the holder of token and returns its exit code
// and output.
func alertCLI(t *testing.T, a *apptest.App, token string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"RAMPART_SERVER": a.URL, "RAMPART_TOKEN": token, "RAMPART_CONFIG_DIR": t.TempDir()}
	code := cli.Main(t.Context(), cli.Env{Args: args, Getenv: func(k string) string { return env[k] },
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

// TestAlertCLI follows alerts through their lifecycle with `rampart alert`:
// opened by a push, dismissed with a reason, fixed by a later push and
// reopened when the problem comes back.
func TestAlertCLI(t *testing.T) {
	bare, work := filepath.Join(t.TempDir(), "shop.git"), t.TempDir()
	gitIn(t, "", "init", "-q", "--bare", "-b", "main", bare)
	gitIn(t, work, "init", "-q", "-b", "main")
	gitIn(t, work, "remote", "add", "origin", bare)
	commit := func(files map[string]string) string {
		for name, content := range files {
			p := filepath.Join(work, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		gitIn(t, work, "add", "-A")
		gitIn(t, work, "commit", "-q", "-m", "change")
		gitIn(t, work, "push", "-q", "origin", "HEAD:refs/heads/main")
		return gitIn(t, work, "rev-parse", "HEAD")
	}
	a := apptest.Start(t, apptest.WithRepos(oneRepo{bare}))
	// An advisory database of our own: example.com/vulnlib before 1.2.0
	// is vulnerable.
	osvDir := t.TempDir()
	osv := `{"schema_version": "1.6.0", "id": "GO-2099-0002", "modified": "2099-01-01T00:00:00Z", "summary": "vulnlib runs what it is sent",
	 "affected": [{"package": {"ecosystem": "Go", "name": "example.com/vulnlib"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}`
	if err := os.WriteFile(filepath.Join(osvDir, "GO-2099-0002.json"), []byte(osv), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := advisory.Open(t.Context(), filepath.Join(a.DataDir, "advisories.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(t.Context(), osvDir); err != nil {
		t.Fatal(err)
	}
	db.Close()

	admin := a.Client(t, a.AdminToken(t))
	owner := a.CreateUser(t, admin, "olga")
	a.Client(t, owner).Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	push := func(c string) {
		if err := a.Events.PublishNow(t.Context(), boards.EventPush, boards.PushEvent{Repo: "acme/shop", RepoID: 7, Ref: "refs/heads/main",
			After: c, DefaultBranch: true, Pusher: "olga", Commits: []boards.PushCommit{{ID: c, Message: "change"}}}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(state string, want int) []alerts.AlertJSON {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, out, errOut := alertCLI(t, a, owner, "alert", "list", "acme", "--state", state, "--output", "json")
			if code != 0 {
				t.Fatalf("alert list: exit %d: %s", code, errOut)
			}
			var as []alerts.AlertJSON
			if err := json.Unmarshal([]byte(out), &as); err != nil {
				t.Fatal(err)
			}
			if len(as) == want {
				return as
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d %s alerts, want %d: %s", len(as), state, want, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	key, _, _ := secretstest.Expand(`AWS_ACCESS_KEY_ID=«AKIA{7:16}»`, rand.New(rand.NewPCG(9, 9)))
	c1 := commit(map[string]string{"app.env": key + "\n", "go.mod": "module example.com/shop\n\ngo 1.22\n\nrequire example.com/vulnlib v1.1.0\n"})
	push(c1)
	open := list("open", 2)
	var secretID, vulnID string
	for _, al := range open {
		switch al.Kind {
		case "secret":
			secretID = jsonNumber(al.ID)
		case "vulnerability":
			vulnID = jsonNumber(al.ID)
		}
	}
	if secretID == "" || vulnID == "" {
		t.Fatalf("open alerts: %+v", open)
	}

	code, out, _ := alertCLI(t, a, owner, "alert", "list", "acme")
	if code != 0 || !strings.Contains(out, "secret") || !strings.Contains(out, "app.env:1") || !strings.Contains(out, "GO-2099-0002") {
		t.Errorf("alert list table (exit %d):\n%s", code, out)
	}
	code, _, errOut := alertCLI(t, a, owner, "alert", "dismiss", "acme", secretID, "--reason", "maybe", "--comment", "x")
	if code != cli.ExitUsage || !strings.Contains(errOut, "unknown dismissal reason") {
		t.Errorf("dismiss with a bad reason: exit %d, %s", code, errOut)
	}
	code, _, errOut = alertCLI(t, a, owner, "alert", "dismiss", "acme", secretID, "--reason", "false_positive")
	if code != cli.ExitUsage || !strings.Contains(errOut, `required flag(s) "comment" not set`) {
		t.Errorf("dismiss without a comment: exit %d, %s", code, errOut)
	}
	code, out, errOut = alertCLI(t, a, owner, "alert", "dismiss", "acme", secretID, "--reason", "false_positive", "--comment", "sample key", "-o", "json")
	if code != 0 || !strings.Contains(out, `"state": "dismissed"`) || !strings.Contains(out, `"comment": "sample key"`) {
		t.Errorf("dismiss: exit %d %s\n%s", code, errOut, out)
	}
	code, _, errOut = alertCLI(t, a, owner, "alert", "dismiss", "acme", secretID, "--reason", "false_positive", "--comment", "again")
	if code != cli.ExitConflict {
		t.Errorf("second dismissal: exit %d, %s", code, errOut)
	}
	code, out, _ = alertCLI(t, a, owner, "alert", "workitem", "acme", vulnID, "-o", "json")
	if code != 0 || !strings.Contains(out, `"ref": "AB#1"`) {
		t.Errorf("work item from the alert: exit %d\n%s", code, out)
	}
	code, out, _ = alertCLI(t, a, owner, "alert", "get", "acme", vulnID)
	if code != 0 || !regexpMatch(`(?m)^WORK ITEM\s+AB#1$`, out) {
		t.Errorf("alert get (exit %d):\n%s", code, out)
	}

	// Fixed by the next push, reopened by the one after.
	c2 := commit(map[string]string{"go.mod": "module example.com/shop\n\ngo 1.22\n\nrequire example.com/vulnlib v1.2.0\n"})
	push(c2)
	fixed := list("fixed", 1)
	if jsonNumber(fixed[0].ID) != vulnID || fixed[0].FixedCommit != c2 {
		t.Errorf("fixed: %+v", fixed[0])
	}
	c3 := commit(map[string]string{"go.mod": "module example.com/shop\n\ngo 1.22\n\nrequire example.com/vulnlib v1.1.0\n"})
	push(c3)
	back := list("open", 1)
	if jsonNumber(back[0].ID) != vulnID || back[0].Reopened != 1 {
		t.Errorf("reopened: %+v", back[0])
	}

	code, out, _ = alertCLI(t, a, owner, "alert", "overview", "acme")
	if code != 0 || !regexpMatch(`(?m)^OPEN\s+1\s+DISMISSED\s+1\s+FIXED\s+0$`, out) || !regexpMatch(`(?m)^under 7 days\s+0\s+1\s+0\s+0\s+1$`, out) {
		t.Errorf("overview (exit %d):\n%s", code, out)
	}
	code, out, _ = alertCLI(t, a, owner, "alert", "scan", "acme/shop", "-o", "json")
	if code != 0 || !strings.Contains(out, `"commit": "`+c3+`"`) {
		t.Errorf("scan (exit %d):\n%s", code, out)
	}
	code, _, errOut = alertCLI(t, a, owner, "alert", "scan", "acme")
	if code != cli.ExitUsage || !strings.Contains(errOut, "ORG/REPO") {
		t.Errorf("scan without a repository: exit %d, %s", code, errOut)
	}
	code, out, _ = alertCLI(t, a, owner, "alert", "reopen", "acme", secretID, "-o", "json")
	if code != 0 || !strings.Contains(out, `"state": "open"`) {
		t.Errorf("reopen: exit %d\n%s", code, out)
	}
	code, _, _ = alertCLI(t, a, owner, "alert", "get", "acme", "x")
	if code != cli.ExitUsage {
		t.Errorf("alert get acme x: exit %d", code)
	}
	code, _, _ = alertCLI(t, a, owner, "alert", "get", "acme", "424242")
	if code != cli.ExitNotFound {
		t.Errorf("alert get of an unknown alert: exit %d", code)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
