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

// Org is an organisation: the unit that owns projects, repositories and
// members.
type Org struct {
	ID          int64
	Name        string
	DisplayName string
	RequireMFA  bool
	CreatedAt   time.Time
}

// Resource returns the authz resource of the org itself.
func (o Org) Resource() authz.Resource {
	return authz.Resource{OrgID: o.ID, RequireMFA: o.RequireMFA}
}

func orgTarget(o Org) audit.Target {
	return audit.Target{Type: "org", ID: strconv.FormatInt(o.ID, 10), Name: o.Name}
}

const selectOrg = "SELECT id, name, display_name, require_mfa, created_at FROM orgs"

func scanOrg(r interface{ Scan(...any) error }) (Org, error) {
	var o Org
	err := r.Scan(&o.ID, &o.Name, &o.DisplayName, &o.RequireMFA, store.TimeDest(&o.CreatedAt))
	return o, err
}

// CreateOrg creates an org with the creator as its owner.
func (s *Service) CreateOrg(ctx context.Context, creatorID int64, name, displayName string) (Org, error) {
	if err := ValidateName("name", name); err != nil {
		return Org{}, err
	}
	if err := validateText("display_name", displayName, 100, false); err != nil {
		return Org{}, err
	}
	var o Org
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		now := s.now()
		err := tx.QueryRow(ctx, "INSERT INTO orgs (name, display_name, created_at) VALUES (?, ?, ?) RETURNING id",
			name, displayName, store.Time(now)).Scan(&o.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "name", Msg: fmt.Sprintf("org %q already exists", name)}
		}
		if err != nil {
			return err
		}
		o.Name, o.DisplayName, o.CreatedAt = name, displayName, now.UTC().Truncate(time.Microsecond)
		if _, err := tx.Exec(ctx, "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
			o.ID, creatorID, authz.Owner.String(), store.Time(now)); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "org.create", OrgID: o.ID, Target: orgTarget(o)})
	})
	return o, err
}

// Org returns an org by name.
func (s *Service) Org(ctx context.Context, name string) (Org, error) {
	o, err := scanOrg(s.db.QueryRow(ctx, selectOrg+" WHERE name = ?", name))
	if apperr.Is(err, apperr.NotFound) {
		return o, apperr.E(apperr.NotFound, "org %q not found", name)
	}
	return o, err
}

// OrgByID returns an org by id.
func (s *Service) OrgByID(ctx context.Context, id int64) (Org, error) {
	o, err := scanOrg(s.db.QueryRow(ctx, selectOrg+" WHERE id = ?", id))
	if apperr.Is(err, apperr.NotFound) {
		return o, apperr.E(apperr.NotFound, "org %d not found", id)
	}
	return o, err
}

// ListOrgs returns every org, by name (site administrators' view).
func (s *Service) ListOrgs(ctx context.Context) ([]Org, error) {
	return s.queryOrgs(ctx, selectOrg+" ORDER BY name")
}

// OrgsOf returns the orgs a user is a member of.
func (s *Service) OrgsOf(ctx context.Context, userID int64) ([]Org, error) {
	return s.queryOrgs(ctx, `SELECT o.id, o.name, o.display_name, o.require_mfa, o.created_at FROM orgs o
		JOIN org_members m ON m.org_id = o.id WHERE m.user_id = ? ORDER BY o.name`, userID)
}

func (s *Service) queryOrgs(ctx context.Context, q string, args ...any) ([]Org, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// OrgUpdate changes org settings; nil fields stay as they are.
type OrgUpdate struct {
	DisplayName *string
	RequireMFA  *bool
}

// UpdateOrg applies u to the org.
func (s *Service) UpdateOrg(ctx context.Context, orgID int64, u OrgUpdate) (Org, error) {
	if u.DisplayName != nil {
		if err := validateText("display_name", *u.DisplayName, 100, false); err != nil {
			return Org{}, err
		}
	}
	var o Org
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		var err error
		if o, err = scanOrg(tx.QueryRow(ctx, selectOrg+" WHERE id = ?", orgID)); err != nil {
			return err
		}
		details := map[string]any{}
		if u.DisplayName != nil {
			o.DisplayName = *u.DisplayName
			details["display_name"] = o.DisplayName
		}
		if u.RequireMFA != nil {
			o.RequireMFA = *u.RequireMFA
			details["require_mfa"] = o.RequireMFA
		}
		if _, err := tx.Exec(ctx, "UPDATE orgs SET display_name = ?, require_mfa = ? WHERE id = ?", o.DisplayName, o.RequireMFA, o.ID); err != nil {
			return err
		}
		action := "org.update"
		if u.RequireMFA != nil {
			action = "org.update.require_mfa"
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: o.ID, Target: orgTarget(o), Details: details})
	})
	return o, err
}

