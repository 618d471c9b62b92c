package policy

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/testenv"
)

const acmePolicy = `package rampart.gates.pre_deploy.acme_owner

metadata := {"id": "ACME-DEP-1", "title": "Releases name an owner", "remediation": "Set release.owner."}

deny contains "the release names no owner" if not input.release.owner
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(b *Bundle) []string { return slices.Sorted(maps.Keys(b.Files)) }

func TestDir_Load(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"deploy/owner.rego":      acmePolicy,
		"deploy/owner_test.rego": "package rampart.tests.acme\n",
		"policy.yaml":            "modes: []\n",
		"exceptions.yaml":        "exceptions: []\n",
		"README.md":              "not policy",
		"sub/policy.yaml":        "only the root's policy.yaml counts",
		".git/hooks/x.rego":      "package hidden",
	})
	b, err := Dir{Path: dir}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deploy/owner.rego", "deploy/owner_test.rego", "exceptions.yaml", "policy.yaml"}
	if diff := cmp.Diff(want, keys(b)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(b.Revision, "dir@") {
		t.Errorf("revision %q", b.Revision)
	}
	again, _ := Dir{Path: dir}.Load(t.Context())
	writeFiles(t, dir, map[string]string{"deploy/owner.rego": acmePolicy + "\n# changed\n"})
	changed, _ := Dir{Path: dir}.Load(t.Context())
	if again.Revision != b.Revision || changed.Revision == b.Revision {
		t.Errorf("revisions %s, %s, %s: want the same content to hash the same and a change to change it", b.Revision, again.Revision, changed.Revision)
	}
	if _, err := (Dir{Path: filepath.Join(dir, "missing")}).Load(t.Context()); apperr.KindOf(err) != apperr.Invalid {
		t.Errorf("missing directory: %v", err)
	}
	writeFiles(t, dir, map[string]string{"big.rego": strings.Repeat("#", maxBundleFileSize+1)})
	if _, err := (Dir{Path: dir}).Load(t.Context()); apperr.KindOf(err) != apperr.TooLarge {
		t.Errorf("oversized file: %v", err)
	}
}

// gitRepo makes a repository with a commit of files and returns its path
// and a function that commits more.
func gitRepo(t *testing.T, files map[string]string) (string, func(files map[string]string, msg string) string) {
	t.Helper()
	gitBin := testenv.LookPath(t, "git")
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.test", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	commit := func(files map[string]string, msg string) string {
		writeFiles(t, dir, files)
		git("add", "-A")
		git("commit", "-q", "-m", msg)
		return git("rev-parse", "HEAD")
	}
	commit(files, "first")
	return dir, commit
}

// TestGit_Load reads a policy repository at a ref with the git binary:
// the revision is the commit, and a new commit is a new revision.
func TestGit_Load(t *testing.T) {
	repo, commit := gitRepo(t, map[string]string{"deploy/owner.rego": acmePolicy, "policy.yaml": "modes: []\n", "docs/x.md": "no"})
	first := commit(map[string]string{"exceptions.yaml": "exceptions: []\n"}, "second")
	b, err := Git{Repo: repo, Ref: "main"}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.Revision != "git@"+first {
		t.Errorf("revision %q, want git@%s", b.Revision, first)
	}
	if diff := cmp.Diff([]string{"deploy/owner.rego", "exceptions.yaml", "policy.yaml"}, keys(b)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if string(b.Files["deploy/owner.rego"]) != acmePolicy {
		t.Errorf("content = %q", b.Files["deploy/owner.rego"])
	}
	// The engine loads it after the library.
	e := engine(t, b)
	if !strings.HasSuffix(e.Revision(), "+git@"+first) {
		t.Errorf("engine revision %q", e.Revision())
	}

	second := commit(map[string]string{"deploy/owner.rego": strings.Replace(acmePolicy, "ACME-DEP-1", "ACME-DEP-2", 1)}, "rename")
	b2, err := Git{Repo: repo}.Load(t.Context())
	if err != nil || b2.Revision != "git@"+second {
		t.Fatalf("after a commit: %v, %v", b2.Revision, err)
	}
	// An older commit, and a subdirectory.
	old, err := Git{Repo: repo, Ref: first, Dir: "deploy"}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"owner.rego"}, keys(old)); diff != "" || !strings.Contains(string(old.Files["owner.rego"]), "ACME-DEP-1") {
		t.Errorf("subdirectory at the first commit: %v %s", diff, old.Files["owner.rego"])
	}
	// A bare clone, as source hosting keeps repositories.
	bare := filepath.Join(t.TempDir(), "policies.git")
	if out, err := exec.Command("git", "clone", "-q", "--bare", repo, bare).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v %s", err, out)
	}
	bb, err := Git{Repo: bare, Ref: "main"}.Load(t.Context())
	if err != nil || bb.Revision != b2.Revision {
		t.Errorf("bare repository: %v, %v", bb.Revision, err)
	}
}

func TestGit_BadRefs(t *testing.T) {
	repo, _ := gitRepo(t, map[string]string{"p.rego": acmePolicy})
	for _, ref := range []string{"nope", "--upload-pack=x", "main..HEAD", "a b"} {
		_, err := Git{Repo: repo, Ref: ref}.Load(t.Context())
		if err == nil || apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("ref %q: %v", ref, err)
		}
	}
	if _, err := (Git{Repo: t.TempDir()}).Load(t.Context()); err == nil {
		t.Error("a directory that is not a repository loaded")
	}
}

// TestGit_BrokenPolicyNamesFileAndLine: a commit with a policy that does
// not compile is refused with the file and line.
func TestGit_BrokenPolicyNamesFileAndLine(t *testing.T) {
	repo, _ := gitRepo(t, map[string]string{"deploy/owner.rego": strings.Replace(acmePolicy, "not input.release.owner", "not input.release.owner ==", 1)})
	b, err := Git{Repo: repo}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewEngine(t.Context(), []*Bundle{builtin(t), b}, EngineOptions{})
	if err == nil || !strings.Contains(err.Error(), filepath.Base(repo)+"@") || !strings.Contains(err.Error(), ":deploy/owner.rego:6:") {
		t.Fatalf("err = %v, want the repository, file and line", err)
	}
}
