package alerts_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/problem"
)

const api = httpapi.Prefix + "/orgs/"

// world is a running app that knows the repository acme/shop (a real bare
// repository), with org acme (owner alice, maintainer mia, developer dev,
// reader rita) and org globex (owner gus), and an advisory database.
type world struct {
	a                          *apptest.App
	repo                       *gitRepo
	alice, mia, dev, rita, gus *apptest.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	repos := &repoTable{repos: map[int64][2]string{}}
	w := &world{repo: newRepo(t)}
	repos.add(repoID, w.repo.Bare, "main")
	w.a = apptest.Start(t, apptest.WithRepos(repos))
	advisories(t, filepath.Join(w.a.DataDir, "advisories.db"))
	admin := w.a.Client(t, w.a.AdminToken(t))
	for name, c := range map[string]**apptest.Client{"alice": &w.alice, "mia": &w.mia, "dev": &w.dev, "rita": &w.rita, "gus": &w.gus} {
		*c = w.a.Client(t, w.a.CreateUser(t, admin, name))
	}
	w.alice.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	w.gus.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "globex"})
	for user, role := range map[string]string{"mia": "maintainer", "dev": "developer", "rita": "reader"} {
		w.alice.Must(http.StatusOK, "PUT", api+"acme/members/"+user, httpapi.RoleRequest{Role: role})
	}
	return w
}

