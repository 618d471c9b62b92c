package oidcop_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// callback is the relying party's redirect URI: a loopback address nothing
// listens on; the browser stops at the redirect and the test reads the code.
const callback = "http://127.0.0.1:9/callback"

// relyingParty is a real OpenID relying party (go-oidc + oauth2) with a
// browser-like HTTP client that follows redirects into Rampart's sign-in.
type relyingParty struct {
	t        *testing.T
	app      *apptest.App
	provider *gooidc.Provider
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
	browser  *http.Client
}

func newRelyingParty(t *testing.T, a *apptest.App, clientID, secret string, scopes ...string) *relyingParty {
	t.Helper()
	p, err := gooidc.NewProvider(t.Context(), a.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{t: t, app: a, provider: p,
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: callback,
			Scopes: append([]string{gooidc.ScopeOpenID}, scopes...)},
		verifier: p.Verifier(&gooidc.Config{ClientID: clientID}),
		browser:  newBrowser(),
	}
}

// newBrowser follows redirects like a browser, but stops at the relying
// party's callback (nothing serves it).
func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callback) || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// page is an HTML page the browser landed on.
type page struct {
	URL    *url.URL
	Status int
	Body   string
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, page) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readPage(t, resp)
}

func postForm(t *testing.T, c *http.Client, u string, v url.Values) (*http.Response, page) {
	t.Helper()
	resp, err := c.PostForm(u, v)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return resp, readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{URL: resp.Request.URL, Status: resp.StatusCode, Body: string(b)}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token on %s (%d): %.300s", p.URL, p.Status, p.Body)
	}
	return m[1]
}

// signIn fills Rampart's sign-in form the browser was sent to, and the
// one-time code form when totpSecret is set. It returns the response that
// ends the sign-in (a redirect to the callback, or a page).
func signIn(t *testing.T, c *http.Client, form page, user, password, totpSecret string) (*http.Response, page) {
	t.Helper()
	if form.URL.Path != "/login" || form.Status != http.StatusOK {
		t.Fatalf("expected the sign-in form, got %s (%d): %.300s", form.URL, form.Status, form.Body)
	}
	resp, p := postForm(t, c, form.URL.Scheme+"://"+form.URL.Host+"/login", url.Values{
		"csrf_token": {csrf(t, form)}, "username": {user}, "password": {password}, "next": {form.URL.Query().Get("next")}})
	if totpSecret == "" {
		return resp, p
	}
	if p.URL.Path != "/login/verify" {
		t.Fatalf("expected the second-factor form, got %s (%d)", p.URL, p.Status)
	}
	// The enrolment used the current step: the next one is fresh.
	code, err := totp.GenerateCode(totpSecret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return postForm(t, c, p.URL.Scheme+"://"+p.URL.Host+"/login/verify", url.Values{"csrf_token": {csrf(t, p)}, "code": {code}})
}

// flow is one authorization request of the relying party.
type flow struct {
	state, nonce, verifier string
}

func (rp *relyingParty) authURL(f flow, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{gooidc.Nonce(f.nonce)}, extra...)
	if f.verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(f.verifier))
	}
	return rp.oauth.AuthCodeURL(f.state, opts...)
}

func (rp *relyingParty) newFlow() flow {
	return flow{state: randomString(rp.t), nonce: randomString(rp.t), verifier: oauth2.GenerateVerifier()}
}

var metaRefreshRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`)

// codeFrom reads the code from the way back to the callback, checking
// state. Rampart sends the browser back with a page that navigates by
// itself (meta refresh): an HTTP redirect right after the sign-in form
// would be blocked by the form's CSP form-action.
func codeFrom(t *testing.T, resp *http.Response, p page, f flow) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	if m := metaRefreshRE.FindStringSubmatch(p.Body); resp.StatusCode == http.StatusOK && m != nil {
		loc = html.UnescapeString(m[1])
		if !strings.Contains(p.Body, `href="`+m[1]+`"`) {
			t.Errorf("the continue link differs from the refresh target")
		}
	} else if resp.StatusCode != http.StatusFound {
		loc = ""
	}
	if !strings.HasPrefix(loc, callback) {
		t.Fatalf("expected the way back to the callback, got %d %q at %s: %.300s", resp.StatusCode, loc, p.URL, p.Body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != f.state {
		t.Fatalf("state = %q, want %q", q.Get("state"), f.state)
	}
	return q.Get("code")
}

// login runs the authorization request through a fresh sign-in and
// returns the code.
func (rp *relyingParty) login(f flow, user, password, totpSecret string) string {
	rp.t.Helper()
	_, form := get(rp.t, rp.browser, rp.authURL(f))
	resp, p := signIn(rp.t, rp.browser, form, user, password, totpSecret)
	return codeFrom(rp.t, resp, p, f)
}

// exchange trades a code and verifies the ID token as a relying party must.
func (rp *relyingParty) exchange(f flow, code string) (*oauth2.Token, *gooidc.IDToken, map[string]any) {
	rp.t.Helper()
	ctx := rp.t.Context()
	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		rp.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		rp.t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		rp.t.Fatalf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		rp.t.Fatalf("at_hash: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		rp.t.Fatal(err)
	}
	return tok, idt, claims
}

func keyID(t *testing.T, rawJWT string) string {
	t.Helper()
	jws, err := jose.ParseSigned(rawJWT, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func amrOf(claims map[string]any) []string {
	var out []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func registerClient(t *testing.T, admin *apptest.Client, req oidcop.CreateClientRequest) oidcop.CreatedClient {
	t.Helper()
	var c oidcop.CreatedClient
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/oidc/clients", req).Decode(t, &c)
	return c
}

func TestProvider_CodeFlow(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testCodeFlow(t, apptest.Start(t, apptest.WithStore(b.URL(t)))) })
	}
}

func testCodeFlow(t *testing.T, a *apptest.App) {
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "alice")
	conf := registerClient(t, admin, oidcop.CreateClientRequest{Name: "Wiki", RedirectURIs: []string{callback},
		Scopes: []string{"user:read"}})
	if conf.ClientSecret == "" || conf.Public {
		t.Fatalf("confidential client without secret: %+v", conf)
	}
	rp := newRelyingParty(t, a, conf.ClientID, conf.ClientSecret, "profile", "email", "offline_access", "user:read")

	f := rp.newFlow()
	code := rp.login(f, "alice", apptest.UserPassword, "")
	tok, idt, claims := rp.exchange(f, code)

	t.Run("id token", func(t *testing.T) {
		if idt.Issuer != a.URL || !slices.Contains(idt.Audience, conf.ClientID) {
			t.Errorf("iss %q aud %v", idt.Issuer, idt.Audience)
		}
		if diff := cmp.Diff([]string{"pwd"}, amrOf(claims)); diff != "" {
			t.Errorf("amr (-want +got):\n%s", diff)
		}
		if _, ok := claims["auth_time"].(float64); !ok {
			t.Errorf("no auth_time in %v", claims)
		}
		if claims["preferred_username"] != "alice" || claims["email"] != "alice@example.test" {
			t.Errorf("profile claims %v", claims)
		}
	})

	t.Run("userinfo", func(t *testing.T) {
		ui, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Username string `json:"preferred_username"`
		}
		_ = ui.Claims(&c)
		if ui.Subject != idt.Subject || ui.Email != "alice@example.test" || c.Username != "alice" {
			t.Errorf("userinfo = %+v %+v", ui, c)
		}
	})

	t.Run("access token calls the API with its scopes", func(t *testing.T) {
		c := a.Client(t, tok.AccessToken)
		var me httpapi.Me
		c.Must(http.StatusOK, "GET", httpapi.Prefix+"/user", nil).Decode(t, &me)
		if me.Username != "alice" || me.Credential != "oauth" {
			t.Errorf("me = %+v", me)
		}
		// user:read does not cover creating orgs.
		c.Must(http.StatusForbidden, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "nope"})
	})

	t.Run("code used twice", func(t *testing.T) {
		_, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
		assertOAuthError(t, err, "invalid_grant")
	})

	t.Run("refresh rotates and refuses the old token", func(t *testing.T) {
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}
		fresh, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		raw, _ := fresh.Extra("id_token").(string)
		if _, err := rp.verifier.Verify(t.Context(), raw); err != nil {
			t.Fatalf("refreshed ID token: %v", err)
		}
		a.Client(t, fresh.AccessToken).Must(http.StatusOK, "GET", httpapi.Prefix+"/user", nil)

		_, err = rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		assertOAuthError(t, err, "invalid_grant")
		// Reuse means the token leaked: the whole grant is revoked.
		a.Client(t, fresh.AccessToken).Must(http.StatusUnauthorized, "GET", httpapi.Prefix+"/user", nil)
		_, err = rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token()
		assertOAuthError(t, err, "invalid_grant")
		assertAudited(t, admin, "oidc.token.refresh", audit.Failure)
	})

	t.Run("revoked access token", func(t *testing.T) {
		f := rp.newFlow()
		tok, _, _ := rp.exchange(f, rp.reuseSession(f))
		a.Client(t, tok.AccessToken).Must(http.StatusOK, "GET", httpapi.Prefix+"/user", nil)
		resp, err := http.PostForm(a.URL+oidcop.RevokePath, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"},
			"client_id": {conf.ClientID}, "client_secret": {conf.ClientSecret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke = %d", resp.StatusCode)
		}
		a.Client(t, tok.AccessToken).Must(http.StatusUnauthorized, "GET", httpapi.Prefix+"/user", nil)
	})

	t.Run("key rotation", func(t *testing.T) {
		oldKid := keyID(t, tok.Extra("id_token").(string))
		var k oidcop.SigningKeyJSON
		admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/oidc/keys/rotate", nil).Decode(t, &k)
		if k.KeyID == "" || k.KeyID == oldKid {
			t.Fatalf("rotated key %+v, old %s", k, oldKid)
		}
		f := rp.newFlow()
		fresh, _, _ := rp.exchange(f, rp.reuseSession(f)) // verifies with the new key
		if got := keyID(t, fresh.Extra("id_token").(string)); got != k.KeyID {
			t.Errorf("new ID token kid = %s, want %s", got, k.KeyID)
		}
		var jwks jose.JSONWebKeySet
		resp, body := get(t, http.DefaultClient, a.URL+oidcop.KeysPath)
		if resp.StatusCode != http.StatusOK {
			t.Fatal(body.Body)
		}
		if err := json.Unmarshal([]byte(body.Body), &jwks); err != nil {
			t.Fatal(err)
		}
		if len(jwks.Key(oldKid)) != 1 || len(jwks.Key(k.KeyID)) != 1 {
			t.Errorf("JWKS lacks the old or new key: %s", body.Body)
		}
		// ID tokens signed before the rotation still verify.
		if _, err := rp.verifier.Verify(t.Context(), tok.Extra("id_token").(string)); err != nil {
			t.Errorf("old ID token: %v", err)
		}
		assertAudited(t, admin, "oidc.keys.rotate", audit.Success)
	})

	t.Run("prompt=login asks for the password again", func(t *testing.T) {
		f := rp.newFlow()
		_, p := get(t, rp.browser, rp.authURL(f, oauth2.SetAuthURLParam("prompt", "login")))
		resp, p := signIn(t, rp.browser, p, "alice", apptest.UserPassword, "")
		rp.exchange(f, codeFrom(t, resp, p, f))
	})

	t.Run("client credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: conf.ClientID, ClientSecret: conf.ClientSecret, TokenURL: rp.provider.Endpoint().TokenURL,
			Scopes: []string{"user:read", "admin"}}
		ctok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		in := introspect(t, a, conf, ctok.AccessToken)
		if in["active"] != true || in["client_id"] != conf.ClientID || in["scope"] != "user:read" {
			t.Errorf("introspection = %v (admin was not registered, so not granted)", in)
		}
		// It acts for no user.
		a.Client(t, ctok.AccessToken).Must(http.StatusUnauthorized, "GET", httpapi.Prefix+"/user", nil)
	})

	t.Run("wrong secret", func(t *testing.T) {
		bad := rp.oauth
		bad.ClientSecret = "rps_wrong"
		f := rp.newFlow()
		_, err := bad.Exchange(t.Context(), rp.reuseSession(f), oauth2.VerifierOption(f.verifier))
		assertOAuthError(t, err, "invalid_client", "unauthorized_client")
		assertAudited(t, admin, "oidc.client.authenticate", audit.Failure)
	})

	t.Run("PKCE verifier mismatch", func(t *testing.T) {
		f := rp.newFlow()
		code := rp.reuseSession(f)
		_, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		assertOAuthError(t, err, "invalid_grant")
		// The code is burnt by the failed attempt.
		_, err = rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
		assertOAuthError(t, err, "invalid_grant")
	})

	t.Run("unregistered redirect URI", func(t *testing.T) {
		bad := rp.oauth
		bad.RedirectURL = "https://evil.example/callback"
		resp, p := get(t, rp.browser, bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(resp.Header.Get("Location"), "evil") {
			t.Errorf("unregistered redirect: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), p.Body)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		bad := rp.oauth
		bad.ClientID = "rpc_unknown"
		resp, p := get(t, rp.browser, bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("unknown client: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), p.Body)
		}
	})
}

// reuseSession runs an authorization request in the browser's existing
// session (no sign-in form) and returns the code.
func (rp *relyingParty) reuseSession(f flow) string {
	rp.t.Helper()
	resp, p := get(rp.t, rp.browser, rp.authURL(f))
	return codeFrom(rp.t, resp, p, f)
}

func introspect(t *testing.T, a *apptest.App, c oidcop.CreatedClient, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", a.URL+oidcop.IntrospectPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return out
}

func assertOAuthError(t *testing.T, err error, codes ...string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an OAuth error %v", err, codes)
	}
	if !slices.Contains(codes, re.ErrorCode) {
		t.Fatalf("error code = %q (%s), want one of %v", re.ErrorCode, re.ErrorDescription, codes)
	}
}

func assertAudited(t *testing.T, admin *apptest.Client, action, outcome string) {
	t.Helper()
	var es []httpapi.AuditEntry
	admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/audit?action="+url.QueryEscape(action)+"&outcome="+outcome, nil).Decode(t, &es)
	if len(es) == 0 {
		t.Errorf("no %s %s in the audit log", action, outcome)
	}
}

func TestProvider_AMRWithTOTP(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "bob")
	ctx := context.Background()
	bob, err := a.IDs.UserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	en, err := a.IDs.BeginTOTP(ctx, bob.ID, "Rampart test")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(en.Secret, time.Now())
	if _, err := a.IDs.ConfirmTOTP(ctx, bob.ID, code); err != nil {
		t.Fatal(err)
	}
	conf := registerClient(t, admin, oidcop.CreateClientRequest{Name: "Wiki", RedirectURIs: []string{callback}})
	rp := newRelyingParty(t, a, conf.ClientID, conf.ClientSecret)
	f := rp.newFlow()
	_, _, claims := rp.exchange(f, rp.login(f, "bob", apptest.UserPassword, en.Secret))
	amr := amrOf(claims)
	for _, want := range []string{"pwd", "otp", "mfa"} {
		if !slices.Contains(amr, want) {
			t.Errorf("amr = %v, want %q in it", amr, want)
		}
	}
}

func TestProvider_PublicClientPKCE(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "carol")
	pub := registerClient(t, admin, oidcop.CreateClientRequest{Name: "SPA", Public: true, RedirectURIs: []string{callback}})
	if pub.ClientSecret != "" {
		t.Fatalf("public client got a secret")
	}
	rp := newRelyingParty(t, a, pub.ClientID, "")
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams

	t.Run("code flow with PKCE and no secret", func(t *testing.T) {
		f := rp.newFlow()
		tok, _, _ := rp.exchange(f, rp.login(f, "carol", apptest.UserPassword, ""))
		if tok.AccessToken == "" {
			t.Fatal("no access token")
		}
	})
	t.Run("without PKCE the request is refused", func(t *testing.T) {
		f := rp.newFlow()
		f.verifier = ""
		resp, _ := get(t, rp.browser, rp.authURL(f))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("no-PKCE request: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestProvider_DiscoveryAdvertisesRampart(t *testing.T) {
	a := apptest.Start(t)
	resp, p := get(t, http.DefaultClient, a.URL+oidcop.DiscoveryPath)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery = %d", resp.StatusCode)
	}
	var d struct {
		Issuer string   `json:"issuer"`
		Device string   `json:"device_authorization_endpoint"`
		Scopes []string `json:"scopes_supported"`
		Grants []string `json:"grant_types_supported"`
		PKCE   []string `json:"code_challenge_methods_supported"`
		Claims []string `json:"claims_supported"`
	}
	if err := json.Unmarshal([]byte(p.Body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != a.URL || d.Device != a.URL+oidcop.DeviceAuthPath {
		t.Errorf("issuer %q device %q", d.Issuer, d.Device)
	}
	for _, want := range []string{"openid", "offline_access", "admin", "repo:read"} {
		if !slices.Contains(d.Scopes, want) {
			t.Errorf("scopes_supported lacks %q: %v", want, d.Scopes)
		}
	}
	for _, want := range []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"} {
		if !slices.Contains(d.Grants, want) {
			t.Errorf("grant_types_supported lacks %q: %v", want, d.Grants)
		}
	}
	if !slices.Contains(d.PKCE, "S256") || !slices.Contains(d.Claims, "amr") {
		t.Errorf("pkce %v claims %v", d.PKCE, d.Claims)
	}
	// The client routes are part of the generated API description.
	doc := a.Client(t, "").Must(http.StatusOK, "GET", httpapi.Prefix+"/openapi.json", nil)
	for _, path := range []string{"/oidc/clients/{id}", "/oidc/keys/rotate"} {
		if !strings.Contains(string(doc.Body), fmt.Sprintf("%q", httpapi.Prefix+path)) {
			t.Errorf("openapi.json lacks %s", path)
		}
	}
}
