package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACME gets the certificates of route hosts from an ACME certificate
// authority (Let's Encrypt, step-ca, Pebble, …) instead of the local CA.
// The client is golang.org/x/crypto/acme/autocert; it answers the
// TLS-ALPN-01 challenge on the gateway's own listener, so the CA must
// reach the gateway on port 443 of each host's address (no port 80, no
// DNS records to manage).
//
// Only hosts an exact route claims get ACME certificates: a wildcard
// route would need the DNS-01 challenge, and a name a client makes up
// never reaches the CA (it would let anyone spend the account's rate
// limits). Those keep certificates from the local CA, as do IP
// addresses.
//
// A handshake never waits on the CA for long: a host's certificate is
// obtained in the background, the handshakes in the first Wait of that
// wait for it, and the others (and all of them while the CA fails) get
// the local CA's certificate. A failure is retried after RetryAfter,
// doubled after each further failure up to six hours (and never before
// the CA's own Retry-After when it rate-limits), so a host the CA cannot
// validate does not exhaust the account's failed-validation limits.
//
// Certificates are renewed only while an exact route claims their host:
// see orderGuard.
type ACME struct {
	// Directory is the CA's ACME directory URL.
	Directory string
	// Email is the account's contact address (optional).
	Email string
	// Roots are the CAs trusted for the ACME server's own HTTPS (nil:
	// the system's); a private ACME CA needs its root here.
	Roots *x509.CertPool
	// CacheDir keeps the account key and the certificates across
	// restarts (private keys: the directory is created 0700, files 0600).
	CacheDir string
	// RetryAfter is the first wait before a host whose certificate could
	// not be obtained is tried again (default one minute).
	RetryAfter time.Duration
	// Wait bounds how long handshakes wait for a certificate being
	// obtained before they get the local CA's (default 5s).
	Wait time.Duration
	// RenewBefore is how long before it expires a certificate is renewed
	// (default autocert's: a third of its lifetime, at most 30 days).
	RenewBefore time.Duration
}

const maxACMEBackoff = 6 * time.Hour

// acmeCerts obtains and renews route hosts' certificates through ACME.
type acmeCerts struct {
	m          *autocert.Manager
	log        *slog.Logger
	retryAfter time.Duration
	wait       time.Duration

	mu    sync.Mutex
	hosts map[acmeKey]*acmeState
}

// acmeKey names a certificate: autocert keeps an ECDSA one for clients
// that support it and an RSA one for those that do not.
type acmeKey struct {
	host string
	rsa  bool
}

// acmeState is what the gateway knows of one certificate.
type acmeState struct {
	ok       bool          // autocert holds it: GetCertificate answers from memory
	fetching chan struct{} // closed when the running fetch ends; nil when none runs
	waitEnd  time.Time     // handshakes wait for the running fetch until then
	next     time.Time     // no fetch before (after a failure)
	backoff  time.Duration // the wait after the last failure
}

func newACMECerts(opt *ACME, claimed func(string) (string, bool), log *slog.Logger) (*acmeCerts, error) {
	if opt.Directory == "" || opt.CacheDir == "" {
		return nil, errors.New("gateway: ACME needs a directory URL and a cache directory")
	}
	wanted := func(host string) bool { return acmeHost(host, claimed) }
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &orderGuard{wanted: wanted, log: log, next: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: opt.Roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
	}}}
	a := &acmeCerts{log: log, retryAfter: opt.RetryAfter, wait: opt.Wait, hosts: map[acmeKey]*acmeState{}}
	if a.retryAfter <= 0 {
		a.retryAfter = time.Minute
	}
	if a.wait <= 0 {
		a.wait = 5 * time.Second
	}
	a.m = &autocert.Manager{
		// Configuring a CA's directory is agreeing to its terms.
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(opt.CacheDir),
		HostPolicy: func(_ context.Context, host string) error {
			if !wanted(host) {
				return fmt.Errorf("no exact route claims %q", host)
			}
			return nil
		},
		Client:      &acme.Client{DirectoryURL: opt.Directory, HTTPClient: hc, UserAgent: "rampart-gateway"},
		Email:       opt.Email,
		RenewBefore: opt.RenewBefore,
	}
	return a, nil
}

