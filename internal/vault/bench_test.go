package vault_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/transitkms/transittest"
)

// The speed benchmarks run the whole app on 127.0.0.1 (as its own process
// when RAMPART_BENCH_BIN names a rampart binary, as bench/vault.sh does)
// and call it over HTTP with keep-alive connections, as a fleet of
// clients would:
//
//	BenchmarkHTTPRead:  authorised reads through the Vault-compatible API
//	                    (token check, roles, policy, decrypt, audited read)
//	BenchmarkHTTPWrite: durable writes of new versions (group commit)
//
// Each reports throughput and the 50th and 99th percentile latency.
// RAMPART_BENCH_STORE=postgres runs them on PostgreSQL
// (RAMPART_TEST_POSTGRES), else SQLite. RAMPART_BENCH_CLIENTS sets the
// number of concurrent clients (default 16). RAMPART_BENCH_RATE=R sends the
// requests open-loop at R per second instead of as fast as the clients go
// (openLoop, one event loop over that many connections): request i is due
// at start+i/R and its latency counts from then, so time spent queueing
// behind a slow server is counted (no coordinated omission); the
// connections must be enough to keep R requests in flight.
// BenchmarkPeerVaultRead and
// BenchmarkPeerVaultWrite run the same load against a real HashiCorp Vault
// server. bench/vault.sh runs them all and prints the ratios.

// benchApp starts the Rampart under load, with an org, a project, a
// policy and a token: the binary RAMPART_BENCH_BIN (bench/vault.sh builds
// it) run as its own process, as in production and as the Vault peer runs,
// so the server has its own runtime and garbage collector; else the app in
// this process. It returns the base URL, the token and, for a process, its
// CPU time.
func benchApp(b *testing.B) (string, string, func() (time.Duration, error)) {
	var a *apptest.App
	var cpu func() (time.Duration, error)
	if bin := os.Getenv("RAMPART_BENCH_BIN"); bin != "" {
		a, cpu = benchProcess(b, bin)
	} else {
		var opts []apptest.Option
		if os.Getenv("RAMPART_BENCH_STORE") == "postgres" {
			opts = append(opts, apptest.WithStore(storetest.PostgresURL(b)))
		}
		a = apptest.Start(b, opts...)
	}
	adminLogin := a.AdminToken(b)
	admin := a.Client(b, adminLogin)
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", httpapi.CreateProjectRequest{Name: "web"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/vault/policies/bench", vault.PutPolicyRequest{
		Secrets: []string{"web/prod/*"}, Subjects: []string{"user:admin"}})
	var ct httpapi.CreatedToken
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens",
		map[string]any{"name": "bench", "scopes": []string{"vault:read", "vault:write"}}).Decode(b, &ct)
	return a.URL, ct.Secret, cpu
}

// benchProcess runs `bin up` on a free port with a fresh data directory
// (and RAMPART_BENCH_STORE's database) until the benchmark ends.
func benchProcess(b *testing.B, bin string) (*apptest.App, func() (time.Duration, error)) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"up", "--data", b.TempDir(), "--addr", addr, "--tls=off", "--ssh-addr", "", "--gateway-addr", "", "--log-level", "warn"}
	if os.Getenv("RAMPART_BENCH_STORE") == "postgres" {
		args = append(args, "--store", storetest.PostgresURL(b))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "RAMPART_ADMIN_PASSWORD="+apptest.AdminPassword)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			b.Fatalf("rampart up exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("rampart up did not answer: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &apptest.App{URL: base}, func() (time.Duration, error) { return transittest.ProcessCPU(cmd.Process.Pid) }
}

func clients() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("RAMPART_BENCH_CLIENTS"), &n); err != nil || n < 1 {
		return 16
	}
	return n
}

