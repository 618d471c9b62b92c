package policy_test

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
	"github.com/rampartsec/rampart/internal/policy"
)

// browser is a browser without JavaScript: cookies, no redirects
// followed, the CSRF token of the last page.
type browser struct {
	t    *testing.T
	a    *apptest.App
	c    *http.Client
	csrf string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

type page struct {
	status   int
	location string
	body     string
}

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
	data, _ := io.ReadAll(res.Body)
	if m := csrfMeta.FindSubmatch(data); m != nil {
		b.csrf = html.UnescapeString(string(m[1]))
	}
	if res.StatusCode >= 500 {
		b.t.Errorf("%s %s = %d:\n%s", method, path, res.StatusCode, data)
	}
	return page{status: res.StatusCode, location: res.Header.Get("Location"), body: string(data)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil) }

func (b *browser) submit(path string, form url.Values) page {
	b.t.Helper()
	form.Set("csrf_token", b.csrf)
	return b.do("POST", path, form)
}

func signIn(t *testing.T, a *apptest.App, user, password string) *browser {
	t.Helper()
	b := &browser{t: t, a: a, c: a.Browser(t)}
	b.get("/login")
	if p := b.submit("/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}}); p.status != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("sign in as %s: %d → %q", user, p.status, p.location)
	}
	return b
}

// TestPages_ExceptionsAndDecisions drives the policy pages as owners and
// readers do: one page lists every exception in force and the expired
// ones, owners add and delete through CSRF-protected forms, and a
// decision page says why and what to change.
func TestPages_ExceptionsAndDecisions(t *testing.T) {
	clock := apptest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	a := apptest.Start(t, apptest.WithClock(clock.Now))
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	a.CreateUser(t, admin, "bob")
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/bob", map[string]string{"role": "reader"})

	owner := signIn(t, a, "admin", apptest.AdminPassword)
	p := owner.get("/orgs/acme/exceptions")
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="no-exceptions"`) || !strings.Contains(p.body, `id="exception-form"`) {
		t.Fatalf("empty exceptions page: %d\n%s", p.status, p.body)
	}

	// Without the CSRF token nothing happens.
	if p := owner.do("POST", "/orgs/acme/exceptions", url.Values{"id": {"RMP-DEP-001"}, "reason": {"r"}, "expires": {"2026-12-01"}}); p.status != http.StatusForbidden {
		t.Errorf("form without CSRF token: %d", p.status)
	}
	// An expiry in the past is refused, and the form keeps what was typed.
	p = owner.submit("/orgs/acme/exceptions", url.Values{"id": {"RMP-DEP-001"}, "reason": {"key rotation"}, "expires": {"2026-11-01"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "expiry 2026-11-01 is in the past") || !strings.Contains(p.body, `value="key rotation"`) {
		t.Errorf("past expiry: %d\n%s", p.status, p.body)
	}
	var list []policy.ExceptionState
	admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/exceptions", nil).Decode(t, &list)
	if len(list) != 0 {
		t.Fatalf("refused forms stored exceptions: %+v", list)
	}

	p = owner.submit("/orgs/acme/exceptions", url.Values{"id": {"RMP-DEP-001"}, "environment": {"staging"}, "reason": {"key rotation SEC-12"},
		"expires": {"2026-12-01"}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.location, "flash=") {
		t.Fatalf("add: %d %q\n%s", p.status, p.location, p.body)
	}
	p = owner.get("/orgs/acme/exceptions")
	if !strings.Contains(p.body, `id="exceptions-in-force"`) || !strings.Contains(p.body, "RMP-DEP-001 in environment staging") ||
		!strings.Contains(p.body, "key rotation SEC-12") || !strings.Contains(p.body, "2026-12-01") {
		t.Errorf("in-force list:\n%s", p.body)
	}

	// A reader sees the list, not the forms, and cannot post.
	reader := signIn(t, a, "bob", apptest.UserPassword)
	p = reader.get("/orgs/acme/exceptions")
	if p.status != http.StatusOK || !strings.Contains(p.body, "key rotation SEC-12") || strings.Contains(p.body, `id="exception-form"`) || strings.Contains(p.body, "/delete") {
		t.Errorf("reader's page: %d\n%s", p.status, p.body)
	}
	if p := reader.submit("/orgs/acme/exceptions", url.Values{"id": {"RMP-DEP-002"}, "reason": {"r"}, "expires": {"2026-12-01"}}); p.status != http.StatusForbidden {
		t.Errorf("reader adding an exception: %d", p.status)
	}
	if p := reader.submit("/orgs/acme/exceptions/1/delete", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("reader deleting an exception: %d", p.status)
	}

	// A decision, recorded through the API, and its page.
	var d policy.Decision
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/policy/decisions", policy.DecideRequest{Gate: "pre-deploy",
		Subject: "release:web@2", Environment: "staging", Input: []byte(release("docker.io/acme/web:latest", false))}).Decode(t, &d)
	if d.Allow || len(d.Excepted) != 1 {
		t.Fatalf("decision = %+v", d)
	}
	p = reader.get("/orgs/acme/policy/decisions?subject=" + url.QueryEscape("release:web@2"))
	if p.status != http.StatusOK || !strings.Contains(p.body, "/orgs/acme/policy/decisions/"+d.ID) || !strings.Contains(p.body, "badge bad") {
		t.Errorf("decision log page: %d\n%s", p.status, p.body)
	}
	p = reader.get("/orgs/acme/policy/decisions/" + d.ID)
	for _, want := range []string{`id="decision-outcome">denied`, "Why it was denied, and what to change", "RMP-DEP-007",
		"Fix: Reference the image by its digest", "Set aside by exceptions", "key rotation SEC-12", d.Revision} {
		if !strings.Contains(p.body, html.EscapeString(want)) && !strings.Contains(p.body, want) {
			t.Errorf("decision page lacks %q", want)
		}
	}
	if p := reader.get("/orgs/acme/policy/decisions/dnope"); p.status != http.StatusNotFound {
		t.Errorf("unknown decision: %d", p.status)
	}

	// After its day the exception is listed as expired, not in force.
	clock.Set(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	owner = signIn(t, a, "admin", apptest.AdminPassword)
	p = owner.get("/orgs/acme/exceptions")
	if !strings.Contains(p.body, "Expired — no longer applied") || !strings.Contains(p.body, `id="no-exceptions"`) {
		t.Errorf("expired exception:\n%s", p.body)
	}
	p = owner.submit("/orgs/acme/exceptions/1/delete", url.Values{})
	if p.status != http.StatusSeeOther {
		t.Errorf("delete: %d\n%s", p.status, p.body)
	}
	admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/exceptions", nil).Decode(t, &list)
	if len(list) != 0 {
		t.Errorf("after delete: %+v", list)
	}

	// The overview lists the gates and their policies.
	p = owner.get("/policy")
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="gate-admission"`) || !strings.Contains(p.body, "RMP-ADM-003") ||
		!strings.Contains(p.body, "/orgs/acme/exceptions") {
		t.Errorf("overview: %d\n%s", p.status, p.body)
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") {
		t.Error("inline script or style on the overview (the CSP forbids them)")
	}
}
