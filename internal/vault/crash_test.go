package vault_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault"
)

// server is `rampart up` in a process of its own, so it can be killed.
type server struct {
	t      *testing.T
	bin    string
	data   string
	addr   string
	cmd    *exec.Cmd
	out    bytes.Buffer
	token  string
	client *http.Client
}

const crashAdminPassword = "crash-test-admin-password"

func buildRampart(t *testing.T) string {
	t.Helper()
	gobin := testenv.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), "rampart")
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/rampart")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build rampart: %v\n%s", err, out)
	}
	return bin
}

func (s *server) start() {
	s.t.Helper()
	// The gateway and SSH are off: their default ports are fixed, and
	// other packages' tests may hold them.
	s.cmd = exec.Command(s.bin, "up", "--tls=off", "--addr", s.addr, "--data", s.data, "--log-level", "warn", "--gateway-addr", "", "--ssh-addr", "")
	s.cmd.Env = []string{"RAMPART_ADMIN_PASSWORD=" + crashAdminPassword, "HOME=" + s.data, "PATH=" + os.Getenv("PATH")}
	s.out.Reset()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.client.Get("http://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rampart did not start: %s", s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	_ = s.cmd.Wait()
}

func (s *server) do(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+s.addr+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode
}

// parallel runs fn(i) for i in [0, n) on a few goroutines.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestRotateKEK_KillDuringRotation kills a real rampart process with
// SIGKILL while it re-wraps data keys after a key-encryption key rotation,
// with the data keys part old, part new; after a restart every secret
// is readable at every version and the re-wrap finishes by itself. Three
// rounds, each killed mid-way.
func TestRotateKEK_KillDuringRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs rampart processes")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t0 := time.Now()
	s := &server{t: t, bin: buildRampart(t), data: t.TempDir(), addr: addr, client: &http.Client{Timeout: 60 * time.Second}}
	t.Logf("built in %s", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	s.start()
	t.Logf("started in %s", time.Since(t0).Round(time.Millisecond))
	s.prepare()
	const secrets, versions = 600, 2
	value := func(i, v int) string { return fmt.Sprintf("value-%04d-v%d-%s", i, v, strings.Repeat("x", 20)) }
	path := func(i int) string { return fmt.Sprintf("%s/orgs/acme/projects/web/secrets/S%04d", httpapi.Prefix, i) }
	for v := 1; v <= versions; v++ {
		var failed sync.Map
		parallel(secrets, func(i int) {
			if st := s.do("PUT", path(i), vault.SetSecretRequest{Value: value(i, v)}, nil); st != 200 {
				failed.Store(i, st)
			}
		})
		failed.Range(func(k, v any) bool { t.Fatalf("write S%04d: %v", k, v); return false })
	}
	t.Logf("wrote %d versions in %s", secrets*versions, time.Since(t0).Round(time.Millisecond))
	checkAll := func(round int) {
		t.Helper()
		var bad sync.Map
		parallel(secrets*versions, func(n int) {
			i, v := n/versions, n%versions+1
			var rev vault.RevealResponse
			st := s.do("POST", path(i)+"/reveal", vault.RevealRequest{Version: v}, &rev)
			if st != 200 || rev.Value != value(i, v) {
				bad.Store(n, fmt.Sprintf("S%04d v%d: %d", i, v, st))
			}
		})
		n := 0
		bad.Range(func(k, v any) bool {
			if n < 5 {
				t.Errorf("round %d: %v", round, v)
			}
			n++
			return true
		})
		if n > 0 {
			t.Fatalf("round %d: %d reads failed", round, n)
		}
	}
	kek := 1 // the current key-encryption key version
	for round := 1; round <= 3; round++ {
		// Kill as soon as the data keys are split between the old and the
		// new version. On a fast moment a rotation may finish between two
		// looks: then rotate again (up to 5 times).
		var done chan int
		mixed := false
		for attempt := 1; attempt <= 5 && !mixed; attempt++ {
			done = make(chan int, 1)
			go func() {
				st := s.do("POST", httpapi.Prefix+"/vault/kek/rotate", nil, nil)
				done <- st
			}()
			finished := false
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !mixed && !finished; {
				var st vault.KEKJSON
				if s.do("GET", httpapi.Prefix+"/vault/kek", nil, &st) != 200 {
					continue
				}
				if st.Current == kek+1 && st.ByVersion[fmt.Sprint(kek)] > 0 && st.ByVersion[fmt.Sprint(kek+1)] > 0 {
					mixed = true
					break
				}
				select {
				case st := <-done:
					if st != 200 {
						t.Fatalf("round %d: rotation answered %d", round, st)
					}
					t.Logf("round %d: the rotation finished before it could be interrupted; again", round)
					finished = true
				default:
				}
			}
			if !mixed && !finished {
				t.Fatalf("round %d: never saw the re-wrap under way", round)
			}
			kek++
		}
		if !mixed {
			t.Fatalf("round %d: 5 rotations finished before they could be interrupted", round)
		}
		s.kill()
		<-done
		t0 = time.Now()
		s.start()
		t.Logf("round %d: restarted in %s", round, time.Since(t0).Round(time.Millisecond))
		t0 = time.Now()
		checkAll(round)
		t.Logf("round %d: read %d versions in %s", round, secrets*versions, time.Since(t0).Round(time.Millisecond))
		// The restarted server finished the re-wrap on its own.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var st vault.KEKJSON
			s.do("GET", httpapi.Prefix+"/vault/kek", nil, &st)
			if st.Current == kek && st.Pending == 0 && !st.FinishedAt.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the re-wrap did not finish after the restart: %+v", round, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	checkAll(4)
}

// TestReadAudit_KillAfterReads kills a real rampart process with SIGKILL
// right after a burst of secret reads: each read's audit entry was in the
// read-audit journal before its value went out, so after a restart the
// audit log holds every read (by its request id) exactly once, and the
// chain verifies.
func TestReadAudit_KillAfterReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &server{t: t, bin: buildRampart(t), data: t.TempDir(), addr: addr, client: &http.Client{Timeout: 60 * time.Second}}
	s.start()
	s.prepare()
	path := httpapi.Prefix + "/orgs/acme/projects/web/secrets/DB_PASSWORD"
	if st := s.do("PUT", path, vault.SetSecretRequest{Value: "journal-crash-value"}, nil); st != 200 {
		t.Fatalf("set: %d", st)
	}
	const reads = 400
	ids := make([]string, reads)
	var failed sync.Map
	parallel(reads, func(i int) {
		req, _ := http.NewRequest("POST", "http://"+s.addr+path+"/reveal", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := s.client.Do(req)
		if err != nil {
			failed.Store(i, err.Error())
			return
		}
		var rev vault.RevealResponse
		_ = json.NewDecoder(resp.Body).Decode(&rev)
		resp.Body.Close()
		if resp.StatusCode != 200 || rev.Value != "journal-crash-value" || resp.Header.Get("X-Request-Id") == "" {
			failed.Store(i, resp.Status)
			return
		}
		ids[i] = resp.Header.Get("X-Request-Id")
	})
	failed.Range(func(k, v any) bool { t.Fatalf("read %v: %v", k, v); return false })
	s.kill()
	s.start()

	req, _ := http.NewRequest("GET", "http://"+s.addr+httpapi.Prefix+"/audit/export?action=vault.secret.read", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := map[string]int{}
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var e struct {
			RequestID string `json:"request_id"`
		}
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		seen[e.RequestID]++
	}
	missing := 0
	for _, id := range ids {
		if seen[id] != 1 {
			if missing < 5 {
				t.Errorf("read %s: %d audit entries after the restart, want 1", id, seen[id])
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d reads are not audited exactly once", missing, reads)
	}
	var rep struct {
		Problems []any `json:"problems"`
		Entries  int   `json:"entries"`
	}
	if st := s.do("POST", httpapi.Prefix+"/audit/verify", nil, &rep); st != 200 || len(rep.Problems) != 0 {
		t.Fatalf("verify after the restart: %d %+v", st, rep)
	}
}

// prepare kills the started server when the test ends, signs in as admin
// and creates org acme, project web and a vault policy letting admin read
// every secret of web.
func (s *server) prepare() {
	s.t.Helper()
	s.t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.kill()
		}
	})
	var login httpapi.LoginResponse
	if st := s.do("POST", httpapi.Prefix+"/auth/login", httpapi.LoginRequest{Username: "admin", Password: crashAdminPassword}, &login); st != 201 {
		s.t.Fatalf("login: %d %s", st, s.out.String())
	}
	s.token = login.Token.Secret
	s.do("POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"}, nil)
	s.do("POST", httpapi.Prefix+"/orgs/acme/projects", httpapi.CreateProjectRequest{Name: "web"}, nil)
	if st := s.do("PUT", httpapi.Prefix+"/orgs/acme/vault/policies/all", vault.PutPolicyRequest{Secrets: []string{"web/*"}, Subjects: []string{"user:admin"}}, nil); st != 200 {
		s.t.Fatalf("policy: %d", st)
	}
}
