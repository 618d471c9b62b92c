package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/deploy/noderuntime"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/testenv"
)

// upProcess is `rampart up` running as a process of its own, so that a
// test can kill it with SIGKILL as a crash (or the OOM killer) would.
type upProcess struct {
	t        *testing.T
	bin      string
	data     string
	policy   string
	addr, gw string
	cmd      *exec.Cmd
	out      bytes.Buffer
	token    string
}

const (
	killAdminPassword = "kill-test-admin-password-1"
	mariaPassword     = "maria-kill-test-password-1"
)

// start runs `rampart up`; pause, when set, is the test-only pause point
// (RAMPART_TEST_DEPLOY_PAUSE) whose file the rollout creates when it
// gets there.
func (p *upProcess) start(pause, pausedFile string) {
	t := p.t
	t.Helper()
	p.cmd = exec.Command(p.bin, "up", "--data", p.data, "--addr", p.addr, "--gateway-addr", p.gw, "--ssh-addr", "127.0.0.1:0",
		"--url", "http://"+p.addr, "--tls=off", "--gateway-tls=off", "--policy-dir", p.policy, "--log-level", "warn")
	p.cmd.Env = []string{"RAMPART_ADMIN_PASSWORD=" + killAdminPassword, "HOME=" + p.data, "PATH=" + os.Getenv("PATH")}
	if pause != "" {
		p.cmd.Env = append(p.cmd.Env, "RAMPART_TEST_DEPLOY_PAUSE="+pause, "RAMPART_TEST_DEPLOY_PAUSED="+pausedFile)
	}
	p.out.Reset()
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rampart did not start within 90s:\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL and reaps it.
func (p *upProcess) kill() {
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		p.t.Errorf("rampart was not killed by SIGKILL: %v", p.cmd.ProcessState)
	}
}

// call makes an API request; out (when not nil) gets the JSON answer.
func (p *upProcess) call(method, path string, body, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+"/api/v1"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		p.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	} else if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// version asks the gateway for host's / and returns the answering
// release's version (or the status when it is not 200).
func (p *upProcess) version(host string) string {
	req, _ := http.NewRequest("GET", "http://"+p.gw+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.Status + ": " + string(b)
	}
	return strings.Fields(string(b) + " -")[0]
}

