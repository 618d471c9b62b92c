package gateway

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidLabel: the hand-written DNS label check accepts exactly what
// the regular expression it replaced accepted (a label, or a label with
// underscores where letters could be).
func FuzzValidLabel(f *testing.F) {
	re := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	for _, s := range []string{"a", "app", "-a", "a-", "a_b", "_dmarc", "x" + strings.Repeat("y", 62), strings.Repeat("y", 64), "", "A", "é", "a.b", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, l string) {
		want := re.MatchString(l) || strings.Contains(l, "_") && re.MatchString(strings.ReplaceAll(l, "_", "a"))
		if got := validLabel(l); got != want {
			t.Fatalf("validLabel(%q) = %v, the expression says %v", l, got, want)
		}
	})
}

// FuzzConnectionListed: any Connection header value is read without
// panics, and a token written into a list is found in it.
func FuzzConnectionListed(f *testing.F) {
	f.Add("keep-alive, X-Hop", "x-hop")
	f.Add(",,", "a")
	f.Add("close", "")
	f.Fuzz(func(t *testing.T, value, token string) {
		_ = connectionListed([]string{value}, token)
		if token == "" || strings.Contains(token, ",") || strings.TrimSpace(token) != token {
			return
		}
		if !connectionListed([]string{value + " , " + token + " "}, token) {
			t.Fatalf("token %q not found in %q", token, value+" , "+token+" ")
		}
	})
}
