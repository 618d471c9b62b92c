package httpapi

import (
	"slices"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

func (s *Server) listOrgs(c *Call) error {
	ctx := c.R.Context()
	var (
		orgs []identity.Org
		err  error
	)
	if c.P.Subject.SiteAdmin && c.R.URL.Query().Get("all") == "true" {
		orgs, err = s.ids.ListOrgs(ctx)
	} else {
		orgs, err = s.ids.OrgsOf(ctx, c.P.User.ID)
	}
	if err != nil {
		return err
	}
	out := make([]Org, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, OrgOf(o, c.P.Subject.OrgRole(o.ID)))
	}
	return c.JSON(out)
}

func (s *Server) createOrg(c *Call) error {
	var req CreateOrgRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	o, err := s.ids.CreateOrg(c.R.Context(), c.P.User.ID, req.Name, req.DisplayName)
	if err != nil {
		return err
	}
	return c.JSON(OrgOf(o, authz.Owner))
}

func (s *Server) getOrg(c *Call) error {
	return c.JSON(OrgOf(c.Org, c.P.Subject.OrgRole(c.Org.ID)))
}

func (s *Server) updateOrg(c *Call) error {
	var req UpdateOrgRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	o, err := s.ids.UpdateOrg(c.R.Context(), c.Org.ID, identity.OrgUpdate{DisplayName: req.DisplayName, RequireMFA: req.RequireMFA})
	if err != nil {
		return err
	}
	return c.JSON(OrgOf(o, c.P.Subject.OrgRole(o.ID)))
}

func (s *Server) deleteOrg(c *Call) error {
	if err := s.ids.DeleteOrg(c.R.Context(), c.Org.ID); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listMembers(c *Call) error {
	ms, err := s.ids.Members(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{Username: m.User.Username, Kind: string(m.User.Kind), Role: m.Role.String()})
	}
	return c.JSON(out)
}

func (s *Server) userFromPath(c *Call) (identity.User, error) {
	return s.ids.UserByName(c.R.Context(), c.R.PathValue("username"))
}

func (s *Server) setMember(c *Call) error {
	var req RoleRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	role, err := authz.ParseRole(req.Role)
	if err != nil {
		return err
	}
	u, err := s.userFromPath(c)
	if err != nil {
		return err
	}
	if err := s.ids.SetMember(c.R.Context(), c.Org.ID, u.ID, role); err != nil {
		return err
	}
	return c.JSON(Member{Username: u.Username, Kind: string(u.Kind), Role: role.String()})
}

