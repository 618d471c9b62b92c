package realm

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// External sign-in limits.
const (
	stateLifetime   = 10 * time.Minute
	upstreamTimeout = 10 * time.Second
	discoveryTTL    = time.Hour
	maxClientID     = 256
	maxSecret       = 1024
	bindingCookie   = "rampart_realm_oidc"
)

// mfaMethods are amr values (RFC 8176) that prove a second factor.
var mfaMethods = []string{"mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm"}

// Provider is an external OpenID provider of a realm: routes whose
// auth_provider names it sign end users in there instead of with the
// realm's own users.
type Provider struct {
	ID        int64
	RealmID   int64
	Name      string
	Issuer    string
	ClientID  string
	HasSecret bool
	Scopes    []string
	// RequireMFA refuses sign-ins whose ID token does not say (amr) that
	// a second factor was used.
	RequireMFA bool
	CreatedAt  time.Time
}

// ProviderSettings add or change a provider.
type ProviderSettings struct {
	Issuer   string
	ClientID string
	// ClientSecret: nil keeps the current one ("" for none: a public
	// client relying on PKCE).
	ClientSecret *string
	Scopes       []string
	// RequireMFA defaults to true.
	RequireMFA *bool
}

var providerNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func providerAAD(realmID int64, name string) string {
	return "realm:oidc-secret:" + strconv.FormatInt(realmID, 10) + ":" + name
}

const selectProvider = `SELECT id, realm_id, name, issuer, client_id, client_secret, scopes, require_mfa, created_at FROM realm_providers`

func scanProvider(row interface{ Scan(...any) error }) (Provider, []byte, error) {
	var (
		p      Provider
		sealed []byte
		scopes string
	)
	err := row.Scan(&p.ID, &p.RealmID, &p.Name, &p.Issuer, &p.ClientID, &sealed, &scopes, &p.RequireMFA, store.TimeDest(&p.CreatedAt))
	p.Scopes, p.HasSecret = strings.Fields(scopes), len(sealed) > 0
	return p, sealed, err
}