// push publishes scm's push of commit to main, as scm does.
func (w *world) push(t *testing.T, commit string) {
	t.Helper()
	err := w.a.Events.PublishNow(t.Context(), boards.EventPush, boards.PushEvent{Repo: "acme/shop", RepoID: repoID,
		Ref: "refs/heads/main", Before: strings.Repeat("0", 40), After: commit, DefaultBranch: true, Pusher: "dev",
		Commits: []boards.PushCommit{{ID: commit, Message: "change"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// until polls the alerts of acme as dev until cond holds for them.
func (w *world) until(t *testing.T, what, query string, cond func([]alerts.AlertJSON) bool) []alerts.AlertJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var as []alerts.AlertJSON
		w.dev.Must(http.StatusOK, "GET", api+"acme/alerts"+query, nil).Decode(t, &as)
		if cond(as) {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; alerts: %+v", what, as)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func byKind(as []alerts.AlertJSON, kind string) (alerts.AlertJSON, bool) {
	for _, a := range as {
		if a.Kind == kind {
			return a, true
		}
	}
	return alerts.AlertJSON{}, false
}

func wantProblem(t *testing.T, r apptest.Response, status int, field, detail string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %d, want %d: %s", r.Status, status, r.Body)
		return
	}
	var p problem.Details
	r.Decode(t, &p)
	if p.Field != field || !strings.Contains(p.Detail, detail) {
		t.Errorf("problem field %q detail %q, want field %q and a detail saying %q", p.Field, p.Detail, field, detail)
	}
}

func TestAPI_Lifecycle(t *testing.T) {
	w := newWorld(t)
	c1 := w.repo.commit("main", "first", map[string]string{"config/prod.env": awsKey(11) + "\n", "go.mod": goMod("1.1.0")})
	w.push(t, c1)
	as := w.until(t, "secret and vulnerability alerts", "", func(as []alerts.AlertJSON) bool {
		_, s := byKind(as, "secret")
		_, v := byKind(as, "vulnerability")
		return s && v
	})
	secret, _ := byKind(as, "secret")
	vuln, _ := byKind(as, "vulnerability")
	if secret.Repo != "acme/shop" || secret.Path != "config/prod.env" || secret.Secret == "" || secret.State != "open" ||
		vuln.Package == nil || vuln.Package.Name != "example.com/vulnlib" || vuln.Package.FixedVersion != "1.2.0" {
		t.Fatalf("alerts: %+v and %+v", secret, vuln)
	}
	if strings.Contains(string(w.dev.Must(http.StatusOK, "GET", api+"acme/alerts", nil).Body), awsKey(11)[len("AWS_ACCESS_KEY_ID="):]) {
		t.Fatal("the API shows the whole secret")
	}
	sid, vid := fmt.Sprint(secret.ID), fmt.Sprint(vuln.ID)

	// Readers and other orgs see no alerts; developers do not dismiss.
	mark := w.a.Mark(t)
	w.rita.Must(http.StatusForbidden, "GET", api+"acme/alerts", nil)
	w.rita.Must(http.StatusForbidden, "GET", api+"acme/alerts/"+sid, nil)
	w.gus.Must(http.StatusForbidden, "GET", api+"acme/alerts/"+sid, nil)
	w.gus.Must(http.StatusNotFound, "GET", api+"globex/alerts/"+sid, nil)
	w.dev.Must(http.StatusForbidden, "POST", api+"acme/alerts/"+sid+"/dismiss", alerts.DismissRequest{Reason: "false_positive", Comment: "mine"})
	w.dev.Must(http.StatusForbidden, "POST", api+"acme/alerts/scan", alerts.ScanRequest{Repo: "shop"})
	// Bad input.
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/"+sid+"/dismiss", alerts.DismissRequest{Reason: "meh", Comment: "x"}), 400, "reason", "unknown dismissal reason")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/"+sid+"/dismiss", alerts.DismissRequest{Reason: "wont_fix"}), 400, "comment", "say why")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/"+sid+"/dismiss", alerts.DismissRequest{Reason: "wont_fix", Comment: strings.Repeat("x", 3000)}), 400, "comment", "at most 2000 bytes")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/"+sid+"/dismiss", `{"reason":"wont_fix","comment":"x","who":"me"}`), 400, "who", "unknown field")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/nope/dismiss", alerts.DismissRequest{Reason: "wont_fix", Comment: "x"}), 400, "id", "not an alert id")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/99999/reopen", nil), 404, "", "alert 99999 not found in acme")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/"+sid+"/reopen", nil), 409, "", "only dismissed alerts can be reopened")
	wantProblem(t, w.dev.Do("GET", api+"acme/alerts?state=closed", nil), 400, "state", "unknown alert state")
	wantProblem(t, w.dev.Do("GET", api+"acme/alerts?severity=dire", nil), 400, "severity", "unknown severity")
	wantProblem(t, w.mia.Do("POST", api+"acme/alerts/scan", alerts.ScanRequest{Repo: "nosuch"}), 404, "", "push to its default branch first")
	mark.Unchanged(t)

	// A maintainer dismisses the secret; the org's audit log says who,
	// why and which finding.
	var d alerts.AlertJSON
	w.mia.Must(http.StatusOK, "POST", api+"acme/alerts/"+sid+"/dismiss", alerts.DismissRequest{Reason: "used in tests", Comment: "a fixture"}).Decode(t, &d)
	if d.State != "dismissed" || d.Dismissal == nil || d.Dismissal.Reason != "used_in_tests" || d.Dismissal.By != "mia" || d.Dismissal.Comment != "a fixture" {
		t.Errorf("dismissed: %+v", d)
	}
	var entries []httpapi.AuditEntry
	w.alice.Must(http.StatusOK, "GET", api+"acme/audit", nil).Decode(t, &entries)
	if e := entries[0]; e.Action != "alert.dismiss" || e.ActorName != "mia" || e.TargetID != sid || e.Details["reason"] != "used_in_tests" ||
		e.Details["comment"] != "a fixture" || e.Details["fingerprint"] != secret.Fingerprint {
		t.Errorf("newest audit entry = %+v", e)
	}
	w.until(t, "only the vulnerability open", "", func(as []alerts.AlertJSON) bool { return len(as) == 1 && as[0].ID == vuln.ID })

	// A developer makes a work item of the vulnerability: linked both
	// ways, once.
	var wi alerts.WorkItemResponse
	w.dev.Must(http.StatusCreated, "POST", api+"acme/alerts/"+vid+"/workitem", alerts.WorkItemRequest{Assignee: "dev"}).Decode(t, &wi)
	if wi.WorkItem.Ref != "AB#1" || wi.WorkItem.Type != "bug" || wi.WorkItem.Assignee != "dev" || wi.Alert.WorkItem != "AB#1" {
		t.Errorf("work item from the alert: %+v", wi)
	}
	var item boards.WorkItemJSON
	w.rita.Must(http.StatusOK, "GET", api+"acme/workitems/1", nil).Decode(t, &item)
	if len(item.Links) != 1 || item.Links[0].Kind != "alert" || item.Links[0].Ref != vid || !strings.HasSuffix(item.Links[0].URL, "/orgs/acme/alerts/"+vid) {
		t.Errorf("the work item's links: %+v", item.Links)
	}
	w.dev.Must(http.StatusConflict, "POST", api+"acme/alerts/"+vid+"/workitem", alerts.WorkItemRequest{})
	w.rita.Must(http.StatusForbidden, "POST", api+"acme/alerts/"+vid+"/workitem", alerts.WorkItemRequest{})

	// Fixed by a later push; back with the one after.
	c2 := w.repo.commit("main", "upgrade", map[string]string{"go.mod": goMod("1.2.0")})
	w.push(t, c2)
	fixed := w.until(t, "the vulnerability fixed", "?state=fixed", func(as []alerts.AlertJSON) bool { return len(as) == 1 })
	if fixed[0].ID != vuln.ID || fixed[0].FixedCommit != c2 || fixed[0].FixedAt == nil {
		t.Errorf("fixed alert: %+v", fixed[0])
	}
	c3 := w.repo.commit("main", "downgrade", map[string]string{"go.mod": goMod("1.1.0")})
	w.push(t, c3)
	back := w.until(t, "the vulnerability reopened", "?kind=vulnerability", func(as []alerts.AlertJSON) bool { return len(as) == 1 })
	if back[0].ID != vuln.ID || back[0].Reopened != 1 || back[0].WorkItem != "AB#1" {
		t.Errorf("reopened alert: %+v", back[0])
	}
	var all []alerts.AlertJSON
	w.dev.Must(http.StatusOK, "GET", api+"acme/alerts?state=all&repo=shop", nil).Decode(t, &all)
	if len(all) != 2 {
		t.Errorf("all alerts of shop: %d", len(all))
	}

	// A maintainer rescans on demand: nothing new, audited.
	var res alerts.Result
	w.mia.Must(http.StatusOK, "POST", api+"acme/alerts/scan", alerts.ScanRequest{Repo: "acme/shop"}).Decode(t, &res)
	if res.Commit != c3 || res.Opened+res.Reopened+res.Fixed != 0 || res.Findings != 2 {
		t.Errorf("rescan = %+v", res)
	}
	w.alice.Must(http.StatusOK, "GET", api+"acme/audit", nil).Decode(t, &entries)
	if entries[0].Action != "alert.scan" || entries[0].ActorName != "mia" {
		t.Errorf("newest audit entry = %+v", entries[0])
	}

	// The overview.
	var ov alerts.OverviewJSON
	w.dev.Must(http.StatusOK, "GET", api+"acme/alerts/overview", nil).Decode(t, &ov)
	if ov.Open != 1 || ov.Dismissed != 1 || ov.Fixed != 0 || ov.BySeverity["high"] != 1 || len(ov.Oldest) != 1 || ov.Oldest[0].ID != vuln.ID ||
		len(ov.Repos) != 1 || ov.Repos[0].Open != 1 || ov.Repos[0].LastCommit != c3 || ov.ByAge[0].Total != 1 {
		t.Errorf("overview = %+v", ov)
	}

	// The pages.
	dev := signIn(t, w.a, "dev")
	p := dev.must(dev.get("/security"), http.StatusOK, "security index")
	if !strings.Contains(p.body, `href="/orgs/acme/security"`) {
		t.Error("the security index lacks acme")
	}
	p = dev.must(dev.get("/orgs/acme/security"), http.StatusOK, "overview page")
	if !regexp.MustCompile(`id="open-high"><span class="n">1</span>`).MatchString(p.body) || !strings.Contains(p.body, `href="/orgs/acme/alerts/`+vid+`"`) {
		t.Error("the overview page lacks the open high alert")
	}
	p = dev.must(dev.get("/orgs/acme/alerts?state=all"), http.StatusOK, "alert list")
	if !strings.Contains(p.body, `id="alert-`+sid+`"`) || !strings.Contains(p.body, `id="alert-`+vid+`"`) {
		t.Error("the alert list lacks an alert")
	}
	p = dev.must(dev.get("/orgs/acme/alerts/"+vid), http.StatusOK, "alert page")
	if !strings.Contains(p.body, `href="/orgs/acme/workitems/1">AB#1</a>`) || strings.Contains(p.body, `id="dismiss-form"`) {
		t.Error("the developer's alert page lacks the work item or offers dismissal")
	}
	dev.must(dev.submit("/orgs/acme/alerts/"+vid+"/dismiss", url.Values{"reason": {"wont_fix"}, "comment": {"x"}}), http.StatusForbidden, "developer dismisses")
	mia := signIn(t, w.a, "mia")
	p = mia.must(mia.get("/orgs/acme/alerts/"+vid), http.StatusOK, "maintainer's alert page")
	if !strings.Contains(p.body, `id="dismiss-form"`) {
		t.Error("the maintainer's alert page offers no dismissal")
	}
	p = mia.submit("/orgs/acme/alerts/"+vid+"/dismiss", url.Values{"reason": {"wont_fix"}, "comment": {""}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "say why the alert is dismissed") {
		t.Errorf("dismissal without a comment: %d", p.status)
	}
	p = mia.must(mia.submit("/orgs/acme/alerts/"+vid+"/dismiss", url.Values{"reason": {"wont_fix"}, "comment": {"accepted risk"}}),
		http.StatusSeeOther, "maintainer dismisses")
	p = mia.must(mia.get(p.location), http.StatusOK, "dismissed alert page")
	if !strings.Contains(p.body, "Won&#39;t fix by mia") || !strings.Contains(p.body, "accepted risk") {
		t.Error("the dismissed alert's page does not say who dismissed it and why")
	}
	mia.must(mia.submit("/orgs/acme/alerts/"+vid+"/reopen", url.Values{}), http.StatusSeeOther, "reopen")
	mia.must(mia.submit("/orgs/acme/security/scan", url.Values{"repo": {"acme/shop"}}), http.StatusSeeOther, "rescan from the page")
	rita := signIn(t, w.a, "rita")
	rita.must(rita.get("/orgs/acme/security"), http.StatusForbidden, "reader's overview")
	if p := rita.must(rita.get("/security"), http.StatusOK, "reader's index"); strings.Contains(p.body, `href="/orgs/acme/security"`) {
		t.Error("the reader's security index links acme")
	}
}

