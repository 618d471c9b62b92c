package boards_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/identity"
)

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
	sha3 = "3333333333333333333333333333333333333333"
)

// links describes an item's links as "kind repo ref [fixes]".
func (e *env) links(t *testing.T, o identity.Org, n int64) []string {
	t.Helper()
	w := e.get(t, o, n)
	ls, err := e.svc.Links(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		s := string(l.Kind) + " " + l.Repo + " " + l.Ref + " " + l.Title
		if l.Fixes {
			s += " [fixes]"
		}
		out = append(out, s)
	}
	return out
}

func push(repo string, id int64, def bool, commits ...boards.PushCommit) boards.PushEvent {
	ref := "refs/heads/feature"
	if def {
		ref = "refs/heads/main"
	}
	return boards.PushEvent{Repo: repo, RepoID: id, Ref: ref, Before: sha3, After: commits[len(commits)-1].ID,
		DefaultBranch: def, Pusher: "bob", Commits: commits}
}

func TestEvents_PushLinksAndResolves(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice := e.user(t, "alice")
		acme, globex := e.org(t, alice, "acme"), e.org(t, alice, "globex")
		ctx := as(t.Context(), alice)
		for range 3 {
			e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeBug, Title: "acme bug"})
		}
		e.item(t, ctx, globex, boards.NewItem{Type: boards.TypeBug, Title: "globex bug"}) // globex AB#1
		e.item(t, ctx, globex, boards.NewItem{Type: boards.TypeBug, Title: "globex bug"}) // globex AB#2
		e.item(t, ctx, globex, boards.NewItem{Type: boards.TypeBug, Title: "globex bug"}) // globex AB#3
		e.item(t, ctx, globex, boards.NewItem{Type: boards.TypeBug, Title: "globex bug"}) // globex AB#4

		// A feature branch: links, resolves nothing.
		feature := push("acme/api", 7, false,
			boards.PushCommit{ID: sha1, Message: "Start the login form AB#1\n\nSee also AB#404 (not ours)."},
			boards.PushCommit{ID: sha2, Message: "Fixes AB#2: validate input"})
		e.publish(t, boards.EventPush, feature)
		// Redelivered: nothing doubles.
		e.publish(t, boards.EventPush, feature)
		if got := e.get(t, acme, 2); got.State != boards.StateNew {
			t.Errorf("a fix on a feature branch moved AB#2 to %s", got.State)
		}
		// The same commits reach the default branch, with one more.
		e.publish(t, boards.EventPush, push("acme/api", 7, true,
			boards.PushCommit{ID: sha1, Message: "Start the login form AB#1\n\nSee also AB#404 (not ours)."},
			boards.PushCommit{ID: sha2, Message: "Fixes AB#2: validate input"},
			boards.PushCommit{ID: sha3, Message: "closes ab#3 and AB#4"}))

		if diff := cmp.Diff([]string{"commit acme/api " + sha1 + " Start the login form AB#1"}, e.links(t, acme, 1)); diff != "" {
			t.Errorf("AB#1 links (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"commit acme/api " + sha2 + " Fixes AB#2: validate input [fixes]"}, e.links(t, acme, 2)); diff != "" {
			t.Errorf("AB#2 links (-want +got):\n%s", diff)
		}
		for n, want := range map[int64]boards.State{1: boards.StateNew, 2: boards.StateResolved, 3: boards.StateResolved} {
			if got := e.get(t, acme, n).State; got != want {
				t.Errorf("AB#%d is %s, want %s", n, got, want)
			}
		}
		// acme's mentions never reach globex's items, nor acme items it
		// does not have.
		for n := int64(1); n <= 4; n++ {
			if ls := e.links(t, globex, n); len(ls) != 0 || e.get(t, globex, n).State != boards.StateNew {
				t.Errorf("globex AB#%d touched by acme's push: links %v", n, ls)
			}
		}
		if diff := cmp.Diff([]string{"workitem.create AB#1 by alice", "workitem.create AB#2 by alice", "workitem.create AB#3 by alice",
			"workitem.create AB#1 by alice", "workitem.create AB#2 by alice", "workitem.create AB#3 by alice", "workitem.create AB#4 by alice",
			"workitem.resolve AB#2 by bob", "workitem.resolve AB#3 by bob"}, e.auditActions(t, "workitem")); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}

		// Someone reopens AB#2; the push is delivered again (at least
		// once): the item stays reopened.
		if _, err := e.svc.Update(ctx, acme, 2, boards.Update{State: ptr(boards.StateActive)}); err != nil {
			t.Fatal(err)
		}
		e.publish(t, boards.EventPush, push("acme/api", 7, true, boards.PushCommit{ID: sha2, Message: "Fixes AB#2: validate input"}))
		if got := e.get(t, acme, 2).State; got != boards.StateActive {
			t.Errorf("a redelivered push moved the reopened AB#2 to %s", got)
		}
		// A closed item is not pulled back to resolved by a later fix.
		if _, err := e.svc.Update(ctx, acme, 1, boards.Update{State: ptr(boards.StateClosed)}); err != nil {
			t.Fatal(err)
		}
		e.publish(t, boards.EventPush, push("acme/api", 7, true, boards.PushCommit{ID: "4444444444444444444444444444444444444444", Message: "fix AB#1"}))
		if got := e.get(t, acme, 1).State; got != boards.StateClosed {
			t.Errorf("a fix moved closed AB#1 to %s", got)
		}
	})
}

