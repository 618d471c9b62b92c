package oidcop_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
	"github.com/rampartsec/rampart/internal/testenv"
)

// browserRP is a tiny web application signing its users in with Rampart:
// /start sends the browser to Rampart, /callback exchanges the code and
// verifies the ID token, then shows who signed in.
type browserRP struct {
	srv      *httptest.Server
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string]flow // by state
	errs    []string
}

func newBrowserRP(t *testing.T, a *apptest.App, admin *apptest.Client) *browserRP {
	t.Helper()
	rp := &browserRP{pending: map[string]flow{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /start", rp.start)
	mux.HandleFunc("GET /callback", rp.callback)
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)

	cl := registerClient(t, admin, oidcop.CreateClientRequest{Name: "Browser app", RedirectURIs: []string{rp.srv.URL + "/callback"}})
	p, err := gooidc.NewProvider(t.Context(), a.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	rp.oauth = oauth2.Config{ClientID: cl.ClientID, ClientSecret: cl.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: rp.srv.URL + "/callback", Scopes: []string{gooidc.ScopeOpenID, "profile"}}
	rp.verifier = p.Verifier(&gooidc.Config{ClientID: cl.ClientID})
	return rp
}

func (rp *browserRP) start(w http.ResponseWriter, r *http.Request) {
	f := flow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
	rp.mu.Lock()
	rp.pending[f.state] = f
	rp.mu.Unlock()
	http.Redirect(w, r, rp.oauth.AuthCodeURL(f.state, gooidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)), http.StatusFound)
}

func (rp *browserRP) fail(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	rp.mu.Lock()
	rp.errs = append(rp.errs, msg)
	rp.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

func (rp *browserRP) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rp.mu.Lock()
	f, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok {
		rp.fail(w, "unknown state %q (error %q)", q.Get("state"), q.Get("error"))
		return
	}
	tok, err := rp.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		rp.fail(w, "exchange: %v", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(r.Context(), raw)
	if err != nil {
		rp.fail(w, "verify ID token: %v", err)
		return
	}
	if idt.Nonce != f.nonce {
		rp.fail(w, "nonce %q, want %q", idt.Nonce, f.nonce)
		return
	}
	var claims struct {
		Username string   `json:"preferred_username"`
		AMR      []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		rp.fail(w, "claims: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>Browser app</title><h1 id="who">%s</h1><p id="amr">%s</p><p id="iss">%s</p>`,
		html.EscapeString(claims.Username), html.EscapeString(strings.Join(claims.AMR, " ")), html.EscapeString(idt.Issuer))
}

// TestBrowser_CodeFlow runs the authorization code flow in Chromium: the
// relying party sends the browser to Rampart, the user signs in with the
// form, and Rampart hands the browser back. Right after a form post the
// browser applies the form's CSP form-action 'self' to redirects, so an
// HTTP redirect to the relying party would be blocked; the provider's
// page that navigates by itself must get through, and the relying party
// must end with a verified ID token.
func TestBrowser_CodeFlow(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "alice")
	rp := newBrowserRP(t, a, admin)
	c := browsertest.Start(t, chromium)

	c.Do("open the relying party",
		chromedp.Navigate(rp.srv.URL+"/start"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	if loc := c.Location(); !strings.HasPrefix(loc, a.URL+"/login?") {
		t.Fatalf("the relying party sent the browser to %s, want Rampart's sign-in form", loc)
	}
	c.Do("sign in",
		chromedp.SetValue(chromedp.CSS("#username"), "alice"),
		chromedp.SetValue(chromedp.CSS("#password"), apptest.UserPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#who")),
	)
	rp.mu.Lock()
	errs := rp.errs
	rp.mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("relying party: %v", errs)
	}
	if loc := c.Location(); !strings.HasPrefix(loc, rp.srv.URL+"/callback?") {
		t.Errorf("the browser ended at %s, want the relying party's callback", loc)
	}
	if got := c.Text("#who"); got != "alice" {
		t.Errorf("the relying party signed in %q, want alice", got)
	}
	if got := c.Text("#amr"); got != "pwd" {
		t.Errorf("amr = %q, want pwd", got)
	}
	if got := c.Text("#iss"); got != a.URL {
		t.Errorf("issuer = %q, want %s", got, a.URL)
	}

	// Signed in already: the provider answers at once, no form involved.
	c.Do("sign in again", chromedp.Navigate(rp.srv.URL+"/start"), chromedp.WaitVisible(chromedp.CSS("#who")))
	if got := c.Text("#who"); got != "alice" {
		t.Errorf("second sign-in: %q", got)
	}
}
