package gateway

import (
	"reflect"
	"testing"
)

// TestFramingParser_FollowsNetHTTP: the parser frames requests as
// net/http does where they used to differ: obs-folded header lines
// continue the previous header, and Transfer-Encoding does not frame an
// HTTP/1.0 request (the fact that it was sent is kept).
func TestFramingParser_FollowsNetHTTP(t *testing.T) {
	const smuggle = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	both := requestFacts{contentLength: true, transferEncoding: true, hostHeaders: 1}
	for _, tt := range []struct {
		name, in string
		want     []requestFacts
	}{
		{"folded line is no Upgrade header", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Upgrade: x\r\n\r\n" + smuggle,
			[]requestFacts{{hostHeaders: 1}, both}},
		{"folded line is no Host header", "GET / HTTP/1.1\r\nX-A: b\r\n\tHost: x\r\n\r\n" + smuggle,
			[]requestFacts{{}, both}},
		{"folded Transfer-Encoding value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n" + smuggle,
			[]requestFacts{{transferEncoding: true, hostHeaders: 1}, both}},
		{"folded Content-Length value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 2\r\n\r\nok" + smuggle,
			[]requestFacts{{contentLength: true, hostHeaders: 1}, both}},
		{"HTTP/1.0 Transfer-Encoding", "GET / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggle,
			[]requestFacts{{transferEncoding: true, hostHeaders: 1}, both}},
		{"HTTP/1.0 body by Content-Length", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggle,
			[]requestFacts{{contentLength: true, transferEncoding: true}, both}},
		{"folded first header line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n" + smuggle, nil},
	} {
		var p framingParser
		got := p.feed([]byte(tt.in), nil)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
