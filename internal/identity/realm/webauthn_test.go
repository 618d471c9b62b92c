package realm_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/identity/realm"
	"github.com/rampartsec/rampart/internal/identity/webauthntest"
)

var keyOptionsRE = regexp.MustCompile(`id="key-options" data-kind="(register|login)" data-options="([^"]+)"`)

// keyOptions returns the WebAuthn options the page carries for its
// script.
func keyOptions(t *testing.T, p page, kind string) []byte {
	t.Helper()
	m := keyOptionsRE.FindStringSubmatch(p.body)
	if m == nil || m[1] != kind {
		t.Fatalf("no %s options on the page (%d): %.500s", kind, p.status, p.body)
	}
	return []byte(html.UnescapeString(m[2]))
}

// TestSecurityKey enrols a security key as the second factor (software
// authenticator, the browser's half of WebAuthn played by the test), signs
// in with it, and refuses an answer for another origin or a replayed one.
func TestSecurityKey(t *testing.T) { eachStore(t, testSecurityKey) }

func testSecurityKey(t *testing.T, store apptest.Option) {
	w := newWorld(t, withStore(store))
	key := webauthntest.New(w.gw)
	b := w.browser(t)
	link := b.register("kim@example.com")
	b.confirm(link)
	if p := b.signIn("kim@example.com", password); p.status != http.StatusSeeOther {
		t.Fatalf("sign in = %d", p.status)
	}
	enrol := b.do("GET", realm.AuthPrefix+"mfa", nil)
	if csp := enrol.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %q", csp)
	}
	if js := b.do("GET", realm.AuthPrefix+"webauthn.js", nil); js.status != http.StatusOK || !strings.Contains(js.body, "navigator.credentials.create") {
		t.Errorf("webauthn.js = %d", js.status)
	}
	answer, err := key.Create(keyOptions(t, enrol, "register"))
	if err != nil {
		t.Fatal(err)
	}
	p := b.postKey(enrol, "register", answer)
	if p.status != http.StatusOK || len(codesRE.FindAllString(p.body, -1)) != 10 {
		t.Fatalf("register the key = %d %q", p.status, errorOf(p))
	}
	p = b.do("GET", "/", nil)
	var claims realm.Claims
	if p.status != http.StatusOK || json.Unmarshal([]byte(p.body), &claims) != nil || !slices.Equal(claims.AMR, []string{"pwd", "hwk"}) {
		t.Fatalf("after enrolling a key: GET = %d %s", p.status, p.body)
	}

	// Next sign-in: the key is the second factor.
	b2 := w.browser(t)
	if p := b2.signIn("kim@example.com", password); p.status != http.StatusSeeOther || !strings.Contains(p.location, "mfa") {
		t.Fatalf("sign in = %d %q", p.status, p.location)
	}
	mfa := b2.do("GET", realm.AuthPrefix+"mfa", nil)
	opts := keyOptions(t, mfa, "login")
	// An authenticator answering for another origin is refused and
	// counted.
	key.Origin = "http://evil.example"
	bad, err := key.Get(opts)
	key.Origin = w.gw
	if err != nil {
		t.Fatal(err)
	}
	if p := b2.postKey(mfa, "login", bad); p.status != http.StatusUnauthorized {
		t.Errorf("answer for another origin = %d %q, want 401", p.status, errorOf(p))
	}
	mfa = b2.do("GET", realm.AuthPrefix+"mfa", nil)
	good, err := key.Get(keyOptions(t, mfa, "login"))
	if err != nil {
		t.Fatal(err)
	}
	if p := b2.postKey(mfa, "login", good); p.status != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("sign in with the key = %d %q", p.status, errorOf(p))
	}
	if p := b2.do("GET", "/", nil); p.status != http.StatusOK {
		t.Errorf("after the key: GET = %d", p.status)
	}
	// The same answer again (its challenge is used up) is refused.
	b3 := w.browser(t)
	b3.signIn("kim@example.com", password)
	mfa3 := b3.do("GET", realm.AuthPrefix+"mfa", nil)
	if p := b3.postKey(mfa3, "login", good); p.status != http.StatusUnauthorized {
		t.Errorf("replayed answer = %d %q, want 401", p.status, errorOf(p))
	}
}

// postKey posts a security key's answer with the page's form.
func (b *browser) postKey(p page, kind string, answer []byte) page {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no form")
	}
	return b.do("POST", realm.AuthPrefix+"webauthn/"+kind, url.Values{"csrf_token": {m[1]}, "credential": {string(answer)}})
}
