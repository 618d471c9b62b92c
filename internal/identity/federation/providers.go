package federation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the federation schema (component "federation"). It refers
// to identity's orgs and users tables, so apply it after
// identity.Migrations.
var Migrations = store.EmbeddedMigrations("federation", migrationFS, "migrations")

// CallbackPath is where upstream providers send the browser back; its full
// URL (public URL + CallbackPath) is what owners register upstream.
const CallbackPath = "/login/idp/callback"

// Defaults of a provider.
const (
	DefaultUsernameClaim = "preferred_username"
	DefaultRole          = authz.Reader
)

// DefaultScopes are requested when a provider names none.
var DefaultScopes = []string{"openid", "profile", "email"}

const (
	stateLifetime = 10 * time.Minute
	discoveryTTL  = time.Hour
	// upstreamTimeout bounds every call to an upstream provider.
	upstreamTimeout = 10 * time.Second
)

// Deps are the federation service's collaborators.
type Deps struct {
	IDs    *identity.Service
	Logger *slog.Logger
	// PublicURL is where browsers reach Rampart; the callback URL derives
	// from it, and an https URL marks the state cookie Secure.
	PublicURL string
	// HTTPClient calls upstream providers; nil means a client with a
	// 10-second timeout.
	HTTPClient *http.Client
}

// Service manages upstream providers and runs sign-ins through them.
type Service struct {
	ids      *identity.Service
	db       *store.DB
	audit    *audit.Log
	sealer   identity.Sealer
	log      *slog.Logger
	now      func() time.Time
	callback string
	secure   bool
	client   *http.Client

	mu         sync.Mutex
	discovered map[string]discovery // by issuer
}

// New returns the federation service.
func New(d Deps) (*Service, error) {
	switch {
	case d.IDs == nil:
		return nil, errors.New("federation: IDs is required")
	case d.Logger == nil:
		return nil, errors.New("federation: Logger is required")
	}
	u, err := url.Parse(strings.TrimSuffix(d.PublicURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("federation: public URL %q is not an http(s) URL", d.PublicURL)
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: upstreamTimeout}
	}
	return &Service{
		ids: d.IDs, db: d.IDs.DB(), audit: d.IDs.Audit(), sealer: d.IDs.Sealer(), now: d.IDs.Now,
		log:      d.Logger.With("component", "federation"),
		callback: u.String() + CallbackPath, secure: u.Scheme == "https", client: client,
		discovered: map[string]discovery{},
	}, nil
}

// CallbackURL is the redirect URI to register with every upstream provider.
func (s *Service) CallbackURL() string { return s.callback }

// Provider is an org's upstream OpenID provider. Its client secret never
// leaves the store except to call the upstream token endpoint.
type Provider struct {
	ID     int64
	OrgID  int64
	Name   string
	Label  string
	Issuer string
	// ClientID is Rampart's client id at the upstream.
	ClientID string
	// HasSecret is false for public clients (PKCE only).
	HasSecret bool
	Scopes    []string
	// UsernameClaim names the claim new users take their user name from.
	UsernameClaim string
	// MatchEmail links an upstream identity to the org member with the
	// same verified e-mail address on first sign-in.
	MatchEmail bool
	// CreateUsers creates a user on first sign-in when nothing matches.
	CreateUsers bool
	// Role is what users signing in through the provider become in the
	// org, when they are not members yet.
	Role      authz.Role
	CreatedAt time.Time
	CreatedBy string
}

// NewProvider describes a provider to add.
type NewProvider struct {
	Name          string
	Label         string
	Issuer        string
	ClientID      string
	ClientSecret  string
	Scopes        []string
	UsernameClaim string
	MatchEmail    bool
	CreateUsers   bool
	// Role is reader, developer or maintainer; empty means reader.
	Role string
}

const selectProvider = `SELECT id, org_id, name, label, issuer, client_id, client_secret, scopes, username_claim, match_email,
	create_users, role, created_at, created_by FROM federation_providers`

