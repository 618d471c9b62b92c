package realm_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
	"github.com/rampartsec/rampart/internal/identity/realm"
)

// TestExternalProvider_SignIn signs end users in on a route whose
// auth_provider names an external OpenID provider of the realm —
// Rampart's own OIDC provider, as any IdP would be: the browser goes
// there, signs in with password and TOTP, comes back, and the
// application gets the realm's JWT for the provider's subject. A user
// without a second factor is refused; the realm's own sessions do not
// open the route, nor its sessions the realm's routes.
func TestExternalProvider_SignIn(t *testing.T) { eachStore(t, testExternalProvider) }

func testExternalProvider(t *testing.T, store apptest.Option) {
	w := newWorld(t, withStore(store))
	callback := w.gw + realm.AuthPrefix + "oidc/callback"
	var client oidcop.CreatedClient
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/oidc/clients",
		oidcop.CreateClientRequest{Name: "shop", RedirectURIs: []string{callback}}).Decode(t, &client)
	var prov realm.ProviderJSON
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/realm/providers/corp", realm.ProviderRequest{
		Issuer: w.a.URL, ClientID: client.ClientID, ClientSecret: &client.ClientSecret, Scopes: []string{"email", "profile"}}).Decode(t, &prov)
	if !prov.HasSecret || !prov.RequireMFA || prov.RedirectPath != realm.AuthPrefix+"oidc/callback" {
		t.Errorf("provider = %+v", prov)
	}
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/projects/web/gateway/routes/corp", map[string]any{
		"host": w.host, "path": "/corp", "backends": []map[string]any{{"url": w.backend.srv.URL}}, "auth": "required", "auth_provider": "corp"})

	w.a.CreateUser(t, w.admin, "ursula")
	w.a.CreateUser(t, w.admin, "victor")
	u, err := w.a.IDs.UserByName(t.Context(), "ursula")
	if err != nil {
		t.Fatal(err)
	}
	enr, err := w.a.IDs.BeginTOTP(t.Context(), u.ID, "Rampart")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.a.IDs.ConfirmTOTP(t.Context(), u.ID, w.code(enr.Secret)); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(31 * time.Second)

	// ursula signs in at the provider with password and TOTP.
	b := w.browser(t)
	p := b.do("GET", "/corp/orders", nil)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, realm.AuthPrefix+"oidc/start?provider=corp&next=%2Fcorp%2Forders") {
		t.Fatalf("anonymous GET = %d to %q, want 303 to the provider's start", p.status, p.location)
	}
	land := b.follow(w.gw+p.location, nil)
	land = b.idpSignIn(land, "ursula", enr.Secret, w)
	if land.status != http.StatusOK || !strings.HasSuffix(land.url, "/corp/orders") {
		t.Fatalf("after the provider: %s = %d: %.300s", land.url, land.status, land.body)
	}
	var claims realm.Claims
	if err := json.Unmarshal([]byte(land.body), &claims); err != nil {
		t.Fatalf("the application did not get verified claims: %v: %s", err, land.body)
	}
	if claims.IdP != "corp" || !strings.HasPrefix(claims.Subject, "corp:") || claims.Email != "ursula@example.test" ||
		!slices.Contains(claims.AMR, "otp") || claims.Issuer != w.a.URL+"/api/v1/realms/shop" {
		t.Errorf("claims = %+v", claims)
	}
	// Its session does not open the realm's own route on the same host.
	if p := b.do("GET", "/", nil); p.status != http.StatusSeeOther || !strings.Contains(p.location, "signin") {
		t.Errorf("the provider's session on the realm's route = %d to %q, want 303 to the realm's sign-in", p.status, p.location)
	}
	// A realm user's session does not open the provider's route.
	local := w.browser(t)
	local.signUp("wanda@example.com")
	if p := local.do("GET", "/corp/x", nil); p.status != http.StatusSeeOther || !strings.Contains(p.location, "oidc/start") {
		t.Errorf("a realm session on the provider's route = %d to %q", p.status, p.location)
	}

	// victor has no second factor: refused, no session.
	v := w.browser(t)
	land = v.follow(w.gw+realm.AuthPrefix+"oidc/start?provider=corp&next=/corp/", nil)
	land = v.idpSignIn(land, "victor", "", w)
	if land.status != http.StatusForbidden || !strings.Contains(errorOf(page{body: land.body}), "two-factor") {
		t.Errorf("victor without MFA: %s = %d %q, want 403", land.url, land.status, errorOf(page{body: land.body}))
	}
	if p := v.do("GET", "/corp/", nil); p.status != http.StatusSeeOther {
		t.Errorf("victor reached the route: %d", p.status)
	}

	// A callback replayed, or taken to another browser, is refused.
	x := w.browser(t)
	start := x.follow(w.gw+realm.AuthPrefix+"oidc/start?provider=corp", nil)
	cb := x.idpCallback(start, "ursula", enr.Secret, w)
	mark := w.a.Mark(t)
	thief := w.browser(t)
	if p := thief.follow(cb, nil); p.status != http.StatusUnauthorized {
		t.Errorf("callback in another browser = %d, want 401", p.status)
	}
	mark.Unchanged(t)
	if p := x.follow(cb, nil); p.status != http.StatusOK {
		t.Errorf("callback in the browser that started = %d, want 200", p.status)
	}
	mark = w.a.Mark(t)
	if p := x.follow(cb, nil); p.status != http.StatusUnauthorized {
		t.Errorf("callback replayed = %d, want 401", p.status)
	}
	mark.Unchanged(t)

	// Removing the provider ends its sessions.
	w.admin.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/orgs/shop/realm/providers/corp", nil)
	if p := b.do("GET", "/corp/orders", nil); p.status != http.StatusSeeOther {
		t.Errorf("after removing the provider: GET = %d, want 303", p.status)
	}
}

