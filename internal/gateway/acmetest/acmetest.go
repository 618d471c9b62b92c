// Package acmetest runs Let's Encrypt's Pebble, a real ACME CA for tests,
// with its DNS companion pebble-challtestsrv answering 127.0.0.1 for
// every name; .ci/run builds both into .cache/tools.
package acmetest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/pki"
	"github.com/rampartsec/rampart/internal/testenv"
)

// Version is the Pebble release .ci/run builds.
const Version = "v2.10.1"

// Pebble is a running Pebble: an ACME CA that really validates the
// TLS-ALPN-01 challenge, connecting to port tlsPort of the address its DNS
// server (pebble-challtestsrv, answering 127.0.0.1 for every name) gives.
type Pebble struct {
	Directory string
	Roots     *x509.CertPool // trusts Pebble's own HTTPS
	CAFile    string         // the same root, as a PEM file
	mgmt      string
}

// Option changes how Pebble runs.
type Option func(*options)

type options struct {
	validity time.Duration
}

// Validity sets the lifetime of the certificates Pebble issues (default
// 90 days); whole seconds.
func Validity(d time.Duration) Option {
	return func(o *options) { o.validity = d }
}

// Start runs Pebble until the test ends.
func Start(t *testing.T, tlsPort int, opts ...Option) *Pebble {
	t.Helper()
	o := options{validity: 90 * 24 * time.Hour}
	for _, f := range opts {
		f(&o)
	}
	bin := testenv.Tool(t, "pebble", Version)
	dnsBin := testenv.Tool(t, "pebble-challtestsrv", Version)
	dir := t.TempDir()
	ca, err := pki.EnsureCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, c := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	dns, api, mgmt, dnsMgmt := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": api, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": 1, "tlsPort": tlsPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles":   map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int64(o.validity / time.Second)}},
	}})
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, exec.Command(dnsBin, "-dnsserver", dns, "-management", dnsMgmt, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""))
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", dns)
	// No random waits before validating, no random nonce rejections:
	// the test wants the CA's behaviour, not its chaos testing.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	run(t, cmd)
	p := &Pebble{Directory: "https://" + api + "/dir", Roots: x509.NewCertPool(), CAFile: ca.CertFile(), mgmt: mgmt}
	p.Roots.AddCert(ca.Cert)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer at %s: %v", p.Directory, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// IssuingRoot is the root Pebble's certificates chain to (made up at its
// start), from its management interface.
func (p *Pebble) IssuingRoot(t *testing.T) *x509.CertPool {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}}
	resp, err := hc.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no root from pebble: %q", b)
	}
	return pool
}

func run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(cmd.Path), out.String())
		}
	})
}
