package identity_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

func TestOrgs_CreatorIsOwner(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		o, err := e.ids.CreateOrg(as(ctx, bob), bob.ID, "acme", "Acme Corp")
		if err != nil {
			t.Fatal(err)
		}
		want := identity.Org{ID: o.ID, Name: "acme", DisplayName: "Acme Corp", CreatedAt: e.clock.Now()}
		if diff := cmp.Diff(want, o); diff != "" {
			t.Errorf("created org (-want +got):\n%s", diff)
		}
		got, err := e.ids.Org(ctx, "acme")
		if err != nil || !cmp.Equal(got, o) {
			t.Errorf("Org(acme) = %+v, %v", got, err)
		}
		ms, err := e.ids.Members(ctx, o.ID)
		if err != nil || len(ms) != 1 || ms[0].User.ID != bob.ID || ms[0].Role != authz.Owner {
			t.Fatalf("members %+v, %v", ms, err)
		}
		sub, err := e.ids.Subject(ctx, bob, nil, "session")
		if err != nil {
			t.Fatal(err)
		}
		if sub.OrgRole(o.ID) != authz.Owner {
			t.Errorf("bob's role %v", sub.OrgRole(o.ID))
		}
		ent := e.lastAudit(t)
		if ent.Action != "org.create" || ent.OrgID != o.ID || ent.ActorName != "bob" || ent.TargetName != "acme" {
			t.Errorf("audit entry %+v", ent)
		}

		_, err = e.ids.CreateOrg(ctx, bob.ID, "acme", "")
		if apperr.KindOf(err) != apperr.Conflict || apperr.FieldOf(err) != "name" {
			t.Errorf("duplicate org: %v", err)
		}
		for _, bad := range []struct{ name, display string }{{"Acme2", ""}, {"api", ""}, {"ok", "line\nbreak"}, {"ok", strings.Repeat("d", 101)}} {
			_, err := e.ids.CreateOrg(ctx, bob.ID, bad.name, bad.display)
			wantKind(t, err, apperr.Invalid)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM orgs"); n != 1 {
			t.Errorf("%d orgs after refused creations", n)
		}
	})
}

func TestOrgs_LastOwnerGuard(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob, carol := e.user(t, "bob"), e.user(t, "carol")
		o := e.org(t, bob, "acme")
		err := e.ids.SetMember(ctx, o.ID, bob.ID, authz.Maintainer)
		if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "at least one owner") {
			t.Fatalf("demoting the last owner: %v", err)
		}
		wantKind(t, e.ids.RemoveMember(ctx, o.ID, bob.ID), apperr.Invalid)
		if sub, _ := e.ids.Subject(ctx, bob, nil, "session"); sub.OrgRole(o.ID) != authz.Owner {
			t.Fatalf("bob is %v after refused changes", sub.OrgRole(o.ID))
		}

		// With a second owner, the first may step down and leave.
		if err := e.ids.SetMember(as(ctx, bob), o.ID, carol.ID, authz.Owner); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "org.member.add" || ent.TargetName != "carol" || ent.Details["role"] != "owner" {
			t.Errorf("audit entry %+v", ent)
		}
		if err := e.ids.SetMember(as(ctx, bob), o.ID, bob.ID, authz.Developer); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "org.member.role" || ent.Details["previous_role"] != "owner" {
			t.Errorf("audit entry %+v", ent)
		}
		if err := e.ids.RemoveMember(as(ctx, carol), o.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "org.member.remove" || ent.TargetName != "bob" || ent.ActorName != "carol" {
			t.Errorf("audit entry %+v", ent)
		}
		// Now carol is the last owner.
		wantKind(t, e.ids.RemoveMember(ctx, o.ID, carol.ID), apperr.Invalid)
		wantKind(t, e.ids.RemoveMember(ctx, o.ID, bob.ID), apperr.NotFound)
		wantKind(t, e.ids.SetMember(ctx, o.ID, bob.ID, authz.NoRole), apperr.Invalid)
	})
}

