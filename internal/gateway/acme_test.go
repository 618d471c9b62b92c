package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/acmetest"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/pki"
	"github.com/rampartsec/rampart/internal/testenv"
)

// handshake connects to the gateway at addr asking for host and returns
// the certificate chain it presents, unverified.
func handshake(t *testing.T, addr, host string) []*x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("TLS handshake for %s: %v", host, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates
}

func verify(chain []*x509.Certificate, host string, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
	return err
}

// TestGateway_ACMECertificates has the gateway get its route hosts'
// certificates from a real ACME CA (Pebble), which validates the
// TLS-ALPN-01 challenge by connecting to the gateway itself: a browser
// trusting the CA then reaches the application. A wildcard route (which
// would need DNS-01) and names no route claims keep the local CA's
// certificates; the certificate survives a restart without the CA.
func TestGateway_ACMECertificates(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p := acmetest.Start(t, ln.Addr().(*net.TCPAddr).Port)
	local, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	localRoots := x509.NewCertPool()
	localRoots.AddCert(local.Cert)
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from app") })
	routes := []gateway.Route{route(1, "app", "app.test", "/", app.URL), route(2, "w", "*.wild.test", "/", app.URL)}
	cache := t.TempDir()
	startGatewayOn(t, ln, routes, func(o *gateway.Options) {
		o.TLS, o.Issuer = true, local
		o.ACME = &gateway.ACME{Directory: p.Directory, Roots: p.Roots, CacheDir: cache, Email: "ops@app.test"}
	})
	acmeRoots := p.IssuingRoot(t)

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: acmeRoots, ServerName: "app.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	resp, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Get("https://app.test/")
	if err != nil {
		t.Fatalf("a client trusting the ACME CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from app" {
		t.Fatalf("through the gateway: %d %q", resp.StatusCode, body)
	}
	issued := resp.TLS.PeerCertificates[0]
	if err := verify(resp.TLS.PeerCertificates, "app.test", localRoots); err == nil {
		t.Error("the ACME certificate verifies against the local CA")
	}

	for _, host := range []string{"x.wild.test", "unclaimed.test"} {
		chain := handshake(t, addr, host)
		if err := verify(chain, host, acmeRoots); err == nil {
			t.Errorf("%s got a certificate from the ACME CA", host)
		}
		if host == "x.wild.test" {
			if err := verify(chain, host, localRoots); err != nil {
				t.Errorf("%s: the local CA's certificate does not verify: %v", host, err)
			}
		}
	}
	if entries, _ := os.ReadDir(cache); len(entries) < 2 {
		t.Errorf("the ACME cache holds %d files; want the account key and app.test's certificate", len(entries))
	}

	// Restarted on the same cache with the CA unreachable, the gateway
	// serves the certificate it has.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startGatewayOn(t, ln2, routes, func(o *gateway.Options) {
		o.TLS, o.Issuer = true, local
		o.ACME = &gateway.ACME{Directory: "https://" + testenv.FreeAddr(t) + "/dir", Roots: p.Roots, CacheDir: cache}
	})
	chain := handshake(t, ln2.Addr().String(), "app.test")
	if chain[0].SerialNumber.Cmp(issued.SerialNumber) != 0 {
		t.Errorf("after a restart app.test has certificate %v, want %v", chain[0].SerialNumber, issued.SerialNumber)
	}
}

// TestGateway_ACMEUnreachable: with the CA down, a host's handshake gets
// the local CA's certificate instead of failing, and later handshakes do
// not wait for the CA again within the retry interval.
func TestGateway_ACMEUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	localRoots := x509.NewCertPool()
	localRoots.AddCert(local.Cert)
	app := newNamed(t, "app", nil)
	startGatewayOn(t, ln, []gateway.Route{route(1, "app", "app.test", "/", app.URL)}, func(o *gateway.Options) {
		o.TLS, o.Issuer = true, local
		o.ACME = &gateway.ACME{Directory: "https://" + testenv.FreeAddr(t) + "/dir", CacheDir: t.TempDir(), RetryAfter: time.Hour}
	})
	for i := range 2 {
		t0 := time.Now()
		chain := handshake(t, ln.Addr().String(), "app.test")
		if err := verify(chain, "app.test", localRoots); err != nil {
			t.Fatalf("handshake %d: not the local CA's certificate: %v", i, err)
		}
		if d := time.Since(t0); i == 1 && d > 2*time.Second {
			t.Errorf("the second handshake took %v: it waited for the unreachable CA again", d)
		}
	}
}

func TestGateway_ACMENeedsTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = gateway.New(gateway.Options{Listener: ln, Logger: logging.New(testWriter{t}, "warn"), Registry: prometheus.NewRegistry(), WAF: waf.NewEngine(waf.Options{}),
		ACME: &gateway.ACME{Directory: "https://acme.example/dir", CacheDir: t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("ACME without TLS: %v", err)
	}
}
