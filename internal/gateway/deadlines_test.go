package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// shortIdle makes the per-operation client timeouts short for tests.
func shortIdle(o *gateway.Options) {
	o.BodyIdleTimeout = 300 * time.Millisecond
	o.WriteIdleTimeout = 300 * time.Millisecond
}

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &p}}
}

// TestGateway_StalledRequestBodyIsCutOff: a client that sends its
// headers and then stops sending the body it announced gets an answer
// and its connection closed within the body idle timeout — 404 at once
// for an unknown host (net/http would wait for the body before writing
// it), 408 for a routed request (the backend exchange waiting for the
// body ends) — and the backend is not held responsible.
func TestGateway_StalledRequestBodyIsCutOff(t *testing.T) {
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d", len(b))
	})
	withWAF := route(2, "waf", "waf.test", "/", app.URL)
	withWAF.Spec.WAF = waf.Settings{Mode: waf.Block}
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", app.URL), withWAF}, shortIdle)
	for _, tt := range []struct {
		host, status string
	}{
		{"unknown.test", "404"},
		{"app.test", "408"}, {"app.test", "408"}, {"app.test", "408"},
		{"waf.test", "408"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: "+tt.host+"\r\nContent-Length: 1000\r\n\r\nab")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		b, err := io.ReadAll(c) // until the gateway closes the connection
		d := time.Since(start)
		c.Close()
		if err != nil || d > 3*time.Second {
			t.Fatalf("%s: stalled body held the connection %v (err %v, got %q)", tt.host, d.Round(time.Millisecond), err, truncate(string(b), 40))
		}
		if out := string(b); !strings.HasPrefix(out, "HTTP/1.1 "+tt.status+" ") || !strings.Contains(out, "Connection: close\r\n") {
			t.Errorf("%s: answered %q, want %s and the connection closed", tt.host, truncate(out, 200), tt.status)
		}
	}
	// Three stalled bodies did not take the route's only backend out.
	if status, _, body := get(t, gw.URL+"/", "app.test"); status != http.StatusOK {
		t.Errorf("GET after stalled bodies: %d %s", status, truncate(body, 100))
	}
}

// TestGateway_SlowRequestBodyKeepsGoing: the body idle timeout bounds
// each read, not the body: an upload that keeps sending, slower in all
// than the timeout, goes through.
func TestGateway_SlowRequestBodyKeepsGoing(t *testing.T) {
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	})
	// A second between writes, six in all: twice the idle timeout in
	// total, a third of it per gap, however busy the machine.
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", app.URL)}, func(o *gateway.Options) {
		o.BodyIdleTimeout = 3 * time.Second
	})
	pr, pw := io.Pipe()
	go func() {
		for i := range 6 {
			time.Sleep(time.Second) // 6 s in all, twice the idle timeout
			_, _ = fmt.Fprintf(pw, "%d", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", gw.URL+"/", pr)
	req.Host = "app.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "got 012345" {
		t.Errorf("slow upload: %d %q", resp.StatusCode, b)
	}
}

// bigBackend answers every request (after reading its body) with a 64 MiB
// body and reports on done when writing it ended.
func bigBackend(t *testing.T) (string, chan error) {
	done := make(chan error, 4)
	url := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n")
		_, err = c.Write(make([]byte, 64<<20))
		done <- err
	})
	return url, done
}

// TestGateway_ClientNotReadingIsCutOff: a client that stops reading a
// large response is cut off within the write idle timeout, on the direct
// path and through the reverse proxy, and the backend exchange ends (the
// backend's connection is closed) instead of waiting forever.
func TestGateway_ClientNotReadingIsCutOff(t *testing.T) {
	be, done := bigBackend(t)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", be)}, shortIdle)
	for _, tt := range []struct{ name, req string }{
		{"direct path", "GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"reverse proxy", "POST /big HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\n\r\nx"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, tt.req) // and never read
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: the backend wrote its whole body to a client reading nothing", tt.name)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: a client reading nothing held the backend exchange for 5 s", tt.name)
		}
		c.Close()
	}
}

