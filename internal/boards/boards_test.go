package boards_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/boards"
)

func ptr[T any](v T) *T { return &v }

func TestService_NumbersPerOrg(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice := e.user(t, "alice")
		acme, globex := e.org(t, alice, "acme"), e.org(t, alice, "globex")
		ctx := as(t.Context(), alice)
		var got []string
		for _, o := range []struct {
			org   string
			title string
		}{{"acme", "one"}, {"acme", "two"}, {"globex", "first"}, {"acme", "three"}} {
			org := acme
			if o.org == "globex" {
				org = globex
			}
			w := e.item(t, ctx, org, boards.NewItem{Type: boards.TypeStory, Title: o.title})
			got = append(got, o.org+" "+w.Ref())
		}
		want := []string{"acme AB#1", "acme AB#2", "globex AB#1", "acme AB#3"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("numbers (-want +got):\n%s", diff)
		}
		// A deleted number is not reused.
		if err := e.svc.Delete(ctx, acme, 3); err != nil {
			t.Fatal(err)
		}
		if w := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeTask, Title: "four"}); w.Number != 4 {
			t.Errorf("after deleting AB#3 the next item is %s, want AB#4", w.Ref())
		}
		w := e.get(t, acme, 1)
		if w.State != boards.StateNew || w.Priority != boards.DefaultPriority || w.CreatedBy != "alice" {
			t.Errorf("defaults: state %s, priority %d, created by %q", w.State, w.Priority, w.CreatedBy)
		}
		if diff := cmp.Diff([]string{"workitem.create AB#1 by alice", "workitem.create AB#2 by alice", "workitem.create AB#1 by alice",
			"workitem.create AB#3 by alice", "workitem.delete AB#3 by alice", "workitem.create AB#4 by alice"}, e.auditActions(t, "workitem")); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

func TestService_Lifecycle(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice, bob := e.user(t, "alice"), e.user(t, "bob")
		acme := e.org(t, alice, "acme")
		if err := e.ids.SetMember(t.Context(), acme.ID, bob.ID, authz.Developer); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.CreateProject(t.Context(), acme.ID, "web", ""); err != nil {
			t.Fatal(err)
		}
		ctx := as(t.Context(), alice)
		epic := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeEpic, Title: "Sign-in"})
		story := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeStory, Title: "Passkeys", Parent: epic.Number,
			Assignee: "bob", Project: "web", Priority: 1, Description: "As a user\nI want passkeys."})
		if story.Assignee != "bob" || story.Project != "web" || story.Parent != epic.Number {
			t.Fatalf("story = %+v", story)
		}
		for _, step := range []struct {
			state            boards.State
			resolved, closed bool
		}{
			{boards.StateActive, false, false},
			{boards.StateResolved, true, false},
			{boards.StateClosed, true, true},
			{boards.StateActive, false, false}, // reopened
		} {
			e.clock.Advance(time.Hour)
			w, err := e.svc.Update(ctx, acme, story.Number, boards.Update{State: ptr(step.state)})
			if err != nil {
				t.Fatalf("move to %s: %v", step.state, err)
			}
			got := e.get(t, acme, story.Number)
			if got.State != step.state || !got.StateChangedAt.Equal(e.clock.Now()) || !w.UpdatedAt.Equal(e.clock.Now()) {
				t.Errorf("after moving to %s: state %s, changed at %v", step.state, got.State, got.StateChangedAt)
			}
			if !got.ResolvedAt.IsZero() != step.resolved || !got.ClosedAt.IsZero() != step.closed {
				t.Errorf("in %s: resolved at %v, closed at %v", step.state, got.ResolvedAt, got.ClosedAt)
			}
		}
		// Unassign, change the title; an update that changes nothing is
		// not audited.
		w, err := e.svc.Update(ctx, acme, story.Number, boards.Update{Assignee: ptr(""), Title: ptr("  Passkeys everywhere ")})
		if err != nil {
			t.Fatal(err)
		}
		if w.Assignee != "" || w.Title != "Passkeys everywhere" {
			t.Errorf("after update: assignee %q, title %q", w.Assignee, w.Title)
		}
		before := len(e.auditActions(t, "workitem"))
		if _, err := e.svc.Update(ctx, acme, story.Number, boards.Update{Title: ptr("Passkeys everywhere")}); err != nil {
			t.Fatal(err)
		}
		if after := len(e.auditActions(t, "workitem")); after != before {
			t.Errorf("a no-op update was audited (%d entries, was %d)", after, before)
		}
		// Deleting the epic orphans the story.
		if err := e.svc.Delete(ctx, acme, epic.Number); err != nil {
			t.Fatal(err)
		}
		if got := e.get(t, acme, story.Number); got.Parent != 0 {
			t.Errorf("story's parent after deleting the epic = %d", got.Parent)
		}
		_, err = e.svc.Get(t.Context(), acme, epic.Number)
		wantKind(t, err, apperr.NotFound)
	})
}

