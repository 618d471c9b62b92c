package oidcop

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// requestParams is what an authorization request asked for, kept as JSON.
type requestParams struct {
	Scopes              []string                 `json:"scopes"`
	ResponseType        oidc.ResponseType        `json:"response_type"`
	ResponseMode        oidc.ResponseMode        `json:"response_mode,omitempty"`
	RedirectURI         string                   `json:"redirect_uri"`
	State               string                   `json:"state,omitempty"`
	Nonce               string                   `json:"nonce,omitempty"`
	Prompt              []string                 `json:"prompt,omitempty"`
	MaxAge              *uint                    `json:"max_age,omitempty"`
	LoginHint           string                   `json:"login_hint,omitempty"`
	CodeChallenge       string                   `json:"code_challenge,omitempty"`
	CodeChallengeMethod oidc.CodeChallengeMethod `json:"code_challenge_method,omitempty"`
}

// Limits on what an authorization request may carry into the store.
const (
	maxStateLen = 2048
	maxNonceLen = 1024
)

// authRequest is a stored authorization request (op.AuthRequest).
type authRequest struct {
	ID        string
	ClientID  string
	Params    requestParams
	UserID    int64
	AMR       []string
	AuthTime  time.Time
	IsDone    bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAMR() []string      { return a.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.Params.CodeChallenge == "" {
		return nil
	}
	m := a.Params.CodeChallengeMethod
	if m == "" {
		m = oidc.CodeChallengeMethodPlain
	}
	return &oidc.CodeChallenge{Challenge: a.Params.CodeChallenge, Method: m}
}
func (a *authRequest) GetNonce() string                   { return a.Params.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.Params.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.Params.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.Params.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Params.Scopes }
func (a *authRequest) GetState() string                   { return a.Params.State }
func (a *authRequest) GetSubject() string {
	if a.UserID == 0 {
		return ""
	}
	return strconv.FormatInt(a.UserID, 10)
}
func (a *authRequest) Done() bool { return a.IsDone }

// createAuthRequest stores a validated authorization request.
func (p *Provider) createAuthRequest(ctx context.Context, r *oidc.AuthRequest) (*authRequest, error) {
	if len(r.State) > maxStateLen || len(r.Nonce) > maxNonceLen || len(r.LoginHint) > 256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("state, nonce or login_hint is too long")
	}
	if r.ResponseMode != "" && r.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query")
	}
	if r.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("only the authorization code flow is supported")
	}
	c, _, err := p.client(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	if c.Public && r.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("public clients must use PKCE (code_challenge with S256)")
	}
	if r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	now := p.now().UTC().Truncate(time.Microsecond)
	a := &authRequest{ID: randomID(24), ClientID: c.ID, CreatedAt: now, ExpiresAt: now.Add(authRequestLifetime),
		Params: requestParams{Scopes: c.allowedScopes(r.Scopes), ResponseType: r.ResponseType, ResponseMode: r.ResponseMode,
			RedirectURI: r.RedirectURI, State: r.State, Nonce: r.Nonce, Prompt: r.Prompt, MaxAge: r.MaxAge, LoginHint: r.LoginHint,
			CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod}}
	b, err := json.Marshal(a.Params)
	if err != nil {
		return nil, err
	}
	_, err = p.db.Exec(ctx, `INSERT INTO oidc_auth_requests (id, client_id, request, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		a.ID, a.ClientID, string(b), store.Time(now), store.Time(a.ExpiresAt))
	if err != nil {
		return nil, err
	}
	return a, nil
}

const selectAuthRequest = `SELECT id, client_id, request, user_id, amr, auth_time, done, created_at, expires_at FROM oidc_auth_requests`

func scanAuthRequest(r interface{ Scan(...any) error }) (*authRequest, error) {
	var (
		a      authRequest
		params string
		uid    *int64
		amr    string
	)
	if err := r.Scan(&a.ID, &a.ClientID, &params, &uid, &amr, store.TimeDest(&a.AuthTime), &a.IsDone, store.TimeDest(&a.CreatedAt),
		store.TimeDest(&a.ExpiresAt)); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(params), &a.Params); err != nil {
		return nil, fmt.Errorf("decode auth request %s: %w", a.ID, err)
	}
	if uid != nil {
		a.UserID = *uid
	}
	a.AMR = strings.Fields(amr)
	return &a, nil
}

var errAuthRequestGone = apperr.E(apperr.NotFound, "this sign-in request is unknown or has expired; go back to the application and start again")

// authRequestByID returns a live authorization request.
func (p *Provider) authRequestByID(ctx context.Context, id string) (*authRequest, error) {
	if id == "" || len(id) > 64 {
		return nil, errAuthRequestGone
	}
	a, err := scanAuthRequest(p.db.QueryRow(ctx, selectAuthRequest+" WHERE id = ?", id))
	if apperr.Is(err, apperr.NotFound) {
		return nil, errAuthRequestGone
	}
	if err != nil {
		return nil, err
	}
	if p.now().After(a.ExpiresAt) {
		return nil, errAuthRequestGone
	}
	return a, nil
}

// AuthRequest is what the login page shows of a pending authorization
// request.
type AuthRequest struct {
	ID         string
	ClientID   string
	ClientName string
	Scopes     []string
	// Prompt and MaxAge come from the relying party: prompt=login or a
	// max_age older than the session's sign-in send the user through the
	// sign-in form again; prompt=none forbids any interaction.
	Prompt    []string
	MaxAge    *time.Duration
	CreatedAt time.Time
}

// PendingAuthRequest returns an authorization request awaiting the user.
func (p *Provider) PendingAuthRequest(ctx context.Context, id string) (AuthRequest, error) {
	a, err := p.authRequestByID(ctx, id)
	if err != nil {
		return AuthRequest{}, err
	}
	if a.IsDone {
		return AuthRequest{}, apperr.E(apperr.Conflict, "this sign-in request was already completed; go back to the application and start again")
	}
	c, err := p.Client(ctx, a.ClientID)
	if err != nil {
		return AuthRequest{}, err
	}
	out := AuthRequest{ID: a.ID, ClientID: c.ID, ClientName: c.Name, Scopes: a.Params.Scopes, Prompt: a.Params.Prompt, CreatedAt: a.CreatedAt}
	if a.Params.MaxAge != nil {
		d := time.Duration(*a.Params.MaxAge) * time.Second
		out.MaxAge = &d
	}
	return out, nil
}

// NeedsLogin reports whether a session signed in at authTime must sign in
// again for this request: with prompt=login it must have signed in after
// the request was made, with max_age at most that long before it (a
// sign-in made for this request always satisfies both, so the user is
// never sent round in circles).
func (a AuthRequest) NeedsLogin(authTime time.Time) bool {
	if slices.Contains(a.Prompt, oidc.PromptLogin) && authTime.Before(a.CreatedAt) {
		return true
	}
	return a.MaxAge != nil && authTime.Before(a.CreatedAt.Add(-*a.MaxAge))
}

// PromptNone reports whether the relying party forbade any interaction.
func (a AuthRequest) PromptNone() bool { return slices.Contains(a.Prompt, oidc.PromptNone) }

// CompleteAuthRequest marks a request as approved by the user of an active
// browser session, recording the session's authentication methods and
// sign-in time for the ID token. A request completes once.
func (p *Provider) CompleteAuthRequest(ctx context.Context, id string, u identity.User, sess identity.Session) error {
	if sess.State != identity.SessionActive || sess.UserID != u.ID {
		return apperr.E(apperr.Unauthenticated, "sign in first")
	}
	return p.db.Tx(ctx, func(tx *store.Tx) error {
		a, err := scanAuthRequest(tx.QueryRow(ctx, selectAuthRequest+" WHERE id = ?", id))
		if apperr.Is(err, apperr.NotFound) {
			return errAuthRequestGone
		}
		if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, `UPDATE oidc_auth_requests SET user_id = ?, amr = ?, auth_time = ?, done = TRUE
			WHERE id = ? AND done = FALSE AND expires_at > ?`, u.ID, strings.Join(amrOf(sess), " "), store.Time(sess.AuthTime), id,
			store.Time(p.now()))
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Conflict, "this sign-in request was already completed or has expired; go back to the application and start again")
		}
		return p.audit.AppendTx(ctx, tx, audit.Record{Action: "oidc.authorize", Target: audit.Target{Type: "oidc_client", ID: a.ClientID},
			Details: map[string]any{"user": u.Username, "scopes": a.Params.Scopes, "amr": amrOf(sess)}})
	})
}

// amrOf returns a session's authentication methods as RFC 8176 values,
// adding "mfa" when more than one factor was used.
func amrOf(sess identity.Session) []string {
	out := slices.Clone(sess.AMR)
	if sess.MFA() && !slices.Contains(out, identity.AMRMFA) {
		out = append(out, identity.AMRMFA)
	}
	return out
}

// saveCode stores the hash of the code issued for a completed request.
func (p *Provider) saveCode(ctx context.Context, id, code string) error {
	n, err := p.db.Exec(ctx, "UPDATE oidc_auth_requests SET code_hash = ?, code_expires_at = ? WHERE id = ? AND done = TRUE AND code_hash IS NULL",
		hashSecret(code), store.Time(p.now().Add(codeLifetime)), id)
	if err != nil {
		return err
	}
	if n == 0 {
		return oidc.ErrInvalidRequest().WithDescription("authorization request is not approved or already has a code")
	}
	return nil
}

// claimCode returns the request a code was issued for and burns the code:
// a code works once, even when the exchange then fails (a wrong PKCE
// verifier or client secret).
func (p *Provider) claimCode(ctx context.Context, code string) (*authRequest, error) {
	if code == "" || len(code) > maxOpaqueLen {
		return nil, apperr.E(apperr.Invalid, "invalid code")
	}
	var (
		a       *authRequest
		expired bool
	)
	err := p.db.Tx(ctx, func(tx *store.Tx) error {
		var (
			id  string
			exp time.Time
		)
		err := tx.QueryRow(ctx, "SELECT id, code_expires_at FROM oidc_auth_requests WHERE code_hash = ?", hashSecret(code)).
			Scan(&id, store.TimeDest(&exp))
		if err != nil {
			return err
		}
		if a, err = scanAuthRequest(tx.QueryRow(ctx, selectAuthRequest+" WHERE id = ?", id)); err != nil {
			return err
		}
		expired = p.now().After(exp)
		_, err = tx.Exec(ctx, "DELETE FROM oidc_auth_requests WHERE id = ?", id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if expired {
		return nil, apperr.E(apperr.Invalid, "code expired")
	}
	return a, nil
}
