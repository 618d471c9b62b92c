package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
)

// seen is what the echo backend reports about a request it got.
type seen struct {
	URI, Host, XFF, XFHost, XFProto, ReqID, Te, Cookie, UA string
	Leaked                                                 []string
}

// echoBackend answers with what it saw, and with headers the gateway must
// not pass on.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s := seen{URI: r.RequestURI, Host: r.Host, XFF: r.Header.Get("X-Forwarded-For"), XFHost: r.Header.Get("X-Forwarded-Host"),
			XFProto: r.Header.Get("X-Forwarded-Proto"), ReqID: r.Header.Get("X-Request-Id"), Te: r.Header.Get("Te"),
			Cookie: r.Header.Get("Cookie"), UA: r.Header.Get("User-Agent")}
		for _, k := range []string{"X-Hop", "Forwarded", "Proxy-Authorization", "X-Rampart-User", "Keep-Alive", "Upgrade"} {
			if len(r.Header[k]) > 0 {
				s.Leaked = append(s.Leaked, k)
			}
		}
		h := w.Header()
		h.Set("Connection", "X-Secret-Hop")
		h.Set("X-Secret-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Server", "backend/1.0")
		h.Set("X-Powered-By", "php")
		h.Set("X-Request-Id", "backend-id")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestGateway_DirectPathForwardsLikeReverseProxy sends the same request as
// a GET (the direct path) and as a POST with a body (httputil's
// ReverseProxy): the backend must see the same target, forwarding headers
// and no hop-by-hop or forged headers on both, and the client must get
// the backend's answer without its hop-by-hop and software headers.
func TestGateway_DirectPathForwardsLikeReverseProxy(t *testing.T) {
	be := echoBackend(t)
	rt := route(1, "strip", "app.test", "/api", be.URL+"/base")
	rt.Spec.StripPrefix = true
	gw := startGateway(t, nil, []gateway.Route{rt, route(2, "root", "root.test", "/", be.URL)})
	tests := []struct {
		name, host, target string
		wantURI            string
	}{
		{"strip prefix onto base path", "app.test", "/api/a%2Fb/c?x=1&y=%20", "/base/a%2Fb/c?x=1&y=%20"},
		{"prefix alone", "app.test", "/api?q", "/base?q"},
		{"root route keeps path and query", "root.test", "/search?q=hello&page=2", "/search?q=hello&page=2"},
		{"empty query kept", "root.test", "/x?", "/x?"},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("x=1")
				}
				req, _ := http.NewRequest(method, gw.URL+tt.target, body)
				req.Host = tt.host
				h := req.Header
				h.Set("Connection", "X-Hop")
				h.Set("X-Hop", "secret")
				h.Set("X-Forwarded-For", "6.6.6.6")
				h.Set("X-Forwarded-Host", "evil.test")
				h.Set("X-Forwarded-Proto", "https")
				h.Set("Forwarded", "for=6.6.6.6")
				h.Set("X-Request-Id", "forged")
				h.Set("X-Rampart-User", "forged.jwt")
				h.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
				h.Set("Te", "trailers")
				h.Set("Cookie", "a=b")
				h.Set("User-Agent", "direct-test/1")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var got seen
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatalf("status %d: %v", resp.StatusCode, err)
				}
				id := resp.Header.Values("X-Request-Id")
				if len(id) == 0 || id[0] == "forged" || id[0] == "backend-id" {
					t.Fatalf("X-Request-Id %q: want the gateway's first", id)
				}
				want := seen{URI: tt.wantURI, Host: tt.host, XFF: "127.0.0.1", XFHost: tt.host, XFProto: "http", ReqID: id[0],
					Te: "trailers", Cookie: "a=b", UA: "direct-test/1"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("backend saw (-want +got):\n%s", diff)
				}
				for _, k := range []string{"X-Secret-Hop", "Keep-Alive", "Server", "X-Powered-By"} {
					if v := resp.Header.Get(k); v != "" {
						t.Errorf("response header %s: %q reached the client", k, v)
					}
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("security headers missing")
				}
			})
		}
	}
}