func TestOrgs_UpdateAndDeleteCascades(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob, carol := e.user(t, "bob"), e.user(t, "carol")
		o := e.org(t, bob, "acme")
		other := e.org(t, bob, "other")
		on, name := true, "ACME"
		o2, err := e.ids.UpdateOrg(as(ctx, bob), o.ID, identity.OrgUpdate{RequireMFA: &on, DisplayName: &name})
		if err != nil || !o2.RequireMFA || o2.DisplayName != "ACME" {
			t.Fatalf("UpdateOrg = %+v, %v", o2, err)
		}
		if ent := e.lastAudit(t); ent.Action != "org.update.require_mfa" || ent.Details["require_mfa"] != true {
			t.Errorf("audit entry %+v", ent)
		}
		if req, err := e.ids.RequiresMFA(ctx, carol.ID); err != nil || req {
			t.Errorf("carol, not a member, RequiresMFA = %v, %v", req, err)
		}

		// Fill the org with everything that hangs off it.
		if err := e.ids.SetMember(ctx, o.ID, carol.ID, authz.Developer); err != nil {
			t.Fatal(err)
		}
		if req, err := e.ids.RequiresMFA(ctx, carol.ID); err != nil || !req {
			t.Errorf("carol, member of an MFA org, RequiresMFA = %v, %v", req, err)
		}
		team, err := e.ids.CreateTeam(ctx, o.ID, "dev", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ids.AddTeamMember(ctx, team, carol.ID); err != nil {
			t.Fatal(err)
		}
		p, err := e.ids.CreateProject(ctx, o.ID, "web", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ids.GrantTeam(ctx, p, team, authz.Maintainer); err != nil {
			t.Fatal(err)
		}
		if err := e.ids.GrantUser(ctx, p, carol.ID, authz.Reader); err != nil {
			t.Fatal(err)
		}
		bot, err := e.ids.CreateServiceAccount(ctx, o, "ci", "", authz.Developer)
		if err != nil {
			t.Fatal(err)
		}
		botToken, _, err := e.ids.CreateToken(ctx, bot.ID, identity.NewToken{Name: "ci", Scopes: []authz.Scope{"org:read"}})
		if err != nil {
			t.Fatal(err)
		}
		// And something in another org that must survive.
		if _, err := e.ids.CreateTeam(ctx, other.ID, "dev", ""); err != nil {
			t.Fatal(err)
		}

		if err := e.ids.DeleteOrg(as(ctx, bob), o.ID); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "org.delete" || ent.TargetName != "acme" || ent.OrgID != o.ID {
			t.Errorf("audit entry %+v", ent)
		}
		_, err = e.ids.Org(ctx, "acme")
		wantKind(t, err, apperr.NotFound)
		for q, want := range map[string]int{
			"SELECT COUNT(*) FROM org_members WHERE org_id = ?":                                                    0,
			"SELECT COUNT(*) FROM teams WHERE org_id = ?":                                                          0,
			"SELECT COUNT(*) FROM projects WHERE org_id = ?":                                                       0,
			"SELECT COUNT(*) FROM users WHERE owner_org_id = ?":                                                    0,
			"SELECT COUNT(*) FROM team_members WHERE team_id NOT IN (SELECT id FROM teams) AND 0 < ?":              0,
			"SELECT COUNT(*) FROM project_team_grants WHERE project_id NOT IN (SELECT id FROM projects) AND 0 < ?": 0,
			"SELECT COUNT(*) FROM project_user_grants WHERE project_id NOT IN (SELECT id FROM projects) AND 0 < ?": 0,
			"SELECT COUNT(*) FROM tokens WHERE user_id NOT IN (SELECT id FROM users) AND 0 < ?":                    0,
			"SELECT COUNT(*) FROM teams WHERE org_id <> ?":                                                         1,
		} {
			if n := e.count(t, q, o.ID); n != want {
				t.Errorf("%s: %d, want %d", q, n, want)
			}
		}
		_, _, err = e.ids.AuthenticateToken(ctx, botToken)
		wantKind(t, err, apperr.Unauthenticated)
		if u, err := e.ids.UserByName(ctx, "carol"); err != nil || u.Disabled {
			t.Errorf("carol after the org went: %+v, %v", u, err)
		}
		if req, err := e.ids.RequiresMFA(ctx, carol.ID); err != nil || req {
			t.Errorf("carol RequiresMFA = %v, %v after the org went", req, err)
		}
	})
}

