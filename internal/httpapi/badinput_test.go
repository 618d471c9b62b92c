package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// TestAPI_BadBodies sends request bodies that are not the JSON object a
// route wants: each is refused with a problem that says what is wrong,
// and nothing is created.
func TestAPI_BadBodies(t *testing.T) {
	a := apptest.Start(t)
	admin := a.AdminToken(t)
	tooBig := `{"name":"acme","display_name":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		detail      string
		field       string
	}{
		{"empty", "application/json", ``, 400, "request body is empty", ""},
		{"malformed", "application/json", `{"name": acme}`, 400, "malformed JSON at byte 10", ""},
		{"truncated", "application/json", `{"name": "acme"`, 400, "truncated JSON", ""},
		{"truncated mid-string", "application/json", `{"name": "ac`, 400, "truncated JSON", ""},
		{"unknown field", "application/json", `{"name":"acme","owner":"mallory"}`, 400, `unknown field "owner"`, "owner"},
		{"unknown field with control characters", "application/json", `{"name":"acme","ow\u0000ner":1}`, 400, `unknown field "ow\x00ner"`, "owner"},
		{"wrong type", "application/json", `{"name":42}`, 400, `field "name" must be a string`, "name"},
		{"array for a string", "application/json", `{"name":["acme"]}`, 400, `field "name" must be a string`, "name"},
		{"array instead of object", "application/json", `[{"name":"acme"}]`, 400, "request body must be a JSON object", ""},
		{"string instead of object", "application/json", `"acme"`, 400, "request body must be a JSON object", ""},
		{"second object", "application/json", `{"name":"acme"}{"name":"globex"}`, 400, "a single JSON value", ""},
		{"trailing garbage", "application/json", `{"name":"acme"} trailing`, 400, "malformed JSON", ""},
		{"trailing bracket", "application/json", `{"name":"acme"}]`, 400, "malformed JSON", ""},
		{"deeply nested", "application/json", `{"name":` + strings.Repeat("[", 20000), 400, "malformed JSON", ""},
		{"plain text", "text/plain", `{"name":"acme"}`, 400, "must be application/json", ""},
		{"form", "application/x-www-form-urlencoded", `name=acme`, 400, "must be application/json", ""},
		{"unparsable content type", "application/json; charset", `{"name":"acme"}`, 400, "must be application/json", ""},
		{"over the size limit", "application/json", tooBig, 413, "request body exceeds 1048576 bytes", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.Mark(t)
			res := send(t, newRequest(t, a, "POST", httpapi.Prefix+"/orgs", admin, tt.contentType, strings.NewReader(tt.body)))
			wantProblem(t, res, tt.status, tt.detail, tt.field)
			before.Unchanged(t)
			if n := len(a.AuditSince(t, before.Head())); n != 0 {
				t.Errorf("a malformed body left %d audit entries", n)
			}
		})
	}
	// The limit holds before anyone is signed in, too.
	t.Run("sign-in over the size limit", func(t *testing.T) {
		body := `{"username":"admin","password":"` + strings.Repeat("p", 2<<20) + `"}`
		before := a.Mark(t)
		res := send(t, newRequest(t, a, "POST", httpapi.Prefix+"/auth/login", "", "application/json", strings.NewReader(body)))
		wantProblem(t, res, http.StatusRequestEntityTooLarge, "request body exceeds 1048576 bytes", "")
		before.Unchanged(t)
	})
	// The same body, well formed, is accepted: the refusals above were
	// about the body alone.
	res := send(t, newRequest(t, a, "POST", httpapi.Prefix+"/orgs", admin, "application/json; charset=utf-8", strings.NewReader(`{"name":"acme"}`)))
	if res.Status != http.StatusCreated {
		t.Fatalf("well-formed body = %d: %s", res.Status, brief(res.Body))
	}
}

// TestAPI_BadBodiesEverywhere checks that the strict decoding applies to
// every route that takes a body, signed in or not.
func TestAPI_BadBodiesEverywhere(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", httpapi.CreateProjectRequest{Name: "web"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/service-accounts", httpapi.CreateServiceAccountRequest{Name: "ci", Role: "reader"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/teams", httpapi.CreateTeamRequest{Name: "devs"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/repos", `{"name":"app"}`)
	for _, rt := range a.API.Routes() {
		if rt.Request == nil {
			continue
		}
		path := strings.NewReplacer("{org}", "acme", "{project}", "web", "{team}", "devs", "{username}", "admin",
			"{name}", "acme-bot-ci", "{repo}", "app").Replace(rt.Path)
		t.Run(strings.ReplaceAll(rt.Method+" "+rt.Path, "/", "_"), func(t *testing.T) {
			for _, body := range []string{`{"`, `{"no_such_field":1}`, `[]`} {
				before := a.Mark(t)
				res := admin.Do(rt.Method, path, body)
				if res.Status != http.StatusBadRequest {
					t.Errorf("%s %s with %s = %d, want 400: %s", rt.Method, path, body, res.Status, brief(res.Body))
				}
				before.Unchanged(t)
			}
		})
	}
}

