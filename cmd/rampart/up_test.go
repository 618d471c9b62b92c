package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/testenv"
)

// These tests run the real rampart binary, built once per test run, as a
// user would: `rampart up` in a directory, signals to stop it.

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rampart-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rampartBinary builds cmd/rampart once and returns its path.
func rampartBinary(t *testing.T) string {
	t.Helper()
	goTool := testenv.LookPath(t, "go")
	bin := filepath.Join(binDir, "rampart")
	buildOnce.Do(func() {
		out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// output collects a stream of the process and lets tests wait for a line.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output matches re and returns the first match's
// submatches.
func (o *output) waitFor(t *testing.T, re *regexp.Regexp, exited <-chan struct{}) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		o.mu.Lock()
		m := re.FindStringSubmatch(o.buf.String())
		ch := o.changed
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-ch:
		case <-exited:
			t.Fatalf("rampart exited before printing %q; output:\n%s", re, o.String())
		case <-deadline:
			t.Fatalf("rampart did not print %q within 30s; output:\n%s", re, o.String())
		}
	}
}

// process is a running `rampart up`.
type process struct {
	cmd    *exec.Cmd
	stdout *output
	stderr *output
	exited chan struct{}
	// URL is the URL it printed; Base is the same with 127.0.0.1, where it
	// listens.
	URL, Base string
}

var runningRE = regexp.MustCompile(`Rampart is running at (https?)://localhost:(\d+)\n`)

