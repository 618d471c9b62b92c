package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/pki"
)

// named is a backend that answers with its name and counts requests.
type named struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func newNamed(t *testing.T, name string, h http.HandlerFunc) *named {
	t.Helper()
	n := &named{name: name}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Server", "secret-backend/1.0")
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.RequestURI())
	}))
	t.Cleanup(n.Close)
	return n
}

func get(t *testing.T, url, host string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestGateway_RoutesByHostAndPath(t *testing.T) {
	app := newNamed(t, "app", nil)
	api := newNamed(t, "api", nil)
	wild := newNamed(t, "wild", nil)
	any := newNamed(t, "any", nil)
	strip := route(4, "strip", "app.test", "/static", app.URL)
	strip.Spec.StripPrefix = true
	gw := startGateway(t, nil, []gateway.Route{
		route(1, "app", "app.test", "/", app.URL),
		route(2, "api", "app.test", "/api", api.URL),
		route(3, "wild", "*.wild.test", "/", wild.URL),
		strip,
		route(5, "any", "", "/", any.URL),
	})
	tests := []struct {
		host, path string
		status     int
		body       string
	}{
		{"app.test", "/", 200, "app app.test /"},
		{"APP.test:8443", "/x?q=1", 200, "app APP.test:8443 /x?q=1"},
		{"app.test", "/api", 200, "api app.test /api"},
		{"app.test", "/api/v1/users", 200, "api app.test /api/v1/users"},
		{"app.test", "/apix", 200, "app app.test /apix"},
		{"app.test", "/static/a.css", 200, "app app.test /a.css"},
		{"a.wild.test", "/", 200, "wild a.wild.test /"},
		{"a.b.wild.test", "/", 200, "any a.b.wild.test /"},
		{"other.test", "/", 200, "any other.test /"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			status, h, body := get(t, gw.URL+tt.path, tt.host)
			if status != tt.status || body != tt.body {
				t.Errorf("got %d %q, want %d %q", status, body, tt.status, tt.body)
			}
			if h.Get("X-Request-Id") == "" || h.Get("Server") != "" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v: want a request id, no backend Server header, nosniff", h)
			}
		})
	}
}

func TestGateway_NoRouteAndBadHosts(t *testing.T) {
	app := newNamed(t, "app", nil)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", app.URL)})
	status, h, body := get(t, gw.URL+"/", "unknown.test")
	if status != http.StatusNotFound || !strings.Contains(body, h.Get("X-Request-Id")) {
		t.Errorf("unknown host: %d %s", status, body)
	}
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: bad_host!\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nHost: other.test\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET /#frag HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
		"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"G\x00T / HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n",
	} {
		resp := rawRequest(t, gw.URL, raw)
		if !strings.HasPrefix(resp, "HTTP/1.1 4") && !strings.HasPrefix(resp, "HTTP/1.1 5") {
			t.Errorf("%q answered %q, want a 4xx/5xx", truncate(raw, 60), truncate(resp, 80))
		}
		if n := app.hits.Load(); n != 0 {
			t.Fatalf("%q reached the backend", truncate(raw, 60))
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// rawRequest writes raw to the gateway and returns everything it answers
// until it closes the connection (or a second passes).
func rawRequest(t *testing.T, url, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = c.Write([]byte(raw))
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestGateway_SlowlorisIsCutOff(t *testing.T) {
	app := newNamed(t, "app", nil)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "", "/", app.URL)},
		func(o *gateway.Options) { o.ReadHeaderTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: app.test\r\n"))
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c) // the gateway closes the connection
	if d := time.Since(start); err != nil || d > 3*time.Second {
		t.Errorf("slow client held the connection %s (err %v)", d, err)
	}
	if app.hits.Load() != 0 {
		t.Error("the slow request reached the backend")
	}
}

func TestGateway_WeightsAndLeastConn(t *testing.T) {
	a := newNamed(t, "a", nil)
	b := newNamed(t, "b", nil)
	rt := route(1, "canary", "", "/", a.URL, b.URL)
	w95, w5 := 95, 5
	rt.Spec.Backends[0].Weight, rt.Spec.Backends[0].Version = &w95, "v1"
	rt.Spec.Backends[1].Weight, rt.Spec.Backends[1].Version = &w5, "v2"
	gw := startGateway(t, nil, []gateway.Route{rt})
	for range 200 {
		if status, _, _ := get(t, gw.URL+"/", "x.test"); status != 200 {
			t.Fatal(status)
		}
	}
	if a.hits.Load() != 190 || b.hits.Load() != 10 {
		t.Errorf("weights 95/5 over 200 requests gave %d/%d, want 190/10", a.hits.Load(), b.hits.Load())
	}
	v1 := gatewayCounter(t, gw, "canary", "v1", "2xx")
	v2 := gatewayCounter(t, gw, "canary", "v2", "2xx")
	if v1 != 190 || v2 != 10 {
		t.Errorf("metrics per version: v1=%v v2=%v, want 190 and 10", v1, v2)
	}

	// least_conn: a backend holding a request gets no more while the
	// other is idle.
	release := make(chan struct{})
	var quick [2]atomic.Int64
	hold := func(i int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				<-release
			} else {
				quick[i].Add(1)
			}
			io.WriteString(w, "ok")
		}
	}
	x := newNamed(t, "x", hold(0))
	y := newNamed(t, "y", hold(1))
	lc := route(2, "lc", "lc.test", "/", x.URL, y.URL)
	lc.Spec.Balance = gateway.LeastConn
	if err := gw.Load(context.Background(), []gateway.Route{rt, lc}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); get(t, gw.URL+"/hold", "lc.test") }()
	waitFor(t, func() bool { return x.hits.Load()+y.hits.Load() == 1 })
	busy := 0
	if y.hits.Load() == 1 {
		busy = 1
	}
	for range 20 {
		get(t, gw.URL+"/", "lc.test")
	}
	close(release)
	wg.Wait()
	if quick[busy].Load() != 0 || quick[1-busy].Load() != 20 {
		t.Errorf("least_conn sent %d of 20 requests to the busy backend", quick[busy].Load())
	}
}

