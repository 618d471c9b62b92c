package gateway

import (
	"bufio"
	"bytes"
	"net/url"
	"slices"
	"strconv"
	"strings"
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

// dotSegmentRef is dotSegment the slow way: decode what decodes, split on
// slashes and backslashes, look for "." and "..".
func dotSegmentRef(p string) bool {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if v, err := strconv.ParseUint(p[i+1:i+3], 16, 8); err == nil && !strings.ContainsAny(p[i+1:i+3], "+-") {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return slices.ContainsFunc(strings.Split(strings.ReplaceAll(b.String(), "\\", "/"), "/"), func(s string) bool { return s == "." || s == ".." })
}

func TestDotSegment(t *testing.T) {
	for p, want := range map[string]bool{
		"/": false, "/a/b": false, "/a.b/c": false, "/...": false, "/a/.../b": false, "/.well-known/x": false, "/%2e%2e%2e": false,
		"/a%2fb": false, "/%zz/..x": false,
		"/..": true, "/.": true, "/a/../b": true, "/a/./b": true, "/a/%2e%2E/b": true, "/a/.%2e": true, "/a/%2e": true,
		"/a/..%2fb": true, "/a/..%2Fb": true, "/a/..%5cb": true, "/a\\..\\b": true, "..": true, "/a/..?": false,
	} {
		if got := dotSegment(p); got != want {
			t.Errorf("dotSegment(%q) = %v, want %v", p, got, want)
		}
		if got := dotSegmentRef(p); got != want {
			t.Errorf("reference(%q) = %v, want %v", p, got, want)
		}
	}
}

func FuzzDotSegment(f *testing.F) {
	for _, s := range []string{"/a/../b", "/%2e%2E/", "/a..b", "/..%5c", "%", "%2", "/%2e", "/a/.%2e/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := dotSegment(p), dotSegmentRef(p); got != want {
			t.Errorf("dotSegment(%q) = %v, the reference says %v", p, got, want)
		}
	})
}
