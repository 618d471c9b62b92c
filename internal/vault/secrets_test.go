package vault_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/vault"
)

func TestSecrets_Lifecycle(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const ref = "acme/web/prod/DB_PASSWORD"
		sec, v1 := e.set(t, ref, "first-s3cret-value")
		if sec.CurrentVersion != 1 || v1.Version != 1 || sec.Owner != "olivia" || sec.Ref.String() != ref {
			t.Fatalf("first write: %+v %+v", sec, v1)
		}
		e.clock.Advance(60)
		_, v2 := e.set(t, ref, "second-s3cret-value")
		if v2.Version != 2 {
			t.Fatalf("second write is version %d", v2.Version)
		}

		// Default deny: even the org owner who wrote it reads nothing
		// without a policy, and the attempt is audited as denied.
		if _, err := e.read(t, reader(e.owner), ref, 0); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("read without a policy: %v", err)
		}
		denied := e.auditEntries(t, "vault.secret.read")
		if len(denied) != 1 || denied[0].Outcome != audit.Denied || denied[0].Details["on_behalf_of"] != "olivia" {
			t.Fatalf("denied read audited as %+v", denied)
		}

		e.grant(t, "web-prod", []string{"web/prod/*"}, "user:olivia")
		for _, tc := range []struct {
			version int
			want    string
		}{{0, "second-s3cret-value"}, {2, "second-s3cret-value"}, {1, "first-s3cret-value"}} {
			got, err := e.read(t, reader(e.owner), ref, tc.version)
			if err != nil || got != tc.want {
				t.Fatalf("read version %d = %q, %v; want %q", tc.version, got, err, tc.want)
			}
		}
		if _, err := e.read(t, reader(e.owner), ref, 9); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("read of a missing version: %v", err)
		}

		// Rollback writes version 1's value as version 3.
		_, v3, err := e.v.Rollback(e.as(ctx, e.owner), mustRef(t, ref), 1)
		if err != nil || v3.Version != 3 || v3.Reason != "rollback to 1" {
			t.Fatalf("rollback: %+v, %v", v3, err)
		}
		if got, _ := e.read(t, reader(e.owner), ref, 0); got != "first-s3cret-value" {
			t.Fatalf("after rollback the current value is %q", got)
		}

		// Rotation without a generator needs a value; with one it makes one.
		if _, _, err := e.v.Rotate(e.as(ctx, e.owner), mustRef(t, ref), nil); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("rotate without generator or value: %v", err)
		}
		gen := "random:32:hex"
		if _, _, err := e.v.Set(e.as(ctx, e.owner), mustRef(t, ref), vault.Write{Value: vault.NewValue([]byte("third")), Generator: &gen}); err != nil {
			t.Fatal(err)
		}
		sec, v5, err := e.v.Rotate(e.as(ctx, e.owner), mustRef(t, ref), nil)
		if err != nil || v5.Version != 5 || sec.RotatedAt.IsZero() {
			t.Fatalf("rotate: %+v %+v %v", sec, v5, err)
		}
		if got, _ := e.read(t, reader(e.owner), ref, 0); len(got) != 32 || strings.Trim(got, "0123456789abcdef") != "" {
			t.Fatalf("generated value %q is not 32 hex digits", got)
		}

		_, hist, err := e.v.History(ctx, mustRef(t, ref))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hist {
			got = append(got, fmt.Sprintf("%d %s %s", h.Version, h.Reason, h.CreatedBy))
		}
		want := []string{"5 rotate olivia", "4 set olivia", "3 rollback to 1 olivia", "2 set olivia", "1 set olivia"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("history (-want +got):\n%s", d)
		}

		// Soft delete and undelete, as KV does.
		if err := e.v.SetVersionsDeleted(e.as(ctx, e.owner), mustRef(t, ref), []int{2}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.read(t, reader(e.owner), ref, 2); !apperr.Is(err, apperr.NotFound) || !strings.Contains(err.Error(), "deleted") {
			t.Fatalf("read of a deleted version: %v", err)
		}
		if err := e.v.SetVersionsDeleted(e.as(ctx, e.owner), mustRef(t, ref), []int{2}, false); err != nil {
			t.Fatal(err)
		}
		if got, err := e.read(t, reader(e.owner), ref, 2); err != nil || got != "second-s3cret-value" {
			t.Fatalf("read after undelete: %q %v", got, err)
		}
		if err := e.v.DestroyVersions(e.as(ctx, e.owner), mustRef(t, ref), []int{2}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.read(t, reader(e.owner), ref, 2); !apperr.Is(err, apperr.NotFound) || !strings.Contains(err.Error(), "destroyed") {
			t.Fatalf("read of a destroyed version: %v", err)
		}

		// Values never reach the audit log.
		log := e.auditText(t)
		for _, secret := range []string{"first-s3cret-value", "second-s3cret-value"} {
			if strings.Contains(log, secret) {
				t.Errorf("the audit log contains a secret value")
			}
		}
		reads := e.auditEntries(t, "vault.secret.read")
		last := reads[len(reads)-2] // the last one read a destroyed version
		if last.Outcome != audit.Success || last.Details["policy"] != "web-prod" || last.Details["reader"] != "user olivia" || last.TargetName != ref {
			t.Errorf("read audited as %+v", last)
		}

		list, err := e.v.List(ctx, vault.Scope{Org: "acme", Project: "web", Env: "prod"})
		if err != nil || len(list) != 1 || list[0].Ref.Name != "DB_PASSWORD" || list[0].CurrentVersion != 5 {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if err := e.v.Delete(e.as(ctx, e.owner), mustRef(t, ref)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.v.Metadata(ctx, mustRef(t, ref)); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("metadata after delete: %v", err)
		}
	})
}

