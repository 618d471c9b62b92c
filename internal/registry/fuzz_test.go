package registry

import (
	"strings"
	"testing"
	"time"
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/acme/app/blobs/uploads/", "/v2/acme/app/blobs/uploads/abc", "/v2/acme/app/manifests/v1",
		"/v2/acme/a/b/tags/list", "/v2/acme/app/referrers/sha256:" + strings.Repeat("a", 64), "/v2/blobs/blobs/uploads", "/v2//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parsePath(p)
		if ok && rt.kind != "base" && !strings.HasPrefix(p, "/v2/"+rt.name) {
			t.Fatalf("%q parsed to name %q outside the path", p, rt.name)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:`+strings.Repeat("0", 64)+`","size":2},"layers":[]}`), "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`), MediaOCIIndex)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"x"}`), "y")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		m, mt, err := parseManifest(body, ct)
		if err != nil {
			return
		}
		if mt == "" || m == nil {
			t.Fatal("accepted without a media type")
		}
		if !isIndex(mt) && m.Config == nil {
			t.Fatal("image manifest accepted without config")
		}
	})
}

func FuzzParseToken(f *testing.F) {
	s := &Service{tokenKey: []byte("0123456789abcdef0123456789abcdef"), service: "reg", now: time.Now}
	tok, _ := s.sign(&claims{Issuer: "rampart", Audience: "reg", ExpiresAt: time.Now().Add(time.Hour).Unix(), Access: []Access{}})
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		c, ok := parseToken(s.tokenKey, "reg", time.Now(), raw)
		if ok && raw != tok && c.Audience != "reg" {
			t.Fatalf("accepted a token for another service: %q", raw)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=9-1", "items=1-2", "bytes=1-2,3-4"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		start, end, _, err := parseRange(h, size)
		if err == nil && (start < 0 || end > size || start > end) {
			t.Fatalf("range %q on %d = [%d,%d)", h, size, start, end)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:acme/app:pull,push", "repository:acme/app:*", "registry:catalog:*", "repository::pull"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sc string) {
		a, ok := parseScope(sc)
		if ok && !validName(a.Name) {
			t.Fatalf("scope %q accepted invalid name %q", sc, a.Name)
		}
	})
}

func TestParseToken_RejectsTampering(t *testing.T) {
	s := &Service{tokenKey: []byte("0123456789abcdef0123456789abcdef"), service: "reg", now: time.Now}
	good, _ := s.sign(&claims{Issuer: "rampart", Audience: "reg", ExpiresAt: time.Now().Add(time.Hour).Unix(),
		Access: []Access{{Type: "repository", Name: "acme/app", Actions: []string{"pull"}}}})
	expired, _ := s.sign(&claims{Issuer: "rampart", Audience: "reg", ExpiresAt: time.Now().Add(-time.Second).Unix()})
	other, _ := s.sign(&claims{Issuer: "rampart", Audience: "elsewhere", ExpiresAt: time.Now().Add(time.Hour).Unix()})
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"rampart","aud":"reg","exp":9999999999,"access":[{"type":"repository","name":"acme/app","actions":["push"]}]}`)) + "." + parts[2]
	tests := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"valid", good, true},
		{"expired", expired, false},
		{"another audience", other, false},
		{"forged payload", forged, false},
		{"wrong key", func() string {
			o := &Service{tokenKey: []byte("another key, another key, 32 by"), service: "reg"}
			tk, _ := o.sign(&claims{Issuer: "rampart", Audience: "reg", ExpiresAt: time.Now().Add(time.Hour).Unix()})
			return tk
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := parseToken(s.tokenKey, "reg", time.Now(), tt.raw); ok != tt.ok {
				t.Fatalf("parseToken = %v, want %v", ok, tt.ok)
			}
		})
	}
}