// Providers lists a realm's external providers.
func (s *Service) Providers(ctx context.Context, r Realm) ([]Provider, error) {
	rows, err := s.db.Query(ctx, selectProvider+" WHERE realm_id = ? ORDER BY name", r.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Provider
	for rows.Next() {
		p, _, err := scanProvider(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *Service) provider(ctx context.Context, r Realm, name string) (Provider, []byte, error) {
	p, sealed, err := scanProvider(s.db.QueryRow(ctx, selectProvider+" WHERE realm_id = ? AND name = ?", r.ID, name))
	if apperr.Is(err, apperr.NotFound) {
		return p, nil, apperr.E(apperr.NotFound, "the realm has no sign-in provider %q", truncate(name, 64))
	}
	return p, sealed, err
}

// SetProvider adds or changes an external provider of the realm (audited
// realm.provider.set; never the secret).
func (s *Service) SetProvider(ctx context.Context, r Realm, name string, in ProviderSettings) (Provider, error) {
	if !providerNameRE.MatchString(name) {
		return Provider{}, apperr.InvalidField("name", "provider name must be 1-63 lower-case letters, digits or dashes")
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, _, err := scanProvider(tx.QueryRow(ctx, selectProvider+" WHERE realm_id = ? AND name = ?", r.ID, name))
		exists := err == nil
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return err
		}
		next := cur
		if !exists {
			next = Provider{Scopes: []string{gooidc.ScopeOpenID, "email"}, RequireMFA: true}
		}
		if in.Issuer != "" || !exists {
			if err := federation.ValidateIssuer(in.Issuer); err != nil {
				return err
			}
			next.Issuer = strings.TrimRight(in.Issuer, "/")
		}
		if in.ClientID != "" || !exists {
			if in.ClientID == "" || len(in.ClientID) > maxClientID || strings.ContainsAny(in.ClientID, "\r\n\x00 ") {
				return apperr.InvalidField("client_id", "client_id is required: one word of at most %d bytes", maxClientID)
			}
			next.ClientID = in.ClientID
		}
		if in.Scopes != nil {
			if len(in.Scopes) > 20 {
				return apperr.InvalidField("scopes", "at most 20 scopes")
			}
			scopes := []string{gooidc.ScopeOpenID}
			for _, sc := range in.Scopes {
				if sc == "" || len(sc) > 64 || strings.ContainsAny(sc, " \r\n\x00\"\\") {
					return apperr.InvalidField("scopes", "a scope is one word of at most 64 bytes")
				}
				if !slices.Contains(scopes, sc) {
					scopes = append(scopes, sc)
				}
			}
			next.Scopes = scopes
		}
		if in.RequireMFA != nil {
			next.RequireMFA = *in.RequireMFA
		}
		var sealed []byte
		if in.ClientSecret != nil && *in.ClientSecret != "" {
			if len(*in.ClientSecret) > maxSecret {
				return apperr.InvalidField("client_secret", "client_secret must be at most %d bytes", maxSecret)
			}
			if sealed, err = s.sealer.Seal([]byte(*in.ClientSecret), providerAAD(r.ID, name)); err != nil {
				return err
			}
		}
		if !exists {
			_, err = tx.Exec(ctx, `INSERT INTO realm_providers (realm_id, name, issuer, client_id, client_secret, scopes, require_mfa, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, name, next.Issuer, next.ClientID, sealed, strings.Join(next.Scopes, " "), next.RequireMFA,
				store.Time(s.now()))
		} else {
			q := "UPDATE realm_providers SET issuer = ?, client_id = ?, scopes = ?, require_mfa = ?"
			args := []any{next.Issuer, next.ClientID, strings.Join(next.Scopes, " "), next.RequireMFA}
			if in.ClientSecret != nil {
				q += ", client_secret = ?"
				args = append(args, sealed)
			}
			_, err = tx.Exec(ctx, q+" WHERE id = ?", append(args, cur.ID)...)
		}
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.provider.set", OrgID: r.OrgID,
			Target: audit.Target{Type: "realm_provider", ID: strconv.FormatInt(r.OrgID, 10) + "/" + name, Name: name},
			Details: map[string]any{"issuer": next.Issuer, "client_id": next.ClientID, "require_mfa": next.RequireMFA,
				"created": !exists, "secret_changed": in.ClientSecret != nil}})
	})
	if err != nil {
		return Provider{}, err
	}
	p, _, err := s.provider(ctx, r, name)
	return p, err
}

// DeleteProvider removes an external provider and ends its sessions
// (audited realm.provider.delete).
func (s *Service) DeleteProvider(ctx context.Context, r Realm, name string) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM realm_providers WHERE realm_id = ? AND name = ?", r.ID, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "the realm has no sign-in provider %q", truncate(name, 64))
		}
		if _, err := tx.Exec(ctx, "DELETE FROM realm_sessions WHERE realm_id = ? AND provider = ?", r.ID, name); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.provider.delete", OrgID: r.OrgID,
			Target: audit.Target{Type: "realm_provider", ID: strconv.FormatInt(r.OrgID, 10) + "/" + name, Name: name}})
	})
}

// discover returns the provider's endpoints and keys, cached an hour.
func (s *Service) discover(ctx context.Context, issuer string) (*gooidc.Provider, error) {
	s.mu.Lock()
	d, ok := s.discovered[issuer]
	s.mu.Unlock()
	if ok && s.now().Sub(d.at) < discoveryTTL {
		return d.p, nil
	}
	cctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	p, err := gooidc.NewProvider(gooidc.ClientContext(cctx, s.client), issuer)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, "cannot reach the sign-in provider at "+issuer+"; try again later")
	}
	s.mu.Lock()
	s.discovered[issuer] = discovered{p: p, at: s.now()}
	s.mu.Unlock()
	return p, nil
}

// redirectURI is the callback on the application's host.
func redirectURI(base string) string { return base + AuthPrefix + "oidc/callback" }

// oidcStart sends the browser to the provider: state, nonce and PKCE
// verifier are kept server-side for ten minutes; a cookie binds them to
// this browser.
func (s *Service) oidcStart(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	ctx := r.Context()
	p := s.newPage(w, r, rlm, "Sign in")
	prov, _, err := s.provider(ctx, rlm, r.URL.Query().Get("provider"))
	if err != nil {
		s.formError(w, r, rlm, "error", p, err)
		return
	}
	up, err := s.discover(ctx, prov.Issuer)
	if err != nil {
		s.formError(w, r, rlm, "error", p, err)
		return
	}
	state, err1 := randomToken(32)
	nonce, err2 := randomToken(32)
	binding, err3 := randomToken(32)
	if err := errors.Join(err1, err2, err3); err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	verifier := oauth2.GenerateVerifier()
	now := s.now()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM realm_oidc_states WHERE expires_at < ?", store.Time(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO realm_oidc_states (state_hash, provider_id, binding_hash, host, nonce, verifier, next, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, hashToken(state), prov.ID, hashToken(binding), host, nonce, verifier, p.Next,
			store.Time(now.Add(stateLifetime)))
		return err
	})
	if err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	// Lax: the provider sends the browser back with a top-level GET.
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, bindingCookie), Value: binding, Path: "/", MaxAge: int(stateLifetime / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	cfg := oauth2.Config{ClientID: prov.ClientID, Endpoint: up.Endpoint(), RedirectURL: redirectURI(baseURL(r, host)), Scopes: prov.Scopes}
	http.Redirect(w, r, cfg.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

var oauthErrorRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// oidcCallback finishes an external sign-in: the state is used up, the
// browser binding checked, the code exchanged with the verifier and the
// ID token verified (signature, issuer, audience, expiry, nonce); then
// a complete session starts.
func (s *Service) oidcCallback(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	ctx := r.Context()
	p := s.newPage(w, r, rlm, "Sign in")
	again := apperr.E(apperr.Unauthenticated, "this sign-in expired or was not started in this browser; go back to the application and start again")
	q := r.URL.Query()
	state := q.Get("state")
	c, cerr := r.Cookie(cookieName(r, bindingCookie))
	if state == "" || len(state) > 128 || cerr != nil || len(c.Value) > 128 {
		s.auditExternal(ctx, rlm, "", "", "missing state or browser binding")
		s.formError(w, r, rlm, "error", p, again)
		return
	}
	var (
		provID           int64
		bindHash, stHost string
		nonce, verifier  string
		next             string
		expires          time.Time
	)
	err := s.db.QueryRow(ctx, `DELETE FROM realm_oidc_states WHERE state_hash = ?
		RETURNING provider_id, binding_hash, host, nonce, verifier, next, expires_at`, hashToken(state)).
		Scan(&provID, &bindHash, &stHost, &nonce, &verifier, &next, store.TimeDest(&expires))
	if apperr.Is(err, apperr.NotFound) {
		s.auditExternal(ctx, rlm, "", "", "unknown, used or expired state")
		s.formError(w, r, rlm, "error", p, again)
		return
	}
	if err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, bindingCookie), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil})
	prov, sealed, err := scanProvider(s.db.QueryRow(ctx, selectProvider+" WHERE id = ? AND realm_id = ?", provID, rlm.ID))
	if err != nil || subtle.ConstantTimeCompare([]byte(bindHash), []byte(hashToken(c.Value))) != 1 || stHost != host ||
		!s.now().Before(expires) {
		s.auditExternal(ctx, rlm, prov.Name, "", "state bound to another browser or host, or expired")
		s.formError(w, r, rlm, "error", p, again)
		return
	}
	if e := q.Get("error"); e != "" {
		if !oauthErrorRE.MatchString(e) {
			e = "error"
		}
		s.auditExternal(ctx, rlm, prov.Name, "", "provider refused: "+e)
		s.formError(w, r, rlm, "error", p, apperr.E(apperr.Unauthenticated, "the sign-in provider did not sign you in (%s)", e))
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.auditExternal(ctx, rlm, prov.Name, "", "no code")
		s.formError(w, r, rlm, "error", p, again)
		return
	}
	ses, err := s.exchange(ctx, prov, sealed, redirectURI(baseURL(r, host)), code, verifier, nonce)
	if err != nil {
		s.log.WarnContext(ctx, "external sign-in refused", "provider", prov.Name, logging.KeyErr, err)
		s.auditExternal(ctx, rlm, prov.Name, ses.Subject, apperr.Message(err))
		s.formError(w, r, rlm, "error", p, err)
		return
	}
	tok, err := s.newExternalSession(ctx, rlm, host, ses)
	if err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	if err := s.audit.Append(ctx, audit.Record{Action: "realm.user.login", OrgID: rlm.OrgID, ActorName: "realm:" + ses.Email,
		Target:  audit.Target{Type: "realm_user", ID: strconv.FormatInt(rlm.OrgID, 10) + "/" + ses.sub(), Name: ses.Email},
		Details: map[string]any{"provider": prov.Name, "amr": ses.AMR}}); err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	s.setCookie(w, r, sessionCookie, tok, 0)
	http.Redirect(w, r, SafeNext(next), http.StatusSeeOther)
}

// exchange redeems the code and verifies the ID token.
func (s *Service) exchange(ctx context.Context, prov Provider, sealed []byte, redirect, code, verifier, nonce string) (Session, error) {
	ses := Session{Provider: prov.Name}
	var secret string
	if len(sealed) > 0 {
		pt, err := s.sealer.Open(sealed, providerAAD(prov.RealmID, prov.Name))
		if err != nil {
			return ses, fmt.Errorf("open client secret of %s: %w", prov.Name, err)
		}
		secret = string(pt)
	}
	up, err := s.discover(ctx, prov.Issuer)
	if err != nil {
		return ses, err
	}
	cctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	cctx = context.WithValue(cctx, oauth2.HTTPClient, s.client)
	cfg := oauth2.Config{ClientID: prov.ClientID, ClientSecret: secret, Endpoint: up.Endpoint(), RedirectURL: redirect, Scopes: prov.Scopes}
	tok, err := cfg.Exchange(cctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return ses, apperr.Wrap(err, apperr.Unauthenticated, "the sign-in provider did not accept the sign-in; start again")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return ses, apperr.E(apperr.Unauthenticated, "the sign-in provider sent no ID token")
	}
	idt, err := up.VerifierContext(cctx, &gooidc.Config{ClientID: prov.ClientID, Now: s.now}).Verify(cctx, raw)
	if err != nil {
		return ses, apperr.Wrap(err, apperr.Unauthenticated, "the sign-in provider's ID token did not verify")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return ses, apperr.E(apperr.Unauthenticated, "the ID token's nonce does not match this sign-in")
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		AMR           []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		return ses, apperr.Wrap(err, apperr.Unauthenticated, "the ID token's claims could not be read")
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return ses, apperr.E(apperr.Unauthenticated, "the ID token has no usable subject")
	}
	ses.Subject = idt.Subject
	if e, err := NormalizeEmail(claims.Email); err == nil {
		ses.Email, ses.EmailVerified = e, claims.EmailVerified
	}
	for _, m := range claims.AMR {
		if len(ses.AMR) < 10 && len(m) <= 16 && oauthErrorRE.MatchString(m) {
			ses.AMR = append(ses.AMR, m)
		}
	}
	if prov.RequireMFA && !slices.ContainsFunc(ses.AMR, func(m string) bool { return slices.Contains(mfaMethods, m) }) {
		return ses, apperr.E(apperr.Forbidden, "this site requires two-factor authentication: set up a second factor with the sign-in provider and sign in with it")
	}
	return ses, nil
}

func (s *Service) auditExternal(ctx context.Context, r Realm, provider, sub, reason string) {
	id := strconv.FormatInt(r.OrgID, 10) + "/" + provider
	if sub != "" {
		id += ":" + truncate(sub, 64)
	}
	if err := s.audit.Append(ctx, audit.Record{Action: "realm.user.login", Outcome: audit.Failure, OrgID: r.OrgID,
		ActorName: "realm:" + provider, Target: audit.Target{Type: "realm_user", ID: id},
		Details: map[string]any{"provider": provider, "reason": reason}}); err != nil {
		s.log.WarnContext(ctx, "audit external sign-in", logging.KeyErr, err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
