package registry_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/testenv"
)

// rampartProcess is `rampart up` running as its own process, so that a
// test can kill it with SIGKILL.
type rampartProcess struct {
	cmd  *exec.Cmd
	base string
	log  *bytes.Buffer
}

// buildRampart builds cmd/rampart into a temporary directory.
func buildRampart(t *testing.T) string {
	t.Helper()
	goTool := testenv.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), "rampart")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/rampart")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRampart runs `rampart up` on data and waits until it answers.
func startRampart(t *testing.T, bin, data string, port int) *rampartProcess {
	t.Helper()
	p := &rampartProcess{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "up", "--data", data, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--tls=off",
		"--ssh-addr", "", "--gateway-addr", "", "--log-level", "warn") // SSH and the gateway off: their default ports may be taken
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAMPART_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, "RAMPART_ADMIN_PASSWORD="+crashAdminPassword)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("rampart did not answer within 60s:\n%s", p.log)
	return nil
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *rampartProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

const crashAdminPassword = "crash-test-admin-password-1"

// TestKill9_DuringUpload kills `rampart up` with SIGKILL while a chunk of
// an upload is streaming in, restarts it on the same data directory, and
// checks that storage is consistent: the upload resumes from the offset
// the registry reports and completes with the right digest, the image
// pushed before the crash is intact, and no partial blob is visible.
func TestKill9_DuringUpload(t *testing.T) {
	bin := buildRampart(t)
	data := t.TempDir()
	port := freePort(t)
	p := startRampart(t, bin, data, port)

	// An admin token and an org, through the API as a user would.
	var login struct {
		Token struct {
			Token string `json:"token"`
		} `json:"token"`
	}
	resp, err := http.Post(p.base+"/api/v1/auth/login", "application/json",
		strings.NewReader(`{"username":"admin","password":"`+crashAdminPassword+`","token_name":"crash"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("login = %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	c := regClient{t: t, base: p.base, token: login.Token.Token}
	if resp, body := c.do("POST", "/api/v1/orgs", map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"acme"}`)); resp.StatusCode != 201 {
		t.Fatalf("create org = %d %s", resp.StatusCode, body)
	}

	// Pushed before the crash: a config, a layer and a tagged manifest.
	layer, err := os.ReadFile(layerTar(t, map[string]string{"app/README": "pushed before the crash\n"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + sha(layer) + `"]}}`)
	for _, b := range [][]byte{cfg, layer} {
		if resp, body := c.do("POST", "/v2/acme/app/blobs/uploads/?digest="+sha(b), nil, b); resp.StatusCode != 201 {
			t.Fatalf("push blob = %d %s", resp.StatusCode, body)
		}
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, sha(cfg), len(cfg), sha(layer), len(layer)))
	if resp, body := c.do("PUT", "/v2/acme/app/manifests/v1", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, manifest); resp.StatusCode != 201 {
		t.Fatalf("push manifest = %d %s", resp.StatusCode, body)
	}

	// The upload: a first chunk is accepted, the second is cut by the kill.
	content := make([]byte, 8<<20)
	_, _ = rand.Read(content)
	resp, _ = c.do("POST", "/v2/acme/app/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("start upload = %d", resp.StatusCode)
	}
	first := 1 << 20
	if resp, body := c.do("PATCH", loc, map[string]string{"Content-Range": "0-" + strconv.Itoa(first-1)}, content[:first]); resp.StatusCode != 202 {
		t.Fatalf("first chunk = %d %s", resp.StatusCode, body)
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		loc, c.token, len(content)-first)
	// Send part of the chunk, give the server time to write it, then kill.
	sent := first + 3<<20
	if _, err := conn.Write(content[first:sent]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	p.kill()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("rampart was not killed by SIGKILL: %v", p.cmd.ProcessState)
	}

	p = startRampart(t, bin, data, port)
	c.base = p.base

	// Nothing pushed before the crash is lost. The image is pulled once the
	// scanner, whose queue survives the crash too, has passed it.
	var body []byte
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, body = c.do("GET", "/v2/acme/app/manifests/v1", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil)
		if resp.StatusCode != 403 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, manifest) {
		t.Fatalf("manifest after the crash = %d %s", resp.StatusCode, body)
	}
	for _, b := range [][]byte{cfg, layer} {
		if resp, body := c.do("GET", "/v2/acme/app/blobs/"+sha(b), nil, nil); resp.StatusCode != 200 || !bytes.Equal(body, b) {
			t.Fatalf("blob %s after the crash = %d (%d bytes)", sha(b), resp.StatusCode, len(body))
		}
	}
	// The unfinished blob is not visible.
	if resp, _ := c.do("HEAD", "/v2/acme/app/blobs/"+sha(content), nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a partial blob is visible after the crash: HEAD = %d", resp.StatusCode)
	}
	// The upload resumes from what the registry reports.
	resp, _ = c.do("GET", loc, nil, nil)
	rng := resp.Header.Get("Range")
	var end int
	if _, err := fmt.Sscanf(rng, "0-%d", &end); resp.StatusCode != 204 || err != nil {
		t.Fatalf("upload status after the crash = %d Range %q", resp.StatusCode, rng)
	}
	offset := end + 1
	if offset < first || offset > sent {
		t.Fatalf("upload resumes at %d, want between %d (acknowledged) and %d (sent)", offset, first, sent)
	}
	t.Logf("killed with %d bytes acknowledged and %d sent; the upload resumes at %d", first, sent, offset)
	resp, body = c.do("PUT", loc+"?digest="+sha(content), map[string]string{"Content-Range": fmt.Sprintf("%d-%d", offset, len(content)-1)}, content[offset:])
	if resp.StatusCode != 201 {
		t.Fatalf("finish after the crash = %d %s", resp.StatusCode, body)
	}
	resp, err = http.DefaultClient.Do(mustReq(t, "GET", p.base+"/v2/acme/app/blobs/"+sha(content), c.token))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, content) {
		t.Fatalf("the resumed blob = %d, %d bytes, equal %v", resp.StatusCode, len(got), bytes.Equal(got, content))
	}
}

func mustReq(t *testing.T, method, url, token string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