func TestSecrets_BadInput(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		big := strings.Repeat("x", vault.MaxValue+1)
		cas := 3
		tests := []struct {
			name string
			ref  string
			w    vault.Write
			kind apperr.Kind
		}{
			{"empty value", "acme/A", vault.Write{}, apperr.Invalid},
			{"too large", "acme/A", vault.Write{Value: vault.NewValue([]byte(big))}, apperr.TooLarge},
			{"json that is no object", "acme/A", vault.Write{Value: vault.NewValue([]byte(`[1]`)), Format: vault.FormatJSON}, apperr.Invalid},
			{"unknown format", "acme/A", vault.Write{Value: vault.NewValue([]byte(`x`)), Format: "yaml"}, apperr.Invalid},
			{"unknown org", "nope/A", vault.Write{Value: vault.NewValue([]byte("x"))}, apperr.NotFound},
			{"unknown project", "acme/nope/A", vault.Write{Value: vault.NewValue([]byte("x"))}, apperr.NotFound},
			{"cas on a new secret", "acme/A", vault.Write{Value: vault.NewValue([]byte("x")), CAS: &cas}, apperr.Conflict},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := e.auditText(t)
				_, _, err := e.v.Set(ctx, mustRef(t, tt.ref), tt.w)
				if apperr.KindOf(err) != tt.kind {
					t.Fatalf("Set = %v, want kind %v", err, tt.kind)
				}
				if e.auditText(t) != before {
					t.Errorf("a refused write changed the audit log")
				}
			})
		}
		for _, bad := range []string{"acme", "acme/", "/x", "acme/web/prod/extra/NAME", "ACME/x", "acme/web/PROD/x", "acme/-x", "acme/a b"} {
			if _, err := vault.ParseRef(bad); !apperr.Is(err, apperr.Invalid) {
				t.Errorf("ParseRef(%q) = %v, want invalid", bad, err)
			}
		}
	})
}

