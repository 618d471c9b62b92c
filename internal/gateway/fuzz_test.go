package gateway

import (
	"strings"
	"testing"
)

// FuzzParseConfig: any config file is parsed or refused with an error,
// never a panic, and what parses is valid.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("routes:\n  - name: web\n    host: app.example.com\n    backends: [{url: http://127.0.0.1:9000}]\n    waf: {mode: block, paranoia: 2, exclude_rules: ['920350', '942100-942199']}\n"))
	f.Add([]byte("routes:\n  - name: a\n    host: '*.x.test'\n    path: /api\n    backends: [{url: 'https://b:1/base', weight: 5, version: v2}]\n    health_check: {path: /healthz, interval: 1s}\n"))
	f.Add([]byte(""))
	f.Add([]byte("routes: [{name: x, backends: []}]"))
	f.Add([]byte("certificates: [{cert: a}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fc, err := ParseConfig(b)
		if err != nil {
			return
		}
		for _, r := range fc.Routes {
			if ValidateName(r.Name) != nil {
				t.Fatalf("accepted route name %q", r.Name)
			}
			if _, err := r.Spec.Normalize(); err != nil {
				t.Fatalf("accepted spec that does not normalise: %v", err)
			}
		}
	})
}

// FuzzRouteMatch: host normalisation and matching never panic, and a
// matched route's path prefix covers the request path.
func FuzzRouteMatch(f *testing.F) {
	f.Add("app.example.com:443", "/api/x", "app.example.com", "/api")
	f.Add("[::1]:80", "/", "", "/")
	f.Add("A.B.example.COM.", "/apix", "*.b.example.com", "/api")
	f.Add("x", "", "x", "/a//b")
	f.Fuzz(func(t *testing.T, reqHost, reqPath, routeHost, routePath string) {
		spec, err := Spec{Host: routeHost, Path: routePath, Backends: []Backend{{URL: "http://127.0.0.1:1"}}}.Normalize()
		if err != nil {
			return
		}
		host, ok := NormalizeHost(reqHost, false)
		if !ok {
			return
		}
		if strings.ContainsAny(host, " \r\n") || strings.HasPrefix(host, "*") {
			t.Fatalf("normalised request host %q", host)
		}
		tbl := newTable([]*live{{route: Route{Name: "r", Spec: spec}}})
		if l := tbl.match(host, reqPath); l != nil && spec.Path != "/" && !strings.HasPrefix(reqPath, spec.Path) {
			t.Fatalf("route %s matched path %q", spec.Path, reqPath)
		}
	})
}

// FuzzFramingParser: the parser follows any byte stream without panics,
// and fed in pieces it sees what it sees fed at once.
func FuzzFramingParser(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost:\r\n\r\n"), 7)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\nT: x\r\n\r\n"), 3)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 1)
	f.Add([]byte("GET / HTTP/1.1\r\nX-A: b\r\n Upgrade: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n0\r\n\r\n"), 40)
	f.Add([]byte("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n"), 20)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var whole, parts framingParser
		a := whole.feed(b, nil)
		if split < 0 {
			split = -split
		}
		if len(b) > 0 {
			split %= len(b)
		} else {
			split = 0
		}
		c := parts.feed(b[:split], nil)
		c = parts.feed(b[split:], c)
		if len(a) != len(c) {
			t.Fatalf("whole %d requests, in two pieces %d", len(a), len(c))
		}
		for i := range a {
			if a[i] != c[i] {
				t.Fatalf("request %d: %+v vs %+v", i, a[i], c[i])
			}
		}
	})
}

func TestSmoothSchedule(t *testing.T) {
	tests := []struct {
		weights []int
		want    string
	}{
		{[]int{1, 1}, "01"},
		{[]int{5, 1, 1}, "0010200"},
		{[]int{0, 3}, "1"},
		{[]int{90, 10}, "0000010000"},
	}
	for _, tt := range tests {
		var bs []*backend
		for _, w := range tt.weights {
			bs = append(bs, &backend{weight: w})
		}
		var got strings.Builder
		for _, i := range smoothSchedule(bs) {
			got.WriteByte(byte('0' + i))
		}
		if got.String() != tt.want {
			t.Errorf("weights %v: schedule %s, want %s", tt.weights, got.String(), tt.want)
		}
	}
}
