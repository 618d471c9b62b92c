package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/testenv"
)

// chrome is the shared headless Chromium with this file's sign-in steps.
type chrome struct {
	*browsertest.Chrome
	t *testing.T
}

func newChrome(t *testing.T, path string) *chrome {
	t.Helper()
	return &chrome{Chrome: browsertest.Start(t, path), t: t}
}

func (c *chrome) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	c.Do(step, actions...)
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	return c.Text(sel)
}

func eval[T any](c *chrome, step, expr string) T {
	c.t.Helper()
	return browsertest.Eval[T](c.Chrome, step, expr)
}

func call[P, R any](c *chrome, step string, cmd cdp.Command[P, R], params P) R {
	c.t.Helper()
	return browsertest.Call(c.Chrome, step, cmd, params)
}

// signedInAs waits for a signed-in page and checks the heading and the
// user name in the header.
func (c *chrome) signedInAs(user, heading string) {
	c.t.Helper()
	if got := c.text("#account-link"); got != user {
		c.t.Errorf("header names %q, want %q", got, user)
	}
	if got := c.text("h1"); got != heading {
		c.t.Errorf("heading = %q, want %q", got, heading)
	}
}

// password signs in with a user name and password from the sign-in page.
func (c *chrome) password(base, user, pw string) {
	c.t.Helper()
	c.do("sign in with a password",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), user),
		chromedp.SetValue(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS("#sign-in")),
	)
}

func (c *chrome) signOut() {
	c.t.Helper()
	c.do("sign out",
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
	)
	if got := c.text(".flash"); got != "You are signed out." {
		c.t.Errorf("after signing out the page says %q", got)
	}
}

