package gateway_test

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/logging"
)

// The gateway benchmarks run the whole path in one process: a keep-alive
// client, the gateway on 127.0.0.1 and a small backend (the same answer
// as bench/gwbackend). Besides ns/op and allocs/op they report the
// process's CPU time per request (cpu-µs/op, user+system from getrusage):
// BenchmarkGateway_Direct is the client and backend alone, so the
// gateway's own cost per request is Plain minus Direct.

// benchConns is the number of client connections (as wrk -c32 in
// bench/gateway.sh).
const benchConns = 32

var benchBody = []byte(`{"status":"ok","items":[1,2,3],"note":"benchmark backend"}` + "\n")

// benchBackend starts the benchmark backend on 127.0.0.1:0.
func benchBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(benchBody)))
		_, _ = w.Write(benchBody)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runBench sends GET /search?q=hello&page=2 with Host host to base from
// benchConns keep-alive connections and reports CPU per request.
func runBench(b *testing.B, base, host string) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	url := base + "/search?q=hello&page=2"
	do := func() error {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode}
		}
		return nil
	}
	if err := do(); err != nil { // warm up: connect, load the route
		b.Fatal(err)
	}
	b.SetParallelism((benchConns + 1) / 2) // × GOMAXPROCS goroutines
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.code) }

// BenchmarkGateway_Plain proxies through a route without WAF.
func BenchmarkGateway_Plain(b *testing.B) {
	backend := benchBackend(b)
	gw := startGateway(b, nil, []gateway.Route{route(1, "plain", "plain.bench", "/", backend)})
	runBench(b, gw.URL, "plain.bench")
}

// BenchmarkGateway_PlainAccessLog is Plain with the JSON access log on
// (the default of `rampart up`), written to io.Discard.
func BenchmarkGateway_PlainAccessLog(b *testing.B) {
	backend := benchBackend(b)
	gw := startGateway(b, nil, []gateway.Route{route(1, "plain", "plain.bench", "/", backend)}, func(o *gateway.Options) {
		o.AccessLog = true
		o.Logger = logging.New(io.Discard, "info")
	})
	runBench(b, gw.URL, "plain.bench")
}

// BenchmarkGateway_Direct is the client talking to the backend without
// the gateway: the part of Plain's cost that is not the gateway's.
func BenchmarkGateway_Direct(b *testing.B) {
	backend := benchBackend(b)
	runBench(b, backend, "plain.bench")
}

// BenchmarkGateway_PlainAccessLogBuffered is PlainAccessLog with the
// gateway's own buffered encoder (Options.AccessLogWriter), as `rampart
// up` runs it.
func BenchmarkGateway_PlainAccessLogBuffered(b *testing.B) {
	backend := benchBackend(b)
	gw := startGateway(b, nil, []gateway.Route{route(1, "plain", "plain.bench", "/", backend)}, func(o *gateway.Options) {
		o.AccessLog = true
		o.AccessLogWriter = io.Discard
	})
	runBench(b, gw.URL, "plain.bench")
}
