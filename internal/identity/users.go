package identity

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// UserKind tells people from service accounts.
type UserKind string

// User kinds.
const (
	KindHuman   UserKind = "human"
	KindService UserKind = "service"
)

// User is a person or an org-owned service account.
type User struct {
	ID            int64
	Username      string
	Email         string
	EmailVerified bool
	DisplayName   string
	Kind          UserKind
	// OwnerOrgID is the org owning a service account (0 for people).
	OwnerOrgID int64
	SiteAdmin  bool
	Disabled   bool
	CreatedAt  time.Time
	// HasPassword is false for federated-only users and service accounts.
	HasPassword bool
}

const selectUser = `SELECT id, username, email, email_verified, display_name, kind, owner_org_id, site_admin,
	disabled, created_at, password_hash <> '' FROM users`

func scanUser(r interface{ Scan(...any) error }) (User, error) {
	var (
		u     User
		owner *int64
		kind  string
	)
	err := r.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.DisplayName, &kind, &owner, &u.SiteAdmin,
		&u.Disabled, store.TimeDest(&u.CreatedAt), &u.HasPassword)
	if err != nil {
		return u, err
	}
	u.Kind = UserKind(kind)
	if owner != nil {
		u.OwnerOrgID = *owner
	}
	return u, nil
}

// NewUser describes a user to create.
type NewUser struct {
	Username    string
	Email       string
	DisplayName string
	// Password may be empty for users who only sign in through federation.
	Password  string
	SiteAdmin bool
	// EmailVerified is set for users created from a trusted upstream.
	EmailVerified bool
}

// CreateUser creates a person.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	var u User
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		var err error
		u, err = s.createUserTx(ctx, tx, nu)
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{
			Action:  "user.create",
			Target:  userTarget(u),
			Details: map[string]any{"site_admin": u.SiteAdmin, "email": u.Email},
		})
	})
	return u, err
}

// CreateUserTx creates a person inside the caller's transaction, for
// components that create users as part of a larger change (federation
// links a new user to its upstream identity); the caller audits it.
func (s *Service) CreateUserTx(ctx context.Context, tx *store.Tx, nu NewUser) (User, error) {
	return s.createUserTx(ctx, tx, nu)
}

