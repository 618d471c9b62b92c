package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rampartsec/rampart/internal/gateway"
)

// recordingBackend answers every request with a fixed answer and
// records what format makes of each request.
type recordingBackend struct {
	url  string
	mu   sync.Mutex
	seen []string
}

func newRecordingBackend(t *testing.T, answer string, format func(*http.Request) string) *recordingBackend {
	t.Helper()
	b := &recordingBackend{}
	b.url = rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			b.mu.Lock()
			b.seen = append(b.seen, format(req))
			b.mu.Unlock()
			_, _ = io.WriteString(c, answer)
		}
	})
	return b
}

// headerNames formats a request as its line and sorted header names.
func headerNames(req *http.Request) string {
	return req.Method + " " + req.RequestURI + " " + strings.Join(slices.Sorted(maps.Keys(req.Header)), ",")
}

// requests is what the backend recorded so far.
func (b *recordingBackend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// take is requests, forgetting them.
func (b *recordingBackend) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.seen
	b.seen = nil
	return r
}

// h2Request sends one HTTP/2 request with prior knowledge, with the
// given header fields (pseudo-headers included) and body, and returns the
// response status or what ended the stream.
func h2Request(t *testing.T, gwURL string, fields [][2]string, body string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(gwURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	_ = fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: body == ""})
	if body != "" {
		_ = fr.WriteData(1, true, []byte(body))
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "error " + err.Error()
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hs, _ := dec.DecodeFull(f.HeaderBlockFragment())
			for _, h := range hs {
				if h.Name == ":status" {
					return h.Value
				}
			}
		case *http2.RSTStreamFrame:
			return "reset " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			return "goaway " + f.ErrCode.String()
		}
	}
}

// TestGateway_ClientFaultsDoNotEjectBackends: requests that fail through
// the client's fault — a chunked body over the route's limit, an HTTP/2
// body shorter than its content-length, an HTTP/2 method that is not a
// token, a path with a space — get 4xx answers and never count against
// the backend: another client's request afterwards is served (before the
// fix, two of them ejected the only backend and everyone got 503).
func TestGateway_ClientFaultsDoNotEjectBackends(t *testing.T) {
	be := newRecordingBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", headerNames)
	rt := route(1, "app", "app.test", "/", be.url)
	rt.Spec.MaxBody = 16
	gw := startGateway(t, nil, []gateway.Route{rt})
	big := strings.Repeat("a", 64)
	for range 3 {
		if out := converse(t, gw.URL, "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"+big+"\r\n0\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 413 ") {
			t.Errorf("chunked body over the limit: %q", truncate(out, 40))
		}
	}
	h2 := func(method, path, cl, body string) string {
		f := [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "app.test"}, {":path", path}}
		if cl != "" {
			f = append(f, [2]string{"content-length", cl})
		}
		return h2Request(t, gw.URL, f, body)
	}
	for range 3 {
		if st := h2("POST", "/x", "10", "hello"); st == "200" || st == "502" || st == "503" {
			t.Errorf("HTTP/2 body shorter than its content-length: %s", st)
		}
		if st := h2("G T", "/x", "", ""); st != "400" {
			t.Errorf("HTTP/2 method with a space: %s, want 400", st)
		}
		for _, p := range []string{"/x?a b", "/x?a\tb", "/x y"} {
			// Go's HTTP/2 server resets the stream itself for some.
			if st := h2("GET", p, "", ""); st != "400" && st != "reset PROTOCOL_ERROR" {
				t.Errorf("HTTP/2 path %q: %s, want 400", p, st)
			}
		}
	}
	for i := range 3 {
		if status, _, body := get(t, gw.URL+"/", "app.test"); status != http.StatusOK {
			t.Fatalf("request %d of another client afterwards: %d %s", i, status, truncate(body, 120))
		}
	}
	for _, r := range be.requests() {
		if len(strings.Fields(r)) > 3 {
			t.Errorf("the backend got a request line with a space in its target: %q", r)
		}
	}
}

// TestGateway_NoInterimResponsesToHTTP10: a backend's 103 Early Hints is
// not passed to an HTTP/1.0 client, on either forwarding path (RFC 9110
// 15.2: it would take it for the final answer).
func TestGateway_NoInterimResponsesToHTTP10(t *testing.T) {
	be := newRecordingBackend(t, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", headerNames)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", be.url)})
	for _, raw := range []string{
		"GET / HTTP/1.0\r\nHost: app.test\r\n\r\n",                        // direct path
		"POST / HTTP/1.0\r\nHost: app.test\r\nContent-Length: 1\r\n\r\nx", // ReverseProxy
	} {
		out := converse(t, gw.URL, raw)
		if !strings.HasPrefix(out, "HTTP/1.0 200 ") || strings.Contains(out, " 103 ") {
			t.Errorf("%q: %q", truncate(raw, 24), truncate(out, 80))
		}
	}
}

// TestGateway_ProtectedHeaderSpellings: what a client sends as the
// headers the gateway sets for backends, spelled with underscores (which
// CGI, WSGI and PHP read as the same variables), never reaches the
// backend, on either path.
func TestGateway_ProtectedHeaderSpellings(t *testing.T) {
	be := newRecordingBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", headerNames)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", be.url)})
	forged := "X-Rampart_User: forged\r\nX-Forwarded_For: 6.6.6.6\r\nX-Request_Id: forged\r\nx_forwarded_host: evil\r\nX-Keep: 1\r\n"
	converse(t, gw.URL, "GET /a HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n"+forged+"\r\n")
	converse(t, gw.URL, "POST /b HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nContent-Length: 1\r\n"+forged+"\r\nx")
	seen := be.requests()
	if len(seen) != 2 {
		t.Fatalf("the backend got %q", seen)
	}
	for _, r := range seen {
		if strings.Contains(r, "_") || !strings.Contains(r, "X-Keep") {
			t.Errorf("the backend got %q", r)
		}
	}
}
