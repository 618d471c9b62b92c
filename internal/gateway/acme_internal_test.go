package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestACMEBackoff: each failure to get a host's certificate doubles the
// wait before the CA is asked again, from RetryAfter up to six hours, and
// no handshake starts a fetch during the wait.
func TestACMEBackoff(t *testing.T) {
	ca := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no"}`)
	}))
	t.Cleanup(ca.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	a, err := newACMECerts(&ACME{Directory: ca.URL + "/dir", Roots: roots, CacheDir: t.TempDir(), RetryAfter: time.Hour, Wait: 10 * time.Second},
		func(h string) (string, bool) { return h, true }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "a.test", CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	state := func() acmeState {
		a.mu.Lock()
		defer a.mu.Unlock()
		return *a.hosts[acmeKey{host: "a.test"}]
	}
	for i, want := range []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour, 6 * time.Hour} {
		if _, err := a.get(hello, "a.test"); err == nil {
			t.Fatalf("attempt %d: a certificate from a CA that refuses", i)
		}
		st := state()
		if st.fetching != nil || st.ok || st.backoff != want || time.Until(st.next) < want-time.Minute {
			t.Fatalf("attempt %d: state %+v; want a back-off of %v", i, st, want)
		}
		t0 := time.Now()
		if _, err := a.get(hello, "a.test"); err == nil || time.Since(t0) > time.Second || state().fetching != nil {
			t.Fatalf("attempt %d: a handshake during the back-off started a fetch or waited (%v)", i, time.Since(t0))
		}
		a.mu.Lock()
		a.hosts[acmeKey{host: "a.test"}].next = time.Time{} // the back-off has passed
		a.mu.Unlock()
	}
}
