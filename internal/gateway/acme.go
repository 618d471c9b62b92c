package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

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
	// RetryAfter is how long a host whose certificate could not be
	// obtained is served the local CA's certificate before ACME is asked
	// again (default one minute); a handshake waits for the CA only on
	// the first attempt, not on every connection while it is down.
	RetryAfter time.Duration
}

// acmeCerts obtains and renews route hosts' certificates through ACME.
type acmeCerts struct {
	m          *autocert.Manager
	log        *slog.Logger
	retryAfter time.Duration

	mu     sync.Mutex
	failed map[string]time.Time // host → when ACME may be asked again
}

func newACMECerts(opt *ACME, claimed func(string) (string, bool), log *slog.Logger) (*acmeCerts, error) {
	if opt.Directory == "" || opt.CacheDir == "" {
		return nil, errors.New("gateway: ACME needs a directory URL and a cache directory")
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: opt.Roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
	}}
	a := &acmeCerts{log: log, retryAfter: opt.RetryAfter, failed: map[string]time.Time{}}
	if a.retryAfter <= 0 {
		a.retryAfter = time.Minute
	}
	a.m = &autocert.Manager{
		// Configuring a CA's directory is agreeing to its terms.
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(opt.CacheDir),
		HostPolicy: func(_ context.Context, host string) error {
			if !acmeHost(host, claimed) {
				return fmt.Errorf("no exact route claims %q", host)
			}
			return nil
		},
		Client: &acme.Client{DirectoryURL: opt.Directory, HTTPClient: hc, UserAgent: "rampart-gateway"},
		Email:  opt.Email,
	}
	return a, nil
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

// challenge reports whether hello is the CA validating a TLS-ALPN-01
// challenge, which the manager answers with its challenge certificate.
func challenge(hello *tls.ClientHelloInfo) bool {
	return slices.Contains(hello.SupportedProtos, acme.ALPNProto)
}

// get returns name's ACME certificate, obtaining it first when there is
// none (the handshake waits), or an error after which the caller serves
// the local CA's certificate; a failure is logged and not retried for
// retryAfter.
func (a *acmeCerts) get(hello *tls.ClientHelloInfo, name string) (*tls.Certificate, error) {
	a.mu.Lock()
	until, failed := a.failed[name]
	a.mu.Unlock()
	if failed && time.Now().Before(until) {
		return nil, errors.New("ACME failed recently")
	}
	c, err := a.m.GetCertificate(hello)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if len(a.failed) > 10000 {
			clear(a.failed)
		}
		a.failed[name] = time.Now().Add(a.retryAfter)
		a.log.Warn("ACME certificate not obtained; serving the local CA's certificate", "host", name, "retry_after", a.retryAfter.String(), "error", err.Error())
		return nil, err
	}
	delete(a.failed, name)
	return c, nil
}
