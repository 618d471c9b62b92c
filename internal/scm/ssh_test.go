package scm_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/testenv"
)

// sshKey makes a key pair with the real ssh-keygen and returns the
// private key file and the public key line.
func sshKey(t *testing.T, name string) (string, string) {
	t.Helper()
	keygen := testenv.LookPath(t, "ssh-keygen")
	dir := t.TempDir()
	file := filepath.Join(dir, name)
	w := &world{git: keygen}
	if out, err := w.run(t, dir, "-q", "-t", "ed25519", "-N", "", "-C", name+"@laptop", "-f", file); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.TrimSpace(string(pub))
}

// sshGit returns a git runner that connects with key, trusting only the
// server's real host key.
func (w *world) sshGit(t *testing.T, key string) func(dir string, args ...string) (string, error) {
	t.Helper()
	testenv.LookPath(t, "ssh")
	_, port, _ := net.SplitHostPort(w.a.SSHAddr())
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte("[localhost]:"+port+" "+w.a.SSHHostKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := "ssh -i " + key + " -o IdentitiesOnly=yes -o UserKnownHostsFile=" + known + " -o StrictHostKeyChecking=yes -o BatchMode=yes"
	return func(dir string, args ...string) (string, error) {
		return w.run(t, dir, append([]string{"-c", "core.sshCommand=" + cmd}, args...)...)
	}
}

// TestGitSSH_CloneAndPush uses registered keys with the real ssh and git
// clients: an unknown key is refused, a reader clones but cannot push, a
// developer pushes, and push protection applies over SSH too.
func TestGitSSH_CloneAndPush(t *testing.T) {
	w := newWorld(t)
	r := w.createRepo(t, "app")
	dev, _ := w.member(t, "dev", "developer")
	rdr, _ := w.member(t, "rdr", "reader")
	devKey, devPub := sshKey(t, "dev")
	rdrKey, rdrPub := sshKey(t, "rdr")
	strangerKey, _ := sshKey(t, "stranger")
	var k scm.SSHKeyJSON
	dev.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/ssh-keys", scm.SSHKeyRequest{Key: devPub}).Decode(t, &k)
	if k.Name != "dev@laptop" || k.Type != "ssh-ed25519" || !strings.HasPrefix(k.Fingerprint, "SHA256:") {
		t.Errorf("registered key %+v", k)
	}
	rdr.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/ssh-keys", scm.SSHKeyRequest{Key: rdrPub, Name: "work"})
	// The same key cannot belong to two users.
	rdr.Must(http.StatusConflict, "POST", httpapi.Prefix+"/user/ssh-keys", scm.SSHKeyRequest{Key: devPub})

	devGit := w.sshGit(t, devKey)
	dir := w.workdir(t, r.SSHURL)
	if out, err := devGit(dir, "push", "origin", "main"); err != nil {
		t.Fatalf("developer push over SSH: %v\n%s", err, out)
	}
	clone := t.TempDir()
	if out, err := w.sshGit(t, rdrKey)(clone, "clone", "--quiet", r.SSHURL, "."); err != nil {
		t.Fatalf("reader clone over SSH: %v\n%s", err, out)
	}
	w.commit(t, clone, "reader change", map[string]string{"r.txt": "r\n"})
	out, err := w.sshGit(t, rdrKey)(clone, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "rampart: repo.write needs the developer role (you have reader)") {
		t.Errorf("reader push over SSH: err=%v\n%s", err, out)
	}
	out, err = w.sshGit(t, strangerKey)(t.TempDir(), "clone", r.SSHURL, "x")
	if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("unknown key: err=%v\n%s", err, out)
	}
	out, err = devGit(t.TempDir(), "clone", strings.Replace(r.SSHURL, "/acme/app.git", "/acme/..%2f..git", 1), "x")
	if err == nil || !strings.Contains(out, "rampart:") {
		t.Errorf("bad path over SSH: err=%v\n%s", err, out)
	}

	w.commit(t, dir, "leak", map[string]string{"k.env": "AWS_ACCESS_KEY_ID=" + awsKey + "\n"})
	out, err = devGit(dir, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "remote:   k.env:1  aws-access-key-id") {
		t.Errorf("secret over SSH: err=%v\n%s", err, out)
	}
	// Removing the key locks it out.
	dev.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/user/ssh-keys/"+itoa(k.ID), nil)
	if out, err := devGit(t.TempDir(), "clone", r.SSHURL, "x"); err == nil {
		t.Errorf("removed key still works:\n%s", out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPush_RequireSignedCommits: a branch that requires signatures takes
// commits signed with a key registered in Rampart (git's SSH signing)
// and refuses unsigned ones and ones signed with an unknown key.
func TestPush_RequireSignedCommits(t *testing.T) {
	w := newWorld(t)
	w.createRepo(t, "app")
	key, pub := sshKey(t, "signer")
	stranger, _ := sshKey(t, "stranger")
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/ssh-keys", scm.SSHKeyRequest{Key: pub})
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	w.admin.Must(http.StatusOK, "PUT", repoAPI+"/protections", scm.ProtectionJSON{Pattern: "main", RequireSigned: true})
	w.must(t, dir, "config", "gpg.format", "ssh")

	unsigned := w.commit(t, dir, "unsigned", map[string]string{"u.txt": "u\n"})
	out, err := w.run(t, dir, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "commits must be signed with an SSH key registered in Rampart; not verified: "+unsigned[:12]) {
		t.Fatalf("unsigned push: err=%v\n%s", err, out)
	}
	w.must(t, dir, "reset", "--quiet", "--hard", "HEAD~1")

	w.must(t, dir, "config", "user.signingkey", stranger)
	w.write(t, dir, "s.txt", "stranger\n")
	w.must(t, dir, "add", ".")
	w.must(t, dir, "commit", "--quiet", "-S", "-m", "signed by a stranger")
	if out, err := w.run(t, dir, "push", "origin", "main"); err == nil || !strings.Contains(out, "not verified") {
		t.Fatalf("push signed with an unknown key: err=%v\n%s", err, out)
	}
	w.must(t, dir, "reset", "--quiet", "--hard", "HEAD~1")

	w.must(t, dir, "config", "user.signingkey", key)
	w.write(t, dir, "k.txt", "known\n")
	w.must(t, dir, "add", ".")
	w.must(t, dir, "commit", "--quiet", "-S", "-m", "signed")
	w.must(t, dir, "push", "--quiet", "origin", "main")
}
