package gateway_test

import (
	"bytes"
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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// handshake connects to the gateway at addr asking for host, offering
// protos (default http/1.1), and returns the certificate chain it
// presents, unverified.
func handshake(t *testing.T, addr, host string, protos ...string) []*x509.Certificate {
	t.Helper()
	if len(protos) == 0 {
		protos = []string{"http/1.1"}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: protos})
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
// would need DNS-01), names no route claims and names the config file's
// certificate covers keep their certificates, whatever protocols a client
// offers; a server name that only folds to a route host does not disturb
// it; the certificate survives a restart without the CA.
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
	static, err := local.Issue([]string{"static.test"})
	if err != nil {
		t.Fatal(err)
	}
	app := newNamed(t, "app", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from app") })
	routes := []gateway.Route{route(1, "app", "api.test", "/", app.URL), route(2, "w", "*.wild.test", "/", app.URL),
		route(3, "static", "static.test", "/", app.URL)}
	cache := t.TempDir()
	startGatewayOn(t, ln, routes, func(o *gateway.Options) {
		o.TLS, o.Issuer, o.Certs = true, local, []tls.Certificate{static}
		o.ACME = &gateway.ACME{Directory: p.Directory, Roots: p.Roots, CacheDir: cache, Email: "ops@api.test"}
	})
	acmeRoots := p.IssuingRoot(t)

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: acmeRoots, ServerName: "api.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	resp, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Get("https://api.test/")
	if err != nil {
		t.Fatalf("a client trusting the ACME CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from app" {
		t.Fatalf("through the gateway: %d %q", resp.StatusCode, body)
	}
	issued := resp.TLS.PeerCertificates[0]
	if err := verify(resp.TLS.PeerCertificates, "api.test", localRoots); err == nil {
		t.Error("the ACME certificate verifies against the local CA")
	}

	for _, host := range []string{"x.wild.test", "unclaimed.test", "static.test"} {
		chain := handshake(t, addr, host, "http/1.1", "acme-tls/1")
		if err := verify(chain, host, acmeRoots); err == nil {
			t.Errorf("%s got a certificate from the ACME CA", host)
		}
		if host != "unclaimed.test" {
			if err := verify(chain, host, localRoots); err != nil {
				t.Errorf("%s: the local CA's certificate does not verify: %v", host, err)
			}
		}
	}
	// U+0130 lowers to "i" in Go but not in IDNA: such a name is not the
	// route host, and asking for it leaves the host's certificate alone.
	handshake(t, addr, "ap\u0130.test")
	if chain := handshake(t, addr, "api.test"); verify(chain, "api.test", acmeRoots) != nil {
		t.Error("after a hello for \"ap\\u0130.test\", api.test no longer gets its ACME certificate")
	}
	entries, _ := os.ReadDir(cache)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Contains(names, "api.test") || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "static") }) {
		t.Errorf("the ACME cache holds %v; want the account key and api.test's certificate only", names)
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
	chain := handshake(t, ln2.Addr().String(), "api.test")
	if chain[0].SerialNumber.Cmp(issued.SerialNumber) != 0 {
		t.Errorf("after a restart api.test has certificate %v, want %v", chain[0].SerialNumber, issued.SerialNumber)
	}
}

// TestGateway_ACMEUnreachable: with the CA failing — refusing, or never
// answering — handshakes get the local CA's certificate within the wait
// instead of failing or hanging, and the CA is not asked again before
// the retry interval.
func TestGateway_ACMEUnreachable(t *testing.T) {
	local, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	localRoots := x509.NewCertPool()
	localRoots.AddCert(local.Cert)
	app := newNamed(t, "app", nil)
	routes := []gateway.Route{route(1, "a", "a.test", "/", app.URL), route(2, "b", "b.test", "/", app.URL)}

	// A CA that refuses every request (403, which the ACME client does
	// not retry), counting them.
	var asked atomic.Int32
	refusing := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no"}`)
	}))
	t.Cleanup(refusing.Close)
	roots := x509.NewCertPool()
	roots.AddCert(refusing.Certificate())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startGatewayOn(t, ln, routes, func(o *gateway.Options) {
		o.TLS, o.Issuer = true, local
		o.ACME = &gateway.ACME{Directory: refusing.URL + "/dir", Roots: roots, CacheDir: t.TempDir(), RetryAfter: time.Hour}
	})
	var first int32
	for i := range 3 {
		if chain := handshake(t, ln.Addr().String(), "a.test"); verify(chain, "a.test", localRoots) != nil {
			t.Fatalf("handshake %d: not the local CA's certificate", i)
		}
		switch n := asked.Load(); {
		case i == 0 && n == 0:
			t.Fatal("the first handshake did not ask the CA")
		case i == 0:
			first = n
		case n != first:
			t.Errorf("handshake %d asked the CA again within the retry interval: %d requests, then %d", i, first, n)
		}
	}

	// A CA that accepts connections and never answers.
	hanging, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hanging.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hanging.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startGatewayOn(t, ln2, routes, func(o *gateway.Options) {
		o.TLS, o.Issuer = true, local
		o.ACME = &gateway.ACME{Directory: "https://" + hanging.Addr().String() + "/dir", CacheDir: t.TempDir(), Wait: 300 * time.Millisecond}
	})
	var wg sync.WaitGroup
	for _, host := range []string{"a.test", "b.test", "a.test"} {
		wg.Go(func() {
			t0 := time.Now()
			if chain := handshake(t, ln2.Addr().String(), host); verify(chain, host, localRoots) != nil {
				t.Errorf("%s: not the local CA's certificate", host)
			}
			if d := time.Since(t0); d > 3*time.Second {
				t.Errorf("%s: the handshake took %v with the CA hanging", host, d)
			}
		})
	}
	wg.Wait()
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