func TestTeamsAndGrants_FeedSubject(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob, carol, dave := e.user(t, "bob"), e.user(t, "carol"), e.user(t, "dave")
		o := e.org(t, bob, "acme")
		if err := e.ids.SetMember(ctx, o.ID, carol.ID, authz.Reader); err != nil {
			t.Fatal(err)
		}
		web, err := e.ids.CreateProject(as(ctx, bob), o.ID, "web", "the web site")
		if err != nil {
			t.Fatal(err)
		}
		api, err := e.ids.CreateProject(ctx, o.ID, "backend", "")
		if err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "project.create" || ent.TargetName != "backend" || ent.OrgID != o.ID {
			t.Errorf("audit entry %+v", ent)
		}
		team, err := e.ids.CreateTeam(as(ctx, bob), o.ID, "dev", "developers\nof acme")
		if err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "team.create" || ent.TargetName != "dev" {
			t.Errorf("audit entry %+v", ent)
		}
		_, err = e.ids.CreateTeam(ctx, o.ID, "dev", "")
		wantKind(t, err, apperr.Conflict)

		role := func(u identity.User, p identity.Project) authz.Role {
			t.Helper()
			sub, err := e.ids.Subject(ctx, u, nil, "session")
			if err != nil {
				t.Fatal(err)
			}
			return sub.ProjectRole(o.ID, p.ID)
		}
		can := func(u identity.User, a authz.Action, p identity.Project) bool {
			t.Helper()
			sub, err := e.ids.Subject(ctx, u, nil, "session")
			if err != nil {
				t.Fatal(err)
			}
			return authz.Decide(sub, a, p.Resource(o)).Allow
		}

		if got := role(carol, web); got != authz.Reader {
			t.Fatalf("carol on web: %v, want reader (org role)", got)
		}
		if can(carol, authz.ProjectUpdate, web) {
			t.Fatal("a reader may update the project")
		}
		// Only org members join teams.
		err = e.ids.AddTeamMember(ctx, team, dave.ID)
		if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "not a member of the org") {
			t.Errorf("non-member into a team: %v", err)
		}
		if err := e.ids.AddTeamMember(as(ctx, bob), team, carol.ID); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "team.member.add" || ent.TargetName != "carol" || ent.Details["team"] != "dev" {
			t.Errorf("audit entry %+v", ent)
		}
		wantKind(t, e.ids.AddTeamMember(ctx, team, carol.ID), apperr.Conflict)

		// A team grant raises carol on that project only.
		if err := e.ids.GrantTeam(as(ctx, bob), web, team, authz.Maintainer); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "project.grant" || ent.TargetType != "team" || ent.Details["role"] != "maintainer" {
			t.Errorf("audit entry %+v", ent)
		}
		if got := role(carol, web); got != authz.Maintainer {
			t.Fatalf("carol on web through her team: %v", got)
		}
		if !can(carol, authz.ProjectUpdate, web) || can(carol, authz.ProjectDelete, web) {
			t.Error("a maintainer through a team: wrong permissions")
		}
		if got := role(carol, api); got != authz.Reader {
			t.Errorf("carol on backend: %v, want reader", got)
		}
		// A lower direct grant does not lower it; the highest grant wins.
		if err := e.ids.GrantUser(as(ctx, bob), web, carol.ID, authz.Developer); err != nil {
			t.Fatal(err)
		}
		if got := role(carol, web); got != authz.Maintainer {
			t.Errorf("carol with direct developer and team maintainer: %v", got)
		}
		gs, err := e.ids.Grants(ctx, web)
		if err != nil || len(gs) != 2 || gs[0].User == nil || gs[0].User.Username != "carol" || gs[0].Role != authz.Developer ||
			gs[1].Team == nil || gs[1].Team.Name != "dev" || gs[1].Role != authz.Maintainer {
			t.Errorf("grants %+v, %v", gs, err)
		}
		// Leaving the team drops to the direct grant.
		if err := e.ids.RemoveTeamMember(as(ctx, bob), team, carol.ID); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "team.member.remove" || ent.TargetName != "carol" {
			t.Errorf("audit entry %+v", ent)
		}
		wantKind(t, e.ids.RemoveTeamMember(ctx, team, carol.ID), apperr.NotFound)
		if got := role(carol, web); got != authz.Developer {
			t.Errorf("carol after leaving the team: %v, want developer", got)
		}
		// Revoking the direct grant drops to the org role.
		if err := e.ids.GrantUser(ctx, web, carol.ID, authz.NoRole); err != nil {
			t.Fatal(err)
		}
		wantKind(t, e.ids.GrantUser(ctx, web, carol.ID, authz.NoRole), apperr.NotFound)
		if got := role(carol, web); got != authz.Reader {
			t.Errorf("carol after revoking: %v, want reader", got)
		}
		// Deleting the team takes its grants with it.
		if err := e.ids.AddTeamMember(ctx, team, carol.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.ids.DeleteTeam(as(ctx, bob), team); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "team.delete" || ent.TargetName != "dev" {
			t.Errorf("audit entry %+v", ent)
		}
		if got := role(carol, web); got != authz.Reader {
			t.Errorf("carol after the team went: %v, want reader", got)
		}
		wantKind(t, e.ids.DeleteTeam(ctx, team), apperr.NotFound)
		// Teams of another org cannot be granted.
		other := e.org(t, bob, "other")
		ot, err := e.ids.CreateTeam(ctx, other.ID, "ops", "")
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, e.ids.GrantTeam(ctx, web, ot, authz.Owner), apperr.Invalid)
		// Deleting a project.
		if err := e.ids.DeleteProject(as(ctx, bob), api); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "project.delete" || ent.TargetName != "backend" {
			t.Errorf("audit entry %+v", ent)
		}
		_, err = e.ids.Project(ctx, o.ID, "backend")
		wantKind(t, err, apperr.NotFound)
	})
}