func gatewayCounter(t *testing.T, gw *testGateway, route, version, class string) float64 {
	t.Helper()
	mfs, err := gw.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rampart_gateway_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["version"] == version && labels["class"] == class {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestGateway_FailuresRetriesAndTimeouts(t *testing.T) {
	// A backend that is down: its address refuses connections.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	up := newNamed(t, "up", nil)
	slow := newNamed(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	broken := newNamed(t, "broken", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close() // fail mid-request: no response at all
	})
	retry := route(1, "retry", "retry.test", "/", dead, up.URL)
	zero := 0
	noRetry := route(2, "noretry", "noretry.test", "/", dead)
	noRetry.Spec.Retries = &zero
	timeout := route(3, "timeout", "timeout.test", "/", slow.URL)
	timeout.Spec.Timeout = gateway.Duration(200 * time.Millisecond)
	gw := startGateway(t, nil, []gateway.Route{retry, noRetry, timeout, route(4, "broken", "broken.test", "/", broken.URL)})

	for range 6 {
		if status, _, body := get(t, gw.URL+"/", "retry.test"); status != 200 || !strings.HasPrefix(body, "up") {
			t.Fatalf("retry route: %d %s", status, body)
		}
	}
	// After two failures the dead backend is ejected: no more attempts.
	if st := gw.Status(1, "retry"); !st[0].Ejected {
		t.Errorf("dead backend not ejected: %+v", st)
	}
	tests := []struct {
		host   string
		status int
	}{
		{"noretry.test", http.StatusBadGateway},
		{"timeout.test", http.StatusGatewayTimeout},
		{"broken.test", http.StatusBadGateway},
	}
	for _, tt := range tests {
		start := time.Now()
		status, h, body := get(t, gw.URL+"/", tt.host)
		id := h.Get("X-Request-Id")
		if status != tt.status || id == "" || !strings.Contains(body, id) {
			t.Errorf("%s: %d %s, want %d with the request id %q in the body", tt.host, status, body, tt.status, id)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("%s took %s", tt.host, d)
		}
	}
	// POST is not retried (it may have had effects).
	resp, err := client.Post(gw.URL+"/", "text/plain", strings.NewReader("x"))
	if err == nil {
		resp.Body.Close()
	}
}

func TestGateway_HealthChecksTakeBackendsOut(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	sick := newNamed(t, "sick", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !healthy.Load() {
			http.Error(w, "down", 500)
			return
		}
		io.WriteString(w, "sick")
	})
	fine := newNamed(t, "fine", nil)
	rt := route(1, "hc", "", "/", sick.URL, fine.URL)
	rt.Spec.HealthCheck = gateway.HealthCheck{Path: "/healthz", Interval: gateway.Duration(100 * time.Millisecond), Timeout: gateway.Duration(50 * time.Millisecond)}
	gw := startGateway(t, nil, []gateway.Route{rt})
	healthy.Store(false)
	waitFor(t, func() bool { return !gw.Status(1, "hc")[0].Up })
	for range 10 {
		if _, _, body := get(t, gw.URL+"/", "x.test"); body == "sick" {
			t.Fatal("a backend failing its health check still got requests")
		}
	}
	healthy.Store(true)
	waitFor(t, func() bool { return gw.Status(1, "hc")[0].Up })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5s")
}

func TestGateway_WebSocketUpgrade(t *testing.T) {
	echo := newNamed(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	})
	rt := route(1, "ws", "", "/", echo.URL)
	rt.Spec.WAF = waf.Settings{Mode: waf.Block}
	gw := startGateway(t, nil, []gateway.Route{rt})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprintf(c, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo hello\n" {
		t.Errorf("through the tunnel: %q %v", line, err)
	}
}

