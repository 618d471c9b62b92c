package scm_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
)

const repoAPI = httpapi.Prefix + "/orgs/acme/repos/app"

// member creates a user with a role in acme and returns their API client
// and token.
func (w *world) member(t *testing.T, name, role string) (*apptest.Client, string) {
	t.Helper()
	tok := w.a.CreateUser(t, w.admin, name)
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/"+name, httpapi.RoleRequest{Role: role})
	return w.a.Client(t, tok), tok
}

func getPull(t *testing.T, c *apptest.Client, n string) scm.PullJSON {
	t.Helper()
	var p scm.PullJSON
	c.Must(http.StatusOK, "GET", repoAPI+"/pulls/"+n, nil).Decode(t, &p)
	return p
}

func hasBlocker(p scm.PullJSON, s string) bool {
	for _, b := range p.Blockers {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// TestPull_MergeAfterApprovalAndCheck walks a pull request through a
// protected main: it cannot merge until a reviewer approves and CI posts
// a passing check; a new push dismisses the approval and needs a new
// check; then it merges and main holds the merge commit.
func TestPull_MergeAfterApprovalAndCheck(t *testing.T) {
	eachStore(t, testPull_MergeAfterApprovalAndCheck)
}

func testPull_MergeAfterApprovalAndCheck(t *testing.T, store apptest.Option) {
	w := newWorld(t, store)
	w.createRepo(t, "app")
	bob, bobToken := w.member(t, "bob", "developer")
	ci, _ := w.member(t, "ci", "developer")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.admin.Must(http.StatusOK, "PUT", repoAPI+"/protections", scm.ProtectionJSON{Pattern: "main", RequiredApprovals: 1,
		RequiredChecks: []string{"ci/build"}, DismissStale: true})

	work := t.TempDir()
	w.must(t, work, "clone", "--quiet", w.cloneURL(t, "app", "bob", bobToken), ".")
	w.must(t, work, "checkout", "--quiet", "-b", "feature")
	first := w.commit(t, work, "add feature", map[string]string{"feature.go": "package app\n\nfunc Feature() int { return 1 }\n"})
	out := w.must(t, work, "push", "origin", "feature")
	if !strings.Contains(out, "remote: Create a pull request for 'feature':") || !strings.Contains(out, "/orgs/acme/repos/app/pulls/new?head=feature") {
		t.Errorf("push of a new branch does not offer a pull request:\n%s", out)
	}

	var pr scm.PullJSON
	bob.Must(http.StatusCreated, "POST", repoAPI+"/pulls", scm.CreatePullRequest{Title: "Add the feature", Head: "feature",
		Body: "Implements it. Fixes AB#12"}).Decode(t, &pr)
	if pr.Number != 1 || pr.State != "open" || pr.Base != "main" || pr.HeadSHA != first || pr.Author != "bob" {
		t.Fatalf("opened %+v", pr)
	}
	p := getPull(t, bob, "1")
	if *p.Mergeable || !hasBlocker(p, "0 approvals of 1 required") || !hasBlocker(p, "ci/build (not reported)") {
		t.Fatalf("fresh pull request: mergeable=%v blockers=%v", *p.Mergeable, p.Blockers)
	}
	bob.Must(http.StatusForbidden, "POST", repoAPI+"/pulls/1/reviews", scm.ReviewRequest{State: "approved"})
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls/1/reviews", scm.ReviewRequest{State: "approved", Body: "LGTM"})
	res := bob.Do("PUT", repoAPI+"/pulls/1/merge", scm.MergeRequest{})
	if res.Status != http.StatusForbidden || !strings.Contains(string(res.Body), "required checks not passed: ci/build") {
		t.Fatalf("merge without the check = %d %s", res.Status, res.Body)
	}
	ci.Must(http.StatusCreated, "POST", repoAPI+"/statuses/"+first, scm.StatusRequest{State: "pending", Context: "ci/build"})
	if p := getPull(t, bob, "1"); !hasBlocker(p, "ci/build (pending)") {
		t.Errorf("pending check: blockers=%v", p.Blockers)
	}
	ci.Must(http.StatusCreated, "POST", repoAPI+"/statuses/"+first, scm.StatusRequest{State: "success", Context: "ci/build",
		TargetURL: "https://ci.example.test/runs/1"})
	if p := getPull(t, bob, "1"); !*p.Mergeable || len(p.Blockers) != 0 {
		t.Fatalf("approved and checked: mergeable=%v blockers=%v", *p.Mergeable, p.Blockers)
	}

	// A new push: the approval of the older head no longer counts.
	second := w.commit(t, work, "fix the feature", map[string]string{"feature.go": "package app\n\nfunc Feature() int { return 2 }\n"})
	w.must(t, work, "push", "--quiet", "origin", "feature")
	p = getPull(t, bob, "1")
	if p.HeadSHA != second || *p.Mergeable || !hasBlocker(p, "0 approvals of 1 required") || !hasBlocker(p, "ci/build (not reported)") {
		t.Fatalf("after a new push: head=%s mergeable=%v blockers=%v", p.HeadSHA, *p.Mergeable, p.Blockers)
	}
	var reviews []scm.ReviewJSON
	bob.Must(http.StatusOK, "GET", repoAPI+"/pulls/1/reviews", nil).Decode(t, &reviews)
	if len(reviews) != 1 || !reviews[0].Dismissed {
		t.Errorf("reviews after the push: %+v", reviews)
	}
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls/1/reviews", scm.ReviewRequest{State: "approved"})
	ci.Must(http.StatusCreated, "POST", repoAPI+"/statuses/"+second, scm.StatusRequest{State: "success", Context: "ci/build"})

	var merged scm.PullJSON
	bob.Must(http.StatusOK, "PUT", repoAPI+"/pulls/1/merge", scm.MergeRequest{Strategy: "merge"}).Decode(t, &merged)
	if merged.State != "merged" || merged.MergedBy != "bob" || merged.MergeCommit == "" {
		t.Fatalf("merged %+v", merged)
	}
	w.must(t, dir, "pull", "--quiet", "origin", "main")
	if got := w.must(t, dir, "log", "-1", "--format=%H %P%n%s"); got != merged.MergeCommit+" "+strings.TrimSpace(w.must(t, dir, "rev-parse", "HEAD^1"))+" "+second+"\nMerge pull request #1 from feature\n" {
		t.Errorf("main's head after the merge:\n%s", got)
	}
	bob.Must(http.StatusConflict, "PUT", repoAPI+"/pulls/1/merge", scm.MergeRequest{})
	w.fsck(t, "app")
}

// TestPull_Strategies merges with squash and rebase, and refuses a
// pull request with conflicts.
func TestPull_Strategies(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	branch := func(name string, files ...map[string]string) {
		w.must(t, dir, "checkout", "--quiet", "-B", name, "origin/main")
		for i, f := range files {
			w.commit(t, dir, name+" commit "+string(rune('1'+i)), f)
		}
		w.must(t, dir, "push", "--quiet", "--force", "origin", name)
		w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls", scm.CreatePullRequest{Title: name, Head: name})
	}
	branch("squashme", map[string]string{"s1": "1\n"}, map[string]string{"s2": "2\n"})
	branch("rebaseme", map[string]string{"r1": "1\n"}, map[string]string{"r2": "2\n"})
	branch("clash", map[string]string{"README.md": "# theirs\n"})
	// main moves on, touching README.md as well.
	w.must(t, dir, "checkout", "--quiet", "main")
	w.commit(t, dir, "main moves", map[string]string{"README.md": "# ours\n"})
	w.must(t, dir, "push", "--quiet", "origin", "main")

	var p scm.PullJSON
	w.admin.Must(http.StatusOK, "PUT", repoAPI+"/pulls/1/merge", scm.MergeRequest{Strategy: "squash"}).Decode(t, &p)
	w.must(t, dir, "pull", "--quiet", "origin", "main")
	if got := w.must(t, dir, "log", "-1", "--format=%P|%s"); strings.Contains(strings.Split(got, "|")[0], " ") || !strings.HasSuffix(got, "|squashme (#1)\n") {
		t.Errorf("squash commit = %q", got)
	}
	w.admin.Must(http.StatusOK, "PUT", repoAPI+"/pulls/2/merge", scm.MergeRequest{Strategy: "rebase"}).Decode(t, &p)
	w.must(t, dir, "pull", "--quiet", "origin", "main")
	if got := w.must(t, dir, "log", "-3", "--format=%s|%an|%P"); strings.Count(got, "rebaseme") != 2 || !strings.HasPrefix(got, "rebaseme commit 2|Ada|") {
		t.Errorf("rebased history:\n%s", got)
	}
	if got := w.must(t, dir, "ls-files"); got != "README.md\nr1\nr2\ns1\ns2\n" {
		t.Errorf("files after both merges:\n%s", got)
	}

	p = getPull(t, w.admin, "3")
	if *p.Mergeable || len(p.Conflicts) != 1 || p.Conflicts[0] != "README.md" {
		t.Errorf("conflicting pull request: mergeable=%v conflicts=%v", *p.Mergeable, p.Conflicts)
	}
	res := w.admin.Do("PUT", repoAPI+"/pulls/3/merge", scm.MergeRequest{})
	if res.Status != http.StatusConflict || !strings.Contains(string(res.Body), "has conflicts with main in: README.md") {
		t.Errorf("merging a conflict = %d %s", res.Status, res.Body)
	}
	// Close and reopen.
	closed := "closed"
	w.admin.Must(http.StatusOK, "PATCH", repoAPI+"/pulls/3", scm.UpdatePullRequest{State: &closed}).Decode(t, &p)
	if p.State != "closed" {
		t.Errorf("closed: %+v", p)
	}
	w.admin.Must(http.StatusConflict, "PUT", repoAPI+"/pulls/3/merge", scm.MergeRequest{})
	open := "open"
	w.admin.Must(http.StatusOK, "PATCH", repoAPI+"/pulls/3", scm.UpdatePullRequest{State: &open}).Decode(t, &p)
	if p.State != "open" {
		t.Errorf("reopened: %+v", p)
	}
	w.fsck(t, "app")
}

// TestPull_CommentsAndFindings comments on lines of the diff and lists
// the secret a pull request introduces (and not one already on main).
func TestPull_CommentsAndFindings(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.commit(t, dir, "old secret", map[string]string{"old.env": "AWS_ACCESS_KEY_ID=AKIAZ2Y3X4W5V6U7T2S3\n"})
	w.must(t, dir, "push", "--quiet", "-o", "secret-bypass=already there", "origin", "main")
	w.must(t, dir, "checkout", "--quiet", "-b", "leaky")
	w.commit(t, dir, "leak", map[string]string{"deploy/app.env": "MODE=prod\nAWS_ACCESS_KEY_ID=" + awsKey + "\n", "main.go": "package main\n\nfunc main() {}\n"})
	w.must(t, dir, "push", "--quiet", "-o", "secret-bypass=reviewing in the PR", "origin", "leaky")
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls", scm.CreatePullRequest{Title: "leaky", Head: "leaky"})

	var files []scm.FileJSON
	w.admin.Must(http.StatusOK, "GET", repoAPI+"/pulls/1/files", nil).Decode(t, &files)
	if len(files) != 2 || files[0].Path != "deploy/app.env" || files[0].Status != "added" || files[0].Additions != 2 {
		t.Errorf("files = %+v", files)
	}
	var fs []scm.FindingJSON
	w.admin.Must(http.StatusOK, "GET", repoAPI+"/pulls/1/findings", nil).Decode(t, &fs)
	if len(fs) != 1 || fs[0].Path != "deploy/app.env" || fs[0].Line != 2 || fs[0].RuleID != "aws-access-key-id" {
		t.Errorf("findings = %+v", fs)
	}
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls/1/comments", scm.CommentRequest{Body: "Use the vault here", Path: "deploy/app.env", Line: 2})
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls/1/comments", scm.CommentRequest{Body: "Overall fine"})
	res := w.admin.Do("POST", repoAPI+"/pulls/1/comments", scm.CommentRequest{Body: "x", Path: "deploy/app.env", Line: 99})
	if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), "is not part of this pull request's diff") {
		t.Errorf("comment on a line outside the diff = %d %s", res.Status, res.Body)
	}
	var cs []scm.CommentJSON
	w.admin.Must(http.StatusOK, "GET", repoAPI+"/pulls/1/comments", nil).Decode(t, &cs)
	if len(cs) != 2 || cs[0].Path != "deploy/app.env" || cs[0].Line != 2 || cs[1].Path != "" {
		t.Errorf("comments = %+v", cs)
	}
}

