package alerts_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/secrets/secretstest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// gitRepo is a bare repository, as scm keeps them, with a working copy
// that pushes to it, all made with the git binary.
type gitRepo struct {
	t    testing.TB
	git  string
	Bare string
	work string
}

func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.test", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.test")
}

func newRepo(t testing.TB) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, git: testenv.LookPath(t, "git"), Bare: filepath.Join(t.TempDir(), "repo.git"), work: t.TempDir()}
	r.run("", "init", "-q", "--bare", "-b", "main", r.Bare)
	r.run(r.work, "init", "-q", "-b", "main")
	r.run(r.work, "remote", "add", "origin", r.Bare)
	return r
}

func (r *gitRepo) run(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(r.git, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content deletes one), commits them and
// pushes to branch; it returns the commit id.
func (r *gitRepo) commit(branch, msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.run(r.work, "add", "-A")
	r.run(r.work, "commit", "-q", "--allow-empty", "-m", msg)
	r.run(r.work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return r.run(r.work, "rev-parse", "HEAD")
}

// repoTable stands in for scm's directory of repositories.
type repoTable struct {
	mu    sync.Mutex
	repos map[int64][2]string
}

func (r *repoTable) RepoPath(_ context.Context, id int64) (string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.repos[id]
	if !ok {
		return "", "", apperr.E(apperr.NotFound, "no repository %d", id)
	}
	return p[0], p[1], nil
}

func (r *repoTable) add(id int64, path, def string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.repos[id] = [2]string{path, def}
}

// vulnlibOSV is an advisory of our own, in OSV's format, for a module of
// our own: versions before 1.2.0 are affected.
const vulnlibOSV = `{"schema_version": "1.6.0", "id": "GO-2099-0001", "modified": "2099-01-01T00:00:00Z",
 "published": "2099-01-01T00:00:00Z", "aliases": ["CVE-2099-0001"], "summary": "Remote code execution in vulnlib",
 "details": "vulnlib runs what it is sent.",
 "affected": [{"package": {"ecosystem": "Go", "name": "example.com/vulnlib"},
  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}`

// advisories writes an advisory database holding vulnlibOSV at path.
func advisories(t testing.TB, path string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "GO-2099-0001.json"), []byte(vulnlibOSV), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := advisory.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Import(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
}

// goMod requires vulnlib at version.
func goMod(version string) string {
	return "module example.com/shop\n\ngo 1.22\n\nrequire example.com/vulnlib v" + version + "\n"
}

// awsKey returns a line holding a synthetic AWS access key id, the same
// for a seed.
func awsKey(seed uint64) string {
	text, _, _ := secretstest.Expand(`AWS_ACCESS_KEY_ID=«AKIA{7:16}»`, rand.New(rand.NewPCG(seed, seed)))
	return text
}

// dockerfile has misconfigurations the IaC checks report.
const dockerfile = "FROM debian\nRUN apt-get update\n"

// env is an alerts service, with boards, identity, audit and the event bus
// dispatching, on a fresh database; one org (acme, owned by alice) has a
// repository acme/shop (id 7) built with git.
type env struct {
	db     *store.DB
	ids    *identity.Service
	audit  *audit.Log
	bus    *events.Bus
	boards *boards.Service
	svc    *alerts.Service
	clock  *fakeclock.Clock
	repos  *repoTable
	alice  identity.User
	acme   identity.Org
	repo   *gitRepo
}

const repoID = 7

// each runs fn on SQLite and PostgreSQL, in parallel with other such tests.
func each(t *testing.T, limits alerts.Limits, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fn(t, newEnv(t, db, limits))
	}, events.Migrations, audit.Migrations, identity.Migrations, boards.Migrations, alerts.Migrations)
}

