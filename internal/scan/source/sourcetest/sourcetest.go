// Package sourcetest builds inputs for tests of scanners: git
// repositories made with the real git binary.
package sourcetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/testenv"
)

// Repo is a git repository built by a test with the real git binary.
type Repo struct {
	t   testing.TB
	Dir string
}

// NewRepo creates an empty repository whose first branch is main.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	testenv.LookPath(t, "git")
	r := &Repo{t: t, Dir: t.TempDir()}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git in the repository and returns its trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return r.gitEnv(nil, args...)
}

func (r *Repo) gitEnv(env []string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.Dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.test", "GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.test")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (an empty content deletes the file), commits them
// as author at date and returns the commit id.
func (r *Repo) Commit(author string, date time.Time, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if content == "" {
			r.Git("rm", "-q", "--", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.Git("add", "--", name)
	}
	return r.commitAs(author, date, "commit", "-q", "-m", "change by "+author)
}

// Merge merges branch into the current branch as author at date.
func (r *Repo) Merge(author string, date time.Time, branch string) string {
	r.t.Helper()
	return r.commitAs(author, date, "merge", "-q", "--no-ff", "-m", "merge "+branch, branch)
}

func (r *Repo) commitAs(author string, date time.Time, args ...string) string {
	r.t.Helper()
	d := date.Format(time.RFC3339)
	r.gitEnv([]string{"GIT_AUTHOR_NAME=" + author, "GIT_AUTHOR_EMAIL=" + author + "@example.test",
		"GIT_AUTHOR_DATE=" + d, "GIT_COMMITTER_DATE=" + d}, args...)
	return r.Git("rev-parse", "HEAD")
}

// Day returns noon UTC on the nth of January 2024, a commit date.
func Day(n int) time.Time { return time.Date(2024, 1, n, 12, 0, 0, 0, time.UTC) }
