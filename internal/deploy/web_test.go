package deploy_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/httpapi"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values, want int) string {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %.600s", method, u, resp.StatusCode, want, b)
	}
	return string(b)
}

func signIn(t *testing.T, a *apptest.App, user string) *http.Client {
	t.Helper()
	b := a.Browser(t)
	form := fetch(t, b, "GET", a.URL+"/login", nil, http.StatusOK)
	m := csrfRE.FindStringSubmatch(form)
	if m == nil {
		t.Fatal("no CSRF token on the sign-in page")
	}
	fetch(t, b, "POST", a.URL+"/login", url.Values{"csrf_token": {m[1]}, "username": {user}, "password": {apptest.UserPassword}, "next": {"/"}},
		http.StatusSeeOther)
	return b
}

// TestPages_BoardReleaseApproval: the environments board says what runs
// where and shows the deployments waiting for approval; a maintainer
// approves with the form (its CSRF token checked), a reader sees no
// form and cannot post one; the release page shows the difference
// between two releases.
func TestPages_BoardReleaseApproval(t *testing.T) {
	a := apptest.Start(t, withPreDeployAudited(t))
	if a.NodeRuntime != nil {
		rt := a.NodeRuntime
		t.Cleanup(func() { a.Stop(t); _ = rt.StopAll(t.Context()) })
	}
	admin := a.Client(t, a.AdminToken(t))
	for _, u := range []string{"maria", "rita"} {
		a.CreateUser(t, admin, u)
	}
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", map[string]string{"name": "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", map[string]string{"name": "web"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/maria", map[string]string{"role": "maintainer"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/rita", map[string]string{"role": "reader"})
	p := httpapi.Prefix + "/orgs/acme/projects/web"
	admin.Must(http.StatusOK, "PUT", p+"/environments/production", deploy.EnvironmentSpec{Protection: deploy.Protection{RequiredApprovals: 1}})
	// The image's registry is a closed loopback port: nothing is pulled.
	for _, d := range []string{digest1, digest2} {
		admin.Must(http.StatusCreated, "POST", p+"/releases", map[string]any{"image": "127.0.0.1:9/acme/web", "digest": d,
			"source_commit": "abcdef1234", "source_branch": "main", "pull_request": 42, "work_items": []string{"WEB-9"}})
	}
	var dep deploy.Deployment
	admin.Must(http.StatusCreated, "POST", p+"/deployments", deploy.DeployRequest{Environment: "production", Release: 2, Reason: "launch"}).Decode(t, &dep)

	board := "/orgs/acme/projects/web/deploy"
	rita := signIn(t, a, "rita")
	page := fetch(t, rita, "GET", a.URL+board, nil, http.StatusOK)
	for _, want := range []string{`id="env-production"`, "nothing runs here yet", `id="pending-1"`, "awaiting_approval", "#2"} {
		if !strings.Contains(page, want) {
			t.Errorf("board lacks %q", want)
		}
	}
	if strings.Contains(page, `id="approve-1"`) {
		t.Error("a reader is shown the approval form")
	}
	csrf := csrfRE.FindStringSubmatch(fetch(t, rita, "GET", a.URL+"/deploy", nil, http.StatusOK))
	if csrf == nil {
		t.Fatal("no CSRF token on the deployments page")
	}
	fetch(t, rita, "POST", a.URL+board+"/deployments/1/approval", url.Values{"csrf_token": {csrf[1]}, "decision": {"approve"}}, http.StatusForbidden)

	maria := signIn(t, a, "maria")
	page = fetch(t, maria, "GET", a.URL+board, nil, http.StatusOK)
	if !strings.Contains(page, `id="approve-1"`) {
		t.Fatalf("the maintainer sees no approval form:\n%.2000s", page)
	}
	fetch(t, maria, "POST", a.URL+board+"/deployments/1/approval", url.Values{"decision": {"approve"}}, http.StatusForbidden)
	var got deploy.Deployment
	admin.Must(http.StatusOK, "GET", p+"/deployments/1", nil).Decode(t, &got)
	if got.State != deploy.StateAwaitingApproval || len(got.Approvals) != 0 {
		t.Fatalf("refused posts changed the deployment: %+v", got)
	}
	m := csrfRE.FindStringSubmatch(page)
	fetch(t, maria, "POST", a.URL+board+"/deployments/1/approval", url.Values{"csrf_token": {m[1]}, "decision": {"approve"}, "comment": {"ship it"}},
		http.StatusSeeOther)
	admin.Must(http.StatusOK, "GET", p+"/deployments/1", nil).Decode(t, &got)
	if got.State == deploy.StateAwaitingApproval || len(got.Approvals) != 1 || got.Approvals[0].User != "maria" || got.Approvals[0].Comment != "ship it" {
		t.Errorf("after the approval: %+v", got)
	}

	rel := fetch(t, rita, "GET", a.URL+board+"/releases/2", nil, http.StatusOK)
	for _, want := range []string{`id="diff"`, "<code>digest</code>", digest1, digest2, "#42", "WEB-9"} {
		if !strings.Contains(rel, want) {
			t.Errorf("release page lacks %q", want)
		}
	}
	fetch(t, rita, "GET", a.URL+"/orgs/acme/projects/nope/deploy", nil, http.StatusNotFound)
}
