package gateway

import (
	"bufio"
	"bytes"
	"net/url"
	"testing"
)

// writeTarget writes the request target url.URL.RequestURI returns.
func TestWriteTarget_IsRequestURI(t *testing.T) {
	for _, u := range []url.URL{
		{},
		{Path: "/"},
		{Path: "/search", RawQuery: "q=hello&page=2"},
		{Path: "/a b/ü", RawQuery: "x=%20"},
		{Path: "/a/b%2Fc", RawPath: "/a/b%2Fc"},
		{Path: "/a/b/c", RawPath: "/a/b%2Fc"}, // RawPath not an encoding of Path: ignored
		{Path: "/x", ForceQuery: true},
		{Path: "", RawQuery: "only=query"},
		{Path: "*"},
		{Path: "//double/slash", RawQuery: "a"},
		{Path: "/semi;colon", RawPath: "/semi;colon"},
	} {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		writeTarget(bw, &u)
		_ = bw.Flush()
		if got, want := buf.String(), u.RequestURI(); got != want {
			t.Errorf("writeTarget(%#v) = %q, RequestURI %q", u, got, want)
		}
	}
}