// TestSecrets_ConcurrentWrites: many writers at once, some on one secret,
// batched by the committer: every write lands, versions have no gaps.
func TestSecrets_ConcurrentWrites(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 40 {
			wg.Go(func() {
				ref := mustRef(t, fmt.Sprintf("acme/web/S%d", i%10))
				if _, _, err := e.v.Set(ctx, ref, vault.Write{Value: vault.NewValue(fmt.Appendf(nil, "value-%d", i))}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}
		for i := range 10 {
			_, hist, err := e.v.History(context.Background(), mustRef(t, fmt.Sprintf("acme/web/S%d", i)))
			if err != nil || len(hist) != 4 || hist[0].Version != 4 || hist[3].Version != 1 {
				t.Fatalf("S%d history = %+v, %v", i, hist, err)
			}
		}
		if n := len(e.auditEntries(t, "vault.secret")); n != 40 {
			t.Errorf("%d write audit entries, want 40", n)
		}
	})
}

// TestSecrets_ConcurrentWritesSomeFail: writes batched together where some
// fail (check-and-set conflicts on one secret): each failed write is
// undone alone, every other write of its batch lands.
func TestSecrets_ConcurrentWritesSomeFail(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		var (
			wg        sync.WaitGroup
			conflicts atomic.Int64
		)
		errs := make(chan error, 100)
		for i := range 60 {
			wg.Go(func() {
				w := vault.Write{Value: vault.NewValue(fmt.Appendf(nil, "value-%d", i))}
				ref := mustRef(t, fmt.Sprintf("acme/web/S%d", i%10))
				if i%3 == 0 {
					zero := 0 // create only: one of these 20 wins
					w.CAS, ref = &zero, mustRef(t, "acme/web/ONCE")
				}
				_, _, err := e.v.Set(ctx, ref, w)
				switch {
				case i%3 == 0 && apperr.Is(err, apperr.Conflict):
					conflicts.Add(1)
				case err != nil:
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}
		if n := conflicts.Load(); n != 19 {
			t.Errorf("%d check-and-set conflicts, want 19", n)
		}
		for i := range 10 {
			_, hist, err := e.v.History(context.Background(), mustRef(t, fmt.Sprintf("acme/web/S%d", i)))
			if err != nil || len(hist) != 4 || hist[0].Version != 4 || hist[3].Version != 1 {
				t.Fatalf("S%d history = %+v, %v", i, hist, err)
			}
		}
		if _, hist, err := e.v.History(context.Background(), mustRef(t, "acme/web/ONCE")); err != nil || len(hist) != 1 {
			t.Fatalf("ONCE history = %+v, %v", hist, err)
		}
		if n := len(e.auditEntries(t, "vault.secret")); n != 41 {
			t.Errorf("%d write audit entries, want 41", n)
		}
	})
}

// TestEnvelope_MovedCiphertext copies one secret's ciphertext and wrapped
// data key onto another secret, and onto another version of the same
// secret, behind the vault's back: neither decrypts, and the reader gets
// a clear error, never the moved plaintext.
func TestEnvelope_MovedCiphertext(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a, _ := e.set(t, "acme/web/A", "value-of-a")
		b, _ := e.set(t, "acme/web/B", "value-of-b")
		e.set(t, "acme/web/B", "value-of-b-2")
		e.grant(t, "all", []string{"*", "*/*", "*/*/*"}, "user:olivia")
		copyRow := func(fromID int64, fromV int, toID int64, toV int) {
			t.Helper()
			_, err := e.db.Exec(ctx, `UPDATE vault_versions SET ciphertext = (SELECT ciphertext FROM vault_versions WHERE secret_id = ? AND version = ?),
				wrapped_dek = (SELECT wrapped_dek FROM vault_versions WHERE secret_id = ? AND version = ?) WHERE secret_id = ? AND version = ?`,
				fromID, fromV, fromID, fromV, toID, toV)
			if err != nil {
				t.Fatal(err)
			}
		}
		copyRow(a.ID, 1, b.ID, 1) // another secret
		copyRow(b.ID, 2, b.ID, 1) // (overwrites) another version of the same secret
		copyRow(a.ID, 1, b.ID, 2)
		for _, v := range []int{1, 2} {
			got, err := e.read(t, reader(e.owner), "acme/web/B", v)
			if err == nil {
				t.Fatalf("moved ciphertext decrypted to %q", got)
			}
			if !strings.Contains(err.Error(), "does not unwrap") && !strings.Contains(err.Error(), "does not decrypt") {
				t.Errorf("error %q does not explain the failure", err)
			}
			if strings.Contains(apperr.Message(err), "value-of") {
				t.Errorf("error message shows a value")
			}
		}
		reads := e.auditEntries(t, "vault.secret.read")
		if last := reads[len(reads)-1]; last.Outcome != audit.Failure {
			t.Errorf("failed read audited as %s", last.Outcome)
		}
		if got, err := e.read(t, reader(e.owner), "acme/web/A", 1); err != nil || got != "value-of-a" {
			t.Fatalf("the untouched secret: %q, %v", got, err)
		}
	})
}