func TestGateway_TLSPerHostAndHTTP2(t *testing.T) {
	ca, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), r.Proto)
	})
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", app.URL), route(2, "w", "*.wild.test", "/", app.URL)},
		func(o *gateway.Options) { o.TLS, o.Issuer = true, ca })
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, host := range []string{"app.test", "x.wild.test"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			}}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + host + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "https HTTP/1.1" || resp.TLS.PeerCertificates[0].VerifyHostname(host) != nil {
			t.Errorf("%s: proto %s, body %q, cert %v", host, resp.Proto, b, resp.TLS.PeerCertificates[0].DNSNames)
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: no HSTS", host)
		}
	}
}

func TestGateway_LimitsAndSizes(t *testing.T) {
	app := newNamed(t, "app", nil)
	rt := route(1, "limited", "", "/", app.URL)
	rt.Spec.RateLimit = gateway.RateLimit{PerIP: 1, Burst: 3}
	rt.Spec.MaxBody = 1024
	gw := startGateway(t, nil, []gateway.Route{rt})
	codes := map[int]int{}
	for range 6 {
		status, h, _ := get(t, gw.URL+"/", "x.test")
		codes[status]++
		if status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[200] != 3 || codes[429] != 3 {
		t.Errorf("burst 3 at 1/s over 6 quick requests: %v", codes)
	}
	time.Sleep(1100 * time.Millisecond)
	resp, err := client.Post(gw.URL+"/", "text/plain", strings.NewReader(strings.Repeat("x", 2048)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 KiB body on a 1 KiB route: %d", resp.StatusCode)
	}
}

// TestGateway_WAFBlocksAndRecordsEvents sends an attack through a
// blocking route and a detecting one: the first is refused with a request
// id that names the security event, the second reaches the backend and is
// recorded as detected; the match log names the rules.
func TestGateway_WAFBlocksAndRecordsEvents(t *testing.T) {
	app := newNamed(t, "app", nil)
	logPath := filepath.Join(t.TempDir(), "matches.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := &recorder{}
	block := route(1, "block", "block.test", "/", app.URL)
	block.Spec.WAF = waf.Settings{Mode: waf.Block}
	detect := route(2, "detect", "detect.test", "/", app.URL)
	detect.Spec.WAF = waf.Settings{Mode: waf.Detect}
	gw := startGateway(t, waf.NewEngine(waf.Options{MatchLog: f}), []gateway.Route{block, detect},
		func(o *gateway.Options) { o.Events = rec })
	attack := "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"
	status, h, body := get(t, gw.URL+attack, "block.test")
	id := h.Get("X-Request-Id")
	if status != http.StatusForbidden || !strings.Contains(body, id) {
		t.Fatalf("attack on a blocking route: %d %s", status, body)
	}
	if status, _, _ := get(t, gw.URL+"/search?q=hello", "block.test"); status != 200 {
		t.Errorf("benign request blocked: %d", status)
	}
	if status, _, _ := get(t, gw.URL+attack, "detect.test"); status != 200 {
		t.Errorf("attack on a detecting route: %d, want it through", status)
	}
	if n := app.hits.Load(); n != 2 {
		t.Errorf("backend saw %d requests, want 2 (the benign one and the detected one)", n)
	}
	waitFor(t, func() bool { return rec.len() == 2 })
	ev := rec.get()
	if ev[0].RequestID != id || ev[0].Outcome != "blocked" || ev[0].RuleID != 949110 || ev[0].Route != "block" || ev[0].Status != 403 {
		t.Errorf("blocked event: %+v", ev[0])
	}
	if ev[1].Outcome != "detected" || ev[1].Route != "detect" {
		t.Errorf("detected event: %+v", ev[1])
	}
	logged, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logged), `[id "942100"]`) || !strings.Contains(string(logged), `[unique_id "`+id+`"]`) {
		t.Errorf("match log lacks the SQL injection rule or the request id:\n%s", truncate(string(logged), 2000))
	}
}

type recorder struct {
	mu sync.Mutex
	ev []gateway.Event
}

func (r *recorder) RecordEvents(_ context.Context, es []gateway.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev = append(r.ev, es...)
	return nil
}

func (r *recorder) len() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.ev) }
func (r *recorder) get() []gateway.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]gateway.Event(nil), r.ev...)
	return out
}
