package federation_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/problem"
)

const apiSecret = "api-test-client-secret"

func TestAPI_Providers(t *testing.T) {
	a := apptest.Start(t)
	adminTok := a.AdminToken(t)
	admin := a.Client(t, adminTok)
	ownerTok := a.CreateUser(t, admin, "olivia")
	a.Client(t, ownerTok).Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	readerTok := a.CreateUser(t, admin, "rita")
	a.Client(t, ownerTok).Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/rita", httpapi.RoleRequest{Role: "reader"})
	maintTok := a.CreateUser(t, admin, "max")
	a.Client(t, ownerTok).Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/max", httpapi.RoleRequest{Role: "maintainer"})
	outsiderTok := a.CreateUser(t, admin, "oscar")

	const path = httpapi.Prefix + "/orgs/acme/idps"
	req := federation.CreateProviderRequest{Name: "corp", Label: "Corp SSO", Issuer: "https://login.example.com", ClientID: "rampart",
		ClientSecret: apiSecret, MatchEmail: true, Role: "developer"}

	noSecret := func(t *testing.T, r apptest.Response) {
		t.Helper()
		if strings.Contains(string(r.Body), apiSecret) || strings.Contains(string(r.Body), `"client_secret"`) {
			t.Errorf("response carries the client secret: %s", r.Body)
		}
	}

	t.Run("owner adds", func(t *testing.T) {
		r := a.Client(t, ownerTok).Must(http.StatusCreated, "POST", path, req)
		noSecret(t, r)
		var p federation.ProviderJSON
		r.Decode(t, &p)
		if p.Name != "corp" || !p.HasSecret || p.CreatedBy != "olivia" || p.CallbackURL != a.URL+federation.CallbackPath {
			t.Errorf("created %+v", p)
		}
	})

	t.Run("authorisation", func(t *testing.T) {
		other := req
		other.Name = "other"
		for _, tc := range []struct {
			who    string
			token  string
			method string
			path   string
			body   any
			want   int
		}{
			{"reader lists", readerTok, "GET", path, nil, http.StatusOK},
			{"reader reads", readerTok, "GET", path + "/corp", nil, http.StatusOK},
			{"reader adds", readerTok, "POST", path, other, http.StatusForbidden},
			{"maintainer adds", maintTok, "POST", path, other, http.StatusForbidden},
			{"maintainer removes", maintTok, "DELETE", path + "/corp", nil, http.StatusForbidden},
			{"outsider lists", outsiderTok, "GET", path, nil, http.StatusForbidden},
			{"anonymous lists", "", "GET", path, nil, http.StatusUnauthorized},
			{"anonymous adds", "", "POST", path, other, http.StatusUnauthorized},
			{"site admin lists", adminTok, "GET", path, nil, http.StatusOK},
		} {
			t.Run(tc.who, func(t *testing.T) {
				r := a.Client(t, tc.token).Must(tc.want, tc.method, tc.path, tc.body)
				noSecret(t, r)
			})
		}
		var ps []federation.ProviderJSON
		a.Client(t, readerTok).Must(http.StatusOK, "GET", path, nil).Decode(t, &ps)
		if len(ps) != 1 || ps[0].Name != "corp" {
			t.Errorf("after refused writes: %+v", ps)
		}
	})

	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			body  any
			field string
		}{
			{"plain http issuer", federation.CreateProviderRequest{Name: "x", Issuer: "http://login.example.com", ClientID: "c"}, "issuer"},
			{"issuer with a query", federation.CreateProviderRequest{Name: "x", Issuer: "https://login.example.com?x=1", ClientID: "c"}, "issuer"},
			{"bad name", federation.CreateProviderRequest{Name: "../x", Issuer: "https://a.example", ClientID: "c"}, "name"},
			{"owner role", federation.CreateProviderRequest{Name: "x", Issuer: "https://a.example", ClientID: "c", Role: "owner"}, "role"},
			{"no client id", federation.CreateProviderRequest{Name: "x", Issuer: "https://a.example"}, "client_id"},
			{"unknown field", map[string]any{"name": "x", "issuer": "https://a.example", "client_id": "c", "secret": "s"}, "secret"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := a.Client(t, ownerTok).Must(http.StatusBadRequest, "POST", path, tc.body)
				var p problem.Details
				r.Decode(t, &p)
				if p.Field != tc.field {
					t.Errorf("problem does not name field %s: %s", tc.field, r.Body)
				}
			})
		}
		owner := a.Client(t, ownerTok)
		owner.Must(http.StatusConflict, "POST", path, req)
		owner.Must(http.StatusCreated, "POST", path, federation.CreateProviderRequest{Name: "local", Issuer: "http://127.0.0.1:9", ClientID: "c"})
	})

	t.Run("owner removes", func(t *testing.T) {
		owner := a.Client(t, ownerTok)
		owner.Must(http.StatusNoContent, "DELETE", path+"/corp", nil)
		owner.Must(http.StatusNotFound, "GET", path+"/corp", nil)
		owner.Must(http.StatusNotFound, "DELETE", path+"/corp", nil)
	})

	t.Run("audited without the secret", func(t *testing.T) {
		es := auditEntries(t, a, "idp", "")
		var actions []string
		for _, e := range es {
			actions = append(actions, e.Action+" "+e.TargetName+" by "+e.ActorName)
			if strings.Contains(strings.ToLower(strings.Join([]string{e.TargetName, e.ActorName}, " ")), apiSecret) {
				t.Errorf("audit carries the secret: %+v", e)
			}
			for k, v := range e.Details {
				if s, ok := v.(string); ok && strings.Contains(s, apiSecret) {
					t.Errorf("audit detail %s carries the secret", k)
				}
			}
		}
		want := "idp.delete corp by olivia|idp.create local by olivia|idp.create corp by olivia"
		if got := strings.Join(actions, "|"); got != want {
			t.Errorf("audited %s, want %s", got, want)
		}
	})
}

