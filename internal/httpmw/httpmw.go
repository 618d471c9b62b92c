// Package httpmw holds the HTTP middleware every Rampart listener runs, in
// this order (outermost first): Recover → RequestID → Observe (log line and
// metrics) → SecurityHeaders → Authenticate → Route → the mux. The chain is
// assembled in one place, internal/app.
package httpmw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/problem"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// Recover turns a panic in a handler into a 500 and logs its stack.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic in handler", logging.KeyErr, fmt.Sprint(p),
					logging.KeyStack, string(debug.Stack()), logging.KeyPath, r.URL.Path)
				problem.Write(w, r, nil, apperr.E(apperr.Internal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// RequestID gives every request a fresh id (never one sent by the client),
// echoes it in the X-Request-Id response header and records the client's
// address and user agent.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		w.Header().Set("X-Request-Id", id)
		ua := r.UserAgent()
		if len(ua) > 256 {
			ua = ua[:256]
		}
		ctx := reqinfo.With(r.Context(), reqinfo.Info{RequestID: id, RemoteIP: ClientIP(r), UserAgent: ua})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// ClientIP is the address of the TCP peer. Rampart does not trust
// X-Forwarded-For: a gateway in front of it must be configured explicitly.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer
// (flushing, deadlines, hijacking).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Metrics holds the HTTP server's Prometheus collectors.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the HTTP collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rampart_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observation collects what inner handlers learn about a request (its
// route pattern, its user) for the log line and metrics written by Observe.
type observation struct {
	route string
	user  string
}

type obsKey struct{}

func observed(r *http.Request) *observation {
	o, _ := r.Context().Value(obsKey{}).(*observation)
	return o
}

// Route records the ServeMux pattern that served the request; it wraps the
// mux directly (the mux sets Pattern on the request it receives).
func Route(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if o := observed(r); o != nil {
			o.route = r.Pattern
		}
	})
}

// Observe logs each request (one JSON line with its request id) and
// records it in m.
func Observe(log *slog.Logger, m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		obs := &observation{}
		r = r.WithContext(context.WithValue(r.Context(), obsKey{}, obs))
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		route := obs.route
		if route == "" {
			route = "unmatched"
		}
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		default:
			method = "other"
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(sw.status)).Inc()
		m.duration.WithLabelValues(route, method).Observe(d.Seconds())
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		if strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		log.Log(r.Context(), level, "http request",
			logging.KeyMethod, r.Method, logging.KeyPath, r.URL.Path, logging.KeyRoute, route,
			logging.KeyStatus, sw.status, logging.KeyDuration, float64(d.Microseconds())/1000, logging.KeyBytes, sw.bytes,
			logging.KeyRemoteIP, reqinfo.From(r.Context()).RemoteIP, logging.KeyUser, obs.user)
	})
}

// CSP is the Content-Security-Policy of every response: no inline script or
// style, no framing, scripts and styles only from Rampart itself.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SecurityHeaders sets the headers every response carries; HSTS only under
// TLS.
func SecurityHeaders(tls bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// Authenticate resolves the request's credential into a principal; a bad
// credential is refused with 401.
func Authenticate(a *authn.Authenticator, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			problem.Write(w, r, log, err)
			return
		}
		if o := observed(r); o != nil {
			o.user = p.User.Username
		}
		next.ServeHTTP(w, r.WithContext(authn.With(r.Context(), p)))
	})
}
