package identity

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/store"
)

// Team is a named group of org members that can be granted project roles.
type Team struct {
	ID          int64
	OrgID       int64
	Name        string
	Description string
	CreatedAt   time.Time
}

func teamTarget(t Team) audit.Target {
	return audit.Target{Type: "team", ID: strconv.FormatInt(t.ID, 10), Name: t.Name}
}

const selectTeam = "SELECT id, org_id, name, description, created_at FROM teams"

func scanTeam(r interface{ Scan(...any) error }) (Team, error) {
	var t Team
	err := r.Scan(&t.ID, &t.OrgID, &t.Name, &t.Description, store.TimeDest(&t.CreatedAt))
	return t, err
}

// CreateTeam creates a team in an org.
func (s *Service) CreateTeam(ctx context.Context, orgID int64, name, description string) (Team, error) {
	if err := ValidateName("name", name); err != nil {
		return Team{}, err
	}
	if err := validateText("description", description, 500, true); err != nil {
		return Team{}, err
	}
	t := Team{OrgID: orgID, Name: name, Description: description}
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		now := s.now()
		err := tx.QueryRow(ctx, "INSERT INTO teams (org_id, name, description, created_at) VALUES (?, ?, ?, ?) RETURNING id",
			orgID, name, description, store.Time(now)).Scan(&t.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "name", Msg: fmt.Sprintf("team %q already exists", name)}
		}
		if err != nil {
			return err
		}
		t.CreatedAt = now.UTC().Truncate(time.Microsecond)
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "team.create", OrgID: orgID, Target: teamTarget(t)})
	})
	return t, err
}

// Team returns a team of an org by name.
func (s *Service) Team(ctx context.Context, orgID int64, name string) (Team, error) {
	t, err := scanTeam(s.db.QueryRow(ctx, selectTeam+" WHERE org_id = ? AND name = ?", orgID, name))
	if apperr.Is(err, apperr.NotFound) {
		return t, apperr.E(apperr.NotFound, "team %q not found", name)
	}
	return t, err
}

// Teams lists an org's teams.
func (s *Service) Teams(ctx context.Context, orgID int64) ([]Team, error) {
	rows, err := s.db.Query(ctx, selectTeam+" WHERE org_id = ? ORDER BY name", orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Team
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTeam deletes a team; its members keep their org membership.
func (s *Service) DeleteTeam(ctx context.Context, t Team) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM teams WHERE id = ?", t.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "team %q not found", t.Name)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "team.delete", OrgID: t.OrgID, Target: teamTarget(t)})
	})
}

// TeamMembers lists the users in a team.
func (s *Service) TeamMembers(ctx context.Context, teamID int64) ([]User, error) {
	rows, err := s.db.Query(ctx, `SELECT u.id, u.username, u.email, u.email_verified, u.display_name, u.kind, u.owner_org_id,
		u.site_admin, u.disabled, u.created_at, u.password_hash <> '' FROM team_members tm JOIN users u ON u.id = tm.user_id
		WHERE tm.team_id = ? ORDER BY u.username`, teamID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// AddTeamMember adds an org member to a team.
func (s *Service) AddTeamMember(ctx context.Context, t Team, userID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		var role string
		if err := tx.QueryRow(ctx, "SELECT role FROM org_members WHERE org_id = ? AND user_id = ?", t.OrgID, userID).Scan(&role); err != nil {
			if apperr.Is(err, apperr.NotFound) {
				return apperr.E(apperr.Invalid, "%s is not a member of the org; add them to the org first", u.Username)
			}
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO team_members (team_id, user_id, created_at) VALUES (?, ?, ?)", t.ID, userID, store.Time(s.now()))
		if apperr.Is(err, apperr.Conflict) {
			return apperr.E(apperr.Conflict, "%s is already in team %s", u.Username, t.Name)
		}
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "team.member.add", OrgID: t.OrgID, Target: userTarget(u),
			Details: map[string]any{"team": t.Name}})
	})
}

