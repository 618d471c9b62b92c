package app_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// namedBackend answers every request with its name.
func namedBackend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// gatewayGet sends GET path for host through the gateway.
func gatewayGet(t *testing.T, gw, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", gw+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitServed polls the gateway until host answers want (the routes of
// other replicas and of deleted projects arrive with the next poll).
func waitServed(t *testing.T, gw, host, want string, served bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := gatewayGet(t, gw, host, "/")
		if (body == want) == served {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s: got %q, want served by %s = %v", host, body, want, served)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func routeSpec(host, path, backend string) map[string]any {
	return map[string]any{"host": host, "path": path, "backends": []map[string]any{{"url": backend}}}
}

// orgOwner returns a client of a new user owning org and its project.
func orgOwner(t *testing.T, a *apptest.App, admin *apptest.Client, user, org, proj string) *apptest.Client {
	t.Helper()
	c := a.Client(t, a.CreateUser(t, admin, user))
	c.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: org, DisplayName: org})
	c.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/"+org+"/projects", httpapi.CreateProjectRequest{Name: proj})
	return c
}

func projectRoute(org, proj, name string) string {
	return httpapi.Prefix + "/orgs/" + org + "/projects/" + proj + "/gateway/routes/" + name
}

// The router prefers an exact host to a wildcard, so an exact name under
// another owner's wildcard (a project's, the site's, the config file's)
// would take that name from them: it is refused, as is a wildcard over
// another owner's names and a project wildcard over a top-level name.
func TestGatewayRouteCannotTakeNamesUnderAnotherOwnersWildcard(t *testing.T) {
	fileBackend := namedBackend(t, "file-backend")
	a, _ := startWithGatewayFile(t, "routes:\n  - name: corp\n    host: \"*.corp.test\"\n    backends: [{url: \""+fileBackend+"\"}]\n")
	admin := a.Client(t, a.AdminToken(t))
	gw := a.GatewayURL()
	victim := orgOwner(t, a, admin, "victim", "alpha", "web")
	evil := orgOwner(t, a, admin, "mallory", "evil", "x")
	vb, eb, sb := namedBackend(t, "victim-backend"), namedBackend(t, "evil-backend"), namedBackend(t, "site-backend")

	victim.Must(http.StatusOK, "PUT", projectRoute("alpha", "web", "app"), routeSpec("*.shop.test", "/", vb))
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/gateway/routes/sitewild", routeSpec("*.site.test", "/", sb))
	evil.Must(http.StatusOK, "PUT", projectRoute("evil", "x", "own"), routeSpec("login.evil.test", "/", eb))

	for _, h := range []string{"login.shop.test", "admin.site.test", "www.corp.test"} {
		r := evil.Must(http.StatusConflict, "PUT", projectRoute("evil", "x", strings.ReplaceAll(h, ".", "-")), routeSpec(h, "/other", eb))
		if !strings.Contains(string(r.Body), "taken") || strings.Contains(string(r.Body), "alpha") || strings.Contains(string(r.Body), "corp\"") {
			t.Errorf("PUT %s: the refusal should say the host is taken without naming its owner: %s", h, r.Body)
		}
	}
	// A wildcard over a name another owner holds, and one over a
	// top-level name.
	victim.Must(http.StatusConflict, "PUT", projectRoute("alpha", "web", "evilwild"), routeSpec("*.evil.test", "/", vb))
	evil.Must(http.StatusBadRequest, "PUT", projectRoute("evil", "x", "tld"), routeSpec("*.test", "/", eb))

	for h, want := range map[string]string{"login.shop.test": "victim-backend", "admin.site.test": "site-backend",
		"www.corp.test": "file-backend", "login.evil.test": "evil-backend"} {
		if st, body := gatewayGet(t, gw, h, "/other"); body != want {
			t.Errorf("GET %s -> %d %q, want %s", h, st, body, want)
		}
	}
	if _, body := gatewayGet(t, gw, "anything.test", "/"); body == "evil-backend" {
		t.Errorf("anything.test is served by a project's *.test")
	}
	// The owner of a wildcard may still route names under it, and the
	// site may claim what no project holds.
	victim.Must(http.StatusOK, "PUT", projectRoute("alpha", "web", "login"), routeSpec("login.shop.test", "/", vb))
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/gateway/routes/sitetld", routeSpec("*.test", "/", sb))
	admin.Must(http.StatusConflict, "PUT", httpapi.Prefix+"/gateway/routes/siteshop", routeSpec("x.shop.test", "/", sb))
}

