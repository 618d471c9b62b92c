package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

var start = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	svc   *policy.Service
	ids   *identity.Service
	audit *audit.Log
	clock *fakeclock.Clock
	org   identity.Org
	dir   string
}

// newFixture runs a policy service on db with a policy directory (loaded
// after the library) and an org.
func newFixture(t testing.TB, db *store.DB, deps ...func(*policy.Deps)) *fixture {
	t.Helper()
	if err := db.Migrate(t.Context(), audit.Migrations, identity.Migrations, policy.Migrations); err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.OpenLocal(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: fakeclock.New(start), dir: t.TempDir()}
	f.audit = audit.New(db, f.clock.Now)
	if f.ids, err = identity.New(identity.Deps{DB: db, Audit: f.audit, Sealer: keys, Logger: logging.Discard(), Clock: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	u, err := f.ids.CreateUser(t.Context(), identity.NewUser{Username: "alice", Email: "alice@example.test", Password: "a-long-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	if f.org, err = f.ids.CreateOrg(t.Context(), u.ID, "acme", ""); err != nil {
		t.Fatal(err)
	}
	d := policy.Deps{DB: db, Audit: f.audit, IDs: f.ids, Logger: logging.Discard(), Clock: f.clock.Now,
		Sources: []policy.Source{policy.Dir{Path: f.dir}}, Settings: map[string]any{"rampart_registry": "rampart.example:8443"}}
	for _, fn := range deps {
		fn(&d)
	}
	if f.svc, err = policy.New(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.svc.Close)
	return f
}

func (f *fixture) write(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) audited(t *testing.T, action string) []audit.Entry {
	t.Helper()
	es, err := f.audit.List(t.Context(), audit.Filter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// release is a pre-deploy input; good says whether it passes the library.
func release(ref string, good bool) string {
	sig := `[{"key": "rampart", "verified": true}]`
	if !good {
		sig = `[]`
	}
	return fmt.Sprintf(`{"release": {"name": "web", "version": "1"}, "environment": {"name": "production", "protected": true},
	"images": [{"reference": %q, "digest": "sha256:00", "base_image": "", "scan": {"status": "scanned", "vulnerabilities": [], "secrets": []},
	"sbom": {"present": true}, "signatures": %s,
	"provenance": {"present": true, "verified": true, "builder": "rampart", "source": {"host": "rampart", "repository": "acme/web", "ref": "refs/heads/main", "protected": true}}}]}`, ref, sig)
}

const goodRef = "rampart.example:8443/acme/web@sha256:00"

func TestService_DecideRecordsEveryDecision(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := reqinfo.With(t.Context(), reqinfo.Info{ActorName: "deploy-bot", RequestID: "r1"})
		in := policy.Input{OrgID: f.org.ID, Subject: "release:web@1", Environment: "production", Document: release(goodRef, false)}
		d, err := f.svc.Decide(ctx, policy.GatePreDeploy, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow || d.ID == "" || d.Caller != "deploy-bot" || len(d.Deny) != 1 || d.Deny[0].Policy != "RMP-DEP-001" {
			t.Fatalf("decision = %+v", d)
		}
		in.Document = release(goodRef, true)
		ok, err := f.svc.Decide(ctx, policy.GatePreDeploy, in)
		if err != nil || !ok.Allow {
			t.Fatalf("good release: %+v, %v", ok, err)
		}
		// Dry runs are not recorded.
		if _, err := f.svc.Evaluate(ctx, policy.GatePreDeploy, in); err != nil {
			t.Fatal(err)
		}
		// Bad input is refused and not recorded.
		if _, err := f.svc.Decide(ctx, policy.GatePreDeploy, policy.Input{OrgID: f.org.ID, Subject: "x", Document: `{"release": 1}`}); apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("bad input: %v", err)
		}

		list, err := f.svc.Decisions(t.Context(), f.org.ID, policy.DecisionFilter{Subject: "release:web@1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != ok.ID || list[1].ID != d.ID {
			t.Fatalf("decisions = %d, want the two recorded, newest first", len(list))
		}
		got, err := f.svc.DecisionByID(t.Context(), f.org.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		d.OrgID = f.org.ID
		if diff := cmp.Diff(d, got); diff != "" {
			t.Errorf("stored decision (-decided +stored):\n%s", diff)
		}
		if got.Revision != f.svc.Engine().Revision() || got.InputDigest == "" || got.At != start {
			t.Errorf("stored revision %q, digest %q, time %v", got.Revision, got.InputDigest, got.At)
		}
		denied, _ := f.svc.Decisions(t.Context(), f.org.ID, policy.DecisionFilter{Outcome: "deny"})
		if len(denied) != 1 || denied[0].ID != d.ID {
			t.Errorf("deny filter: %d decisions", len(denied))
		}
		if _, err := f.svc.DecisionByID(t.Context(), f.org.ID+1, d.ID); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("another org's decision: %v", err)
		}
		if _, err := f.svc.Decisions(t.Context(), f.org.ID, policy.DecisionFilter{Outcome: "maybe"}); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("bad outcome filter: %v", err)
		}

		// Retention.
		f.clock.Advance(policy.DefaultRetention + time.Hour)
		if n, err := f.svc.PurgeDecisions(t.Context()); err != nil || n != 2 {
			t.Errorf("purge = %d, %v; want 2", n, err)
		}
	})
}

// TestService_ConcurrentDecisionsAreAllStored: many callers at once, one
// group-committed log, nothing lost.
func TestService_ConcurrentDecisionsAreAllStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := f.svc.Decide(t.Context(), policy.GatePreDeploy, policy.Input{OrgID: f.org.ID,
					Subject: fmt.Sprintf("release:web@%d", i), Document: release(goodRef, i%2 == 0)})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		list, err := f.svc.Decisions(t.Context(), f.org.ID, policy.DecisionFilter{Limit: 500})
		if err != nil || len(list) != n {
			t.Fatalf("stored %d decisions, %v; want %d", len(list), err, n)
		}
		denied, _ := f.svc.Decisions(t.Context(), f.org.ID, policy.DecisionFilter{Outcome: "deny", Limit: 500})
		if len(denied) != n/2 {
			t.Errorf("%d denials stored, want %d", len(denied), n/2)
		}
	})
}