// RemoveTeamMember removes a user from a team.
func (s *Service) RemoveTeamMember(ctx context.Context, t Team, userID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, "DELETE FROM team_members WHERE team_id = ? AND user_id = ?", t.ID, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "%s is not in team %s", u.Username, t.Name)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "team.member.remove", OrgID: t.OrgID, Target: userTarget(u),
			Details: map[string]any{"team": t.Name}})
	})
}

// Project is a unit of work inside an org; repositories, pipelines,
// environments and secrets hang off projects.
type Project struct {
	ID          int64
	OrgID       int64
	Name        string
	Description string
	CreatedAt   time.Time
}

// Resource returns the authz resource of the project in org o.
func (p Project) Resource(o Org) authz.Resource {
	return authz.Resource{OrgID: o.ID, ProjectID: p.ID, RequireMFA: o.RequireMFA}
}

func projectTarget(p Project) audit.Target {
	return audit.Target{Type: "project", ID: strconv.FormatInt(p.ID, 10), Name: p.Name}
}

const selectProject = "SELECT id, org_id, name, description, created_at FROM projects"

func scanProject(r interface{ Scan(...any) error }) (Project, error) {
	var p Project
	err := r.Scan(&p.ID, &p.OrgID, &p.Name, &p.Description, store.TimeDest(&p.CreatedAt))
	return p, err
}

// CreateProject creates a project in an org.
func (s *Service) CreateProject(ctx context.Context, orgID int64, name, description string) (Project, error) {
	if err := ValidateName("name", name); err != nil {
		return Project{}, err
	}
	if err := validateText("description", description, 2000, true); err != nil {
		return Project{}, err
	}
	p := Project{OrgID: orgID, Name: name, Description: description}
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		now := s.now()
		err := tx.QueryRow(ctx, "INSERT INTO projects (org_id, name, description, created_at) VALUES (?, ?, ?, ?) RETURNING id",
			orgID, name, description, store.Time(now)).Scan(&p.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "name", Msg: fmt.Sprintf("project %q already exists", name)}
		}
		if err != nil {
			return err
		}
		p.CreatedAt = now.UTC().Truncate(time.Microsecond)
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "project.create", OrgID: orgID, Target: projectTarget(p)})
	})
	return p, err
}

// Project returns a project of an org by name.
func (s *Service) Project(ctx context.Context, orgID int64, name string) (Project, error) {
	p, err := scanProject(s.db.QueryRow(ctx, selectProject+" WHERE org_id = ? AND name = ?", orgID, name))
	if apperr.Is(err, apperr.NotFound) {
		return p, apperr.E(apperr.NotFound, "project %q not found", name)
	}
	return p, err
}

// Projects lists an org's projects.
func (s *Service) Projects(ctx context.Context, orgID int64) ([]Project, error) {
	rows, err := s.db.Query(ctx, selectProject+" WHERE org_id = ? ORDER BY name", orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteProject deletes a project.
func (s *Service) DeleteProject(ctx context.Context, p Project) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM projects WHERE id = ?", p.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "project %q not found", p.Name)
		}
		if err := s.runDeleteHooks(ctx, tx, p.OrgID, p.ID, "project.delete"); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "project.delete", OrgID: p.OrgID, Target: projectTarget(p)})
	})
}

// Grant is a project role held by a user or a team.
type Grant struct {
	User *User
	Team *Team
	Role authz.Role
}