// Two orgs claiming one host at the same time: one wins. PostgreSQL runs
// the two transactions concurrently (SQLite serialises writers).
func TestGatewayConcurrentHostClaimsHaveOneWinner(t *testing.T) {
	a := apptest.Start(t, apptest.WithStore(storetest.PostgresURL(t)))
	admin := a.Client(t, a.AdminToken(t))
	c1 := orgOwner(t, a, admin, "u1", "one", "p")
	c2 := orgOwner(t, a, admin, "u2", "two", "p")
	b1, b2 := namedBackend(t, "one"), namedBackend(t, "two")
	for i := 0; i < 40; i++ { // without the lock a few of 40 race through
		h1, h2 := fmt.Sprintf("race%d.test", i), fmt.Sprintf("race%d.test", i)
		if i%2 == 1 { // a wildcard against a name under it
			h1, h2 = fmt.Sprintf("*.race%d.test", i), fmt.Sprintf("www.race%d.test", i)
		}
		var wg sync.WaitGroup
		var s1, s2 int
		wg.Add(2)
		go func() {
			defer wg.Done()
			s1 = c1.Do("PUT", projectRoute("one", "p", fmt.Sprintf("r%d", i)), routeSpec(h1, "/a", b1)).Status
		}()
		go func() {
			defer wg.Done()
			s2 = c2.Do("PUT", projectRoute("two", "p", fmt.Sprintf("r%d", i)), routeSpec(h2, "/b", b2)).Status
		}()
		wg.Wait()
		if !(s1 == http.StatusOK && s2 == http.StatusConflict || s1 == http.StatusConflict && s2 == http.StatusOK) {
			t.Errorf("claims of %s and %s by two orgs answered %d and %d, want one 200 and one 409", h1, h2, s1, s2)
		}
	}
}

// Deleting a project, or its org, removes its routes: the gateway stops
// serving them, the removal is audited, and the host is free again. A
// site administrator can remove any stored route by its id.
func TestGatewayRoutesGoWithTheirProject(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	gw := a.GatewayURL()
	owner := orgOwner(t, a, admin, "olivia", "alpha", "web")
	b := namedBackend(t, "old-backend")
	owner.Must(http.StatusOK, "PUT", projectRoute("alpha", "web", "app"), routeSpec("app.alpha.test", "/", b))
	waitServed(t, gw, "app.alpha.test", "old-backend", true)

	mark := a.AuditHead(t)
	owner.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/orgs/alpha/projects/web", nil)
	waitServed(t, gw, "app.alpha.test", "old-backend", false)
	dels := audited(t, a, mark, "gateway.route.delete")
	if len(dels) != 1 || dels[0].Details["reason"] != "project.delete" || dels[0].TargetName != "alpha/web/app" {
		t.Errorf("route removal with the project: audit %+v", dels)
	}
	var list []map[string]any
	admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/gateway/routes", nil).Decode(t, &list)
	if len(list) != 0 {
		t.Errorf("routes left after the project's deletion: %v", list)
	}
	// A new project of the same name starts empty and may claim the host.
	owner.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/alpha/projects", httpapi.CreateProjectRequest{Name: "web"})
	owner.Must(http.StatusNotFound, "GET", projectRoute("alpha", "web", "app"), nil)
	owner.Must(http.StatusOK, "PUT", projectRoute("alpha", "web", "app"), routeSpec("app.alpha.test", "/", b))

	// Deleting the org removes its projects' routes.
	mark = a.AuditHead(t)
	owner.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/orgs/alpha", nil)
	waitServed(t, gw, "app.alpha.test", "old-backend", false)
	if dels := audited(t, a, mark, "gateway.route.delete"); len(dels) != 1 || dels[0].Details["reason"] != "org.delete" {
		t.Errorf("route removal with the org: audit %+v", dels)
	}

	// Any stored route by id, for site administrators only.
	other := orgOwner(t, a, admin, "bob", "beta", "svc")
	other.Must(http.StatusOK, "PUT", projectRoute("beta", "svc", "x"), routeSpec("x.beta.test", "/", b))
	admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/gateway/routes", nil).Decode(t, &list)
	if len(list) != 1 || list[0]["id"] == nil {
		t.Fatalf("route list: %v", list)
	}
	byID := fmt.Sprintf("%s/gateway/routes/by-id/%v", httpapi.Prefix, list[0]["id"])
	other.Must(http.StatusForbidden, "DELETE", byID, nil)
	admin.Must(http.StatusNoContent, "DELETE", byID, nil)
	other.Must(http.StatusNotFound, "GET", projectRoute("beta", "svc", "x"), nil)
	waitServed(t, gw, "x.beta.test", "old-backend", false)
}