// TestGateway_HTTP2StreamDeadlines: over HTTP/2 the deadlines are the
// stream's: a stalled request body gets 408, a client not reading a
// stream has it reset and the backend exchange ended.
func TestGateway_HTTP2StreamDeadlines(t *testing.T) {
	big, done := bigBackend(t)
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
	})
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", app.URL), route(2, "big", "big.test", "/", big)}, shortIdle)
	hc := h2cClient()

	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("ab")) }() // of 1000, then nothing
	req, _ := http.NewRequest("POST", gw.URL+"/", pr)
	req.Host, req.ContentLength = "app.test", 1000
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout || time.Since(start) > 3*time.Second {
		t.Errorf("stalled HTTP/2 body: %s %d after %v, want 408", resp.Proto, resp.StatusCode, time.Since(start))
	}

	req, _ = http.NewRequest("GET", gw.URL+"/big", nil)
	req.Host = "big.test"
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	select {
	case err := <-done:
		if err == nil {
			t.Error("the backend wrote its whole body to an HTTP/2 client reading nothing")
		}
	case <-time.After(5 * time.Second):
		t.Error("an HTTP/2 client reading nothing held the backend exchange for 5 s")
	}
}

// TestGateway_StreamsOutliveWriteIdleTimeout: the write idle timeout
// bounds each write, not the response: a stream pausing longer than it
// between events reaches the client whole, over HTTP/1 and HTTP/2, on
// the direct path and through the reverse proxy.
func TestGateway_StreamsOutliveWriteIdleTimeout(t *testing.T) {
	sse := newNamed(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			if i < 2 {
				time.Sleep(400 * time.Millisecond) // the write idle timeout is 150 ms
			}
		}
	})
	gw := startGateway(t, nil, []gateway.Route{route(1, "sse", "sse.test", "/", sse.URL)}, func(o *gateway.Options) {
		o.WriteIdleTimeout = 150 * time.Millisecond
		o.BodyIdleTimeout = 150 * time.Millisecond
	})
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		for _, method := range []string{"GET", "POST"} {
			t.Run(proto+" "+method, func(t *testing.T) {
				t.Parallel()
				c := client
				if proto == "HTTP/2.0" {
					c = h2cClient()
				}
				var body io.Reader
				if method == "POST" {
					body = strings.NewReader("x") // a body: through the reverse proxy
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, method, gw.URL+"/events", body)
				req.Host = "sse.test"
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if resp.Proto != proto || err != nil || string(b) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
					t.Errorf("%s %d: %q, %v", resp.Proto, resp.StatusCode, b, err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Error("stream did not end")
				}
			})
		}
	}
}

// TestGateway_StalledBodyOnWAFRouteIsASecurityEvent: a client that stops
// sending its request body on a route with the WAF (blocking or
// detecting) is recorded as a security event — blocked with 408, under
// the request id it was shown, without any of the body — while a route
// without the WAF only answers 408.
func TestGateway_StalledBodyOnWAFRouteIsASecurityEvent(t *testing.T) {
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) { _, _ = io.ReadAll(r.Body) })
	block := route(1, "block", "block.test", "/", app.URL)
	block.Spec.WAF = waf.Settings{Mode: waf.Block}
	detect := route(2, "detect", "detect.test", "/", app.URL)
	detect.Spec.WAF = waf.Settings{Mode: waf.Detect}
	plain := route(3, "plain", "plain.test", "/", app.URL)
	rec := &recorder{}
	gw := startGateway(t, nil, []gateway.Route{block, detect, plain}, shortIdle, func(o *gateway.Options) { o.Events = rec })
	const secret = "s3cr3t-body-content"
	ids := map[string]string{}
	for _, host := range []string{"plain.test", "block.test", "detect.test"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "POST /upload?x=1 HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: slow-client\r\nContent-Length: 1000\r\n\r\n"+secret)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("%s: stalled body answered %d, want 408", host, resp.StatusCode)
		}
		ids[host] = resp.Header.Get("X-Request-Id")
	}
	waitFor(t, func() bool { return rec.len() == 2 })
	time.Sleep(200 * time.Millisecond) // no third (the route without the WAF) follows
	evs := rec.get()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (the WAF routes'): %+v", len(evs), evs)
	}
	for i, host := range []string{"block.test", "detect.test"} {
		e := evs[i]
		if e.RequestID != ids[host] || e.Host != host || e.Outcome != "blocked" || e.Phase != "request" || e.Status != http.StatusRequestTimeout ||
			e.RuleID != 0 || !strings.HasPrefix(e.Message, gateway.SlowBodyMessage) || e.Method != "POST" || e.Path != "/upload" ||
			e.UserAgent != "slow-client" || e.ClientIP != "127.0.0.1" {
			t.Errorf("%s (request id %s): event %+v", host, ids[host], e)
		}
		if s := fmt.Sprintf("%+v", e); strings.Contains(s, secret) {
			t.Errorf("%s: the event holds the body: %s", host, s)
		}
	}
}