// browser is a web browser without JavaScript.
type browser struct {
	t    *testing.T
	a    *apptest.App
	c    *http.Client
	csrf string
}

type page struct {
	status   int
	location string
	body     string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.a.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if m := csrfMeta.FindSubmatch(raw); m != nil {
		b.csrf = html.UnescapeString(string(m[1]))
	}
	if res.StatusCode >= 500 {
		b.t.Errorf("%s %s = %d", method, path, res.StatusCode)
	}
	return page{status: res.StatusCode, location: res.Header.Get("Location"), body: string(raw)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil) }

func (b *browser) submit(path string, form url.Values) page {
	b.t.Helper()
	form.Set("csrf_token", b.csrf)
	return b.do("POST", path, form)
}

func (b *browser) must(p page, status int, what string) page {
	b.t.Helper()
	if p.status != status {
		b.t.Fatalf("%s: status %d (location %q), want %d:\n%s", what, p.status, p.location, status, p.body)
	}
	return p
}

func signIn(t *testing.T, a *apptest.App, username string) *browser {
	t.Helper()
	b := &browser{t: t, a: a, c: a.Browser(t)}
	b.must(b.get("/login"), http.StatusOK, "sign-in page")
	b.must(b.submit("/login", url.Values{"username": {username}, "password": {apptest.UserPassword}, "next": {"/"}}), http.StatusSeeOther, "sign in")
	return b
}