// TestE2E_SecondFactors drives Chromium through the sign-in a user sees:
// password, then an authenticator app, then a security key through the
// DevTools virtual authenticator, and a passkey without a user name.
func TestE2E_SecondFactors(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/users", httpapi.CreateUserRequest{Username: "erin", Password: apptest.UserPassword})
	c := newChrome(t, chromium)

	// Sign in as admin: no second factor yet.
	c.password(a.URL, "admin", apptest.AdminPassword)
	c.signedInAs("admin", "Welcome, admin")
	if got := c.text("#mfa-nudge"); !strings.Contains(got, "no second factor") {
		t.Errorf("home page nudge = %q", got)
	}

	// Enrol an authenticator app.
	c.do("open the authenticator app set-up",
		chromedp.Navigate(a.URL+"/account"),
		chromedp.Click(chromedp.CSS("#totp-setup")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")),
	)
	if got := c.text("h1"); got != "Add an authenticator app" {
		t.Errorf("set-up heading = %q", got)
	}
	if uri := c.text("#totp-uri"); !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Errorf("set-up shows URI %q, want otpauth://totp/…", uri)
	}
	if !eval[bool](c, "check the QR code", `document.getElementById("totp-qr").naturalWidth > 0`) {
		t.Errorf("the QR code image did not load")
	}
	secret := c.text("#totp-secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.do("confirm the app",
		chromedp.SetValue(chromedp.CSS("#totp-code"), code),
		chromedp.Click(chromedp.CSS("#totp-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")),
	)
	if got := c.text("h1"); got != "Save your recovery codes" {
		t.Errorf("after confirming: heading %q", got)
	}
	codes := eval[[]string](c, "read the recovery codes",
		`Array.from(document.querySelectorAll("#recovery-codes span"), s => s.textContent)`)
	if len(codes) != 10 {
		t.Errorf("recovery codes page shows %d codes, want 10: %q", len(codes), codes)
	}
	c.do("leave the recovery codes", chromedp.Click(chromedp.CSS("#codes-done")), chromedp.WaitVisible(chromedp.CSS("#totp-status")))
	if got := c.text("#totp-status"); got != "enrolled" {
		t.Errorf("account page: authenticator app %q", got)
	}
	c.signOut()

	// Password, then a code. The code of the step used to confirm is
	// spent; the next step's code is accepted (one step of skew).
	c.password(a.URL, "admin", apptest.AdminPassword)
	c.do("wait for the second factor", chromedp.WaitVisible(chromedp.CSS("#code")))
	if got := c.text("h1"); got != "Two-factor authentication" {
		t.Errorf("after the password: heading %q", got)
	}
	code, err = totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.do("enter the code",
		chromedp.SetValue(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("#verify")),
	)
	c.signedInAs("admin", "Welcome, admin")

	// A security key: Chromium's virtual authenticator (CTAP2, built in,
	// resident keys, user verification), touched automatically.
	call(c, "enable the WebAuthn domain", webauthn.Enable, webauthn.EnableParams{})
	auth := call(c, "add a virtual authenticator", webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	c.do("register a security key",
		chromedp.Navigate(a.URL+"/account"),
		chromedp.WaitVisible(chromedp.CSS("#webauthn-register")),
		chromedp.SetValue(chromedp.CSS("#webauthn-name"), "Laptop key"),
		chromedp.WaitVisible(chromedp.CSS("html[data-js-ready]")),
		chromedp.Click(chromedp.CSS("#webauthn-register")),
		chromedp.WaitVisible(chromedp.CSS("#webauthn-keys")),
	)
	if got := c.text(".flash"); got != "Security key “Laptop key” registered." {
		t.Errorf("after registering: flash %q", got)
	}
	if got := c.text("#webauthn-keys tbody"); !strings.Contains(got, "Laptop key (passkey)") {
		t.Errorf("registered keys: %q, want the laptop key as a passkey", got)
	}
	if got := c.text("#webauthn-status"); got != "1 registered" {
		t.Errorf("security keys: %q", got)
	}
	creds := call(c, "read the authenticator's credentials", webauthn.GetCredentials,
		webauthn.GetCredentialsParams{AuthenticatorID: auth.AuthenticatorID}).Credentials
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
		t.Fatalf("authenticator holds %d credentials (%+v), want one resident credential for localhost", len(creds), creds)
	}
	c.signOut()

	// Password, then the security key.
	c.password(a.URL, "admin", apptest.AdminPassword)
	c.do("use the security key",
		chromedp.WaitVisible(chromedp.CSS("#webauthn-login")),
		chromedp.WaitVisible(chromedp.CSS("html[data-js-ready]")),
		chromedp.Click(chromedp.CSS("#webauthn-login")),
	)
	c.signedInAs("admin", "Welcome, admin")
	c.signOut()

	// A passkey, without a user name or password.
	c.do("sign in with the passkey",
		chromedp.WaitVisible(chromedp.CSS("#passkey-button")),
		chromedp.WaitVisible(chromedp.CSS("html[data-js-ready]")),
		chromedp.Click(chromedp.CSS("#passkey-button")),
	)
	c.signedInAs("admin", "Welcome, admin")

	// The administrator sees it all in the audit log.
	c.do("open the audit log", chromedp.Navigate(a.URL+"/admin/audit"), chromedp.WaitVisible(chromedp.CSS("main table")))
	log := c.text("main table")
	for _, action := range []string{"user.mfa.totp.enrol", "user.mfa.webauthn.register", "user.login", "user.logout"} {
		if !strings.Contains(log, action) {
			t.Errorf("audit log page does not show %s", action)
		}
	}
	var signIns []string
	for _, e := range auditEntries(t, a, "user.login") {
		if via, _ := e.Details["via"].(string); e.ActorName == "admin" && e.Outcome == audit.Success && strings.HasPrefix(via, "web:") {
			amr, _ := json.Marshal(e.Details["amr"])
			signIns = append(signIns, fmt.Sprintf("%v %s", e.Details["via"], amr))
		}
	}
	want := []string{`web:password ["pwd"]`, `web:password ["pwd","otp"]`, `web:password ["pwd","hwk"]`, `web:passkey ["hwk","mfa"]`}
	if !slices.Equal(signIns, want) {
		t.Errorf("audited sign-ins of admin = %q, want %q", signIns, want)
	}
	if reg := auditEntries(t, a, "user.mfa.webauthn.register"); len(reg) != 1 || reg[0].Details["key"] != "Laptop key" || reg[0].Details["passkey"] != true {
		t.Errorf("audited registrations = %+v", reg)
	}

	// A user whose first second factor is a key gets recovery codes with
	// it, shown on the account page.
	c.signOut()
	c.password(a.URL, "erin", apptest.UserPassword)
	c.signedInAs("erin", "Welcome, erin")
	c.do("register a first key",
		chromedp.Navigate(a.URL+"/account"),
		chromedp.WaitVisible(chromedp.CSS("#webauthn-register")),
		chromedp.SetValue(chromedp.CSS("#webauthn-name"), "Phone"),
		chromedp.WaitVisible(chromedp.CSS("html[data-js-ready]")),
		chromedp.Click(chromedp.CSS("#webauthn-register")),
		chromedp.WaitVisible(chromedp.CSS("#webauthn-codes")),
	)
	codes = eval[[]string](c, "read the recovery codes",
		`Array.from(document.querySelectorAll("#webauthn-recovery-codes span"), s => s.textContent)`)
	if len(codes) != 10 {
		t.Errorf("first key: %d recovery codes shown, want 10: %q", len(codes), codes)
	}
	c.do("leave the recovery codes", chromedp.Click(chromedp.CSS("#webauthn-codes-done")), chromedp.WaitVisible(chromedp.CSS("#webauthn-keys")))
	if got := c.text("#webauthn-keys tbody"); !strings.Contains(got, "Phone (passkey)") {
		t.Errorf("erin's keys: %q", got)
	}
	if got := c.text("#recovery-status"); got != "10 left" {
		t.Errorf("erin's recovery codes: %q", got)
	}
}
