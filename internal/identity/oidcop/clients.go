package oidcop

import (
	"context"
	"crypto/subtle"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

// CLIClientID is the built-in public client of the rampart command line:
// it signs in with the device authorization grant and keeps a refresh token.
const CLIClientID = "rampart-cli"

// Grant types a client may be registered for.
const (
	GrantAuthorizationCode = string(oidc.GrantTypeCode)
	GrantRefreshToken      = string(oidc.GrantTypeRefreshToken)
	GrantClientCredentials = string(oidc.GrantTypeClientCredentials)
	GrantDeviceCode        = string(oidc.GrantTypeDeviceCode)
)

var knownGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode}

// Limits of a client registration.
const (
	maxRedirectURIs   = 10
	maxRedirectURILen = 2000
	maxClientName     = 100
)

// Client is a registered relying party (never its secret, which is shown
// once at creation).
type Client struct {
	ID   string
	Name string
	// Public clients (CLIs, single-page and native apps) have no secret
	// and must use PKCE; confidential clients authenticate with a secret.
	Public       bool
	RedirectURIs []string
	GrantTypes   []string
	// Scopes are the API scopes (authz.Scopes) the client may ask for on
	// top of openid, profile, email and offline_access.
	Scopes    []authz.Scope
	BuiltIn   bool
	CreatedAt time.Time
	CreatedBy string
}

// NewClient describes a client to register.
type NewClient struct {
	Name         string
	Public       bool
	RedirectURIs []string
	// GrantTypes defaults to authorization_code and refresh_token (plus
	// client_credentials for confidential clients).
	GrantTypes []string
	Scopes     []string
}

func clientTarget(c Client) audit.Target {
	return audit.Target{Type: "oidc_client", ID: c.ID, Name: c.Name}
}

