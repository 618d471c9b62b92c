package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The direct path. Most gateway traffic is a GET or HEAD without a body
// to a plain-HTTP backend; for those the gateway speaks HTTP/1.1 to the
// backend itself, on its own keep-alive connections, from the goroutine
// that serves the client. httputil.ReverseProxy over http.Transport
// hands every exchange to two more goroutines (the connection's read
// and write loops), clones the request twice and its headers once; the
// direct path does none of that, which roughly halves the gateway's CPU
// per request. Everything else — bodies, upgrades, https backends —
// goes through httputil.ReverseProxy. WAF routes take the direct path too
// (the forwarder behind the WAF sends their bodyless GETs and HEADs
// here); only the fast path in serve.go, which skips the WAF handler
// chain, is limited to routes without WAF and required auth.
//
// The direct path keeps the proxy's rules: hop-by-hop headers and those
// named in Connection are dropped both ways; X-Forwarded-For, -Host and
// -Proto, Forwarded and X-Request-Id are the gateway's, never the
// client's; the request target is the one ReverseProxy would send; the
// route's timeout bounds the exchange up to the response headers; a
// backend failing before its response headers is retried on another
// backend like on the ReverseProxy path, and answered 502/503/504 with
// the request id; one failing mid-body aborts the client's response.

// directable reports whether r may take the direct path of route l.
func directable(l *live, r *http.Request) bool {
	if !l.direct || (r.Body != nil && r.Body != http.NoBody) {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && len(h["Transfer-Encoding"]) == 0 && len(h["Content-Length"]) == 0
}

// upConn is a keep-alive connection to a backend.
type upConn struct {
	c    net.Conn
	lr   limitReader // under br: bounds the response heads
	br   *bufio.Reader
	bw   *bufio.Writer
	idle int64 // unix nanoseconds it went idle
	// The exchange's watch on its client, which aborts the connection's
	// I/O when the client goes away: fs, the client connection's state
	// when it is HTTP/1 over plain TCP (framing.go: no allocation), else
	// stop, which unregisters a context.AfterFunc.
	fs   *framingState
	stop func() bool
	// rc and peekFn check an idle connection before reuse (alive).
	rc       syscall.RawConn
	peekFn   func(fd uintptr) bool
	peekN    int
	peekErr  error
	peekByte [1]byte
}

// limitReader reads from c, failing with errHeadTooLarge once n bytes
// have been read (n is lifted while a body is read).
type limitReader struct {
	c net.Conn
	n int64
}

const noLimit = 1 << 62

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= int64(n)
	return n, err
}

// Limits of a backend's response heads: the status line and headers of
// the final response and of the interim (1xx) ones before it, together
// (http.Transport's MaxResponseHeaderBytes), and the number of interim
// responses.
const (
	maxResponseHeadBytes = 1 << 20
	maxInterimResponses  = 10
)

var (
	errHeadTooLarge   = errors.New("backend response headers too large")
	errTooManyInterim = errors.New("too many interim (1xx) responses from the backend")
)

// alive reports whether an idle connection may carry a request: nothing
// arrived on it while it was idle (no stray bytes, no EOF). One
// non-blocking recv(MSG_PEEK) system call.
func (uc *upConn) alive() bool {
	if uc.br.Buffered() > 0 {
		return false
	}
	if uc.rc == nil {
		return true
	}
	uc.peekN, uc.peekErr = 0, nil
	if err := uc.rc.Read(uc.peekFn); err != nil {
		return false
	}
	// EAGAIN: nothing to read, the connection is open and quiet.
	return errors.Is(uc.peekErr, syscall.EAGAIN)
}

// Limits of idle connections (as the transport's): per backend, over
// all backends of a gateway, and in time.
const (
	maxIdlePerBackend = 1024
	maxIdleTotal      = 4096
	idleConnTimeout   = 90 * time.Second
	reapEvery         = 30 * time.Second
	upBufferSize      = 16 << 10
)

// connPool holds a backend's idle connections, most recent last.
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
	// total counts the idle connections of all the gateway's pools
	// (nil: no global cap).
	total *atomic.Int64
}

func (p *connPool) countIdle(d int64) {
	if p.total != nil {
		p.total.Add(d)
	}
}

