package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/acmetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestUp_GatewayACME runs `rampart up --gateway-acme` against a real ACME
// CA (Pebble) with a route from the config file: a client trusting only
// that CA reaches the application through the gateway, and the account
// and certificate are kept in the data directory.
func TestUp_GatewayACME(t *testing.T) {
	t.Parallel()
	gwAddr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(gwAddr)
	tlsPort, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	ca := acmetest.Start(t, tlsPort)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello through ACME") }))
	t.Cleanup(app.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "routes:\n  - name: app\n    host: app.test\n    backends: [{url: %q}]\n", app.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startUp(t, dir, []string{"RAMPART_ADMIN_PASSWORD=acme-test-password"}, "--gateway-addr", gwAddr, "--gateway-config", cfg,
		"--gateway-acme", ca.Directory, "--gateway-acme-ca", ca.CAFile, "--gateway-acme-email", "ops@app.test")
	roots := ca.IssuingRoot(t)
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "app.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", gwAddr)
		}}}
	resp, err := hc.Get("https://app.test/")
	if err != nil {
		t.Fatalf("a client trusting only the ACME CA: %v\nstderr:\n%s", err, p.stderr)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "hello through ACME" {
		t.Fatalf("through the gateway: %d %q", resp.StatusCode, b)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "rampart-data", "gateway", "acme"))
	if err != nil || len(entries) < 2 {
		t.Errorf("ACME cache in the data directory: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", e.Name(), info.Mode())
		}
	}
}

// TestUp_GatewayBadFlags: gateway settings that cannot work stop `rampart
// up` with an error naming the flag.
func TestUp_GatewayBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gateway-acme", "http://acme.test/dir"}, "gateway-acme"},
		{[]string{"--gateway-acme", "https://acme.test/dir", "--gateway-tls=off"}, "--gateway-tls"},
		{[]string{"--gateway-acme-email", "ops@app.test"}, "gateway-acme"},
		{[]string{"--gateway-acme", "https://acme.test/dir", "--gateway-addr", ""}, "--gateway-addr"},
		{[]string{"--gateway-acme", "https://acme.test/dir", "--gateway-acme-ca", "/nonexistent/ca.pem"}, "gateway-acme-ca"},
		{[]string{"--gateway-backend-deny", "default,metadata.internal"}, "gateway-backend-deny"},
	} {
		args := append([]string{"up", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--ssh-addr", ""}, tc.args...)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		cmd := exec.CommandContext(ctx, rampartBinary(t), args...)
		cmd.Env = append(os.Environ(), "RAMPART_ADMIN_PASSWORD=acme-test-password")
		raw, err := cmd.CombinedOutput()
		out := string(raw)
		cancel()
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("rampart %s: %v, output %q; want an error naming %s", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