func scanProvider(r interface{ Scan(...any) error }) (Provider, []byte, error) {
	var (
		p      Provider
		secret []byte
		scopes string
		role   string
	)
	err := r.Scan(&p.ID, &p.OrgID, &p.Name, &p.Label, &p.Issuer, &p.ClientID, &secret, &scopes, &p.UsernameClaim,
		&p.MatchEmail, &p.CreateUsers, &role, store.TimeDest(&p.CreatedAt), &p.CreatedBy)
	if err != nil {
		return p, nil, err
	}
	p.Scopes = strings.Fields(scopes)
	p.Role, _ = authz.ParseRole(role)
	p.HasSecret = len(secret) > 0
	return p, secret, nil
}

func secretAAD(orgID int64, name string) string {
	return "federation.client_secret:" + strconv.FormatInt(orgID, 10) + "/" + name
}

func providerTarget(p Provider) audit.Target {
	return audit.Target{Type: "idp", ID: strconv.FormatInt(p.ID, 10), Name: p.Name}
}

// Create adds an upstream provider to an org.
func (s *Service) Create(ctx context.Context, org identity.Org, np NewProvider) (Provider, error) {
	p, err := validateProvider(np)
	if err != nil {
		return Provider{}, err
	}
	var sealed []byte
	if np.ClientSecret != "" {
		if sealed, err = s.sealer.Seal([]byte(np.ClientSecret), secretAAD(org.ID, p.Name)); err != nil {
			return Provider{}, fmt.Errorf("seal client secret: %w", err)
		}
	}
	p.OrgID, p.HasSecret = org.ID, np.ClientSecret != ""
	p.CreatedAt = s.now().UTC().Truncate(time.Microsecond)
	p.CreatedBy = reqinfo.From(ctx).ActorName
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO federation_providers (org_id, name, label, issuer, client_id, client_secret, scopes,
			username_claim, match_email, create_users, role, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`, org.ID, p.Name, p.Label, p.Issuer, p.ClientID, sealed, strings.Join(p.Scopes, " "), p.UsernameClaim,
			p.MatchEmail, p.CreateUsers, p.Role.String(), store.Time(p.CreatedAt), p.CreatedBy).Scan(&p.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "name", Msg: fmt.Sprintf("org %s already has an identity provider %q", org.Name, p.Name)}
		}
		if err != nil {
			return fmt.Errorf("insert identity provider: %w", err)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "idp.create", OrgID: org.ID, Target: providerTarget(p),
			Details: map[string]any{"org": org.Name, "issuer": p.Issuer, "client_id": p.ClientID, "client_secret": p.HasSecret,
				"scopes": p.Scopes, "username_claim": p.UsernameClaim, "match_email": p.MatchEmail, "create_users": p.CreateUsers,
				"role": p.Role.String()}})
	})
	if err != nil {
		return Provider{}, err
	}
	return p, nil
}

// List returns an org's providers by name.
func (s *Service) List(ctx context.Context, orgID int64) ([]Provider, error) {
	return s.query(ctx, selectProvider+" WHERE org_id = ? ORDER BY name", orgID)
}

// All returns every provider of every org (for the sign-in page).
func (s *Service) All(ctx context.Context) ([]Provider, error) {
	return s.query(ctx, selectProvider+" ORDER BY org_id, name")
}

func (s *Service) query(ctx context.Context, q string, args ...any) ([]Provider, error) {
	rows, err := s.db.Query(ctx, q, args...)
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

// Get returns one of an org's providers.
func (s *Service) Get(ctx context.Context, orgID int64, name string) (Provider, error) {
	p, _, err := s.get(ctx, orgID, name)
	return p, err
}

func (s *Service) get(ctx context.Context, orgID int64, name string) (Provider, []byte, error) {
	p, secret, err := scanProvider(s.db.QueryRow(ctx, selectProvider+" WHERE org_id = ? AND name = ?", orgID, name))
	if apperr.Is(err, apperr.NotFound) {
		return p, nil, apperr.E(apperr.NotFound, "identity provider %q not found", truncate(name, 64))
	}
	return p, secret, err
}

// Delete removes a provider; sign-ins through it in progress fail. Links
// of users to their upstream identities stay: adding the provider again
// signs them in to the same accounts.
func (s *Service) Delete(ctx context.Context, org identity.Org, name string) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		p, _, err := scanProvider(tx.QueryRow(ctx, selectProvider+" WHERE org_id = ? AND name = ?", org.ID, name))
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "identity provider %q not found", truncate(name, 64))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM federation_providers WHERE id = ?", p.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "idp.delete", OrgID: org.ID, Target: providerTarget(p),
			Details: map[string]any{"org": org.Name, "issuer": p.Issuer}})
	})
}

var (
	claimRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	scopeRE = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,64}$`) // RFC 6749 scope-token
)