// reapLocked takes the connections idle longer than idleConnTimeout
// out of the pool (oldest first) and appends them to stale.
func (p *connPool) reapLocked(now int64, stale []*upConn) []*upConn {
	k := 0
	for k < len(p.idle) && now-p.idle[k].idle > int64(idleConnTimeout) {
		stale = append(stale, p.idle[k])
		p.idle[k] = nil
		k++
	}
	if k > 0 {
		p.idle = p.idle[k:]
		p.countIdle(-int64(k))
	}
	return stale
}

// get returns an idle connection younger than idleConnTimeout on which
// nothing arrived while it was idle, or nil.
func (p *connPool) get(now int64) *upConn {
	for {
		p.mu.Lock()
		var stale []*upConn
		if len(p.idle) > 0 && now-p.idle[0].idle > int64(idleConnTimeout) {
			stale = p.reapLocked(now, nil)
		}
		var uc *upConn
		if n := len(p.idle); n > 0 {
			uc = p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			p.countIdle(-1)
		}
		p.mu.Unlock()
		for _, s := range stale {
			s.discard()
		}
		if uc == nil || uc.alive() {
			return uc
		}
		// The backend closed it or sent bytes nobody asked for (a
		// body after a HEAD answer, a 408): never a next answer.
		uc.discard()
	}
}

// put returns a connection for reuse (closing it when the pool, or all
// pools together, are full, or the pool is closed), reaping expired ones.
func (p *connPool) put(uc *upConn, now int64) {
	uc.idle = now
	p.mu.Lock()
	var stale []*upConn
	if len(p.idle) > 0 && now-p.idle[0].idle > int64(idleConnTimeout) {
		stale = p.reapLocked(now, nil)
	}
	full := p.closed || len(p.idle) >= maxIdlePerBackend || p.total != nil && p.total.Load() >= maxIdleTotal
	if !full {
		p.idle = append(p.idle, uc)
		p.countIdle(1)
	}
	p.mu.Unlock()
	if full {
		uc.discard()
	}
	for _, s := range stale {
		s.discard()
	}
}

// reap closes the connections idle longer than idleConnTimeout.
func (p *connPool) reap(now int64) {
	p.mu.Lock()
	stale := p.reapLocked(now, nil)
	p.mu.Unlock()
	for _, s := range stale {
		s.discard()
	}
}

// close closes the idle connections; later puts close theirs.
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.countIdle(-int64(len(idle)))
	p.mu.Unlock()
	for _, uc := range idle {
		uc.discard()
	}
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, upBufferSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, upBufferSize) }}
)

// dial opens a new connection to b.
func (g *Gateway) dial(ctx context.Context, b *backend) (*upConn, error) {
	c, err := g.dialer.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	uc := &upConn{c: c, lr: limitReader{c: c, n: noLimit}}
	uc.br = readerPool.Get().(*bufio.Reader)
	uc.br.Reset(&uc.lr)
	uc.bw = writerPool.Get().(*bufio.Writer)
	uc.bw.Reset(c)
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			uc.rc = rc
			uc.peekFn = func(fd uintptr) bool {
				uc.peekN, _, uc.peekErr = syscall.Recvfrom(int(fd), uc.peekByte[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				return true
			}
		}
	}
	return uc, nil
}

// watchClient has uc's I/O aborted (a deadline in the past) when the
// client goes away: the request's context is canceled, or, on an HTTP/1
// connection over plain TCP (fs not nil), a read from the client fails —
// what makes net/http cancel that context.
func (uc *upConn) watchClient(ctx context.Context, fs *framingState) {
	if fs != nil && fs.watch(uc) {
		uc.fs = fs
		return
	}
	uc.stop = context.AfterFunc(ctx, func() {
		_ = uc.c.SetDeadline(aLongTimeAgo)
	})
}

// unwatch ends watchClient's watch, reporting false when it fired (the
// connection's deadline may be in the past). After it returns, the
// watch no longer touches uc.
func (uc *upConn) unwatch() bool {
	switch {
	case uc.fs != nil:
		ok := uc.fs.unwatch(uc)
		uc.fs = nil
		return ok
	case uc.stop != nil:
		ok := uc.stop()
		uc.stop = nil
		return ok
	}
	return true
}

