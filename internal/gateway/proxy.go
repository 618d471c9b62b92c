package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// live is a route as the running gateway serves it.
type live struct {
	route     Route
	info      RouteInfo
	waf       *waf.WAF
	pool      *pool
	proxy     http.Handler // forwarder: the direct path or rp
	rp        *httputil.ReverseProxy
	direct    bool // every backend is plain HTTP: bodyless GETs may go direct
	ipLimit   *limiter
	userLimit *limiter
	versions  map[string]*versionMetrics
	none      *versionMetrics
}

var (
	errNoBackend = errors.New("no healthy backend")
	errTimeout   = errors.New("backend did not answer in time")
)

// newProxy returns the reverse proxy of route l: Go's httputil engine
// (hop-by-hop headers, trailers, websocket upgrades, flushing of streamed
// responses) with Rampart's transport, which picks the backend, retries
// and times out.
func (g *Gateway) newProxy(l *live) *httputil.ReverseProxy {
	strip := l.route.Spec.StripPrefix && l.route.Spec.Path != "/"
	prefix := l.route.Spec.Path
	tls := g.opt.TLS
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			if tls {
				pr.Out.Header.Set("X-Forwarded-Proto", "https")
			}
			pr.Out.Host = pr.In.Host
			if strip {
				p := strings.TrimPrefix(pr.In.URL.Path, prefix)
				rp := strings.TrimPrefix(pr.In.URL.RawPath, prefix)
				if p == "" || p[0] != '/' {
					p = "/" + p
				}
				if pr.In.URL.RawPath != "" && (rp == "" || rp[0] != '/') {
					rp = "/" + rp
				}
				pr.Out.URL.Path, pr.Out.URL.RawPath = p, rp
				if pr.In.URL.RawPath == "" {
					pr.Out.URL.RawPath = ""
				}
			}
			st := stateOf(pr.In.Context())
			pr.Out.Header.Set("X-Request-Id", st.id)
			pr.Out.Header.Add("Via", g.viaFor(pr.In))
			if st.user.Token != "" {
				pr.Out.Header.Set(UserHeader, st.user.Token)
			}
		},
		Transport:      &routeTransport{g: g, l: l},
		BufferPool:     g.bufs,
		ErrorHandler:   g.proxyError,
		ModifyResponse: g.modifyResponse,
		ErrorLog:       nil,
	}
}

// proxyError answers when no backend response could be had: 502 when the
// backend failed, 504 when it was too slow, 503 when none is healthy.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	g.backendError(w, r, stateOf(r.Context()), err)
}

// backendError is proxyError with the request's state at hand.
func (g *Gateway) backendError(w http.ResponseWriter, r *http.Request, st *reqState, err error) {
	status, kind, detail := http.StatusBadGateway, "connect", "the backend failed to answer; quote request id "+st.id+" to the site's administrators"
	switch {
	case errors.Is(err, errNoBackend):
		status, kind, detail = http.StatusServiceUnavailable, "no_backend", "no healthy backend for this route; quote request id "+st.id
	case errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded):
		status, kind, detail = http.StatusGatewayTimeout, "timeout", "the backend did not answer in time; quote request id "+st.id
	case errors.Is(err, context.Canceled) && st.clientGone(r.Context()):
		// The client went away: nobody reads the answer.
		status, kind = 499, "client_closed"
	case isReset(err):
		kind = "reset"
	}
	var mbe *http.MaxBytesError
	var cbe *clientBodyError
	switch {
	case st.sw.body != nil && st.sw.body.timedOut():
		// The client stopped sending the body (deadlines.go).
		status, kind, detail = http.StatusRequestTimeout, "", "the request body was not received in time"
	case errors.As(err, &mbe):
		status, kind, detail = http.StatusRequestEntityTooLarge, "", "request body too large"
	case errors.As(err, &cbe):
		status, kind, detail = http.StatusBadRequest, "", "the request body could not be read: "+truncate(cbe.err.Error(), 200)
	}
	st.upErr = kind
	if kind != "" && kind != "client_closed" {
		version := "none"
		if st.backend != nil {
			version = st.backend.version
		}
		g.m.upstream.WithLabelValues(st.l.route.Name, version, kind).Inc()
	}
	if status == 499 {
		w.WriteHeader(status)
		return
	}
	writeError(w, status, st.id, detail)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// forwarder sends a route's requests to its backends: on the direct path
// when the request allows it, else through httputil.ReverseProxy.
type forwarder struct {
	g *Gateway
	l *live
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if directable(f.l, r) {
		f.g.serveDirect(w, r, stateOf(r.Context()))
		return
	}
	f.l.rp.ServeHTTP(w, r)
}

// modifyResponse adds the security headers the backend did not set and
// removes headers that advertise the backend's software.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	h := resp.Header
	delete(h, "Server")
	delete(h, "X-Powered-By")
	if unset(h, "X-Content-Type-Options") {
		h["X-Content-Type-Options"] = valNosniff[:1:1]
	}
	if unset(h, "Referrer-Policy") {
		h["Referrer-Policy"] = valReferrer[:1:1]
	}
	if unset(h, "X-Frame-Options") && !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors") {
		h["X-Frame-Options"] = valSameOrigin[:1:1]
	}
	if g.opt.TLS && unset(h, "Strict-Transport-Security") {
		h["Strict-Transport-Security"] = valHSTS[:1:1]
	}
	return nil
}

