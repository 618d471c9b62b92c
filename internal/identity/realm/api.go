package realm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// Wire types of the realm API.

// SMTPJSON is a realm's mail server; the password is write-only.
type SMTPJSON struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	From     string `json:"from,omitempty"`
	TLS      string `json:"tls,omitempty"`
	Username string `json:"username,omitempty"`
	// Password is only ever sent, never shown: nil keeps the current
	// one, "" removes it.
	Password    *string `json:"password,omitempty"`
	HasPassword bool    `json:"has_password,omitempty"`
}

// RealmJSON is an org's realm as the API shows it.
type RealmJSON struct {
	// Configured is false when the org has no realm (the other fields
	// are then empty).
	Configured      bool      `json:"configured"`
	Org             string    `json:"org"`
	DisplayName     string    `json:"display_name,omitempty"`
	AllowSignup     bool      `json:"allow_signup"`
	SMTP            *SMTPJSON `json:"smtp,omitempty"`
	SessionIdle     string    `json:"session_idle,omitempty"`
	SessionAbsolute string    `json:"session_absolute,omitempty"`
	Issuer          string    `json:"issuer,omitempty"`
	JWKSURL         string    `json:"jwks_url,omitempty"`
	KeyID           string    `json:"key_id,omitempty"`
	Users           int       `json:"users"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// RealmRequest creates or changes a realm (PUT). Creating one needs
// smtp.host and smtp.from; omitted fields keep their values.
type RealmRequest struct {
	DisplayName     string   `json:"display_name,omitempty"`
	AllowSignup     *bool    `json:"allow_signup,omitempty"`
	SMTP            SMTPJSON `json:"smtp"`
	SessionIdle     string   `json:"session_idle,omitempty"`
	SessionAbsolute string   `json:"session_absolute,omitempty"`
}

// UserJSON is an end user of a realm.
type UserJSON struct {
	ID            int64     `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	TOTP          bool      `json:"totp"`
	RecoveryLeft  int       `json:"recovery_codes_left"`
	CreatedAt     time.Time `json:"created_at"`
	LastLoginAt   time.Time `json:"last_login_at,omitzero"`
	LockedUntil   time.Time `json:"locked_until,omitzero"`
}

// JWKSJSON documents the JWKS answer (RFC 7517) in the OpenAPI document.
type JWKSJSON struct {
	Keys []JWKJSON `json:"keys"`
}

// JWKJSON is one EC P-256 public key.
type JWKJSON struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// ProviderJSON is an external OpenID provider of a realm; never its
// client secret.
type ProviderJSON struct {
	Name       string   `json:"name"`
	Issuer     string   `json:"issuer"`
	ClientID   string   `json:"client_id"`
	HasSecret  bool     `json:"has_client_secret"`
	Scopes     []string `json:"scopes"`
	RequireMFA bool     `json:"require_mfa"`
	// RedirectPath is the callback path to register with the provider,
	// on every application host (https://HOST + redirect_path).
	RedirectPath string    `json:"redirect_path"`
	CreatedAt    time.Time `json:"created_at"`
}

// ProviderRequest adds or changes a provider (PUT). issuer and
// client_id are required to add one; omitted fields keep their values.
type ProviderRequest struct {
	Issuer   string `json:"issuer,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret: omitted keeps it, "" removes it (a public client
	// with PKCE).
	ClientSecret *string  `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	RequireMFA   *bool    `json:"require_mfa,omitempty"`
}

func providerJSON(p Provider) ProviderJSON {
	return ProviderJSON{Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID, HasSecret: p.HasSecret, Scopes: p.Scopes,
		RequireMFA: p.RequireMFA, RedirectPath: AuthPrefix + "oidc/callback", CreatedAt: p.CreatedAt}
}

