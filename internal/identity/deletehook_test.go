package identity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// Delete hooks run in the deleting transaction with the owner deleted; an
// error from one undoes the deletion.
func TestDeleteHooksRunInTheDeletion(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		bob := e.user(t, "bob")
		o := e.org(t, bob, "acme")
		p, err := e.ids.CreateProject(ctx, o.ID, "web", "")
		if err != nil {
			t.Fatal(err)
		}
		type call struct {
			org, project int64
			reason       string
		}
		var calls []call
		fail := errors.New("hook refused")
		var refuse bool
		e.ids.OnDelete(func(ctx context.Context, tx *store.Tx, orgID, projectID int64, reason string) error {
			calls = append(calls, call{orgID, projectID, reason})
			if refuse {
				return fail
			}
			return nil
		})

		refuse = true
		if err := e.ids.DeleteProject(as(ctx, bob), p); !errors.Is(err, fail) {
			t.Fatalf("DeleteProject with a failing hook: %v", err)
		}
		if _, err := e.ids.Project(ctx, o.ID, "web"); err != nil {
			t.Fatalf("the project is gone although its hook failed: %v", err)
		}
		refuse = false
		if err := e.ids.DeleteProject(as(ctx, bob), p); err != nil {
			t.Fatal(err)
		}
		_, err = e.ids.Project(ctx, o.ID, "web")
		wantKind(t, err, apperr.NotFound)
		if err := e.ids.DeleteOrg(as(ctx, bob), o.ID); err != nil {
			t.Fatal(err)
		}
		want := []call{{o.ID, p.ID, "project.delete"}, {o.ID, p.ID, "project.delete"}, {o.ID, 0, "org.delete"}}
		if len(calls) != len(want) {
			t.Fatalf("hook calls %+v, want %+v", calls, want)
		}
		for i := range want {
			if calls[i] != want[i] {
				t.Errorf("hook call %d: %+v, want %+v", i, calls[i], want[i])
			}
		}
	})
}
