package federation

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// discovery is a cached discovery document of an upstream issuer.
type discovery struct {
	provider *gooidc.Provider
	fetched  time.Time
}

// discover returns the upstream's endpoints and keys from its discovery
// document, cached for an hour. Failures are not cached.
func (s *Service) discover(ctx context.Context, issuer string) (*gooidc.Provider, error) {
	s.mu.Lock()
	d, ok := s.discovered[issuer]
	s.mu.Unlock()
	if ok && s.now().Sub(d.fetched) < discoveryTTL {
		return d.provider, nil
	}
	cctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	p, err := gooidc.NewProvider(gooidc.ClientContext(cctx, s.client), issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf(
				"the identity provider's discovery document names the issuer %q, not %q: ask an org owner to correct the issuer URL",
				truncate(mismatch.Discovered, 200), issuer))
		}
		return nil, apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("cannot reach the identity provider at %s; try again later", issuer))
	}
	s.mu.Lock()
	s.discovered[issuer] = discovery{provider: p, fetched: s.now()}
	s.mu.Unlock()
	return p, nil
}

func (s *Service) oauthConfig(p Provider, secret string, up *gooidc.Provider) oauth2.Config {
	return oauth2.Config{ClientID: p.ClientID, ClientSecret: secret, Endpoint: up.Endpoint(), RedirectURL: s.callback, Scopes: p.Scopes}
}

// Start begins a sign-in through one of an org's providers. It returns the
// upstream authorization URL to send the browser to, and a secret binding
// the sign-in to the browser: the caller puts it in an HttpOnly cookie,
// and Finish accepts the upstream's answer only with it.
func (s *Service) Start(ctx context.Context, org identity.Org, name, next string) (authURL, binding string, err error) {
	p, _, err := s.get(ctx, org.ID, name)
	if err != nil {
		return "", "", err
	}
	up, err := s.discover(ctx, p.Issuer)
	if err != nil {
		return "", "", err
	}
	state, err := randomToken()
	if err != nil {
		return "", "", err
	}
	nonce, err := randomToken()
	if err != nil {
		return "", "", err
	}
	if binding, err = randomToken(); err != nil {
		return "", "", err
	}
	verifier := oauth2.GenerateVerifier()
	now := s.now()
	if len(next) > 2048 {
		next = "/"
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM federation_states WHERE expires_at < ?", store.Time(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO federation_states (state_hash, provider_id, binding_hash, nonce, verifier, next,
			created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, hashString(state), p.ID, hashString(binding), nonce, verifier,
			next, store.Time(now), store.Time(now.Add(stateLifetime)))
		return err
	})
	if err != nil {
		return "", "", fmt.Errorf("store sign-in state: %w", err)
	}
	cfg := s.oauthConfig(p, "", up)
	return cfg.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), binding, nil
}

// Callback is what the upstream sent the browser back with.
type Callback struct {
	State string
	Code  string
	// Error is the upstream's OAuth error code, when it refused.
	Error string
	// Binding is the browser's cookie from Start.
	Binding string
}

// Result is a proven upstream identity mapped onto a Rampart user.
type Result struct {
	User     identity.User
	Org      identity.Org
	Provider Provider
	// Login says which second factors are still due (none when the
	// upstream proved one).
	Login identity.LoginResult
	// AMR are the methods proven: fed, plus mfa when the upstream says it
	// used a second factor.
	AMR []string
	// Next is where the browser goes once signed in.
	Next string
	// Created is set when the sign-in created the user.
	Created bool
}

// Via is how the sign-in is named in the audit log.
func (r Result) Via() string { return "idp:" + r.Provider.Name }

var errStartAgain = apperr.E(apperr.Unauthenticated, "this sign-in expired or was not started in this browser; start again")

var oauthErrorRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// Finish completes a sign-in: it consumes the state (once only), checks
// the browser binding, exchanges the code with the PKCE verifier, verifies
// the ID token (signature, issuer, audience, expiry, nonce) and maps the
// upstream identity onto a user. Every refusal is audited and leaves
// nothing behind.
func (s *Service) Finish(ctx context.Context, cb Callback) (Result, error) {
	if cb.State == "" || len(cb.State) > 128 || cb.Binding == "" || len(cb.Binding) > 128 {
		s.auditFailure(ctx, nil, nil, "missing or malformed state")
		return Result{}, errStartAgain
	}
	var (
		res        Result
		providerID int64
		bindHash   string
		nonce      string
		verifier   string
		expires    time.Time
	)
	err := s.db.QueryRow(ctx, `DELETE FROM federation_states WHERE state_hash = ?
		RETURNING provider_id, binding_hash, nonce, verifier, next, expires_at`, hashString(cb.State)).
		Scan(&providerID, &bindHash, &nonce, &verifier, &res.Next, store.TimeDest(&expires))
	if apperr.Is(err, apperr.NotFound) {
		s.auditFailure(ctx, nil, nil, "unknown, used or expired state")
		return Result{}, errStartAgain
	}
	if err != nil {
		return Result{}, err
	}
	if subtle.ConstantTimeCompare([]byte(bindHash), []byte(hashString(cb.Binding))) != 1 {
		s.auditFailure(ctx, nil, nil, "state bound to another browser")
		return Result{}, errStartAgain
	}
	p, sealed, err := scanProvider(s.db.QueryRow(ctx, selectProvider+" WHERE id = ?", providerID))
	if err != nil {
		return Result{}, err
	}
	res.Provider = p
	if res.Org, err = s.ids.OrgByID(ctx, p.OrgID); err != nil {
		return Result{}, err
	}
	if s.now().After(expires) {
		s.auditFailure(ctx, &p, nil, "state expired")
		return Result{}, errStartAgain
	}
	if cb.Error != "" {
		code := cb.Error
		if !oauthErrorRE.MatchString(code) {
			code = "error"
		}
		s.auditFailure(ctx, &p, nil, "upstream refused: "+code)
		return Result{}, apperr.E(apperr.Unauthenticated, "%s did not sign you in (%s)", p.Label, code)
	}
	if cb.Code == "" || len(cb.Code) > 4096 {
		s.auditFailure(ctx, &p, nil, "no code")
		return Result{}, apperr.E(apperr.Unauthenticated, "%s sent no sign-in code; start again", p.Label)
	}
	id, err := s.verify(ctx, p, sealed, cb.Code, verifier, nonce)
	if err != nil {
		s.log.WarnContext(ctx, "federated sign-in refused", "idp", p.Name, logging.KeyErr, err)
		s.auditFailure(ctx, &p, nil, apperr.Message(err))
		return Result{}, err
	}
	u, created, err := s.resolve(ctx, p, res.Org, id)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Forbidden || k == apperr.Unauthenticated {
			s.auditFailure(ctx, &p, &u, apperr.Message(err))
		}
		return Result{}, err
	}
	res.User, res.Created = u, created
	if res.Login, err = s.ids.SecondFactorsFor(ctx, u); err != nil {
		return Result{}, err
	}
	res.AMR = []string{identity.AMRFederated}
	if id.mfa() {
		// The upstream proved a second factor: nothing more is due, not
		// even the enrolment an org's MFA requirement would ask for.
		res.AMR = append(res.AMR, identity.AMRMFA)
		res.Login.Factors, res.Login.MustEnrol = nil, false
	}
	return res, nil
}