// unset reports whether h has no value for the canonical key k (as
// h.Get(k) == "").
func unset(h http.Header, k string) bool { v := h[k]; return len(v) == 0 || v[0] == "" }

// The security headers' values, shared by all responses (net/http only
// reads header values; the full slice expressions make an append copy).
var (
	valNosniff    = []string{"nosniff"}
	valReferrer   = []string{"strict-origin-when-cross-origin"}
	valSameOrigin = []string{"SAMEORIGIN"}
	valHSTS       = []string{"max-age=31536000"}
)

// routeTransport sends a request to one of the route's backends, trying
// others when a backend cannot be reached and the request may be sent
// again (an idempotent method without a body).
type routeTransport struct {
	g *Gateway
	l *live
}

func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateOf(req.Context())
	spec := &t.l.route.Spec
	attempts := 1
	if idempotent(req.Method) && (req.Body == nil || req.Body == http.NoBody) && req.Header.Get("Upgrade") == "" {
		attempts += *spec.Retries
	}
	path, rawPath := req.URL.Path, req.URL.RawPath
	// A body the client fails to send (too large, cut short, a stream
	// reset) fails the exchange through no fault of the backend: it must
	// not count towards ejecting it, or any client could take a route's
	// backends out of service.
	var body *clientBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &clientBody{ReadCloser: req.Body}
		req.Body = body
	}
	var tried [maxRetries + 1]*backend
	var lastErr error
	for n := 0; n < attempts; n++ {
		now := t.g.opt.Now()
		b := t.l.pool.pick(tried[:n], now.UnixNano())
		if b == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, errNoBackend
		}
		tried[n] = b
		st.backend = b
		req.URL.Scheme, req.URL.Host = b.url.Scheme, b.url.Host
		req.URL.Path = joinPath(b.url.Path, path)
		if rawPath != "" {
			req.URL.RawPath = joinPath(b.url.EscapedPath(), rawPath)
		}
		resp, err := t.try(req, b, spec.Timeout.D())
		if err == nil {
			b.succeeded()
			return resp, nil
		}
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err // the client is gone
		}
		if cerr := body.failure(); cerr != nil {
			return nil, cerr
		}
		b.failed(spec.HealthCheck.Unhealthy, now)
		if errors.Is(err, errTimeout) {
			return nil, err // a slow backend is not retried: that doubles the load on it
		}
		kind := "connect"
		if isReset(err) {
			kind = "reset"
		}
		if n+1 < attempts {
			t.g.m.upstream.WithLabelValues(t.l.route.Name, b.version, kind).Inc()
		}
	}
	return nil, lastErr
}

// clientBody is a request body that remembers the error reading it
// failed with: the client's fault, not the backend's.
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (c *clientBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// failure is the error reading the body failed with (nil for none, or
// no body), wrapped in errClientBody.
func (c *clientBody) failure() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return nil
	}
	return &clientBodyError{err: c.err}
}

// clientBodyError is an exchange failed by the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// try makes one exchange with b; timeout bounds it up to the response
// headers (the body may then take as long as it takes).
func (t *routeTransport) try(req *http.Request, b *backend, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(timeout, cancel)
	b.inflight.Add(1)
	resp, err := t.g.transport.RoundTrip(req.WithContext(ctx))
	fired := !timer.Stop()
	if err != nil {
		b.inflight.Add(-1)
		cancel()
		if fired && req.Context().Err() == nil {
			return nil, errTimeout
		}
		return nil, err
	}
	if fired && req.Context().Err() == nil {
		resp.Body.Close()
		b.inflight.Add(-1)
		cancel()
		return nil, errTimeout
	}
	done := func() { b.inflight.Add(-1); cancel() }
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &trackedRWC{ReadWriteCloser: rwc, done: done}
	} else {
		resp.Body = &trackedBody{ReadCloser: resp.Body, done: done}
	}
	return resp, nil
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// trackedBody runs done once when the response body is closed.
type trackedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// trackedRWC is trackedBody for upgraded (websocket) connections.
type trackedRWC struct {
	io.ReadWriteCloser
	once sync.Once
	done func()
}

func (b *trackedRWC) Close() error {
	err := b.ReadWriteCloser.Close()
	b.once.Do(b.done)
	return err
}

// bufferPool lends the 32 KiB buffers the proxy copies bodies with.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *(p.p.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.p.Put(&b) }

// get and put lend a buffer by its pointer: Put's &b costs an
// allocation per call (httputil.BufferPool's interface wants slices),
// these none.
func (p *bufferPool) get() *[]byte  { return p.p.Get().(*[]byte) }
func (p *bufferPool) put(b *[]byte) { p.p.Put(b) }

var (
	_ = net.ErrClosed
	_ = url.Parse
)
