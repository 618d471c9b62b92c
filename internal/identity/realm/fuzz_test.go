package realm

import (
	"mime"
	"net/http/httptest"
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "/",
		"/orders?id=7":                  "/orders?id=7",
		"//evil.example/x":              "/",
		"/\\evil.example":               "/",
		"https://evil.example/":         "/",
		"javascript:alert(1)":           "/",
		"/.rampart/auth/signout":        "/",
		"/a b":                          "/",
		"/a\r\nLocation: x":             "/",
		"/" + strings.Repeat("a", 3000): "/",
		"/%2F%2Fevil":                   "/%2F%2Fevil",
	} {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSafeNext: whatever comes in, the redirect stays on this host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "/ok?a=b#c", "http://x", "/\t/x", "/.rampart/auth/mfa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SafeNext(in)
		if got == "/" {
			return
		}
		if got != in || got[0] != '/' || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\") ||
			strings.HasPrefix(got, AuthPrefix) || len(got) > maxNext {
			t.Fatalf("SafeNext(%q) = %q", in, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.IsSpace(r) {
				t.Fatalf("SafeNext(%q) kept %q", in, r)
			}
		}
	})
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"Alice@Example.COM":                       "alice@example.com",
		"  bob@example.com ":                      "bob@example.com",
		"a.b+tag@sub.example.org":                 "a.b+tag@sub.example.org",
		"bob@localhost":                           "",
		"Bob <bob@example.com>":                   "",
		"bob@example.com, x@y.com":                "",
		"\"a b\"@example.com":                     "",
		"bob@exa mple.com":                        "",
		"bob@example.com\r\nBcc: x":               "",
		"@example.com":                            "",
		"bob@-example.com":                        "",
		strings.Repeat("a", 250) + "@example.com": "",
	} {
		got, err := NormalizeEmail(in)
		if want == "" && err == nil || want != "" && (err != nil || got != want) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// FuzzNormalizeEmail: an accepted address is one plain, lower-case
// address that mail headers can carry as is.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@example.com", "A <a@b.c>", "a@b", "a@@b.c", "a\n@b.c", "\"x\"@b.c", "é@exämple.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeEmail(in)
		if err != nil {
			return
		}
		if len(got) > maxEmail || got != strings.ToLower(got) || strings.ContainsAny(got, "\r\n\x00 <>,\"") {
			t.Fatalf("NormalizeEmail(%q) = %q", in, got)
		}
		a, err := mail.ParseAddress(got)
		if err != nil || a.Address != got {
			t.Fatalf("NormalizeEmail(%q) = %q, which net/mail reads as %v, %v", in, got, a, err)
		}
		if again, err := NormalizeEmail(got); err != nil || again != got {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

func TestMatchTOTP(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	now := time.Unix(1_700_000_000, 0)
	step := now.Unix() / totpPeriod
	code := func(at time.Time) string {
		c, err := totpCodeAt(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name string
		code string
		last int64
		ok   bool
	}{
		{"current", code(now), 0, true},
		{"previous step (skew)", code(now.Add(-30 * time.Second)), 0, true},
		{"two steps old", code(now.Add(-60 * time.Second)), 0, false},
		{"already used", code(now), step, false},
		{"spaces", " " + code(now)[:3] + " " + code(now)[3:], 0, true},
		{"too long", code(now) + "1", 0, false},
		{"letters", "abcdef", 0, false},
	}
	for _, tc := range cases {
		if _, ok := matchTOTP(secret, tc.code, now, tc.last); ok != tc.ok {
			t.Errorf("%s: matchTOTP(%q) = %v, want %v", tc.name, tc.code, ok, tc.ok)
		}
	}
}

func TestMessageRender(t *testing.T) {
	m := message{To: "alice@example.com", Subject: "Confirm your e-mail address for Café", Body: "line one\nline two\n"}
	raw := m.render(`"Shop" <noreply@shop.test>`, time.Unix(1_700_000_000, 0), "abc")
	parsed, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(parsed.Header.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("Subject = %q, %v", subj, err)
	}
	if parsed.Header.Get("To") != m.To || parsed.Header.Get("Message-Id") != "<abc@rampart.invalid>" {
		t.Errorf("headers = %v", parsed.Header)
	}
	if strings.Contains(strings.ReplaceAll(string(raw), "\r\n", ""), "\n") {
		t.Error("bare LF in the message")
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		20 * time.Minute: "20m", 12 * time.Hour: "12h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", 10 * time.Hour: "10h",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"shop.test", "http://shop.test"},
		{"Shop.Test:8080", "http://shop.test:8080"},
		{"[::1]:9000", "http://[::1]:9000"},
		{"[::1]", "http://[::1]"},
		{"shop.test:", "http://shop.test"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tc.host
		if got := baseURL(r, requestHost(r)); got != tc.want {
			t.Errorf("baseURL(Host %q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}
