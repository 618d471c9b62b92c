package pipeline_test

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// world is a running Rampart with an org "acme", a repository acme/app and
// a local clone pushing to it with the real git client.
type world struct {
	a     *apptest.App
	admin *apptest.Client
	token string
	git   string
	home  string
	dir   string
}

func newWorld(t testing.TB, opts ...apptest.Option) *world {
	t.Helper()
	w := &world{git: testenv.LookPath(t, "git"), home: t.TempDir()}
	w.a = apptest.Start(t, opts...)
	w.token = w.a.AdminToken(t)
	w.admin = w.a.Client(t, w.token)
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/repos", scm.CreateRepoRequest{Name: "app"})
	w.dir = t.TempDir()
	u, _ := url.Parse(w.a.URL + "/acme/app.git")
	u.User = url.UserPassword("admin", w.token)
	w.must(t, "init", "--quiet", "--initial-branch=main")
	w.must(t, "config", "commit.gpgsign", "false")
	w.must(t, "remote", "add", "origin", u.String())
	return w
}

// requireContainers skips (or fails under CI) when jobs cannot run in
// runc containers here.
func requireContainers(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 || !container.Available() {
		testenv.Missing(t, "root with runc (the container executor)")
	}
}

func (w *world) must(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(w.git, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "HOME="+w.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+filepath.Join(w.home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0", "LANG=C", "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.test",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// push commits the files and pushes main; it returns the commit.
func (w *world) push(t testing.TB, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(w.dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.must(t, "add", "-A")
	w.must(t, "commit", "--quiet", "--allow-empty", "-m", "change")
	w.must(t, "push", "--quiet", "origin", "main")
	return strings.TrimSpace(w.must(t, "rev-parse", "HEAD"))
}

const runsPath = httpapi.Prefix + "/orgs/acme/repos/app/pipelines/runs"

// waitRun waits for run number n to finish.
func (w *world) waitRun(t testing.TB, n int64) pipeline.RunJSON {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp := w.admin.Do("GET", runsPath+"/"+strconv.FormatInt(n, 10), nil)
		if resp.Status == http.StatusOK {
			var r pipeline.RunJSON
			resp.Decode(t, &r)
			if r.Status != pipeline.StatusQueued && r.Status != pipeline.StatusRunning {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run #%d did not finish in time (last answer %d %s)", n, resp.Status, resp.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *world) log(t testing.TB, n int64, job pipeline.JobJSON) string {
	t.Helper()
	return string(w.admin.Must(http.StatusOK, "GET", runsPath+"/"+strconv.FormatInt(n, 10)+"/jobs/"+strconv.FormatInt(job.ID, 10)+"/log", nil).Body)
}

// statuses waits for the commit's status checks to reach want (the run's
// end is recorded a moment before its check is posted).
func (w *world) statuses(t testing.TB, sha, want string) []scm.StatusJSON {
	t.Helper()
	var sts []scm.StatusJSON
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/repos/app/statuses/"+sha, nil).Decode(t, &sts)
		if len(sts) > 0 && sts[0].State == want {
			break
		}
	}
	return sts
}

func jobNamed(t testing.TB, r pipeline.RunJSON, name string) pipeline.JobJSON {
	t.Helper()
	for _, j := range r.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("run #%d has no job %q: %+v", r.Number, name, r.Jobs)
	return pipeline.JobJSON{}
}

const e2eDef = `on:
  push:
    branches: [main]
  manual: true
env:
  GREETING: hello
jobs:
  build:
    steps:
      - name: who
        run: |
          echo "uid=$(id -u) greeting=$GREETING run=$RAMPART_RUN"
          cat README.md
          printf '\033[32mgreen\033[0m\n'
          mkdir -p out && echo built > out/app.txt
    artifacts: [out]
  test:
    needs: [build]
    matrix:
      flavour: [a, b]
    steps:
      - run: echo "testing ${{ matrix.flavour }} $MATRIX_FLAVOUR"
  never:
    needs: [test]
    if: branch == 'release'
    steps:
      - run: echo should not run
`

func TestE2E_PushRunsPipeline(t *testing.T) {
	requireContainers(t)
	w := newWorld(t)
	sha := w.push(t, map[string]string{"README.md": "# app\n", pipeline.DefinitionPath: e2eDef})
	r := w.waitRun(t, 1)
	if r.Status != pipeline.StatusSuccess || r.SHA != sha || r.Event != pipeline.EventPush || r.Ref != "refs/heads/main" {
		t.Fatalf("run %+v", r)
	}
	build := jobNamed(t, r, "build")
	if build.Executor != pipeline.ExecutorContainer || !build.Isolated || build.Status != pipeline.StatusSuccess {
		t.Errorf("build job %+v", build)
	}
	log := w.log(t, 1, build)
	for _, want := range []string{"uid=65534 greeting=hello run=1", "# app", "\x1b[32mgreen\x1b[0m"} {
		if !strings.Contains(log, want) {
			t.Errorf("build log lacks %q:\n%s", want, log)
		}
	}
	for _, flavour := range []string{"a", "b"} {
		j := jobNamed(t, r, "test (flavour="+flavour+")")
		if l := w.log(t, 1, j); !strings.Contains(l, "testing "+flavour+" "+flavour) {
			t.Errorf("matrix job %s log:\n%s", flavour, l)
		}
	}
	if j := jobNamed(t, r, "never"); j.Status != pipeline.StatusSkipped {
		t.Errorf("job with a false condition: %+v", j)
	}
	// The status check on the commit.
	sts := w.statuses(t, sha, scm.CheckSuccess)
	if len(sts) != 1 || sts[0].Context != pipeline.StatusContext || sts[0].State != scm.CheckSuccess {
		t.Errorf("status checks %+v", sts)
	}
	// Artifacts download.
	resp := w.admin.Must(http.StatusOK, "GET", runsPath+"/1/jobs/"+strconv.FormatInt(build.ID, 10)+"/artifacts", nil)
	if len(resp.Body) < 20 || resp.Body[0] != 0x1f {
		t.Errorf("artifacts are not a gzip: %q", resp.Body)
	}
}

func TestE2E_BadDefinitionRefused(t *testing.T) {
	w := newWorld(t)
	sha := w.push(t, map[string]string{pipeline.DefinitionPath: "jobs:\n  a:\n    needs: [b]\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    steps:\n      - release: prod\n"})
	r := w.waitRun(t, 1)
	if r.Status != pipeline.StatusFailed || !strings.Contains(r.Reason, ".rampart/pipeline.yaml:8: ") || !strings.Contains(r.Reason, `unknown step type or key "release"`) {
		t.Errorf("run %+v; want failed naming line 8", r)
	}
	if len(r.Jobs) != 0 {
		t.Errorf("jobs of an invalid definition were created: %+v", r.Jobs)
	}
	sts := w.statuses(t, sha, scm.CheckFailure)
	if len(sts) != 1 || sts[0].State != scm.CheckFailure || !strings.Contains(sts[0].Description, "pipeline.yaml:") {
		t.Errorf("status checks %+v", sts)
	}
	// A secret the vault does not grant (the repository is in no project,
	// so no pipeline policy can name it): refused before anything runs.
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs:\n  a:\n    secrets: {TOKEN: ci/token}\n    steps: [{run: echo $TOKEN}]\n"})
	r = w.waitRun(t, 2)
	if r.Status != pipeline.StatusFailed || !strings.Contains(r.Reason, "secret ci/token: ") {
		t.Errorf("run %+v; want refused naming the secret", r)
	}
}

// A fork bomb, a disk filler and a log flooder each fail their job through
// its limits, and Rampart stays healthy: the next run succeeds.
func TestE2E_LimitsStopAbuse(t *testing.T) {
	requireContainers(t)
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Workers = 3 }))
	def := `jobs:
  forkbomb:
    timeout: 8s
    limits: {pids: "64"}
    steps:
      - run: |
          bomb() { bomb | bomb & }
          bomb
          sleep 2
          echo "processes: $(ls /proc | grep -c '^[0-9]')"
          wait
  diskfill:
    limits: {disk: 8Mi}
    steps:
      - run: dd if=/dev/zero of=fill bs=1M count=64
  flood:
    limits: {log: 1Mi}
    timeout: 60s
    steps:
      - run: yes 'flooding the log with a long line of text' | head -c 1000000000
`
	w.push(t, map[string]string{pipeline.DefinitionPath: def})
	r := w.waitRun(t, 1)
	if r.Status != pipeline.StatusFailed {
		t.Errorf("run %+v; want failed", r)
	}
	for _, name := range []string{"forkbomb", "diskfill", "flood"} {
		j := jobNamed(t, r, name)
		if j.Status != pipeline.StatusFailed {
			t.Errorf("job %s: %+v; want failed", name, j)
		}
	}
	fb := jobNamed(t, r, "forkbomb")
	// Forks were refused (the shell says so; Rampart adds a line when it
	// saw the cgroup's pids.max event while the job ran).
	if l := w.log(t, 1, fb); !strings.Contains(l, "process limit") && !strings.Contains(l, "Cannot fork") {
		t.Errorf("fork bomb log does not name the process limit:\n%s", l[max(0, len(l)-500):])
	}
	if l := w.log(t, 1, jobNamed(t, r, "diskfill")); !strings.Contains(l, "No space left on device") {
		t.Errorf("disk filler log:\n%s", l)
	}
	flood := jobNamed(t, r, "flood")
	if !strings.Contains(flood.Reason, "log exceeded") || flood.LogBytes > 1<<20+4096 {
		t.Errorf("flood job %+v", flood)
	}
	if l := w.log(t, 1, flood); !strings.Contains(l, "log truncated") {
		t.Errorf("flood log does not end with the truncation marker: %q", l[max(0, len(l)-200):])
	}
	w.admin.Must(http.StatusOK, "GET", "/healthz", nil)
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs: {ok: {steps: [{run: echo fine}]}}\n"})
	if r := w.waitRun(t, 2); r.Status != pipeline.StatusSuccess {
		t.Errorf("run after the abuse: %+v", r)
	}
}

// On both stores: the scheduler's queries run on PostgreSQL too.
func TestE2E_ManualCancelRerun(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testManualCancelRerun(t, apptest.WithStore(b.URL(t))) })
	}
}