// discard closes uc for good.
func (uc *upConn) discard() {
	_ = uc.c.Close()
	uc.br.Reset(nil)
	readerPool.Put(uc.br)
	uc.bw.Reset(nil)
	writerPool.Put(uc.bw)
}

// serveDirect forwards r on route l over the direct path.
func (g *Gateway) serveDirect(w http.ResponseWriter, r *http.Request, st *reqState) {
	l := st.l
	target := g.directTarget(l, r)
	attempts := 1 + *l.route.Spec.Retries
	var tried [maxRetries + 1]*backend
	var lastErr error
	for n := 0; n < attempts; n++ {
		now := g.opt.Now()
		b := l.pool.pick(tried[:n], now.UnixNano())
		if b == nil {
			if lastErr == nil {
				lastErr = errNoBackend
			}
			break
		}
		tried[n] = b
		st.backend = b
		b.inflight.Add(1)
		resp, uc, err := g.exchange(w, r, st, b, target, l.route.Spec.Timeout.D())
		if err == nil {
			b.succeeded()
			g.relayCounted(w, r, resp, uc, b)
			return
		}
		b.inflight.Add(-1)
		lastErr = err
		if st.clientGone(r.Context()) {
			break // the client is gone
		}
		b.failed(l.route.Spec.HealthCheck.Unhealthy, now)
		if errors.Is(err, errTimeout) {
			break // a slow backend is not retried: that doubles the load on it
		}
		if n+1 < attempts {
			kind := "connect"
			if isReset(err) {
				kind = "reset"
			}
			g.m.upstream.WithLabelValues(l.route.Name, b.version, kind).Inc()
		}
	}
	if st.clientGone(r.Context()) && !errors.Is(lastErr, errTimeout) {
		lastErr = context.Canceled
	}
	g.backendError(w, r, st, lastErr)
}

// relayCounted is relay, then b's in-flight count goes down (also when
// relay panics because the body broke off). A function of its own: a
// defer inside serveDirect's loop would be allocated on the heap.
func (g *Gateway) relayCounted(w http.ResponseWriter, r *http.Request, resp *http.Response, uc *upConn, b *backend) {
	defer b.inflight.Add(-1)
	g.relay(w, r, resp, uc, b)
}

// directTarget is the request target to send: the client's path with the
// route's prefix stripped if asked (the backend's base path is joined in
// exchange), as ReverseProxy would send it.
func (g *Gateway) directTarget(l *live, r *http.Request) url.URL {
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, ForceQuery: r.URL.ForceQuery}
	if l.route.Spec.StripPrefix && l.route.Spec.Path != "/" {
		prefix := l.route.Spec.Path
		p := strings.TrimPrefix(u.Path, prefix)
		rp := strings.TrimPrefix(u.RawPath, prefix)
		if p == "" || p[0] != '/' {
			p = "/" + p
		}
		if u.RawPath != "" && (rp == "" || rp[0] != '/') {
			rp = "/" + rp
		}
		if u.RawPath == "" {
			rp = ""
		}
		u.Path, u.RawPath = p, rp
	}
	return u
}

// errStale is a reused connection the backend had closed: the request
// goes again on a new connection to the same backend.
var errStale = errors.New("stale keep-alive connection")

// exchange sends the request to b and reads the response headers,
// relaying interim responses to w. On success the caller owns uc and
// resp.Body.
func (g *Gateway) exchange(w http.ResponseWriter, r *http.Request, st *reqState, b *backend, target url.URL, timeout time.Duration) (*http.Response, *upConn, error) {
	target.Path = joinPath(b.url.Path, target.Path)
	if target.RawPath != "" {
		target.RawPath = joinPath(b.escapedPath, target.RawPath)
	}
	now := time.Now()
	deadline := now.Add(timeout)
	ctx := r.Context()
	for fresh := false; ; fresh = true {
		var uc *upConn
		if !fresh {
			uc = b.conns.get(now.UnixNano())
		}
		if uc == nil {
			fresh = true
			dctx, cancel := context.WithDeadline(ctx, deadline)
			var err error
			uc, err = g.dial(dctx, b)
			timedOut := ctx.Err() == nil && dctx.Err() != nil
			cancel()
			if err != nil {
				if timedOut {
					return nil, nil, errTimeout
				}
				return nil, nil, err
			}
		}
		resp, err := g.roundTrip(ctx, w, r, st, uc, &target, deadline, fresh)
		if err == nil {
			return resp, uc, nil
		}
		uc.discard()
		if errors.Is(err, errStale) && !fresh {
			continue
		}
		return nil, nil, err
	}
}

