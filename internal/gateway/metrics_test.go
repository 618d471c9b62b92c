package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// gatewaySeries returns the rampart_gateway_* series of route, each as
// "name{label=value,...}".
func gatewaySeries(t *testing.T, gw *testGateway, route string) []string {
	t.Helper()
	mfs, err := gw.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "rampart_gateway_") {
			continue
		}
		for _, m := range mf.Metric {
			var labels []string
			mine := false
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
				mine = mine || l.GetName() == "route" && l.GetValue() == route
			}
			if mine {
				out = append(out, mf.GetName()+"{"+strings.Join(labels, ",")+"}")
			}
		}
	}
	return out
}

// A load that drops a route or a backend version deletes its metric
// series (requests, latency, upstream errors, limits, health); the
// series of routes and versions still served stay. Changing a route's
// backend version over and over leaves the series of one version.
func TestGateway_MetricsOfDroppedRoutesAndVersionsAreDeleted(t *testing.T) {
	be := okBackend(t)
	keep := func(version string) gateway.Route {
		rt := route(1, "keep", "keep.test", "/", be)
		rt.Spec.Backends[0].Version = version
		rt.Spec.RateLimit = gateway.RateLimit{PerIP: 0.01, Burst: 1}
		return rt
	}
	gone := route(2, "gone", "gone.test", "/", "http://127.0.0.1:1") // nothing listens there
	gone.Spec.RateLimit = gateway.RateLimit{PerIP: 0.01, Burst: 1}
	gone.Spec.WAF = waf.Settings{Mode: waf.Block}
	gw := startGateway(t, nil, []gateway.Route{keep("v1"), gone})
	req := httptest.NewRequest("GET", "http://gone.test/?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", nil)
	req.RemoteAddr = "192.0.2.9:1000"
	gw.ServeHTTP(httptest.NewRecorder(), req) // blocked by the WAF
	// one request of each route through, one limited
	for range 2 {
		serveFrom(gw.Gateway, "keep.test", "192.0.2.1:1000")
		serveFrom(gw.Gateway, "gone.test", "192.0.2.1:1000")
	}
	has := func(series []string, parts ...string) bool {
		for _, s := range series {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(s, p)
			}
			if all {
				return true
			}
		}
		return false
	}
	before := gatewaySeries(t, gw, "gone")
	for _, want := range [][]string{{"rampart_gateway_requests_total"}, {"rampart_gateway_request_duration_seconds"},
		{"rampart_gateway_upstream_errors_total"}, {"rampart_gateway_rate_limited_total"}, {"rampart_gateway_backend_up"},
		{"rampart_gateway_waf_flagged_total", "outcome=blocked"}} {
		if !has(before, want...) {
			t.Fatalf("setup: no %v series for the route to drop: %v", want, before)
		}
	}

	if err := gw.Load(context.Background(), []gateway.Route{keep("v2")}); err != nil {
		t.Fatal(err)
	}
	if s := gatewaySeries(t, gw, "gone"); len(s) != 0 {
		t.Errorf("series of the removed route remain: %v", s)
	}
	kept := gatewaySeries(t, gw, "keep")
	if has(kept, "version=v1") {
		t.Errorf("series of the replaced version v1 remain: %v", kept)
	}
	for _, want := range [][]string{{"rampart_gateway_requests_total", "version=v2", "class=2xx"},
		{"rampart_gateway_requests_total", "version=none", "class=4xx"}, {"rampart_gateway_rate_limited_total", "by=ip"},
		{"rampart_gateway_backend_up", "version=v2"}} {
		if !has(kept, want...) {
			t.Errorf("series %v of the route still served is gone: %v", want, kept)
		}
	}
	if code := serveFrom(gw.Gateway, "keep.test", "192.0.2.2:1000"); code != http.StatusOK {
		t.Fatalf("after the reload: %d", code)
	}

	// 50 changes of the backend version, the other route coming and going.
	n := len(gatewaySeries(t, gw, "keep"))
	for i := range 50 {
		routes := []gateway.Route{keep(fmt.Sprint("v", i+3))}
		if i%2 == 0 {
			routes = append(routes, gone)
		}
		if err := gw.Load(context.Background(), routes); err != nil {
			t.Fatal(err)
		}
		serveFrom(gw.Gateway, "keep.test", "192.0.2.2:1000")
	}
	if s := gatewaySeries(t, gw, "keep"); len(s) > n {
		t.Errorf("50 version changes grew the route's series from %d to %d: %v", n, len(s), s)
	}
	if s := gatewaySeries(t, gw, "gone"); len(s) != 0 {
		t.Errorf("series of the removed route remain: %v", s)
	}
}
