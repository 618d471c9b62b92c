package web_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// browser is a signed-in (or not yet signed-in) web browser.
type browser struct {
	a    *apptest.App
	c    *http.Client
	csrf string // the token the last page's forms carried
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func newBrowser(t *testing.T, a *apptest.App) *browser {
	return &browser{a: a, c: a.Browser(t)}
}

// do sends a request with the browser's cookies and remembers the CSRF
// token of the page it gets back.
func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	if res.StatusCode >= 500 {
		t.Errorf("%s %s = %d", req.Method, req.URL.Path, res.StatusCode)
	}
	return page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(t *testing.T, path string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.a.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// post submits a form; header adds request headers (key, value pairs).
func (b *browser) post(t *testing.T, path string, form url.Values, header ...string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", b.a.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(t, req)
}

// signIn signs the browser in through the sign-in form.
func (b *browser) signIn(t *testing.T, user, password string) {
	t.Helper()
	b.get(t, "/login")
	p := b.post(t, "/login", url.Values{"username": {user}, "password": {password}, "csrf_token": {b.csrf}, "next": {"/account"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/account" {
		t.Fatalf("sign in as %s = %d to %q: %s", user, p.status, p.header.Get("Location"), p.body)
	}
	if p := b.get(t, "/account"); p.status != http.StatusOK {
		t.Fatalf("account page after sign-in = %d", p.status)
	}
}

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
	b.signIn(t, "admin", apptest.AdminPassword)
	other := newBrowser(t, a)
	other.signIn(t, "bob", apptest.UserPassword)
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
			wantPage(t, b.post(t, tt.path, form, tt.header...), http.StatusForbidden, tt.message)
			before.Unchanged(t)
		})
	}
	t.Run("sign-in form without a token", func(t *testing.T) {
		fresh := newBrowser(t, a)
		before := a.Mark(t)
		p := fresh.post(t, "/login", url.Values{"username": {"admin"}, "password": {apptest.AdminPassword}})
		wantPage(t, p, http.StatusForbidden, csrfFailed)
		for _, c := range fresh.c.Jar.Cookies(mustURL(t, a.URL)) {
			if c.Name == "rampart_session" {
				t.Errorf("refused sign-in set a session cookie")
			}
		}
		before.Unchanged(t)
	})

	// The same form with its token works: the refusals were about CSRF.
	b.get(t, "/orgs")
	p := b.post(t, "/orgs", url.Values{"name": {"acme"}, "csrf_token": {b.csrf}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("form with its token = %d: %s", p.status, p.body)
	}
}

// TestAPI_SessionCSRF calls the API with a browser's session cookie: an
// unsafe call needs the session's X-CSRF-Token header.
func TestAPI_SessionCSRF(t *testing.T) {
	a := apptest.Start(t)
	b := newBrowser(t, a)
	b.signIn(t, "admin", apptest.AdminPassword)
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
		return b.do(t, req)
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
		p := b.get(t, "/account")
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2Faccount" {
			t.Errorf("account page after expiry = %d to %q, want a redirect to sign in", p.status, p.header.Get("Location"))
		}
		req, err := http.NewRequestWithContext(t.Context(), "GET", a.URL+httpapi.Prefix+"/user", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := b.do(t, req); p.status != http.StatusUnauthorized {
			t.Errorf("API after expiry = %d, want 401: %s", p.status, p.body)
		}
		before := a.Mark(t)
		p = b.post(t, "/account/profile", url.Values{"display_name": {"Changed"}, "csrf_token": {b.csrf}})
		wantPage(t, p, http.StatusForbidden, "CSRF check failed")
		before.Unchanged(t)
	}

	t.Run("idle", func(t *testing.T) {
		b := newBrowser(t, a)
		b.signIn(t, "admin", apptest.AdminPassword)
		clk.Advance(2*time.Hour - time.Minute)
		if p := b.get(t, "/account"); p.status != http.StatusOK {
			t.Fatalf("account page within the idle timeout = %d", p.status)
		}
		clk.Advance(2*time.Hour + time.Minute)
		expired(t, b)
	})
	t.Run("absolute", func(t *testing.T) {
		b := newBrowser(t, a)
		b.signIn(t, "admin", apptest.AdminPassword)
		// Busy all day: a page every 110 minutes keeps the session from
		// going idle, but not past 24 hours.
		for elapsed := 110 * time.Minute; elapsed < 24*time.Hour; elapsed += 110 * time.Minute {
			clk.Advance(110 * time.Minute)
			if p := b.get(t, "/account"); p.status != http.StatusOK {
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
	b.signIn(t, "admin", apptest.AdminPassword)
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
				p := b.post(t, f.path, form)
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
	b.signIn(t, "admin", apptest.AdminPassword)
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
			wantPage(t, b.do(t, req), tt.status, tt.message)
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
	b.signIn(t, "pat", apptest.UserPassword)
	b.get(t, "/orgs/acme/projects/web")

	before := a.Mark(t)
	p := b.post(t, "/orgs/acme/projects/web/grants", url.Values{"who": {"user:pat"}, "role": {"owner"}, "csrf_token": {b.csrf}})
	wantPage(t, p, http.StatusForbidden, "you cannot grant the owner role")
	before.Unchanged(t)

	p = b.post(t, "/orgs/acme/projects/web/grants", url.Values{"who": {"user:admin"}, "role": {"maintainer"}, "csrf_token": {b.csrf}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("granting maintainer = %d: %s", p.status, p.body)
	}
}