// Grants lists the explicit grants on a project.
func (s *Service) Grants(ctx context.Context, p Project) ([]Grant, error) {
	var out []Grant
	rows, err := s.db.Query(ctx, `SELECT u.id, u.username, u.email, u.email_verified, u.display_name, u.kind, u.owner_org_id,
		u.site_admin, u.disabled, u.created_at, u.password_hash <> '', g.role
		FROM project_user_grants g JOIN users u ON u.id = g.user_id WHERE g.project_id = ? ORDER BY u.username`, p.ID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			u     User
			owner *int64
			kind  string
			role  string
		)
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.DisplayName, &kind, &owner, &u.SiteAdmin,
			&u.Disabled, store.TimeDest(&u.CreatedAt), &u.HasPassword, &role); err != nil {
			rows.Close()
			return nil, err
		}
		u.Kind = UserKind(kind)
		if owner != nil {
			u.OwnerOrgID = *owner
		}
		r, _ := authz.ParseRole(role)
		out = append(out, Grant{User: &u, Role: r})
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, err
	}
	rows.Close()
	rows, err = s.db.Query(ctx, `SELECT t.id, t.org_id, t.name, t.description, t.created_at, g.role
		FROM project_team_grants g JOIN teams t ON t.id = g.team_id WHERE g.project_id = ? ORDER BY t.name`, p.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t    Team
			role string
		)
		if err := rows.Scan(&t.ID, &t.OrgID, &t.Name, &t.Description, store.TimeDest(&t.CreatedAt), &role); err != nil {
			return nil, err
		}
		r, _ := authz.ParseRole(role)
		out = append(out, Grant{Team: &t, Role: r})
	}
	return out, rows.Err()
}

// GrantUser gives a user a role on a project (NoRole revokes it).
func (s *Service) GrantUser(ctx context.Context, p Project, userID int64, role authz.Role) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		if role != authz.NoRole && u.Kind == KindService && u.OwnerOrgID != p.OrgID {
			return apperr.E(apperr.Invalid, "service account %q belongs to another org", u.Username)
		}
		if role == authz.NoRole {
			n, err := tx.Exec(ctx, "DELETE FROM project_user_grants WHERE project_id = ? AND user_id = ?", p.ID, userID)
			if err != nil {
				return err
			}
			if n == 0 {
				return apperr.E(apperr.NotFound, "%s has no grant on %s", u.Username, p.Name)
			}
		} else if _, err := tx.Exec(ctx, `INSERT INTO project_user_grants (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role`, p.ID, userID, role.String(), store.Time(s.now())); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "project.grant", OrgID: p.OrgID, Target: userTarget(u),
			Details: map[string]any{"project": p.Name, "role": role.String()}})
	})
}

// GrantTeam gives a team a role on a project (NoRole revokes it).
func (s *Service) GrantTeam(ctx context.Context, p Project, t Team, role authz.Role) error {
	if t.OrgID != p.OrgID {
		return apperr.E(apperr.Invalid, "team %s belongs to another org", t.Name)
	}
	return s.writeTx(ctx, func(tx *store.Tx) error {
		if role == authz.NoRole {
			n, err := tx.Exec(ctx, "DELETE FROM project_team_grants WHERE project_id = ? AND team_id = ?", p.ID, t.ID)
			if err != nil {
				return err
			}
			if n == 0 {
				return apperr.E(apperr.NotFound, "team %s has no grant on %s", t.Name, p.Name)
			}
		} else if _, err := tx.Exec(ctx, `INSERT INTO project_team_grants (project_id, team_id, role, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, team_id) DO UPDATE SET role = excluded.role`, p.ID, t.ID, role.String(), store.Time(s.now())); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "project.grant", OrgID: p.OrgID, Target: teamTarget(t),
			Details: map[string]any{"project": p.Name, "role": role.String()}})
	})
}

// UserGrant returns the role a user holds on a project by a direct grant
// (NoRole when none).
func (s *Service) UserGrant(ctx context.Context, p Project, userID int64) (authz.Role, error) {
	return s.grantRole(ctx, "SELECT role FROM project_user_grants WHERE project_id = ? AND user_id = ?", p.ID, userID)
}

// TeamGrant returns the role a team holds on a project (NoRole when none).
func (s *Service) TeamGrant(ctx context.Context, p Project, teamID int64) (authz.Role, error) {
	return s.grantRole(ctx, "SELECT role FROM project_team_grants WHERE project_id = ? AND team_id = ?", p.ID, teamID)
}

func (s *Service) grantRole(ctx context.Context, q string, args ...any) (authz.Role, error) {
	var role string
	err := s.db.QueryRow(ctx, q, args...).Scan(&role)
	if apperr.Is(err, apperr.NotFound) {
		return authz.NoRole, nil
	}
	if err != nil {
		return authz.NoRole, err
	}
	return authz.ParseRole(role)
}
