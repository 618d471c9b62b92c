package web_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// wantPage checks a page's status and that it shows message.
func wantPage(t *testing.T, p page, status int, message string) {
	t.Helper()
	if p.status != status {
		t.Errorf("status = %d, want %d", p.status, status)
	}
	if !strings.Contains(html.UnescapeString(p.body), message) {
		t.Errorf("page does not say %q:\n%s", message, p.body)
	}
}

// TestWeb_CSRF posts a form the way a forged cross-site request would:
// every variant is refused with 403 and changes nothing.
func TestWeb_CSRF(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "bob")
	b := newBrowser(t, a)
	b.mustSignIn("admin", apptest.AdminPassword)
	other := newBrowser(t, a)
	other.mustSignIn("bob", apptest.UserPassword)
	const (
		csrfFailed  = "CSRF check failed"
		crossOrigin = "cross-origin form submission refused"
	)
	tests := []struct {
		name    string
		path    string
		token   string
		header  []string
		message string
	}{
		{"no token", "/orgs", "", nil, csrfFailed},
		{"wrong token", "/orgs", "not-the-token", nil, csrfFailed},
		{"another session's token", "/orgs", other.csrf, nil, csrfFailed},
		{"token in the query only", "/orgs?csrf_token=" + b.csrf, "", nil, csrfFailed},
		{"cross-site fetch metadata", "/orgs", b.csrf, []string{"Sec-Fetch-Site", "cross-site"}, crossOrigin},
		{"foreign origin", "/orgs", b.csrf, []string{"Origin", "https://evil.example"}, crossOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.Mark(t)
			form := url.Values{"name": {"acme"}}
			if tt.token != "" {
				form.Set("csrf_token", tt.token)
			}
			wantPage(t, b.post(tt.path, form, tt.header...), http.StatusForbidden, tt.message)
			before.Unchanged(t)
		})
	}
	t.Run("sign-in form without a token", func(t *testing.T) {
		fresh := newBrowser(t, a)
		before := a.Mark(t)
		p := fresh.post("/login", url.Values{"username": {"admin"}, "password": {apptest.AdminPassword}})
		wantPage(t, p, http.StatusForbidden, csrfFailed)
		for _, c := range fresh.c.Jar.Cookies(mustURL(t, a.URL)) {
			if c.Name == "rampart_session" {
				t.Errorf("refused sign-in set a session cookie")
			}
		}
		before.Unchanged(t)
	})

	// The same form with its token works: the refusals were about CSRF.
	b.get("/orgs")
	p := b.post("/orgs", url.Values{"name": {"acme"}, "csrf_token": {b.csrf}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("form with its token = %d: %s", p.status, p.body)
	}
}

