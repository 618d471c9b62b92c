package gateway

import (
	"encoding/json"
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

// FuzzAppendJSONString: any string, valid UTF-8 or not, encodes as one
// JSON string that decodes to the string (invalid bytes as U+FFFD) with
// no raw control characters that could break the line.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "line\nbreak\r\t", "\x00\x1f\x7f", "\xff\xfe", "é\u2028\u2029", "/a%2Fb?x=<script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		for _, c := range b {
			if c < 0x20 {
				t.Fatalf("raw control byte %#x in %q", c, b)
			}
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as %q: %v", s, b, err)
		}
		// strings.Map with the identity turns each invalid byte into U+FFFD.
		if want := strings.Map(func(r rune) rune { return r }, s); got != want {
			t.Fatalf("%q encoded as %q decodes to %q", s, b, got)
		}
	})
}