// TestGateway_DirectPathKeepsBackendConnections checks that sequential
// requests share one backend connection, and that a connection the
// backend closed while idle is replaced without the client noticing.
func TestGateway_DirectPathKeepsBackendConnections(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Config.IdleTimeout = 100 * time.Millisecond
	be.Start()
	t.Cleanup(be.Close)
	gw := startGateway(t, nil, []gateway.Route{route(1, "ka", "ka.test", "/", be.URL)})
	for i := range 20 {
		if status, _, body := get(t, gw.URL+"/", "ka.test"); status != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential requests opened %d backend connections, want 1", n)
	}
	time.Sleep(300 * time.Millisecond) // the backend closes the idle connection
	for i := range 3 {
		if status, _, body := get(t, gw.URL+"/", "ka.test"); status != 200 || body != "ok" {
			t.Fatalf("after the backend closed the idle connection, request %d: %d %q", i, status, body)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("backend connections: %d, want 2 (one replaced)", n)
	}
}

// TestGateway_DirectPathResponses covers response framings on the direct
// path: HEAD, chunked bodies with trailers, close-delimited bodies and a
// body that breaks off (the client must see the response cut short, not
// a complete one).
func TestGateway_DirectPathResponses(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "part1 ")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Checksum", "abc")
		case "/close", "/broken":
			c, brw, _ := http.NewResponseController(w).Hijack()
			if r.URL.Path == "/close" {
				_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
			} else {
				_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten!!")
			}
			_ = brw.Flush()
			_ = c.Close()
		}
	}))
	t.Cleanup(be.Close)
	gw := startGateway(t, nil, []gateway.Route{route(1, "r", "r.test", "/", be.URL)})

	req, _ := http.NewRequest(http.MethodHead, gw.URL+"/head", nil)
	req.Host = "r.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 5 || len(b) != 0 {
		t.Errorf("HEAD: %d, length %d, body %q", resp.StatusCode, resp.ContentLength, b)
	}

	req, _ = http.NewRequest(http.MethodGet, gw.URL+"/trailer", nil)
	req.Host = "r.test"
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "part1 part2" || resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("chunked with trailer: %q, trailer %v", b, resp.Trailer)
	}

	if status, _, body := get(t, gw.URL+"/close", "r.test"); status != 200 || body != "until close" {
		t.Errorf("close-delimited: %d %q", status, body)
	}

	// A body that breaks off: the raw response must not end as a
	// complete message (the gateway drops the connection; net/http may
	// not even have sent the head).
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /broken HTTP/1.1\r\nHost: r.test\r\n\r\n")
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		if b, err = io.ReadAll(resp.Body); err == nil {
			t.Errorf("a body that broke off reached the client as complete: %q", b)
		}
	}
	if status, _, body := get(t, gw.URL+"/head", "r.test"); status != 200 || body != "hello" {
		t.Errorf("after a broken response: %d %q", status, body)
	}
}

// syncBuffer is a bytes.Buffer safe for the gateway's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestGateway_AccessLogWriterWritesWhatSlogWould runs the same requests
// through a gateway logging through slog and one with AccessLogWriter:
// both write the same JSON records (apart from times and request ids),
// the buffered one by the time the gateway has stopped.
func TestGateway_AccessLogWriterWritesWhatSlogWould(t *testing.T) {
	be := newNamed(t, "app", nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	routes := []gateway.Route{route(1, "app", "app.test", "/", be.URL), route(2, "dead", "dead.test", "/", dead)}
	requests := []struct{ host, path string }{
		{"app.test", "/ok?q=1"}, {"app.test", "/caf%C3%A9/\"quoted\""}, {"dead.test", "/"}, {"nowhere.test", "/x"},
	}
	run := func(opt func(*gateway.Options)) []map[string]any {
		ctx, cancel := context.WithCancel(context.Background())
		var logBuf syncBuffer
		lnGW, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o := gateway.Options{Listener: lnGW, Logger: logging.New(&logBuf, "info"), Registry: prometheus.NewRegistry(),
			WAF: waf.NewEngine(waf.Options{}), AccessLog: true}
		opt(&o)
		g, err := gateway.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Load(ctx, routes); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, time.Second) }()
		for _, rq := range requests {
			get(t, "http://"+lnGW.Addr().String()+rq.path, rq.host)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		out := logBuf.String()
		if w, ok := o.AccessLogWriter.(*syncBuffer); ok {
			out = w.String()
		}
		var recs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if m["msg"] != "gateway request" {
				continue
			}
			for _, k := range []string{"time", "duration_ms", "request_id"} {
				if _, ok := m[k]; !ok {
					t.Errorf("record without %s: %s", k, line)
				}
				delete(m, k)
			}
			recs = append(recs, m)
		}
		return recs
	}
	viaSlog := run(func(*gateway.Options) {})
	buffered := run(func(o *gateway.Options) { o.AccessLogWriter = &syncBuffer{} })
	if len(viaSlog) != len(requests) {
		t.Fatalf("slog wrote %d access records for %d requests", len(viaSlog), len(requests))
	}
	if diff := cmp.Diff(viaSlog, buffered); diff != "" {
		t.Errorf("access records (-slog +AccessLogWriter):\n%s", diff)
	}
}