func TestServiceAccounts(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		o := e.org(t, bob, "acme")
		bot, err := e.ids.CreateServiceAccount(as(ctx, bob), o, "ci", "the CI runner", authz.Developer)
		if err != nil {
			t.Fatal(err)
		}
		if bot.Username != "acme-bot-ci" || bot.Kind != identity.KindService || bot.OwnerOrgID != o.ID || bot.HasPassword {
			t.Fatalf("service account %+v", bot)
		}
		if ent := e.lastAudit(t); ent.Action != "serviceaccount.create" || ent.TargetName != "acme-bot-ci" || ent.Details["role"] != "developer" {
			t.Errorf("audit entry %+v", ent)
		}
		for name, tc := range map[string]struct {
			name string
			role authz.Role
		}{
			"owner":     {"boss", authz.Owner},
			"no role":   {"idle", authz.NoRole},
			"bad name":  {"CI", authz.Reader},
			"too long":  {strings.Repeat("x", 35), authz.Reader},
			"duplicate": {"ci", authz.Reader},
		} {
			_, err := e.ids.CreateServiceAccount(ctx, o, tc.name, "", tc.role)
			if err == nil {
				t.Errorf("%s: created", name)
			}
		}
		if sas, err := e.ids.ServiceAccounts(ctx, o.ID); err != nil || len(sas) != 1 {
			t.Errorf("ServiceAccounts = %+v, %v", sas, err)
		}
		// It never becomes an owner, and never joins another org.
		err = e.ids.SetMember(ctx, o.ID, bot.ID, authz.Owner)
		if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "role" {
			t.Errorf("promoting a service account to owner: %v", err)
		}
		other := e.org(t, bob, "other")
		wantKind(t, e.ids.SetMember(ctx, other.ID, bot.ID, authz.Reader), apperr.Invalid)
		if err := e.ids.SetMember(ctx, o.ID, bot.ID, authz.Maintainer); err != nil {
			t.Errorf("making it maintainer: %v", err)
		}

		// It cannot sign in with a password, whatever is stored.
		_, err = e.ids.PasswordLogin(ctx, "acme-bot-ci", "", ipA)
		wantKind(t, err, apperr.Unauthenticated)
		if _, err := e.db.Exec(ctx, "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE id = ?) WHERE id = ?", bob.ID, bot.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.ids.PasswordLogin(ctx, "acme-bot-ci", testPassword, ipA)
		if apperr.KindOf(err) != apperr.Unauthenticated || apperr.Message(err) != "wrong user name or password" {
			t.Errorf("service account with a password hash: %v", err)
		}

		// Its tokens work, as a service.
		raw, tok, err := e.ids.CreateToken(as(ctx, bob), bot.ID, identity.NewToken{Name: "pipeline", Scopes: []authz.Scope{"org:read"}})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Kind != identity.TokenService {
			t.Errorf("token kind %q", tok.Kind)
		}
		if ent := e.lastAudit(t); ent.Action != "token.create" || ent.OrgID != o.ID || ent.ActorName != "bob" {
			t.Errorf("audit entry %+v", ent)
		}
		u, tk, err := e.ids.AuthenticateToken(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := e.ids.Subject(ctx, u, tk.Scopes, "token")
		if err != nil {
			t.Fatal(err)
		}
		if !sub.Service || sub.OrgRole(o.ID) != authz.Maintainer {
			t.Errorf("subject %+v", sub)
		}
		if !authz.Decide(sub, authz.OrgRead, o.Resource()).Allow || authz.Decide(sub, authz.OrgCreate, authz.Site).Allow {
			t.Error("service token: wrong permissions")
		}

		// Deleting it kills its tokens.
		wantKind(t, e.ids.DeleteServiceAccount(ctx, other, "acme-bot-ci"), apperr.NotFound)
		wantKind(t, e.ids.DeleteServiceAccount(ctx, o, "bob"), apperr.NotFound)
		if err := e.ids.DeleteServiceAccount(as(ctx, bob), o, "acme-bot-ci"); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "serviceaccount.delete" || ent.TargetName != "acme-bot-ci" {
			t.Errorf("audit entry %+v", ent)
		}
		_, _, err = e.ids.AuthenticateToken(ctx, raw)
		wantKind(t, err, apperr.Unauthenticated)
	})
}