// TestAPI_SessionCSRF calls the API with a browser's session cookie: an
// unsafe call needs the session's X-CSRF-Token header.
func TestAPI_SessionCSRF(t *testing.T) {
	a := apptest.Start(t)
	b := newBrowser(t, a)
	b.mustSignIn("admin", apptest.AdminPassword)
	call := func(t *testing.T, method, path, token string) page {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, a.URL+path, strings.NewReader(`{"name":"acme"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		return b.do(req)
	}
	for _, tt := range []struct{ name, token string }{{"no header", ""}, {"wrong header", "not-the-token"}} {
		t.Run(tt.name, func(t *testing.T) {
			before := a.Mark(t)
			p := call(t, "POST", httpapi.Prefix+"/orgs", tt.token)
			wantPage(t, p, http.StatusForbidden, `"detail":"missing or wrong X-CSRF-Token header"`)
			before.Unchanged(t)
		})
	}
	if p := call(t, "GET", httpapi.Prefix+"/user", ""); p.status != http.StatusOK {
		t.Errorf("GET with the cookie and no header = %d, want 200: %s", p.status, p.body)
	}
	if p := call(t, "POST", httpapi.Prefix+"/orgs", b.csrf); p.status != http.StatusCreated {
		t.Errorf("POST with the session's header = %d, want 201: %s", p.status, p.body)
	}
}

// TestWeb_SessionExpiry lets sessions run out, idle and absolutely: the
// next page sends the browser to the sign-in page, the API answers 401 and
// a form from the old page changes nothing.
func TestWeb_SessionExpiry(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend.Name, func(t *testing.T) { testSessionExpiry(t, apptest.WithStore(backend.URL(t))) })
	}
}

func testSessionExpiry(t *testing.T, store apptest.Option) {
	clk := apptest.NewClock(time.Now())
	a := apptest.Start(t, store, apptest.WithClock(clk.Now))
	expired := func(t *testing.T, b *browser) {
		t.Helper()
		p := b.get("/account")
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2Faccount" {
			t.Errorf("account page after expiry = %d to %q, want a redirect to sign in", p.status, p.header.Get("Location"))
		}
		req, err := http.NewRequestWithContext(t.Context(), "GET", a.URL+httpapi.Prefix+"/user", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := b.do(req); p.status != http.StatusUnauthorized {
			t.Errorf("API after expiry = %d, want 401: %s", p.status, p.body)
		}
		before := a.Mark(t)
		p = b.post("/account/profile", url.Values{"display_name": {"Changed"}, "csrf_token": {b.csrf}})
		wantPage(t, p, http.StatusForbidden, "CSRF check failed")
		before.Unchanged(t)
	}

	t.Run("idle", func(t *testing.T) {
		b := newBrowser(t, a)
		b.mustSignIn("admin", apptest.AdminPassword)
		clk.Advance(2*time.Hour - time.Minute)
		if p := b.get("/account"); p.status != http.StatusOK {
			t.Fatalf("account page within the idle timeout = %d", p.status)
		}
		clk.Advance(2*time.Hour + time.Minute)
		expired(t, b)
	})
	t.Run("absolute", func(t *testing.T) {
		b := newBrowser(t, a)
		b.mustSignIn("admin", apptest.AdminPassword)
		// Busy all day: a page every 110 minutes keeps the session from
		// going idle, but not past 24 hours.
		for elapsed := 110 * time.Minute; elapsed < 24*time.Hour; elapsed += 110 * time.Minute {
			clk.Advance(110 * time.Minute)
			if p := b.get("/account"); p.status != http.StatusOK {
				t.Fatalf("account page after %s = %d", elapsed, p.status)
			}
		}
		clk.Advance(110 * time.Minute)
		expired(t, b)
	})
}

// TestWeb_BadNames submits forms with names that could break paths, logs
// or terminals: each is refused on the form with a clear message.
func TestWeb_BadNames(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	b := newBrowser(t, a)
	b.mustSignIn("admin", apptest.AdminPassword)
	const (
		control = "must not contain control characters"
		shape   = "must be 1-40 lowercase letters"
	)
	names := []struct{ name, value, message string }{
		{"NUL", "ac\x00me", control},
		{"newline", "ac\nme", control},
		{"escape sequence", "ac\x1b[2Jme", control},
		{"dot dot", "a..b", shape},
		{"parent path", "../acme", shape},
		{"absolute path", "/etc/passwd", shape},
		{"200 characters", strings.Repeat("a", 200), shape},
	}
	forms := []struct {
		kind, path, field string
		extra             url.Values
	}{
		{"org", "/orgs", "name", nil},
		{"team", "/orgs/acme/teams", "name", nil},
		{"project", "/orgs/acme/projects", "name", nil},
		{"user", "/admin/users", "username", url.Values{"password": {apptest.UserPassword}}},
		{"service account", "/orgs/acme/service-accounts", "name", url.Values{"role": {"reader"}}},
	}
	for _, f := range forms {
		for _, n := range names {
			t.Run(f.kind+" "+n.name, func(t *testing.T) {
				form := url.Values{f.field: {n.value}, "csrf_token": {b.csrf}}
				for k, v := range f.extra {
					form[k] = v
				}
				before := a.Mark(t)
				p := b.post(f.path, form)
				wantPage(t, p, http.StatusUnprocessableEntity, n.message)
				if !strings.Contains(p.body, `id="form-error"`) {
					t.Errorf("the form page does not show the error")
				}
				before.Unchanged(t)
			})
		}
	}
}

// TestWeb_BadForms sends form bodies that cannot be read.
func TestWeb_BadForms(t *testing.T) {
	a := apptest.Start(t)
	b := newBrowser(t, a)
	b.mustSignIn("admin", apptest.AdminPassword)
	tests := []struct {
		name, body string
		status     int
		message    string
	}{
		{"over the size limit", "csrf_token=" + b.csrf + "&name=" + strings.Repeat("a", 2<<20), http.StatusRequestEntityTooLarge, "form too large"},
		{"broken escape", "csrf_token=" + b.csrf + "&name=%zz", http.StatusUnprocessableEntity, "malformed form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "POST", a.URL+"/orgs", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			before := a.Mark(t)
			wantPage(t, b.do(req), tt.status, tt.message)
			before.Unchanged(t)
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestWeb_NoGrantAboveOwnRole uses the project access form as a project
// maintainer: granting owner is refused, granting maintainer works.
func TestWeb_NoGrantAboveOwnRole(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "pat")
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", httpapi.CreateProjectRequest{Name: "web"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/pat", httpapi.RoleRequest{Role: "reader"})
	admin.Must(http.StatusNoContent, "PUT", httpapi.Prefix+"/orgs/acme/projects/web/grants/users/pat", httpapi.RoleRequest{Role: "maintainer"})
	b := newBrowser(t, a)
	b.mustSignIn("pat", apptest.UserPassword)
	b.get("/orgs/acme/projects/web")

	before := a.Mark(t)
	p := b.post("/orgs/acme/projects/web/grants", url.Values{"who": {"user:pat"}, "role": {"owner"}, "csrf_token": {b.csrf}})
	wantPage(t, p, http.StatusForbidden, "you cannot grant the owner role")
	before.Unchanged(t)

	p = b.post("/orgs/acme/projects/web/grants", url.Values{"who": {"user:admin"}, "role": {"maintainer"}, "csrf_token": {b.csrf}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("granting maintainer = %d: %s", p.status, p.body)
	}
}
