package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

type orgsView struct {
	Orgs []orgRow
	All  bool
}

type orgRow struct {
	Org  identity.Org
	Role string
}

type orgView struct {
	Org             identity.Org
	Tab             string
	Role            string
	CanAdmin        bool // owner: members, settings, service accounts
	CanTeams        bool // maintainer+: teams
	CanProjects     bool // maintainer+: create projects
	Members         []identity.Member
	Teams           []identity.Team
	Projects        []identity.Project
	ServiceAccounts []identity.User
	SARoles         map[int64]string
	Roles           []string
	Team            *identity.Team
	TeamMembers     []identity.User
	Project         *identity.Project
	Grants          []identity.Grant
	CanGrant        bool
	CanDelete       bool
	Audit           []audit.Entry
	Token           *tokenCreatedView
}

func (s *Server) orgsPage(c *Ctx) error {
	if err := c.Check(authz.OrgList, authz.Site); err != nil {
		return err
	}
	ctx := c.R.Context()
	var (
		orgs []identity.Org
		err  error
	)
	all := c.P.Subject.SiteAdmin && c.R.URL.Query().Get("all") == "true"
	if all {
		orgs, err = s.ids.ListOrgs(ctx)
	} else {
		orgs, err = s.ids.OrgsOf(ctx, c.P.User.ID)
	}
	if err != nil {
		return err
	}
	v := orgsView{All: all}
	for _, o := range orgs {
		v.Orgs = append(v.Orgs, orgRow{Org: o, Role: c.P.Subject.OrgRole(o.ID).String()})
	}
	return c.Render(http.StatusOK, "orgs", "Organisations", v)
}

func (s *Server) orgCreate(c *Ctx) error {
	if err := c.Check(authz.OrgCreate, authz.Site); err != nil {
		return err
	}
	name := strings.TrimSpace(c.R.PostFormValue("name"))
	o, err := s.ids.CreateOrg(c.R.Context(), c.P.User.ID, name, strings.TrimSpace(c.R.PostFormValue("display_name")))
	if err != nil {
		orgs, lerr := s.ids.OrgsOf(c.R.Context(), c.P.User.ID)
		if lerr != nil {
			return lerr
		}
		v := orgsView{}
		for _, o := range orgs {
			v.Orgs = append(v.Orgs, orgRow{Org: o, Role: c.P.Subject.OrgRole(o.ID).String()})
		}
		return c.RenderForm("orgs", "Organisations", v, err)
	}
	return c.Redirect("/orgs/"+o.Name, "Organisation created. You are its owner.")
}

// org loads the org named in the path and checks action a on it.
func (s *Server) org(c *Ctx, a authz.Action) (identity.Org, error) {
	o, err := s.ids.Org(c.R.Context(), c.R.PathValue("org"))
	if err != nil {
		return o, err
	}
	return o, c.Check(a, o.Resource())
}

func (s *Server) orgData(c *Ctx, o identity.Org, tab string) (orgView, error) {
	ctx := c.R.Context()
	sub := c.P.Subject
	v := orgView{Org: o, Tab: tab, Role: sub.OrgRole(o.ID).String(), Roles: authz.RoleNames(),
		CanAdmin:    authz.Decide(sub, authz.OrgMembersWrite, o.Resource()).Allow,
		CanTeams:    authz.Decide(sub, authz.OrgTeamsWrite, o.Resource()).Allow,
		CanProjects: authz.Decide(sub, authz.ProjectCreate, o.Resource()).Allow}
	var err error
	switch tab {
	case "members":
		v.Members, err = s.ids.Members(ctx, o.ID)
	case "teams":
		v.Teams, err = s.ids.Teams(ctx, o.ID)
	case "projects":
		v.Projects, err = s.ids.Projects(ctx, o.ID)
	case "service-accounts":
		if v.ServiceAccounts, err = s.ids.ServiceAccounts(ctx, o.ID); err != nil {
			return v, err
		}
		var ms []identity.Member
		if ms, err = s.ids.Members(ctx, o.ID); err != nil {
			return v, err
		}
		v.SARoles = map[int64]string{}
		for _, m := range ms {
			v.SARoles[m.User.ID] = m.Role.String()
		}
	case "audit":
		v.Audit, err = s.audit.List(ctx, audit.Filter{OrgID: o.ID, Limit: 100})
	}
	return v, err
}

