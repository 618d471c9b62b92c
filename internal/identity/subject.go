package identity

import (
	"context"

	"github.com/rampartsec/rampart/internal/authz"
)

// Subject loads everything authz needs to know about a user: org roles,
// project grants (direct and through teams) and MFA status. scopes is nil
// for a browser session; via names the credential.
func (s *Service) Subject(ctx context.Context, u User, scopes []authz.Scope, via string) (authz.Subject, error) {
	sub := authz.Subject{
		UserID:       u.ID,
		Name:         u.Username,
		SiteAdmin:    u.SiteAdmin,
		Service:      u.Kind == KindService,
		OrgRoles:     map[int64]authz.Role{},
		ProjectRoles: map[int64]authz.Role{},
		Scopes:       scopes,
		Via:          via,
	}
	if scopes == nil && via != "session" {
		sub.Scopes = []authz.Scope{} // a credential without scopes may do nothing scoped
	}
	rows, err := s.db.Query(ctx, "SELECT org_id, role FROM org_members WHERE user_id = ?", u.ID)
	if err != nil {
		return sub, err
	}
	for rows.Next() {
		var (
			id   int64
			role string
		)
		if err := rows.Scan(&id, &role); err != nil {
			rows.Close()
			return sub, err
		}
		sub.OrgRoles[id], _ = authz.ParseRole(role)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return sub, err
	}
	rows.Close()
	rows, err = s.db.Query(ctx, `SELECT project_id, role FROM project_user_grants WHERE user_id = ?
		UNION ALL
		SELECT g.project_id, g.role FROM project_team_grants g JOIN team_members tm ON tm.team_id = g.team_id WHERE tm.user_id = ?`,
		u.ID, u.ID)
	if err != nil {
		return sub, err
	}
	for rows.Next() {
		var (
			id   int64
			role string
		)
		if err := rows.Scan(&id, &role); err != nil {
			rows.Close()
			return sub, err
		}
		r, _ := authz.ParseRole(role)
		sub.ProjectRoles[id] = max(sub.ProjectRoles[id], r)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return sub, err
	}
	rows.Close()
	st, err := s.MFAStatus(ctx, u.ID)
	if err != nil {
		return sub, err
	}
	sub.MFA = st.Enrolled()
	return sub, nil
}
