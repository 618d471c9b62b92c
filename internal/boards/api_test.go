package boards_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/problem"
)

const api = httpapi.Prefix + "/orgs/"

// world is a running app with org acme (owner alice; maintainer mia,
// developer dev and reader rita) and org globex (owner gus).
type world struct {
	a                                 *apptest.App
	admin, alice, mia, dev, rita, gus *apptest.Client
	tokens                            map[string]string // by username
}

func newWorld(t *testing.T, opts ...apptest.Option) *world {
	t.Helper()
	a := apptest.Start(t, opts...)
	admin := a.Client(t, a.AdminToken(t))
	w := &world{a: a, admin: admin, tokens: map[string]string{}}
	users := map[string]**apptest.Client{"alice": &w.alice, "mia": &w.mia, "dev": &w.dev, "rita": &w.rita, "gus": &w.gus}
	for name, c := range users {
		w.tokens[name] = a.CreateUser(t, admin, name)
		*c = a.Client(t, w.tokens[name])
	}
	w.alice.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	w.gus.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "globex"})
	for user, role := range map[string]string{"mia": "maintainer", "dev": "developer", "rita": "reader"} {
		w.alice.Must(http.StatusOK, "PUT", api+"acme/members/"+user, httpapi.RoleRequest{Role: role})
	}
	return w
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