func (s *Server) orgTab(tab string) func(c *Ctx) error {
	return func(c *Ctx) error {
		a := authz.OrgRead
		switch tab {
		case "settings":
			a = authz.OrgUpdate
		case "audit":
			a = authz.OrgAuditRead
		}
		o, err := s.org(c, a)
		if err != nil {
			return err
		}
		v, err := s.orgData(c, o, tab)
		if err != nil {
			return err
		}
		return c.Render(http.StatusOK, "org", o.Name, v)
	}
}

// orgFormError re-renders an org tab with the error.
func (s *Server) orgFormError(c *Ctx, o identity.Org, tab string, err error) error {
	v, verr := s.orgData(c, o, tab)
	if verr != nil {
		return verr
	}
	return c.RenderForm("org", o.Name, v, err)
}

func (s *Server) memberSet(c *Ctx) error {
	o, err := s.org(c, authz.OrgMembersWrite)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	role, err := authz.ParseRole(c.R.PostFormValue("role"))
	if err != nil {
		return s.orgFormError(c, o, "members", err)
	}
	u, err := s.ids.UserByName(ctx, strings.TrimSpace(c.R.PostFormValue("username")))
	if err != nil {
		return s.orgFormError(c, o, "members", err)
	}
	if err := s.ids.SetMember(ctx, o.ID, u.ID, role); err != nil {
		return s.orgFormError(c, o, "members", err)
	}
	return c.Redirect("/orgs/"+o.Name, u.Username+" is now "+role.String()+".")
}

func (s *Server) memberRemove(c *Ctx) error {
	o, err := s.org(c, authz.OrgMembersWrite)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	u, err := s.ids.UserByName(ctx, c.R.PathValue("username"))
	if err != nil {
		return s.orgFormError(c, o, "members", err)
	}
	if err := s.ids.RemoveMember(ctx, o.ID, u.ID); err != nil {
		return s.orgFormError(c, o, "members", err)
	}
	return c.Redirect("/orgs/"+o.Name, u.Username+" was removed.")
}

func (s *Server) settingsSubmit(c *Ctx) error {
	o, err := s.org(c, authz.OrgUpdate)
	if err != nil {
		return err
	}
	dn := strings.TrimSpace(c.R.PostFormValue("display_name"))
	req := c.R.PostFormValue("require_mfa") == "on"
	if _, err := s.ids.UpdateOrg(c.R.Context(), o.ID, identity.OrgUpdate{DisplayName: &dn, RequireMFA: &req}); err != nil {
		return s.orgFormError(c, o, "settings", err)
	}
	return c.Redirect("/orgs/"+o.Name+"/settings", "Settings saved.")
}

func (s *Server) orgDelete(c *Ctx) error {
	o, err := s.org(c, authz.OrgDelete)
	if err != nil {
		return err
	}
	if c.R.PostFormValue("confirm") != o.Name {
		return s.orgFormError(c, o, "settings", apperr.InvalidField("confirm", "type the org name to confirm"))
	}
	if err := s.ids.DeleteOrg(c.R.Context(), o.ID); err != nil {
		return err
	}
	return c.Redirect("/orgs", "Organisation "+o.Name+" deleted.")
}

func (s *Server) teamCreate(c *Ctx) error {
	o, err := s.org(c, authz.OrgTeamsWrite)
	if err != nil {
		return err
	}
	t, err := s.ids.CreateTeam(c.R.Context(), o.ID, strings.TrimSpace(c.R.PostFormValue("name")), c.R.PostFormValue("description"))
	if err != nil {
		return s.orgFormError(c, o, "teams", err)
	}
	return c.Redirect("/orgs/"+o.Name+"/teams/"+t.Name, "Team created.")
}

func (s *Server) teamPage(c *Ctx) error {
	o, err := s.org(c, authz.OrgRead)
	if err != nil {
		return err
	}
	v, err := s.teamData(c, o)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "org", o.Name, v)
}

