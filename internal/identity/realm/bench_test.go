package realm_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkGateway_SignIn measures what sign-in adds to a request through
// the gateway. Each iteration sends a GET to each of two routes, in
// turn, in front of the same trivial backend: one without auth, one that
// requires sign-in, with a signed-in browser's cookie (realm lookup,
// session lookup, a JWT minted and signed for the request). It reports both latencies and
// their ratio, so a busy machine slows both alike:
//
//	go test ./internal/identity/realm -run XXX -bench Gateway_SignIn -count 5
func BenchmarkGateway_SignIn(b *testing.B) {
	w := newWorld(b)
	br := w.browser(b)
	br.signUp("bench@example.com")
	// A backend that answers at once, behind both routes, so that only
	// the gateway's work differs.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	b.Cleanup(plain.Close)
	for name, spec := range map[string]map[string]any{
		"open":   {"host": w.host, "path": "/open", "backends": []map[string]any{{"url": plain.URL}}},
		"signed": {"host": w.host, "path": "/signed", "backends": []map[string]any{{"url": plain.URL}}, "auth": "required"},
	} {
		w.admin.Must(http.StatusOK, "PUT", "/api/v1/orgs/shop/projects/web/gateway/routes/"+name, spec)
	}
	client := &http.Client{}
	request := func(path string) *http.Request {
		req, _ := http.NewRequest("GET", w.gw+path, nil)
		for _, c := range br.http.Jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		return req
	}
	open, signed := request("/open/x"), request("/signed/x")
	send := func(req *http.Request, want int) time.Duration {
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if want != 0 && res.StatusCode != want {
			b.Fatalf("%s = %d, want %d", req.URL.Path, res.StatusCode, want)
		}
		return time.Since(start)
	}
	var dOpen, dSigned time.Duration
	n := 0
	for b.Loop() {
		dOpen += send(open, http.StatusOK)
		dSigned += send(signed, http.StatusOK)
		n++
	}
	b.ReportMetric(float64(dOpen.Microseconds())/float64(n), "open-µs/req")
	b.ReportMetric(float64(dSigned.Microseconds())/float64(n), "signed-in-µs/req")
	b.ReportMetric(float64(dSigned)/float64(dOpen), "ratio")
}
