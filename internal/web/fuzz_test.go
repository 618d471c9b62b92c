package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext: whatever a login link carries in ?next=, the redirect
// after sign-in stays on this site. SafeNext returns the input unchanged or
// "/", and what it returns is a path on the same host however a browser
// reads it: no scheme, no host, no leading "//" even after the browser
// turns backslashes into slashes and drops tabs and newlines.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/orgs/acme", "/a?b=c#d", "//evil.example", "/\\evil.example", "\\\\evil.example",
		"https://evil.example/", "javascript:alert(1)", "/\t/evil.example", "/\r\n/evil.example", " /x", "/%2F%2Fevil",
		"/..//evil.example", "/./\\evil", "", "/" + strings.Repeat("a", 3000), "/\x00", "/ok\u2028"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://rampart.example/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := SafeNext(next)
		if got != "/" && got != next {
			t.Fatalf("SafeNext(%q) = %q: neither the input nor /", next, got)
		}
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("SafeNext(%q) = %q: not a path", next, got)
		}
		// Browsers drop tab and newline anywhere and read \ as / in
		// http(s) URLs.
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(got)
		if strings.HasPrefix(browser, "//") {
			t.Fatalf("SafeNext(%q) = %q: a browser reads it as another host", next, got)
		}
		for _, c := range got {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("SafeNext(%q) = %q: control character %q", next, got, c)
			}
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("SafeNext(%q) = %q does not parse: %v", next, got, err)
		}
		if r := base.ResolveReference(u); r.Scheme != "https" || r.Host != "rampart.example" {
			t.Fatalf("SafeNext(%q) = %q leads to %s", next, got, r)
		}
	})
}
