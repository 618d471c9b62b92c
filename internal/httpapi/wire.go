package httpapi

import (
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

// Wire types: the JSON the API speaks, kept apart from domain types.

// User is a user as the API shows it.
type User struct {
	Username    string    `json:"username"`
	Email       string    `json:"email,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
	Kind        string    `json:"kind"`
	SiteAdmin   bool      `json:"site_admin"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
}

// UserOf converts a domain user.
func UserOf(u identity.User) User {
	return User{Username: u.Username, Email: u.Email, DisplayName: u.DisplayName, Kind: string(u.Kind),
		SiteAdmin: u.SiteAdmin, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

// Me is the caller's own account.
type Me struct {
	User
	MFA         MFAStatus `json:"mfa"`
	Credential  string    `json:"credential"`
	Scopes      []string  `json:"scopes,omitempty"`
	Orgs        []OrgRole `json:"orgs"`
	HasPassword bool      `json:"has_password"`
}

// MFAStatus says which second factors are enrolled.
type MFAStatus struct {
	TOTP          bool `json:"totp"`
	SecurityKeys  int  `json:"security_keys"`
	RecoveryCodes int  `json:"recovery_codes_left"`
}

// OrgRole is a membership of the caller.
type OrgRole struct {
	Org  string `json:"org"`
	Role string `json:"role"`
}

// CreateUserRequest creates a user (site administrators).
type CreateUserRequest struct {
	Username    string `json:"username"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Password    string `json:"password,omitempty"`
	SiteAdmin   bool   `json:"site_admin,omitempty"`
	// EmailVerified records that the administrator vouches for the
	// address (Rampart's OpenID provider then asserts email_verified).
	EmailVerified bool `json:"email_verified,omitempty"`
}

// UpdateUserRequest changes a user (site administrators).
type UpdateUserRequest struct {
	Disabled *bool `json:"disabled,omitempty"`
}

// UpdateProfileRequest changes the caller's profile.
type UpdateProfileRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	Email       *string `json:"email,omitempty"`
}

// ChangePasswordRequest changes the caller's password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// Org is an org as the API shows it.
type Org struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name,omitempty"`
	RequireMFA  bool      `json:"require_mfa"`
	CreatedAt   time.Time `json:"created_at"`
	Role        string    `json:"role,omitempty"`
}

// OrgOf converts a domain org; role is the caller's role in it.
func OrgOf(o identity.Org, role authz.Role) Org {
	w := Org{Name: o.Name, DisplayName: o.DisplayName, RequireMFA: o.RequireMFA, CreatedAt: o.CreatedAt}
	if role != authz.NoRole {
		w.Role = role.String()
	}
	return w
}

// CreateOrgRequest creates an org.
type CreateOrgRequest struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
}

// UpdateOrgRequest changes org settings; absent fields stay unchanged.
type UpdateOrgRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	RequireMFA  *bool   `json:"require_mfa,omitempty"`
}

// Member is an org member.
type Member struct {
	Username string `json:"username"`
	Kind     string `json:"kind"`
	Role     string `json:"role"`
}

// RoleRequest sets a role.
type RoleRequest struct {
	Role string `json:"role"`
}

// Team is a team of an org.
type Team struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// TeamOf converts a domain team.
func TeamOf(t identity.Team) Team {
	return Team{Name: t.Name, Description: t.Description, CreatedAt: t.CreatedAt}
}

// CreateTeamRequest creates a team.
type CreateTeamRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Project is a project of an org.
type Project struct {
	Org         string    `json:"org"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// ProjectOf converts a domain project.
func ProjectOf(o identity.Org, p identity.Project) Project {
	return Project{Org: o.Name, Name: p.Name, Description: p.Description, CreatedAt: p.CreatedAt}
}

// CreateProjectRequest creates a project.
type CreateProjectRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Grant is a project role held by a user or a team.
type Grant struct {
	User string `json:"user,omitempty"`
	Team string `json:"team,omitempty"`
	Role string `json:"role"`
}

// ServiceAccount is an org-owned non-human user.
type ServiceAccount struct {
	Username    string    `json:"username"`
	Description string    `json:"description,omitempty"`
	Role        string    `json:"role"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateServiceAccountRequest creates a service account.
type CreateServiceAccountRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Role        string `json:"role"`
}

// Token is a token's metadata (never its secret).
type Token struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	Hint       string     `json:"hint"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Active     bool       `json:"active"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// TokenOf converts a domain token.
func TokenOf(t identity.Token, now time.Time) Token {
	sc := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		sc[i] = string(s)
	}
	return Token{ID: t.ID, Name: t.Name, Kind: t.Kind, Hint: "…" + t.Hint, Scopes: sc, CreatedAt: t.CreatedAt,
		ExpiresAt: optTime(t.ExpiresAt), LastUsedAt: optTime(t.LastUsedAt), RevokedAt: optTime(t.RevokedAt), Active: t.Active(now)}
}

// CreateTokenRequest creates a token.
type CreateTokenRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// ExpiresIn is a Go duration ("720h") or a number of days ("30d");
	// default 30 days, at most 366 days.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// CreatedToken is a new token with its secret, shown this once.
type CreatedToken struct {
	Token
	Secret string `json:"token"`
}

// LoginRequest signs in with a password (and a one-time code when a second
// factor is enrolled) and returns a token, for scripts and the CLI.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// OTP is a TOTP code or a recovery code.
	OTP       string   `json:"otp,omitempty"`
	TokenName string   `json:"token_name,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ExpiresIn string   `json:"expires_in,omitempty"`
}

// LoginResponse carries the token created by a sign-in.
type LoginResponse struct {
	User  User         `json:"user"`
	Token CreatedToken `json:"token"`
}

// Scope documents a token scope.
type Scope struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// AuditEntry is one audit log entry.
type AuditEntry = audit.Entry

// AuditReport is the result of verifying the audit chain.
type AuditReport = audit.Report