func TestService_OrgExceptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := reqinfo.With(t.Context(), reqinfo.Info{ActorName: "alice"})
		in := policy.Input{OrgID: f.org.ID, Subject: "release:web@1", Environment: "production", Document: release(goodRef, false)}
		date := func(s string) exception.Date { d, _ := exception.ParseDate(s); return d }

		bad := []struct {
			name string
			e    exception.Exception
			want string
		}{
			{"no expiry", exception.Exception{ID: "RMP-DEP-001", Reason: "r"}, "needs an expiry date"},
			{"expired already", exception.Exception{ID: "RMP-DEP-001", Reason: "r", Expires: date("2026-11-24")}, "is in the past"},
			{"too far", exception.Exception{ID: "RMP-DEP-001", Reason: "r", Expires: date("2028-01-01")}, "more than 366 days ahead"},
			{"no reason", exception.Exception{ID: "RMP-DEP-001", Expires: date("2026-12-31")}, "needs a reason"},
			{"paths only", exception.Exception{Paths: []string{"**"}, Reason: "r", Expires: date("2026-12-31")}, "names a policy, rule or advisory id"},
		}
		for _, tt := range bad {
			if _, err := f.svc.AddException(ctx, f.org, tt.e); !apperr.Is(err, apperr.Invalid) || !strings.Contains(apperr.Message(err), tt.want) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
			}
		}
		if n := len(f.audited(t, "policy.exception")); n != 0 {
			t.Fatalf("refused exceptions audited %d times", n)
		}

		e, err := f.svc.AddException(ctx, f.org, exception.Exception{ID: "RMP-DEP-001", Image: "rampart.example:8443/acme/web",
			Environment: "prod*", Reason: "signing key rotation, ticket SEC-12", Expires: date("2026-12-01")})
		if err != nil {
			t.Fatal(err)
		}
		if e.Number == 0 || e.Owner != "alice" || e.Where() != fmt.Sprintf("org acme #%d", e.Number) {
			t.Errorf("stored exception = %+v", e)
		}
		d, err := f.svc.Decide(ctx, policy.GatePreDeploy, in)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allow || len(d.Excepted) != 1 || d.Excepted[0].Exception.Number != e.Number {
			t.Fatalf("with the exception: %+v", d)
		}
		// Another environment is out of its scope.
		staging := in
		staging.Environment = "staging"
		if d, _ := f.svc.Decide(ctx, policy.GatePreDeploy, staging); d.Allow {
			t.Error("the exception applied outside its environment")
		}

		list, err := f.svc.Exceptions(t.Context(), f.org.ID)
		if err != nil || len(list) != 1 || !list[0].Stored || list[0].Expired {
			t.Fatalf("exceptions = %+v, %v", list, err)
		}

		// After its day it stops applying, is reported, and is listed as expired.
		f.clock.Set(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
		d, err = f.svc.Decide(ctx, policy.GatePreDeploy, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow || len(d.Expired) != 1 || !strings.Contains(d.Message(), "expired on 2026-12-01 and no longer applies") {
			t.Errorf("after expiry: allow %v, expired %+v\n%s", d.Allow, d.Expired, d.Message())
		}
		list, _ = f.svc.Exceptions(t.Context(), f.org.ID)
		if len(list) != 1 || !list[0].Expired {
			t.Errorf("expired exception listed as %+v", list)
		}

		if err := f.svc.DeleteException(ctx, f.org, e.Number); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteException(ctx, f.org, e.Number); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("second delete: %v", err)
		}
		created, deleted := f.audited(t, "policy.exception.create"), f.audited(t, "policy.exception.delete")
		if len(created) != 1 || len(deleted) != 1 || created[0].ActorName != "alice" || created[0].Details["reason"] != "signing key rotation, ticket SEC-12" {
			t.Errorf("audit: created %+v, deleted %+v", created, deleted)
		}
	})
}