func TestUsers_CreateAndProfile(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		created, pw, err := e.ids.EnsureAdmin(ctx, "")
		if err != nil || !created || len(pw) < 20 {
			t.Fatalf("EnsureAdmin = %v, %q, %v", created, pw, err)
		}
		if ent := e.lastAudit(t); ent.Action != "user.create" || ent.ActorName != "system" || ent.TargetName != "admin" {
			t.Errorf("audit entry %+v", ent)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM audit_log WHERE details LIKE ?", "%"+pw+"%"); n != 0 {
			t.Error("the admin password is in the audit log")
		}
		if _, err := e.ids.PasswordLogin(ctx, "admin", pw, ipA); err != nil {
			t.Fatalf("generated admin password: %v", err)
		}
		created, pw2, err := e.ids.EnsureAdmin(ctx, "")
		if err != nil || created || pw2 != "" {
			t.Fatalf("second EnsureAdmin = %v, %q, %v", created, pw2, err)
		}
		admin, err := e.ids.UserByName(ctx, "ADMIN")
		if err != nil || !admin.SiteAdmin {
			t.Fatalf("admin %+v, %v", admin, err)
		}
		wantKind(t, e.ids.SetDisabled(ctx, admin.ID, true), apperr.Invalid)

		bob, err := e.ids.CreateUser(as(ctx, admin), identity.NewUser{Username: "bob", Email: "Bob@Example.TEST", Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		if bob.Email != "bob@example.test" || bob.Kind != identity.KindHuman || !bob.HasPassword {
			t.Errorf("user %+v", bob)
		}
		if ent := e.lastAudit(t); ent.Action != "user.create" || ent.ActorName != "admin" || ent.TargetName != "bob" {
			t.Errorf("audit entry %+v", ent)
		}
		for name, nu := range map[string]identity.NewUser{
			"duplicate":     {Username: "bob"},
			"bad name":      {Username: "Bob!"},
			"bad email":     {Username: "carol", Email: "carol at example"},
			"named email":   {Username: "carol", Email: "Carol <carol@example.test>"},
			"control chars": {Username: "carol", DisplayName: "\x1b]0;pwned\a"},
		} {
			if _, err := e.ids.CreateUser(ctx, nu); err == nil {
				t.Errorf("%s: created", name)
			}
		}
		u, err := e.ids.UpdateProfile(as(ctx, bob), bob.ID, "Bob B", "bob@new.example")
		if err != nil || u.DisplayName != "Bob B" || u.Email != "bob@new.example" {
			t.Fatalf("UpdateProfile = %+v, %v", u, err)
		}
		if ent := e.lastAudit(t); ent.Action != "user.update" || ent.ActorName != "bob" {
			t.Errorf("audit entry %+v", ent)
		}
		us, err := e.ids.ListUsers(ctx, "b_b", 0)
		if err != nil || len(us) != 0 {
			t.Errorf("ListUsers(b_b): _ must match literally: %+v, %v", us, err)
		}
		us, err = e.ids.ListUsers(ctx, "new.ex", 0)
		if err != nil || len(us) != 1 || us[0].Username != "bob" {
			t.Errorf("ListUsers(new.ex) = %+v, %v", us, err)
		}
	})
}
