package scm_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/scm/githttp"
)

// awsKey is a well-formed (fake) AWS access key id: the secret engine's
// aws-access-key-id rule finds it.
const awsKey = "AKIAQ7ZKXW3T4PLM2N6R"

// remoteHead returns the commit a branch of acme/REPO points at ("" when
// it does not exist), as the server has it.
func (w *world) remoteHead(t *testing.T, repo, branch string) string {
	t.Helper()
	var bs []scm.BranchJSON
	w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/repos/"+repo+"/branches", nil).Decode(t, &bs)
	for _, b := range bs {
		if b.Name == branch {
			return b.SHA
		}
	}
	return ""
}

func (w *world) auditActions(t *testing.T, since int64) map[string][]audit.Entry {
	t.Helper()
	out := map[string][]audit.Entry{}
	for _, e := range w.a.AuditSince(t, since) {
		out[e.Action] = append(out[e.Action], e)
	}
	return out
}

// fsck checks the server's copy of acme/REPO is intact.
func (w *world) fsck(t *testing.T, repo string) {
	t.Helper()
	r, err := w.a.SCM.Repo(t.Context(), "acme", repo)
	if err != nil {
		t.Fatal(err)
	}
	w.must(t, w.a.SCM.Path(r), "fsck", "--strict", "--no-dangling")
}

// TestPush_SecretRefusedThenBypassed pushes a commit holding an AWS key:
// git prints where it is and how to fix it, and nothing lands; a push
// with a bypass reason lands, is audited and reported; later pushes are
// not blamed for the secret already in the repository.
func TestPush_SecretRefusedThenBypassed(t *testing.T) {
	eachStore(t, testPush_SecretRefusedThenBypassed)
}

func testPush_SecretRefusedThenBypassed(t *testing.T, store apptest.Option) {
	w := newWorld(t, store)
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	base := w.remoteHead(t, "app", "main")
	leak := w.commit(t, dir, "add prod config", map[string]string{"config/prod.env": "REGION=eu-west-1\nAWS_ACCESS_KEY_ID=" + awsKey + "\n"})
	head := w.auditHeadOf(t)

	out, err := w.run(t, dir, "push", "origin", "main")
	if err == nil {
		t.Fatalf("the push of a secret succeeded:\n%s", out)
	}
	for _, want := range []string{
		"remote: rampart: push refused by push protection: 1 secret found in the commits you are pushing",
		"remote:   config/prod.env:2  aws-access-key-id",
		"remote:     commit " + leak[:12] + " by Ada",
		"remote: How to fix:",
		`remote:   git push -o secret-bypass="test fixture, not a live credential"`,
		"! [remote rejected] main -> main (pre-receive hook declined)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("git push output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, awsKey) {
		t.Errorf("the rejection prints the whole secret:\n%s", out)
	}
	if got := w.remoteHead(t, "app", "main"); got != base {
		t.Fatalf("main moved to %s after a refused push", got)
	}
	if acts := w.auditActions(t, head); len(acts["repo.push"]) != 0 {
		t.Errorf("a refused push was audited as a push: %v", acts)
	}

	// An empty reason is no bypass.
	out, err = w.run(t, dir, "push", "-o", "secret-bypass=", "origin", "main")
	if err == nil || !strings.Contains(out, "the bypass was not accepted: give a reason") {
		t.Errorf("bypass without a reason: err=%v\n%s", err, out)
	}

	out = w.must(t, dir, "push", "-o", "secret-bypass=fixture for the parser tests", "origin", "main")
	if !strings.Contains(out, "push protection bypassed for 1 secret(s)") {
		t.Errorf("bypassed push output:\n%s", out)
	}
	if got := w.remoteHead(t, "app", "main"); got != leak {
		t.Fatalf("main = %s after the bypass, want %s", got, leak)
	}
	acts := w.auditActions(t, head)
	bypass := acts["repo.push.secret_bypass"]
	if len(bypass) != 1 {
		t.Fatalf("bypass audit entries: %v", acts)
	}
	d := bypass[0].Details
	if d["reason"] != "fixture for the parser tests" || fmt.Sprint(d["rules"]) != "[aws-access-key-id]" || fmt.Sprint(d["locations"]) != "[config/prod.env:2]" {
		t.Errorf("bypass audit details = %v", d)
	}
	if bypass[0].ActorName != "admin" {
		t.Errorf("bypass audited as %q", bypass[0].ActorName)
	}
	if pushes := acts["repo.push"]; len(pushes) != 1 || pushes[0].Details["secret_bypass"] != true {
		t.Errorf("push audit entries: %v", pushes)
	}
	for _, e := range w.a.AuditSince(t, head) {
		if strings.Contains(fmt.Sprint(e.Details), awsKey) {
			t.Errorf("audit entry %s holds the secret", e.Action)
		}
	}

	// Only what a push brings is scanned.
	w.commit(t, dir, "unrelated", map[string]string{"main.go": "package main\n"})
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.fsck(t, "app")
}

