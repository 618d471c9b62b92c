package oidcop

import (
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the provider's schema (component "oidc"). It refers to
// identity's users table, so apply it after identity.Migrations.
var Migrations = store.EmbeddedMigrations("oidc", migrationFS, "migrations")

// Paths of the provider's endpoints, relative to the issuer.
const (
	DiscoveryPath  = "/.well-known/openid-configuration"
	AuthorizePath  = "/oauth/authorize"
	TokenPath      = "/oauth/token"
	UserinfoPath   = "/oauth/userinfo"
	KeysPath       = "/oauth/keys"
	RevokePath     = "/oauth/revoke"
	IntrospectPath = "/oauth/introspect"
	EndSessionPath = "/oauth/end_session"
	DeviceAuthPath = "/oauth/device_authorization"
	// LoginPath is the web page that completes an authorization request
	// from the browser session; DevicePath is where users enter a user code.
	LoginPath  = "/login/oidc"
	DevicePath = "/device"
)

// Defaults of Deps.
const (
	DefaultAccessTokenLifetime  = time.Hour
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	DefaultIDTokenLifetime      = time.Hour
	DefaultKeyRotation          = 30 * 24 * time.Hour
	DefaultDevicePollInterval   = 5 * time.Second
	deviceCodeLifetime          = 10 * time.Minute
	authRequestLifetime         = 30 * time.Minute
	codeLifetime                = 2 * time.Minute
)

// Deps are the provider's collaborators and settings.
type Deps struct {
	IDs    *identity.Service
	Logger *slog.Logger
	// Issuer is Rampart's public URL. Plain http is accepted (local use and
	// tests); relying parties then need to allow it too.
	Issuer string
	// Lifetimes; zero means the default.
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	IDTokenLifetime      time.Duration
	// KeyRotation is how long a signing key signs before a new one
	// replaces it.
	KeyRotation time.Duration
	// DevicePollInterval is the interval device-flow clients must keep
	// between polls (whole seconds).
	DevicePollInterval time.Duration
}

// Provider is Rampart's OpenID provider: the zitadel/oidc op.Provider
// over storage kept in the store, plus client registration and the
// browser steps the web UI calls.
type Provider struct {
	ids    *identity.Service
	db     *store.DB
	audit  *audit.Log
	sealer identity.Sealer
	log    *slog.Logger
	now    func() time.Time
	issuer string

	accessTTL, refreshTTL, idTTL, rotation, poll time.Duration

	op      *op.Provider
	storage *storage
	crypto  tokenCrypto

	keyMu sync.Mutex
	keys  map[string]*signingKey // parsed keys by kid
}

// New builds the provider. Call EnsureCLIClient once at start.
func New(d Deps) (*Provider, error) {
	switch {
	case d.IDs == nil:
		return nil, errors.New("oidcop: IDs is required")
	case d.Logger == nil:
		return nil, errors.New("oidcop: Logger is required")
	case d.Issuer == "":
		return nil, errors.New("oidcop: Issuer is required")
	}
	def := func(v *time.Duration, dv time.Duration) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&d.AccessTokenLifetime, DefaultAccessTokenLifetime)
	def(&d.RefreshTokenLifetime, DefaultRefreshTokenLifetime)
	def(&d.IDTokenLifetime, DefaultIDTokenLifetime)
	def(&d.KeyRotation, DefaultKeyRotation)
	def(&d.DevicePollInterval, DefaultDevicePollInterval)
	d.DevicePollInterval = max(time.Second, d.DevicePollInterval.Round(time.Second))
	issuer := strings.TrimSuffix(d.Issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("oidcop: issuer %q is not an http(s) URL", d.Issuer)
	}
	p := &Provider{
		ids: d.IDs, db: d.IDs.DB(), audit: d.IDs.Audit(), sealer: d.IDs.Sealer(), log: d.Logger.With("component", "oidc"),
		now: d.IDs.Now, issuer: issuer,
		accessTTL: d.AccessTokenLifetime, refreshTTL: d.RefreshTokenLifetime, idTTL: d.IDTokenLifetime,
		rotation: d.KeyRotation, poll: d.DevicePollInterval,
		crypto: tokenCrypto{sealer: d.IDs.Sealer()},
		keys:   map[string]*signingKey{},
	}
	p.storage = &storage{p: p}
	scopes := append([]string{}, oidcScopes...)
	for _, s := range authz.Scopes() {
		scopes = append(scopes, string(s.Name))
	}
	cfg := &op.Config{
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       scopes,
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "at_hash", "c_hash", "azp",
			"preferred_username", "name", "email", "email_verified"},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     deviceCodeLifetime,
			PollInterval: d.DevicePollInterval,
			UserFormPath: DevicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	opts := []op.Option{
		op.WithCrypto(p.crypto),
		op.WithCustomAuthEndpoint(op.NewEndpoint(AuthorizePath)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(TokenPath)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(UserinfoPath)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(KeysPath)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(RevokePath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(IntrospectPath)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(EndSessionPath)),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint(DeviceAuthPath)),
	}
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	if p.op, err = op.NewProvider(cfg, p.storage, op.StaticIssuer(issuer), opts...); err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	return p, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// protocolPaths are served by the library's router. The library's own
// callback endpoint is deliberately absent: the login page completes
// authorization requests itself, bound to the browser session.
var protocolPaths = []string{DiscoveryPath, AuthorizePath, TokenPath, UserinfoPath, KeysPath, RevokePath, IntrospectPath,
	EndSessionPath, DeviceAuthPath}

// Register mounts the protocol endpoints on mux.
func (p *Provider) Register(mux *http.ServeMux) {
	for _, path := range protocolPaths {
		mux.Handle(path, p.op)
	}
}

// IsProtocolRequest reports whether r is for one of the OAuth endpoints
// that authenticate their callers themselves (clients with their secret,
// userinfo with its access token).
func IsProtocolRequest(r *http.Request) bool {
	switch r.URL.Path {
	case TokenPath, IntrospectPath, RevokePath, DeviceAuthPath, UserinfoPath, EndSessionPath:
		return true
	}
	return false
}

// SkipAuthn routes protocol requests (see IsProtocolRequest) to direct,
// past authenticated: client secrets in Basic auth and access tokens for
// userinfo are the library's to check, not Rampart's request
// authentication, which would refuse them as unknown tokens.
func SkipAuthn(direct, authenticated http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsProtocolRequest(r) {
			direct.ServeHTTP(w, r)
			return
		}
		authenticated.ServeHTTP(w, r)
	})
}