// TestGateway_DirectPathDropsConnectionsWithStrayBytes: a backend that
// sends more than the response asked for (here a second response after
// its answer to a HEAD) must not have those bytes served as the answer to
// the next request.
func TestGateway_DirectPathDropsConnectionsWithStrayBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == http.MethodHead {
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray!")
						continue
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	gw := startGateway(t, nil, []gateway.Route{route(1, "r", "r.test", "/", "http://"+ln.Addr().String())})
	req, _ := http.NewRequest(http.MethodHead, gw.URL+"/", nil)
	req.Host = "r.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, _, body := get(t, gw.URL+"/", "r.test"); status != 200 || body != "ok" {
		t.Errorf("GET after a HEAD answered with stray bytes: %d %q, want 200 \"ok\"", status, body)
	}
}

// rawBackend serves every connection with serve until the test ends,
// and returns its URL.
func rawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestGateway_DirectPathClientGoneMidBody: a client that leaves while the
// backend's body streams must end the exchange — the gateway closes the
// backend connection instead of reading the rest (an endless stream, or
// one that goes quiet) — and the gateway still stops at once.
func TestGateway_DirectPathClientGoneMidBody(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		name := "streaming"
		if quiet {
			name = "quiet"
		}
		t.Run(name, func(t *testing.T) {
			closed := make(chan struct{}, 1)
			be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
				for start := time.Now(); time.Since(start) < 30*time.Second; {
					if quiet {
						_, _ = io.WriteString(c, "6\r\ndata:\n\r\n")
						_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
						if _, err := c.Read(make([]byte, 1)); err != nil {
							break // the gateway closed the connection
						}
						continue
					}
					if _, err := io.WriteString(c, "6\r\ndata:\n\r\n"); err != nil {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				closed <- struct{}{}
			})
			gw := startGateway(t, nil, []gateway.Route{route(1, "sse", "sse.test", "/", be)})
			c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, "GET /events HTTP/1.1\r\nHost: sse.test\r\n\r\n")
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 6)); err != nil {
				t.Fatal(err)
			}
			c.Close()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the backend connection was still read 5 s after the client left")
			}
		})
	}
}

// TestGateway_DirectPathBackendHeadLimits: a backend sending endless
// header lines, or too many interim responses, gets the client a 502
// with the request id (not an unbounded read); a few 103s are fine.
func TestGateway_DirectPathBackendHeadLimits(t *testing.T) {
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/endless":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			line := "X-Pad: " + strings.Repeat("a", 1000) + "\r\n"
			for start := time.Now(); time.Since(start) < 30*time.Second; {
				if _, err := io.WriteString(c, line); err != nil {
					return
				}
			}
		case "/longline":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Pad: ")
			chunk := strings.Repeat("a", 64<<10)
			for start := time.Now(); time.Since(start) < 30*time.Second; {
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
		case "/interim":
			for range 50 {
				_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/hints":
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n")
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	// A route per case: a failing backend is ejected from its route.
	paths := []string{"/endless", "/longline", "/interim", "/hints"}
	var routes []gateway.Route
	for i, p := range paths {
		routes = append(routes, route(int64(i+1), "r"+p[1:], p[1:]+".test", "/", be))
	}
	gw := startGateway(t, nil, routes)
	for _, path := range paths[:3] {
		start := time.Now()
		status, h, body := get(t, gw.URL+path, path[1:]+".test")
		if status != http.StatusBadGateway || !strings.Contains(body, h.Get("X-Request-Id")) || h.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d %q, want 502 with the request id", path, status, body)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %v", path, d)
		}
	}
	if status, _, body := get(t, gw.URL+"/hints", "hints.test"); status != 200 || body != "ok" {
		t.Errorf("two 103s, then 200: %d %q", status, body)
	}
}

// TestGateway_EarlyHintsRelayed: a backend's 103 Early Hints reach the
// client on the direct path (GET) and through ReverseProxy (POST); the
// final response keeps its request id and does not carry the hints'
// headers.
func TestGateway_EarlyHintsRelayed(t *testing.T) {
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nKeep-Alive: timeout=5\r\n\r\n")
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	gw := startGateway(t, nil, []gateway.Route{route(1, "hints", "hints.test", "/", be)})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var hints []http.Header
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusEarlyHints {
				hints = append(hints, http.Header(h).Clone())
			}
			return nil
		}}
		var body io.Reader // a GET without a body takes the direct path
		if method == http.MethodPost {
			body = strings.NewReader("x")
		}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, gw.URL+"/page", body)
		req.Host = "hints.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "ok" {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, got)
		}
		if len(hints) != 1 || hints[0].Get("Link") != "</a.css>; rel=preload" || hints[0].Get("Keep-Alive") != "" {
			t.Errorf("%s: early hints relayed as %v, want one with the Link and no hop-by-hop header", method, hints)
		}
		if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Link") != "" {
			t.Errorf("%s: final headers %v, want the request id and no Link", method, resp.Header)
		}
	}
}

