package scm_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestBrowser_ReviewAndMergePull reviews a pull request in Chromium as a
// person would: the highlighted diff, a comment on one of its lines, an
// approval that unblocks the merge button, and the merge itself.
func TestBrowser_ReviewAndMergePull(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	w := newWorld(t)
	w.createRepo(t, "app")
	w.admin.Must(http.StatusOK, "PUT", repoAPI+"/protections", scm.ProtectionJSON{Pattern: "main", RequiredApprovals: 1})
	bob, bobToken := w.member(t, "bob", "developer")
	dir := w.workdir(t, w.cloneURL(t, "app", "bob", bobToken))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.must(t, dir, "checkout", "--quiet", "-b", "greeting")
	w.commit(t, dir, "say hello", map[string]string{"hello.go": "package main\n\nimport \"fmt\"\n\n// Hello greets.\nfunc Hello() { fmt.Println(\"hello\") }\n"})
	w.must(t, dir, "push", "--quiet", "origin", "greeting")
	bob.Must(http.StatusCreated, "POST", repoAPI+"/pulls", scm.CreatePullRequest{Title: "Say hello", Head: "greeting", Body: "Greets the world."})

	c := browsertest.Start(t, chromium)
	base := w.a.URL
	c.Do("sign in as the reviewer",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), "admin"),
		chromedp.SetValue(chromedp.CSS("#password"), apptest.AdminPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#account-link")),
	)
	c.Do("open the pull request from the list",
		chromedp.Navigate(base+"/orgs/acme/repos/app/pulls"),
		chromedp.Click(chromedp.Search(`//a[normalize-space()="Say hello"]`)),
		chromedp.WaitVisible(chromedp.CSS("#merge-box")),
	)
	if got := c.Text("#pull-title"); got != "Say hello #1" {
		t.Errorf("title = %q", got)
	}
	if got := c.Text("#blockers"); !strings.Contains(got, "0 approvals of 1 required") {
		t.Errorf("blockers before the review = %q", got)
	}
	if disabled := browsertest.Eval[bool](c, "merge button", `document.querySelector("#merge").disabled`); !disabled {
		t.Error("the merge button is enabled before the approval")
	}
	// chroma highlighted the Go file: a keyword span on the func line.
	if kw := browsertest.Eval[string](c, "highlighted keyword", `document.querySelector("#f0-new-6 .hl-kd").textContent`); kw != "func" {
		t.Errorf("highlighted keyword = %q", kw)
	}

	c.Do("comment on line 6",
		chromedp.Click(chromedp.CSS(`#f0-new-6 td.num a`)),
		chromedp.WaitVisible(chromedp.CSS("#line-comment-body")),
		chromedp.SetValue(chromedp.CSS("#line-comment-body"), "Print to a writer instead?"),
		chromedp.Click(chromedp.CSS("#add-line-comment")),
		chromedp.WaitVisible(chromedp.CSS(".line-comment")),
	)
	if got := c.Text(".line-comment p"); got != "Print to a writer instead?" {
		t.Errorf("line comment = %q", got)
	}
	c.Do("approve",
		chromedp.SetValue(chromedp.CSS("#review-body"), "Looks good"),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS(".review-approved")),
	)
	if got := c.Text("#approvals"); got != "1" {
		t.Errorf("approvals = %q", got)
	}
	if shot := os.Getenv("RAMPART_SCREENSHOTS"); shot != "" {
		png, err := chromedp.Run(c.Ctx, chromedp.FullScreenshot(100))
		if err == nil {
			_ = os.WriteFile(filepath.Join(shot, "pull.png"), png, 0o644)
		}
	}
	c.Do("squash and merge",
		chromedp.SetValue(chromedp.CSS("#merge-strategy"), "squash"),
		chromedp.Click(chromedp.CSS("#merge")),
		chromedp.WaitVisible(chromedp.CSS("#merge-commit")),
	)
	if got := c.Text("#pull-state"); got != "merged" {
		t.Errorf("state after merging = %q", got)
	}
	if got := c.Text(".flash"); !strings.HasPrefix(got, "Merged into main as ") {
		t.Errorf("flash = %q", got)
	}
	p := getPull(t, w.admin, "1")
	if p.State != "merged" || p.MergedBy != "admin" || w.remoteHead(t, "app", "main") != p.MergeCommit {
		t.Errorf("after the merge: %+v, main at %s", p, w.remoteHead(t, "app", "main"))
	}
	c.Do("browse the merged file",
		chromedp.Navigate(base+"/orgs/acme/repos/app"),
		chromedp.Click(chromedp.Search(`//a[normalize-space()="hello.go"]`)),
		chromedp.WaitVisible(chromedp.CSS("#file-view")),
	)
	if got := c.Text("#L5"); !strings.Contains(got, "// Hello greets.") {
		t.Errorf("file view line 5 = %q", got)
	}
}