// load sends b.N requests from clients() goroutines and reports
// throughput and latency percentiles.
//
// cpu, when set, adds the CPU time of a server in another process; the
// CPU time of this process (server and clients) always counts, and
// cpu-µs/req reports the total per request: what a request costs on a
// loaded machine, where throughput says little.
func load(b *testing.B, unit string, req func(i int) (*http.Request, error), want int, cpu func() (time.Duration, error)) {
	b.Helper()
	cpuNow := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		d := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		if cpu != nil {
			other, err := cpu()
			if err != nil {
				b.Fatal(err)
			}
			d += other
		}
		return d
	}
	c := clients()
	var rate float64
	if _, err := fmt.Sscan(os.Getenv("RAMPART_BENCH_RATE"), &rate); err != nil || rate <= 0 {
		rate = 0
	}
	var (
		all, late        []time.Duration
		failed           int
		firstErr         error
		elapsed, cpuUsed time.Duration
		ms0, ms1         runtime.MemStats
	)
	if rate > 0 {
		// The requests are written out before the clock starts, as
		// wrk builds its request once: the load generator's CPU is
		// the sending and reading.
		reqs := make([][]byte, b.N)
		var addr string
		for i := range reqs {
			r, err := req(i)
			if err == nil {
				reqs[i], err = serialize(r)
			}
			if err != nil {
				b.Fatal(err)
			}
			addr = r.URL.Host
		}
		b.ResetTimer()
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuNow()
		start := time.Now()
		var err error
		all, late, failed, firstErr, err = openLoop(addr, c, rate, reqs, want)
		elapsed = time.Since(start)
		cpuUsed = cpuNow() - cpu0
		runtime.ReadMemStats(&ms1)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
	} else {
		b.ResetTimer()
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuNow()
		start := time.Now()
		var lat [][]time.Duration
		lat, failed, firstErr = closedLoop(b, c, req, want)
		elapsed = time.Since(start)
		cpuUsed = cpuNow() - cpu0
		runtime.ReadMemStats(&ms1)
		b.StopTimer()
		all = slices.Concat(lat...)
	}
	if failed > 0 {
		b.Fatalf("%d of %d requests failed; first: %v", failed, b.N, firstErr)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit+"/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(cpuUsed.Microseconds())/float64(b.N), "cpu-µs/req")
	// What this process allocated per request (the clients' share too):
	// what the garbage collector has to keep up with.
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N), "alloc-B/req")
	if rate > 0 {
		// How late requests went out: time lost waiting for a free
		// connection or by the load generator itself, which the
		// latencies above include.
		slices.Sort(late)
		if len(late) > 0 {
			b.ReportMetric(float64(late[min(len(late)-1, len(late)*99/100)].Microseconds())/1000, "send-late-p99-ms")
		}
	}
	b.ReportMetric(0, "ns/op") // throughput and latency say it; ns/op of a concurrent run misleads
}

// closedLoop sends b.N requests from c goroutines, each as soon as the
// goroutine's previous one is answered, and returns their latencies.
func closedLoop(b *testing.B, c int, req func(i int) (*http.Request, error), want int) ([][]time.Duration, int, error) {
	conns := make([]*rawConn, c)
	for i := range conns {
		conns[i] = &rawConn{}
	}
	lat := make([][]time.Duration, c)
	var next, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				r, err := req(i)
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				resp, err := conns[g].do(r)
				if err != nil {
					fail(err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[g] = append(lat[g], time.Since(t0))
				if resp.StatusCode != want {
					fail(fmt.Errorf("%d %s", resp.StatusCode, body))
				}
			}
		})
	}
	wg.Wait()
	return lat, int(failed.Load()), firstErr
}

func BenchmarkHTTPRead(b *testing.B) {
	base, tok, cpu := benchApp(b)
	const secrets = 100
	for i := range secrets {
		body := fmt.Sprintf(`{"data":{"value":"bench-secret-value-%03d"}}`, i)
		r, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/secret/data/acme/web/prod/S%03d", base, i), bytes.NewReader([]byte(body)))
		r.Header.Set("X-Vault-Token", tok)
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("seed: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	load(b, "reads", func(i int) (*http.Request, error) {
		r, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/secret/data/acme/web/prod/S%03d", base, i%secrets), nil)
		if err == nil {
			r.Header.Set("X-Vault-Token", tok)
		}
		return r, err
	}, http.StatusOK, cpu)
}

