package gateway_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
)

// testGateway is a running gateway on 127.0.0.1:0 (plain HTTP).
type testGateway struct {
	*gateway.Gateway
	URL string
	Reg *prometheus.Registry
}

type gwOption func(*gateway.Options)

// startGateway runs a gateway with routes until the test ends.
func startGateway(t testing.TB, eng *waf.Engine, routes []gateway.Route, opts ...gwOption) *testGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startGatewayWith(t, ln, eng, routes, opts...)
}

// startGatewayOn is startGateway on the listener ln, without a WAF.
func startGatewayOn(t testing.TB, ln net.Listener, routes []gateway.Route, opts ...gwOption) *testGateway {
	t.Helper()
	return startGatewayWith(t, ln, nil, routes, opts...)
}

func startGatewayWith(t testing.TB, ln net.Listener, eng *waf.Engine, routes []gateway.Route, opts ...gwOption) *testGateway {
	t.Helper()
	if eng == nil {
		eng = waf.NewEngine(waf.Options{})
	}
	reg := prometheus.NewRegistry()
	o := gateway.Options{Listener: ln, Logger: logging.New(testWriter{t}, "warn"), Registry: reg, WAF: eng}
	for _, f := range opts {
		f(&o)
	}
	g, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Load(context.Background(), routes); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway stopped with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	return &testGateway{Gateway: g, URL: "http://" + ln.Addr().String(), Reg: reg}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// route returns a route named name for host and path to backends.
func route(id int64, name, host, path string, backends ...string) gateway.Route {
	r := gateway.Route{ID: id, Name: name, Source: "api", Spec: gateway.Spec{Host: host, Path: path}}
	for _, b := range backends {
		r.Spec.Backends = append(r.Spec.Backends, gateway.Backend{URL: b})
	}
	return r
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
