package scm_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
)

// TestGitHTTP_CloneFetchPush pushes, clones and fetches with the stock
// git client over smart HTTP, authenticated with a token as the password.
func TestGitHTTP_CloneFetchPush(t *testing.T) {
	w := newWorld(t)
	r := w.createRepo(t, "app")
	if r.CloneURL != w.a.URL+"/acme/app.git" || !strings.HasPrefix(r.SSHURL, "ssh://git@localhost:") {
		t.Fatalf("clone URLs = %q, %q", r.CloneURL, r.SSHURL)
	}
	remote := w.cloneURL(t, "app", "admin", w.token)
	dir := w.workdir(t, remote)
	out := w.must(t, dir, "push", "origin", "main")
	if !strings.Contains(out, "* [new branch]      main -> main") {
		t.Errorf("push output:\n%s", out)
	}

	clone := t.TempDir()
	w.must(t, clone, "clone", "--quiet", remote, ".")
	if got := w.must(t, clone, "log", "--format=%s"); got != "first commit\n" {
		t.Errorf("cloned history = %q", got)
	}
	head := w.commit(t, dir, "second", map[string]string{"main.go": "package main\n"})
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.must(t, clone, "fetch", "--quiet", "origin")
	if got := strings.TrimSpace(w.must(t, clone, "rev-parse", "origin/main")); got != head {
		t.Errorf("fetched origin/main = %s, want %s", got, head)
	}

	var commits []scm.CommitJSON
	w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/repos/app/commits", nil).Decode(t, &commits)
	if len(commits) != 2 || commits[0].ID != head || commits[0].Message != "second" {
		t.Errorf("commits = %+v", commits)
	}
	// The push is audited with its ref and commits.
	found := false
	for _, e := range w.a.AuditSince(t, 0) {
		if e.Action == "repo.push" && e.Details["after"] == head {
			found = true
		}
	}
	if !found {
		t.Error("no repo.push audit entry for the second push")
	}
}

// TestGitHTTP_Unauthenticated: a private repository asks git for
// credentials, and a wrong token is refused.
func TestGitHTTP_Unauthenticated(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	out, err := w.run(t, t.TempDir(), "clone", w.cloneURL(t, "app", "", ""), "x")
	if err == nil || !strings.Contains(out, "could not read Username") {
		t.Errorf("anonymous clone: err=%v\n%s", err, out)
	}
	out, err = w.run(t, t.TempDir(), "clone", w.cloneURL(t, "app", "admin", "rpt_wrong"), "x")
	if err == nil || !strings.Contains(out, "Authentication failed") {
		t.Errorf("clone with a bad token: err=%v\n%s", err, out)
	}
	// Once public, anyone may clone, nobody anonymous may push.
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	public := true
	w.admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/orgs/acme/repos/app", scm.UpdateRepoRequest{Public: &public})
	clone := t.TempDir()
	w.must(t, clone, "clone", "--quiet", w.cloneURL(t, "app", "", ""), ".")
	w.commit(t, clone, "anonymous change", map[string]string{"x": "x\n"})
	out, err = w.run(t, clone, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "could not read Username") {
		t.Errorf("anonymous push to a public repository: err=%v\n%s", err, out)
	}
	// A signed-in outsider may read a public repository, not push to it.
	_, outsider := w.member(t, "outsider", "reader")
	w.admin.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/orgs/acme/members/outsider", nil)
	w.must(t, clone, "remote", "set-url", "origin", w.cloneURL(t, "app", "outsider", outsider))
	w.must(t, clone, "fetch", "--quiet", "origin")
	out, err = w.run(t, clone, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("outsider push to a public repository: err=%v\n%s", err, out)
	}
}