// TestEnvelope_CorruptOrWrongKey: a flipped bit in a ciphertext, and a
// vault started on another key-encryption key, fail with clear errors.
func TestEnvelope_CorruptOrWrongKey(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sec, _ := e.set(t, "acme/K", "the-value")
		e.grant(t, "all", []string{"*"}, "user:olivia")
		if _, err := e.db.Exec(ctx, "UPDATE vault_versions SET ciphertext = ? WHERE secret_id = ?", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}, sec.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.read(t, reader(e.owner), "acme/K", 0); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
			t.Fatalf("corrupted ciphertext: %v", err)
		}
		// Another keyring (a wrong or replaced key file): the vault does
		// not start, rather than serve garbage or plaintext.
		other, err := newRingIn(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vault.New(ctx, vault.Deps{DB: e.db, Audit: e.audit, IDs: e.ids, KEK: other, Logger: discard()}); err == nil ||
			!strings.Contains(err.Error(), "does not unwrap") {
			t.Fatalf("vault on a wrong key-encryption key: %v", err)
		}
		// The key file deleted: a new one is made at start, which opens
		// nothing sealed before; the vault refuses to start.
		if err := os.Remove(filepath.Join(e.keysDir, "master.key")); err != nil {
			t.Fatal(err)
		}
		fresh, err := newRingIn(e.keysDir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vault.New(ctx, vault.Deps{DB: e.db, Audit: e.audit, IDs: e.ids, KEK: fresh, Logger: discard()}); err == nil ||
			!strings.Contains(err.Error(), "does not unwrap") {
			t.Fatalf("vault after its key file was deleted: %v", err)
		}
	})
}

func TestPolicies_WhoReadsWhat(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dev := e.user(t, "dave")
		e.member(t, dev, authz.Developer)
		tm := e.user(t, "tess")
		e.member(t, tm, authz.Developer)
		team, err := e.ids.CreateTeam(e.as(ctx, e.owner), e.org.ID, "ops", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ids.AddTeamMember(e.as(ctx, e.owner), team, tm.ID); err != nil {
			t.Fatal(err)
		}
		other, err := e.ids.CreateOrg(e.as(ctx, e.owner), e.owner.ID, "globex", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.CreateProject(e.as(ctx, e.owner), other.ID, "web", ""); err != nil {
			t.Fatal(err)
		}
		e.set(t, "acme/web/prod/DB", "prod-db")
		e.set(t, "acme/web/staging/DB", "staging-db")
		e.set(t, "acme/web/API_KEY", "api-key")
		e.set(t, "acme/SHARED", "shared")
		e.grant(t, "pipelines", []string{"web/prod/*"}, "pipeline:web:main:prod", "pipeline:web:release/*:prod")
		e.grant(t, "staging", []string{"web/staging/*", "web/*"}, "pipeline:web:*:staging", "team:ops", "deployment:web:staging")
		e.grant(t, "dave", []string{"SHARED"}, "user:dave")

		pipe := func(branch, env string) vault.Reader {
			return vault.Reader{Pipeline: &vault.PipelineRun{Org: "acme", Project: "web", Branch: branch, Env: env, Run: "7", Job: "deploy", TriggeredBy: "dave"}}
		}
		tests := []struct {
			name string
			rd   vault.Reader
			ref  string
			ok   bool
		}{
			{"main pipeline to prod", pipe("main", "prod"), "acme/web/prod/DB", true},
			{"release branch to prod", pipe("release/1.2", "prod"), "acme/web/prod/DB", true},
			{"feature branch to prod", pipe("feature/x", "prod"), "acme/web/prod/DB", false},
			{"main pipeline, staging env, prod secret", pipe("main", "staging"), "acme/web/prod/DB", false},
			{"feature branch to staging", pipe("feature/x", "staging"), "acme/web/staging/DB", true},
			{"another org's pipeline of the same name", vault.Reader{Pipeline: &vault.PipelineRun{Org: "globex", Project: "web", Branch: "main", Env: "prod"}}, "acme/web/prod/DB", false},
			{"team member", reader(tm), "acme/web/staging/DB", true},
			{"team member, project secret", reader(tm), "acme/web/API_KEY", true},
			{"team member, prod", reader(tm), "acme/web/prod/DB", false},
			{"developer without grant", reader(dev), "acme/web/staging/DB", false},
			{"developer with grant", reader(dev), "acme/SHARED", true},
			{"staging deployment", vault.Reader{Deployment: &vault.DeploymentRun{Org: "acme", Project: "web", Env: "staging", Release: "r1"}}, "acme/web/staging/DB", true},
			{"prod deployment", vault.Reader{Deployment: &vault.DeploymentRun{Org: "acme", Project: "web", Env: "prod", Release: "r1"}}, "acme/web/prod/DB", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.read(t, tt.rd, tt.ref, 0)
				if tt.ok && err != nil {
					t.Fatalf("read refused: %v", err)
				}
				if !tt.ok && !apperr.Is(err, apperr.Forbidden) {
					t.Fatalf("read = %v, want forbidden", err)
				}
			})
		}
		// Taking dave's policy away takes his access away at once.
		if err := e.v.DeletePolicy(e.as(ctx, e.owner), "acme", "dave"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.read(t, reader(dev), "acme/SHARED", 0); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("read after the policy was deleted: %v", err)
		}
		// The audit log names the pipeline and whom it ran for.
		var found bool
		for _, en := range e.auditEntries(t, "vault.secret.read") {
			if strings.HasPrefix(fmt.Sprint(en.Details["reader"]), "pipeline acme/web branch main env prod run 7") && en.Details["on_behalf_of"] == "dave" {
				found = true
			}
		}
		if !found {
			t.Error("no audit entry names the pipeline run and its user")
		}
	})
}