func (s *Service) createUserTx(ctx context.Context, tx *store.Tx, nu NewUser) (User, error) {
	if err := ValidateName("username", nu.Username); err != nil {
		return User{}, err
	}
	email, err := normalizeEmail(nu.Email)
	if err != nil {
		return User{}, err
	}
	if err := validateText("display_name", nu.DisplayName, 100, false); err != nil {
		return User{}, err
	}
	hash := ""
	if nu.Password != "" {
		if err := validatePassword(nu.Username, nu.Password); err != nil {
			return User{}, err
		}
		if hash, err = hashPassword(s.rand, nu.Password); err != nil {
			return User{}, err
		}
	}
	now := s.now()
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO users (username, email, email_verified, display_name, password_hash, kind, site_admin,
		created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'human', ?, ?, ?) RETURNING id`,
		nu.Username, email, nu.EmailVerified && email != "", nu.DisplayName, hash, nu.SiteAdmin, store.Time(now), store.Time(now)).Scan(&id)
	if apperr.Is(err, apperr.Conflict) {
		return User{}, &apperr.Error{Kind: apperr.Conflict, Field: "username", Msg: fmt.Sprintf("user %q already exists", nu.Username)}
	}
	if err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	return User{ID: id, Username: nu.Username, Email: email, EmailVerified: nu.EmailVerified && email != "",
		DisplayName: nu.DisplayName, Kind: KindHuman, SiteAdmin: nu.SiteAdmin, CreatedAt: now.UTC().Truncate(time.Microsecond),
		HasPassword: hash != ""}, nil
}

// EnsureAdmin creates the site administrator "admin" on first start. With
// an empty password it generates one. It returns the password only when it
// created the user (so it can be printed once).
func (s *Service) EnsureAdmin(ctx context.Context, password string) (created bool, pw string, err error) {
	_, err = s.UserByName(ctx, "admin")
	if err == nil {
		return false, "", nil
	}
	if !apperr.Is(err, apperr.NotFound) {
		return false, "", err
	}
	if password == "" {
		if password, err = generatePassword(s.rand); err != nil {
			return false, "", err
		}
	}
	ctx = withSystemActor(ctx)
	_, err = s.CreateUser(ctx, NewUser{Username: "admin", DisplayName: "Administrator", Password: password, SiteAdmin: true})
	if apperr.Is(err, apperr.Conflict) { // another replica won the race
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("create admin: %w", err)
	}
	return true, password, nil
}

func generatePassword(r io.Reader) (string, error) {
	b := make([]byte, 18)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// User returns a user by id.
func (s *Service) User(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, selectUser+" WHERE id = ?", id))
	if apperr.Is(err, apperr.NotFound) {
		return u, apperr.E(apperr.NotFound, "user %d not found", id)
	}
	return u, err
}

// UserByName returns a user by user name.
func (s *Service) UserByName(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, selectUser+" WHERE username = ?", strings.ToLower(username)))
	if apperr.Is(err, apperr.NotFound) {
		return u, apperr.E(apperr.NotFound, "user %q not found", username)
	}
	return u, err
}

// UserByEmail returns the human user with a verified e-mail address.
func (s *Service) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, selectUser+" WHERE email = ? AND email_verified = TRUE AND kind = 'human' ORDER BY id LIMIT 1", strings.ToLower(email)))
	if apperr.Is(err, apperr.NotFound) {
		return u, apperr.E(apperr.NotFound, "no user with verified e-mail %q", email)
	}
	return u, err
}

// ListUsers returns users, people first, by name. query filters by a
// substring of the user name or e-mail.
func (s *Service) ListUsers(ctx context.Context, query string, limit int) ([]User, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	q := selectUser
	var args []any
	if query != "" {
		q += " WHERE username LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\'"
		like := "%" + escapeLike(strings.ToLower(query)) + "%"
		args = append(args, like, like)
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY kind, username LIMIT "+strconv.Itoa(limit), args...)
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

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// SetDisabled disables or re-enables a user. Disabling ends the user's
// sessions and stops their tokens from working.
func (s *Service) SetDisabled(ctx context.Context, id int64, disabled bool) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", id))
		if err != nil {
			return err
		}
		if u.Username == "admin" && disabled {
			return apperr.E(apperr.Invalid, "the built-in admin cannot be disabled")
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?", disabled, store.Time(s.now()), id); err != nil {
			return err
		}
		if disabled {
			if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE user_id = ?", id); err != nil {
				return err
			}
		}
		action := "user.enable"
		if disabled {
			action = "user.disable"
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: action, Target: userTarget(u)})
	})
}

// ChangePassword sets a new password after checking the current one (when
// the user has one). It ends the user's other sessions.
func (s *Service) ChangePassword(ctx context.Context, userID int64, current, next string, keepSession string) error {
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	var hash string
	if err := s.db.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = ?", userID).Scan(&hash); err != nil {
		return err
	}
	if hash != "" {
		if ok, _ := checkPassword(hash, current); !ok {
			_ = s.audit.Append(ctx, audit.Record{Action: "user.password.change", Outcome: audit.Failure, Target: userTarget(u),
				Details: map[string]any{"reason": "wrong current password"}})
			return apperr.InvalidField("current_password", "the current password is wrong")
		}
	}
	if err := validatePassword(u.Username, next); err != nil {
		return err
	}
	newHash, err := hashPassword(s.rand, next)
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", newHash, store.Time(s.now()), userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?", userID, hashSecret(keepSession)); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.password.change", Target: userTarget(u)})
	})
}

// UpdateProfile changes a user's display name and e-mail address.
func (s *Service) UpdateProfile(ctx context.Context, userID int64, displayName, email string) (User, error) {
	if err := validateText("display_name", displayName, 100, false); err != nil {
		return User{}, err
	}
	email, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		verified := u.EmailVerified && u.Email == email
		if _, err := tx.Exec(ctx, "UPDATE users SET display_name = ?, email = ?, email_verified = ?, updated_at = ? WHERE id = ?",
			displayName, email, verified, store.Time(s.now()), userID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.update", Target: userTarget(u),
			Details: map[string]any{"email": email, "display_name": displayName}})
	})
	if err != nil {
		return User{}, err
	}
	return s.User(ctx, userID)
}

func userTarget(u User) audit.Target {
	return audit.Target{Type: "user", ID: strconv.FormatInt(u.ID, 10), Name: u.Username}
}
