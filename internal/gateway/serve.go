package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// reqState is what the gateway learns about one request as it goes
// through the chain; the access log and metrics read it at the end.
type reqState struct {
	id      string
	idv     [1]string // id as a header value
	ip      string    // the client's address
	sw      statusWriter
	l       *live
	backend *backend
	user    User
	waf     waf.Outcome
	upErr   string
	// fs is the client connection's state when it is HTTP/1 over plain
	// TCP (framing.go), else nil.
	fs *framingState
}

// clientGone reports whether the client went away: ctx, the request's,
// is canceled, or a read from its connection failed (net/http cancels
// ctx for that, a moment later).
func (st *reqState) clientGone(ctx context.Context) bool {
	return ctx.Err() != nil || st.fs != nil && st.fs.isGone()
}

type stateKey struct{}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	id     []string // the X-Request-Id value
	// http10: the request is HTTP/1.0, which has no interim responses.
	http10 bool
	// writeIdle bounds each write to the client (deadlines.go); h2: the
	// request came over HTTP/2.
	writeIdle time.Duration
	h2        bool
	// body is the request's body when it has one (deadlines.go).
	body *idleBody
	// closeConn: the final response closes the connection (an HTTP/1
	// request asking to upgrade that is not upgraded).
	closeConn bool
}

