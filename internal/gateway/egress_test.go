package gateway_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway"
)

// countingBackend answers 200 "ok" and counts the requests it got (health
// checks included) and the Via headers it saw last.
func countingBackend(t *testing.T) (*httptest.Server, *atomic.Int64, *atomic.Value) {
	t.Helper()
	var hits atomic.Int64
	var via atomic.Value
	via.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		via.Store(strings.Join(r.Header.Values("Via"), ", "))
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits, &via
}

func send(t *testing.T, method, url, host string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("x=1")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// A route whose backend is on the deny list never reaches it: not by its
// address, not by a name resolving to it, not through the direct path
// (GET), the ReverseProxy path (POST) or health checks. The client gets a
// 502 with the request id.
func TestGateway_BackendDenyList(t *testing.T) {
	app, hits, _ := countingBackend(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(app.URL, "http://"))
	byName := route(2, "byname", "name.test", "/", "http://localhost:"+port)
	byName.Spec.HealthCheck = gateway.HealthCheck{Path: "/healthz", Interval: gateway.Duration(100 * time.Millisecond), Timeout: gateway.Duration(50 * time.Millisecond)}
	routes := []gateway.Route{route(1, "byaddr", "addr.test", "/", app.URL), byName}

	deny := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	gw := startGateway(t, nil, routes, func(o *gateway.Options) { o.BackendDeny = deny })
	for _, host := range []string{"addr.test", "name.test"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			res, body := send(t, method, gw.URL+"/", host)
			if res.StatusCode != http.StatusBadGateway || res.Header.Get("X-Request-Id") == "" || !strings.Contains(body, res.Header.Get("X-Request-Id")) {
				t.Errorf("%s %s: %d %q, want 502 with the request id", method, host, res.StatusCode, body)
			}
			if strings.Contains(body, "127.0.0.1") {
				t.Errorf("%s %s: the client's error names the backend's address: %q", method, host, body)
			}
		}
	}
	time.Sleep(350 * time.Millisecond) // a few health-check periods
	if n := hits.Load(); n != 0 {
		t.Fatalf("the denied backend got %d requests", n)
	}

	// The default list lets loopback backends through.
	open := startGateway(t, nil, routes)
	for _, host := range []string{"addr.test", "name.test"} {
		if res, body := send(t, http.MethodGet, open.URL+"/", host); res.StatusCode != 200 || body != "ok" {
			t.Errorf("GET %s with the default deny list: %d %q", host, res.StatusCode, body)
		}
	}
}

// A route whose backend is the gateway itself would forward one request to
// itself until connections ran out: the gateway's Via pseudonym stops it at
// the second pass with 508. A chain of two gateways still works, and the
// application sees both in Via.
func TestGateway_LoopDetected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := "http://" + ln.Addr().String()
	gw := startGatewayOn(t, ln, []gateway.Route{route(1, "loop", "loop.test", "/", self)})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		start := time.Now()
		res, body := send(t, method, gw.URL+"/", "loop.test")
		if res.StatusCode != http.StatusLoopDetected || !strings.Contains(body, "loop") {
			t.Errorf("%s through a self-loop: %d %q, want 508", method, res.StatusCode, body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s through a self-loop took %v", method, d)
		}
	}
	if n := mustCounter(t, gw, "rampart_gateway_loops_total"); n < 2 {
		t.Errorf("rampart_gateway_loops_total = %v, want at least 2", n)
	}

	app, _, via := countingBackend(t)
	inner := startGateway(t, nil, []gateway.Route{route(1, "app", "chain.test", "/", app.URL)})
	outer := startGateway(t, nil, []gateway.Route{route(1, "inner", "chain.test", "/", inner.URL)})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, outer.URL+"/", nil)
		req.Host = "chain.test"
		req.Header.Set("Via", "1.1 corporate-proxy")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		v := via.Load().(string)
		if res.StatusCode != 200 || strings.Count(v, " rampart-") != 2 || !strings.HasPrefix(v, "1.1 corporate-proxy, ") {
			t.Errorf("%s through two gateways: %d, Via %q; want 200 with the client's Via then two gateways", method, res.StatusCode, v)
		}
	}

	// More gateways than any chain has is a loop between gateways.
	req, _ := http.NewRequest("GET", inner.URL+"/", nil)
	req.Host = "chain.test"
	req.Header.Set("Via", strings.Repeat("1.1 rampart-000000000000, ", 8))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusLoopDetected {
		t.Errorf("a request through 8 gateways: %d, want 508", res.StatusCode)
	}
}

func mustCounter(t *testing.T, gw *testGateway, name string) float64 {
	t.Helper()
	mfs, err := gw.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestParseBackendDeny(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "none", want: []string{}},
		{in: "", want: prefixStrings(gateway.DefaultBackendDeny)},
		{in: " , ", bad: true},
		{in: "10.0.0.0/8, 192.168.1.7,fd00::/8", want: []string{"10.0.0.0/8", "192.168.1.7/32", "fd00::/8"}},
		{in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}},
		// Connections to IPv4-mapped addresses are checked as IPv4: so are
		// entries written that way.
		{in: "::ffff:10.0.0.0/104, ::ffff:169.254.169.254", want: []string{"10.0.0.0/8", "169.254.169.254/32"}},
		{in: "::ffff:0:0/96", want: []string{"0.0.0.0/0"}},
		{in: "default,127.0.0.0/8", want: append(prefixStrings(gateway.DefaultBackendDeny), "127.0.0.0/8")},
		{in: "default", want: prefixStrings(gateway.DefaultBackendDeny)},
		{in: "10.0.0.0/33", bad: true},
		{in: "metadata.internal", bad: true},
		{in: "none,10.0.0.0/8", bad: true},
	} {
		got, err := gateway.ParseBackendDeny(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || strings.Join(prefixStrings(got), " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, a := range []string{"169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200", "fe80::1",
		"168.63.129.16", "fd00:ec2::23", "fd20:ce::254", "169.254.170.23"} {
		addr := netip.MustParseAddr(a).Unmap()
		found := false
		for _, p := range gateway.DefaultBackendDeny {
			found = found || p.Contains(addr)
		}
		if !found {
			t.Errorf("the default deny list lets %s through", a)
		}
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func FuzzParseBackendDeny(f *testing.F) {
	for _, s := range []string{"default", "none", "10.0.0.0/8,::1", "1.2.3.4/40", "default, fe80::%eth0/10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := gateway.ParseBackendDeny(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%q gave %v", s, p)
			}
		}
	})
}

// The gateway's Via entry names the protocol version the request came in
// with (RFC 9110, 7.6.3): 2 for HTTP/2, 1.0 for HTTP/1.0.
func TestGateway_ViaNamesTheProtocol(t *testing.T) {
	app, _, via := countingBackend(t)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", app.URL)})
	req, _ := http.NewRequest("GET", gw.URL+"/", nil)
	req.Host = "app.test"
	res, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := via.Load().(string); res.ProtoMajor != 2 || !strings.HasPrefix(v, "2 rampart-") {
		t.Errorf("HTTP/%d request: the backend saw Via %q, want 2 rampart-…", res.ProtoMajor, v)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: app.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(c)
	if v := via.Load().(string); !strings.HasPrefix(v, "1.0 rampart-") {
		t.Errorf("HTTP/1.0 request: the backend saw Via %q, want 1.0 rampart-…", v)
	}
}