func TestService_Hierarchy(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice := e.user(t, "alice")
		acme, globex := e.org(t, alice, "acme"), e.org(t, alice, "globex")
		ctx := as(t.Context(), alice)
		epic := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeEpic, Title: "epic"})    // 1
		story := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeStory, Title: "story"}) // 2
		bug := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeBug, Title: "bug"})       // 3
		task := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeTask, Title: "task", Parent: story.Number})
		e.item(t, ctx, globex, boards.NewItem{Type: boards.TypeEpic, Title: "globex epic"})
		tests := []struct {
			name   string
			n      int64
			u      boards.Update
			errSub string
		}{
			{"epic under epic", epic.Number, boards.Update{Parent: ptr(epic.Number)}, "its own parent"},
			{"story under story", story.Number, boards.Update{Parent: ptr(story.Number)}, "its own parent"},
			{"task under epic", task.Number, boards.Update{Parent: ptr(epic.Number)}, "a task's parent must be a story or a bug, not a epic"},
			{"bug under task", bug.Number, boards.Update{Parent: ptr(task.Number)}, "a bug's parent must be an epic, not a task"},
			{"epic with a parent", epic.Number, boards.Update{Parent: ptr(story.Number)}, "an epic has no parent"},
			{"missing parent", story.Number, boards.Update{Parent: ptr(int64(99))}, "parent AB#99 not found in acme"},
			{"another org's number", story.Number, boards.Update{Parent: ptr(int64(5))}, "parent AB#5 not found in acme"},
			{"story with a task child becomes a task", story.Number, boards.Update{Type: ptr(boards.TypeTask)}, "its child AB#4 is a task"},
			{"task becomes an epic under a story", task.Number, boards.Update{Type: ptr(boards.TypeEpic)}, "an epic has no parent"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.svc.Update(ctx, acme, tt.n, tt.u)
				wantKind(t, err, apperr.Invalid)
				if !strings.Contains(apperr.Message(err), tt.errSub) {
					t.Errorf("message %q, want it to say %q", apperr.Message(err), tt.errSub)
				}
			})
		}
		// Allowed moves.
		if _, err := e.svc.Update(ctx, acme, story.Number, boards.Update{Parent: ptr(epic.Number)}); err != nil {
			t.Errorf("story under epic: %v", err)
		}
		if _, err := e.svc.Update(ctx, acme, task.Number, boards.Update{Parent: ptr(bug.Number)}); err != nil {
			t.Errorf("task under bug: %v", err)
		}
		if _, err := e.svc.Update(ctx, acme, story.Number, boards.Update{Type: ptr(boards.TypeBug)}); err != nil {
			t.Errorf("story becomes a bug under its epic: %v", err)
		}
		kids, err := e.svc.List(t.Context(), acme, boards.Filter{Parent: bug.Number})
		if err != nil || len(kids) != 1 || kids[0].Number != task.Number {
			t.Errorf("children of the bug = %v, %v", kids, err)
		}
	})
}