// Routes are the realm API's routes, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const prefix = httpapi.Prefix + "/orgs/{org}/realm"
	return []httpapi.Route{
		{Method: "GET", Path: prefix, Tag: "orgs", Summary: "Show the org's end-user realm (never its SMTP password; owners)",
			Action: authz.RealmRead, On: httpapi.OnOrg, Response: RealmJSON{}, Handler: s.apiGet},
		{Method: "PUT", Path: prefix, Tag: "orgs", Summary: "Create or change the org's end-user realm (owners)",
			Action: authz.RealmWrite, On: httpapi.OnOrg, Request: RealmRequest{}, Response: RealmJSON{}, Handler: s.apiPut},
		{Method: "DELETE", Path: prefix, Tag: "orgs", Summary: "Remove the org's end-user realm with its users (owners)",
			Action: authz.RealmWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDelete},
		{Method: "POST", Path: prefix + "/rotate-key", Tag: "orgs",
			Summary: "Replace the realm's signing key; the old one stays in the JWKS until its tokens expire (owners)",
			Action:  authz.RealmWrite, On: httpapi.OnOrg, Response: RealmJSON{}, Handler: s.apiRotateKey},
		{Method: "GET", Path: prefix + "/users", Tag: "orgs", Summary: "List the end users of the org's realm (owners)",
			Action: authz.RealmRead, On: httpapi.OnOrg, Response: []UserJSON{}, Handler: s.apiUsers},
		{Method: "DELETE", Path: prefix + "/users/{id}", Tag: "orgs", Summary: "Remove an end user of the org's realm (owners)",
			Action: authz.RealmWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDeleteUser},
		{Method: "POST", Path: prefix + "/users/{id}/reset-mfa", Tag: "orgs",
			Summary: "Remove an end user's second factors so they enrol again at the next sign-in (owners)",
			Action:  authz.RealmWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiResetMFA},
		{Method: "GET", Path: prefix + "/providers", Tag: "orgs", Summary: "List the realm's external OpenID providers (never their secrets; owners)",
			Action: authz.RealmRead, On: httpapi.OnOrg, Response: []ProviderJSON{}, Handler: s.apiProviders},
		{Method: "PUT", Path: prefix + "/providers/{name}", Tag: "orgs", Summary: "Add or change an external OpenID provider routes can sign end users in with (owners)",
			Action: authz.RealmWrite, On: httpapi.OnOrg, Request: ProviderRequest{}, Response: ProviderJSON{}, Handler: s.apiPutProvider},
		{Method: "DELETE", Path: prefix + "/providers/{name}", Tag: "orgs", Summary: "Remove an external OpenID provider and end its sessions (owners)",
			Action: authz.RealmWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDeleteProvider},
		{Method: "GET", Path: httpapi.Prefix + "/realms/{org}/jwks", Tag: "orgs",
			Summary: "The realm's public signing keys (JWKS) that verify the X-Rampart-User JWT (anyone; empty for orgs without a realm)",
			Action:  authz.RealmKeys, Response: JWKSJSON{}, Handler: s.apiJWKS},
	}
}

