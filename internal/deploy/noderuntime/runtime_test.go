package noderuntime_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/deploy/noderuntime"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/testenv"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func open(t *testing.T, dir string) *noderuntime.Runtime {
	t.Helper()
	r, err := noderuntime.Open(noderuntime.Options{Dir: dir, Logger: logging.New(testWriter{t}, "warn"), Insecure: true,
		BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newRuntime(t *testing.T) (*noderuntime.Runtime, string) {
	t.Helper()
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (runc needs it to create containers)")
	}
	dir := t.TempDir()
	r := open(t, dir)
	t.Cleanup(func() {
		if err := r.StopAll(context.Background()); err != nil {
			t.Errorf("stop all: %v", err)
		}
		r.Close()
	})
	return r, dir
}

func get(t *testing.T, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func waitHealthy(t *testing.T, r deploy.Runtime, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := r.Check(t.Context(), id, "/healthz")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := r.Logs(t.Context(), id, 2000)
			t.Fatalf("instance %s not healthy: %v; logs: %s", id, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRuntime_RunsHardenedInstance(t *testing.T) {
	r, _ := newRuntime(t)
	reg := deploytest.StartRegistry(t)
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1"))
	w := deploy.Workload{Group: "e1", ReleaseID: 7, Image: image + "@" + digest, Env: map[string]string{"GREETING": "hi"},
		Secrets: map[string]deploy.Value{"DB_PASSWORD": "s3cret-value"}, Port: 8080, MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64}
	in, err := r.Start(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, r, in.ID)
	if got := get(t, in.Addr, "/"); !strings.HasPrefix(got, "v1 ") {
		t.Errorf("GET / = %q, want the v1 application", got)
	}
	if got, want := get(t, in.Addr, "/secret"), "set=true len=12"; got != want {
		t.Errorf("secret injection: %q, want %q", got, want)
	}
	if got, want := get(t, in.Addr, "/probe"), "uid=65534 nonewprivs=1 seccomp=2 rootfs_writable=false"; got != want {
		t.Errorf("isolation: %q, want %q", got, want)
	}
	logs, err := r.Logs(t.Context(), in.ID, 4096)
	if err != nil || !strings.Contains(string(logs), "app: version v1 listening on 8080") {
		t.Errorf("logs = %q (%v), want the application's start line", logs, err)
	}
	// A second instance of the same digest reuses the unpacked image.
	in2, err := r.Start(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, r, in2.ID)
	if imgs, _ := r.Images(); len(imgs) != 1 || imgs[0] != digest {
		t.Errorf("unpacked images = %v, want just %s", imgs, digest)
	}
	ins, _ := r.Instances(t.Context(), "e1")
	if len(ins) != 2 {
		t.Fatalf("instances = %d, want 2", len(ins))
	}
	if err := r.Stop(t.Context(), in2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + in2.Addr + "/"); err == nil {
		t.Error("a stopped instance still answers")
	}
}

func TestRuntime_RestartsCrashingInstanceWithBackoff(t *testing.T) {
	r, _ := newRuntime(t)
	reg := deploytest.StartRegistry(t)
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1", "CRASH=1"))
	in, err := r.Start(t.Context(), deploy.Workload{Group: "e2", ReleaseID: 1, Image: image + "@" + digest, Port: 8080,
		MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cur, err := r.Instance(t.Context(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Restarts >= 3 {
			if !strings.Contains(cur.LastExit, "crashing on purpose") {
				t.Errorf("last exit = %q, want the application's last line", cur.LastExit)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarts = %d after 20s, want at least 3", cur.Restarts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.Check(t.Context(), in.ID, "/healthz"); err == nil {
		t.Error("a crash-looping instance passed its health check")
	}
}

func TestRuntime_ReattachesAfterRestartWithoutDuplicates(t *testing.T) {
	r, dir := newRuntime(t)
	reg := deploytest.StartRegistry(t)
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1"))
	in, err := r.Start(t.Context(), deploy.Workload{Group: "e3", ReleaseID: 1, Image: image + "@" + digest, Port: 8080,
		MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, r, in.ID)
	r.Close() // Rampart stops; the container keeps running
	r2 := open(t, dir)
	t.Cleanup(func() { _ = r2.StopAll(context.Background()); r2.Close() })
	ins, err := r2.Instances(t.Context(), "e3")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].ID != in.ID {
		t.Fatalf("after reopening: %+v, want the one instance %s", ins, in.ID)
	}
	if ins[0].State != "running" || ins[0].Restarts != 0 {
		t.Errorf("reattached instance is %s with %d restarts, want running with 0 (not restarted)", ins[0].State, ins[0].Restarts)
	}
	waitHealthy(t, r2, in.ID)
	if got := get(t, ins[0].Addr, "/"); !strings.HasPrefix(got, "v1 ") {
		t.Errorf("GET / after reattach = %q", got)
	}
}

// TestRuntime_ReopenAfterCrashLeavesNoLeftovers reopens the runtime on
// what a Rampart killed with SIGKILL can leave on disk: an instance
// record marked as stopping (killed in the middle of Stop, its
// container still there), and a bundle and a log no record names
// (killed in the middle of Start, before the record was written; the
// bundle holds the instance's secrets). The stop is finished, the
// leftovers are removed, the other instance is reattached: one runc
// container, one bundle and one record remain.
func TestRuntime_ReopenAfterCrashLeavesNoLeftovers(t *testing.T) {
	r, dir := newRuntime(t)
	reg := deploytest.StartRegistry(t)
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1"))
	w := deploy.Workload{Group: "e4", ReleaseID: 1, Image: image + "@" + digest, Port: 8080, MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 64}
	var ids []string
	for range 2 {
		in, err := r.Start(t.Context(), w)
		if err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, r, in.ID)
		ids = append(ids, in.ID)
	}
	r.Close()

	stopping, kept := ids[0], ids[1]
	rec := filepath.Join(dir, "instances", stopping+".json")
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["stopping"] = true
	b, _ = json.Marshal(m)
	if err := os.WriteFile(rec, b, 0o600); err != nil {
		t.Fatal(err)
	}
	orphan := "e4-r2-0badf00d"
	if err := os.MkdirAll(filepath.Join(dir, "runc", "bundles", orphan), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runc", "bundles", orphan, "config.json"), []byte(`{"process":{"env":["DB_PASSWORD=s3cret"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "instances", orphan+".log"), []byte("half started\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r2 := open(t, dir)
	t.Cleanup(func() { _ = r2.StopAll(context.Background()); r2.Close() })
	ins, err := r2.Instances(t.Context(), "e4")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].ID != kept || ins[0].State != "running" {
		t.Fatalf("after reopening: %+v, want only %s, running", ins, kept)
	}
	out, err := exec.Command("runc", "--root", filepath.Join(dir, "runc", "state"), "list", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != kept {
		t.Errorf("runc containers %v, want only %s", got, kept)
	}
	bundles, _ := os.ReadDir(filepath.Join(dir, "runc", "bundles"))
	records, _ := filepath.Glob(filepath.Join(dir, "instances", "*"))
	if len(bundles) != 1 || bundles[0].Name() != kept {
		t.Errorf("%d bundles left, want only %s's", len(bundles), kept)
	}
	if len(records) != 2 { // kept's record and log
		t.Errorf("instance files left: %v, want %s's record and log", records, kept)
	}
}