func TestPolicies_BadInput(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		tests := []struct {
			name string
			p    vault.NewPolicy
		}{
			{"bad name", vault.NewPolicy{Name: "Bad Name", Secrets: []string{"*"}, Subjects: []string{"user:olivia"}}},
			{"no secrets", vault.NewPolicy{Name: "p", Subjects: []string{"user:olivia"}}},
			{"no subjects", vault.NewPolicy{Name: "p", Secrets: []string{"*"}}},
			{"bad pattern", vault.NewPolicy{Name: "p", Secrets: []string{"a/b/c/d"}, Subjects: []string{"user:olivia"}}},
			{"broken glob", vault.NewPolicy{Name: "p", Secrets: []string{"[x"}, Subjects: []string{"user:olivia"}}},
			{"unknown user", vault.NewPolicy{Name: "p", Secrets: []string{"*"}, Subjects: []string{"user:nobody"}}},
			{"unknown team", vault.NewPolicy{Name: "p", Secrets: []string{"*"}, Subjects: []string{"team:nobody"}}},
			{"unknown project", vault.NewPolicy{Name: "p", Secrets: []string{"*"}, Subjects: []string{"pipeline:nope:main:prod"}}},
			{"short pipeline", vault.NewPolicy{Name: "p", Secrets: []string{"*"}, Subjects: []string{"pipeline:web:main"}}},
			{"unknown kind", vault.NewPolicy{Name: "p", Secrets: []string{"*"}, Subjects: []string{"robot:x"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := e.v.PutPolicy(ctx, "acme", tt.p); !apperr.Is(err, apperr.Invalid) {
					t.Fatalf("PutPolicy = %v, want invalid", err)
				}
			})
		}
		if ps, err := e.v.Policies(context.Background(), "acme"); err != nil || len(ps) != 0 {
			t.Fatalf("policies after refused puts: %+v %v", ps, err)
		}
	})
}

func TestValue_NeverPrints(t *testing.T) {
	v := vault.NewValue([]byte("hunter2-super-secret"))
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %s %q %x %#v %+v", v, v, v, v, v, v), fmt.Sprint(struct{ V vault.Value }{v})} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "68756e74") {
			t.Errorf("formatted value shows the secret: %s", s)
		}
	}
	b, err := jsonMarshal(struct{ V vault.Value }{v})
	if err != nil || strings.Contains(string(b), "hunter2") {
		t.Errorf("JSON shows the secret: %s %v", b, err)
	}
	var logged strings.Builder
	slogTo(&logged).Info("x", "value", v)
	if strings.Contains(logged.String(), "hunter2") || !strings.Contains(logged.String(), "[redacted]") {
		t.Errorf("log line: %s", logged.String())
	}
	if string(v.Reveal()) != "hunter2-super-secret" {
		t.Error("Reveal lost the value")
	}
}

