package boards_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/boards"
)

// browser is a web browser without JavaScript: cookies, no redirects
// followed, and the CSRF token of the last page it got.
type browser struct {
	t    *testing.T
	a    *apptest.App
	c    *http.Client
	csrf string
}

type page struct {
	status   int
	location string
	header   http.Header
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
	return page{status: res.StatusCode, location: res.Header.Get("Location"), header: res.Header, body: string(raw)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil) }

// submit posts a form with the page's CSRF token.
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

// signIn returns a browser signed in as username.
func signIn(t *testing.T, a *apptest.App, username string) *browser {
	t.Helper()
	b := &browser{t: t, a: a, c: a.Browser(t)}
	b.must(b.get("/login"), http.StatusOK, "sign-in page")
	p := b.must(b.submit("/login", url.Values{"username": {username}, "password": {apptest.UserPassword}, "next": {"/"}}),
		http.StatusSeeOther, "sign in")
	if p.location != "/" {
		t.Fatalf("sign in as %s went to %q", username, p.location)
	}
	return b
}

// column returns the HTML of a board column.
func column(t *testing.T, body string, state boards.State) string {
	t.Helper()
	start := strings.Index(body, `id="col-`+string(state)+`"`)
	if start < 0 {
		t.Fatalf("no %s column on the board", state)
	}
	rest := body[start:]
	if end := strings.Index(rest, "</section>"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

func TestWeb_Board(t *testing.T) {
	w := newWorld(t)
	for _, in := range []boards.CreateWorkItemRequest{
		{Type: "bug", Title: "Crash <script>alert(1)</script>", Priority: 1, Assignee: "dev"},
		{Type: "story", Title: "Dark mode", State: "active"},
		{Type: "task", Title: "Write docs", State: "resolved"},
		{Type: "bug", Title: "Old bug", State: "closed"},
	} {
		w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", in)
	}
	dev := signIn(t, w.a, "dev")
	p := dev.must(dev.get("/orgs/acme/board"), http.StatusOK, "board")
	for n, st := range map[string]boards.State{"1": boards.StateNew, "2": boards.StateActive, "3": boards.StateResolved, "4": boards.StateClosed} {
		if col := column(t, p.body, st); !strings.Contains(col, `id="wi-`+n+`"`) {
			t.Errorf("AB#%s is not in the %s column", n, st)
		}
	}
	if strings.Contains(p.body, "<script>alert(1)") || !strings.Contains(p.body, "Crash &lt;script&gt;") {
		t.Error("a title is not escaped on the board")
	}
	if !strings.Contains(p.body, `draggable="true"`) || !strings.Contains(p.body, `/static/boards/board.js`) {
		t.Error("a developer's board has no drag-and-drop")
	}
	if c := p.header.Get("Content-Security-Policy"); strings.Contains(c, "unsafe-inline") || c == "" {
		t.Errorf("CSP = %q", c)
	}

	// Filters.
	p = dev.must(dev.get("/orgs/acme/board?type=bug&assignee=dev"), http.StatusOK, "filtered board")
	if !strings.Contains(p.body, `id="wi-1"`) || strings.Contains(p.body, `id="wi-4"`) || strings.Contains(p.body, `id="wi-2"`) {
		t.Error("filter type=bug&assignee=dev shows the wrong items")
	}
	p = dev.get("/orgs/acme/board?type=feature")
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "unknown work item type") {
		t.Errorf("a bad filter: status %d", p.status)
	}

	// Move AB#1 with the card's form (no script), keeping the filter.
	mark := w.a.Mark(t)
	dev.must(dev.do("POST", "/orgs/acme/workitems/1/move", url.Values{"state": {"active"}}), http.StatusForbidden, "move without CSRF token")
	mark.Unchanged(t)
	p = dev.must(dev.submit("/orgs/acme/workitems/1/move", url.Values{"state": {"active"}, "return": {"type=bug&assignee=dev"}}),
		http.StatusSeeOther, "move")
	if !strings.HasPrefix(p.location, "/orgs/acme/board?assignee=dev&type=bug") {
		t.Errorf("after a move the board is at %q", p.location)
	}
	p = dev.must(dev.get("/orgs/acme/board"), http.StatusOK, "board after the move")
	if !strings.Contains(column(t, p.body, boards.StateActive), `id="wi-1"`) {
		t.Error("AB#1 is not in the Active column after the move")
	}
	p = dev.submit("/orgs/acme/workitems/1/move", url.Values{"state": {"done"}})
	if p.status != http.StatusBadRequest && p.status != http.StatusUnprocessableEntity {
		t.Errorf("move to an unknown state = %d", p.status)
	}

	// Readers see the board without the means to change it; outsiders
	// do not see it.
	rita := signIn(t, w.a, "rita")
	p = rita.must(rita.get("/orgs/acme/board"), http.StatusOK, "reader's board")
	if strings.Contains(p.body, `draggable="true"`) || strings.Contains(p.body, `/move"`) || strings.Contains(p.body, "New work item") {
		t.Error("a reader's board offers changes")
	}
	rita.must(rita.submit("/orgs/acme/workitems/1/move", url.Values{"state": {"closed"}}), http.StatusForbidden, "reader moves")
	gus := signIn(t, w.a, "gus")
	gus.must(gus.get("/orgs/acme/board"), http.StatusForbidden, "outsider's board")
	gus.must(gus.get("/orgs/acme/workitems/1"), http.StatusForbidden, "outsider's item page")

	// The script and the stylesheet are served from Rampart.
	for file, ct := range map[string]string{"board.js": "text/javascript", "boards.css": "text/css"} {
		p := dev.must(dev.get("/static/boards/"+file), http.StatusOK, file)
		if !strings.HasPrefix(p.header.Get("Content-Type"), ct) {
			t.Errorf("%s served as %q", file, p.header.Get("Content-Type"))
		}
	}
	dev.must(dev.get("/static/boards/nope.js"), http.StatusNotFound, "missing static file")
	dev.must(dev.get("/static/boards/..%2Fboards.go"), http.StatusNotFound, "path outside the static files")
}

func TestWeb_ItemForms(t *testing.T) {
	w := newWorld(t)
	dev := signIn(t, w.a, "dev")
	dev.must(dev.get("/orgs/acme/workitems/new?type=epic"), http.StatusOK, "new item form")
	p := dev.must(dev.submit("/orgs/acme/workitems", url.Values{"type": {"epic"}, "title": {"Payments"}, "state": {"new"},
		"priority": {"2"}, "description": {"line one\r\nline two"}}), http.StatusSeeOther, "create")
	if p.location != "/orgs/acme/workitems/1?flash=AB%231+created." {
		t.Errorf("after creating: %q", p.location)
	}
	// A refused form shows what was typed with the reason.
	p = dev.submit("/orgs/acme/workitems", url.Values{"type": {"task"}, "title": {"Refund"}, "parent": {"1"}, "priority": {"2"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "a task&#39;s parent must be a story or a bug") ||
		!strings.Contains(p.body, `value="Refund"`) {
		t.Errorf("refused create: status %d", p.status)
	}
	p = dev.submit("/orgs/acme/workitems", url.Values{"type": {"story"}, "title": {"Refund"}, "parent": {"AB#1"}, "priority": {"high"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "priority must be a whole number") {
		t.Errorf("refused create with a bad priority: status %d", p.status)
	}
	dev.must(dev.submit("/orgs/acme/workitems", url.Values{"type": {"story"}, "title": {"Refund"}, "parent": {"AB#1"}, "priority": {"1"},
		"assignee": {"rita"}}), http.StatusSeeOther, "create a child")

	p = dev.must(dev.get("/orgs/acme/workitems/1"), http.StatusOK, "epic page")
	if !strings.Contains(p.body, "line one\nline two") || !strings.Contains(p.body, `href="/orgs/acme/workitems/2">AB#2</a>`) {
		t.Error("the epic's page lacks its description or its child")
	}
	// Edit: change the state and title of the story.
	dev.must(dev.submit("/orgs/acme/workitems/2", url.Values{"type": {"story"}, "title": {"Refunds"}, "state": {"active"},
		"priority": {"1"}, "assignee": {"rita"}, "parent": {"1"}}), http.StatusSeeOther, "update")
	var got boards.WorkItemJSON
	w.dev.Must(http.StatusOK, "GET", api+"acme/workitems/2", nil).Decode(t, &got)
	if got.Title != "Refunds" || got.State != "active" || got.Assignee != "rita" || got.Parent != 1 {
		t.Errorf("after the edit: %+v", got)
	}
	p = dev.submit("/orgs/acme/workitems/2", url.Values{"type": {"story"}, "title": {""}, "state": {"active"}, "priority": {"1"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "title must not be empty") {
		t.Errorf("refused edit: status %d", p.status)
	}
	dev.must(dev.get("/orgs/acme/workitems/99"), http.StatusNotFound, "unknown item page")
	dev.must(dev.get("/orgs/acme/workitems/x"), http.StatusNotFound, "not a number")
	// Only maintainers delete.
	dev.must(dev.submit("/orgs/acme/workitems/2/delete", url.Values{}), http.StatusForbidden, "developer deletes")
	mia := signIn(t, w.a, "mia")
	mia.must(mia.get("/orgs/acme/workitems/2"), http.StatusOK, "item page")
	mia.must(mia.submit("/orgs/acme/workitems/2/delete", url.Values{}), http.StatusSeeOther, "maintainer deletes")
	w.dev.Must(http.StatusNotFound, "GET", api+"acme/workitems/2", nil)

	// The boards index lists the org and what is assigned to the user.
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "Mine", Assignee: "dev"})
	p = dev.must(dev.get("/boards"), http.StatusOK, "boards index")
	if !strings.Contains(p.body, `href="/orgs/acme/board"`) || !strings.Contains(p.body, "acme AB#3") {
		t.Error("the boards index lacks the org or the assigned item")
	}
}