// A config file gaining a route on a host a project holds is refused: the
// previous file routes stay, the refusal is audited, and route changes
// keep working for everyone.
func TestGatewayConfigFileClashKeepsPreviousRoutes(t *testing.T) {
	a, cfgFile := startWithGatewayFile(t, "routes: []\n")
	admin := a.Client(t, a.AdminToken(t))
	gw := a.GatewayURL()
	owner := orgOwner(t, a, admin, "olivia", "alpha", "web")
	other := orgOwner(t, a, admin, "bob", "beta", "svc")
	fb, pb := namedBackend(t, "file-backend"), namedBackend(t, "project-backend")
	owner.Must(http.StatusOK, "PUT", projectRoute("alpha", "web", "app"), routeSpec("www.example.test", "/", pb))

	mark := a.AuditHead(t)
	clash := "routes:\n  - name: www\n    host: www.example.test\n    backends: [{url: \"" + fb + "\"}]\n" +
		"  - name: other\n    host: other.example.test\n    backends: [{url: \"" + fb + "\"}]\n"
	if err := os.WriteFile(cfgFile, []byte(clash), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(audited(t, a, mark, "gateway.config.refused")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the clashing config file was not refused (no gateway.config.refused audit)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, body := gatewayGet(t, gw, "www.example.test", "/"); body != "project-backend" {
		t.Errorf("www.example.test -> %q, want the project's backend", body)
	}
	if _, body := gatewayGet(t, gw, "other.example.test", "/"); body == "file-backend" {
		t.Errorf("a route of the refused file is served")
	}
	r := other.Must(http.StatusOK, "PUT", projectRoute("beta", "svc", "x"), routeSpec("unrelated.test", "/", pb))
	if strings.Contains(string(r.Body), "alpha") {
		t.Errorf("another org's route shows in a tenant's answer: %s", r.Body)
	}
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/gateway/routes/s", routeSpec("site.test", "/", pb))

	// Once the clash is gone the file loads.
	fixed := strings.Replace(clash, "host: www.example.test", "host: www2.example.test", 1)
	if err := os.WriteFile(cfgFile, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	waitServed(t, gw, "other.example.test", "file-backend", true)
}

// startWithGatewayFile starts the app with a gateway config file holding
// content, and returns the app and the file's path.
func startWithGatewayFile(t *testing.T, content string) (*apptest.App, string) {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(cfgFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return apptest.Start(t, apptest.WithConfig(func(c *config.Config) { c.Gateway.ConfigFile = cfgFile })), cfgFile
}

// A project admin cannot point a route at the cloud's metadata service or
// another link-local address: the API refuses such a backend by address
// (and the gateway refuses to dial one a name resolves to), so instance
// credentials are not published through a route or probed by its health
// checks. A site that lists its own networks gets them refused too.
func TestGatewayRouteBackendDenyList(t *testing.T) {
	a := apptest.Start(t, apptest.WithConfig(func(c *config.Config) { c.Gateway.BackendDeny = "default,10.0.0.0/8" }))
	admin := a.Client(t, a.AdminToken(t))
	owner := orgOwner(t, a, admin, "owner", "alpha", "web")
	for _, backend := range []string{"http://169.254.169.254", "http://[fd00:ec2::254]/latest", "http://[::ffff:169.254.169.254]:80", "http://[64:ff9b::a9fe:a9fe]", "https://10.1.2.3:8443", "http://[64:ff9b::10.9.8.7]:8080"} {
		r := owner.Must(http.StatusBadRequest, "PUT", projectRoute("alpha", "web", "meta"), routeSpec("meta.shop.test", "/", backend))
		if !strings.Contains(string(r.Body), "deny list") {
			t.Errorf("PUT a route to %s: %s, want the deny list named", backend, r.Body)
		}
	}
	owner.Must(http.StatusOK, "PUT", projectRoute("alpha", "web", "app"), routeSpec("app.shop.test", "/", namedBackend(t, "app")))
	waitServed(t, a.GatewayURL(), "app.shop.test", "app", true)
}
