package oidcop

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
)

// storage is the op.Storage the library calls: a thin adapter from the
// library's interfaces to the Provider's methods.
type storage struct{ p *Provider }

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.ClientCredentialsStorage   = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest  = (*storage)(nil)
)

// notFound marks lookups that found nothing, for the library.
type notFound struct{ error }

func (notFound) IsNotFound() {}

func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	return s.p.createAuthRequest(ctx, r)
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.p.authRequestByID(ctx, id)
	if err != nil {
		return nil, notFound{err}
	}
	return a, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, err := s.p.claimCode(ctx, code)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.saveCode(ctx, id, code)
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	_, err := s.p.db.Exec(ctx, "DELETE FROM oidc_auth_requests WHERE id = ?", id)
	return err
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, err := grantOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	return s.p.createAccessToken(ctx, s.p.db, g, "")
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, err := grantOf(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return s.p.createTokens(ctx, g, current)
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	r, err := s.p.refreshGrant(ctx, token)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// TerminateSession ends a user's sign-in at one client (RP-initiated
// logout): every token the user holds for it is revoked.
func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	uid, err := strconv.ParseInt(userID, 10, 64)
	if err != nil {
		return oidc.ErrInvalidRequest().WithDescription("unknown user")
	}
	return s.p.revokeUserClient(ctx, uid, clientID)
}

// refreshIDPrefix marks the token ids GetRefreshTokenInfo hands to
// RevokeToken, to tell them from access token ids.
const refreshIDPrefix = "rt."

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	if token == "" || len(token) > 256 {
		return "", "", op.ErrInvalidRefreshToken
	}
	var (
		uid    int64
		client string
	)
	err := s.p.db.QueryRow(ctx, "SELECT user_id, client_id FROM oidc_refresh_tokens WHERE hash = ?", hashSecret(token)).Scan(&uid, &client)
	if apperr.Is(err, apperr.NotFound) || (err == nil && client != clientID) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return strconv.FormatInt(uid, 10), refreshIDPrefix + hashSecret(token), nil
}

// RevokeToken revokes an access token (by its id) or, given a refresh
// token's id, every token of its grant (RFC 7009 section 2.1). Unknown
// tokens are not an error.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	p := s.p
	var (
		owner  string
		family *string
		err    error
	)
	if hash, ok := strings.CutPrefix(tokenOrID, refreshIDPrefix); ok {
		var f string
		err = p.db.QueryRow(ctx, "SELECT client_id, family FROM oidc_refresh_tokens WHERE hash = ?", hash).Scan(&owner, &f)
		family = &f
	} else {
		err = p.db.QueryRow(ctx, "SELECT client_id, refresh_family FROM oidc_access_tokens WHERE id_hash = ?", hashSecret(tokenOrID)).
			Scan(&owner, &family)
	}
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if owner != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was issued to another client")
	}
	if family != nil && *family != "" {
		err = p.revokeFamily(ctx, *family)
	} else {
		_, err = p.db.Exec(ctx, "UPDATE oidc_access_tokens SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL",
			storeNow(p), hashSecret(tokenOrID))
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if aerr := p.audit.Append(ctx, audit.Record{Action: "oidc.token.revoke", Target: audit.Target{Type: "oidc_client", ID: clientID},
		Details: map[string]any{"user_id": userID}}); aerr != nil {
		p.log.ErrorContext(ctx, "audit token revocation", "err", aerr)
	}
	return nil
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) { return s.p.currentKey(ctx) }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) { return s.p.publicKeys(ctx) }

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, _, err := s.p.client(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return nil, notFound{err}
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return opClient{c: c, idLifetime: s.p.idTTL}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if _, err := s.p.authenticateClient(ctx, id, secret); err != nil {
		if apperr.KindOf(err) == apperr.Internal {
			return oidc.ErrServerError().WithParent(err)
		}
		return err
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in the library; claims are set by
// SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	uid, err := strconv.ParseInt(req.GetSubject(), 10, 64)
	if err != nil {
		return oidc.ErrInvalidRequest().WithDescription("unknown user")
	}
	u, err := s.p.ids.User(ctx, uid)
	if err != nil {
		return err
	}
	userinfo(info, u, scopes)
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.p.activeAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if t.UserID == 0 {
		return oidc.ErrInvalidRequest().WithDescription("a client-credentials token has no user")
	}
	u, err := s.p.ids.User(ctx, t.UserID)
	if err != nil || u.Disabled {
		return errBadAccessToken
	}
	userinfo(info, u, t.Scopes)
	return nil
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.p.activeAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if t.ClientID != clientID && !containsString(t.Audience, clientID) {
		return apperr.E(apperr.Forbidden, "the token was not issued to this client")
	}
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.Subject = t.Subject
	resp.Audience = t.Audience
	resp.Issuer = s.p.issuer
	if t.UserID != 0 {
		u, err := s.p.ids.User(ctx, t.UserID)
		if err != nil || u.Disabled {
			return errBadAccessToken
		}
		resp.AuthTime = oidc.FromTime(t.AuthTime)
		resp.AuthenticationMethodsReferences = t.AMR
		resp.Username = u.Username
		info := new(oidc.UserInfo)
		userinfo(info, u, t.Scopes)
		resp.SetUserInfo(info)
	}
	return nil
}

// GetPrivateClaimsFromScopes adds nothing: access tokens are opaque.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

var errJWTProfile = errors.New("the JWT profile grant is not supported")

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errJWTProfile
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errJWTProfile
}

func (s *storage) Health(ctx context.Context) error { return s.p.db.Ping(ctx) }

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.p.authenticateClient(ctx, id, secret)
	if err != nil {
		if apperr.KindOf(err) == apperr.Internal {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		return nil, err
	}
	return opClient{c: c, idLifetime: s.p.idTTL}, nil
}

// ClientCredentialsTokenRequest grants a client the API scopes it asked
// for among those it was registered with.
func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, err := s.p.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	granted := []string{}
	for _, sc := range c.allowedScopes(scopes) {
		if !containsString(oidcScopes, sc) {
			granted = append(granted, sc)
		}
	}
	return &clientCredentialsRequest{clientID: c.ID, scopes: granted}, nil
}

func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	return s.p.storeDeviceAuthorization(ctx, clientID, deviceCode, userCode, expires, scopes)
}

func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	return s.p.deviceState(ctx, clientID, deviceCode)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func storeNow(p *Provider) any { return p.now().UnixMicro() }
