package gateway_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway"
)

// newHeadLog is a backend that records the request line, Content-Length
// and Transfer-Encoding of every request it gets.
func newHeadLog(t *testing.T) *recordingBackend {
	t.Helper()
	return newRecordingBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", func(req *http.Request) string {
		return req.Method + " " + req.RequestURI + " CL=" + req.Header.Get("Content-Length") + " TE=" + strings.Join(req.TransferEncoding, ",")
	})
}

// converse writes each step on one connection, reading what comes back
// after each (until the gateway closes the connection or goes quiet for
// 300 ms), and returns all of it.
func converse(t *testing.T, gwURL string, steps ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(gwURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out strings.Builder
	buf := make([]byte, 64<<10)
	for _, s := range steps {
		if _, err := io.WriteString(c, s); err != nil {
			break // closed by the gateway
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, err := c.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
	}
	return out.String()
}

// TestGateway_CLTERefusedWhateverCameBefore: a request with both
// Content-Length and Transfer-Encoding never reaches a backend, also on a
// connection where an earlier request could have made the framing parser
// lose track: an Upgrade request that is not upgraded (the connection is
// closed after its response), a folded header line, Transfer-Encoding on
// HTTP/1.0 (which net/http ignores), more pipelined requests than the
// parser queues.
func TestGateway_CLTERefusedWhateverCameBefore(t *testing.T) {
	be := newHeadLog(t)
	gw := startGateway(t, nil, []gateway.Route{route(1, "app", "app.test", "/", be.url)})
	const smuggle = "POST /smuggled HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	const get = "GET /first HTTP/1.1\r\nHost: app.test\r\n\r\n"
	for _, tt := range []struct {
		name, first string
		closes      bool // the gateway closes the connection after the first response
	}{
		{"none", "", false},
		{"upgrade not upgraded", "GET /first HTTP/1.1\r\nHost: app.test\r\nUpgrade: foo\r\n\r\n", true},
		{"upgrade to an unknown host", "GET /first HTTP/1.1\r\nHost: unknown.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true},
		{"folded header", "GET /first HTTP/1.1\r\nHost: app.test\r\nX-A: b\r\n Upgrade: x\r\n\r\n", false},
		{"folded Transfer-Encoding", "POST /first HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
		{"HTTP/1.0 with Transfer-Encoding", "GET /first HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"many pipelined requests", strings.Repeat(get, 70), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be.take()
			var out string
			if tt.first == "" {
				out = converse(t, gw.URL, smuggle)
			} else {
				out = converse(t, gw.URL, tt.first, smuggle)
			}
			for _, s := range be.take() {
				if strings.Contains(s, "/smuggled") {
					t.Errorf("the backend got %q (client got %q)", s, truncate(out, 200))
				}
			}
			switch {
			case tt.first == "":
				if !strings.HasPrefix(out, "HTTP/1.1 400 ") || !strings.Contains(out, "Connection: close\r\n") {
					t.Errorf("answered %q, want 400 and the connection closed", truncate(out, 200))
				}
			case tt.closes:
				if strings.Count(out, "HTTP/1.1 ") != 1 || !strings.Contains(out, "Connection: close\r\n") {
					t.Errorf("answered %q, want one response closing the connection", truncate(out, 300))
				}
			default:
				if !strings.Contains(out, "HTTP/1.1 400 ") {
					t.Errorf("answered %q, want the smuggling request refused with 400", truncate(out, 300))
				}
			}
		})
	}
}
