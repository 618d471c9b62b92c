package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/webauthntest"
)

var (
	totpSecretRE    = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryCodesRE = regexp.MustCompile(`<span>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</span>`)
)

func totpSecretOf(t *testing.T, p page) string {
	t.Helper()
	m := totpSecretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no #totp-secret on the page:\n%s", p.body)
	}
	return m[1]
}

// auditEntries lists the audit entries of an action, oldest first.
func auditEntries(t *testing.T, a *apptest.App, action string) []audit.Entry {
	t.Helper()
	es, err := a.Audit.List(context.Background(), audit.Filter{Action: action, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(es)
	return es
}

// TestOrgRequiresMFA_EnrolAtSignIn: a member of an org that requires
// two-factor authentication, without a second factor, is held at the
// enrolment page after the password until they enrol TOTP, then gets ten
// recovery codes and is signed in.
func TestOrgRequiresMFA_EnrolAtSignIn(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	requireMFA := true
	admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/orgs/acme", httpapi.UpdateOrgRequest{RequireMFA: &requireMFA})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/users", httpapi.CreateUserRequest{Username: "dana", Password: apptest.UserPassword})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/dana", httpapi.RoleRequest{Role: "developer"})

	b := newBrowser(t, a)
	if to := b.signIn("dana", apptest.UserPassword); to != "/login/enrol" {
		t.Fatalf("after the password: redirected to %q, want /login/enrol", to)
	}
	// Nothing else is reachable before enrolment.
	for _, path := range []string{"/", "/account", "/orgs/acme", "/account/totp"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login?next=") {
			t.Errorf("GET %s before enrolment: status %d to %q, want a redirect to /login", path, p.status, p.location)
		}
	}
	if p := b.get("/login/verify"); p.location != "/login/enrol" {
		t.Errorf("GET /login/verify before enrolment: redirected to %q, want /login/enrol", p.location)
	}
	p := b.must(b.get("/login/enrol"), http.StatusOK, "enrolment page")
	// Even with the pending session's CSRF token, a page that needs a
	// signed-in user refuses.
	if p := b.submit("/account/totp", url.Values{"code": {"123456"}}); p.status != http.StatusUnauthorized {
		t.Errorf("POST /account/totp before enrolment: status %d, want 401", p.status)
	}

	if !strings.Contains(p.body, "requires two-factor authentication") || !strings.Contains(p.body, "otpauth://totp/") {
		t.Errorf("enrolment page lacks the explanation or the otpauth URI:\n%s", p.body)
	}
	p = b.submit("/login/enrol", url.Values{"code": {"000000"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="form-error"`) {
		t.Fatalf("wrong code: status %d, want 422 with the error shown:\n%s", p.status, p.body)
	}
	code, err := totp.GenerateCode(totpSecretOf(t, p), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.must(b.submit("/login/enrol", url.Values{"code": {code}}), http.StatusOK, "enrol")
	if !strings.Contains(p.body, "Save your recovery codes") {
		t.Fatalf("after enrolment: no recovery codes page:\n%s", p.body)
	}
	if codes := recoveryCodesRE.FindAllStringSubmatch(p.body, -1); len(codes) != 10 {
		t.Errorf("recovery codes page shows %d codes, want 10", len(codes))
	}
	p = b.must(b.get("/"), http.StatusOK, "home page after enrolment")
	if !strings.Contains(p.body, "Welcome, dana") {
		t.Errorf("home page does not greet dana:\n%s", p.body)
	}
	b.must(b.get("/orgs/acme"), http.StatusOK, "org page after enrolment")

	if got := auditEntries(t, a, "user.mfa.totp.enrol"); len(got) != 1 || got[0].TargetName != "dana" {
		t.Errorf("audit user.mfa.totp.enrol = %+v", got)
	}
	logins := auditEntries(t, a, "user.login")
	last := logins[len(logins)-1]
	if last.ActorName != "dana" || last.Outcome != audit.Success || last.Details["via"] != "web:enrol" {
		t.Errorf("last sign-in audited as %+v, want dana's successful web:enrol", last)
	}
}

// TestWebAuthn_OverHTTP drives the security-key endpoints as rampart.js
// does, with a software authenticator in place of the browser's.
// TestOrgRequiresMFA_EnrolKeyAtSignIn: a member held at enrolment may
// register a security key instead of an authenticator app, which finishes
// the sign-in.
func TestOrgRequiresMFA_EnrolKeyAtSignIn(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	requireMFA := true
	admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/orgs/acme", httpapi.UpdateOrgRequest{RequireMFA: &requireMFA})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/users", httpapi.CreateUserRequest{Username: "erin", Password: apptest.UserPassword})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/erin", httpapi.RoleRequest{Role: "developer"})

	b := newBrowser(t, a)
	if to := b.signIn("erin", apptest.UserPassword); to != "/login/enrol" {
		t.Fatalf("after the password: redirected to %q, want /login/enrol", to)
	}
	p := b.must(b.get("/login/enrol"), http.StatusOK, "enrolment page")
	if !strings.Contains(p.body, `data-begin="/login/enrol/webauthn/begin"`) {
		t.Fatalf("enrolment page offers no security key:\n%s", p.body)
	}
	if p := b.fetch("/login/enrol/webauthn/begin", []byte(`{"name":"Key"}`), ""); p.status != http.StatusForbidden {
		t.Fatalf("begin without CSRF token: status %d, want 403", p.status)
	}
	key := webauthntest.New(a.URL)
	opts := b.must(b.fetch("/login/enrol/webauthn/begin", []byte(`{"name":"Key"}`), b.csrf), http.StatusOK, "enrol key begin")
	resp, err := key.Create([]byte(opts.body))
	if err != nil {
		t.Fatal(err)
	}
	fin := b.must(b.fetch("/login/enrol/webauthn/finish", resp, b.csrf), http.StatusOK, "enrol key finish")
	var got struct {
		Name          string
		Next          string
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := json.Unmarshal([]byte(fin.body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "Key" || got.Next != "/" || len(got.RecoveryCodes) != 10 {
		t.Fatalf("answer = %+v, want the key, next /, ten recovery codes", got)
	}
	b.must(b.get("/orgs/acme"), http.StatusOK, "org page after enrolling a key")
	// The pending session is gone: enrolling again is refused.
	if p := b.fetch("/login/enrol/webauthn/begin", []byte(`{"name":"Again"}`), b.csrf); p.status != http.StatusUnauthorized {
		t.Errorf("enrol after sign-in: status %d, want 401", p.status)
	}
}

func TestWebAuthn_OverHTTP(t *testing.T) {
	a := apptest.Start(t)
	key := webauthntest.New(a.URL)
	b := newBrowser(t, a)
	if to := b.signIn("admin", apptest.AdminPassword); to != "/" {
		t.Fatalf("admin without a second factor redirected to %q", to)
	}
	b.must(b.get("/account"), http.StatusOK, "account page")

	// Without the CSRF header nothing starts.
	if p := b.fetch("/account/webauthn/register/begin", []byte(`{"name":"YubiKey"}`), ""); p.status != http.StatusForbidden {
		t.Fatalf("begin without CSRF token: status %d, want 403", p.status)
	}
	for _, body := range []string{`{"name":"YubiKey","extra":1}`, `["YubiKey"]`, `{"name":"a"}{"name":"b"}`} {
		p := b.fetch("/account/webauthn/register/begin", []byte(body), b.csrf)
		var e struct{ Error string }
		if p.status != http.StatusUnprocessableEntity || json.Unmarshal([]byte(p.body), &e) != nil || e.Error == "" {
			t.Errorf("begin with %s: status %d, body %s; want 422 with a JSON error", body, p.status, p.body)
		}
	}
	opts := b.must(b.fetch("/account/webauthn/register/begin", []byte(`{"name":"YubiKey"}`), b.csrf), http.StatusOK, "register begin")
	resp, err := key.Create([]byte(opts.body))
	if err != nil {
		t.Fatal(err)
	}
	fin := b.must(b.fetch("/account/webauthn/register/finish", resp, b.csrf), http.StatusOK, "register finish")
	var reg struct {
		Name          string
		Passkey       bool
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := json.Unmarshal([]byte(fin.body), &reg); err != nil {
		t.Fatal(err)
	}
	if reg.Name != "YubiKey" || !reg.Passkey || len(reg.RecoveryCodes) != 10 {
		t.Errorf("registration answer = %+v, want YubiKey, a passkey, ten recovery codes", reg)
	}
	p := b.must(b.get("/account"), http.StatusOK, "account page")
	if !strings.Contains(p.body, "YubiKey (passkey)") || !strings.Contains(p.body, "1 registered") {
		t.Errorf("account page does not list the key:\n%s", p.body)
	}
	removeRE := regexp.MustCompile(`action="/account/webauthn/(\d+)/remove"`)
	m := removeRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no remove form on the account page")
	}
	b.must(b.submit("/logout", nil), http.StatusSeeOther, "sign out")

	// Password, then the key.
	if to := b.signIn("admin", apptest.AdminPassword); to != "/login/verify" {
		t.Fatalf("after the password: redirected to %q, want /login/verify", to)
	}
	p = b.must(b.get("/login/verify"), http.StatusOK, "verify page")
	if !strings.Contains(p.body, `id="webauthn-login"`) {
		t.Fatalf("verify page offers no security key:\n%s", p.body)
	}
	if p := b.fetch("/login/webauthn/finish", []byte("{}"), b.csrf); p.status != http.StatusUnauthorized {
		t.Errorf("finish before begin: status %d, want 401", p.status)
	}
	opts = b.must(b.fetch("/login/webauthn/begin", nil, b.csrf), http.StatusOK, "login begin")
	resp, err = key.Get([]byte(opts.body))
	if err != nil {
		t.Fatal(err)
	}
	fin = b.must(b.fetch("/login/webauthn/finish", resp, b.csrf), http.StatusOK, "login finish")
	if !strings.Contains(fin.body, `"next":"/"`) {
		t.Errorf("login finish = %s, want next /", fin.body)
	}
	p = b.must(b.get("/"), http.StatusOK, "home page")
	if !strings.Contains(p.body, "Welcome, admin") {
		t.Errorf("not signed in after the security key:\n%s", p.body)
	}
	b.must(b.submit("/logout", nil), http.StatusSeeOther, "sign out")

	// Passkey: no user name, no password.
	anon := newBrowser(t, a)
	anon.must(anon.get("/login"), http.StatusOK, "sign-in page")
	if p := anon.fetch("/login/passkey/finish", []byte("{}"), anon.csrf); p.status != http.StatusUnauthorized {
		t.Errorf("passkey finish before begin: status %d, want 401", p.status)
	}
	opts = anon.must(anon.fetch("/login/passkey/begin", nil, anon.csrf), http.StatusOK, "passkey begin")
	resp, err = key.Get([]byte(opts.body))
	if err != nil {
		t.Fatal(err)
	}
	fin = anon.must(anon.fetch("/login/passkey/finish?next=%2Forgs", resp, anon.csrf), http.StatusOK, "passkey finish")
	if !strings.Contains(fin.body, `"next":"/orgs"`) {
		t.Errorf("passkey finish = %s, want next /orgs", fin.body)
	}
	anon.must(anon.get("/orgs"), http.StatusOK, "orgs page after passkey")
	// The same answer does not sign in twice.
	if p := anon.fetch("/login/passkey/finish", resp, anon.csrf); p.status != http.StatusUnauthorized {
		t.Errorf("replayed passkey answer: status %d, want 401", p.status)
	}

	// Remove the key.
	anon.must(anon.get("/account"), http.StatusOK, "account page")
	p = anon.must(anon.submit("/account/webauthn/"+m[1]+"/remove", nil), http.StatusSeeOther, "remove key")
	if !strings.HasPrefix(p.location, "/account?flash=") {
		t.Errorf("after removal: redirected to %q", p.location)
	}
	if p := anon.get("/account"); !strings.Contains(p.body, "0 registered") || strings.Contains(p.body, "YubiKey") {
		t.Errorf("account page still lists the key:\n%s", p.body)
	}

	if got := auditEntries(t, a, "user.mfa.webauthn.register"); len(got) != 1 || got[0].ActorName != "admin" || got[0].Details["key"] != "YubiKey" {
		t.Errorf("audit user.mfa.webauthn.register = %+v", got)
	}
	if got := auditEntries(t, a, "user.mfa.webauthn.remove"); len(got) != 1 || got[0].ActorName != "admin" {
		t.Errorf("audit user.mfa.webauthn.remove = %+v", got)
	}
	var methods []string
	for _, e := range auditEntries(t, a, "user.login") {
		if e.Outcome == audit.Success && e.ActorName == "admin" {
			amr, _ := json.Marshal(e.Details["amr"])
			methods = append(methods, e.Details["via"].(string)+" "+string(amr))
		}
	}
	want := []string{`web:password ["pwd"]`, `web:password ["pwd","hwk"]`, `web:passkey ["hwk","mfa"]`}
	if !slices.Equal(methods, want) {
		t.Errorf("admin's audited web sign-ins = %q, want %q", methods, want)
	}
}