func TestEvents_PullRequests(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice := e.user(t, "alice")
		acme := e.org(t, alice, "acme")
		ctx := as(t.Context(), alice)
		for range 3 {
			e.item(t, ctx, acme, boards.NewItem{Type: boards.TypeStory, Title: "story"})
		}
		e.repos.set(7, "main")
		pr := boards.PullRequestEvent{Action: "opened", Repo: "acme/api", RepoID: 7, Number: 5, Title: "Login form (AB#1)",
			Body: "Fixes AB#2.\r\nPart of AB#3.", Base: "main", Head: "feature", HeadSHA: sha1, Author: "carol",
			URL: "https://rampart.example/acme/api/pulls/5"}
		e.publish(t, boards.EventPullRequest, pr)
		e.publish(t, boards.EventPullRequest, pr)
		for n, want := range map[int64][]string{
			1: {"pull_request acme/api 5 Login form (AB#1)"},
			2: {"pull_request acme/api 5 Login form (AB#1) [fixes]"},
			3: {"pull_request acme/api 5 Login form (AB#1)"},
		} {
			if diff := cmp.Diff(want, e.links(t, acme, n)); diff != "" {
				t.Errorf("AB#%d links (-want +got):\n%s", n, diff)
			}
			if got := e.get(t, acme, n).State; got != boards.StateNew {
				t.Errorf("an opened pull request moved AB#%d to %s", n, got)
			}
		}
		w := e.get(t, acme, 1)
		ls, _ := e.svc.Links(t.Context(), w)
		if len(ls) != 1 || ls[0].URL != pr.URL {
			t.Errorf("link URL = %v", ls)
		}

		// Edited: the title now fixes AB#1 too; the link is updated, not
		// doubled.
		pr.Action, pr.Title = "edited", "Login form, fixes AB#1"
		e.publish(t, boards.EventPullRequest, pr)
		if diff := cmp.Diff([]string{"pull_request acme/api 5 Login form, fixes AB#1 [fixes]"}, e.links(t, acme, 1)); diff != "" {
			t.Errorf("AB#1 links after the edit (-want +got):\n%s", diff)
		}

		// Merged into another branch: nothing resolves.
		other := pr
		other.Action, other.Number, other.Base = "merged", 6, "release-1"
		e.publish(t, boards.EventPullRequest, other)
		if got := e.get(t, acme, 2).State; got != boards.StateNew {
			t.Errorf("a merge into release-1 moved AB#2 to %s", got)
		}
		// Merged into the default branch: the fixed items resolve.
		pr.Action, pr.MergeCommit = "merged", sha2
		e.publish(t, boards.EventPullRequest, pr)
		for n, want := range map[int64]boards.State{1: boards.StateResolved, 2: boards.StateResolved, 3: boards.StateNew} {
			if got := e.get(t, acme, n).State; got != want {
				t.Errorf("after the merge AB#%d is %s, want %s", n, got, want)
			}
		}
		actions := e.auditActions(t, "workitem")
		if diff := cmp.Diff([]string{"workitem.resolve AB#1 by carol", "workitem.resolve AB#2 by carol"}, actions[len(actions)-2:]); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

func TestEvents_BadEventsAreDropped(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		alice := e.user(t, "alice")
		acme := e.org(t, alice, "acme")
		e.item(t, as(t.Context(), alice), acme, boards.NewItem{Type: boards.TypeBug, Title: "bug"})
		huge := strings.Repeat("AB#1 ", 40000)
		for _, bad := range []struct {
			typ     string
			payload any
		}{
			{boards.EventPush, map[string]any{"repo": 42}},
			{boards.EventPush, "not an object"},
			{boards.EventPush, boards.PushEvent{Repo: "acme", RepoID: 7, Commits: []boards.PushCommit{{ID: sha1, Message: "AB#1"}}}},
			{boards.EventPush, boards.PushEvent{Repo: "../acme/x", RepoID: 7, Commits: []boards.PushCommit{{ID: sha1, Message: "AB#1"}}}},
			{boards.EventPush, boards.PushEvent{Repo: "nosuchorg/x", RepoID: 7, Commits: []boards.PushCommit{{ID: sha1, Message: "AB#1"}}}},
			{boards.EventPush, boards.PushEvent{Repo: "acme/x", RepoID: 0, Commits: []boards.PushCommit{{ID: sha1, Message: "AB#1"}}}},
			{boards.EventPush, boards.PushEvent{Repo: "acme/x", RepoID: 7, Commits: []boards.PushCommit{{ID: "../../etc", Message: "AB#1"}}}},
			{boards.EventPush, boards.PushEvent{Repo: "acme/x\x00", RepoID: 7, Commits: []boards.PushCommit{{ID: sha1, Message: "AB#1"}}}},
			{boards.EventPullRequest, boards.PullRequestEvent{Action: "opened", Repo: "acme/x", RepoID: 7, Number: -1, Title: "AB#1"}},
		} {
			e.publish(t, bad.typ, bad.payload)
		}
		if ls := e.links(t, acme, 1); len(ls) != 0 {
			t.Errorf("bad events linked AB#1: %v", ls)
		}
		// The subscriber goes on: a good event after the bad ones, with a
		// message far over the parser's limit and a control character in
		// its title, links once with a clean title.
		e.publish(t, boards.EventPush, push("acme/x", 7, false, boards.PushCommit{ID: sha1, Message: "AB#1 \x1b[31mred\x1b[0m " + huge}))
		ls := e.links(t, acme, 1)
		if len(ls) != 1 || strings.ContainsRune(ls[0], 0x1b) || len(ls[0]) > len("commit acme/x "+sha1+" ")+boards.MaxTitle {
			t.Errorf("links after a good event = %q", ls)
		}
	})
}