// roundTrip writes the request on uc and reads the response headers. On
// success the watch on the client (uc.watchClient), which aborts the
// connection's I/O when the client goes away, stays on while relay
// copies the body; relay ends it (uc.unwatch).
func (g *Gateway) roundTrip(ctx context.Context, w http.ResponseWriter, r *http.Request, st *reqState, uc *upConn, target *url.URL, deadline time.Time, fresh bool) (*http.Response, error) {
	_ = uc.c.SetDeadline(deadline)
	uc.watchClient(ctx, st.fs)
	ok := false
	defer func() {
		if !ok {
			uc.unwatch()
		}
	}()
	classify := func(err error, sent bool) error {
		var ne net.Error
		switch {
		case st.clientGone(ctx):
			return context.Canceled
		case errors.Is(err, errHeadTooLarge):
			return err
		case errors.As(err, &ne) && ne.Timeout():
			return errTimeout
		case !fresh && !sent && (isReset(err) || errors.Is(err, syscall.EPIPE)):
			return errStale
		}
		return err
	}
	g.writeRequest(uc.bw, r, st, target)
	if err := uc.bw.Flush(); err != nil {
		return nil, classify(err, false)
	}
	// The response heads are read through a limit (a backend sending
	// endless headers gets a 502, not the gateway's memory).
	uc.lr.n = maxResponseHeadBytes
	if _, err := uc.br.Peek(1); err != nil {
		return nil, classify(err, false)
	}
	for interim := 0; ; interim++ {
		// head is the buffered response head when it is all there: it
		// tells whether the backend sent both Transfer-Encoding and
		// Content-Length (net/http drops the latter).
		head, _ := uc.br.Peek(uc.br.Buffered())
		if end := bytes.Index(head, crlfcrlf); end >= 0 {
			head = head[:end+2]
		} else {
			head = nil
		}
		resp, err := http.ReadResponse(uc.br, r)
		if err != nil {
			return nil, classify(err, true)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return nil, errors.New("backend switched protocols unasked")
			}
			if interim >= maxInterimResponses {
				return nil, errTooManyInterim
			}
			if resp.StatusCode != http.StatusContinue {
				relayInterim(w, r, resp)
			}
			continue
		}
		uc.lr.n = noLimit
		if len(resp.TransferEncoding) > 0 && (head == nil || hasHeaderLine(head, "content-length:")) {
			// Both framings (or a head not seen whole): the response
			// is read as chunked, the connection is not reused.
			resp.Close = true
		}
		_ = uc.c.SetDeadline(time.Time{})
		if st.clientGone(ctx) { // the client went away meanwhile (the deadline just cleared may be the watch's)
			return nil, context.Canceled
		}
		ok = true
		return resp, nil
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// relayInterim passes an interim response (103 Early Hints, 102) on to
// an HTTP/1.1 or later client, as ReverseProxy does, without its
// hop-by-hop headers; the headers already set for the final response
// (the request id) stay, and the interim ones do not carry over.
func relayInterim(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	if !r.ProtoAtLeast(1, 1) {
		return // HTTP/1.0 has no interim responses
	}
	h := w.Header()
	saved := h.Clone()
	for k, vs := range resp.Header {
		if !hopHeader(k) {
			h[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	clear(h)
	for k, vs := range saved {
		h[k] = vs
	}
}

// hasHeaderLine reports whether the response head (lines ending in
// CRLF) has a line starting with name (lower case, with the colon).
func hasHeaderLine(head []byte, name string) bool {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			i = len(head) - 1
		}
		line := head[:i+1]
		head = head[i+1:]
		if len(line) >= len(name) && strings.EqualFold(string(line[:len(name)]), name) {
			return true
		}
	}
	return false
}

// aLongTimeAgo is a deadline in the past: it wakes blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// hopHeader reports whether the (canonical) header k is dropped when a
// message is forwarded (RFC 9110 7.6.1).
func hopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// dropRequestHeader reports whether a client's request header is not
// forwarded as it is: hop-by-hop headers and those the gateway sets.
func dropRequestHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Host", "Content-Length", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Request-Id", UserHeader:
		return true
	}
	return false
}

