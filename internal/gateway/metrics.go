package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors. Request counts and
// latencies carry the route and the backend version (canary analysis
// compares versions of one route); "none" stands for requests answered
// by the gateway itself (blocked, limited, no backend).
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	upstream  *prometheus.CounterVec
	blocked   *prometheus.CounterVec
	limited   *prometheus.CounterVec
	healthy   *prometheus.GaugeVec
	inflight  prometheus.Gauge
	events    *prometheus.CounterVec
	unmatched prometheus.Counter
	loops     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_gateway_requests_total",
			Help: "Requests through the gateway by route, backend version and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"route", "version", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rampart_gateway_request_duration_seconds",
			Help:    "Gateway request latency by route and backend version, until the response is complete.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "version"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_gateway_upstream_errors_total",
			Help: "Failed backend exchanges by route, backend version and kind (connect, timeout, reset, no_backend).",
		}, []string{"route", "version", "kind"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_gateway_waf_flagged_total",
			Help: "Requests the WAF blocked (outcome blocked) or would have blocked in detect mode (outcome detected), by route and phase.",
		}, []string{"route", "outcome", "phase"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_gateway_rate_limited_total",
			Help: "Requests refused with 429 by route and limit (ip, user).",
		}, []string{"route", "by"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rampart_gateway_backend_up",
			Help: "1 when a backend passes its health checks, 0 when it is out.",
		}, []string{"route", "backend", "version"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rampart_gateway_requests_in_flight",
			Help: "Requests the gateway is serving now.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_gateway_security_events_total",
			Help: "Security events emitted (outcome recorded) or dropped because the recorder was behind (outcome dropped).",
		}, []string{"outcome"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_gateway_unmatched_requests_total",
			Help: "Requests for a host and path no route claims (answered 404) or with an invalid host (400).",
		}),
		loops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rampart_gateway_loops_total",
			Help: "Requests refused with 508 because their Via header shows they passed through this gateway before (a route's backend leads back to a gateway).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.upstream, m.blocked, m.limited, m.healthy, m.inflight, m.events, m.unmatched, m.loops)
	return m
}

// versionMetrics are one (route, version)'s collectors, resolved once per
// table build so the request path does no label lookups.
type versionMetrics struct {
	class    [6]prometheus.Counter // index status/100; 0 for anything odd
	duration prometheus.Observer
}

func (m *metrics) forVersion(route, version string) *versionMetrics {
	vm := &versionMetrics{duration: m.duration.WithLabelValues(route, version)}
	for i, c := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		vm.class[i] = m.requests.WithLabelValues(route, version, c)
	}
	return vm
}

func (vm *versionMetrics) observe(status int, seconds float64) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	vm.class[c].Inc()
	vm.duration.Observe(seconds)
}

// forgetRoute deletes every series of route, which the routing table no
// longer has.
func (m *metrics) forgetRoute(route string) {
	l := prometheus.Labels{"route": route}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.upstream.DeletePartialMatch(l)
	m.blocked.DeletePartialMatch(l)
	m.limited.DeletePartialMatch(l)
	m.healthy.DeletePartialMatch(l)
}

// forgetVersion deletes the series of a backend version route no longer
// has.
func (m *metrics) forgetVersion(route, version string) {
	l := prometheus.Labels{"route": route, "version": version}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.upstream.DeletePartialMatch(l)
	m.healthy.DeletePartialMatch(l)
}