// validateProvider checks a new provider and fills defaults.
func validateProvider(np NewProvider) (Provider, error) {
	p := Provider{Name: strings.TrimSpace(np.Name), Label: strings.TrimSpace(np.Label), Issuer: strings.TrimSpace(np.Issuer),
		ClientID: strings.TrimSpace(np.ClientID), UsernameClaim: strings.TrimSpace(np.UsernameClaim),
		MatchEmail: np.MatchEmail, CreateUsers: np.CreateUsers}
	if err := identity.ValidateName("name", p.Name); err != nil {
		return p, err
	}
	if p.Label == "" {
		p.Label = p.Name
	}
	if err := validateText("label", p.Label, 60); err != nil {
		return p, err
	}
	if err := ValidateIssuer(p.Issuer); err != nil {
		return p, err
	}
	if p.ClientID == "" {
		return p, apperr.InvalidField("client_id", "client_id is required: the client id Rampart was registered with upstream")
	}
	if err := validateText("client_id", p.ClientID, 255); err != nil {
		return p, err
	}
	if err := validateText("client_secret", np.ClientSecret, 1024); err != nil {
		return p, apperr.InvalidField("client_secret", "client_secret must be at most 1024 bytes of printable text")
	}
	if p.UsernameClaim == "" {
		p.UsernameClaim = DefaultUsernameClaim
	}
	if !claimRE.MatchString(p.UsernameClaim) {
		return p, apperr.InvalidField("username_claim", "username_claim must be a claim name: 1-64 letters, digits, '_', '.', ':' or '-'")
	}
	scopes, err := parseScopes(np.Scopes)
	if err != nil {
		return p, err
	}
	p.Scopes = scopes
	p.Role = DefaultRole
	if r := strings.TrimSpace(np.Role); r != "" {
		if p.Role, err = authz.ParseRole(r); err != nil {
			return p, err
		}
	}
	if p.Role > authz.Maintainer {
		return p, apperr.InvalidField("role", "members joining through an identity provider may be reader, developer or maintainer, never owner")
	}
	return p, nil
}

// parseScopes splits and checks scope names; openid is always requested.
func parseScopes(in []string) ([]string, error) {
	out := []string{"openid"}
	for _, s := range in {
		for _, sc := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !scopeRE.MatchString(sc) {
				return nil, apperr.InvalidField("scopes", "scope %q is not a valid OAuth scope", truncate(sc, 64))
			}
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	if len(out) == 1 {
		out = append([]string(nil), DefaultScopes...)
	}
	if len(out) > 20 {
		return nil, apperr.InvalidField("scopes", "at most 20 scopes")
	}
	return out, nil
}

// ValidateIssuer checks an upstream issuer URL: https, or plain http only
// on a loopback host (local testing); no credentials, query or fragment.
func ValidateIssuer(issuer string) error {
	if issuer == "" {
		return apperr.InvalidField("issuer", "issuer is required: the upstream provider's issuer URL")
	}
	if len(issuer) > 512 || strings.ContainsFunc(issuer, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return apperr.InvalidField("issuer", "issuer must be a URL of at most 512 characters without spaces")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" || u.Opaque != "" {
		return apperr.InvalidField("issuer", "issuer %q is not an absolute URL", truncate(issuer, 100))
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		return apperr.InvalidField("issuer", "issuer must not carry credentials, a query or a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return apperr.InvalidField("issuer", "issuer must use https (plain http only on localhost or a loopback address)")
		}
	default:
		return apperr.InvalidField("issuer", "issuer must use https (plain http only on localhost or a loopback address)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return apperr.InvalidField("issuer", "issuer has an invalid port")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateText checks a single-line text field.
func validateText(field, s string, max int) error {
	if len(s) > max {
		return apperr.InvalidField(field, "%s must be at most %d bytes", field, max)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return apperr.InvalidField(field, "%s must be printable text", field)
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