func (w *world) auditHeadOf(t *testing.T) int64 { t.Helper(); return w.a.AuditHead(t) }

// TestPush_BranchProtection checks each refusal of a protected branch as
// the git client prints it.
func TestPush_BranchProtection(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.must(t, dir, "push", "--quiet", "origin", "main:release/1.0")
	protect := func(p scm.ProtectionJSON) {
		w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/repos/app/protections", p)
	}
	protect(scm.ProtectionJSON{Pattern: "main", RequirePR: true})
	protect(scm.ProtectionJSON{Pattern: "release/*"})

	w.commit(t, dir, "direct change", map[string]string{"a.txt": "a\n"})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"direct push to a branch that requires pull requests", []string{"push", "origin", "main"},
			`refs/heads/main: changes must be made through a pull request (protected by rule "main")`},
		{"force push", []string{"push", "--force", "origin", "HEAD~1:release/1.0"}, ""},
		{"deletion", []string{"push", "origin", ":release/1.0"},
			`refs/heads/release/1.0: deleting this branch is not allowed (protected by rule "release/*")`},
		{"deleting the default branch", []string{"push", "origin", ":main"}, "refs/heads/main: the default branch cannot be deleted"},
		{"a ref outside branches and tags", []string{"push", "origin", "HEAD:refs/notes/x"},
			"refs/notes/x: only branches (refs/heads/) and tags (refs/tags/) may be pushed"},
	}
	// A real force push: rewrite release/1.0 to an unrelated commit.
	orphan := t.TempDir()
	w.must(t, orphan, "init", "--quiet", "--initial-branch=main")
	w.commit(t, orphan, "unrelated root", map[string]string{"x": "x\n"})
	w.must(t, orphan, "remote", "add", "origin", w.cloneURL(t, "app", "admin", w.token))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.remoteHead(t, "app", "main") + w.remoteHead(t, "app", "release/1.0")
			head := w.auditHeadOf(t)
			where, args, want := dir, tt.args, tt.want
			if tt.name == "force push" {
				where, args = orphan, []string{"push", "--force", "origin", "main:release/1.0"}
				want = `refs/heads/release/1.0: force pushes are not allowed (protected by rule "release/*"); fetch and merge or rebase instead`
			}
			out, err := w.run(t, where, args...)
			if err == nil {
				t.Fatalf("push succeeded:\n%s", out)
			}
			if !strings.Contains(out, "remote: rampart: push refused by branch protection:") || !strings.Contains(out, "remote:   "+want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
			if after := w.remoteHead(t, "app", "main") + w.remoteHead(t, "app", "release/1.0"); after != before {
				t.Errorf("a refused push moved a branch")
			}
			if acts := w.auditActions(t, head); len(acts["repo.push"])+len(acts["repo.push.delete"]) != 0 {
				t.Errorf("refused push audited: %v", acts)
			}
		})
	}
	// Unprotected branches take anything.
	w.must(t, dir, "push", "--quiet", "origin", "HEAD:feature")
	w.must(t, dir, "push", "--quiet", "origin", ":feature")
}

// TestPush_Concurrent pushes two different commits to one branch at the
// same time: one lands, the other is told to fetch first, and the
// repository is intact.
func TestPush_Concurrent(t *testing.T) { eachStore(t, testPush_Concurrent) }

