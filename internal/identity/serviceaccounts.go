package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/store"
)

// CreateServiceAccount creates a non-human user owned by an org, with a
// role in it. Its name is prefixed with the org's ("ORG-bot-NAME") so that
// it cannot be mistaken for a person.
func (s *Service) CreateServiceAccount(ctx context.Context, o Org, name, description string, role authz.Role) (User, error) {
	if err := ValidateName("name", name); err != nil {
		return User{}, err
	}
	if role == authz.NoRole || role == authz.Owner {
		return User{}, apperr.InvalidField("role", "a service account may be maintainer, developer or reader")
	}
	if err := validateText("description", description, 100, false); err != nil {
		return User{}, err
	}
	username := o.Name + "-bot-" + name
	if err := ValidateName("name", username); err != nil {
		return User{}, apperr.InvalidField("name", "service account name too long for org %s", o.Name)
	}
	var u User
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		now := s.now()
		err := tx.QueryRow(ctx, `INSERT INTO users (username, display_name, kind, owner_org_id, created_at, updated_at)
			VALUES (?, ?, 'service', ?, ?, ?) RETURNING id`, username, description, o.ID, store.Time(now), store.Time(now)).Scan(&u.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "name", Msg: fmt.Sprintf("service account %q already exists", username)}
		}
		if err != nil {
			return err
		}
		u = User{ID: u.ID, Username: username, DisplayName: description, Kind: KindService, OwnerOrgID: o.ID,
			CreatedAt: now.UTC().Truncate(time.Microsecond)}
		if _, err := tx.Exec(ctx, "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
			o.ID, u.ID, role.String(), store.Time(now)); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "serviceaccount.create", OrgID: o.ID, Target: userTarget(u),
			Details: map[string]any{"role": role.String()}})
	})
	return u, err
}

// ServiceAccounts lists an org's service accounts.
func (s *Service) ServiceAccounts(ctx context.Context, orgID int64) ([]User, error) {
	rows, err := s.db.Query(ctx, selectUser+" WHERE kind = 'service' AND owner_org_id = ? ORDER BY username", orgID)
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

// DeleteServiceAccount deletes a service account and its tokens.
func (s *Service) DeleteServiceAccount(ctx context.Context, o Org, username string) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE username = ? AND kind = 'service' AND owner_org_id = ?", username, o.ID))
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "service account %q not found in %s", username, o.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM users WHERE id = ?", u.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "serviceaccount.delete", OrgID: o.ID, Target: userTarget(u)})
	})
}