// waitPaused waits until the rollout reaches the pause point.
func waitPaused(t *testing.T, p *upProcess, paused, point string) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		if _, err := os.Stat(paused); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout never reached %s:\n%s", point, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// board signs in as maria with the sign-in form and returns the
// project's environments board.
func (p *upProcess) board(password string) string {
	p.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(u string) string {
		resp, err := c.Get("http://" + p.addr + u)
		if err != nil {
			p.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			p.t.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
		return string(b)
	}
	m := csrfRE.FindStringSubmatch(get("/login"))
	if m == nil {
		p.t.Fatal("no CSRF token on the sign-in page")
	}
	resp, err := c.PostForm("http://"+p.addr+"/login", url.Values{"csrf_token": {m[1]}, "username": {"maria"}, "password": {password}, "next": {"/"}})
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return get("/orgs/acme/projects/web/deploy")
}

const killProject = "/orgs/acme/projects/web"

// deployment waits until deployment id ends and returns it.
func (p *upProcess) deployment(id int64) deploy.Deployment {
	p.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		var d deploy.Deployment
		p.call("GET", killProject+"/deployments/"+strconv.FormatInt(id, 10), nil, &d)
		switch d.State {
		case deploy.StateSucceeded, deploy.StateRolledBack, deploy.StateFailed:
			return d
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("deployment %d still %s (%s) after 120s:\n%s", id, d.State, d.Step, p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runcContainers lists the containers runc knows in the data directory
// (id → status) and counts the bundles and instance records on disk.
func runcContainers(t *testing.T, data string) (ids map[string]string, bundles, records int) {
	t.Helper()
	root := filepath.Join(data, "deploy", "runc")
	out, err := exec.Command("runc", "--root", filepath.Join(root, "state"), "list", "--format", "json").Output()
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	var states []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if s := bytes.TrimSpace(out); len(s) > 0 && string(s) != "null" {
		if err := json.Unmarshal(s, &states); err != nil {
			t.Fatal(err)
		}
	}
	ids = map[string]string{}
	for _, s := range states {
		ids[s.ID] = s.Status
	}
	bs, _ := os.ReadDir(filepath.Join(root, "bundles"))
	rs, _ := filepath.Glob(filepath.Join(data, "deploy", "instances", "*.json"))
	return ids, len(bs), len(rs)
}

// TestKill9_MidRollout kills a real `rampart up` with SIGKILL at named
// steps of rollouts on the node runtime, restarts it on the same data,
// and checks what a user would: the environment runs exactly one
// release at full strength (never none, never both, no container
// twice), the gateway sends every request to it, and the API and CLI
// say which release runs and what became of the interrupted
// deployment. A rollout killed before its commit point is rolled back;
// one killed after it (every check passed) is completed. One Rampart
// goes through all the kill points in turn, each restart settling the
// previous kill, so the other environments also show that repeated
// crashes never duplicate or lose their instances; the last case is
// killed a second time while the restarted Rampart settles it.
func TestKill9_MidRollout(t *testing.T) {
	needRuntime(t)
	goTool := testenv.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), "rampart")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/rampart")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := &upProcess{t: t, bin: bin, data: t.TempDir(), policy: t.TempDir(), addr: testenv.FreeAddr(t), gw: testenv.FreeAddr(t)}
	// The test images are unsigned: the pre-deploy policies audit.
	if err := os.WriteFile(filepath.Join(p.policy, "policy.yaml"), []byte("modes:\n  - policy: RMP-DEP-*\n    mode: audit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	paused := filepath.Join(t.TempDir(), "paused")
	t.Cleanup(func() {
		p.kill()
		// Stop the containers the test left (they outlive Rampart).
		rt, err := noderuntime.Open(noderuntime.Options{Dir: filepath.Join(p.data, "deploy"), Logger: logging.New(testWriter{t}, "error")})
		if err == nil {
			_ = rt.StopAll(context.Background())
			rt.Close()
		}
	})

	cases := []struct {
		env, strategy, pause string
		// settlePause, when set, kills Rampart a second time while it
		// settles the interrupted rollout at the next start.
		settlePause string
		// wantNew: the rollout passed its commit point and is completed.
		wantNew bool
		want    string // in the deployment's message
	}{
		{"rolling", deploy.Rolling, "rolling:first-replica", "", false, "interrupted: Rampart stopped in the middle of the rollout, at step 1/2"},
		{"bgswitched", deploy.BlueGreen, "blue_green:switched", "", false, "interrupted: Rampart stopped in the middle of the rollout"},
		{"bgcommitted", deploy.BlueGreen, "blue_green:committed", "", true, "completed at the next start"},
		{"canary", deploy.Canary, "canary:pause", "", false, "interrupted: Rampart stopped in the middle of the rollout, at step 1/3"},
		{"twice", deploy.Canary, "canary:pause", "rollback:routed", false, "interrupted: Rampart stopped in the middle of the rollout"},
	}

	p.start(cases[0].pause, paused)
	var login struct {
		Token struct {
			Token string `json:"token"`
		} `json:"token"`
	}
	if st := p.call("POST", "/auth/login", map[string]string{"username": "admin", "password": killAdminPassword, "token_name": "kill"}, &login); st != 200 && st != 201 {
		t.Fatalf("login: %d", st)
	}
	p.token = login.Token.Token
	p.call("POST", "/orgs", map[string]string{"name": "acme"}, nil)
	p.call("POST", "/orgs/acme/projects", map[string]string{"name": "web"}, nil)
	// Maria, a maintainer, pushes, records and deploys (the node runtime
	// pulls with a pull-only token minted for her).
	p.call("POST", "/users", map[string]string{"username": "maria", "email": "maria@example.test", "password": mariaPassword}, nil)
	p.call("PUT", "/orgs/acme/members/maria", map[string]string{"role": "maintainer"}, nil)
	if st := p.call("POST", "/auth/login", map[string]string{"username": "maria", "password": mariaPassword, "token_name": "kill"}, &login); st != 200 && st != 201 {
		t.Fatalf("login as maria: %d", st)
	}
	admin := p.token
	p.token = login.Token.Token
	p.call("POST", "/orgs/acme/repos", map[string]string{"name": "web"}, nil)
	push := image.PushOptions{Auth: &authn.Basic{Username: "maria", Password: p.token}, Insecure: true}
	for _, v := range []string{"v1", "v2"} {
		pushed, err := image.Push(t.Context(), deploytest.Image(t, v), p.addr+"/acme/web:"+v, nil, push)
		if err != nil {
			t.Fatalf("push %s: %v", v, err)
		}
		// The registry quarantines an image until it is scanned.
		for deadline := time.Now().Add(90 * time.Second); ; {
			var v struct {
				ScanStatus string `json:"scan_status"`
			}
			p.call("GET", "/orgs/acme/registry/repositories/web/manifests/"+pushed.Image.DigestStr()+"/verification", nil, &v)
			if v.ScanStatus != "" && v.ScanStatus != "pending" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the registry did not scan %s in 90s", v)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st := p.call("POST", killProject+"/releases", map[string]any{"image": p.addr + "/acme/web", "digest": pushed.Image.DigestStr(),
			"source_commit": strings.Repeat("c0", 20), "source_branch": "main", "reason": "ship " + v}, nil); st != 201 {
			t.Fatalf("release %s: %d", v, st)
		}
	}
	hostOf := func(env string) string { return env + ".web.test" }
	for _, c := range cases {
		sp := spec(c.strategy, hostOf(c.env))
		sp.Target.HealthTimeout = deploy.Duration(60 * time.Second)
		maria := p.token
		p.token = admin
		st := p.call("PUT", killProject+"/environments/"+c.env, sp, nil)
		p.token = maria
		if st/100 != 2 {
			t.Fatalf("environment %s: %d", c.env, st)
		}
		var d deploy.Deployment
		p.call("POST", killProject+"/deployments", deploy.DeployRequest{Environment: c.env, Release: 1}, &d)
		if got := p.deployment(d.ID); got.State != deploy.StateSucceeded {
			t.Fatalf("release 1 to %s: %s %s", c.env, got.State, got.Message)
		}
	}

	// check is what a user sees of environment env: want runs, alone,
	// at full strength, behind the gateway.
	check := func(t *testing.T, env string, want int64) {
		t.Helper()
		var e deploy.Environment
		p.call("GET", killProject+"/environments/"+env, nil, &e)
		if e.CurrentReleaseID != want || e.Status != "running" {
			t.Errorf("environment %s: current release id %d, status %s (%s); want %d running", env, e.CurrentReleaseID, e.Status, e.StatusMessage, want)
		}
		var ins []deploy.InstanceJSON
		p.call("GET", killProject+"/environments/"+env+"/instances", nil, &ins)
		var rels []int64
		for _, in := range ins {
			rels = append(rels, in.ReleaseNumber)
			if in.State != "running" {
				t.Errorf("environment %s: instance %s is %s", env, in.ID, in.State)
			}
		}
		if !slices.Equal(rels, []int64{want, want}) {
			t.Errorf("environment %s runs instances of releases %v, want two of release #%d", env, rels, want)
		}
		wantV := "v" + strconv.FormatInt(want, 10)
		for range 8 {
			if v := p.version(hostOf(env)); v != wantV {
				t.Errorf("the gateway answered %s for %s, want %s only", v, env, wantV)
				break
			}
		}
	}
	// onDisk checks that runc runs exactly one container per instance
	// of every environment, each with one bundle and one record.
	onDisk := func(t *testing.T) {
		t.Helper()
		ids, bundles, records := runcContainers(t, p.data)
		want := 2 * len(cases)
		running := 0
		for _, st := range ids {
			if st == "running" {
				running++
			}
		}
		if len(ids) != want || running != want || bundles != want || records != want {
			t.Errorf("on disk: %d runc containers (%d running), %d bundles, %d instance records; want %d of each", len(ids), running, bundles, records, want)
		}
	}

	for i, c := range cases {
		t.Run(c.env+"@"+c.pause, func(t *testing.T) {
			_ = os.Remove(paused)
			var d deploy.Deployment
			p.call("POST", killProject+"/deployments", deploy.DeployRequest{Environment: c.env, Release: 2, Reason: "kill test"}, &d)
			waitPaused(t, p, paused, c.pause)
			p.kill()
			ids, _, _ := runcContainers(t, p.data)
			mixed := 0
			for id := range ids {
				if strings.Contains(id, "-r2-") {
					mixed++
				}
			}
			if mixed == 0 {
				t.Fatalf("at %s no container of release 2 runs: the kill did not happen mid-rollout", c.pause)
			}
			if c.settlePause != "" {
				_ = os.Remove(paused)
				p.start(c.settlePause, paused)
				waitPaused(t, p, paused, c.settlePause)
				var mid deploy.Deployment
				p.call("GET", killProject+"/deployments/"+strconv.FormatInt(d.ID, 10), nil, &mid)
				if mid.State != deploy.StateRunning {
					t.Fatalf("while settling, the deployment is %s, want still running", mid.State)
				}
				p.kill()
			}
			next := ""
			if i+1 < len(cases) {
				next = cases[i+1].pause
			}
			p.start(next, paused)
			got := p.deployment(d.ID)
			want := int64(1)
			wantState := deploy.StateRolledBack
			if c.wantNew {
				want, wantState = 2, deploy.StateSucceeded
			}
			if got.State != wantState || !strings.Contains(got.Message, c.want) || !strings.Contains(got.Message, fmt.Sprintf("release #%d run", want)) {
				t.Errorf("deployment after the restart: %s %q; want %s saying %q and that release #%d runs", got.State, got.Message, wantState, c.want, want)
			}
			if n := len(got.Journal); n == 0 || got.Journal[n-1].Kind != deploy.JournalRecovered {
				t.Errorf("journal %+v does not end with the recovery", got.Journal)
			}
			check(t, c.env, want)
			for _, other := range cases[:i] {
				w := int64(1)
				if other.wantNew {
					w = 2
				}
				check(t, other.env, w)
			}
			onDisk(t)

			// The environments board says the same.
			page := p.board(mariaPassword)
			card := page[max(strings.Index(page, `id="env-`+c.env+`"`), 0):]
			card = card[:min(len(card), 400)]
			if !strings.Contains(card, fmt.Sprintf("<strong>release #%d runs</strong>", want)) || !strings.Contains(card, "status-running") {
				t.Errorf("the board's card of %s does not say release #%d runs:\n%s", c.env, want, card)
			}
			if !strings.Contains(page, html.EscapeString(got.Message)) {
				t.Errorf("the board does not show the deployment's message %q", got.Message)
			}

			// The CLI says the same.
			cli := exec.Command(bin, "deploy", "show", strconv.FormatInt(d.ID, 10), "--project", "acme/web")
			cli.Env = []string{"RAMPART_SERVER=http://" + p.addr, "RAMPART_TOKEN=" + p.token, "RAMPART_CONFIG_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
			out, err := cli.CombinedOutput()
			if err != nil || !strings.Contains(string(out), wantState) || !strings.Contains(string(out), fmt.Sprintf("release #%d run", want)) ||
				!strings.Contains(string(out), deploy.JournalRecovered) {
				t.Errorf("rampart deploy show: %v\n%s", err, out)
			}
		})
	}
}
