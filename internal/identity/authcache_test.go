package identity_test

import (
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
)

// A verified token is cached, but every change that alters what it may do
// takes effect on the very next request in this process.
func TestTokenSubject_ChangesApplyAtOnce(t *testing.T) {
	type fixture struct {
		e        *env
		admin    identity.User
		bob      identity.User
		org      identity.Org
		project  identity.Project
		team     identity.Team
		raw      string
		token    identity.Token
		lifetime time.Duration
	}
	cases := []struct {
		name   string
		change func(t *testing.T, f fixture)
		// check inspects the answer after the change; err is the error of
		// TokenSubject.
		check func(t *testing.T, f fixture, sub authz.Subject, err error)
	}{
		{
			name: "revoked token is refused",
			change: func(t *testing.T, f fixture) {
				if err := f.e.ids.RevokeToken(t.Context(), f.bob.ID, f.token.ID); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f fixture, _ authz.Subject, err error) { wantKind(t, err, apperr.Unauthenticated) },
		},
		{
			name: "expired token is refused",
			change: func(t *testing.T, f fixture) {
				// Past the expiry but well inside the cache TTL of an entry
				// loaded just before it: the entry never outlives the token.
				f.e.clock.Advance(f.lifetime - identity.TokenCacheTTL/2)
				if _, _, _, err := f.e.ids.TokenSubject(t.Context(), f.raw, "token"); err != nil {
					t.Fatalf("just before expiry: %v", err)
				}
				f.e.clock.Advance(identity.TokenCacheTTL/2 + time.Millisecond)
			},
			check: func(t *testing.T, f fixture, _ authz.Subject, err error) { wantKind(t, err, apperr.Unauthenticated) },
		},
		{
			name: "disabled user is refused",
			change: func(t *testing.T, f fixture) {
				if err := f.e.ids.SetDisabled(as(t.Context(), f.admin), f.bob.ID, true); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f fixture, _ authz.Subject, err error) { wantKind(t, err, apperr.Unauthenticated) },
		},
		{
			name: "org role change applies",
			change: func(t *testing.T, f fixture) {
				if err := f.e.ids.SetMember(as(t.Context(), f.admin), f.org.ID, f.bob.ID, authz.Owner); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f fixture, sub authz.Subject, err error) {
				if err != nil || sub.OrgRoles[f.org.ID] != authz.Owner {
					t.Errorf("org role %v (err %v), want owner", sub.OrgRoles[f.org.ID], err)
				}
			},
		},
		{
			name: "removed org member loses the role",
			change: func(t *testing.T, f fixture) {
				if err := f.e.ids.RemoveMember(as(t.Context(), f.admin), f.org.ID, f.bob.ID); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f fixture, sub authz.Subject, err error) {
				if r, ok := sub.OrgRoles[f.org.ID]; err != nil || ok {
					t.Errorf("org role %v (err %v), want none", r, err)
				}
			},
		},
		{
			name: "project grant applies",
			change: func(t *testing.T, f fixture) {
				if err := f.e.ids.GrantUser(as(t.Context(), f.admin), f.project, f.bob.ID, authz.Maintainer); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f fixture, sub authz.Subject, err error) {
				if err != nil || sub.ProjectRoles[f.project.ID] != authz.Maintainer {
					t.Errorf("project role %v (err %v), want maintainer", sub.ProjectRoles[f.project.ID], err)
				}
			},
		},
		{
			name: "team membership applies",
			change: func(t *testing.T, f fixture) {
				if err := f.e.ids.AddTeamMember(as(t.Context(), f.admin), f.team, f.bob.ID); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f fixture, sub authz.Subject, err error) {
				if err != nil || sub.ProjectRoles[f.project.ID] != authz.Developer {
					t.Errorf("project role %v (err %v), want developer through the team", sub.ProjectRoles[f.project.ID], err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			each(t, func(t *testing.T, e *env) {
				ctx := t.Context()
				admin := e.user(t, "admin")
				bob := e.user(t, "bob")
				org := e.org(t, admin, "acme")
				if err := e.ids.SetMember(as(ctx, admin), org.ID, bob.ID, authz.Reader); err != nil {
					t.Fatal(err)
				}
				project, err := e.ids.CreateProject(as(ctx, admin), org.ID, "web", "")
				if err != nil {
					t.Fatal(err)
				}
				team, err := e.ids.CreateTeam(as(ctx, admin), org.ID, "devs", "")
				if err != nil {
					t.Fatal(err)
				}
				if err := e.ids.GrantTeam(as(ctx, admin), project, team, authz.Developer); err != nil {
					t.Fatal(err)
				}
				const lifetime = time.Hour
				raw, tok, err := e.ids.CreateToken(as(ctx, bob), bob.ID, identity.NewToken{Name: "ci",
					Scopes: []authz.Scope{authz.ScopeAdmin}, Lifetime: lifetime})
				if err != nil {
					t.Fatal(err)
				}
				f := fixture{e: e, admin: admin, bob: bob, org: org, project: project, team: team, raw: raw, token: tok, lifetime: lifetime}
				// Cache the verification.
				u, _, sub, err := e.ids.TokenSubject(ctx, raw, "token")
				if err != nil || u.ID != bob.ID || sub.OrgRoles[org.ID] != authz.Reader || sub.Via != "token" {
					t.Fatalf("before the change: %s, %+v, %v", u.Username, sub, err)
				}
				tc.change(t, f)
				_, _, sub, err = e.ids.TokenSubject(ctx, raw, "token")
				tc.check(t, f, sub, err)
			})
		})
	}
}

// Another replica on the same database does not share this process's
// cache: a revocation there is seen here within TokenCacheTTL, not later.
func TestTokenSubject_OtherReplicaWithinTTL(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		raw, tok, err := e.ids.CreateToken(as(ctx, bob), bob.ID, identity.NewToken{Name: "ci", Scopes: []authz.Scope{authz.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := e.ids.TokenSubject(ctx, raw, "token"); err != nil {
			t.Fatal(err)
		}
		other, err := identity.New(identity.Deps{DB: e.db, Audit: audit.New(e.db, e.clock.Now), Sealer: e.ids.Sealer(),
			Logger: logging.Discard(), Clock: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.RevokeToken(ctx, bob.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		// Still within the TTL here: the cached answer stands (the
		// documented bound on staleness across replicas).
		if _, _, _, err := e.ids.TokenSubject(ctx, raw, "token"); err != nil {
			t.Fatalf("within the TTL: %v", err)
		}
		e.clock.Advance(identity.TokenCacheTTL)
		_, _, _, err = e.ids.TokenSubject(ctx, raw, "token")
		wantKind(t, err, apperr.Unauthenticated)
		// The other replica itself refuses at once.
		_, _, _, err = other.TokenSubject(ctx, raw, "token")
		wantKind(t, err, apperr.Unauthenticated)
	})
}

// The subject handed out is a copy: a caller writing to it does not change
// what the next request is allowed.
func TestTokenSubject_CallersCannotAlterTheCache(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		admin := e.user(t, "admin")
		bob := e.user(t, "bob")
		org := e.org(t, admin, "acme")
		raw, _, err := e.ids.CreateToken(as(ctx, bob), bob.ID, identity.NewToken{Name: "ci", Scopes: []authz.Scope{authz.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a miss, then a hit
			_, _, sub, err := e.ids.TokenSubject(ctx, raw, "token")
			if err != nil {
				t.Fatal(err)
			}
			sub.OrgRoles[org.ID] = authz.Owner
		}
		_, _, sub, err := e.ids.TokenSubject(ctx, raw, "oauth")
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := sub.OrgRoles[org.ID]; ok || sub.Via != "oauth" {
			t.Errorf("second answer: role %v in acme, via %q; want no role, via oauth", r, sub.Via)
		}
	})
}
