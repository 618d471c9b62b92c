package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/acme"

	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
)

// Options configure a Gateway.
type Options struct {
	// Listener is where the gateway serves (plain TCP; the gateway adds
	// TLS itself when TLS is on).
	Listener net.Listener
	// TLS serves HTTPS with a certificate per route host: from Certs when
	// one covers the host, else issued by Issuer.
	TLS    bool
	Issuer CertIssuer
	Certs  []tls.Certificate
	// ACME, with TLS, gets the certificates of hosts exact routes claim
	// from an ACME CA (see ACME); nil issues them from Issuer.
	ACME *ACME
	// BackendRoots are the CAs trusted for https backends (nil: the
	// system's).
	BackendRoots *x509.CertPool
	// BackendDeny are the networks the gateway never connects to, checked
	// on every backend dial after name resolution (nil:
	// DefaultBackendDeny; empty: none).
	BackendDeny []netip.Prefix

	Logger   *slog.Logger
	Registry prometheus.Registerer
	// WAF compiles the routes' rule sets.
	WAF *waf.Engine
	// Auth signs end users in on routes with auth "required"; nil
	// answers such routes with 503 (fail closed).
	Auth Authenticator
	// Events receives security events; nil drops them (still counted).
	Events EventRecorder

	// MaxHeaderBytes caps the request line and headers (default 32 KiB);
	// larger requests get 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the time a client may take to send its
	// headers (default 10s): slow-loris clients are cut off.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 2m).
	IdleTimeout time.Duration
	// BodyIdleTimeout bounds each read of a request body (default 30s):
	// a client that stops sending the body it announced gets 408 and
	// its connection closed. The deadline moves with progress: slow
	// uploads that keep sending are not cut off.
	BodyIdleTimeout time.Duration
	// WriteIdleTimeout bounds each write of a response to the client
	// (default 30s): a client that stops reading has its connection
	// (or HTTP/2 stream) closed and the backend exchange ended. Per
	// write, not per response: long streams are not cut off.
	WriteIdleTimeout time.Duration
	// AccessLog writes one JSON line per request at info level.
	AccessLog bool
	// AccessLogWriter, with AccessLog, receives the access log lines
	// instead of Logger: the gateway encodes them itself (the records
	// Logger's JSON handler would write) and writes them in batches
	// every 250 ms or 64 KiB, which costs requests far less CPU than a
	// slog record and a write system call each.
	AccessLogWriter io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CertIssuer issues TLS server certificates (Rampart's local CA).
type CertIssuer interface {
	Issue(hosts []string) (tls.Certificate, error)
}

// Gateway is the layer-7 gateway: its listener, routing table, backend
// pools, WAF and limits. Load swaps in a new routing table at any time;
// requests in flight finish on the table they started with.
type Gateway struct {
	opt       Options
	log       *slog.Logger
	m         *metrics
	tbl       atomic.Pointer[table]
	transport *http.Transport
	dialer    *net.Dialer  // the direct path's
	idleConns atomic.Int64 // idle direct-path connections, all backends
	bufs      *bufferPool
	events    *eventQueue
	access    *accessLog // nil: access lines go through log
	certs     *certStore
	srv       *http.Server
	egress    *egress
	viaName   string // this gateway's pseudonym in Via headers
	via       string // the Via value it adds for HTTP/1.1: "1.1 " + viaName

	mu       sync.Mutex          // guards the fields below
	backends map[string]*backend // live state by route id + URL
	checks   context.CancelFunc  // stops the current table's health checks
	checksWG sync.WaitGroup
	runCtx   context.Context
}

// New returns a gateway with an empty routing table.
func New(opt Options) (*Gateway, error) {
	if opt.Listener == nil || opt.Logger == nil || opt.Registry == nil || opt.WAF == nil {
		return nil, errors.New("gateway: Listener, Logger, Registry and WAF are required")
	}
	if opt.TLS && opt.Issuer == nil && len(opt.Certs) == 0 {
		return nil, errors.New("gateway: TLS needs an Issuer or certificates")
	}
	if opt.ACME != nil && !opt.TLS {
		return nil, errors.New("gateway: ACME needs TLS")
	}
	if opt.MaxHeaderBytes <= 0 {
		opt.MaxHeaderBytes = 32 << 10
	}
	if opt.ReadHeaderTimeout <= 0 {
		opt.ReadHeaderTimeout = 10 * time.Second
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 2 * time.Minute
	}
	if opt.BodyIdleTimeout <= 0 {
		opt.BodyIdleTimeout = 30 * time.Second
	}
	if opt.WriteIdleTimeout <= 0 {
		opt.WriteIdleTimeout = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	g := &Gateway{
		opt:      opt,
		log:      opt.Logger.With(logging.KeyComponent, "gateway"),
		m:        newMetrics(opt.Registry),
		bufs:     newBufferPool(),
		backends: map[string]*backend{},
	}
	g.events = newEventQueue(opt.Events, g.log, g.m)
	if opt.AccessLog && opt.AccessLogWriter != nil {
		g.access = newAccessLog(opt.AccessLogWriter)
	}
	if opt.BackendDeny == nil {
		opt.BackendDeny = DefaultBackendDeny
		g.opt.BackendDeny = opt.BackendDeny
	}
	g.egress = &egress{deny: opt.BackendDeny, log: g.log}
	g.viaName = newViaName()
	g.via = "1.1 " + g.viaName
	g.dialer = g.egress.dialer()
	g.transport = newTransport(opt.BackendRoots, g.egress.dialer())
	g.tbl.Store(newTable(nil))
	g.srv = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		IdleTimeout:       opt.IdleTimeout,
		MaxHeaderBytes:    opt.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
		ConnContext:       connContext,
		// An HTTP/2 connection none of whose pending writes makes
		// progress is closed (the streams' deadlines are set per write,
		// deadlines.go; this covers the connection's own frames).
		HTTP2: &http.HTTP2Config{WriteByteTimeout: opt.WriteIdleTimeout},
	}
	g.srv.Protocols.SetHTTP1(true)
	g.srv.Protocols.SetHTTP2(true)
	if opt.TLS {
		g.certs = newCertStore(opt.Issuer, opt.Certs, g.hostClaimed)
		g.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: g.certs.get, NextProtos: []string{"h2", "http/1.1"}}
		if opt.ACME != nil {
			var err error
			if g.certs.acme, err = newACMECerts(opt.ACME, g.hostClaimed, g.log); err != nil {
				return nil, err
			}
			// The CA's TLS-ALPN-01 validation asks for this protocol.
			g.srv.TLSConfig.NextProtos = append(g.srv.TLSConfig.NextProtos, acme.ALPNProto)
		}
	} else {
		g.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return g, nil
}

// newTransport is the backend transport: keep-alive connections, many of
// them per backend (the default of 2 idle connections per host makes a
// busy proxy dial for most requests), HTTP/2 to https backends that offer
// it.
func newTransport(roots *x509.CertPool, d *net.Dialer) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
		// The gateway forwards what clients accept; it never decodes.
		DisableCompression: true,
	}
}