func (w *statusWriter) WriteHeader(code int) {
	switch {
	case code < 200 && code != http.StatusSwitchingProtocols:
		if w.http10 {
			// RFC 9110 15.2: never sent to an HTTP/1.0 client, which
			// would take it for the final response.
			return
		}
		// An interim response relayed by ReverseProxy comes with the
		// backend's hop-by-hop headers.
		h := w.Header()
		for k := range h {
			if hopHeader(k) {
				delete(h, k)
			}
		}
	case w.status == 0:
		w.status = code
		w.keepID()
	}
	if code < 200 {
		// Written at once (a final status is written with the body).
		w.beforeWrite()
		w.ResponseWriter.WriteHeader(code)
		w.afterWrite()
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// keepID puts the request id back on the final response: ReverseProxy
// clears the whole header map after relaying an interim (1xx) response.
// It runs once, when the final response's status is known.
func (w *statusWriter) keepID() {
	if w.id != nil {
		if h := w.Header(); h["X-Request-Id"] == nil {
			h["X-Request-Id"] = w.id
		}
	}
	if w.closeConn && w.status != http.StatusSwitchingProtocols {
		w.Header().Set("Connection", "close")
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.keepID()
	}
	w.beforeWrite()
	n, err := w.ResponseWriter.Write(b)
	w.afterWrite()
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
			w.keepID()
		}
		w.beforeWrite()
		f.Flush()
		w.afterWrite()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP is the gateway's middleware chain, in order: recover → request
// id → framing and host checks → route → per-address limit → sign-in →
// per-user limit → body limit → WAF → proxy; the access log line and
// metrics are written last.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.opt.Now()
	st := &reqState{id: newRequestID(), ip: clientIP(r)}
	st.idv[0] = st.id
	st.sw.ResponseWriter = w
	st.sw.id = st.idv[:]
	st.sw.http10 = !r.ProtoAtLeast(1, 1)
	st.sw.writeIdle, st.sw.h2 = g.opt.WriteIdleTimeout, r.ProtoMajor >= 2
	if r.Body != nil && r.Body != http.NoBody {
		r = g.watchBody(r, w, st)
	}
	sw := &st.sw
	w.Header()["X-Request-Id"] = st.idv[:]
	g.m.inflight.Inc()
	r0 := r // the access log's: its context carries no request state
	defer func() {
		g.m.inflight.Dec()
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				g.finish(r0, st, start)
				panic(p)
			}
			g.log.ErrorContext(r.Context(), "panic in gateway", logging.KeyErr, fmt.Sprint(p), logging.KeyStack, string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, st.id, "internal error; quote the request id to the site's administrators")
			}
		}
		st.endExchange()
		g.finish(r0, st, start)
	}()
	ctx := r.Context()
	if r.ProtoMajor == 1 {
		if fs, ok := ctx.Value(framingKey{}).(*framingState); ok {
			st.fs = fs
			if facts, ok := fs.pop(); ok {
				if facts.contentLength && facts.transferEncoding {
					w.Header().Set("Connection", "close")
					writeError(sw, http.StatusBadRequest, st.id, "request has both Content-Length and Transfer-Encoding (possible request smuggling)")
					return
				}
				if r.Host == "" && facts.hostHeaders > 0 {
					// Sent empty: let the WAF tell it from a missing one.
					r.Header["Host"] = []string{""}
				}
			} else if len(r.TransferEncoding) > 0 {
				// The parser lost track of the connection: a request
				// with Transfer-Encoding may have carried Content-Length
				// too.
				w.Header().Set("Connection", "close")
				writeError(sw, http.StatusBadRequest, st.id, "request has Transfer-Encoding on a connection whose framing the gateway could not follow")
				return
			}
		}
		if len(r.Header["Upgrade"]) > 0 {
			// Unless it is upgraded, the connection is closed after the
			// response: the framing parser does not follow connections
			// past a request that may switch protocols.
			sw.closeConn = true
		}
	}
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		writeError(sw, http.StatusMethodNotAllowed, st.id, "the gateway is a reverse proxy: it does not open tunnels (CONNECT)")
		return
	}
	if strings.IndexByte(r.RequestURI, '#') >= 0 {
		writeError(sw, http.StatusBadRequest, st.id, "request target must not contain a fragment (#)")
		return
	}
	// HTTP/1 parsing refuses these already; an HTTP/2 request carries
	// its method and path as it likes, and a backend reading the HTTP/1
	// request line the gateway writes must see one request.
	if !validMethod(r.Method) {
		writeError(sw, http.StatusBadRequest, st.id, "invalid request method")
		return
	}
	if !validTarget(r.RequestURI) {
		writeError(sw, http.StatusBadRequest, st.id, "request target must not contain spaces or control characters")
		return
	}
	if via := r.Header["Via"]; len(via) > 0 && g.looped(via) {
		g.m.loops.Inc()
		writeError(sw, http.StatusLoopDetected, st.id, "request loop: this request has passed through this gateway before; a route's backend leads back to a gateway")
		return
	}
	host, ok := NormalizeHost(r.Host, false)
	if !ok || r.Host == "" && r.ProtoAtLeast(1, 1) {
		g.m.unmatched.Inc()
		writeError(sw, http.StatusBadRequest, st.id, "missing or invalid Host header")
		return
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	// A path with dot segments names another path once a backend
	// resolves them: refused, so a route (and its sign-in) is never
	// chosen for a path the backend will not serve. Routes with a WAF
	// refuse it after the WAF has seen it (its path-traversal rules log
	// the attempt).
	dots := dotSegment(path)
	tbl := g.tbl.Load()
	var l *live
	if strings.HasPrefix(path, AuthPrefix) {
		// The realm's pages serve every path of a host that asks for
		// sign-in on any of its routes.
		l = tbl.authRoute(host)
	}
	if l == nil {
		l = tbl.match(host, path)
	}
	if l == nil {
		g.m.unmatched.Inc()
		writeError(sw, http.StatusNotFound, st.id, "no route for this host and path")
		return
	}
	st.l = l
	if dots && l.waf == nil {
		writeError(sw, http.StatusBadRequest, st.id, dotSegmentMessage)
		return
	}
	dropUserHeaders(r.Header)
	if l.waf == nil && l.route.Spec.Auth != AuthRequired && directable(l, r) {
		// The common case: no request state in the context, no clone of
		// the request.
		if ok, wait := l.ipLimit.allowIP(st.ip, start); !ok {
			g.m.limited.WithLabelValues(l.route.Name, "ip").Inc()
			tooMany(sw, st.id, wait)
			return
		}
		dropRealmCookies(r.Header)
		g.serveDirect(sw, r, st)
		return
	}
	ctx = reqinfo.With(ctx, reqinfo.Info{RequestID: st.id, RemoteIP: st.ip, UserAgent: truncate(r.UserAgent(), 256)})
	ctx = context.WithValue(ctx, stateKey{}, st)
	r = r.WithContext(ctx)
	now := g.opt.Now()
	if ok, wait := l.ipLimit.allowIP(st.ip, now); !ok {
		g.m.limited.WithLabelValues(l.route.Name, "ip").Inc()
		tooMany(sw, st.id, wait)
		return
	}
	if l.route.Spec.Auth == AuthRequired {
		if g.opt.Auth == nil {
			writeError(sw, http.StatusServiceUnavailable, st.id, "this route requires sign-in, but no end-user realm is configured")
			return
		}
		u, handled := g.opt.Auth.Authenticate(sw, r, l.info)
		if handled {
			return
		}
		if u.Subject == "" {
			writeError(sw, http.StatusUnauthorized, st.id, "sign in first")
			return
		}
		st.user = u
		if ok, wait := l.userLimit.allow(u.Subject, now); !ok {
			g.m.limited.WithLabelValues(l.route.Name, "user").Inc()
			tooMany(sw, st.id, wait)
			return
		}
	}
	dropRealmCookies(r.Header)
	if r.ContentLength > l.route.Spec.MaxBody {
		writeError(sw, http.StatusRequestEntityTooLarge, st.id, "request body exceeds "+strconv.FormatInt(l.route.Spec.MaxBody, 10)+" bytes")
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(sw, r.Body, l.route.Spec.MaxBody)
	}
	if l.waf != nil {
		next := l.proxy
		if dots {
			next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeError(w, http.StatusBadRequest, st.id, dotSegmentMessage)
			})
		}
		st.waf = l.waf.Serve(sw, r, st.id, next, g.deny)
		if st.waf.Flagged() {
			g.securityEvent(r, host, sw, st)
		}
		if b := sw.body; b != nil && b.timedOut() {
			g.slowBodyEvent(r, host, sw, st)
		}
		return
	}
	l.proxy.ServeHTTP(sw, r)
}