// landed is where following redirects ended.
type landed struct {
	url    string
	status int
	body   string
}

var metaRefreshRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`)

// follow GETs u and follows redirects and meta refreshes across hosts
// (the gateway and the provider), stopping before a URL stop accepts.
func (b *browser) follow(u string, stop func(*url.URL) bool) landed {
	b.t.Helper()
	return b.followFrom("GET", u, nil, "", stop)
}

func (b *browser) followFrom(method, u string, body io.Reader, contentType string, stop func(*url.URL) bool) landed {
	b.t.Helper()
	for range 20 {
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			b.t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
			pu, _ := url.Parse(u)
			req.Header.Set("Origin", pu.Scheme+"://"+pu.Host)
		}
		res, err := b.http.Do(req)
		if err != nil {
			b.t.Fatalf("%s %s: %v", method, u, err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		next := ""
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			next = res.Header.Get("Location")
		} else if m := metaRefreshRE.FindStringSubmatch(string(raw)); res.StatusCode == http.StatusOK && m != nil {
			next = html.UnescapeString(m[1])
		}
		if next == "" {
			return landed{url: u, status: res.StatusCode, body: string(raw)}
		}
		base, _ := url.Parse(u)
		nu, err := base.Parse(next)
		if err != nil {
			b.t.Fatalf("bad location %q", next)
		}
		if stop != nil && stop(nu) {
			return landed{url: nu.String(), status: res.StatusCode, body: string(raw)}
		}
		method, body, contentType, u = "GET", nil, "", nu.String()
	}
	b.t.Fatalf("too many redirects")
	return landed{}
}

// postForm posts a form of page l (with its CSRF token) to path on l's
// host and follows where it leads.
func (b *browser) postForm(l landed, path string, v url.Values, stop func(*url.URL) bool) landed {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(l.body)
	if m == nil {
		b.t.Fatalf("no form on %s (%d): %.500s", l.url, l.status, l.body)
	}
	v.Set("csrf_token", html.UnescapeString(m[1]))
	base, _ := url.Parse(l.url)
	target, _ := base.Parse(path)
	return b.followFrom("POST", target.String(), strings.NewReader(v.Encode()), "application/x-www-form-urlencoded", stop)
}

// idpSignIn fills the provider's sign-in form (and its code form when
// totpSecret is set) and follows the browser back to the application.
func (b *browser) idpSignIn(form landed, user, totpSecret string, w *world) landed {
	b.t.Helper()
	u, _ := url.Parse(form.url)
	if u.Path != "/login" || form.status != http.StatusOK {
		b.t.Fatalf("expected the provider's sign-in form, got %s (%d): %.300s", form.url, form.status, form.body)
	}
	l := b.postForm(form, "/login", url.Values{"username": {user}, "password": {apptest.UserPassword}, "next": {u.Query().Get("next")}}, nil)
	if totpSecret != "" {
		code, err := totp.GenerateCode(totpSecret, w.clock.Now())
		if err != nil {
			b.t.Fatal(err)
		}
		l = b.postForm(l, "/login/verify", url.Values{"code": {code}}, nil)
	}
	return l
}

// idpCallback signs in at the provider and returns the callback URL it
// sends the browser back to, unvisited.
func (b *browser) idpCallback(form landed, user, totpSecret string, w *world) string {
	b.t.Helper()
	isCallback := func(u *url.URL) bool { return u.Path == realm.AuthPrefix+"oidc/callback" }
	u, _ := url.Parse(form.url)
	w.clock.Advance(31 * time.Second)
	l := b.postForm(form, "/login", url.Values{"username": {user}, "password": {apptest.UserPassword}, "next": {u.Query().Get("next")}}, isCallback)
	if !isCallback(mustURL(b.t, l.url)) {
		code, err := totp.GenerateCode(totpSecret, w.clock.Now())
		if err != nil {
			b.t.Fatal(err)
		}
		l = b.postForm(l, "/login/verify", url.Values{"code": {code}}, isCallback)
	}
	if !isCallback(mustURL(b.t, l.url)) {
		b.t.Fatalf("the provider did not send the browser back: %s (%d)", l.url, l.status)
	}
	return l.url
}
