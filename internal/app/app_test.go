package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/logging"
)

func get(t *testing.T, c *http.Client, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSecurityHeadersOnEveryKindOfResponse(t *testing.T) {
	a := apptest.Start(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/login", "/", "/api/v1/orgs", "/api/v1/nope", "/static/rampart.css", "/healthz", "/no-such-page"} {
		resp := get(t, c, a.URL+path, "")
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP = %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", path, h.Get("X-Content-Type-Options"))
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS sent over plain HTTP", path)
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	a := apptest.Start(t)
	c := http.DefaultClient
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp := get(t, c, a.URL+p, ""); resp.StatusCode != 200 {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
	}
	if resp := get(t, c, a.URL+"/metrics", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous /metrics = %d, want 401", resp.StatusCode)
	}
	admin := a.Client(t, a.AdminToken(t))
	var tok httpapi.CreatedToken
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens", httpapi.CreateTokenRequest{Name: "prom", Scopes: []string{"metrics:read"}}).Decode(t, &tok)
	var other httpapi.CreatedToken
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens", httpapi.CreateTokenRequest{Name: "repo", Scopes: []string{"repo:read"}}).Decode(t, &other)
	if resp := get(t, c, a.URL+"/metrics", other.Secret); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/metrics with a repo:read token = %d, want 403", resp.StatusCode)
	}
	resp := get(t, c, a.URL+"/metrics", tok.Secret)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`rampart_http_requests_total{code="200",method="GET",route="GET /healthz"}`)) {
		t.Fatalf("/metrics = %d, body lacks the healthz counter:\n%.2000s", resp.StatusCode, body)
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	a := apptest.Start(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	a.Client(t, "").Must(200, "GET", httpapi.Prefix+"/openapi.json", nil).Decode(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, rt := range a.API.Routes() {
		if _, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]; !ok {
			t.Errorf("OpenAPI lacks %s %s", rt.Method, rt.Path)
		}
	}
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTLSAndStructuredLogs runs the app as `rampart up` does by default:
// HTTPS with a certificate from the CA in the data directory, HSTS, and one
// JSON log line per request carrying its request id.
func TestTLSAndStructuredLogs(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminPassword = apptest.AdminPassword
	cfg.Gateway.Addr = "127.0.0.1:0"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: logging.New(logs, "info"), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	if !strings.HasPrefix(a.URL(), "https://localhost:") {
		t.Fatalf("URL = %q", a.URL())
	}
	pem, err := os.ReadFile(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp := get(t, c, a.URL()+"/healthz", "")
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS = %d", resp.StatusCode)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=") {
		t.Errorf("HSTS = %q", hsts)
	}
	resp = get(t, c, a.URL()+"/login", "")
	reqID := resp.Header.Get("X-Request-Id")
	resp = get(t, c, a.URL()+"/api/v1/orgs", "rpt_not-a-real-token")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token = %d", resp.StatusCode)
	}
	cancel()
	<-done
	done <- nil
	found := false
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "http request" {
			if rec["request_id"] == nil || rec["route"] == nil {
				t.Errorf("request log line without request_id or route: %s", line)
			}
			if rec["request_id"] == reqID && rec["route"] == "GET /login" {
				found = true
			}
		}
		if strings.Contains(line, "rpt_not-a-real-token") {
			t.Errorf("a credential reached the log: %s", line)
		}
	}
	if !found {
		t.Errorf("no log line for request %s:\n%s", reqID, logs.String())
	}
}