// connectionListed reports whether the Connection header values name key.
func connectionListed(conn []string, key string) bool {
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), key) {
				return true
			}
		}
	}
	return false
}

// writeTarget writes target's request target, the string
// target.RequestURI() returns (target has no opaque part), without
// building that string.
func writeTarget(bw *bufio.Writer, target *url.URL) {
	p := target.EscapedPath()
	if p == "" {
		p = "/"
	}
	bw.WriteString(p)
	if target.ForceQuery || target.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(target.RawQuery)
	}
}

// writeRequest writes the request head (the request has no body).
func (g *Gateway) writeRequest(bw *bufio.Writer, r *http.Request, st *reqState, target *url.URL) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	writeTarget(bw, target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		if dropRequestHeader(k) || len(conn) > 0 && connectionListed(conn, k) {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				continue // never a header line of the value's making (net/http lets none through; defence in depth)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if te := r.Header["Te"]; len(te) > 0 && tokenListed(te, "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil || g.opt.TLS {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ")
	}
	bw.WriteString(st.id)
	bw.WriteString("\r\nVia: ")
	bw.WriteString(g.viaFor(r))
	bw.WriteString("\r\n")
	if st.user.Token != "" {
		bw.WriteString(UserHeader + ": ")
		bw.WriteString(st.user.Token)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

func tokenListed(vs []string, token string) bool { return connectionListed(vs, token) }

// relay writes the backend's response to the client, then returns uc to
// the backend's pool when the exchange left it reusable.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, resp *http.Response, uc *upConn, b *backend) {
	done := false // the connection is discarded when relay panics
	defer releaseConn(b, uc, &done)
	h := resp.Header
	// One pass over the backend's few headers rather than a delete per
	// hop-by-hop name.
	conn := h["Connection"]
	for k := range h {
		if hopHeader(k) || len(conn) > 0 && connectionListed(conn, k) {
			delete(h, k)
		}
	}
	_ = g.modifyResponse(resp)
	dst := w.Header()
	for k, vs := range h {
		if prev, ok := dst[k]; ok {
			dst[k] = append(prev[:len(prev):len(prev)], vs...)
		} else {
			dst[k] = vs
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	streaming := resp.ContentLength == -1 || strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
	buf := g.bufs.get()
	// The watch on the client set in roundTrip is still on: a client
	// going away sets a past deadline on the connection, which ends a
	// read from a backend that streams forever.
	err := copyBody(w, resp.Body, *buf, streaming)
	g.bufs.put(buf)
	aborted := !uc.unwatch()
	if err != nil {
		// Never resp.Body.Close here: it would read the rest of the
		// body (an endless stream, gigabytes nobody wants). releaseConn
		// closes the connection.
		panic(http.ErrAbortHandler) // the client gets a cut-off response, as from ReverseProxy
	}
	// The body is read to its end: the connection carries the next
	// request unless the backend asked to close it or sent more than
	// this response (bytes no request asked for must never become the
	// answer to the next one), or the client went away (the deadline
	// is in the past).
	resp.Body.Close()
	if !resp.Close && !aborted && uc.br.Buffered() == 0 {
		b.conns.put(uc, time.Now().UnixNano())
		done = true
	}
	if len(resp.Trailer) > 0 {
		for k, vs := range resp.Trailer {
			if announced > 0 {
				dst[k] = vs
			} else {
				dst[http.TrailerPrefix+k] = vs
			}
		}
	}
}

// releaseConn discards uc unless relay handed it back to the pool.
func releaseConn(b *backend, uc *upConn, done *bool) {
	uc.unwatch() // relay panicked before the copy ended
	if !*done {
		uc.discard()
	}
}

// copyBody copies the response body to the client, flushing after every
// write when the response is streamed.
func copyBody(w http.ResponseWriter, body io.Reader, buf []byte, streaming bool) error {
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if streaming {
				http.NewResponseController(w).Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
