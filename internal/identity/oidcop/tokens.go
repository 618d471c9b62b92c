package oidcop

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// grant is what a token is issued for, whatever the flow.
type grant struct {
	ClientID string
	// UserID is 0 for client-credentials tokens, whose subject is the
	// client itself.
	UserID   int64
	Subject  string
	Scopes   []string
	Audience []string
	AMR      []string
	AuthTime time.Time
	// RefreshScopes are the scopes a new refresh token keeps (a refresh
	// may narrow the access token's scopes, never the grant's).
	RefreshScopes []string
}

// clientCredentialsRequest is the token request of the client_credentials
// grant (op.TokenRequest).
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }
func (r *clientCredentialsRequest) GetClientID() string   { return r.clientID }

// refreshRequest is a grant continued with a refresh token
// (op.RefreshTokenRequest).
type refreshRequest struct {
	clientID string
	userID   int64
	scopes   []string
	current  []string
	audience []string
	amr      []string
	authTime time.Time
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string       { return r.amr }
func (r *refreshRequest) GetAudience() []string  { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time { return r.authTime }
func (r *refreshRequest) GetClientID() string    { return r.clientID }
func (r *refreshRequest) GetScopes() []string {
	if r.current != nil {
		return r.current
	}
	return r.scopes
}
func (r *refreshRequest) GetSubject() string          { return strconv.FormatInt(r.userID, 10) }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.current = s }

// grantOf extracts what to record from any token request the library
// passes.
func grantOf(req op.TokenRequest) (grant, error) {
	g := grant{Subject: req.GetSubject(), Scopes: req.GetScopes(), Audience: req.GetAudience()}
	if c, ok := req.(interface{ GetClientID() string }); ok {
		g.ClientID = c.GetClientID()
	}
	if a, ok := req.(interface {
		GetAMR() []string
		GetAuthTime() time.Time
	}); ok {
		g.AMR, g.AuthTime = a.GetAMR(), a.GetAuthTime()
	}
	g.RefreshScopes = g.Scopes
	switch r := req.(type) {
	case *clientCredentialsRequest:
		return g, nil
	case *refreshRequest:
		g.RefreshScopes = r.scopes
	}
	if g.ClientID == "" {
		return g, oidc.ErrServerError().WithDescription("token request without client")
	}
	uid, err := strconv.ParseInt(g.Subject, 10, 64)
	if err != nil || uid <= 0 {
		return g, oidc.ErrInvalidGrant().WithDescription("token request without a user")
	}
	g.UserID = uid
	return g, nil
}

// createAccessToken stores a new access token and returns its secret id.
func (p *Provider) createAccessToken(ctx context.Context, q store.Querier, g grant, family string) (string, time.Time, error) {
	id := randomID(24)
	now := p.now().UTC().Truncate(time.Microsecond)
	exp := now.Add(p.accessTTL)
	var uid, fam any
	if g.UserID != 0 {
		uid = g.UserID
	}
	if family != "" {
		fam = family
	}
	_, err := q.Exec(ctx, `INSERT INTO oidc_access_tokens (id_hash, client_id, user_id, subject, scopes, audience, amr, auth_time,
		refresh_family, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, hashSecret(id), g.ClientID, uid, g.Subject,
		strings.Join(g.Scopes, " "), strings.Join(g.Audience, " "), strings.Join(g.AMR, " "), store.Time(g.AuthTime), fam,
		store.Time(now), store.Time(exp))
	if err != nil {
		return "", time.Time{}, err
	}
	return id, exp, nil
}

var errRefreshRefused = oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired, revoked or already used")

// createTokens issues an access token and a new refresh token; with
// current set, it rotates: current is used up in the same transaction.
func (p *Provider) createTokens(ctx context.Context, g grant, current string) (accessID, refresh string, exp time.Time, err error) {
	if g.UserID == 0 {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh tokens need a user")
	}
	refresh = randomID(32)
	err = p.db.Tx(ctx, func(tx *store.Tx) error {
		now := p.now().UTC().Truncate(time.Microsecond)
		family := randomID(16)
		if current != "" {
			if err := tx.QueryRow(ctx, "SELECT family FROM oidc_refresh_tokens WHERE hash = ?", hashSecret(current)).Scan(&family); err != nil {
				if apperr.Is(err, apperr.NotFound) {
					return errRefreshRefused
				}
				return err
			}
			n, err := tx.Exec(ctx, `UPDATE oidc_refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL
				AND expires_at > ?`, store.Time(now), hashSecret(current), store.Time(now))
			if err != nil {
				return err
			}
			if n == 0 {
				return errRefreshRefused
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_refresh_tokens (hash, family, client_id, user_id, scopes, audience, amr, auth_time,
			created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, hashSecret(refresh), family, g.ClientID, g.UserID,
			strings.Join(g.RefreshScopes, " "), strings.Join(g.Audience, " "), strings.Join(g.AMR, " "), store.Time(g.AuthTime),
			store.Time(now), store.Time(now.Add(p.refreshTTL)))
		if err != nil {
			return err
		}
		accessID, exp, err = p.createAccessToken(ctx, tx, g, family)
		return err
	})
	if err != nil {
		return "", "", time.Time{}, err
	}
	return accessID, refresh, exp, nil
}

// refreshGrant loads the grant a refresh token continues. A token that
// was already used means it leaked (or a client replayed it): every token
// of its grant is revoked and the attempt audited.
func (p *Provider) refreshGrant(ctx context.Context, token string) (*refreshRequest, error) {
	if token == "" || len(token) > 256 {
		return nil, errRefreshRefused
	}
	var (
		r                  refreshRequest
		family, scopes     string
		aud, amr           string
		exp, used, revoked time.Time
	)
	err := p.db.QueryRow(ctx, `SELECT family, client_id, user_id, scopes, audience, amr, auth_time, expires_at, used_at, revoked_at
		FROM oidc_refresh_tokens WHERE hash = ?`, hashSecret(token)).Scan(&family, &r.clientID, &r.userID, &scopes, &aud, &amr,
		store.TimeDest(&r.authTime), store.TimeDest(&exp), store.TimeDest(&used), store.TimeDest(&revoked))
	if apperr.Is(err, apperr.NotFound) {
		return nil, errRefreshRefused
	}
	if err != nil {
		return nil, err
	}
	target := audit.Target{Type: "oidc_client", ID: r.clientID}
	switch {
	case !used.IsZero() && revoked.IsZero():
		if err := p.revokeFamily(ctx, family); err != nil {
			return nil, err
		}
		p.auditFailure(ctx, "oidc.token.refresh", target, "refresh token used twice; every token of its grant was revoked")
		return nil, errRefreshRefused
	case !revoked.IsZero() || p.now().After(exp):
		return nil, errRefreshRefused
	}
	u, err := p.ids.User(ctx, r.userID)
	if err != nil || u.Disabled {
		p.auditFailure(ctx, "oidc.token.refresh", target, "user disabled or gone")
		return nil, errRefreshRefused
	}
	r.scopes, r.audience, r.amr = strings.Fields(scopes), strings.Fields(aud), strings.Fields(amr)
	return &r, nil
}

// revokeFamily revokes every refresh and access token of one grant.
func (p *Provider) revokeFamily(ctx context.Context, family string) error {
	return p.db.Tx(ctx, func(tx *store.Tx) error {
		now := store.Time(p.now())
		if _, err := tx.Exec(ctx, "UPDATE oidc_refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", now, family); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE oidc_access_tokens SET revoked_at = ? WHERE refresh_family = ? AND revoked_at IS NULL", now, family)
		return err
	})
}

// accessToken is a stored access token.
type accessToken struct {
	ClientID  string
	UserID    int64
	Subject   string
	Scopes    []string
	Audience  []string
	AMR       []string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

var errBadAccessToken = apperr.E(apperr.Unauthenticated, "invalid, expired or revoked token")

// activeAccessToken loads an access token by its secret id and subject;
// revoked, expired and mismatched tokens are all errBadAccessToken.
func (p *Provider) activeAccessToken(ctx context.Context, id, subject string) (accessToken, error) {
	var (
		t                accessToken
		uid              *int64
		scopes, aud, amr string
		revoked          time.Time
	)
	if id == "" || len(id) > 64 {
		return t, errBadAccessToken
	}
	err := p.db.QueryRow(ctx, `SELECT client_id, user_id, subject, scopes, audience, amr, auth_time, created_at, expires_at, revoked_at
		FROM oidc_access_tokens WHERE id_hash = ?`, hashSecret(id)).Scan(&t.ClientID, &uid, &t.Subject, &scopes, &aud, &amr,
		store.TimeDest(&t.AuthTime), store.TimeDest(&t.CreatedAt), store.TimeDest(&t.ExpiresAt), store.TimeDest(&revoked))
	if apperr.Is(err, apperr.NotFound) {
		return t, errBadAccessToken
	}
	if err != nil {
		return t, err
	}
	if !revoked.IsZero() || !p.now().Before(t.ExpiresAt) || t.Subject != subject {
		return t, errBadAccessToken
	}
	if uid != nil {
		t.UserID = *uid
	}
	t.Scopes, t.Audience, t.AMR = strings.Fields(scopes), strings.Fields(aud), strings.Fields(amr)
	return t, nil
}

// VerifyAccessToken resolves an OAuth access token issued by this provider
// into its user and the API scopes granted (authn.AccessTokenVerifier).
// Tokens of the client_credentials grant carry no user and are refused.
func (p *Provider) VerifyAccessToken(ctx context.Context, raw string) (int64, []authz.Scope, error) {
	body, err := p.crypto.Decrypt(raw)
	if err != nil {
		return 0, nil, errBadAccessToken
	}
	id, sub, ok := splitTokenID(body)
	if !ok {
		return 0, nil, errBadAccessToken
	}
	t, err := p.activeAccessToken(ctx, id, sub)
	if err != nil {
		return 0, nil, err
	}
	if t.UserID == 0 {
		return 0, nil, apperr.E(apperr.Unauthenticated, "a client-credentials token acts for no user and cannot call the API")
	}
	return t.UserID, apiScopes(t.Scopes), nil
}

// userinfo fills claims of u for the given scopes.
func userinfo(info *oidc.UserInfo, u identity.User, scopes []string) {
	info.Subject = strconv.FormatInt(u.ID, 10)
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.Username
		info.Name = u.DisplayName
		if info.Name == "" {
			info.Name = u.Username
		}
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(u.EmailVerified)
	}
}

// revokeUserClient revokes every token a user holds for a client.
func (p *Provider) revokeUserClient(ctx context.Context, userID int64, clientID string) error {
	return p.db.Tx(ctx, func(tx *store.Tx) error {
		now := store.Time(p.now())
		if _, err := tx.Exec(ctx, "UPDATE oidc_refresh_tokens SET revoked_at = ? WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL",
			now, userID, clientID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE oidc_access_tokens SET revoked_at = ? WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL",
			now, userID, clientID)
		return err
	})
}

// Purge deletes what has expired: authorization requests, device codes,
// tokens and signing keys no longer published.
func (p *Provider) Purge(ctx context.Context) (int64, error) {
	now := store.Time(p.now())
	var total int64
	for _, q := range []string{
		"DELETE FROM oidc_auth_requests WHERE expires_at < ?",
		"DELETE FROM oidc_device_authorizations WHERE expires_at < ?",
		"DELETE FROM oidc_access_tokens WHERE expires_at < ?",
		"DELETE FROM oidc_refresh_tokens WHERE expires_at < ?",
		"DELETE FROM oidc_signing_keys WHERE retire_after < ?",
	} {
		n, err := p.db.Exec(ctx, q, now)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
