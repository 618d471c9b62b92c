package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway"
)

// fixedUser signs every request in as one user.
type fixedUser struct{ subject string }

func (f fixedUser) Authenticate(http.ResponseWriter, *http.Request, gateway.RouteInfo) (gateway.User, bool) {
	return gateway.User{Subject: f.subject, Name: f.subject}, false
}

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

// A table load (another route changed, the config file reloaded, a change
// on another replica) leaves the buckets of a route whose limits did not
// change alone: with burst 1 at 0.01/s one request passes in all, however
// often the table is reloaded in between. Changing the route's own limit
// starts afresh.
func TestGateway_RateLimitsSurviveReloads(t *testing.T) {
	be := okBackend(t)
	login := route(1, "login", "login.test", "/", be)
	login.Spec.RateLimit = gateway.RateLimit{PerIP: 0.01, Burst: 1}
	api := route(2, "api", "api.test", "/", be)
	api.Spec.Auth = gateway.AuthRequired
	api.Spec.RateLimit = gateway.RateLimit{PerUser: 0.01, Burst: 1}
	file := gateway.Route{Name: "file/site", Source: "file", Spec: gateway.Spec{Host: "site.test", Path: "/",
		RateLimit: gateway.RateLimit{PerIP: 0.01, Burst: 1}, Backends: []gateway.Backend{{URL: be}}}}
	gw := startGateway(t, nil, []gateway.Route{login, api, file}, func(o *gateway.Options) { o.Auth = fixedUser{"alice"} })
	passed := map[string]int{}
	for i := range 10 {
		if i > 0 {
			// another tenant's route changes each time
			other := route(3, "other", "other.test", "/", fmt.Sprintf("http://127.0.0.1:%d", 1000+i))
			if err := gw.Load(context.Background(), []gateway.Route{login, api, file, other}); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			for _, host := range []string{"login.test", "api.test", "site.test"} {
				// a new source port each time: the limit is the address's
				if serveFrom(gw.Gateway, host, fmt.Sprintf("192.0.2.7:%d", 40000+i)) == http.StatusOK {
					passed[host]++
				}
			}
		}
	}
	for _, host := range []string{"login.test", "api.test", "site.test"} {
		if passed[host] != 1 {
			t.Errorf("%s: %d of 30 requests passed across 10 reloads, want 1 (burst 1 at 0.01/s)", host, passed[host])
		}
	}
	login.Spec.RateLimit.PerIP = 0.02
	if err := gw.Load(context.Background(), []gateway.Route{login, api, file}); err != nil {
		t.Fatal(err)
	}
	if code := serveFrom(gw.Gateway, "login.test", "192.0.2.7:40000"); code != http.StatusOK {
		t.Errorf("after the route's own limit changed: %d, want a fresh bucket", code)
	}
	if code := serveFrom(gw.Gateway, "api.test", "192.0.2.7:40000"); code != http.StatusTooManyRequests {
		t.Errorf("per-user limit of an unchanged route after a reload: %d, want 429", code)
	}
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
