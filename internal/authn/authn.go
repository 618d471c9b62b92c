// Package authn finds out who sent an HTTP request. It reads one credential
// — a bearer token (personal access, service-account or OAuth access token),
// a token sent as the password of HTTP Basic auth (what git and docker
// clients send), or the browser session cookie — asks identity who it
// belongs to, and puts the resulting Principal into the request context.
//
// A request with an invalid credential is not anonymous: it is refused with
// 401, so a client never silently loses its identity. A request with no
// credential is anonymous; authorisation (authz) decides what that allows.
package authn

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "rampart_session"

// Principal is the authenticated sender of a request.
type Principal struct {
	User    identity.User
	Subject authz.Subject
	// Session is set when the request came with an active browser session.
	Session *identity.Session
	// Token is set when the request came with a Rampart token.
	Token *identity.Token
}

// Anonymous is the principal of a request without credentials.
var Anonymous = &Principal{Subject: authz.Anonymous}

type ctxKey struct{}

// From returns the request's principal (Anonymous when none).
func From(ctx context.Context) *Principal {
	if p, ok := ctx.Value(ctxKey{}).(*Principal); ok {
		return p
	}
	return Anonymous
}

// With returns ctx carrying p (and its actor for the audit log).
func With(ctx context.Context, p *Principal) context.Context {
	ctx = context.WithValue(ctx, ctxKey{}, p)
	if p.User.ID != 0 {
		ctx = reqinfo.WithActor(ctx, p.User.ID, p.User.Username)
	}
	return ctx
}

// AccessTokenVerifier resolves OAuth access tokens issued by Rampart's OIDC
// provider into a user and the scopes granted.
type AccessTokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token string) (userID int64, scopes []authz.Scope, err error)
}

// Authenticator resolves credentials.
type Authenticator struct {
	IDs *identity.Service
	// OAuth verifies access tokens that are not Rampart tokens; may be nil.
	OAuth AccessTokenVerifier
}

// Credential kinds, as reported in authz.Subject.Via.
const (
	ViaSession = "session"
	ViaToken   = "token"
	ViaOAuth   = "oauth"
)

// Authenticate returns the principal of r, Anonymous when r carries no
// credential, or an Unauthenticated error when the credential is bad.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	if raw, ok := bearer(r); ok {
		return a.token(ctx, raw)
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return a.token(ctx, pw)
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Anonymous, nil
	}
	sess, u, err := a.IDs.Session(ctx, c.Value)
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			// A stale cookie makes the browser anonymous, not an error:
			// pages then offer to sign in again.
			return Anonymous, nil
		}
		return nil, err
	}
	if sess.State != identity.SessionActive {
		return Anonymous, nil
	}
	sub, err := a.IDs.Subject(ctx, u, nil, ViaSession)
	if err != nil {
		return nil, err
	}
	// A session signed in with two factors counts as MFA even when the
	// second one was proven elsewhere (an upstream identity provider).
	sub.MFA = sub.MFA || sess.MFA()
	return &Principal{User: u, Subject: sub, Session: &sess}, nil
}

// Token returns the principal of a token sent some other way than the
// Authorization header (Vault clients send X-Vault-Token): a Rampart token
// or, when OAuth is set, an OAuth access token.
func (a *Authenticator) Token(ctx context.Context, raw string) (*Principal, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 4096 {
		return nil, apperr.E(apperr.Unauthenticated, "invalid, expired or revoked token")
	}
	return a.token(ctx, raw)
}

func (a *Authenticator) token(ctx context.Context, raw string) (*Principal, error) {
	if strings.HasPrefix(raw, identity.TokenPrefix) {
		// Cached for a second or two, and forgotten at once when this
		// process changes the token, its user or their roles.
		u, t, sub, err := a.IDs.TokenSubject(ctx, raw, ViaToken)
		if err != nil {
			return nil, err
		}
		return &Principal{User: u, Subject: sub, Token: &t}, nil
	}
	if a.OAuth == nil {
		return nil, apperr.E(apperr.Unauthenticated, "invalid, expired or revoked token")
	}
	uid, scopes, err := a.OAuth.VerifyAccessToken(ctx, raw)
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Kind != apperr.Internal {
			return nil, err
		}
		return nil, apperr.Wrap(err, apperr.Unauthenticated, "invalid, expired or revoked token")
	}
	u, err := a.IDs.User(ctx, uid)
	if err != nil || u.Disabled {
		return nil, apperr.E(apperr.Unauthenticated, "invalid, expired or revoked token")
	}
	if scopes == nil {
		scopes = []authz.Scope{}
	}
	sub, err := a.IDs.Subject(ctx, u, scopes, ViaOAuth)
	if err != nil {
		return nil, err
	}
	return &Principal{User: u, Subject: sub}, nil
}

// bearer extracts a bearer token from the Authorization header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	if t == "" || len(t) > 4096 {
		return "", false
	}
	return t, true
}

// HasCredential reports whether r carries a token (bearer or Basic):
// such requests are not subject to CSRF checks, which protect cookies.
func HasCredential(r *http.Request) bool {
	if _, ok := bearer(r); ok {
		return true
	}
	_, _, ok := r.BasicAuth()
	return ok
}