const dotSegmentMessage = "request path must not contain . or .. segments, plain or percent-encoded"

// dotSegment reports whether the escaped request path p has a "." or ".."
// segment: plainly, percent-encoded (%2e), or behind an encoded slash or
// backslash (..%2f, ..%5c) that a backend may decode before resolving.
func dotSegment(p string) bool {
	if strings.IndexByte(p, '.') < 0 && strings.IndexByte(p, '%') < 0 {
		return false
	}
	n, dotsOnly := 0, true // the current segment's length, and whether it is all dots
	end := func() bool { return dotsOnly && (n == 1 || n == 2) }
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2]) {
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
		}
		switch c {
		case '/', '\\':
			if end() {
				return true
			}
			n, dotsOnly = 0, true
		case '.':
			n++
		default:
			n++
			dotsOnly = false
		}
	}
	return end()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// validMethod reports whether m is an HTTP token (RFC 9110 5.6.2).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validTarget reports whether a request target is free of spaces and
// control characters.
func validTarget(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// protectedHeaders are the request headers the gateway sets for the
// backend: what a client sends under these names, or the same names with
// underscores (CGI, WSGI and PHP read X_Forwarded_For as
// HTTP_X_FORWARDED_FOR too), never reaches a backend.
var protectedHeaders = []string{UserHeader, "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}

// dropUserHeaders removes the client's spellings of protectedHeaders
// that the forwarding paths would not (those with underscores, and any
// not in canonical form).
func dropUserHeaders(h http.Header) {
	for k := range h {
		for _, p := range protectedHeaders {
			if len(k) == len(p) && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), p) {
				if k != p || p == UserHeader {
					delete(h, k)
				}
				break
			}
		}
	}
}

