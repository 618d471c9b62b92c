package vault_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault"
)

// TestBrowser_RevealOnlyOnRequest adds a secret in Chromium, finds its
// value on no page until Reveal is clicked, then sees it once, with the
// reveal in the audit log.
func TestBrowser_RevealOnlyOnRequest(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	w := newWorld(t)
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/vault/policies/admins", vault.PutPolicyRequest{
		Secrets: []string{"web/*/*"}, Subjects: []string{"user:admin"}})
	const value = "browser-s3cret-value-4711"
	c := browsertest.Start(t, chromium)
	c.Do("sign in",
		chromedp.Navigate(w.a.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SetValue(chromedp.CSS("#username"), "admin"),
		chromedp.SetValue(chromedp.CSS("#password"), apptest.AdminPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#account-link")),
	)
	c.Do("open the vault from the navigation",
		chromedp.Click(chromedp.Search(`//nav//a[normalize-space()="Vault"]`)),
		chromedp.WaitVisible(chromedp.CSS("#vault-orgs")),
		chromedp.Navigate(w.a.URL+"/vault/scope/acme/web/prod"),
		chromedp.WaitVisible(chromedp.CSS("#set-form")),
	)
	c.Do("add a secret",
		chromedp.SetValue(chromedp.CSS("#secret-name"), "DB_PASSWORD"),
		chromedp.SetValue(chromedp.CSS("#secret-value"), value),
		chromedp.Click(chromedp.CSS("#secret-save")),
		chromedp.WaitVisible(chromedp.CSS("#versions")),
	)
	if loc := c.Location(); !strings.HasPrefix(loc, w.a.URL+"/vault/secret/acme/web/prod/DB_PASSWORD") {
		t.Fatalf("after saving: %s", loc)
	}
	html := browsertest.Eval[string](c, "read the page", "document.documentElement.outerHTML")
	if strings.Contains(html, value) {
		t.Fatal("the secret's page shows its value before a reveal")
	}
	c.Do("the scope page lists it",
		chromedp.Navigate(w.a.URL+"/vault/scope/acme/web/prod"),
		chromedp.WaitVisible(chromedp.CSS("#secrets")),
	)
	html = browsertest.Eval[string](c, "read the scope page", "document.documentElement.outerHTML")
	if !strings.Contains(html, "DB_PASSWORD") || strings.Contains(html, value) {
		t.Fatalf("scope page: listed=%v, shows value=%v", strings.Contains(html, "DB_PASSWORD"), strings.Contains(html, value))
	}
	before := w.a.AuditHead(t)
	c.Do("reveal",
		chromedp.Navigate(w.a.URL+"/vault/secret/acme/web/prod/DB_PASSWORD"),
		chromedp.WaitVisible(chromedp.CSS("#versions")),
		chromedp.Click(chromedp.CSS("button.reveal")),
		chromedp.WaitVisible(chromedp.CSS("#revealed")),
	)
	if got := c.Text("#secret-value"); got != value {
		t.Fatalf("revealed %q", got)
	}
	var reads int
	for _, e := range w.a.AuditSince(t, before) {
		if e.Action == "vault.secret.read" && e.Details["via"] == "ui" && e.Outcome == "success" {
			reads++
		}
	}
	if reads != 1 {
		t.Errorf("%d audited reveals, want 1", reads)
	}
	c.Do("rotate from the page",
		chromedp.SetValue(chromedp.CSS("#rotate-form textarea"), "rotated-value-0815"),
		chromedp.Click(chromedp.CSS("#rotate")),
		// The revealed page has #versions too: wait for the redirect's flash.
		chromedp.WaitVisible(chromedp.CSS("div.flash")),
	)
	html = browsertest.Eval[string](c, "read the rotated page", "document.documentElement.outerHTML")
	if !strings.Contains(html, "Rotated: version 2 is current.") || strings.Contains(html, "rotated-value-0815") {
		t.Errorf("after rotation the page says: %.300s", html)
	}
}