func TestService_BadInput(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice, mallory := e.user(t, "alice"), e.user(t, "mallory")
		acme := e.org(t, alice, "acme")
		e.org(t, mallory, "evil")
		ctx := as(t.Context(), alice)
		e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeEpic, Title: "keep"})
		tests := []struct {
			name  string
			in    boards.NewItem
			field string
		}{
			{"no type", boards.NewItem{Title: "x"}, "type"},
			{"unknown type", boards.NewItem{Type: "feature", Title: "x"}, "type"},
			{"empty title", boards.NewItem{Type: boards.TypeTask, Title: "   "}, "title"},
			{"control characters in title", boards.NewItem{Type: boards.TypeTask, Title: "a\x1b[31mred"}, "title"},
			{"newline in title", boards.NewItem{Type: boards.TypeTask, Title: "a\nb"}, "title"},
			{"title too long", boards.NewItem{Type: boards.TypeTask, Title: strings.Repeat("x", boards.MaxTitle+1)}, "title"},
			{"huge description", boards.NewItem{Type: boards.TypeTask, Title: "x", Description: strings.Repeat("d", boards.MaxDescription+1)}, "description"},
			{"control characters in description", boards.NewItem{Type: boards.TypeTask, Title: "x", Description: "ok\x00not"}, "description"},
			{"invalid UTF-8", boards.NewItem{Type: boards.TypeTask, Title: "x", Description: "\xff"}, "description"},
			{"unknown state", boards.NewItem{Type: boards.TypeTask, Title: "x", State: "done"}, "state"},
			{"priority too high", boards.NewItem{Type: boards.TypeTask, Title: "x", Priority: 5}, "priority"},
			{"negative priority", boards.NewItem{Type: boards.TypeTask, Title: "x", Priority: -1}, "priority"},
			{"assignee outside the org", boards.NewItem{Type: boards.TypeTask, Title: "x", Assignee: "mallory"}, "assignee"},
			{"unknown assignee", boards.NewItem{Type: boards.TypeTask, Title: "x", Assignee: "nobody"}, "assignee"},
			{"unknown project", boards.NewItem{Type: boards.TypeTask, Title: "x", Project: "nope"}, "project"},
			{"bad project name", boards.NewItem{Type: boards.TypeTask, Title: "x", Project: "../etc"}, "project"},
			{"negative parent", boards.NewItem{Type: boards.TypeTask, Title: "x", Parent: -3}, "parent"},
			{"unknown parent", boards.NewItem{Type: boards.TypeStory, Title: "x", Parent: 42}, "parent"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.svc.Create(ctx, acme, tt.in)
				wantKind(t, err, apperr.Invalid)
				if got := apperr.FieldOf(err); got != tt.field {
					t.Errorf("field = %q, want %q (%v)", got, tt.field, err)
				}
			})
		}
		items, err := e.svc.List(t.Context(), acme, boards.Filter{})
		if err != nil || len(items) != 1 {
			t.Errorf("after refused creations the org has %d items (%v), want 1", len(items), err)
		}
		if got := e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeTask, Title: "after"}); got.Number != 2 {
			t.Errorf("refused creations used numbers: next is %s", got.Ref())
		}
		// Unknown items.
		_, err = e.svc.Update(ctx, acme, 99, boards.Update{Title: ptr("x")})
		wantKind(t, err, apperr.NotFound)
		wantKind(t, e.svc.Delete(ctx, acme, 99), apperr.NotFound)
	})
}