func (s *Server) teamData(c *Ctx, o identity.Org) (orgView, error) {
	ctx := c.R.Context()
	t, err := s.ids.Team(ctx, o.ID, c.R.PathValue("team"))
	if err != nil {
		return orgView{}, err
	}
	v, err := s.orgData(c, o, "team")
	if err != nil {
		return v, err
	}
	v.Team = &t
	v.TeamMembers, err = s.ids.TeamMembers(ctx, t.ID)
	return v, err
}

func (s *Server) teamMemberAdd(c *Ctx) error {
	o, err := s.org(c, authz.OrgTeamsWrite)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	t, err := s.ids.Team(ctx, o.ID, c.R.PathValue("team"))
	if err != nil {
		return err
	}
	u, err := s.ids.UserByName(ctx, strings.TrimSpace(c.R.PostFormValue("username")))
	if err == nil {
		err = s.ids.AddTeamMember(ctx, t, u.ID)
	}
	if err != nil {
		v, verr := s.teamData(c, o)
		if verr != nil {
			return verr
		}
		return c.RenderForm("org", o.Name, v, err)
	}
	return c.Redirect("/orgs/"+o.Name+"/teams/"+t.Name, u.Username+" added.")
}

func (s *Server) teamMemberRemove(c *Ctx) error {
	o, err := s.org(c, authz.OrgTeamsWrite)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	t, err := s.ids.Team(ctx, o.ID, c.R.PathValue("team"))
	if err != nil {
		return err
	}
	u, err := s.ids.UserByName(ctx, c.R.PathValue("username"))
	if err != nil {
		return err
	}
	if err := s.ids.RemoveTeamMember(ctx, t, u.ID); err != nil {
		return err
	}
	return c.Redirect("/orgs/"+o.Name+"/teams/"+t.Name, u.Username+" removed.")
}

func (s *Server) teamDelete(c *Ctx) error {
	o, err := s.org(c, authz.OrgTeamsWrite)
	if err != nil {
		return err
	}
	t, err := s.ids.Team(c.R.Context(), o.ID, c.R.PathValue("team"))
	if err != nil {
		return err
	}
	if err := s.ids.DeleteTeam(c.R.Context(), t); err != nil {
		return err
	}
	return c.Redirect("/orgs/"+o.Name+"/teams", "Team "+t.Name+" deleted.")
}

func (s *Server) projectCreate(c *Ctx) error {
	o, err := s.org(c, authz.ProjectCreate)
	if err != nil {
		return err
	}
	p, err := s.ids.CreateProject(c.R.Context(), o.ID, strings.TrimSpace(c.R.PostFormValue("name")), c.R.PostFormValue("description"))
	if err != nil {
		return s.orgFormError(c, o, "projects", err)
	}
	return c.Redirect("/orgs/"+o.Name+"/projects/"+p.Name, "Project created.")
}

// project loads the project in the path and checks action a on it.
func (s *Server) project(c *Ctx, a authz.Action) (identity.Org, identity.Project, error) {
	ctx := c.R.Context()
	o, err := s.ids.Org(ctx, c.R.PathValue("org"))
	if err != nil {
		return o, identity.Project{}, err
	}
	p, err := s.ids.Project(ctx, o.ID, c.R.PathValue("project"))
	if err != nil {
		return o, p, err
	}
	return o, p, c.Check(a, p.Resource(o))
}

func (s *Server) projectData(c *Ctx, o identity.Org, p identity.Project) (orgView, error) {
	v := orgView{Org: o, Tab: "project", Role: c.P.Subject.ProjectRole(o.ID, p.ID).String(), Roles: authz.RoleNames(), Project: &p,
		CanGrant:  authz.Decide(c.P.Subject, authz.ProjectMembersWrite, p.Resource(o)).Allow,
		CanDelete: authz.Decide(c.P.Subject, authz.ProjectDelete, p.Resource(o)).Allow}
	var err error
	if v.Grants, err = s.ids.Grants(c.R.Context(), p); err != nil {
		return v, err
	}
	if v.CanGrant {
		v.Teams, err = s.ids.Teams(c.R.Context(), o.ID)
	}
	return v, err
}

func (s *Server) projectPage(c *Ctx) error {
	o, p, err := s.project(c, authz.ProjectRead)
	if err != nil {
		return err
	}
	v, err := s.projectData(c, o, p)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "org", o.Name+"/"+p.Name, v)
}