func testManualCancelRerun(t *testing.T, st apptest.Option) {
	w := newWorld(t, st, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	w.push(t, map[string]string{pipeline.DefinitionPath: "on: {push: {branches: [release]}, manual: true}\njobs:\n  slow:\n    executor: host\n    steps: [{run: sleep 60}]\n"})
	// The push does not match the branch filter: no run.
	time.Sleep(300 * time.Millisecond)
	var runs []pipeline.RunJSON
	w.admin.Must(http.StatusOK, "GET", runsPath, nil).Decode(t, &runs)
	if len(runs) != 0 {
		t.Fatalf("a push to main started %+v despite branches: [release]", runs)
	}
	var r pipeline.RunJSON
	w.admin.Must(http.StatusCreated, "POST", runsPath, pipeline.StartRunRequest{Ref: "main"}).Decode(t, &r)
	if r.Number != 1 || r.Event != pipeline.EventManual || r.Actor != "admin" {
		t.Fatalf("manual run %+v", r)
	}
	// Wait until the job runs, then cancel.
	for deadline := time.Now().Add(30 * time.Second); ; {
		w.admin.Must(http.StatusOK, "GET", runsPath+"/1", nil).Decode(t, &r)
		if r.Jobs[0].Status == pipeline.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never ran: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	w.admin.Must(http.StatusOK, "POST", runsPath+"/1/cancel", nil).Decode(t, &r)
	if r.Status != pipeline.StatusCancelled {
		t.Errorf("after cancel: %+v", r)
	}
	r = w.waitRun(t, 1)
	if r.Jobs[0].Status != pipeline.StatusCancelled || time.Since(start) > 10*time.Second {
		t.Errorf("job after cancel: %+v (%v)", r.Jobs[0], time.Since(start))
	}
	w.admin.Must(http.StatusConflict, "POST", runsPath+"/1/cancel", nil)
	var rr pipeline.RunJSON
	w.admin.Must(http.StatusCreated, "POST", runsPath+"/1/rerun", nil).Decode(t, &rr)
	if rr.Number != 2 || rr.RerunOf != r.ID || rr.SHA != r.SHA {
		t.Errorf("rerun %+v", rr)
	}
	w.admin.Must(http.StatusOK, "POST", runsPath+"/2/cancel", nil)
	// Audited.
	body := string(w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/audit?limit=200", nil).Body)
	for _, action := range []string{"pipeline.run.start", "pipeline.run.cancel", "pipeline.run.rerun"} {
		if !strings.Contains(body, action) {
			t.Errorf("audit log lacks %s", action)
		}
	}
	// Bad input changes nothing.
	mark := w.a.Mark(t)
	w.admin.Must(http.StatusBadRequest, "POST", runsPath, pipeline.StartRunRequest{Ref: "no-such-branch"})
	w.admin.Must(http.StatusBadRequest, "POST", runsPath, pipeline.StartRunRequest{Ref: "--upload-pack=evil"})
	w.admin.Must(http.StatusNotFound, "GET", runsPath+"/99", nil)
	w.admin.Must(http.StatusNotFound, "GET", runsPath+"/x", nil)
	mark.Unchanged(t)
}

// A reader may read runs but not start or cancel them.
func TestE2E_Permissions(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs: {a: {steps: [{run: 'true'}]}}\n"})
	w.waitRun(t, 1)
	tok := w.a.CreateUser(t, w.admin, "rita")
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/rita", httpapi.RoleRequest{Role: "reader"})
	rita := w.a.Client(t, tok)
	rita.Must(http.StatusOK, "GET", runsPath, nil)
	rita.Must(http.StatusOK, "GET", runsPath+"/1", nil)
	rita.Must(http.StatusForbidden, "POST", runsPath, pipeline.StartRunRequest{})
	rita.Must(http.StatusForbidden, "POST", runsPath+"/1/rerun", nil)
	anon := w.a.Client(t, "")
	anon.Must(http.StatusUnauthorized, "GET", runsPath, nil)
}

// The log streams live as server-sent events while the job runs.
func TestE2E_LogStream(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs: {a: {steps: [{run: 'echo first; sleep 1; echo second'}]}}\n"})
	var r pipeline.RunJSON
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp := w.admin.Do("GET", runsPath+"/1", nil)
		if resp.Status == http.StatusOK {
			resp.Decode(t, &r)
			if r.Jobs[0].Status == pipeline.StatusRunning {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("job never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", w.a.URL+runsPath+"/1/jobs/"+strconv.FormatInt(r.Jobs[0].ID, 10)+"/log", nil)
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data.WriteString(d)
		}
		if strings.HasPrefix(line, "event: end") {
			events = append(events, "end")
		}
	}
	if len(events) != 1 || !strings.Contains(data.String(), `first\n`) || !strings.Contains(data.String(), `second\n`) || !strings.Contains(data.String(), `"success"`) {
		t.Errorf("events %v data %q", events, data.String())
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

// A restart of Rampart fails the job it interrupted, with the reason, and
// runs the job that was still queued.
func TestE2E_RestartResumes(t *testing.T) {
	dataDir := t.TempDir()
	opts := []apptest.Option{apptest.WithDataDir(dataDir), apptest.WithConfig(func(c *config.Config) {
		c.Pipeline.Executor = "host"
		c.Pipeline.Workers = 1
	})}
	w := newWorld(t, opts...)
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs:\n  long: {steps: [{run: sleep 60}]}\n  next: {steps: [{run: echo resumed}]}\n"})
	var r pipeline.RunJSON
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp := w.admin.Do("GET", runsPath+"/1", nil)
		if resp.Status == http.StatusOK {
			resp.Decode(t, &r)
			if jobNamed(t, r, "long").Status == pipeline.StatusRunning {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never ran: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if j := jobNamed(t, r, "next"); j.Status != pipeline.StatusQueued {
		t.Fatalf("second job %+v; want queued behind the one worker", j)
	}
	w.a.Stop(t)

	a2 := apptest.Start(t, opts...)
	w.a = a2
	w.admin = a2.Client(t, a2.AdminToken(t))
	r = w.waitRun(t, 1)
	long, next := jobNamed(t, r, "long"), jobNamed(t, r, "next")
	if long.Status != pipeline.StatusFailed || long.Reason != pipeline.ReasonRestart {
		t.Errorf("interrupted job %+v; want failed with %q", long, pipeline.ReasonRestart)
	}
	if next.Status != pipeline.StatusSuccess || !strings.Contains(w.log(t, 1, next), "resumed") {
		t.Errorf("queued job %+v; want run after the restart", next)
	}
	if r.Status != pipeline.StatusFailed || r.Reason != pipeline.ReasonRestart {
		t.Errorf("run %+v; want failed with the restart reason", r)
	}
}

// A pull request runs the pipeline on its head; the scan step finds the
// secret the branch adds, fails the job and posts its findings on the
// pull request.
func TestE2E_PullRequestScan(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	w.push(t, map[string]string{pipeline.DefinitionPath: "on: {pull_request: {branches: [main]}}\njobs:\n  scan:\n    steps: [{scan: {fail-on: high}}]\n"})
	w.must(t, "checkout", "--quiet", "-b", "leak")
	key := "AKIA" + "QWERTYUIOPASDFGH"
	os.WriteFile(filepath.Join(w.dir, "config.env"), []byte("AWS_ACCESS_KEY_ID="+key+"\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1\n"), 0o644)
	w.must(t, "add", "-A")
	w.must(t, "commit", "--quiet", "-m", "add config")
	w.must(t, "push", "--quiet", "-o", "secret-bypass=test fixture", "origin", "leak")
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/repos/app/pulls", scm.CreatePullRequest{Title: "Config", Head: "leak"})
	r := w.waitRun(t, 1)
	if r.Event != pipeline.EventPullRequest || r.PR != 1 || r.Ref != "refs/pull/1/head" {
		t.Errorf("run %+v", r)
	}
	j := jobNamed(t, r, "scan")
	if j.Status != pipeline.StatusFailed || !strings.Contains(w.log(t, 1, j), "config.env") {
		t.Errorf("scan job %+v; log:\n%s", j, w.log(t, 1, j))
	}
	if strings.Contains(w.log(t, 1, j), key) {
		t.Error("the scan printed the secret")
	}
	var comments []scm.CommentJSON
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(comments) == 0; time.Sleep(100 * time.Millisecond) {
		w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/repos/app/pulls/1/comments", nil).Decode(t, &comments)
	}
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "config.env") || strings.Contains(comments[0].Body, key) {
		t.Errorf("comments %+v; want one naming config.env without the secret", comments)
	}
}

// Caches saved by one run are restored in the next; a job over its
// timeout is killed and fails with the reason.
func TestE2E_CachesAndTimeout(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	w.push(t, map[string]string{pipeline.DefinitionPath: `jobs:
  build:
    caches: [{key: deps, paths: [.deps]}]
    steps:
      - run: |
          if [ -f .deps/stamp ]; then echo "cache hit: $(cat .deps/stamp)"; else echo "cache miss"; fi
          mkdir -p .deps && echo "run $RAMPART_RUN" > .deps/stamp
  slow:
    timeout: 1s
    steps: [{run: sleep 30}]
`})
	r := w.waitRun(t, 1)
	if l := w.log(t, 1, jobNamed(t, r, "build")); !strings.Contains(l, "cache miss") || !strings.Contains(l, "cache deps: saved 1 files") {
		t.Errorf("first run's log:\n%s", l)
	}
	slow := jobNamed(t, r, "slow")
	if slow.Status != pipeline.StatusFailed || slow.Reason != "timed out after 1s" {
		t.Errorf("slow job %+v; want failed, timed out", slow)
	}
	if d := slow.FinishedAt.Sub(*slow.StartedAt); d > 10*time.Second {
		t.Errorf("the timed-out job took %v", d)
	}
	w.push(t, map[string]string{"x": "y"})
	r = w.waitRun(t, 2)
	if l := w.log(t, 2, jobNamed(t, r, "build")); !strings.Contains(l, "cache hit: run 1") {
		t.Errorf("second run's log:\n%s", l)
	}
}

// A job naming an image runs in a container whose root is that image
// (from a local OCI layout), not the runner's filesystem.
func TestE2E_ImageFromLayout(t *testing.T) {
	requireContainers(t)
	layoutDir := filepath.Join(t.TempDir(), "layout")
	writeTinyLayout(t, layoutDir)
	w := newWorld(t)
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs:\n  inimage:\n    image: oci:" + layoutDir + "\n    steps:\n      - run: read motd < /etc/motd; echo \"motd=$motd\"; test -e /usr/bin/git || echo no-host-git; echo x > /tmp/t && echo tmp-writable\n"})
	r := w.waitRun(t, 1)
	j := jobNamed(t, r, "inimage")
	l := w.log(t, 1, j)
	if j.Status != pipeline.StatusSuccess || !strings.Contains(l, "motd=from the image") || !strings.Contains(l, "no-host-git") || !strings.Contains(l, "tmp-writable") {
		t.Errorf("job %+v log:\n%s", j, l)
	}
}

// A schedule on the default branch starts one run when its time comes
// (the service's clock moved forward), and not again for the same time.
func TestE2E_Schedule(t *testing.T) {
	clock := apptest.NewClock(time.Date(2026, 6, 1, 2, 58, 30, 0, time.UTC))
	w := newWorld(t, apptest.WithClock(clock.Now), apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	w.push(t, map[string]string{pipeline.DefinitionPath: "on:\n  schedule: [{cron: \"0 3 * * *\"}]\njobs: {nightly: {steps: [{run: echo nightly}]}}\n"})
	time.Sleep(1500 * time.Millisecond) // the push's event is handled: the schedule is recorded
	var runs []pipeline.RunJSON
	w.admin.Must(http.StatusOK, "GET", runsPath, nil).Decode(t, &runs)
	if len(runs) != 0 {
		t.Fatalf("runs before the schedule's time: %+v", runs)
	}
	clock.Advance(2 * time.Minute) // 03:00:30
	r := w.waitRun(t, 1)
	if r.Event != pipeline.EventSchedule || r.Status != pipeline.StatusSuccess || r.Ref != "refs/heads/main" {
		t.Errorf("scheduled run %+v", r)
	}
	clock.Advance(20 * time.Second)
	time.Sleep(1500 * time.Millisecond)
	w.admin.Must(http.StatusOK, "GET", runsPath, nil).Decode(t, &runs)
	if len(runs) != 1 {
		t.Errorf("%d runs; want the one scheduled run", len(runs))
	}
}

// With a limit of one running job per project, two independent jobs
// never run at the same time.
func TestE2E_ProjectLimit(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) {
		c.Pipeline.Executor = "host"
		c.Pipeline.Workers = 3
		c.Pipeline.MaxPerProject = 1
	}))
	w.push(t, map[string]string{pipeline.DefinitionPath: "jobs:\n  a: {steps: [{run: sleep 1}]}\n  b: {steps: [{run: sleep 1}]}\n"})
	r := w.waitRun(t, 1)
	a, b := jobNamed(t, r, "a"), jobNamed(t, r, "b")
	if a.Status != pipeline.StatusSuccess || b.Status != pipeline.StatusSuccess {
		t.Fatalf("jobs %+v %+v", a, b)
	}
	if a.StartedAt.Before(*b.FinishedAt) && b.StartedAt.Before(*a.FinishedAt) {
		t.Errorf("jobs overlapped: a %v–%v, b %v–%v", a.StartedAt, a.FinishedAt, b.StartedAt, b.FinishedAt)
	}
}