// startUp runs `rampart up --addr 127.0.0.1:0 args...` in dir with the given
// extra environment, and waits until it serves.
func startUp(t *testing.T, dir string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(rampartBinary(t), append([]string{"up", "--addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAMPART_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, stdout: newOutput(), stderr: newOutput(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	m := p.stdout.waitFor(t, runningRE, p.exited)
	p.URL = m[1] + "://localhost:" + m[2]
	p.Base = m[1] + "://127.0.0.1:" + m[2]
	return p
}

// stop sends sig and returns the exit code.
func (p *process) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("rampart did not exit within 30s of %v; stderr:\n%s", sig, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

var passwordRE = regexp.MustCompile(`First start: sign in as 'admin' with password (\S+)\n`)

// login signs in through the API and returns the token.
func login(t *testing.T, hc *http.Client, base, username, password string) (string, int) {
	t.Helper()
	body, _ := json.Marshal(httpapi.LoginRequest{Username: username, Password: password, TokenName: "up test"})
	resp, err := hc.Post(base+httpapi.Prefix+"/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res httpapi.LoginResponse
	if resp.StatusCode == http.StatusCreated {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
	}
	return res.Token.Secret, resp.StatusCode
}

func TestUp_FirstStartPrintsGeneratedAdminPasswordOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startUp(t, dir, nil, "--tls=off")
	out := p.stdout.waitFor(t, passwordRE, p.exited)
	pw := out[1]
	if len(pw) < 20 {
		t.Errorf("generated password %q is too short", pw)
	}
	p.stdout.waitFor(t, regexp.MustCompile(`This password is shown only once`), p.exited)
	if _, status := login(t, http.DefaultClient, p.Base, "admin", pw); status != http.StatusCreated {
		t.Fatalf("login with the printed password: status %d", status)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	if n := strings.Count(p.stdout.String(), pw); n != 1 {
		t.Errorf("password printed %d times, want once:\n%s", n, p.stdout)
	}
	if strings.Contains(p.stderr.String(), pw) {
		t.Errorf("the admin password is in the log:\n%s", p.stderr)
	}

	// A second start on the same data directory prints no password, and the
	// first one still works.
	p = startUp(t, dir, nil, "--tls=off")
	if _, status := login(t, http.DefaultClient, p.Base, "admin", pw); status != http.StatusCreated {
		t.Fatalf("login after restart: status %d", status)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	if s := p.stdout.String(); strings.Contains(s, "password") {
		t.Errorf("second start printed a password:\n%s", s)
	}
}

func TestUp_AdminPasswordFromEnvironment(t *testing.T) {
	t.Parallel()
	const pw = "chosen-admin-password"
	p := startUp(t, t.TempDir(), []string{"RAMPART_ADMIN_PASSWORD=" + pw}, "--tls=off")
	if _, status := login(t, http.DefaultClient, p.Base, "admin", pw); status != http.StatusCreated {
		t.Fatalf("login with RAMPART_ADMIN_PASSWORD: status %d", status)
	}
	if _, status := login(t, http.DefaultClient, p.Base, "admin", "some-other-password"); status != http.StatusUnauthorized {
		t.Fatalf("login with another password: status %d, want 401", status)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	if s := p.stdout.String(); strings.Contains(s, "password") {
		t.Errorf("a given password must not be printed:\n%s", s)
	}
	if strings.Contains(p.stderr.String(), pw) {
		t.Errorf("the admin password is in the log:\n%s", p.stderr)
	}
}

func TestUp_DataDirectory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  []string
		want string // relative to the working directory
	}{
		{"default", nil, nil, "rampart-data"},
		{"flag", []string{"--data", "from-flag"}, nil, "from-flag"},
		{"environment", nil, []string{"RAMPART_DATA=from-env"}, "from-env"},
		{"flag wins over environment", []string{"--data", "from-flag"}, []string{"RAMPART_DATA=from-env"}, "from-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := append([]string{"RAMPART_ADMIN_PASSWORD=data-dir-test-password"}, tt.env...)
			p := startUp(t, dir, env, append([]string{"--tls=off"}, tt.args...)...)
			if code := p.stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
			}
			for _, f := range []string{"rampart.db", "keys/master.key"} {
				if _, err := os.Stat(filepath.Join(dir, tt.want, f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("working directory holds %v, want only %s", names, tt.want)
			}
			fi, err := os.Stat(filepath.Join(dir, tt.want))
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o700 {
				t.Errorf("data directory mode %o, want 700", perm)
			}
		})
	}
}

func TestUp_TLS(t *testing.T) {
	t.Parallel()
	t.Run("on by default", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startUp(t, dir, []string{"RAMPART_ADMIN_PASSWORD=tls-test-password"})
		if !strings.HasPrefix(p.URL, "https://") {
			t.Fatalf("URL %s, want https", p.URL)
		}
		caFile := filepath.Join(dir, "rampart-data", "tls", "ca.crt")
		named := p.stdout.waitFor(t, regexp.MustCompile(`issued by the CA in (\S+)\n`), p.exited)[1]
		if !filepath.IsAbs(named) {
			named = filepath.Join(dir, named)
		}
		if named != caFile {
			t.Errorf("output names the CA file %s, want %s", named, caFile)
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", caFile)
		}
		// Verified against the CA, by the name in the URL and by address.
		for _, base := range []string{p.URL, p.Base} {
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			resp, err := hc.Get(base + "/healthz")
			if err != nil {
				t.Fatalf("GET %s/healthz verified against the CA: %v", base, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "ok\n" {
				t.Errorf("GET %s/healthz = %d %q", base, resp.StatusCode, b)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("GET %s/healthz: TLS state %+v", base, resp.TLS)
			}
		}
		// Without the CA the certificate is not trusted.
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		if _, err := hc.Get(p.Base + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("GET without the CA: err = %v, want a certificate error", err)
		}
		// Plain HTTP on the TLS port gets nowhere.
		if resp, err := http.Get(strings.Replace(p.Base, "https://", "http://", 1) + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("plain HTTP served on the TLS port")
			}
		}
		if code := p.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startUp(t, dir, []string{"RAMPART_ADMIN_PASSWORD=tls-test-password"}, "--tls=off")
		if !strings.HasPrefix(p.URL, "http://") {
			t.Fatalf("URL %s, want http", p.URL)
		}
		resp, err := http.Get(p.Base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz = %d", resp.StatusCode)
		}
		if code := p.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
		}
		if strings.Contains(p.stdout.String(), "CA") {
			t.Errorf("output mentions a CA without TLS:\n%s", p.stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, "rampart-data", "tls")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("tls directory created with --tls=off: %v", err)
		}
	})
}

// TestUp_GracefulShutdown stops rampart while a request is in flight: its
// body is still being sent. The request must complete, the process exit
// 0, and the SQLite database be left closed cleanly, every committed write
// in the main database file.
func TestUp_GracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			const pw = "shutdown-test-password"
			dir := t.TempDir()
			p := startUp(t, dir, []string{"RAMPART_ADMIN_PASSWORD=" + pw}, "--tls=off", "--data", "data")

			// Some committed writes first.
			token, status := login(t, http.DefaultClient, p.Base, "admin", pw)
			if status != http.StatusCreated {
				t.Fatalf("login: status %d", status)
			}
			req, _ := http.NewRequest("POST", p.Base+httpapi.Prefix+"/orgs", strings.NewReader(`{"name":"acme"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create org: status %d", resp.StatusCode)
			}

			// A sign-in whose body is sent slowly. With Expect: 100-continue
			// the server says when the handler starts reading the body: from
			// then on the request is in flight.
			body, _ := json.Marshal(httpapi.LoginRequest{Username: "admin", Password: pw, TokenName: "in flight"})
			u, _ := url.Parse(p.Base)
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			fmt.Fprintf(conn, "POST %s/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
				httpapi.Prefix, u.Host, len(body))
			br := bufio.NewReader(conn)
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
				t.Fatalf("want 100 Continue, got %q, %v", line, err)
			}
			if _, err := br.ReadString('\n'); err != nil { // the blank line
				t.Fatal(err)
			}
			half := len(body) / 2
			if _, err := conn.Write(body[:half]); err != nil {
				t.Fatal(err)
			}

			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			p.stderr.waitFor(t, regexp.MustCompile(`"msg":"shutting down"`), p.exited)
			// New connections are refused while the request runs on.
			refused := false
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				c, err := net.DialTimeout("tcp", u.Host, time.Second)
				if err != nil {
					refused = true
					break
				}
				c.Close()
			}
			if !refused {
				t.Error("rampart still accepts connections after the signal")
			}
			// The rest of the body trickles in a while later.
			time.Sleep(500 * time.Millisecond)
			select {
			case <-p.exited:
				t.Fatalf("rampart exited with a request in flight; stderr:\n%s", p.stderr)
			default:
			}

			if _, err := conn.Write(body[half:]); err != nil {
				t.Fatal(err)
			}
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("in-flight request: %v", err)
			}
			var res httpapi.LoginResponse
			err = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated || err != nil || res.Token.Secret == "" {
				t.Fatalf("in-flight request: status %d, %v", resp.StatusCode, err)
			}

			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("rampart did not exit after the last request")
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr)
			}
			if s := p.stderr.String(); strings.Contains(s, "cut off") || strings.Contains(s, `"level":"ERROR"`) {
				t.Errorf("unclean shutdown:\n%s", s)
			}

			// The WAL was checkpointed into the database file: a copy of
			// that file alone holds every committed write.
			dbFile := filepath.Join(dir, "data", "rampart.db")
			if fi, err := os.Stat(dbFile + "-wal"); err == nil && fi.Size() > 0 {
				t.Errorf("%s-wal left with %d bytes", dbFile, fi.Size())
			}
			b, err := os.ReadFile(dbFile)
			if err != nil {
				t.Fatal(err)
			}
			copyFile := filepath.Join(t.TempDir(), "copy.db")
			if err := os.WriteFile(copyFile, b, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			db, err := store.Open(ctx, "sqlite:"+copyFile)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var orgs int
			if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM orgs WHERE name = 'acme'").Scan(&orgs); err != nil || orgs != 1 {
				t.Errorf("org acme: %d rows, %v", orgs, err)
			}
			var names []string
			rows, err := db.Query(ctx, "SELECT name FROM tokens ORDER BY id")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				names = append(names, n)
			}
			rows.Close()
			if want := []string{"up test", "in flight"}; fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("tokens %q, want %q", names, want)
			}
			rep, err := audit.New(db, nil).Verify(ctx)
			if err != nil || !rep.OK() {
				t.Fatalf("audit chain: %+v, %v", rep, err)
			}
			last, err := audit.New(db, nil).List(ctx, audit.Filter{Limit: 1})
			if err != nil || len(last) != 1 || last[0].Action != "token.create" || last[0].TargetName != "in flight" {
				t.Errorf("last audit entry %+v, %v; want the in-flight token.create", last, err)
			}
		})
	}
}