func testPush_Concurrent(t *testing.T, store apptest.Option) {
	w := newWorld(t, store)
	w.createRepo(t, "app")
	remote := w.cloneURL(t, "app", "admin", w.token)
	first := w.workdir(t, remote)
	w.must(t, first, "push", "--quiet", "origin", "main")
	second := t.TempDir()
	w.must(t, second, "clone", "--quiet", remote, ".")
	for round := range 3 {
		a := w.commit(t, first, fmt.Sprintf("a%d", round), map[string]string{fmt.Sprintf("a%d.txt", round): "a\n"})
		b := w.commit(t, second, fmt.Sprintf("b%d", round), map[string]string{fmt.Sprintf("b%d.txt", round): "b\n"})
		var (
			wg   sync.WaitGroup
			outs [2]string
			errs [2]error
		)
		for i, dir := range []string{first, second} {
			wg.Go(func() { outs[i], errs[i] = w.run(t, dir, "push", "origin", "main") })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: want exactly one push to land: %v / %v\n%s\n%s", round, errs[0], errs[1], outs[0], outs[1])
		}
		winner, loser := a, 1
		if errs[0] != nil {
			winner, loser = b, 0
		}
		if !strings.Contains(strings.ToLower(outs[loser]), "fetch first") {
			t.Errorf("round %d: the refused push does not say to fetch first:\n%s", round, outs[loser])
		}
		if got := w.remoteHead(t, "app", "main"); got != winner {
			t.Fatalf("round %d: main = %s, want the landed push %s", round, got, winner)
		}
		// Both catch up for the next round.
		for _, dir := range []string{first, second} {
			w.must(t, dir, "pull", "--quiet", "--rebase", "origin", "main")
			w.must(t, dir, "push", "--quiet", "origin", "main")
		}
	}
	w.fsck(t, "app")
}

// TestPush_Oversized refuses a pack over the size limit with git's own
// message, and leaves nothing behind.
func TestPush_Oversized(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.SCM.MaxPushBytes = 256 << 10 }))
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	w.commit(t, dir, "big file", map[string]string{"blob.bin": hex.EncodeToString(big)})
	out, err := w.run(t, dir, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "pack exceeds maximum allowed size") {
		t.Fatalf("oversized push: err=%v\n%s", err, out)
	}
	r, _ := w.a.SCM.Repo(t.Context(), "acme", "app")
	objs, _ := filepath.Glob(filepath.Join(w.a.SCM.Path(r), "objects", "tmp_objdir-*"))
	if len(objs) != 0 {
		t.Errorf("quarantine left behind: %v", objs)
	}
	w.fsck(t, "app")
	// A small push still works.
	w.must(t, dir, "reset", "--quiet", "--hard", "HEAD~1")
	w.commit(t, dir, "small", map[string]string{"small.txt": "ok\n"})
	w.must(t, dir, "push", "--quiet", "origin", "main")
}

// receivePack posts a raw receive-pack request.
func (w *world) receivePack(t *testing.T, repo string, body []byte) string {
	t.Helper()
	req, err := http.NewRequest("POST", w.a.URL+"/acme/"+repo+".git/git-receive-pack", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	req.SetBasicAuth("admin", w.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestPush_MalformedRequests sends receive-pack requests no git client
// would: garbage pack data, funny ref names. Each is refused and the
// repository stays intact.
func TestPush_MalformedRequests(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	old := w.remoteHead(t, "app", "main")
	next := w.commit(t, dir, "next", map[string]string{"n.txt": "n\n"})
	cmd := func(ref string) string {
		return githttp.PktLine(old+" "+next+" "+ref+"\x00report-status side-band-64k\n") + "0000"
	}
	tests := []struct {
		name, body, want string
	}{
		{"garbage instead of a pack", cmd("refs/heads/main") + "PACK\x00\x00\x00\x02\x00\x00\x00\x01garbage garbage", "unpack"},
		{"truncated pack", cmd("refs/heads/main") + "PACK\x00\x00", "unpack"},
		{"a ref name with ..", cmd("refs/heads/a..b") + "PACK\x00\x00\x00\x02\x00\x00\x00\x00", "refs/heads/a..b"},
		{"a ref name with a control character", cmd("refs/heads/a\x01b") + "PACK\x00\x00\x00\x02\x00\x00\x00\x00", "ng"},
		{"a bad pkt-line length", "zzzz" + old, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := w.auditHeadOf(t)
			out := w.receivePack(t, "app", []byte(tt.body))
			if tt.want != "" && !strings.Contains(out, tt.want) {
				t.Errorf("response lacks %q: %q", tt.want, out)
			}
			if got := w.remoteHead(t, "app", "main"); got != old {
				t.Errorf("main moved to %s", got)
			}
			if acts := w.auditActions(t, head); len(acts["repo.push"])+len(acts["repo.push.create"]) != 0 {
				t.Errorf("malformed push audited: %v", acts)
			}
			w.fsck(t, "app")
		})
	}
	// The real push of the same commit works.
	w.must(t, dir, "push", "--quiet", "origin", "main")
	if got := w.remoteHead(t, "app", "main"); got != next {
		t.Errorf("main = %s after a real push", got)
	}
}