func (s *Server) grantSubmit(c *Ctx) error {
	o, p, err := s.project(c, authz.ProjectMembersWrite)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	role := authz.NoRole
	if r := c.R.PostFormValue("role"); r != "none" {
		role, err = authz.ParseRole(r)
	}
	if err == nil {
		// Nobody hands out, changes or takes away a role above their own.
		grant := func(old authz.Role, oerr error) error {
			if oerr != nil {
				return oerr
			}
			res := p.Resource(o)
			res.Grant = max(role, old)
			return c.Check(authz.ProjectMembersWrite, res)
		}
		switch who := strings.TrimSpace(c.R.PostFormValue("who")); {
		case strings.HasPrefix(who, "team:"):
			var t identity.Team
			if t, err = s.ids.Team(ctx, o.ID, strings.TrimPrefix(who, "team:")); err == nil {
				if err = grant(s.ids.TeamGrant(ctx, p, t.ID)); err == nil {
					err = s.ids.GrantTeam(ctx, p, t, role)
				}
			}
		default:
			var u identity.User
			if u, err = s.ids.UserByName(ctx, strings.TrimPrefix(who, "user:")); err == nil {
				if err = grant(s.ids.UserGrant(ctx, p, u.ID)); err == nil {
					err = s.ids.GrantUser(ctx, p, u.ID, role)
				}
			}
		}
	}
	if err != nil {
		v, verr := s.projectData(c, o, p)
		if verr != nil {
			return verr
		}
		return c.RenderForm("org", o.Name+"/"+p.Name, v, err)
	}
	return c.Redirect("/orgs/"+o.Name+"/projects/"+p.Name, "Access updated.")
}

func (s *Server) projectDelete(c *Ctx) error {
	o, p, err := s.project(c, authz.ProjectDelete)
	if err != nil {
		return err
	}
	if err := s.ids.DeleteProject(c.R.Context(), p); err != nil {
		return err
	}
	return c.Redirect("/orgs/"+o.Name+"/projects", "Project "+p.Name+" deleted.")
}

func (s *Server) serviceAccountCreate(c *Ctx) error {
	o, err := s.org(c, authz.OrgServiceWrite)
	if err != nil {
		return err
	}
	role, err := authz.ParseRole(c.R.PostFormValue("role"))
	if err == nil {
		_, err = s.ids.CreateServiceAccount(c.R.Context(), o, strings.TrimSpace(c.R.PostFormValue("name")), c.R.PostFormValue("description"), role)
	}
	if err != nil {
		return s.orgFormError(c, o, "service-accounts", err)
	}
	return c.Redirect("/orgs/"+o.Name+"/service-accounts", "Service account created.")
}

func (s *Server) serviceAccountToken(c *Ctx) error {
	o, err := s.org(c, authz.OrgServiceWrite)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	u, err := s.ids.UserByName(ctx, c.R.PathValue("name"))
	if err != nil || u.Kind != identity.KindService || u.OwnerOrgID != o.ID {
		return apperr.E(apperr.NotFound, "no such service account")
	}
	scopes, err := authz.ParseScopes(c.R.PostForm["scopes"])
	if err != nil {
		return s.orgFormError(c, o, "service-accounts", err)
	}
	days, err := strconv.Atoi(c.R.PostFormValue("days"))
	if err != nil || days < 1 || days > 366 {
		return s.orgFormError(c, o, "service-accounts", apperr.InvalidField("days", "expiry must be 1 to 366 days"))
	}
	secret, t, err := s.ids.CreateToken(ctx, u.ID, identity.NewToken{Name: c.R.PostFormValue("token_name"), Scopes: scopes, Lifetime: dayDuration(days)})
	if err != nil {
		return s.orgFormError(c, o, "service-accounts", err)
	}
	return c.Render(http.StatusOK, "token_created", "Token created", tokenCreatedView{Token: t, Secret: secret})
}

func (s *Server) serviceAccountDelete(c *Ctx) error {
	o, err := s.org(c, authz.OrgServiceWrite)
	if err != nil {
		return err
	}
	if err := s.ids.DeleteServiceAccount(c.R.Context(), o, c.R.PathValue("name")); err != nil {
		return s.orgFormError(c, o, "service-accounts", err)
	}
	return c.Redirect("/orgs/"+o.Name+"/service-accounts", "Service account deleted.")
}
