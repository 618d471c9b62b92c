package federation_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestBrowser_FederatedSignIn signs in with an upstream Rampart in
// Chromium: the button on the sign-in page, the upstream's form, and back
// (a cross-site navigation that must carry the state cookie) into a
// session for a user created from the upstream one.
func TestBrowser_FederatedSignIn(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	e := setUp(t)
	e.addProvider(t, federation.CreateProviderRequest{Name: "corp", Label: "Corp SSO", CreateUsers: true, Role: "developer"})
	e.up.createUser(t, "ada", "ada@corp.test", "Ada Lovelace")
	c := browsertest.Start(t, chromium)

	c.Do("open the sign-in page", chromedp.Navigate(e.down.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	c.Do("click the provider's button",
		chromedp.Click(chromedp.Search(`//a[normalize-space()="Sign in with Corp SSO (acme)"]`)),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	if loc := c.Location(); !strings.HasPrefix(loc, e.up.URL+"/login?") {
		t.Fatalf("the button led to %s, want the upstream's sign-in form", loc)
	}
	c.Do("sign in upstream",
		chromedp.SetValue(chromedp.CSS("#username"), "ada"),
		chromedp.SetValue(chromedp.CSS("#password"), upstreamPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#account-link")),
	)
	if loc := c.Location(); loc != e.down.URL+"/" {
		t.Errorf("signed in at %s, want the downstream start page", loc)
	}
	if got := c.Text("#account-link"); got != "ada" {
		t.Errorf("the header names %q, want ada", got)
	}
	if got := c.Text("h1"); got != "Welcome, ada" {
		t.Errorf("heading = %q", got)
	}
	if login := lastLogin(t, e.down, "ada"); login.Details["via"] != "web:idp:corp" {
		t.Errorf("audited sign-in %v", login.Details)
	}
}