// TestGateway_DirectPathIdleConnectionPoisoned: bytes a backend sends on
// a connection after it went idle (here a fake response some 50 ms after
// its answer to a HEAD) must never answer the next request.
func TestGateway_DirectPathIdleConnectionPoisoned(t *testing.T) {
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Method == http.MethodHead {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
				time.Sleep(50 * time.Millisecond)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned")
				continue
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
		}
	})
	gw := startGateway(t, nil, []gateway.Route{route(1, "r", "r.test", "/", be)})
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodHead, gw.URL+"/", nil)
		req.Host = "r.test"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(200 * time.Millisecond)
		if status, _, body := get(t, gw.URL+"/", "r.test"); status != 200 || body != "real" {
			t.Fatalf("round %d: GET after a HEAD whose connection got stray bytes while idle: %d %q, want 200 \"real\"", i, status, body)
		}
	}
}

// TestGateway_DirectPathBothFramingsNotReused: a response with both
// Transfer-Encoding and Content-Length is relayed (as chunked) but its
// connection is not used again.
func TestGateway_DirectPathBothFramingsNotReused(t *testing.T) {
	var conns atomic.Int64
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nok\r\n0\r\n\r\n")
		}
	})
	gw := startGateway(t, nil, []gateway.Route{route(1, "r", "r.test", "/", be)})
	for i := range 3 {
		if status, _, body := get(t, gw.URL+"/", "r.test"); status != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 responses with both framings took %d backend connections, want 3 (none reused)", n)
	}
}

// TestGateway_DirectPathDropsHeaderValuesWithNewlines: a header value with
// CR or LF (net/http's servers let none through; the handler may be
// called otherwise) never becomes header lines of its own to the backend.
func TestGateway_DirectPathDropsHeaderValuesWithNewlines(t *testing.T) {
	got := make(chan http.Header, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(be.Close)
	gw := startGateway(t, nil, []gateway.Route{route(1, "r", "r.test", "/", be.URL)})
	req := httptest.NewRequest(http.MethodGet, "http://r.test/", nil)
	req.Header.Set("X-Evil", "a\r\nX-Injected: 1")
	req.Header.Set("X-Fine", "b")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d %q", rec.Code, rec.Body.String())
	}
	h := <-got
	if h.Get("X-Injected") != "" || h.Get("X-Evil") != "" || h.Get("X-Fine") != "b" {
		t.Errorf("backend saw X-Injected %q, X-Evil %q, X-Fine %q", h.Get("X-Injected"), h.Get("X-Evil"), h.Get("X-Fine"))
	}
}

// TestGateway_AccessLogAfterStop: Close flushes the buffered access log,
// and lines of requests that end after it are written at once.
func TestGateway_AccessLogAfterStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	g, err := gateway.New(gateway.Options{Listener: ln, Logger: logging.New(testWriter{t}, "warn"), Registry: prometheus.NewRegistry(),
		WAF: waf.NewEngine(waf.Options{}), AccessLog: true, AccessLogWriter: &out})
	if err != nil {
		t.Fatal(err)
	}
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://nowhere.test/before", nil))
	_ = g.Close()
	if !strings.Contains(out.String(), "/before") {
		t.Errorf("after Close the access log holds %q, want the line of /before", out.String())
	}
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://nowhere.test/after", nil))
	if !strings.Contains(out.String(), "/after") {
		t.Errorf("a request after Close: access log %q, want the line of /after", out.String())
	}
}

// TestGateway_DirectPathClientGoneBeforeHeaders: a client that leaves
// while the backend has not answered yet ends the exchange at once — the
// backend connection is closed, not held until the route's timeout —
// and the request is logged as the client's doing (499, client_closed),
// not as a backend timeout.
func TestGateway_DirectPathClientGoneBeforeHeaders(t *testing.T) {
	got := make(chan struct{}, 1)
	closed := make(chan struct{}, 1)
	be := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		got <- struct{}{}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed <- struct{}{} // the gateway closed the connection
		}
	})
	var out syncBuffer
	gw := startGateway(t, nil, []gateway.Route{route(1, "slow", "slow.test", "/", be)}, func(o *gateway.Options) {
		o.AccessLog = true
		o.AccessLogWriter = &out
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: slow.test\r\n\r\n")
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never got the request")
	}
	c.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend connection was still open 5 s after the client left")
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		line := out.String()
		if strings.Contains(line, `"path":"/slow"`) {
			if !strings.Contains(line, `"status":499`) || !strings.Contains(line, `"upstream_error":"client_closed"`) {
				t.Errorf("access log %q, want status 499 and upstream_error client_closed", line)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for /slow: %q", line)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