// Addr is the address the gateway listens on.
func (g *Gateway) Addr() string { return g.opt.Listener.Addr().String() }

// Run serves until ctx ends, then stops accepting, gives requests in
// flight grace to finish, stops health checks and writes pending events.
func (g *Gateway) Run(ctx context.Context, grace time.Duration) error {
	g.mu.Lock()
	g.runCtx = ctx
	g.mu.Unlock()
	g.restartChecks()
	evDone := make(chan struct{})
	evCtx, evCancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(evDone); g.events.run(evCtx) }()
	reapDone := make(chan struct{})
	go func() { defer close(reapDone); g.reapIdle(evCtx) }()
	if g.access != nil {
		flushDone := make(chan struct{})
		defer func() { <-flushDone; g.access.stop() }()
		go func() {
			defer close(flushDone)
			t := time.NewTicker(accessFlushEvery)
			defer t.Stop()
			for {
				select {
				case <-evCtx.Done():
					return
				case <-t.C:
					g.access.flush()
				}
			}
		}()
	}
	errc := make(chan error, 1)
	go func() {
		ln := g.opt.Listener
		if g.opt.TLS {
			ln = tls.NewListener(ln, g.srv.TLSConfig)
		}
		err := g.srv.Serve(&framingListener{Listener: ln})
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		if serr := g.srv.Shutdown(sctx); serr != nil {
			_ = g.srv.Close()
		}
		cancel()
		err = <-errc
	}
	g.mu.Lock()
	if g.checks != nil {
		g.checks()
	}
	g.mu.Unlock()
	g.checksWG.Wait()
	evCancel()
	<-evDone
	<-reapDone
	g.transport.CloseIdleConnections()
	g.closeBackendConns()
	return err
}

// Close stops serving at once (tests and failed starts) and closes the
// idle backend connections.
func (g *Gateway) Close() error {
	err := g.srv.Close()
	g.closeBackendConns()
	if g.access != nil {
		g.access.stop()
	}
	return err
}

// reapIdle closes the direct path's expired idle connections every
// reapEvery until ctx ends (get and put reap too, but only the pools
// they are called on).
func (g *Gateway) reapIdle(ctx context.Context) {
	t := time.NewTicker(reapEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now().UnixNano()
			g.mu.Lock()
			for _, b := range g.backends {
				b.conns.reap(now)
			}
			g.mu.Unlock()
		}
	}
}

// closeBackendConns closes the direct path's idle backend connections;
// connections in use are closed when their exchange ends.
func (g *Gateway) closeBackendConns() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.backends {
		b.conns.close()
	}
}

// hostClaimed reports whether a route claims host (certificates are only
// issued for claimed hosts, so clients cannot make the gateway mint
// certificates for names of their choosing).
func (g *Gateway) hostClaimed(host string) (string, bool) {
	t := g.tbl.Load()
	if _, ok := t.exact[host]; ok {
		return host, true
	}
	if i := indexDot(host); i > 0 {
		if _, ok := t.wild[host[i+1:]]; ok {
			return "*." + host[i+1:], true
		}
	}
	return "", false
}

func indexDot(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// newRequestID returns 16 hex digits from the runtime's ChaCha8
// generator (seeded from the system's CSPRNG, per thread: no lock, no
// system call).
func newRequestID() string {
	var b [16]byte
	const digits = "0123456789abcdef"
	v := rand.Uint64()
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// writeError answers a request the gateway refuses itself, as RFC 9457
// problem details with the request id.
func writeError(w http.ResponseWriter, status int, id, detail string) {
	closeIfBodyUnread(w)
	h := w.Header()
	for k := range h {
		switch k {
		case "X-Request-Id", "Retry-After", "Allow", "Connection":
		default:
			delete(h, k) // a backend's or a blocked response's headers
		}
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body := `{"type":"about:blank","title":` + strconv.Quote(http.StatusText(status)) + `,"status":` + strconv.Itoa(status) +
		`,"detail":` + strconv.Quote(detail) + `,"request_id":"` + id + `"}` + "\n"
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func errorf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