// ValidateRedirectURI checks one redirect URI: absolute, https (or http
// only for localhost and loopback addresses), no fragment, no user info.
func ValidateRedirectURI(raw string) error {
	if raw == "" {
		return apperr.InvalidField("redirect_uris", "a redirect URI must not be empty")
	}
	if len(raw) > maxRedirectURILen {
		return apperr.InvalidField("redirect_uris", "a redirect URI may have at most %d characters", maxRedirectURILen)
	}
	if strings.ContainsAny(raw, " \t\r\n") || !utf8.ValidString(raw) {
		return apperr.InvalidField("redirect_uris", "redirect URI %q contains white space or invalid characters", trimForMsg(raw))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return apperr.InvalidField("redirect_uris", "redirect URI %q is not an absolute URL", trimForMsg(raw))
	}
	if strings.Contains(raw, "#") {
		return apperr.InvalidField("redirect_uris", "redirect URI %q must not have a fragment", trimForMsg(raw))
	}
	if u.User != nil {
		return apperr.InvalidField("redirect_uris", "redirect URI %q must not carry user information", trimForMsg(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return apperr.InvalidField("redirect_uris", "redirect URI %q must use https (http is allowed only for localhost and loopback addresses)", trimForMsg(raw))
	}
	return apperr.InvalidField("redirect_uris", "redirect URI %q must use https", trimForMsg(raw))
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func trimForMsg(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// validate normalises and checks a registration.
func (nc *NewClient) validate() error {
	nc.Name = strings.TrimSpace(nc.Name)
	if nc.Name == "" {
		return apperr.InvalidField("name", "a client needs a name")
	}
	if utf8.RuneCountInString(nc.Name) > maxClientName || strings.ContainsFunc(nc.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return apperr.InvalidField("name", "the name must be at most %d printable characters", maxClientName)
	}
	if len(nc.GrantTypes) == 0 {
		nc.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		if !nc.Public {
			nc.GrantTypes = append(nc.GrantTypes, GrantClientCredentials)
		}
	}
	var grants []string
	for _, g := range nc.GrantTypes {
		g = strings.TrimSpace(g)
		if !slices.Contains(knownGrants, g) {
			return apperr.InvalidField("grant_types", "unknown grant type %q (want %s)", trimForMsg(g), strings.Join(knownGrants, ", "))
		}
		if !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	nc.GrantTypes = grants
	if nc.Public && slices.Contains(grants, GrantClientCredentials) {
		return apperr.InvalidField("grant_types", "a public client has no secret and cannot use client_credentials")
	}
	if len(nc.RedirectURIs) > maxRedirectURIs {
		return apperr.InvalidField("redirect_uris", "at most %d redirect URIs", maxRedirectURIs)
	}
	var uris []string
	for _, u := range nc.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			return err
		}
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	nc.RedirectURIs = uris
	if slices.Contains(grants, GrantAuthorizationCode) && len(uris) == 0 {
		return apperr.InvalidField("redirect_uris", "the authorization_code grant needs at least one redirect URI")
	}
	if len(nc.Scopes) > 0 {
		sc, err := authz.ParseScopes(nc.Scopes)
		if err != nil {
			return err
		}
		nc.Scopes = make([]string, len(sc))
		for i, s := range sc {
			nc.Scopes[i] = string(s)
		}
	}
	return nil
}

// CreateClient registers a client. For a confidential client it returns
// the secret, which is stored only as a hash and never shown again.
func (p *Provider) CreateClient(ctx context.Context, nc NewClient) (Client, string, error) {
	if err := nc.validate(); err != nil {
		return Client{}, "", err
	}
	c := Client{ID: "rpc_" + randomID(15), Name: nc.Name, Public: nc.Public, RedirectURIs: nc.RedirectURIs,
		GrantTypes: nc.GrantTypes, Scopes: toScopes(nc.Scopes), CreatedAt: p.now().UTC().Truncate(time.Microsecond),
		CreatedBy: reqinfo.From(ctx).ActorName}
	var secret, secretHash string
	if !c.Public {
		secret = "rps_" + randomID(32)
		secretHash = hashSecret(secret)
	}
	err := p.db.Tx(ctx, func(tx *store.Tx) error {
		if err := insertClient(ctx, tx, c, secretHash); err != nil {
			return err
		}
		return p.audit.AppendTx(ctx, tx, audit.Record{Action: "oidc.client.create", Target: clientTarget(c),
			Details: map[string]any{"public": c.Public, "redirect_uris": c.RedirectURIs, "grant_types": c.GrantTypes, "scopes": nc.Scopes}})
	})
	if err != nil {
		return Client{}, "", err
	}
	return c, secret, nil
}

func insertClient(ctx context.Context, q store.Querier, c Client, secretHash string) error {
	_, err := q.Exec(ctx, `INSERT INTO oidc_clients (id, name, secret_hash, public, redirect_uris, grant_types, scopes, builtin,
		created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Name, secretHash, c.Public,
		strings.Join(c.RedirectURIs, " "), strings.Join(c.GrantTypes, " "), joinScopes(c.Scopes), c.BuiltIn,
		store.Time(c.CreatedAt), c.CreatedBy)
	return err
}

// EnsureCLIClient registers the built-in rampart-cli client when it is
// missing (first start).
func (p *Provider) EnsureCLIClient(ctx context.Context) error {
	_, _, err := p.client(ctx, CLIClientID)
	if err == nil || !apperr.Is(err, apperr.NotFound) {
		return err
	}
	c := Client{ID: CLIClientID, Name: "Rampart command line", Public: true, GrantTypes: []string{GrantDeviceCode, GrantRefreshToken},
		Scopes: []authz.Scope{authz.ScopeAdmin}, BuiltIn: true, CreatedAt: p.now().UTC().Truncate(time.Microsecond), CreatedBy: "system"}
	err = p.db.Tx(ctx, func(tx *store.Tx) error {
		if err := insertClient(ctx, tx, c, ""); err != nil {
			return err
		}
		return p.audit.AppendTx(ctx, tx, audit.Record{Action: "oidc.client.create", Target: clientTarget(c), ActorName: "system",
			Details: map[string]any{"public": true, "builtin": true, "grant_types": c.GrantTypes}})
	})
	if apperr.Is(err, apperr.Conflict) { // another replica created it first
		return nil
	}
	return err
}

const selectClient = "SELECT id, name, secret_hash, public, redirect_uris, grant_types, scopes, builtin, created_at, created_by FROM oidc_clients"

func scanClient(r interface{ Scan(...any) error }) (Client, string, error) {
	var (
		c                    Client
		hash, uris, gt, scps string
	)
	err := r.Scan(&c.ID, &c.Name, &hash, &c.Public, &uris, &gt, &scps, &c.BuiltIn, store.TimeDest(&c.CreatedAt), &c.CreatedBy)
	c.RedirectURIs, c.GrantTypes, c.Scopes = strings.Fields(uris), strings.Fields(gt), splitScopes(scps)
	return c, hash, err
}

// client loads a client and its secret hash.
func (p *Provider) client(ctx context.Context, id string) (Client, string, error) {
	if id == "" || len(id) > 100 {
		return Client{}, "", apperr.E(apperr.NotFound, "unknown client")
	}
	c, h, err := scanClient(p.db.QueryRow(ctx, selectClient+" WHERE id = ?", id))
	if apperr.Is(err, apperr.NotFound) {
		return Client{}, "", apperr.E(apperr.NotFound, "client %q not found", trimForMsg(id))
	}
	return c, h, err
}

// Client returns a registered client.
func (p *Provider) Client(ctx context.Context, id string) (Client, error) {
	c, _, err := p.client(ctx, id)
	return c, err
}

// Clients lists registered clients, built-in ones first, then by name.
func (p *Provider) Clients(ctx context.Context) ([]Client, error) {
	rows, err := p.db.Query(ctx, selectClient+" ORDER BY builtin DESC, name, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		c, _, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteClient removes a client with every token and pending request it
// holds. The built-in client cannot be deleted.
func (p *Provider) DeleteClient(ctx context.Context, id string) error {
	return p.db.Tx(ctx, func(tx *store.Tx) error {
		c, _, err := scanClient(tx.QueryRow(ctx, selectClient+" WHERE id = ?", id))
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "client %q not found", trimForMsg(id))
		}
		if err != nil {
			return err
		}
		if c.BuiltIn {
			return apperr.E(apperr.Invalid, "the built-in client %s cannot be deleted", c.ID)
		}
		for _, q := range []string{
			"DELETE FROM oidc_access_tokens WHERE client_id = ?",
			"DELETE FROM oidc_refresh_tokens WHERE client_id = ?",
			"DELETE FROM oidc_auth_requests WHERE client_id = ?",
			"DELETE FROM oidc_device_authorizations WHERE client_id = ?",
			"DELETE FROM oidc_clients WHERE id = ?",
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		return p.audit.AppendTx(ctx, tx, audit.Record{Action: "oidc.client.delete", Target: clientTarget(c)})
	})
}

// authenticateClient checks a confidential client's secret. Every failure
// is the same error; failures are audited.
func (p *Provider) authenticateClient(ctx context.Context, id, secret string) (Client, error) {
	c, hash, err := p.client(ctx, id)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return Client{}, err
	}
	ok := err == nil && !c.Public && hash != "" && secret != "" && len(secret) <= 256 &&
		subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hash)) == 1
	if !ok {
		reason := "wrong client secret"
		switch {
		case err != nil:
			reason = "unknown client"
		case c.Public:
			reason = "public client sent a secret"
		}
		p.auditFailure(ctx, "oidc.client.authenticate", audit.Target{Type: "oidc_client", ID: trimForMsg(id), Name: c.Name}, reason)
		return Client{}, apperr.E(apperr.Unauthenticated, "invalid client credentials")
	}
	return c, nil
}

// auditFailure records a refused protocol step (its own transaction: the
// refusal changes nothing else).
func (p *Provider) auditFailure(ctx context.Context, action string, target audit.Target, reason string) {
	if err := p.audit.Append(ctx, audit.Record{Action: action, Outcome: audit.Failure, Target: target,
		Details: map[string]any{"reason": reason}}); err != nil {
		p.log.ErrorContext(ctx, "audit refused oidc step", "err", err, "action", action)
	}
}

func toScopes(names []string) []authz.Scope {
	out := make([]authz.Scope, 0, len(names))
	for _, n := range names {
		out = append(out, authz.Scope(n))
	}
	return out
}

func joinScopes(sc []authz.Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, " ")
}

func splitScopes(s string) []authz.Scope { return toScopes(strings.Fields(s)) }

// opClient adapts a Client to the library's op.Client.
type opClient struct {
	c          Client
	idLifetime time.Duration
}

var _ op.Client = opClient{}

func (o opClient) GetID() string                    { return o.c.ID }
func (o opClient) RedirectURIs() []string           { return o.c.RedirectURIs }
func (o opClient) PostLogoutRedirectURIs() []string { return nil }
func (o opClient) ApplicationType() op.ApplicationType {
	if o.c.Public {
		// Native: loopback redirects may use any port (RFC 8252).
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (o opClient) AuthMethod() oidc.AuthMethod {
	if o.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (o opClient) ResponseTypes() []oidc.ResponseType {
	if slices.Contains(o.c.GrantTypes, GrantAuthorizationCode) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}

func (o opClient) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(o.c.GrantTypes))
	for i, g := range o.c.GrantTypes {
		out[i] = oidc.GrantType(g)
	}
	return out
}

func (o opClient) LoginURL(authRequestID string) string {
	return LoginPath + "?authRequest=" + url.QueryEscape(authRequestID)
}

func (o opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (o opClient) IDTokenLifetime() time.Duration      { return o.idLifetime }
func (o opClient) DevMode() bool                       { return false }
func (o opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits the API scopes the client was registered for.
func (o opClient) IsScopeAllowed(scope string) bool {
	return slices.Contains(o.c.Scopes, authz.Scope(scope))
}

// IDTokenUserinfoClaimsAssertion puts profile and e-mail claims into the
// ID token too, so relying parties need not call userinfo.
func (o opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (o opClient) ClockSkew() time.Duration             { return 0 }

// allowedScopes keeps the scopes a client may receive: the OpenID ones and
// its registered API scopes, in the order asked, without duplicates.
func (c Client) allowedScopes(asked []string) []string {
	var out []string
	for _, s := range asked {
		ok := slices.Contains(oidcScopes, s) || slices.Contains(c.Scopes, authz.Scope(s))
		if ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// oidcScopes are the OpenID Connect scopes every client may ask for.
var oidcScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// apiScopes returns the Rampart API scopes among scopes.
func apiScopes(scopes []string) []authz.Scope {
	known := map[authz.Scope]bool{}
	for _, s := range authz.Scopes() {
		known[s.Name] = true
	}
	out := []authz.Scope{}
	for _, s := range scopes {
		if known[authz.Scope(s)] && !slices.Contains(out, authz.Scope(s)) {
			out = append(out, authz.Scope(s))
		}
	}
	return out
}