func newEnv(t *testing.T, db *store.DB, limits alerts.Limits) *env {
	t.Helper()
	c := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	sealer, err := keyring.FromKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, c.Now)
	ids, err := identity.New(identity.Deps{DB: db, Audit: l, Sealer: sealer, Logger: logging.Discard(), Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New(db, logging.Discard(), nil)
	bus.Poll = 20 * time.Millisecond
	repos := &repoTable{repos: map[int64][2]string{}}
	b, err := boards.New(boards.Deps{DB: db, IDs: ids, Audit: l, Events: bus, Logger: logging.Discard(), Clock: c.Now, Repos: repos})
	if err != nil {
		t.Fatal(err)
	}
	advPath := filepath.Join(t.TempDir(), "advisories.db")
	advisories(t, advPath)
	scanners := &alerts.LocalScanner{AdvisoryPath: advPath}
	t.Cleanup(func() { scanners.Close() })
	svc, err := alerts.New(alerts.Deps{DB: db, IDs: ids, Audit: l, Events: bus, Logger: logging.Discard(), Scanner: scanners.Scanner,
		WorkItems: b, Repos: repos, Clock: c.Now, PublicURL: "https://rampart.example", TempDir: t.TempDir(), Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = bus.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e := &env{db: db, ids: ids, audit: l, bus: bus, boards: b, svc: svc, clock: c, repos: repos}
	if e.alice, err = ids.CreateUser(t.Context(), identity.NewUser{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if e.acme, err = ids.CreateOrg(t.Context(), e.alice.ID, "acme", ""); err != nil {
		t.Fatal(err)
	}
	e.repo = newRepo(t)
	repos.add(repoID, e.repo.Bare, "main")
	return e
}

// as returns a context acting as u.
func as(ctx context.Context, u identity.User) context.Context {
	return reqinfo.WithActor(reqinfo.With(ctx, reqinfo.Info{RequestID: "req-test", RemoteIP: "192.0.2.1"}), u.ID, u.Username)
}

// push publishes scm's push event for commit on branch of acme/shop and
// waits until alerts has handled it.
func (e *env) push(t *testing.T, branch, commit string) {
	t.Helper()
	e.publish(t, boards.PushEvent{Repo: "acme/shop", RepoID: repoID, Ref: "refs/heads/" + branch,
		Before: strings.Repeat("0", 40), After: commit, DefaultBranch: branch == "main", Pusher: "alice",
		Commits: []boards.PushCommit{{ID: commit, Message: "change"}}})
}

func (e *env) publish(t *testing.T, p any) {
	t.Helper()
	if err := e.bus.PublishNow(t.Context(), boards.EventPush, p); err != nil {
		t.Fatal(err)
	}
	var last int64
	if err := e.db.QueryRow(t.Context(), "SELECT MAX(seq) FROM events WHERE type = 'scm.push'").Scan(&last); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var cur int64
		err := e.db.QueryRow(t.Context(), "SELECT seq FROM event_cursors WHERE subscriber = 'alerts'").Scan(&cur)
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			t.Fatal(err)
		}
		if cur >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts did not handle push %d (cursor at %d)", last, cur)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// all returns every alert of acme, by kind.
func (e *env) all(t *testing.T) map[string][]alerts.Alert {
	t.Helper()
	as, err := e.svc.List(t.Context(), e.acme, alerts.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]alerts.Alert{}
	for _, a := range as {
		out[string(a.Kind)] = append(out[string(a.Kind)], a)
	}
	return out
}

// one returns the only alert of a kind.
func (e *env) one(t *testing.T, kind string) alerts.Alert {
	t.Helper()
	as := e.all(t)[kind]
	if len(as) != 1 {
		t.Fatalf("%d %s alerts, want 1: %+v", len(as), kind, as)
	}
	return as[0]
}

// published counts the events of type typ, and returns the payload of the
// last.
func (e *env) published(t *testing.T, typ string) (int, string) {
	t.Helper()
	var n int
	if err := e.db.QueryRow(t.Context(), "SELECT COUNT(*) FROM events WHERE type = ?", typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var last string
	err := e.db.QueryRow(t.Context(), "SELECT payload FROM events WHERE type = ? ORDER BY seq DESC LIMIT 1", typ).Scan(&last)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		t.Fatal(err)
	}
	return n, last
}

func wantKind(t *testing.T, err error, k apperr.Kind) {
	t.Helper()
	if got := apperr.KindOf(err); err == nil || got != k {
		t.Fatalf("err = %v (kind %v), want kind %v", err, got, k)
	}
}