func (s *Service) realmJSON(r Realm, users int) RealmJSON {
	return RealmJSON{Configured: true, Org: r.OrgName, DisplayName: r.DisplayName, AllowSignup: r.AllowSignup,
		SMTP:        &SMTPJSON{Host: r.SMTP.Host, Port: r.SMTP.Port, From: r.SMTP.From, TLS: r.SMTP.TLS, Username: r.SMTP.Username, HasPassword: r.SMTP.HasPassword},
		SessionIdle: r.SessionIdle.String(), SessionAbsolute: r.SessionAbsolute.String(), Issuer: s.Issuer(r.OrgName),
		JWKSURL: s.Issuer(r.OrgName) + "/jwks", KeyID: r.KeyID, Users: users, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func (s *Service) apiGet(c *httpapi.Call) error {
	r, err := s.Get(c.R.Context(), c.Org.ID)
	if apperr.Is(err, apperr.NotFound) {
		return c.JSON(RealmJSON{Org: c.Org.Name})
	}
	if err != nil {
		return err
	}
	users, err := s.Users(c.R.Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(s.realmJSON(r, len(users)))
}

func (s *Service) apiPut(c *httpapi.Call) error {
	var req RealmRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	in := Settings{DisplayName: req.DisplayName, AllowSignup: req.AllowSignup, SMTPHost: req.SMTP.Host, SMTPPort: req.SMTP.Port,
		SMTPFrom: req.SMTP.From, SMTPTLS: req.SMTP.TLS, SMTPUser: req.SMTP.Username, SMTPPassword: req.SMTP.Password}
	var err error
	if in.SessionIdle, err = parseDuration("session_idle", req.SessionIdle); err != nil {
		return err
	}
	if in.SessionAbsolute, err = parseDuration("session_absolute", req.SessionAbsolute); err != nil {
		return err
	}
	r, err := s.Set(c.R.Context(), c.Org, in)
	if err != nil {
		return err
	}
	users, err := s.Users(c.R.Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(s.realmJSON(r, len(users)))
}

func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || len(v) > 32 {
		return 0, apperr.InvalidField(field, "%s must be a duration like 30m or 12h", field)
	}
	return d, nil
}

func (s *Service) apiDelete(c *httpapi.Call) error {
	// Deleting a realm that does not exist succeeds: the org is left
	// without one either way.
	if _, err := s.Delete(c.R.Context(), c.Org); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiUsers(c *httpapi.Call) error {
	r, err := s.Get(c.R.Context(), c.Org.ID)
	if apperr.Is(err, apperr.NotFound) {
		return c.JSON([]UserJSON{})
	}
	if err != nil {
		return err
	}
	us, err := s.Users(c.R.Context(), r)
	if err != nil {
		return err
	}
	out := make([]UserJSON, len(us))
	for i, u := range us {
		out[i] = UserJSON{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, TOTP: u.TOTP, RecoveryLeft: u.RecoveryLeft,
			CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt, LockedUntil: u.LockedUntil}
	}
	return c.JSON(out)
}

// apiJWKS publishes the realm's keys. Orgs without a realm, and names
// of no org, get an empty set: the answer does not tell which orgs exist.
func (s *Service) apiJWKS(c *httpapi.Call) error {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if o, err := s.ids.Org(c.R.Context(), c.R.PathValue("org")); err == nil {
		if r, err := s.Get(c.R.Context(), o.ID); err == nil {
			if set, err = s.JWKS(c.R.Context(), r); err != nil {
				return err
			}
		} else if !apperr.Is(err, apperr.NotFound) {
			return err
		}
	} else if !apperr.Is(err, apperr.NotFound) {
		return err
	}
	c.W.Header().Set("Content-Type", "application/jwk-set+json")
	c.W.Header().Set("Cache-Control", "public, max-age=300")
	return json.NewEncoder(c.W).Encode(set)
}

func (s *Service) apiProviders(c *httpapi.Call) error {
	r, err := s.Get(c.R.Context(), c.Org.ID)
	if apperr.Is(err, apperr.NotFound) {
		return c.JSON([]ProviderJSON{})
	}
	if err != nil {
		return err
	}
	ps, err := s.Providers(c.R.Context(), r)
	if err != nil {
		return err
	}
	out := make([]ProviderJSON, len(ps))
	for i, p := range ps {
		out[i] = providerJSON(p)
	}
	return c.JSON(out)
}

func (s *Service) apiPutProvider(c *httpapi.Call) error {
	var req ProviderRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	r, err := s.Get(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	p, err := s.SetProvider(c.R.Context(), r, c.R.PathValue("name"), ProviderSettings{Issuer: req.Issuer, ClientID: req.ClientID,
		ClientSecret: req.ClientSecret, Scopes: req.Scopes, RequireMFA: req.RequireMFA})
	if err != nil {
		return err
	}
	return c.JSON(providerJSON(p))
}

func (s *Service) apiDeleteProvider(c *httpapi.Call) error {
	r, err := s.Get(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	if err := s.DeleteProvider(c.R.Context(), r, c.R.PathValue("name")); err != nil {
		return err
	}
	return c.NoContent()
}

// realmUser resolves {id} in the org's realm.
func (s *Service) realmUser(c *httpapi.Call) (Realm, int64, error) {
	r, err := s.Get(c.R.Context(), c.Org.ID)
	if err != nil {
		return r, 0, err
	}
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return r, 0, apperr.E(apperr.NotFound, "no such user")
	}
	return r, id, nil
}

func (s *Service) apiDeleteUser(c *httpapi.Call) error {
	r, id, err := s.realmUser(c)
	if err != nil {
		return err
	}
	if err := s.DeleteUser(c.R.Context(), r, id); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiResetMFA(c *httpapi.Call) error {
	r, id, err := s.realmUser(c)
	if err != nil {
		return err
	}
	if err := s.ResetMFA(c.R.Context(), r, id); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiRotateKey(c *httpapi.Call) error {
	r, err := s.RotateKey(c.R.Context(), c.Org)
	if err != nil {
		return err
	}
	users, err := s.Users(c.R.Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(s.realmJSON(r, len(users)))
}
