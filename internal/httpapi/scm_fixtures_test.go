package httpapi_test

import (
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/scm"
)

// fixtureRepo is each org's repository ({repo} in paths), owned by the
// org directly.
const fixtureRepo = "app"

// restoreRepo re-creates the org's fixture repository, or resets the
// settings a call may have changed.
func (w *world) restoreRepo(t *testing.T, o identity.Org) {
	t.Helper()
	ctx := t.Context()
	r, err := w.a.SCM.Repo(ctx, o.Name, fixtureRepo)
	if apperr.Is(err, apperr.NotFound) {
		_, err = w.a.SCM.CreateRepo(ctx, o, scm.NewRepo{Name: fixtureRepo})
	} else if err == nil && (r.Public || r.Description != "" || r.DefaultBranch != "main") {
		desc, branch, public := "", "main", false
		_, err = w.a.SCM.UpdateRepo(ctx, r, scm.RepoUpdate{Description: &desc, DefaultBranch: &branch, Public: &public})
	}
	if err != nil {
		t.Fatalf("restore repository %s/%s: %v", o.Name, fixtureRepo, err)
	}
}