// acmeChain handshakes with the gateway at addr for host until it
// presents a certificate from the ACME CA (roots), and returns its chain.
func acmeChain(t *testing.T, addr, host string, roots *x509.CertPool) []*x509.Certificate {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		chain := handshake(t, addr, host)
		if verify(chain, host, roots) == nil {
			return chain
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no certificate from the ACME CA within a minute", host)
		}
	}
}

// TestGateway_ACMERenewalEndsWithTheRoute: autocert renews each
// certificate it holds on a timer of its own, without asking its host
// policy. With one-minute certificates from a real CA (Pebble), renewed
// 50 s before they expire, the certificate of a host whose route was
// removed is not renewed — no order reaches the CA, its cached copy stays
// as it was — while that of a host still routed is.
func TestGateway_ACMERenewalEndsWithTheRoute(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p := acmetest.Start(t, ln.Addr().(*net.TCPAddr).Port, acmetest.Validity(time.Minute))
	local, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	app := newNamed(t, "app", nil)
	keep, gone := route(1, "keep", "keep.test", "/", app.URL), route(2, "gone", "gone.test", "/", app.URL)
	cache := t.TempDir()
	gw := startGatewayOn(t, ln, []gateway.Route{keep, gone}, func(o *gateway.Options) {
		o.TLS, o.Issuer = true, local
		o.ACME = &gateway.ACME{Directory: p.Directory, Roots: p.Roots, CacheDir: cache, RenewBefore: 50 * time.Second}
	})
	roots := p.IssuingRoot(t)
	first := acmeChain(t, addr, "keep.test", roots)[0]
	goneCert := acmeChain(t, addr, "gone.test", roots)[0]
	// Renewal is due 9 to 14 s after a certificate's NotBefore (59 s of
	// validity, 50 s before expiry, up to 5 s of autocert's jitter).
	if err := gw.Load(t.Context(), []gateway.Route{keep}); err != nil {
		t.Fatal(err)
	}
	if time.Since(goneCert.NotBefore) > 8*time.Second {
		t.Fatalf("gone.test's route was removed %v after its certificate was issued: too late to tell", time.Since(goneCert.NotBefore))
	}
	cached, err := os.ReadFile(filepath.Join(cache, "gone.test"))
	if err != nil {
		t.Fatal(err)
	}

	// keep.test's certificate is renewed.
	var renewed *x509.Certificate
	for deadline := time.Now().Add(45 * time.Second); renewed == nil; time.Sleep(250 * time.Millisecond) {
		if c := acmeChain(t, addr, "keep.test", roots)[0]; c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = c
		}
		if time.Now().After(deadline) {
			t.Fatal("keep.test's certificate was not renewed")
		}
	}
	// By 20 s after its NotBefore gone.test's would have been renewed too.
	time.Sleep(time.Until(goneCert.NotBefore.Add(20 * time.Second)))
	if now, err := os.ReadFile(filepath.Join(cache, "gone.test")); err != nil || !bytes.Equal(now, cached) {
		t.Errorf("gone.test's certificate was renewed after its route was removed (cache: %v)", err)
	}
	if chain := handshake(t, addr, "gone.test"); verify(chain, "gone.test", roots) == nil {
		t.Error("gone.test still gets an ACME certificate without a route")
	}
}