// dropRealmCookies removes the end-user realm's cookies (its session,
// CSRF and sign-in binding cookies, all named rampart_realm…, with the
// __Host- prefix over TLS) from a request going to a backend: they are
// the gateway's, and a backend (or whoever reads its logs) holding the
// session cookie could act as the user.
func dropRealmCookies(h http.Header) {
	vs := h["Cookie"]
	if len(vs) == 0 {
		return
	}
	kept := vs[:0:0]
	changed := false
	for _, v := range vs {
		if !strings.Contains(v, realmCookiePrefix) {
			kept = append(kept, v)
			continue
		}
		changed = true
		var b strings.Builder
		for part := range strings.SplitSeq(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if n := strings.TrimPrefix(name, "__Host-"); n == realmCookiePrefix || strings.HasPrefix(n, realmCookiePrefix+"_") {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(strings.TrimSpace(part))
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	switch {
	case !changed:
	case len(kept) == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = kept
	}
}

// realmCookiePrefix begins the name of every cookie of the end-user realm
// (package identity/realm).
const realmCookiePrefix = "rampart_realm"

func tooMany(w http.ResponseWriter, id string, wait time.Duration) {
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusTooManyRequests, id, "too many requests; retry in "+strconv.Itoa(secs)+"s")
}

// deny answers a request the WAF blocked.
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, status int) {
	st := stateOf(r.Context())
	if b := st.sw.body; b != nil && b.timedOut() {
		// The WAF could not read the body: the client stopped sending it.
		writeError(w, http.StatusRequestTimeout, st.id, "the request body was not received in time")
		return
	}
	writeError(w, status, st.id, "request blocked by the web application firewall; quote request id "+st.id+" to the site's administrators")
}

func (g *Gateway) securityEvent(r *http.Request, host string, sw *statusWriter, st *reqState) {
	outcome := "detected"
	if st.waf.Blocked {
		outcome = "blocked"
	}
	g.m.blocked.WithLabelValues(st.l.route.Name, outcome, st.waf.Phase).Inc()
	info := reqinfo.From(r.Context())
	g.events.emit(Event{
		At: g.opt.Now().UTC(), RequestID: st.id, RouteID: st.l.route.ID, Route: st.l.route.Name,
		OrgID: st.l.route.OrgID, ProjectID: st.l.route.ProjectID, Outcome: outcome, Phase: st.waf.Phase,
		RuleID: st.waf.RuleID, Message: truncate(st.waf.Message, 512), Status: st.waf.Status,
		ClientIP: info.RemoteIP, Method: truncate(r.Method, 32), Host: host, Path: truncate(r.URL.EscapedPath(), 1024),
		UserAgent: info.UserAgent, Rules: st.waf.Rules,
	})
}

// slowBodyEvent records a request on a WAF route whose client stopped
// sending its body (BodyIdleTimeout, deadlines.go) as a security event:
// held-open uploads are how slowloris-style attacks tie up a server. The
// gateway cut the request off (408) whatever the WAF's mode, so it is
// "blocked"; no rule matched it (rule 0). Only the request line's method
// and path are kept, never the body. Each event costs the client a
// connection held for the idle timeout, so these come slower than the
// WAF's own, and they share its bounded queue and retention.
func (g *Gateway) slowBodyEvent(r *http.Request, host string, sw *statusWriter, st *reqState) {
	status := sw.status
	if status == 0 {
		status = http.StatusRequestTimeout
	}
	info := reqinfo.From(r.Context())
	g.events.emit(Event{
		At: g.opt.Now().UTC(), RequestID: st.id, RouteID: st.l.route.ID, Route: st.l.route.Name,
		OrgID: st.l.route.OrgID, ProjectID: st.l.route.ProjectID, Outcome: "blocked", Phase: "request",
		Message: SlowBodyMessage + " (nothing received for " + g.opt.BodyIdleTimeout.String() + ")", Status: status,
		ClientIP: info.RemoteIP, Method: truncate(r.Method, 32), Host: host, Path: truncate(r.URL.EscapedPath(), 1024),
		UserAgent: info.UserAgent,
	})
}

// SlowBodyMessage begins the message of a security event for a request
// body the client stopped sending.
const SlowBodyMessage = "slow request body: the client stopped sending it"

// finish records metrics and writes the access log line.
func (g *Gateway) finish(r *http.Request, st *reqState, start time.Time) {
	sw := &st.sw
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	d := g.opt.Now().Sub(start)
	route, version := "none", "none"
	if st.l != nil {
		route = st.l.route.Name
		vm := st.l.none
		if st.backend != nil {
			version = st.backend.version
			vm = st.l.versions[st.backend.version]
		}
		vm.observe(status, d.Seconds())
	}
	if !g.opt.AccessLog {
		return
	}
	if g.access != nil {
		rec := accessRecord{at: start.Add(d), method: truncate(r.Method, 32), host: truncate(r.Host, 256), path: truncate(r.URL.EscapedPath(), 512),
			route: route, status: status, duration: d, bytes: sw.bytes, ip: st.ip, version: version, user: truncate(st.user.Name, 256),
			upstream: st.upErr, wafRule: st.waf.RuleID, wafBlocked: st.waf.Blocked, id: st.id}
		g.access.log(&rec)
		return
	}
	attrs := make([]slog.Attr, 0, 15)
	attrs = append(attrs, slog.String(logging.KeyMethod, r.Method), slog.String("host", truncate(r.Host, 256)),
		slog.String(logging.KeyPath, truncate(r.URL.EscapedPath(), 512)), slog.String(logging.KeyRoute, route),
		slog.Int(logging.KeyStatus, status), slog.Float64(logging.KeyDuration, float64(d.Microseconds())/1000),
		slog.Int64(logging.KeyBytes, sw.bytes), slog.String(logging.KeyRemoteIP, st.ip), slog.String("backend_version", version))
	if st.user.Name != "" {
		attrs = append(attrs, slog.String(logging.KeyUser, st.user.Name))
	}
	if st.waf.RuleID != 0 {
		attrs = append(attrs, slog.Int("waf_rule", st.waf.RuleID), slog.Bool("waf_blocked", st.waf.Blocked))
	}
	if st.upErr != "" {
		attrs = append(attrs, slog.String("upstream_error", st.upErr))
	}
	attrs = append(attrs, slog.String(logging.KeyRequestID, st.id))
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "gateway request", attrs...)
}

// clientIP is the TCP peer's address: the gateway is the edge and trusts
// no forwarding header. An IPv4-mapped IPv6 address (an IPv4 client of a
// dual-stack socket) is written as the IPv4 address it is. The per-IP
// limit keys the address by its network (limiter.allowIP).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	if strings.IndexByte(host, ':') >= 0 && strings.IndexByte(host, '.') >= 0 {
		if a, err := netip.ParseAddr(host); err == nil && a.Is4In6() && a.Zone() == "" {
			return host[strings.LastIndexByte(host, ':')+1:]
		}
	}
	return host
}