func BenchmarkHTTPWrite(b *testing.B) {
	base, tok, cpu := benchApp(b)
	load(b, "writes", func(i int) (*http.Request, error) {
		body := fmt.Sprintf(`{"data":{"value":"bench-write-value-%08d"}}`, i)
		r, err := http.NewRequest("PUT", fmt.Sprintf("%s/v1/secret/data/acme/web/prod/W%03d", base, i%200), bytes.NewReader([]byte(body)))
		if err == nil {
			r.Header.Set("X-Vault-Token", tok)
		}
		return r, err
	}, http.StatusOK, cpu)
}

// The peer: a real HashiCorp Vault server (tools/vaultserver/build.sh) in
// dev mode, its KV v2 engine at secret/, called by the same clients in the
// same run. Dev mode keeps its data in memory (no fsync), so its write
// figure is an upper bound.

func peerVault(b *testing.B) (addr string, cpu func() (time.Duration, error)) {
	b.Helper()
	v := transittest.StartVault(b)
	return v.Addr, v.CPUTime
}

func BenchmarkPeerVaultRead(b *testing.B) {
	addr, cpu := peerVault(b)
	const secrets = 100
	for i := range secrets {
		body := fmt.Sprintf(`{"data":{"value":"bench-secret-value-%03d"}}`, i)
		r, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/secret/data/acme/web/prod/S%03d", addr, i), bytes.NewReader([]byte(body)))
		r.Header.Set("X-Vault-Token", transittest.RootToken)
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("seed: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	load(b, "reads", func(i int) (*http.Request, error) {
		r, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/secret/data/acme/web/prod/S%03d", addr, i%secrets), nil)
		if err == nil {
			r.Header.Set("X-Vault-Token", transittest.RootToken)
		}
		return r, err
	}, http.StatusOK, cpu)
}

func BenchmarkPeerVaultWrite(b *testing.B) {
	addr, cpu := peerVault(b)
	load(b, "writes", func(i int) (*http.Request, error) {
		body := fmt.Sprintf(`{"data":{"value":"bench-write-value-%08d"}}`, i)
		r, err := http.NewRequest("PUT", fmt.Sprintf("%s/v1/secret/data/acme/web/prod/W%03d", addr, i%200), bytes.NewReader([]byte(body)))
		if err == nil {
			r.Header.Set("X-Vault-Token", transittest.RootToken)
		}
		return r, err
	}, http.StatusOK, cpu)
}

// rawConn is the clients' HTTP/1.1 keep-alive connection: the request
// written as bytes, the response read with net/http's parser. It costs the
// shared 2-core machine about 35 µs of CPU less per request than
// http.Client's transport (a goroutine pair and channels per
// connection), CPU the server under test then has (the same for both
// servers).
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
	wb bytes.Buffer
}

func (rc *rawConn) do(r *http.Request) (*http.Response, error) {
	if rc.c == nil {
		c, err := net.Dial("tcp", r.URL.Host)
		if err != nil {
			return nil, err
		}
		rc.c, rc.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	rc.wb.Reset()
	if err := r.Write(&rc.wb); err != nil {
		return nil, err
	}
	if _, err := rc.c.Write(rc.wb.Bytes()); err != nil {
		rc.c.Close()
		rc.c = nil
		return nil, err
	}
	resp, err := http.ReadResponse(rc.br, r)
	if err != nil {
		rc.c.Close()
		rc.c = nil
	}
	return resp, err
}

// BenchmarkLoadFloor is the load generator against a server that only
// burns RAMPART_BENCH_SPIN (a duration, default 0) of CPU per request and
// answers a small JSON body: the latency this harness measures on this
// machine for a server of a given cost, whatever the server does. With
// RAMPART_BENCH_RATE it shows how the open-loop tail grows with the CPU a
// request costs when clients and server share two cores.
func BenchmarkLoadFloor(b *testing.B) {
	spin, _ := time.ParseDuration(os.Getenv("RAMPART_BENCH_SPIN"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for t0 := time.Now(); time.Since(t0) < spin; {
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"data":{"value":"bench-secret-value-000"}}}`))
	}))
	b.Cleanup(srv.Close)
	load(b, "reads", func(i int) (*http.Request, error) {
		return http.NewRequest("GET", srv.URL+"/v1/secret/data/acme/web/prod/S000", nil)
	}, http.StatusOK, nil)
}