// verify exchanges the code and verifies the ID token.
func (s *Service) verify(ctx context.Context, p Provider, sealed []byte, code, verifier, nonce string) (upstreamIdentity, error) {
	var secret string
	if len(sealed) > 0 {
		pt, err := s.sealer.Open(sealed, secretAAD(p.OrgID, p.Name))
		if err != nil {
			return upstreamIdentity{}, fmt.Errorf("open client secret of %s: %w", p.Name, err)
		}
		secret = string(pt)
	}
	up, err := s.discover(ctx, p.Issuer)
	if err != nil {
		return upstreamIdentity{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	cctx = context.WithValue(cctx, oauth2.HTTPClient, s.client)
	cfg := s.oauthConfig(p, secret, up)
	tok, err := cfg.Exchange(cctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return upstreamIdentity{}, apperr.Wrap(err, apperr.Unauthenticated,
				fmt.Sprintf("%s refused the sign-in code (%s); start again", p.Label, sanitizeCode(re.ErrorCode)))
		}
		return upstreamIdentity{}, apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("cannot reach %s to finish the sign-in; try again later", p.Label))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return upstreamIdentity{}, apperr.E(apperr.Unauthenticated, "%s returned no ID token", p.Label)
	}
	v := up.Verifier(&gooidc.Config{ClientID: p.ClientID, Now: s.now})
	idt, err := v.Verify(gooidc.ClientContext(cctx, s.client), raw)
	if err != nil {
		return upstreamIdentity{}, apperr.Wrap(err, apperr.Unauthenticated, fmt.Sprintf("the ID token from %s is not valid (issuer, audience, expiry or signature)", p.Label))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return upstreamIdentity{}, apperr.E(apperr.Unauthenticated, "the ID token from %s answers another sign-in (nonce mismatch); start again", p.Label)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return upstreamIdentity{}, apperr.Wrap(err, apperr.Unauthenticated, fmt.Sprintf("the access token from %s does not match its ID token", p.Label))
		}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return upstreamIdentity{}, apperr.Wrap(err, apperr.Unauthenticated, fmt.Sprintf("the ID token from %s has malformed claims", p.Label))
	}
	id, err := identityFromClaims(claims, p.UsernameClaim)
	if err != nil {
		return upstreamIdentity{}, err
	}
	id.Issuer = idt.Issuer
	if (id.Username == "" || id.Email == "") && up.UserInfoEndpoint() != "" {
		s.mergeUserinfo(cctx, up, tok, p, &id)
	}
	return id, nil
}

// mergeUserinfo fills claims the ID token lacked from the userinfo
// endpoint, when it answers for the same subject.
func (s *Service) mergeUserinfo(ctx context.Context, up *gooidc.Provider, tok *oauth2.Token, p Provider, id *upstreamIdentity) {
	ui, err := up.UserInfo(gooidc.ClientContext(ctx, s.client), oauth2.StaticTokenSource(tok))
	if err != nil {
		s.log.DebugContext(ctx, "userinfo unavailable", "idp", p.Name, logging.KeyErr, err)
		return
	}
	var claims map[string]any
	if ui.Subject != id.Subject || ui.Claims(&claims) != nil {
		return
	}
	more, err := identityFromClaims(claims, p.UsernameClaim)
	if err != nil {
		return
	}
	if id.Username == "" {
		id.Username = more.Username
	}
	if id.Name == "" {
		id.Name = more.Name
	}
	if id.Email == "" {
		id.Email, id.EmailVerified = more.Email, more.EmailVerified
	}
}

func sanitizeCode(code string) string {
	if oauthErrorRE.MatchString(code) {
		return code
	}
	return "error"
}

// auditFailure records a refused federated sign-in.
func (s *Service) auditFailure(ctx context.Context, p *Provider, u *identity.User, reason string) {
	r := audit.Record{Action: "user.login", Outcome: audit.Failure, Target: audit.Target{Type: "user"},
		Details: map[string]any{"reason": truncate(reason, 300)}}
	if p != nil {
		r.OrgID = p.OrgID
		r.Details["via"] = "idp:" + p.Name
	} else {
		r.Details["via"] = "idp"
	}
	if u != nil && u.ID != 0 {
		r.Target = audit.Target{Type: "user", ID: fmt.Sprint(u.ID), Name: u.Username}
		r.ActorID, r.ActorName = u.ID, u.Username
	}
	if err := s.audit.Append(ctx, r); err != nil {
		s.log.ErrorContext(ctx, "audit refused federated sign-in", logging.KeyErr, err)
	}
}