func (s *Server) removeMember(c *Call) error {
	u, err := s.userFromPath(c)
	if err != nil {
		return err
	}
	if err := s.ids.RemoveMember(c.R.Context(), c.Org.ID, u.ID); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listTeams(c *Call) error {
	ts, err := s.ids.Teams(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	out := make([]Team, 0, len(ts))
	for _, t := range ts {
		out = append(out, TeamOf(t))
	}
	return c.JSON(out)
}

func (s *Server) createTeam(c *Call) error {
	var req CreateTeamRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	t, err := s.ids.CreateTeam(c.R.Context(), c.Org.ID, req.Name, req.Description)
	if err != nil {
		return err
	}
	return c.JSON(TeamOf(t))
}

func (s *Server) teamFromPath(c *Call) (identity.Team, error) {
	return s.ids.Team(c.R.Context(), c.Org.ID, c.R.PathValue("team"))
}

func (s *Server) deleteTeam(c *Call) error {
	t, err := s.teamFromPath(c)
	if err != nil {
		return err
	}
	if err := s.ids.DeleteTeam(c.R.Context(), t); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listTeamMembers(c *Call) error {
	t, err := s.teamFromPath(c)
	if err != nil {
		return err
	}
	us, err := s.ids.TeamMembers(c.R.Context(), t.ID)
	if err != nil {
		return err
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		w := UserOf(u)
		w.Email = ""
		out = append(out, w)
	}
	return c.JSON(out)
}

func (s *Server) addTeamMember(c *Call) error {
	t, err := s.teamFromPath(c)
	if err != nil {
		return err
	}
	u, err := s.userFromPath(c)
	if err != nil {
		return err
	}
	if err := s.ids.AddTeamMember(c.R.Context(), t, u.ID); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) removeTeamMember(c *Call) error {
	t, err := s.teamFromPath(c)
	if err != nil {
		return err
	}
	u, err := s.userFromPath(c)
	if err != nil {
		return err
	}
	if err := s.ids.RemoveTeamMember(c.R.Context(), t, u.ID); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listProjects(c *Call) error {
	ps, err := s.ids.Projects(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	out := make([]Project, 0, len(ps))
	for _, p := range ps {
		out = append(out, ProjectOf(c.Org, p))
	}
	return c.JSON(out)
}

func (s *Server) createProject(c *Call) error {
	var req CreateProjectRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	p, err := s.ids.CreateProject(c.R.Context(), c.Org.ID, req.Name, req.Description)
	if err != nil {
		return err
	}
	return c.JSON(ProjectOf(c.Org, p))
}

func (s *Server) getProject(c *Call) error {
	return c.JSON(ProjectOf(c.Org, c.Project))
}

func (s *Server) deleteProject(c *Call) error {
	if err := s.ids.DeleteProject(c.R.Context(), c.Project); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listGrants(c *Call) error {
	gs, err := s.ids.Grants(c.R.Context(), c.Project)
	if err != nil {
		return err
	}
	out := make([]Grant, 0, len(gs))
	for _, g := range gs {
		w := Grant{Role: g.Role.String()}
		if g.User != nil {
			w.User = g.User.Username
		}
		if g.Team != nil {
			w.Team = g.Team.Name
		}
		out = append(out, w)
	}
	return c.JSON(out)
}

func (s *Server) decodeRole(c *Call) (authz.Role, error) {
	var req RoleRequest
	if err := c.Decode(&req); err != nil {
		return authz.NoRole, err
	}
	return authz.ParseRole(req.Role)
}

// checkGrant refuses to hand out, change or take away a project role above
// the caller's own: the resource carries the highest role involved.
func checkGrant(c *Call, roles ...authz.Role) error {
	res := c.Project.Resource(c.Org)
	res.Grant = slices.Max(roles)
	return authz.Check(c.P.Subject, c.route.Action, res)
}

func (s *Server) grantUser(c *Call) error {
	role, err := s.decodeRole(c)
	if err != nil {
		return err
	}
	return s.setUserGrant(c, role)
}

func (s *Server) revokeUser(c *Call) error { return s.setUserGrant(c, authz.NoRole) }

func (s *Server) setUserGrant(c *Call, role authz.Role) error {
	ctx := c.R.Context()
	u, err := s.userFromPath(c)
	if err != nil {
		return err
	}
	old, err := s.ids.UserGrant(ctx, c.Project, u.ID)
	if err != nil {
		return err
	}
	if err := checkGrant(c, role, old); err != nil {
		return err
	}
	if err := s.ids.GrantUser(ctx, c.Project, u.ID, role); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) grantTeam(c *Call) error {
	role, err := s.decodeRole(c)
	if err != nil {
		return err
	}
	return s.setTeamGrant(c, role)
}

func (s *Server) revokeTeam(c *Call) error { return s.setTeamGrant(c, authz.NoRole) }

func (s *Server) setTeamGrant(c *Call, role authz.Role) error {
	ctx := c.R.Context()
	t, err := s.teamFromPath(c)
	if err != nil {
		return err
	}
	old, err := s.ids.TeamGrant(ctx, c.Project, t.ID)
	if err != nil {
		return err
	}
	if err := checkGrant(c, role, old); err != nil {
		return err
	}
	if err := s.ids.GrantTeam(ctx, c.Project, t, role); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listServiceAccounts(c *Call) error {
	ctx := c.R.Context()
	us, err := s.ids.ServiceAccounts(ctx, c.Org.ID)
	if err != nil {
		return err
	}
	ms, err := s.ids.Members(ctx, c.Org.ID)
	if err != nil {
		return err
	}
	roles := map[int64]authz.Role{}
	for _, m := range ms {
		roles[m.User.ID] = m.Role
	}
	out := make([]ServiceAccount, 0, len(us))
	for _, u := range us {
		out = append(out, ServiceAccount{Username: u.Username, Description: u.DisplayName, Role: roles[u.ID].String(), CreatedAt: u.CreatedAt})
	}
	return c.JSON(out)
}

func (s *Server) createServiceAccount(c *Call) error {
	var req CreateServiceAccountRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	role, err := authz.ParseRole(req.Role)
	if err != nil {
		return err
	}
	u, err := s.ids.CreateServiceAccount(c.R.Context(), c.Org, req.Name, req.Description, role)
	if err != nil {
		return err
	}
	return c.JSON(ServiceAccount{Username: u.Username, Description: u.DisplayName, Role: role.String(), CreatedAt: u.CreatedAt})
}

func (s *Server) serviceAccountFromPath(c *Call) (identity.User, error) {
	name := c.R.PathValue("name")
	u, err := s.ids.UserByName(c.R.Context(), name)
	if err != nil || u.Kind != identity.KindService || u.OwnerOrgID != c.Org.ID {
		return identity.User{}, apperr.E(apperr.NotFound, "service account %q not found in %s", name, c.Org.Name)
	}
	return u, nil
}

func (s *Server) deleteServiceAccount(c *Call) error {
	u, err := s.serviceAccountFromPath(c)
	if err != nil {
		return err
	}
	if err := s.ids.DeleteServiceAccount(c.R.Context(), c.Org, u.Username); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listServiceTokens(c *Call) error {
	u, err := s.serviceAccountFromPath(c)
	if err != nil {
		return err
	}
	return s.writeTokens(c, u.ID)
}

func (s *Server) createServiceToken(c *Call) error {
	u, err := s.serviceAccountFromPath(c)
	if err != nil {
		return err
	}
	return s.createTokenFor(c, u.ID, identity.TokenService)
}

func (s *Server) revokeServiceToken(c *Call) error {
	u, err := s.serviceAccountFromPath(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.ids.RevokeToken(c.R.Context(), u.ID, id); err != nil {
		return err
	}
	return c.NoContent()
}