// TestWeb_SettingsPage adds and removes a provider from the org's settings
// in the browser UI, and shows owners the redirect URI to register.
func TestWeb_SettingsPage(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	a.CreateUser(t, admin, "rita")
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/rita", httpapi.RoleRequest{Role: "maintainer"})

	signIn := func(user, pw string) *browser {
		b := newBrowser(t)
		if p := b.submit(b.visit(a.URL+"/login"), "/login", url.Values{"username": {user}, "password": {pw}}); p.URL.Path != "/" {
			t.Fatalf("sign in as %s: %s %s", user, p.URL, pageError(p))
		}
		return b
	}
	b := signIn("admin", apptest.AdminPassword)
	settings := b.visit(a.URL + "/orgs/acme/settings")
	if !strings.Contains(settings.Body, `href="/orgs/acme/idps"`) {
		t.Fatalf("the org settings do not link to the sign-in providers")
	}
	p := b.visit(a.URL + "/orgs/acme/idps")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, a.URL+federation.CallbackPath) || !strings.Contains(p.Body, `id="no-idps"`) {
		t.Fatalf("providers page %d:\n%.1000s", p.Status, p.Body)
	}
	form := url.Values{"name": {"corp"}, "label": {"Corp SSO"}, "issuer": {"https://login.example.com"}, "client_id": {"rampart"},
		"client_secret": {apiSecret}, "scopes": {"openid profile email groups"}, "role": {"developer"}, "create_users": {"on"}}

	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("issuer", "http://login.example.com")
	p = b.submit(p, "/orgs/acme/idps", bad)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(pageError(p), "https") || strings.Contains(p.Body, apiSecret) {
		t.Errorf("bad issuer: %d %q (secret echoed: %v)", p.Status, pageError(p), strings.Contains(p.Body, apiSecret))
	}
	if !strings.Contains(p.Body, `value="corp"`) {
		t.Errorf("the form lost what was typed")
	}

	p = b.submit(p, "/orgs/acme/idps", form)
	if p.URL.Path != "/orgs/acme/idps" || !strings.Contains(p.Body, "Identity provider corp added") || strings.Contains(p.Body, apiSecret) {
		t.Fatalf("after adding: %s %d %q", p.URL, p.Status, pageError(p))
	}
	ps, err := a.Federation.List(t.Context(), mustOrg(t, a, "acme"))
	if err != nil || len(ps) != 1 || ps[0].Role.String() != "developer" || !ps[0].CreateUsers || ps[0].MatchEmail ||
		strings.Join(ps[0].Scopes, " ") != "openid profile email groups" {
		t.Fatalf("stored %+v, %v", ps, err)
	}
	login := newBrowser(t).visit(a.URL + "/login")
	if !strings.Contains(login.Body, `href="/login/idp/acme/corp">Sign in with Corp SSO (acme)</a>`) {
		t.Errorf("the sign-in page lacks the provider's button:\n%.2000s", login.Body)
	}

	// A maintainer is not an owner: no provider page, no changes.
	rita := signIn("rita", apptest.UserPassword)
	if p := rita.visit(a.URL + "/orgs/acme/idps"); p.Status != http.StatusForbidden {
		t.Errorf("maintainer opens the providers page: %d", p.Status)
	}

	p = b.submit(b.visit(a.URL+"/orgs/acme/idps"), "/orgs/acme/idps/corp/delete", url.Values{})
	if !strings.Contains(p.Body, "Identity provider corp removed") || !strings.Contains(p.Body, `id="no-idps"`) {
		t.Errorf("after removing: %s %q", p.URL, pageError(p))
	}
}

func mustOrg(t *testing.T, a *apptest.App, name string) int64 {
	t.Helper()
	o, err := a.IDs.Org(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}
