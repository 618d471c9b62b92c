package apptest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/audit"
)

// State describes the data a request could change: users and their
// tokens, orgs with their members, teams, projects and grants. Tests
// compare it before and after a request that must change nothing.
func (a *App) State(t testing.TB) []string {
	t.Helper()
	ctx, ids := t.Context(), a.IDs
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("read state: %v", err)
		}
	}
	users, err := ids.ListUsers(ctx, "", 500)
	check(err)
	for _, u := range users {
		add("user %s disabled=%v admin=%v email=%s name=%q", u.Username, u.Disabled, u.SiteAdmin, u.Email, u.DisplayName)
		ts, err := ids.Tokens(ctx, u.ID)
		check(err)
		for _, tok := range ts {
			add("token %s %d %s revoked=%v", u.Username, tok.ID, tok.Name, !tok.RevokedAt.IsZero())
		}
		mfa, err := ids.MFAStatus(ctx, u.ID)
		check(err)
		add("mfa %s %+v", u.Username, mfa)
	}
	orgs, err := ids.ListOrgs(ctx)
	check(err)
	for _, o := range orgs {
		add("org %s name=%q mfa=%v", o.Name, o.DisplayName, o.RequireMFA)
		ms, err := ids.Members(ctx, o.ID)
		check(err)
		for _, m := range ms {
			add("member %s/%s %s", o.Name, m.User.Username, m.Role)
		}
		teams, err := ids.Teams(ctx, o.ID)
		check(err)
		for _, tm := range teams {
			add("team %s/%s %q", o.Name, tm.Name, tm.Description)
			us, err := ids.TeamMembers(ctx, tm.ID)
			check(err)
			for _, u := range us {
				add("team member %s/%s %s", o.Name, tm.Name, u.Username)
			}
		}
		ps, err := ids.Projects(ctx, o.ID)
		check(err)
		for _, p := range ps {
			add("project %s/%s %q", o.Name, p.Name, p.Description)
			gs, err := ids.Grants(ctx, p)
			check(err)
			for _, g := range gs {
				switch {
				case g.User != nil:
					add("grant %s/%s user %s %s", o.Name, p.Name, g.User.Username, g.Role)
				case g.Team != nil:
					add("grant %s/%s team %s %s", o.Name, p.Name, g.Team.Name, g.Role)
				}
			}
		}
	}
	return out
}

// AuditHead returns the sequence number of the newest audit entry.
func (a *App) AuditHead(t testing.TB) int64 {
	t.Helper()
	es, err := a.Audit.List(t.Context(), audit.Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return 0
	}
	return es[0].Seq
}

// AuditSince returns the audit entries appended after seq, newest first.
func (a *App) AuditSince(t testing.TB, seq int64) []audit.Entry {
	t.Helper()
	es, err := a.Audit.List(t.Context(), audit.Filter{AfterSeq: seq, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// Mark records the state and the audit head before a request that must
// change nothing; Unchanged checks it afterwards.
type Mark struct {
	a     *App
	state []string
	head  int64
}

// Mark records the current state.
func (a *App) Mark(t testing.TB) Mark {
	t.Helper()
	return Mark{a: a, state: a.State(t), head: a.AuditHead(t)}
}

// Unchanged fails the test unless the data is as it was at the mark, no
// action was audited as done since (refusals may be audited as failures),
// and the audit chain verifies.
func (m Mark) Unchanged(t testing.TB) {
	t.Helper()
	if diff := cmp.Diff(m.state, m.a.State(t)); diff != "" {
		t.Errorf("a refused request changed data (-before +after):\n%s", diff)
	}
	for _, e := range m.a.AuditSince(t, m.head) {
		if e.Outcome == audit.Success {
			t.Errorf("a refused request was audited as done: %s %s", e.Action, e.TargetName)
		}
	}
	rep, err := m.a.Audit.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("audit chain broken: %+v", rep.Problems)
	}
}

// Head is the audit head at the mark.
func (m Mark) Head() int64 { return m.head }
