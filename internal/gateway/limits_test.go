package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway"
)

// serveFrom sends a GET for host through g's handler as the client at
// remote ("ip:port") and returns the status.
func serveFrom(g *gateway.Gateway, host, remote string) int {
	req := httptest.NewRequest("GET", "http://"+host+"/", nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec.Code
}

func okBackend(t *testing.T) string {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(be.Close)
	return be.URL
}

// The per-IP limit counts an IPv6 client by its /64, the least one site
// gets (its 2^64 addresses are one client's); IPv4-mapped IPv6 addresses
// count as the IPv4 address.
func TestGateway_PerIPLimitKeysIPv6ByNetwork(t *testing.T) {
	rt := route(1, "login", "login.test", "/", okBackend(t))
	rt.Spec.RateLimit = gateway.RateLimit{PerIP: 0.01, Burst: 1}
	gw := startGateway(t, nil, []gateway.Route{rt})
	rotated := 0
	for i := range 20 {
		if serveFrom(gw.Gateway, "login.test", fmt.Sprintf("[2001:db8:1:2::%x]:40000", i+100)) == http.StatusOK {
			rotated++
		}
	}
	if rotated != 1 {
		t.Errorf("20 addresses of one /64: %d allowed, want 1", rotated)
	}
	if code := serveFrom(gw.Gateway, "login.test", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:1"); code != http.StatusTooManyRequests {
		t.Errorf("last address of the same /64: %d, want 429", code)
	}
	if code := serveFrom(gw.Gateway, "login.test", "[2001:db8:1:3::1]:40000"); code != http.StatusOK {
		t.Errorf("a neighbouring /64: %d, want its own bucket", code)
	}
	if code := serveFrom(gw.Gateway, "login.test", "198.51.100.9:40000"); code != http.StatusOK {
		t.Errorf("first request of an IPv4 client: %d", code)
	}
	if code := serveFrom(gw.Gateway, "login.test", "[::ffff:198.51.100.9]:40000"); code != http.StatusTooManyRequests {
		t.Errorf("the same IPv4 client as an IPv4-mapped IPv6 address: %d, want 429", code)
	}
	if code := serveFrom(gw.Gateway, "login.test", "198.51.100.10:40000"); code != http.StatusOK {
		t.Errorf("the next IPv4 address: %d, want its own bucket", code)
	}
}