// DeleteOrg deletes an org with its teams, projects and service accounts.
func (s *Service) DeleteOrg(ctx context.Context, orgID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		o, err := scanOrg(tx.QueryRow(ctx, selectOrg+" WHERE id = ?", orgID))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM orgs WHERE id = ?", orgID); err != nil {
			return err
		}
		if err := s.runDeleteHooks(ctx, tx, o.ID, 0, "org.delete"); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "org.delete", OrgID: o.ID, Target: orgTarget(o)})
	})
}

// Member is a user's membership in an org.
type Member struct {
	User User
	Role authz.Role
}

// Members lists an org's members, by user name.
func (s *Service) Members(ctx context.Context, orgID int64) ([]Member, error) {
	rows, err := s.db.Query(ctx, `SELECT u.id, u.username, u.email, u.email_verified, u.display_name, u.kind, u.owner_org_id,
		u.site_admin, u.disabled, u.created_at, u.password_hash <> '', m.role
		FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? ORDER BY u.username`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var (
			m     Member
			owner *int64
			kind  string
			role  string
		)
		if err := rows.Scan(&m.User.ID, &m.User.Username, &m.User.Email, &m.User.EmailVerified, &m.User.DisplayName, &kind,
			&owner, &m.User.SiteAdmin, &m.User.Disabled, store.TimeDest(&m.User.CreatedAt), &m.User.HasPassword, &role); err != nil {
			return nil, err
		}
		m.User.Kind = UserKind(kind)
		if owner != nil {
			m.User.OwnerOrgID = *owner
		}
		m.Role, _ = authz.ParseRole(role)
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetMember adds a user to an org or changes their role.
func (s *Service) SetMember(ctx context.Context, orgID, userID int64, role authz.Role) error {
	if role == authz.NoRole {
		return apperr.InvalidField("role", "a role is required")
	}
	return s.writeTx(ctx, func(tx *store.Tx) error {
		o, err := scanOrg(tx.QueryRow(ctx, selectOrg+" WHERE id = ?", orgID))
		if err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		if u.Kind == KindService && u.OwnerOrgID != orgID {
			return apperr.E(apperr.Invalid, "service account %q belongs to another org", u.Username)
		}
		if u.Kind == KindService && role == authz.Owner {
			return apperr.InvalidField("role", "a service account may be maintainer, developer or reader")
		}
		var old string
		err = tx.QueryRow(ctx, "SELECT role FROM org_members WHERE org_id = ? AND user_id = ?", orgID, userID).Scan(&old)
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return err
		}
		if old == authz.Owner.String() && role != authz.Owner {
			if err := lastOwnerGuard(ctx, tx, orgID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role`, orgID, userID, role.String(), store.Time(s.now())); err != nil {
			return err
		}
		action := "org.member.add"
		if old != "" {
			action = "org.member.role"
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: orgID, Target: userTarget(u),
			Details: map[string]any{"org": o.Name, "role": role.String(), "previous_role": old}})
	})
}

// RemoveMember removes a user from an org (and its teams).
func (s *Service) RemoveMember(ctx context.Context, orgID, userID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		var role string
		if err := tx.QueryRow(ctx, "SELECT role FROM org_members WHERE org_id = ? AND user_id = ?", orgID, userID).Scan(&role); err != nil {
			if apperr.Is(err, apperr.NotFound) {
				return apperr.E(apperr.NotFound, "%s is not a member", u.Username)
			}
			return err
		}
		if role == authz.Owner.String() {
			if err := lastOwnerGuard(ctx, tx, orgID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM org_members WHERE org_id = ? AND user_id = ?", orgID, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM team_members WHERE user_id = ? AND team_id IN (SELECT id FROM teams WHERE org_id = ?)", userID, orgID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM project_user_grants WHERE user_id = ? AND project_id IN (SELECT id FROM projects WHERE org_id = ?)", userID, orgID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "org.member.remove", OrgID: orgID, Target: userTarget(u),
			Details: map[string]any{"previous_role": role}})
	})
}

// lastOwnerGuard refuses to remove or demote an org's last owner.
func lastOwnerGuard(ctx context.Context, tx *store.Tx, orgID int64) error {
	var n int
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM org_members WHERE org_id = ? AND role = 'owner'", orgID).Scan(&n); err != nil {
		return err
	}
	if n <= 1 {
		return apperr.E(apperr.Invalid, "an org must keep at least one owner")
	}
	return nil
}
