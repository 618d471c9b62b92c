package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

// The fixtures of the route tests: two orgs, each with a project, a team,
// service accounts and tokens, and users holding every role in acme.
const (
	fixtureProject = "web"
	fixtureTeam    = "devs"
	// bystander is a member of both orgs whom routes may add, remove and
	// grant roles to ({username} in paths).
	bystander = "bystander"
	// disposableBot is the service account routes may delete ({name}).
	disposableBot = "deploy"
)

type orgFixture struct {
	name       string
	creator    string
	members    map[string]role
	team       []string        // members of the team
	userGrants map[string]role // direct grants on the project
	teamGrant  role            // the team's grant on the project
	bots       map[string]role // service accounts by short name
}

var orgFixtures = []orgFixture{
	{
		name:    "acme",
		creator: "owner",
		members: map[string]role{"owner": owner, "maintainer": maintainer, "developer": developer, "reader": reader,
			"projlead": reader, "teamlead": reader, bystander: reader},
		team:       []string{"teamlead", bystander},
		userGrants: map[string]role{"projlead": maintainer, bystander: developer},
		teamGrant:  maintainer,
		bots:       map[string]role{"ci": developer, disposableBot: reader},
	},
	{
		name:       "globex",
		creator:    "globex-owner",
		members:    map[string]role{"globex-owner": owner, bystander: reader},
		team:       []string{bystander},
		userGrants: map[string]role{bystander: developer},
		teamGrant:  reader,
		bots:       map[string]role{"ci": developer, disposableBot: reader},
	},
}

// subjectNames are the callers of the matrix: anonymous (""), the site
// admin, someone in no org, every role in acme (org roles, a project
// grant, a project grant through a team) and a service account.
var subjectNames = []string{"", "admin", "outsider", "owner", "maintainer", "developer", "reader", "projlead", "teamlead", "acme-bot-ci"}

// subject is a caller with the roles the fixtures give it.
type subject struct {
	user         string // "" for anonymous
	siteAdmin    bool
	service      bool
	orgRoles     map[string]role // by org name
	projectRoles map[string]role // by "org/project": direct or team grants
	token        string          // admin-scoped: every scope
	tokenID      int64
	spareID      int64 // a token of the subject's that routes may revoke
}

func newSubject(name string) *subject {
	s := &subject{user: name, siteAdmin: name == "admin", orgRoles: map[string]role{}, projectRoles: map[string]role{}}
	for _, f := range orgFixtures {
		for short, r := range f.bots {
			if name == f.name+"-bot-"+short {
				s.service = true
				s.orgRoles[f.name] = r
			}
		}
		if r, ok := f.members[name]; ok {
			s.orgRoles[f.name] = r
		}
		p := f.userGrants[name]
		if slices.Contains(f.team, name) {
			p = max(p, f.teamGrant)
		}
		if p != none {
			s.projectRoles[f.name+"/"+fixtureProject] = p
		}
	}
	return s
}

// world is a running app with the fixtures, restorable after calls that
// delete or change them.
type world struct {
	a         *apptest.App
	subjects  []*subject
	botTokens map[string]int64  // id of a token of each org's disposable bot
	scoped    map[string]string // tokens with chosen scopes, by user and scopes
}

func newWorld(t *testing.T, opts ...apptest.Option) *world {
	t.Helper()
	a := apptest.Start(t, opts...)
	w := &world{a: a, botTokens: map[string]int64{}, scoped: map[string]string{}}
	ctx := t.Context()
	for _, name := range []string{"owner", "maintainer", "developer", "reader", "projlead", "teamlead", "outsider", "globex-owner", bystander} {
		if _, err := a.IDs.CreateUser(ctx, identity.NewUser{Username: name}); err != nil {
			t.Fatal(err)
		}
	}
	// signer signs in through POST /auth/login.
	if _, err := a.IDs.CreateUser(ctx, identity.NewUser{Username: "signer", Password: apptest.UserPassword}); err != nil {
		t.Fatal(err)
	}
	for _, name := range subjectNames {
		w.subjects = append(w.subjects, newSubject(name))
	}
	w.restore(t)
	return w
}

func authzRole(t *testing.T, r role) authz.Role {
	t.Helper()
	ar, err := authz.ParseRole(r.String())
	if err != nil {
		t.Fatal(err)
	}
	return ar
}

func (w *world) user(t *testing.T, name string) identity.User {
	t.Helper()
	u, err := w.a.IDs.UserByName(t.Context(), name)
	if err != nil {
		t.Fatalf("fixture user %s: %v", name, err)
	}
	return u
}

// restore brings every fixture back to its initial state, re-creating
// what a call deleted.
func (w *world) restore(t *testing.T) {
	t.Helper()
	for _, f := range orgFixtures {
		w.restoreOrg(t, f)
	}
	for _, s := range w.subjects {
		if s.user != "" {
			w.restoreTokens(t, s)
		}
	}
}

