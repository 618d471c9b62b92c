package identity

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/store"
)

// TokenPrefix starts every Rampart token, so scanners can find leaked ones.
const TokenPrefix = "rpt_"

// Token kinds.
const (
	TokenPersonal = "personal" // created by a user for scripts
	TokenCLI      = "cli"      // created by `rampart login`
	TokenService  = "service"  // belongs to a service account
)

// Token limits.
const (
	DefaultTokenLifetime = 30 * 24 * time.Hour
	MinTokenLifetime     = time.Minute
	MaxTokenLifetime     = 366 * 24 * time.Hour
	maxTokensPerUser     = 200
)

// Token is an API credential (never its secret, which is shown once).
type Token struct {
	ID         int64
	UserID     int64
	Name       string
	Kind       string
	Hint       string // the last four characters, to tell tokens apart
	Scopes     []authz.Scope
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// Active reports whether the token can still be used at time now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// NewToken describes a token to create.
type NewToken struct {
	Name   string
	Kind   string
	Scopes []authz.Scope
	// Lifetime defaults to DefaultTokenLifetime and may not exceed
	// MaxTokenLifetime.
	Lifetime time.Duration
}

func tokenTarget(t Token) audit.Target {
	return audit.Target{Type: "token", ID: strconv.FormatInt(t.ID, 10), Name: t.Name}
}

// newTokenSecret returns "rpt_" + 40 random base62 characters + a 6-character
// checksum of everything before it.
func (s *Service) newTokenSecret() (string, error) {
	body, err := randomString(s.rand, 40)
	if err != nil {
		return "", err
	}
	return TokenPrefix + body + checksum62(TokenPrefix+body), nil
}

// wellFormedToken checks a token's shape and checksum without the database.
func wellFormedToken(raw string) bool {
	if len(raw) != len(TokenPrefix)+46 || !strings.HasPrefix(raw, TokenPrefix) {
		return false
	}
	for _, c := range raw[len(TokenPrefix):] {
		if !strings.ContainsRune(base62, c) {
			return false
		}
	}
	return checksum62(raw[:len(raw)-6]) == raw[len(raw)-6:]
}

// ValidateTokenName checks a token name as CreateToken does, naming field
// as the input at fault (for callers that check input before acting).
func ValidateTokenName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return apperr.InvalidField(field, "a token needs a name")
	}
	return validateText(field, strings.TrimSpace(name), 100, false)
}

// CreateToken creates a token for userID and returns its secret, which is
// never shown again.
func (s *Service) CreateToken(ctx context.Context, userID int64, nt NewToken) (string, Token, error) {
	nt.Name = strings.TrimSpace(nt.Name)
	if err := ValidateTokenName("name", nt.Name); err != nil {
		return "", Token{}, err
	}
	if len(nt.Scopes) == 0 {
		return "", Token{}, apperr.InvalidField("scopes", "at least one scope is required")
	}
	names := make([]string, len(nt.Scopes))
	for i, sc := range nt.Scopes {
		names[i] = string(sc)
	}
	scopes, err := authz.ParseScopes(names)
	if err != nil {
		return "", Token{}, err
	}
	switch {
	case nt.Lifetime == 0:
		nt.Lifetime = DefaultTokenLifetime
	case nt.Lifetime < MinTokenLifetime:
		return "", Token{}, apperr.InvalidField("expires_in", "a token must live at least a minute")
	case nt.Lifetime > MaxTokenLifetime:
		return "", Token{}, apperr.InvalidField("expires_in", "a token may live at most 366 days")
	}
	if nt.Kind == "" {
		nt.Kind = TokenPersonal
	}
	raw, err := s.newTokenSecret()
	if err != nil {
		return "", Token{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := Token{UserID: userID, Name: nt.Name, Kind: nt.Kind, Hint: raw[len(raw)-4:], Scopes: scopes, CreatedAt: now,
		ExpiresAt: now.Add(nt.Lifetime)}
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		if u.Disabled {
			return apperr.E(apperr.Invalid, "user %s is disabled", u.Username)
		}
		if u.Kind == KindService {
			t.Kind = TokenService
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM tokens WHERE user_id = ? AND revoked_at IS NULL", userID).Scan(&n); err != nil {
			return err
		}
		if n >= maxTokensPerUser {
			return apperr.E(apperr.Invalid, "%s already has %d tokens; revoke some first", u.Username, n)
		}
		creator := nullID(0)
		if id := actorID(ctx); id != 0 {
			creator = id
		}
		err = tx.QueryRow(ctx, `INSERT INTO tokens (user_id, name, kind, hint, hash, scopes, created_at, created_by, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, userID, t.Name, t.Kind, t.Hint, hashSecret(raw),
			joinScopes(scopes), store.Time(now), creator, store.Time(t.ExpiresAt)).Scan(&t.ID)
		if err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "token.create", Target: tokenTarget(t), OrgID: u.OwnerOrgID,
			Details: map[string]any{"owner": u.Username, "kind": t.Kind, "scopes": strings.Fields(joinScopes(scopes)), "expires_at": t.ExpiresAt}})
	})
	if err != nil {
		return "", Token{}, err
	}
	return raw, t, nil
}

func joinScopes(sc []authz.Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, " ")
}

func splitScopes(s string) []authz.Scope {
	var out []authz.Scope
	for f := range strings.FieldsSeq(s) {
		out = append(out, authz.Scope(f))
	}
	return out
}

const selectToken = "SELECT id, user_id, name, kind, hint, scopes, created_at, expires_at, last_used_at, revoked_at FROM tokens"

func scanToken(r interface{ Scan(...any) error }) (Token, error) {
	var (
		t      Token
		scopes string
	)
	err := r.Scan(&t.ID, &t.UserID, &t.Name, &t.Kind, &t.Hint, &scopes, store.TimeDest(&t.CreatedAt), store.TimeDest(&t.ExpiresAt),
		store.TimeDest(&t.LastUsedAt), store.TimeDest(&t.RevokedAt))
	t.Scopes = splitScopes(scopes)
	return t, err
}

var errBadToken = apperr.E(apperr.Unauthenticated, "invalid, expired or revoked token")

// AuthenticateToken returns the user and token a secret belongs to. Any
// failure — malformed, unknown, expired, revoked, disabled owner — is the
// same Unauthenticated error, so probing learns nothing.
func (s *Service) AuthenticateToken(ctx context.Context, raw string) (User, Token, error) {
	if !wellFormedToken(raw) {
		return User{}, Token{}, errBadToken
	}
	return s.authenticateHash(ctx, hashSecret(raw), s.now())
}

// Tokens lists a user's tokens, newest first, revoked ones included.
func (s *Service) Tokens(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := s.db.Query(ctx, selectToken+" WHERE user_id = ? ORDER BY id DESC", userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes one of a user's tokens.
func (s *Service) RevokeToken(ctx context.Context, userID, tokenID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		t, err := scanToken(tx.QueryRow(ctx, selectToken+" WHERE id = ? AND user_id = ?", tokenID, userID))
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "token %d not found", tokenID)
		}
		if err != nil {
			return err
		}
		if !t.RevokedAt.IsZero() {
			return apperr.E(apperr.Conflict, "token %d is already revoked", tokenID)
		}
		if _, err := tx.Exec(ctx, "UPDATE tokens SET revoked_at = ? WHERE id = ?", store.Time(s.now()), tokenID); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "token.revoke", Target: tokenTarget(t), OrgID: u.OwnerOrgID,
			Details: map[string]any{"owner": u.Username}})
	})
}
