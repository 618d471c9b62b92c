package realm_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/identity/realm"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestBrowser_RegisterEnrolReachApp is the end user's first visit in
// Chromium: the application sends them to sign in, they register,
// confirm the address from the mail, sign in, enrol an authenticator app
// (the QR code and the stylesheet load under the pages' strict CSP) and
// reach the application as themselves.
func TestBrowser_RegisterEnrolReachApp(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	w := newWorld(t)
	c := browsertest.Start(t, chromium)

	c.Do("open the application", chromedp.Navigate(w.gw+"/hello"), chromedp.WaitVisible(chromedp.CSS("#signin")))
	if loc := c.Location(); !strings.HasPrefix(loc, w.gw+realm.AuthPrefix+"signin?next=") {
		t.Fatalf("the application sent the browser to %s, want the sign-in page", loc)
	}
	if width := browsertest.Eval[string](c, "read the style", "getComputedStyle(document.querySelector('main')).maxWidth"); width != "448px" {
		t.Errorf("the stylesheet did not apply (main max-width %q)", width)
	}
	c.Do("register",
		chromedp.Click(chromedp.CSS("#register-link")),
		chromedp.WaitVisible(chromedp.CSS("#register")),
		chromedp.SetValue(chromedp.CSS("#email"), "zoe@example.com"),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#register")),
		chromedp.WaitVisible(chromedp.CSS("#check-mail")),
	)
	link := linkRE.FindString(w.sink.Next(t, 10*time.Second).Body)
	if link == "" {
		t.Fatal("no verification link in the mail")
	}
	c.Do("confirm the address",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#signin-link")),
		chromedp.Click(chromedp.CSS("#signin-link")),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
	)
	c.Do("sign in",
		chromedp.SetValue(chromedp.CSS("#email"), "zoe@example.com"),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
	)
	if ok := browsertest.Eval[bool](c, "look at the QR code", "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0"); !ok {
		t.Error("the QR code image did not load")
	}
	secret := c.Text("#secret")
	c.Do("enrol the authenticator app",
		chromedp.SetValue(chromedp.CSS("#code"), w.code(secret)),
		chromedp.Click(chromedp.CSS("#verify-code")),
		chromedp.WaitVisible(chromedp.CSS("#codes")),
	)
	if n := browsertest.Eval[int](c, "count recovery codes", "document.querySelectorAll('#codes li').length"); n != 10 {
		t.Errorf("%d recovery codes shown, want 10", n)
	}
	c.Do("continue to the application", chromedp.Click(chromedp.CSS("#continue")), chromedp.WaitVisible(chromedp.CSS("body")))
	var claims realm.Claims
	if err := json.Unmarshal([]byte(c.Text("body")), &claims); err != nil {
		t.Fatalf("the application's answer is not the verified claims: %v", err)
	}
	if claims.Email != "zoe@example.com" || len(claims.AMR) != 2 {
		t.Errorf("the application saw %+v", claims)
	}
	cookies := browsertest.Eval[string](c, "read cookies from script", "document.cookie")
	if strings.Contains(cookies, "rampart_realm") {
		t.Errorf("script can read the realm cookies: %q", cookies)
	}
}

// TestBrowser_SecurityKey enrols a security key in Chromium (its virtual
// authenticator) through the page's script under the strict CSP, reaches
// the application, and signs in again with the key.
func TestBrowser_SecurityKey(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	w := newWorld(t)
	b := w.browser(t)
	b.confirm(b.register("yan@example.com"))
	c := browsertest.Start(t, chromium)
	browsertest.Call(c, "enable the WebAuthn domain", cdpwebauthn.Enable, cdpwebauthn.EnableParams{})
	browsertest.Call(c, "add a virtual authenticator", cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21,
			Transport: cdpwebauthn.AuthenticatorTransportUsb, AutomaticPresenceSimulation: true,
		},
	})
	signIn := func(step string, then string) {
		c.Do(step,
			chromedp.Navigate(w.gw+"/hello"),
			chromedp.WaitVisible(chromedp.CSS("#signin")),
			chromedp.SetValue(chromedp.CSS("#email"), "yan@example.com"),
			chromedp.SetValue(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(chromedp.CSS(then)),
		)
	}
	// The page's script marks the button once it listens to it.
	signIn("sign in", "#use-key[data-ready]")
	c.Do("enrol the security key", chromedp.Click(chromedp.CSS("#use-key")), chromedp.WaitVisible(chromedp.CSS("#codes")))
	c.Do("continue to the application", chromedp.Click(chromedp.CSS("#continue")), chromedp.WaitVisible(chromedp.CSS("body")))
	var claims realm.Claims
	if err := json.Unmarshal([]byte(c.Text("body")), &claims); err != nil || claims.Email != "yan@example.com" || strings.Join(claims.AMR, " ") != "pwd hwk" {
		t.Fatalf("the application saw %+v (%v)", claims, err)
	}
	c.Do("sign out", chromedp.Navigate(w.gw+realm.AuthPrefix+"signout"), chromedp.WaitVisible(chromedp.CSS("#signout")),
		chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
	signIn("sign in again", "#use-key[data-ready]")
	c.Do("use the security key", chromedp.Click(chromedp.CSS("#use-key")))
	// The key's ceremony runs in the page's script and then navigates:
	// wait for the application (the page body is visible all along).
	loc := c.Location()
	for deadline := time.Now().Add(10 * time.Second); loc != w.gw+"/hello" && time.Now().Before(deadline); loc = c.Location() {
		time.Sleep(50 * time.Millisecond)
	}
	if loc != w.gw+"/hello" {
		t.Fatalf("after the key: at %s, want the application", loc)
	}
	if err := json.Unmarshal([]byte(c.Text("body")), &claims); err != nil || strings.Join(claims.AMR, " ") != "pwd hwk" {
		t.Errorf("second sign-in: %+v (%v)", claims, err)
	}
}