func (w *world) restoreOrg(t *testing.T, f orgFixture) {
	t.Helper()
	ctx, ids := t.Context(), w.a.IDs
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("restore %s: %v", f.name, err)
		}
	}
	o, err := ids.Org(ctx, f.name)
	if apperr.Is(err, apperr.NotFound) {
		o, err = ids.CreateOrg(ctx, w.user(t, f.creator).ID, f.name, "")
	}
	must(err)
	ms, err := ids.Members(ctx, o.ID)
	must(err)
	have := map[string]authz.Role{}
	for _, m := range ms {
		have[m.User.Username] = m.Role
	}
	for name, r := range f.members {
		if have[name] != authzRole(t, r) {
			must(ids.SetMember(ctx, o.ID, w.user(t, name).ID, authzRole(t, r)))
		}
	}
	for short, r := range f.bots {
		if _, ok := have[f.name+"-bot-"+short]; !ok {
			_, err := ids.CreateServiceAccount(ctx, o, short, "", authzRole(t, r))
			must(err)
		}
	}

	team, err := ids.Team(ctx, o.ID, fixtureTeam)
	if apperr.Is(err, apperr.NotFound) {
		team, err = ids.CreateTeam(ctx, o.ID, fixtureTeam, "")
	}
	must(err)
	tms, err := ids.TeamMembers(ctx, team.ID)
	must(err)
	for _, name := range f.team {
		if !slices.ContainsFunc(tms, func(u identity.User) bool { return u.Username == name }) {
			must(ids.AddTeamMember(ctx, team, w.user(t, name).ID))
		}
	}

	p, err := ids.Project(ctx, o.ID, fixtureProject)
	if apperr.Is(err, apperr.NotFound) {
		p, err = ids.CreateProject(ctx, o.ID, fixtureProject, "")
	}
	must(err)
	gs, err := ids.Grants(ctx, p)
	must(err)
	userGrants, teamGrants := map[string]authz.Role{}, map[string]authz.Role{}
	for _, g := range gs {
		if g.User != nil {
			userGrants[g.User.Username] = g.Role
		}
		if g.Team != nil {
			teamGrants[g.Team.Name] = g.Role
		}
	}
	for name, r := range f.userGrants {
		if userGrants[name] != authzRole(t, r) {
			must(ids.GrantUser(ctx, p, w.user(t, name).ID, authzRole(t, r)))
		}
	}
	if teamGrants[fixtureTeam] != authzRole(t, f.teamGrant) {
		must(ids.GrantTeam(ctx, p, team, authzRole(t, f.teamGrant)))
	}

	w.restoreRepo(t, o)

	bot := w.user(t, f.name+"-bot-"+disposableBot)
	if !w.activeToken(t, bot.ID, w.botTokens[f.name]) {
		_, tok, err := ids.CreateToken(ctx, bot.ID, identity.NewToken{Name: "deploy", Scopes: []authz.Scope{authz.ScopeRepoRead}})
		must(err)
		w.botTokens[f.name] = tok.ID
	}
}

// restoreTokens gives s an admin-scoped token and a spare one, unless
// they still work.
func (w *world) restoreTokens(t *testing.T, s *subject) {
	t.Helper()
	ctx := t.Context()
	u := w.user(t, s.user)
	if !w.activeToken(t, u.ID, s.tokenID) {
		raw, tok, err := w.a.IDs.CreateToken(ctx, u.ID, identity.NewToken{Name: "matrix", Scopes: []authz.Scope{authz.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		s.token, s.tokenID = raw, tok.ID
	}
	if !w.activeToken(t, u.ID, s.spareID) {
		_, tok, err := w.a.IDs.CreateToken(ctx, u.ID, identity.NewToken{Name: "spare", Scopes: []authz.Scope{authz.ScopeUserRead}})
		if err != nil {
			t.Fatal(err)
		}
		s.spareID = tok.ID
	}
}

func (w *world) activeToken(t *testing.T, userID, tokenID int64) bool {
	t.Helper()
	if tokenID == 0 {
		return false
	}
	ts, err := w.a.IDs.Tokens(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	now := w.a.IDs.Now()
	return slices.ContainsFunc(ts, func(tok identity.Token) bool { return tok.ID == tokenID && tok.Active(now) })
}

// scopedToken returns a token of user's carrying exactly scopes.
func (w *world) scopedToken(t *testing.T, user string, scopes []string) string {
	t.Helper()
	key := user + " " + strings.Join(scopes, ",")
	if tok, ok := w.scoped[key]; ok {
		return tok
	}
	sc := make([]authz.Scope, len(scopes))
	for i, s := range scopes {
		sc[i] = authz.Scope(s)
	}
	raw, _, err := w.a.IDs.CreateToken(t.Context(), w.user(t, user).ID, identity.NewToken{Name: "scoped", Scopes: sc})
	if err != nil {
		t.Fatal(err)
	}
	w.scoped[key] = raw
	return raw
}

func (w *world) auditHead(t *testing.T) int64 { return w.a.AuditHead(t) }

func (w *world) auditSince(t *testing.T, seq int64) []audit.Entry { return w.a.AuditSince(t, seq) }