// TestPull_PolicyGate: the pre-merge policy gate blocks, on top of branch
// protection, a pull request that adds a secret (pushed past push
// protection) or carries a failed check, says which policy and how to
// fix it, and records its decision in the policy decision log.
func TestPull_PolicyGate(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.must(t, dir, "checkout", "--quiet", "-b", "leaky")
	head := w.commit(t, dir, "leak", map[string]string{"deploy/app.env": "AWS_ACCESS_KEY_ID=" + awsKey + "\n"})
	w.must(t, dir, "push", "--quiet", "-o", "secret-bypass=reviewing in the PR", "origin", "leaky")
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls", scm.CreatePullRequest{Title: "leaky", Head: "leaky"})

	p := getPull(t, w.admin, "1")
	if *p.Mergeable || !hasBlocker(p, "RMP-PR-004") {
		t.Fatalf("pull request adding a secret: mergeable=%v blockers=%v", *p.Mergeable, p.Blockers)
	}
	res := w.admin.Do("PUT", repoAPI+"/pulls/1/merge", scm.MergeRequest{})
	if res.Status != http.StatusForbidden || !strings.Contains(string(res.Body), "RMP-PR-004") {
		t.Fatalf("merge of a pull request adding a secret = %d %s", res.Status, res.Body)
	}
	if strings.Contains(string(res.Body), awsKey) {
		t.Errorf("the refusal shows the secret: %s", res.Body)
	}

	// Deleting the file is not enough: the secret stays in the branch's
	// history.
	w.must(t, dir, "rm", "--quiet", "deploy/app.env")
	w.must(t, dir, "commit", "--quiet", "-m", "drop the key")
	w.must(t, dir, "push", "--quiet", "origin", "leaky")
	if p := getPull(t, w.admin, "1"); !hasBlocker(p, "RMP-PR-004") {
		t.Fatalf("secret deleted in a later commit: blockers=%v", p.Blockers)
	}
	// Rewriting the branch without it clears that policy; a failed check
	// still blocks.
	w.must(t, dir, "reset", "--quiet", "--hard", "main")
	head = w.commit(t, dir, "configure", map[string]string{"deploy/app.env": "MODE=prod\n"})
	w.must(t, dir, "push", "--quiet", "--force", "origin", "leaky")
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/statuses/"+head, scm.StatusRequest{State: "failure", Context: "ci/lint"})
	p = getPull(t, w.admin, "1")
	if *p.Mergeable || hasBlocker(p, "RMP-PR-004") || !hasBlocker(p, "check ci/lint is failure") {
		t.Fatalf("after removing the secret, with a failed check: mergeable=%v blockers=%v", *p.Mergeable, p.Blockers)
	}
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/statuses/"+head, scm.StatusRequest{State: "success", Context: "ci/lint"})
	w.admin.Must(http.StatusOK, "PUT", repoAPI+"/pulls/1/merge", scm.MergeRequest{})

	var ds []struct {
		Gate  string `json:"gate"`
		Allow bool   `json:"allow"`
	}
	w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/policy/decisions?subject=pr:acme/app%231", nil).Decode(t, &ds)
	denied, allowed := 0, 0
	for _, d := range ds {
		if d.Gate != "pre-merge" {
			t.Errorf("decision of gate %q for a pull request", d.Gate)
		}
		if d.Allow {
			allowed++
		} else {
			denied++
		}
	}
	if denied == 0 || allowed == 0 {
		t.Errorf("decision log for the pull request: %d denied, %d allowed, want both", denied, allowed)
	}
}