// TestAPI_BadNames creates orgs, teams, projects, users and service
// accounts with names that could break paths, logs or terminals.
func TestAPI_BadNames(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	const (
		control = "must not contain control characters"
		shape   = "must be 1-40 lowercase letters"
	)
	names := []struct{ name, value, detail string }{
		{"NUL", "ac\x00me", control},
		{"newline", "ac\nme", control},
		{"escape sequence", "\x1b[31macme", control},
		{"delete", "acme\x7f", control},
		{"C1 control", "ac\u0085me", control},
		{"dot dot", "a..b", shape},
		{"parent path", "../acme", shape},
		{"absolute path", "/etc/passwd", shape},
		{"backslash path", `..\acme`, shape},
		{"200 characters", strings.Repeat("a", 200), shape},
		{"41 characters", strings.Repeat("a", 41), shape},
		{"upper case", "Acme", shape},
		{"space", "ac me", shape},
		{"leading dash", "-acme", shape},
		{"right-to-left override", "ac\u202eme", shape},
		{"empty", "", "must not be empty"},
	}
	kinds := []struct {
		kind, path, field string
		body              func(name string) any
	}{
		{"org", "/orgs", "name", func(n string) any { return httpapi.CreateOrgRequest{Name: n} }},
		{"team", "/orgs/acme/teams", "name", func(n string) any { return httpapi.CreateTeamRequest{Name: n} }},
		{"project", "/orgs/acme/projects", "name", func(n string) any { return httpapi.CreateProjectRequest{Name: n} }},
		{"user", "/users", "username", func(n string) any {
			return httpapi.CreateUserRequest{Username: n, Password: apptest.UserPassword}
		}},
		{"service account", "/orgs/acme/service-accounts", "name", func(n string) any {
			return httpapi.CreateServiceAccountRequest{Name: n, Role: "reader"}
		}},
	}
	for _, k := range kinds {
		for _, n := range names {
			t.Run(k.kind+" "+n.name, func(t *testing.T) {
				before := a.Mark(t)
				res := admin.Do("POST", httpapi.Prefix+k.path, k.body(n.value))
				wantProblem(t, res, http.StatusBadRequest, n.detail, k.field)
				before.Unchanged(t)
			})
		}
	}

	// Free text (display names, descriptions, token names) may hold
	// anything printable, but no control characters.
	texts := []struct {
		name, path, field string
		body              any
	}{
		{"org display name", "/orgs", "display_name", httpapi.CreateOrgRequest{Name: "globex", DisplayName: "Globex\x1b[2J"}},
		{"team description", "/orgs/acme/teams", "description", httpapi.CreateTeamRequest{Name: "devs", Description: "all\x00devs"}},
		{"project description", "/orgs/acme/projects", "description", httpapi.CreateProjectRequest{Name: "web", Description: "web\x07"}},
		{"user display name", "/users", "display_name", httpapi.CreateUserRequest{Username: "carol", DisplayName: "Carol\r\nAdmin", Password: apptest.UserPassword}},
		{"token name", "/user/tokens", "name", httpapi.CreateTokenRequest{Name: "ci\x00", Scopes: []string{"user:read"}}},
		{"sign-in token name", "/auth/login", "token_name", httpapi.LoginRequest{Username: "admin", Password: apptest.AdminPassword, TokenName: "cli\x1b[2J"}},
		{"sign-in token lifetime", "/auth/login", "expires_in", httpapi.LoginRequest{Username: "admin", Password: apptest.AdminPassword, ExpiresIn: "forever"}},
		{"sign-in token too short-lived", "/auth/login", "expires_in", httpapi.LoginRequest{Username: "admin", Password: apptest.AdminPassword, ExpiresIn: "30s"}},
		{"sign-in token too long-lived", "/auth/login", "expires_in", httpapi.LoginRequest{Username: "admin", Password: apptest.AdminPassword, ExpiresIn: "9000h"}},
		{"sign-in token scopes", "/auth/login", "scopes", httpapi.LoginRequest{Username: "admin", Password: apptest.AdminPassword, Scopes: []string{"root"}}},
		{"profile display name", "/user", "display_name", map[string]string{"display_name": "Admin\x08\x08"}},
		{"long display name", "/orgs", "display_name", httpapi.CreateOrgRequest{Name: "globex", DisplayName: strings.Repeat("G", 200)}},
	}
	for _, tt := range texts {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.path == "/user" {
				method = "PATCH"
			}
			before := a.Mark(t)
			res := admin.Do(method, httpapi.Prefix+tt.path, tt.body)
			if res.Status != http.StatusBadRequest {
				t.Fatalf("%s %s = %d, want 400: %s", method, tt.path, res.Status, brief(res.Body))
			}
			if p := problemOf(t, res); p.Field != tt.field {
				t.Errorf("field = %q, want %q (%s)", p.Field, tt.field, p.Detail)
			}
			before.Unchanged(t)
		})
	}
}