// repoExceptions stands in for source hosting's reading of repositories'
// .rampart/ignore.yaml files: a real file parsed by the real parser.
type repoExceptions struct{ list []exception.Exception }

func (r repoExceptions) Exceptions(context.Context, int64) ([]exception.Exception, error) {
	return r.list, nil
}

func TestService_RepositoryExceptions(t *testing.T) {
	list, err := exception.Parse("acme/web:.rampart/ignore.yaml", strings.NewReader(`suppressions:
  - id: RMP-DEP-001
    repository: acme/web
    reason: signed out of band until the pipeline moves
    expires: 2026-12-31
`), exception.KeySuppressions)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, storetest.OpenSQLite(t), func(d *policy.Deps) { d.Exceptions = repoExceptions{list} })
	in := policy.Input{OrgID: f.org.ID, Subject: "release:web@1", Repository: "acme/web", Document: release(goodRef, false)}
	if d, err := f.svc.Decide(t.Context(), policy.GatePreDeploy, in); err != nil || !d.Allow {
		t.Errorf("the repository's exception did not apply: %+v, %v", d, err)
	}
	in.Repository = "acme/api"
	if d, _ := f.svc.Decide(t.Context(), policy.GatePreDeploy, in); d.Allow {
		t.Error("the repository's exception applied to another repository")
	}
	all, _ := f.svc.Exceptions(t.Context(), f.org.ID)
	if len(all) != 1 || all[0].Stored || all[0].Where() != "acme/web:.rampart/ignore.yaml:2" {
		t.Errorf("listed = %+v", all)
	}
}

// TestService_Reload: a changed bundle takes over (audited with both
// revisions); a broken one is refused with its file and line while the
// previous revision stays in force.
func TestService_Reload(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	before := f.svc.Engine().Revision()
	if changed, err := f.svc.Reload(t.Context()); changed || err != nil {
		t.Fatalf("reload without change = %v, %v", changed, err)
	}
	f.write(t, "acme/owner.rego", `package rampart.gates.pre_deploy.owner

metadata := {"id": "ACME-DEP-1", "title": "Releases name an owner", "remediation": "Set release.owner."}

deny contains "the release names no owner" if not input.release.owner
`)
	changed, err := f.svc.Reload(t.Context())
	if err != nil || !changed {
		t.Fatalf("reload = %v, %v", changed, err)
	}
	after := f.svc.Engine().Revision()
	if after == before {
		t.Fatal("revision did not change")
	}
	d, err := f.svc.Decide(t.Context(), policy.GatePreDeploy, policy.Input{OrgID: f.org.ID, Subject: "release:web@1", Document: release(goodRef, true)})
	if err != nil || d.Allow || d.Deny[0].Policy != "ACME-DEP-1" || d.Revision != after {
		t.Fatalf("decision after reload: %+v, %v", d, err)
	}
	reloads := f.audited(t, "policy.reload")
	if len(reloads) != 1 || reloads[0].Details["revision"] != after || reloads[0].Details["previous"] != before {
		t.Errorf("audit = %+v", reloads)
	}

	f.write(t, "acme/broken.rego", "package rampart.gates.pre_deploy.broken\n\nmetadata := {\"id\": \"ACME-DEP-2\", \"title\": \"t\", \"remediation\": \"r\"}\n\ndeny contains x if {\n\tx := input.release.nme.\n}\n")
	if _, err := f.svc.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "acme/broken.rego:7") {
		t.Fatalf("broken bundle: %v", err)
	}
	if f.svc.Engine().Revision() != after {
		t.Error("a broken bundle replaced the revision in force")
	}
	st := f.svc.Status()
	if !strings.Contains(st.Error, "acme/broken.rego:7") || st.Revision != after {
		t.Errorf("status = %+v", st)
	}
	// Refused once in the audit log, however often it is retried.
	_, _ = f.svc.Reload(t.Context())
	if failed := f.audited(t, "policy.reload"); len(failed) != 2 || failed[0].Outcome != audit.Failure {
		t.Errorf("audit after refusals = %+v", failed)
	}
}

func TestNew_RefusesBrokenBundleAtStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package rampart.gates.image.p\n\ndeny contains 1 if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), audit.Migrations, identity.Migrations, policy.Migrations); err != nil {
		t.Fatal(err)
	}
	keys, _ := keyring.OpenLocal(filepath.Join(t.TempDir(), "k"))
	l := audit.New(db, nil)
	ids, _ := identity.New(identity.Deps{DB: db, Audit: l, Sealer: keys, Logger: logging.Discard()})
	_, err := policy.New(t.Context(), policy.Deps{DB: db, Audit: l, IDs: ids, Logger: logging.Discard(), Sources: []policy.Source{policy.Dir{Path: dir}}})
	if err == nil || !strings.Contains(err.Error(), dir+":p.rego:4") {
		t.Fatalf("New = %v", err)
	}
}