func TestAPI_WorkItems(t *testing.T) {
	w := newWorld(t)
	var epic, story boards.WorkItemJSON
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "epic", Title: "Sign-in"}).Decode(t, &epic)
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "story", Title: "Passkeys",
		Parent: epic.Number, Assignee: "rita", Priority: 1, Description: "As a user\nI want passkeys."}).Decode(t, &story)
	if epic.Ref != "AB#1" || story.Ref != "AB#2" || story.State != "new" || story.Assignee != "rita" ||
		!strings.HasSuffix(story.URL, "/orgs/acme/workitems/2") || story.CreatedBy != "dev" {
		t.Fatalf("created %+v and %+v", epic, story)
	}

	// Readers read; they do not write.
	var list []boards.WorkItemJSON
	w.rita.Must(http.StatusOK, "GET", api+"acme/workitems?assignee=rita", nil).Decode(t, &list)
	if len(list) != 1 || list[0].Number != 2 {
		t.Errorf("rita's items = %+v", list)
	}
	mark := w.a.Mark(t)
	w.rita.Must(http.StatusForbidden, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "x"})
	w.rita.Must(http.StatusForbidden, "PATCH", api+"acme/workitems/2", map[string]any{"state": "active"})
	w.dev.Must(http.StatusForbidden, "DELETE", api+"acme/workitems/2", nil)
	// Another org's members see nothing of acme's board.
	w.gus.Must(http.StatusForbidden, "GET", api+"acme/workitems/1", nil)
	w.gus.Must(http.StatusForbidden, "PATCH", api+"acme/workitems/1", map[string]any{"title": "mine"})
	mark.Unchanged(t)

	// Move it across the board.
	var got boards.WorkItemJSON
	for _, st := range []string{"active", "resolved", "closed"} {
		w.dev.Must(http.StatusOK, "PATCH", api+"acme/workitems/AB%232", map[string]any{"state": st}).Decode(t, &got)
		if got.State != st {
			t.Fatalf("after moving to %s: %+v", st, got)
		}
	}
	if got.ResolvedAt == nil || got.ClosedAt == nil {
		t.Errorf("closed item without resolved and closed times: %+v", got)
	}
	w.dev.Must(http.StatusOK, "GET", api+"acme/workitems/1", nil).Decode(t, &got)
	if diff := cmp.Diff([]int64{2}, got.Children); diff != "" {
		t.Errorf("children of the epic (-want +got):\n%s", diff)
	}
	// Clear the assignee.
	got = boards.WorkItemJSON{}
	w.dev.Must(http.StatusOK, "PATCH", api+"acme/workitems/2", map[string]any{"assignee": ""}).Decode(t, &got)
	if got.Assignee != "" {
		t.Errorf("assignee after clearing = %q", got.Assignee)
	}
	w.mia.Must(http.StatusNoContent, "DELETE", api+"acme/workitems/1", nil)
	got = boards.WorkItemJSON{}
	w.dev.Must(http.StatusOK, "GET", api+"acme/workitems/2", nil).Decode(t, &got)
	if got.Parent != 0 {
		t.Errorf("parent after deleting it = %d", got.Parent)
	}
	w.dev.Must(http.StatusNotFound, "GET", api+"acme/workitems/1", nil)

	// Every change is in the org's audit log.
	var entries []httpapi.AuditEntry
	w.alice.Must(http.StatusOK, "GET", api+"acme/audit", nil).Decode(t, &entries)
	var actions []string
	for i := len(entries) - 1; i >= 0; i-- {
		if strings.HasPrefix(entries[i].Action, "workitem.") {
			actions = append(actions, entries[i].Action+" "+entries[i].TargetID+" "+entries[i].ActorName)
		}
	}
	want := []string{"workitem.create AB#1 dev", "workitem.create AB#2 dev", "workitem.update AB#2 dev", "workitem.update AB#2 dev",
		"workitem.update AB#2 dev", "workitem.update AB#2 dev", "workitem.delete AB#1 mia"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestAPI_WorkItemBadInput(t *testing.T) {
	w := newWorld(t)
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "keep"})
	w.gus.Must(http.StatusCreated, "POST", api+"globex/workitems", boards.CreateWorkItemRequest{Type: "epic", Title: "globex"})
	mark := w.a.Mark(t)
	head := mark.Head()
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		field  string
		detail string
	}{
		{"unknown field", "POST", "acme/workitems", `{"type":"bug","title":"x","owner":"me"}`, 400, "owner", "unknown field"},
		{"missing type", "POST", "acme/workitems", `{"title":"x"}`, 400, "type", "type is required"},
		{"control characters", "POST", "acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "a\u0007b"}, 400, "title", "control characters"},
		{"huge description", "POST", "acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "x", Description: strings.Repeat("x", 70000)}, 400, "description", "at most 65536 bytes"},
		{"body over the limit", "POST", "acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "x", Description: strings.Repeat("x", 2<<20)}, 413, "", "exceeds"},
		{"another org's parent", "POST", "acme/workitems", boards.CreateWorkItemRequest{Type: "story", Title: "x", Parent: 2}, 400, "parent", "parent AB#2 not found in acme"},
		{"assignee of another org", "POST", "acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "x", Assignee: "gus"}, 400, "assignee", "not a member of acme"},
		{"unknown number", "GET", "acme/workitems/99", nil, 404, "", "AB#99 not found in acme"},
		{"not a number", "GET", "acme/workitems/..%2Fetc", nil, 400, "number", "not a work item number"},
		{"zero", "PATCH", "acme/workitems/0", map[string]any{"title": "x"}, 400, "number", "not a work item number"},
		{"bad state", "PATCH", "acme/workitems/1", map[string]any{"state": "done"}, 400, "state", "unknown state"},
		{"wrong type of value", "PATCH", "acme/workitems/1", `{"priority":"high"}`, 400, "priority", "must be a whole number"},
		{"bad filter", "GET", "acme/workitems?state=wip", nil, 400, "state", "unknown state"},
		{"bad limit", "GET", "acme/workitems?limit=-1", nil, 400, "limit", "limit must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, w.dev.Do(tt.method, api+tt.path, tt.body), tt.status, tt.field, tt.detail)
		})
	}
	mark.Unchanged(t)
	for _, e := range w.a.AuditSince(t, head) {
		t.Errorf("refused request audited: %s %s", e.Action, e.TargetID)
	}
	var list []boards.WorkItemJSON
	w.dev.Must(http.StatusOK, "GET", api+"acme/workitems", nil).Decode(t, &list)
	if len(list) != 1 || list[0].Title != "keep" {
		t.Errorf("acme's items after refused requests: %+v", list)
	}
}

// TestAPI_LinksFromEvents publishes scm's events into the running app's
// bus, as scm does after a push and a pull request, and reads the links
// back through the API.
func TestAPI_LinksFromEvents(t *testing.T) {
	w := newWorld(t)
	for _, title := range []string{"one", "two", "three"} {
		w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: title})
	}
	ctx := t.Context()
	ev := boards.PushEvent{Repo: "acme/shop", RepoID: 11, Ref: "refs/heads/main", Before: sha1, After: sha2, DefaultBranch: true,
		Pusher: "dev", Commits: []boards.PushCommit{{ID: sha2, Message: "Fixes AB#1, refs AB#2"}}}
	for range 2 { // delivered twice: stored once
		if err := w.a.Events.PublishNow(ctx, boards.EventPush, ev); err != nil {
			t.Fatal(err)
		}
	}
	pr := boards.PullRequestEvent{Action: "opened", Repo: "acme/shop", RepoID: 11, Number: 4, Title: "Checkout AB#3", Base: "main",
		Head: "checkout", HeadSHA: sha3, Author: "dev"}
	if err := w.a.Events.PublishNow(ctx, boards.EventPullRequest, pr); err != nil {
		t.Fatal(err)
	}
	var got boards.WorkItemJSON
	waitFor(t, "AB#3 linked to pull request 4", func() bool {
		w.rita.Must(http.StatusOK, "GET", api+"acme/workitems/3", nil).Decode(t, &got)
		return len(got.Links) > 0
	})
	if got.Links[0].Kind != "pull_request" || got.Links[0].Ref != "4" || got.Links[0].Repo != "acme/shop" {
		t.Errorf("AB#3 links = %+v", got.Links)
	}
	got = boards.WorkItemJSON{}
	w.rita.Must(http.StatusOK, "GET", api+"acme/workitems/1", nil).Decode(t, &got)
	if got.State != "resolved" || len(got.Links) != 1 || !got.Links[0].Fixes || got.Links[0].Ref != sha2 {
		t.Errorf("AB#1 after Fixes on the default branch: state %s, links %+v", got.State, got.Links)
	}
	got = boards.WorkItemJSON{}
	w.rita.Must(http.StatusOK, "GET", api+"acme/workitems/2", nil).Decode(t, &got)
	if got.State != "new" || len(got.Links) != 1 || got.Links[0].Fixes {
		t.Errorf("AB#2 after a mention: state %s, links %+v", got.State, got.Links)
	}
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