// orderGuard is the ACME client's transport: it refuses to send the CA a
// new order for a name no exact route claims any more.
//
// autocert asks HostPolicy only when a handshake wants a certificate it
// does not hold. For every certificate it holds it keeps a renewal timer
// of its own, which orders a new certificate before the old one expires
// without asking HostPolicy, and retries a failed renewal every 30 to 60
// minutes; it offers no way to stop one host's timer (Manager.stopRenew
// is unexported and stops them all, for good). A removed route's
// certificate would so be renewed until a restart, spending the CA's
// rate limits and leaving the CA validating a host the gateway no longer
// serves. The transport is the one point of the renewal path autocert
// lets the gateway into: each new order (RFC 8555 7.4, a POST whose JWS
// payload lists "identifiers") is checked against the routes at the time
// it is placed, and refused before it reaches the CA. The timer stays
// (a cheap failure every half hour or so); when a route claims the host
// again, its next attempt renews the certificate.
type orderGuard struct {
	next   http.RoundTripper
	wanted func(host string) bool
	log    *slog.Logger
}

func (g *orderGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return g.next.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	for _, name := range orderNames(b) {
		if !g.wanted(name) {
			g.log.Info("ACME order not placed: no exact route claims the host any more (a removed route's certificate is not renewed)",
				"host", name)
			return nil, fmt.Errorf("no exact route claims %q any more: no certificate ordered", name)
		}
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	r2.ContentLength = int64(len(b))
	return g.next.RoundTrip(r2)
}

// orderNames returns the DNS names an ACME request body (a JWS in the
// flattened JSON serialization) orders or pre-authorizes certificates
// for (identifiers of every type): none for any other request.
func orderNames(body []byte) []string {
	var jws struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil || jws.Payload == "" {
		return nil
	}
	p, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return nil
	}
	type id struct{ Type, Value string }
	var req struct {
		Identifiers []id `json:"identifiers"` // newOrder
		Identifier  *id  `json:"identifier"`  // newAuthz
	}
	if json.Unmarshal(p, &req) != nil {
		return nil
	}
	if req.Identifier != nil {
		req.Identifiers = append(req.Identifiers, *req.Identifier)
	}
	var names []string
	for _, i := range req.Identifiers {
		// Other types (an IP address) are names no route claims.
		names = append(names, strings.TrimSuffix(strings.ToLower(i.Value), "."))
	}
	return names
}

// acmeHost reports whether host gets its certificate through ACME: a DNS
// name an exact route claims.
func acmeHost(host string, claimed func(string) (string, bool)) bool {
	if net.ParseIP(host) != nil {
		return false
	}
	claim, ok := claimed(host)
	return ok && claim == host
}

// plainName is the server name of hello in lower case when it is plain
// ASCII: names with other characters never take the ACME path (autocert
// maps them through IDNA, which strings.ToLower does not match, so the
// two would disagree on the host).
func plainName(hello *tls.ClientHelloInfo) (string, bool) {
	name := strings.TrimSuffix(hello.ServerName, ".")
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	return strings.ToLower(name), name != ""
}

// challenge reports whether hello is the CA validating a TLS-ALPN-01
// challenge, which the manager answers with its challenge certificate:
// as autocert decides, a hello offering that protocol alone.
func challenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}

