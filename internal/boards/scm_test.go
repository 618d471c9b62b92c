package boards_test

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
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// gitClient runs the stock git client against a running Rampart.
type gitClient struct {
	t    *testing.T
	bin  string
	home string
}

func newGitClient(t *testing.T) *gitClient {
	t.Helper()
	return &gitClient{t: t, bin: testenv.LookPath(t, "git"), home: t.TempDir()}
}

// run runs git in dir and returns its combined output and error.
func (g *gitClient) run(dir string, args ...string) (string, error) {
	g.t.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+g.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(g.home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "LANG=C", "LC_ALL=C",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.test", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.test")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *gitClient) must(dir string, args ...string) string {
	g.t.Helper()
	out, err := g.run(dir, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// commit writes files into the working copy dir and commits them with msg.
func (g *gitClient) commit(dir, msg string, files map[string]string) string {
	g.t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	g.must(dir, "add", "-A")
	g.must(dir, "commit", "--quiet", "-m", msg)
	return g.must(dir, "rev-parse", "HEAD")
}

// itemUntil polls work item n of acme as dev until cond holds.
func (w *world) itemUntil(t *testing.T, n, what string, cond func(boards.WorkItemJSON) bool) boards.WorkItemJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var it boards.WorkItemJSON
		w.dev.Must(http.StatusOK, "GET", api+"acme/workitems/"+n, nil).Decode(t, &it)
		if cond(it) {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; AB#%s: %+v", what, n, it)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// linksOf returns the links of it of kind and ref.
func linksOf(it boards.WorkItemJSON, kind, ref string) []boards.WorkItemLinkJSON {
	var out []boards.WorkItemLinkJSON
	for _, l := range it.Links {
		if l.Kind == kind && l.Ref == ref {
			out = append(out, l)
		}
	}
	return out
}

// TestSCM_PushAndPullRequestLinkAndResolve runs the real git client
// against scm: a commit message mentioning AB#1 pushed to main links item
// 1; a pull request titled "Fixes AB#2" (its body mentioning AB#1) links
// both and, once merged into main, resolves AB#2 only.
func TestSCM_PushAndPullRequestLinkAndResolve(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testSCM_PushAndPullRequestLinkAndResolve(t, apptest.WithStore(b.URL(t))) })
	}
}

func testSCM_PushAndPullRequestLinkAndResolve(t *testing.T, store apptest.Option) {
	w := newWorld(t, store)
	g := newGitClient(t)
	var repo scm.RepoJSON
	w.alice.Must(http.StatusCreated, "POST", api+"acme/repos", scm.CreateRepoRequest{Name: "shop"}).Decode(t, &repo)
	var story, bug boards.WorkItemJSON
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "story", Title: "Search box"}).Decode(t, &story)
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "Crash on empty cart"}).Decode(t, &bug)
	if story.Ref != "AB#1" || bug.Ref != "AB#2" {
		t.Fatalf("items numbered %s and %s", story.Ref, bug.Ref)
	}

	remote, err := url.Parse(repo.CloneURL)
	if err != nil {
		t.Fatal(err)
	}
	remote.User = url.UserPassword("dev", w.tokens["dev"])
	dir := t.TempDir()
	g.must(dir, "init", "--quiet", "--initial-branch=main")
	g.must(dir, "remote", "add", "origin", remote.String())
	g.commit(dir, "first commit", map[string]string{"README.md": "# shop\n"})
	g.must(dir, "push", "--quiet", "origin", "main")

	// A commit message on the default branch links the item it mentions.
	c := g.commit(dir, "Add the search box (AB#1)", map[string]string{"search.go": "package shop\n"})
	g.must(dir, "push", "--quiet", "origin", "main")
	it := w.itemUntil(t, "1", "the commit link", func(it boards.WorkItemJSON) bool { return len(linksOf(it, "commit", c)) == 1 })
	if l := linksOf(it, "commit", c)[0]; l.Repo != "acme/shop" || l.Title != "Add the search box (AB#1)" || l.Fixes || it.State != "new" {
		t.Errorf("after the push: AB#1 %s with link %+v", it.State, l)
	}

	// A pull request from a branch: its title and body link the items.
	g.must(dir, "switch", "--quiet", "-c", "fix-cart")
	head := g.commit(dir, "Guard against an empty cart", map[string]string{"cart.go": "package shop\n\nfunc Total() int { return 0 }\n"})
	g.must(dir, "push", "--quiet", "origin", "fix-cart")
	var pr scm.PullJSON
	w.dev.Must(http.StatusCreated, "POST", api+"acme/repos/shop/pulls", scm.CreatePullRequest{Title: "Fixes AB#2",
		Body: "Part of AB#1; the cart no longer crashes.", Head: "fix-cart", Base: "main"}).Decode(t, &pr)
	prRef := "1"
	if pr.Number != 1 {
		t.Fatalf("pull request #%d", pr.Number)
	}
	it = w.itemUntil(t, "2", "the pull request link", func(it boards.WorkItemJSON) bool { return len(linksOf(it, "pull_request", prRef)) == 1 })
	if l := linksOf(it, "pull_request", prRef)[0]; !l.Fixes || l.URL != pr.HTMLURL || it.State != "new" {
		t.Errorf("opened pull request: AB#2 %s with link %+v (pull request at %s)", it.State, l, pr.HTMLURL)
	}
	w.itemUntil(t, "1", "the pull request body's link", func(it boards.WorkItemJSON) bool { return len(linksOf(it, "pull_request", prRef)) == 1 })

	// Merged into main: Fixes AB#2 resolves it, AB#1 (only mentioned) stays.
	var merged scm.PullJSON
	w.dev.Must(http.StatusOK, "PUT", api+"acme/repos/shop/pulls/1/merge", scm.MergeRequest{Strategy: "merge"}).Decode(t, &merged)
	if merged.State != "merged" || merged.HeadSHA != head {
		t.Fatalf("merge: %+v", merged)
	}
	it = w.itemUntil(t, "2", "AB#2 resolved", func(it boards.WorkItemJSON) bool { return it.State == "resolved" })
	if it.ResolvedAt == nil || len(linksOf(it, "pull_request", prRef)) != 1 {
		t.Errorf("resolved AB#2: %+v", it)
	}
	var one boards.WorkItemJSON
	w.dev.Must(http.StatusOK, "GET", api+"acme/workitems/1", nil).Decode(t, &one)
	if one.State != "new" || len(linksOf(one, "pull_request", prRef)) != 1 || len(linksOf(one, "commit", c)) != 1 {
		t.Errorf("AB#1 after the merge: %s, links %+v", one.State, one.Links)
	}

	// A branch that is not the default one never resolves.
	g.must(dir, "switch", "--quiet", "-c", "side")
	side := g.commit(dir, "Fixes AB#1 on a side branch", map[string]string{"side.go": "package shop\n"})
	g.must(dir, "push", "--quiet", "origin", "side")
	one = w.itemUntil(t, "1", "the side branch's link", func(it boards.WorkItemJSON) bool { return len(linksOf(it, "commit", side)) == 1 })
	if one.State != "new" {
		t.Errorf("a Fixes on a side branch moved AB#1 to %s", one.State)
	}
}