// TestSecrets_ResolvedScopesFollowIdentity: scopes are resolved to org and
// project ids through a cache; a project deleted and created again under
// the same name is the new project on the very next call, and its old
// secrets are gone.
func TestSecrets_ResolvedScopesFollowIdentity(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		e.grant(t, "all", []string{"*/*"}, "user:olivia")
		e.set(t, "acme/web/OLD", "old-value")
		if got, err := e.read(t, reader(e.owner), "acme/web/OLD", 0); err != nil || got != "old-value" {
			t.Fatalf("read before: %q, %v", got, err)
		}
		if err := e.ids.DeleteProject(ctx, e.project); err != nil {
			t.Fatal(err)
		}
		p, err := e.ids.CreateProject(ctx, e.org.ID, "web", "")
		if err != nil || p.ID == e.project.ID {
			t.Fatalf("recreate project: %+v, %v", p, err)
		}
		if _, err := e.read(t, reader(e.owner), "acme/web/OLD", 0); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("secret of the deleted project: err = %v, want not found", err)
		}
		sec, _ := e.set(t, "acme/web/NEW", "new-value")
		if got, err := e.read(t, reader(e.owner), "acme/web/NEW", 0); err != nil || got != "new-value" || sec.CurrentVersion != 1 {
			t.Fatalf("read in the new project: %q, %v (version %d)", got, err, sec.CurrentVersion)
		}
		var pid int64
		if err := e.db.QueryRow(context.Background(), "SELECT project_id FROM vault_secrets WHERE id = ?", sec.ID).Scan(&pid); err != nil || pid != p.ID {
			t.Fatalf("NEW stored under project %d (%v), want %d", pid, err, p.ID)
		}
	})
}

// TestSecrets_ConcurrentReadsAndWrites: audited reads and writes committed
// together by whichever request leads each group commit, some of them
// from requests whose context ends while they wait. Every read that
// returned a value has its audit entry, in one chain that verifies, and
// every write that succeeded is in the history.
func TestSecrets_ConcurrentReadsAndWrites(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.set(t, "acme/web/R", "read-me")
		e.grant(t, "readers", []string{"web/R"}, "user:olivia")
		var (
			wg            sync.WaitGroup
			reads, writes atomic.Int64
		)
		for i := range 80 {
			wg.Go(func() {
				ctx := e.as(context.Background(), e.owner)
				if i%7 == 0 {
					c, cancel := context.WithCancel(ctx)
					time.AfterFunc(time.Duration(i%3)*time.Millisecond, cancel)
					ctx = c
				}
				if i%4 == 0 {
					if _, _, err := e.v.Set(ctx, mustRef(t, fmt.Sprintf("acme/web/W%d", i%5)), vault.Write{Value: vault.NewValue(fmt.Appendf(nil, "v%d", i))}); err == nil {
						writes.Add(1)
					} else if i%7 != 0 {
						t.Errorf("write %d: %v", i, err)
					}
					return
				}
				val, _, _, err := e.v.Read(ctx, reader(e.owner), mustRef(t, "acme/web/R"), 0)
				switch {
				case err == nil && string(val.Reveal()) == "read-me":
					reads.Add(1)
				case err == nil:
					t.Errorf("read %d returned %q", i, val.Reveal())
				case i%7 != 0:
					t.Errorf("read %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if got := int64(len(e.auditEntries(t, "vault.secret.read"))); got < reads.Load() {
			t.Errorf("%d read audit entries for %d reads that returned the value", got, reads.Load())
		}
		var versions int64
		for i := range 5 {
			_, hist, err := e.v.History(context.Background(), mustRef(t, fmt.Sprintf("acme/web/W%d", i)))
			if err != nil && !apperr.Is(err, apperr.NotFound) {
				t.Fatal(err)
			}
			versions += int64(len(hist))
		}
		if versions != writes.Load() {
			t.Errorf("%d versions written for %d successful writes", versions, writes.Load())
		}
		rep, err := e.audit.Verify(context.Background())
		if err != nil || !rep.OK() {
			t.Fatalf("audit chain: %+v, %v", rep, err)
		}
	})
}