func TestService_List(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice, bob := e.user(t, "alice"), e.user(t, "bob")
		acme := e.org(t, alice, "acme")
		if err := e.ids.SetMember(t.Context(), acme.ID, bob.ID, authz.Developer); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.CreateProject(t.Context(), acme.ID, "backend", ""); err != nil {
			t.Fatal(err)
		}
		ctx := as(t.Context(), alice)
		for _, in := range []boards.NewItem{
			{Type: boards.TypeBug, Title: "Crash on 100% load", Priority: 1, Assignee: "bob", Project: "backend"},
			{Type: boards.TypeStory, Title: "Dark mode", Priority: 3, State: boards.StateActive},
			{Type: boards.TypeTask, Title: "Write docs_v2", Priority: 2, Assignee: "alice"},
			{Type: boards.TypeBug, Title: "Typo", Priority: 4, State: boards.StateClosed},
		} {
			e.item(t, ctx, acme, in)
		}
		tests := []struct {
			name string
			f    boards.Filter
			want []int64
		}{
			{"everything in board order", boards.Filter{}, []int64{1, 3, 2, 4}},
			{"by state", boards.Filter{State: boards.StateActive}, []int64{2}},
			{"by type", boards.Filter{Type: boards.TypeBug}, []int64{1, 4}},
			{"by assignee", boards.Filter{Assignee: "bob"}, []int64{1}},
			{"unassigned", boards.Filter{Assignee: "none"}, []int64{2, 4}},
			{"unknown assignee", boards.Filter{Assignee: "zed"}, nil},
			{"by project", boards.Filter{Project: "backend"}, []int64{1}},
			{"by priority", boards.Filter{Priority: 3}, []int64{2}},
			{"title search, any case", boards.Filter{Query: "DARK"}, []int64{2}},
			{"title search with %", boards.Filter{Query: "100%"}, []int64{1}},
			{"title search with _", boards.Filter{Query: "s_v"}, []int64{3}},
			{"title search, % alone matches none", boards.Filter{Query: "%%"}, nil},
			{"limit", boards.Filter{Limit: 2}, []int64{1, 3}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				items, err := e.svc.List(t.Context(), acme, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, w := range items {
					got = append(got, w.Number)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("List(%+v) (-want +got):\n%s", tt.f, diff)
				}
			})
		}
		items, _ := e.svc.List(t.Context(), acme, boards.Filter{Assignee: "bob"})
		if len(items) == 1 && (items[0].Assignee != "bob" || items[0].Project != "backend") {
			t.Errorf("names not filled: %+v", items[0])
		}
	})
}

func TestParseFilter(t *testing.T) {
	for _, tt := range []struct {
		q     map[string]string
		field string
	}{
		{map[string]string{"state": "done"}, "state"},
		{map[string]string{"type": "feature"}, "type"},
		{map[string]string{"priority": "x"}, "priority"},
		{map[string]string{"priority": "9"}, "priority"},
		{map[string]string{"project": "../x"}, "project"},
		{map[string]string{"parent": "AB#"}, "parent"},
		{map[string]string{"q": "a\x00b"}, "q"},
		{map[string]string{"assignee": "a\nb"}, "assignee"},
		{map[string]string{"limit": "0"}, "limit"},
		{map[string]string{"limit": "100000"}, "limit"},
	} {
		_, err := boards.ParseFilter(func(k string) string { return tt.q[k] })
		if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != tt.field {
			t.Errorf("ParseFilter(%v) = %v (field %q), want invalid %s", tt.q, err, apperr.FieldOf(err), tt.field)
		}
	}
	f, err := boards.ParseFilter(func(k string) string {
		return map[string]string{"state": "Active", "type": "BUG", "priority": "1", "assignee": "none", "parent": "AB#3", "q": "x", "limit": "5"}[k]
	})
	want := boards.Filter{State: boards.StateActive, Type: boards.TypeBug, Priority: 1, Assignee: "none", Parent: 3, Query: "x", Limit: 5}
	if err != nil || f != want {
		t.Errorf("ParseFilter = %+v, %v; want %+v", f, err, want)
	}
}