// get returns the ACME certificate of name (a host acmeHost accepts) for
// hello, or an error after which the caller serves the local CA's.
func (a *acmeCerts) get(hello *tls.ClientHelloInfo, name string) (*tls.Certificate, error) {
	h := *hello
	h.ServerName = name
	k := acmeKey{host: name, rsa: !ecdsaCapable(hello)}
	a.mu.Lock()
	st := a.hosts[k]
	if st == nil {
		if len(a.hosts) > 10000 {
			clear(a.hosts)
		}
		st = &acmeState{}
		a.hosts[k] = st
	}
	if st.ok {
		a.mu.Unlock()
		c, err := a.m.GetCertificate(&h)
		if err == nil && usable(c) {
			return c, nil
		}
		// Gone or expired (renewal failing): the local CA's until a
		// fetch succeeds.
		a.mu.Lock()
		st.ok = false
	}
	now := time.Now()
	if st.fetching == nil && !now.Before(st.next) {
		st.fetching, st.waitEnd = make(chan struct{}), now.Add(a.wait)
		// autocert reads the hello for the key type and the name only;
		// the fetch outlives the handshake.
		go a.fetch(k, st, &h)
	}
	done, waitEnd := st.fetching, st.waitEnd
	a.mu.Unlock()
	if done == nil {
		return nil, errors.New("ACME failed recently")
	}
	if d := time.Until(waitEnd); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		var gone <-chan struct{}
		if ctx := hello.Context(); ctx != nil {
			gone = ctx.Done()
		}
		select {
		case <-done:
		case <-t.C:
		case <-gone:
		}
	}
	a.mu.Lock()
	ok := st.ok
	a.mu.Unlock()
	if !ok {
		return nil, errors.New("ACME certificate not ready")
	}
	c, err := a.m.GetCertificate(&h)
	if err != nil || !usable(c) {
		return nil, errors.New("ACME certificate not usable")
	}
	return c, nil
}

// fetch has autocert obtain (or load from its cache) the certificate of
// k, then records the outcome: ready, or the back-off before the next try.
func (a *acmeCerts) fetch(k acmeKey, st *acmeState, hello *tls.ClientHelloInfo) {
	c, err := a.m.GetCertificate(hello)
	if err == nil && !usable(c) {
		err = errors.New("the certificate has expired")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() { close(st.fetching); st.fetching = nil }()
	if err == nil {
		st.ok, st.backoff, st.next = true, 0, time.Time{}
		return
	}
	st.backoff = min(max(2*st.backoff, a.retryAfter), maxACMEBackoff)
	if ra, limited := acme.RateLimit(err); limited && ra > st.backoff {
		st.backoff = ra
	}
	st.next = time.Now().Add(st.backoff)
	a.log.Warn("ACME certificate not obtained; serving the local CA's certificate", "host", k.host, "rsa", k.rsa,
		"retry_after", st.backoff.String(), "error", err.Error())
}

// usable reports whether c is within its validity period.
func usable(c *tls.Certificate) bool {
	if c == nil || c.Leaf == nil {
		return c != nil
	}
	now := time.Now()
	return now.After(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter)
}

// ecdsaCapable reports whether autocert gives hello an ECDSA certificate
// (else an RSA one), as its unexported supportsECDSA decides: signature
// schemes and curves (when sent) allowing ECDSA with P-256, and an
// ECDSA cipher suite. The two must agree: the gateway keeps the state of
// the certificate autocert will answer with.
func ecdsaCapable(hello *tls.ClientHelloInfo) bool {
	if hello.SignatureSchemes != nil && !slices.ContainsFunc(hello.SignatureSchemes, func(s tls.SignatureScheme) bool {
		switch s {
		case 0x0203, tls.ECDSAWithP256AndSHA256, tls.ECDSAWithP384AndSHA384, tls.ECDSAWithP521AndSHA512:
			return true
		}
		return false
	}) {
		return false
	}
	if hello.SupportedCurves != nil && !slices.Contains(hello.SupportedCurves, tls.CurveP256) {
		return false
	}
	return slices.ContainsFunc(hello.CipherSuites, func(c uint16) bool {
		switch c {
		case tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305:
			return true
		}
		return false
	})
}
