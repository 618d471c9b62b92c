package realm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the realm schema (it references identity's orgs table).
var Migrations = store.EmbeddedMigrations("realm", migrationFS, "migrations")

// Limits and defaults.
const (
	maxDisplayName = 100
	maxHost        = 253
	maxEmail       = 254
	maxSMTPUser    = 256
	maxSMTPPass    = 1024

	defaultIdle     = 30 * time.Minute
	defaultAbsolute = 12 * time.Hour
	minIdle         = time.Minute
	maxIdle         = 24 * time.Hour
	maxAbsolute     = 30 * 24 * time.Hour
)

// SMTP transport security modes.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS and fails
	// when the server does not offer it (the default, port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit connects with TLS from the start (port 465).
	TLSImplicit = "tls"
	// TLSNone sends in the clear: only for a relay on a trusted network
	// or loopback (net/smtp refuses to send credentials over it to
	// anything but loopback).
	TLSNone = "none"
)

// Deps are the collaborators of the realm service.
type Deps struct {
	// IDs is Rampart's identity service: its store, audit log, sealer
	// and clock are the realm's.
	IDs    *identity.Service
	Logger *slog.Logger
	// PublicURL is Rampart's own URL: realms' issuer URLs and their JWKS
	// on the main API live under it.
	PublicURL string
	// SMTPTimeout bounds one delivery (default 10s).
	SMTPTimeout time.Duration
	// HTTPClient talks to external OpenID providers (default: a client
	// with a 10s timeout).
	HTTPClient *http.Client
}

// Service manages end-user realms: their settings, users, sessions and
// signing keys, and signs end users in on gateway routes.
type Service struct {
	ids     *identity.Service
	db      *store.DB
	audit   *audit.Log
	sealer  identity.Sealer
	log     *slog.Logger
	now     func() time.Time
	public  string
	timeout time.Duration

	client *http.Client

	mu         sync.Mutex
	keys       map[string]*ecdsa.PrivateKey // by key id
	discovered map[string]discovered        // by issuer
	realms     map[int64]cachedRealm        // by org id
	minted     map[string]minted            // by session hash and host
}

// discovered is a cached discovery document of an external provider.
type discovered struct {
	p  *gooidc.Provider
	at time.Time
}

// New returns the realm service.
func New(d Deps) (*Service, error) {
	if d.IDs == nil || d.Logger == nil {
		return nil, errors.New("realm: IDs and Logger are required")
	}
	if d.SMTPTimeout <= 0 {
		d.SMTPTimeout = 10 * time.Second
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{Timeout: upstreamTimeout}
	}
	return &Service{ids: d.IDs, db: d.IDs.DB(), audit: d.IDs.Audit(), sealer: d.IDs.Sealer(), now: d.IDs.Now,
		log: d.Logger.With(logging.KeyComponent, "realm"), public: strings.TrimRight(d.PublicURL, "/"),
		timeout: d.SMTPTimeout, client: d.HTTPClient, keys: map[string]*ecdsa.PrivateKey{}, discovered: map[string]discovered{},
		realms: map[int64]cachedRealm{}, minted: map[string]minted{}}, nil
}

// SMTP is a realm's mail server, as shown (never the password).
type SMTP struct {
	Host        string
	Port        int
	From        string
	TLS         string
	Username    string
	HasPassword bool
}

// Realm is an org's end-user realm.
type Realm struct {
	ID              int64
	OrgID           int64
	OrgName         string
	DisplayName     string
	AllowSignup     bool
	SMTP            SMTP
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	KeyID           string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Issuer is the realm's issuer URL: the iss of the JWTs it signs. Its
// JWKS is Issuer + "/jwks".
func (s *Service) Issuer(org string) string { return s.public + "/api/v1/realms/" + org }

// Settings change a realm. Zero values take defaults on creation and
// keep the current value on update, except where noted.
type Settings struct {
	DisplayName string
	// AllowSignup lets end users register themselves (default true).
	AllowSignup *bool
	SMTPHost    string
	SMTPPort    int
	SMTPFrom    string
	SMTPTLS     string
	SMTPUser    string
	// SMTPPassword: nil keeps the current one, "" removes it.
	SMTPPassword    *string
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
}

func smtpAAD(orgID int64) string { return "realm:smtp:org:" + strconv.FormatInt(orgID, 10) }
func keyAAD(kid string) string   { return "realm:signing-key:" + kid }

const selectRealm = `SELECT r.id, r.org_id, o.name, r.display_name, r.allow_signup, r.smtp_host, r.smtp_port, r.smtp_from, r.smtp_tls,
	r.smtp_username, r.smtp_password IS NOT NULL, r.session_idle, r.session_absolute, r.key_id, r.created_at, r.updated_at
	FROM realms r JOIN orgs o ON o.id = r.org_id`

func scanRealm(row interface{ Scan(...any) error }) (Realm, error) {
	var r Realm
	var idle, abs int64
	err := row.Scan(&r.ID, &r.OrgID, &r.OrgName, &r.DisplayName, &r.AllowSignup, &r.SMTP.Host, &r.SMTP.Port, &r.SMTP.From, &r.SMTP.TLS,
		&r.SMTP.Username, &r.SMTP.HasPassword, &idle, &abs, &r.KeyID, store.TimeDest(&r.CreatedAt), store.TimeDest(&r.UpdatedAt))
	r.SessionIdle, r.SessionAbsolute = time.Duration(idle)*time.Second, time.Duration(abs)*time.Second
	return r, err
}

// realmCacheTTL is how long the gateway's lookups reuse a realm's
// settings: changes made through this process apply at once, those made
// through another replica within this time.
const realmCacheTTL = 2 * time.Second

type cachedRealm struct {
	r  Realm
	ok bool // false: the org has no realm
	at time.Time
}

// Get returns the realm of an org (NotFound when it has none).
func (s *Service) Get(ctx context.Context, orgID int64) (Realm, error) {
	r, err := scanRealm(s.db.QueryRow(ctx, selectRealm+" WHERE r.org_id = ?", orgID))
	if apperr.Is(err, apperr.NotFound) {
		return r, apperr.E(apperr.NotFound, "this org has no end-user realm")
	}
	return r, err
}

// cached is Get for the request path, with realmCacheTTL of caching.
func (s *Service) cached(ctx context.Context, orgID int64) (Realm, error) {
	now := time.Now()
	s.mu.Lock()
	c, hit := s.realms[orgID]
	s.mu.Unlock()
	if hit && now.Sub(c.at) < realmCacheTTL {
		if !c.ok {
			return Realm{}, apperr.E(apperr.NotFound, "this org has no end-user realm")
		}
		return c.r, nil
	}
	r, err := s.Get(ctx, orgID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return r, err
	}
	s.mu.Lock()
	s.realms[orgID] = cachedRealm{r: r, ok: err == nil, at: now}
	s.mu.Unlock()
	return r, err
}

// forget drops an org's cached realm after a change.
func (s *Service) forget(orgID int64) {
	s.mu.Lock()
	delete(s.realms, orgID)
	s.mu.Unlock()
}

// Set creates or changes the org's realm. Creating one makes its signing
// key. The change is audited (realm.create or realm.update, naming the
// fields that changed; never the SMTP password).
func (s *Service) Set(ctx context.Context, org identity.Org, in Settings) (Realm, error) {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		cur, err := scanRealm(tx.QueryRow(ctx, selectRealm+" WHERE r.org_id = ?", org.ID))
		exists := err == nil
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return err
		}
		next, changed, err := merge(org, cur, exists, in)
		if err != nil {
			return err
		}
		var sealed []byte
		if in.SMTPPassword != nil && *in.SMTPPassword != "" {
			if sealed, err = s.sealer.Seal([]byte(*in.SMTPPassword), smtpAAD(org.ID)); err != nil {
				return err
			}
		}
		now := store.Time(s.now())
		if !exists {
			kid, pkcs8, err := newSigningKey()
			if err != nil {
				return err
			}
			sealedKey, err := s.sealer.Seal(pkcs8, keyAAD(kid))
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO realms (org_id, display_name, allow_signup, smtp_host, smtp_port, smtp_from, smtp_tls,
				smtp_username, smtp_password, session_idle, session_absolute, key_id, signing_key, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, org.ID, next.DisplayName, next.AllowSignup, next.SMTP.Host,
				next.SMTP.Port, next.SMTP.From, next.SMTP.TLS, next.SMTP.Username, sealed, int64(next.SessionIdle/time.Second),
				int64(next.SessionAbsolute/time.Second), kid, sealedKey, now, now); err != nil {
				return err
			}
			return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.create", OrgID: org.ID,
				Target:  audit.Target{Type: "realm", ID: strconv.FormatInt(org.ID, 10), Name: org.Name},
				Details: map[string]any{"smtp_host": next.SMTP.Host, "smtp_tls": next.SMTP.TLS, "allow_signup": next.AllowSignup}})
		}
		q := `UPDATE realms SET display_name = ?, allow_signup = ?, smtp_host = ?, smtp_port = ?, smtp_from = ?, smtp_tls = ?,
			smtp_username = ?, session_idle = ?, session_absolute = ?, updated_at = ?`
		args := []any{next.DisplayName, next.AllowSignup, next.SMTP.Host, next.SMTP.Port, next.SMTP.From, next.SMTP.TLS,
			next.SMTP.Username, int64(next.SessionIdle / time.Second), int64(next.SessionAbsolute / time.Second), now}
		if in.SMTPPassword != nil {
			q += ", smtp_password = ?"
			args = append(args, sealed)
			changed = append(changed, "smtp_password")
		}
		if _, err := tx.Exec(ctx, q+" WHERE id = ?", append(args, cur.ID)...); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.update", OrgID: org.ID,
			Target:  audit.Target{Type: "realm", ID: strconv.FormatInt(org.ID, 10), Name: org.Name},
			Details: map[string]any{"changed": changed}})
	})
	s.forget(org.ID)
	if err != nil {
		return Realm{}, err
	}
	return s.Get(ctx, org.ID)
}

// merge validates in against the current realm and returns the new one
// and the names of the fields that change.
func merge(org identity.Org, cur Realm, exists bool, in Settings) (Realm, []string, error) {
	next := cur
	var changed []string
	set := func(name string, differ bool) {
		if differ {
			changed = append(changed, name)
		}
	}
	if !exists {
		next = Realm{DisplayName: org.DisplayName, AllowSignup: true, SMTP: SMTP{TLS: TLSStartTLS},
			SessionIdle: defaultIdle, SessionAbsolute: defaultAbsolute}
		if next.DisplayName == "" {
			next.DisplayName = org.Name
		}
		if in.SMTPHost == "" || in.SMTPFrom == "" {
			return next, nil, apperr.InvalidField("smtp", "a realm needs a mail server: smtp host and from address are required")
		}
	}
	if in.DisplayName != "" {
		if len([]rune(in.DisplayName)) > maxDisplayName || strings.ContainsAny(in.DisplayName, "\r\n\x00") {
			return next, nil, apperr.InvalidField("display_name", "display name must be one line of at most %d characters", maxDisplayName)
		}
		set("display_name", in.DisplayName != next.DisplayName)
		next.DisplayName = in.DisplayName
	}
	if in.AllowSignup != nil {
		set("allow_signup", *in.AllowSignup != next.AllowSignup)
		next.AllowSignup = *in.AllowSignup
	}
	if in.SMTPHost != "" {
		if !validHost(in.SMTPHost) {
			return next, nil, apperr.InvalidField("smtp.host", "smtp host must be a host name or IP address")
		}
		set("smtp_host", in.SMTPHost != next.SMTP.Host)
		next.SMTP.Host = in.SMTPHost
	}
	if in.SMTPTLS != "" {
		switch in.SMTPTLS {
		case TLSStartTLS, TLSImplicit, TLSNone:
		default:
			return next, nil, apperr.InvalidField("smtp.tls", "smtp tls must be starttls, tls or none")
		}
		set("smtp_tls", in.SMTPTLS != next.SMTP.TLS)
		next.SMTP.TLS = in.SMTPTLS
	}
	if in.SMTPPort != 0 {
		if in.SMTPPort < 1 || in.SMTPPort > 65535 {
			return next, nil, apperr.InvalidField("smtp.port", "smtp port must be between 1 and 65535")
		}
		set("smtp_port", in.SMTPPort != next.SMTP.Port)
		next.SMTP.Port = in.SMTPPort
	}
	if next.SMTP.Port == 0 {
		next.SMTP.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[next.SMTP.TLS]
	}
	if in.SMTPFrom != "" {
		a, err := mail.ParseAddress(in.SMTPFrom)
		if err != nil || len(in.SMTPFrom) > maxEmail+maxDisplayName || strings.ContainsAny(in.SMTPFrom, "\r\n") {
			return next, nil, apperr.InvalidField("smtp.from", "smtp from must be an e-mail address, like \"Shop <noreply@example.com>\"")
		}
		from := a.String()
		set("smtp_from", from != next.SMTP.From)
		next.SMTP.From = from
	}
	if in.SMTPUser != "" || in.SMTPPassword != nil {
		if len(in.SMTPUser) > maxSMTPUser || strings.ContainsAny(in.SMTPUser, "\r\n\x00") {
			return next, nil, apperr.InvalidField("smtp.username", "smtp username must be one line of at most %d bytes", maxSMTPUser)
		}
		if in.SMTPPassword != nil && len(*in.SMTPPassword) > maxSMTPPass {
			return next, nil, apperr.InvalidField("smtp.password", "smtp password must be at most %d bytes", maxSMTPPass)
		}
		set("smtp_username", in.SMTPUser != next.SMTP.Username)
		next.SMTP.Username = in.SMTPUser
	}
	if in.SessionIdle != 0 {
		if in.SessionIdle < minIdle || in.SessionIdle > maxIdle {
			return next, nil, apperr.InvalidField("session_idle", "session idle timeout must be between 1m and 24h")
		}
		set("session_idle", in.SessionIdle != next.SessionIdle)
		next.SessionIdle = in.SessionIdle.Truncate(time.Second)
	}
	if in.SessionAbsolute != 0 {
		if in.SessionAbsolute < minIdle || in.SessionAbsolute > maxAbsolute {
			return next, nil, apperr.InvalidField("session_absolute", "session lifetime must be between 1m and 720h")
		}
		set("session_absolute", in.SessionAbsolute != next.SessionAbsolute)
		next.SessionAbsolute = in.SessionAbsolute.Truncate(time.Second)
	}
	if next.SessionAbsolute < next.SessionIdle {
		return next, nil, apperr.InvalidField("session_absolute", "session lifetime must not be shorter than the idle timeout")
	}
	return next, changed, nil
}

// validHost reports whether h is a DNS name or an IP address.
func validHost(h string) bool {
	if h == "" || len(h) > maxHost {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Delete removes the org's realm with its users and sessions (audited
// realm.delete). It reports whether there was one.
func (s *Service) Delete(ctx context.Context, org identity.Org) (bool, error) {
	var deleted bool
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var users int64
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM realm_users u JOIN realms r ON r.id = u.realm_id WHERE r.org_id = ?", org.ID).Scan(&users); err != nil {
			return err
		}
		// Children first: SQLite enforces the foreign keys, but only
		// PostgreSQL is sure to cascade in every configuration.
		for _, q := range []string{
			"DELETE FROM realm_sessions WHERE realm_id IN (SELECT id FROM realms WHERE org_id = ?)",
			"DELETE FROM realm_oidc_states WHERE provider_id IN (SELECT p.id FROM realm_providers p JOIN realms r ON r.id = p.realm_id WHERE r.org_id = ?)",
			"DELETE FROM realm_providers WHERE realm_id IN (SELECT id FROM realms WHERE org_id = ?)",
			"DELETE FROM realm_tokens WHERE user_id IN (SELECT u.id FROM realm_users u JOIN realms r ON r.id = u.realm_id WHERE r.org_id = ?)",
			"DELETE FROM realm_recovery_codes WHERE user_id IN (SELECT u.id FROM realm_users u JOIN realms r ON r.id = u.realm_id WHERE r.org_id = ?)",
			"DELETE FROM realm_webauthn_keys WHERE user_id IN (SELECT u.id FROM realm_users u JOIN realms r ON r.id = u.realm_id WHERE r.org_id = ?)",
			"DELETE FROM realm_users WHERE realm_id IN (SELECT id FROM realms WHERE org_id = ?)",
			"DELETE FROM realm_retired_keys WHERE realm_id IN (SELECT id FROM realms WHERE org_id = ?)",
		} {
			if _, err := tx.Exec(ctx, q, org.ID); err != nil {
				return err
			}
		}
		n, err := tx.Exec(ctx, "DELETE FROM realms WHERE org_id = ?", org.ID)
		if err != nil || n == 0 {
			return err
		}
		deleted = true
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.delete", OrgID: org.ID,
			Target:  audit.Target{Type: "realm", ID: strconv.FormatInt(org.ID, 10), Name: org.Name},
			Details: map[string]any{"users": users}})
	})
	s.forget(org.ID)
	return deleted, err
}

// newSigningKey makes an ECDSA P-256 key (ES256) and its id.
func newSigningKey() (kid string, pkcs8 []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("generate realm key: %w", err)
	}
	if pkcs8, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
		return "", nil, err
	}
	id, err := randomToken(12)
	if err != nil {
		return "", nil, err
	}
	return id, pkcs8, nil
}

// signingKey returns the realm's private key.
func (s *Service) signingKey(ctx context.Context, r Realm) (*ecdsa.PrivateKey, error) {
	s.mu.Lock()
	k := s.keys[r.KeyID]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	var sealed []byte
	if err := s.db.QueryRow(ctx, "SELECT signing_key FROM realms WHERE id = ? AND key_id = ?", r.ID, r.KeyID).Scan(&sealed); err != nil {
		return nil, err
	}
	pkcs8, err := s.sealer.Open(sealed, keyAAD(r.KeyID))
	if err != nil {
		return nil, fmt.Errorf("open signing key of realm %d: %w", r.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("parse signing key of realm %d: %w", r.ID, err)
	}
	k, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key of realm %d is not ECDSA", r.ID)
	}
	s.mu.Lock()
	s.keys[r.KeyID] = k
	s.mu.Unlock()
	return k, nil
}

// smtpPassword returns the realm's SMTP password ("" when none).
func (s *Service) smtpPassword(ctx context.Context, r Realm) (string, error) {
	var sealed []byte
	if err := s.db.QueryRow(ctx, "SELECT smtp_password FROM realms WHERE id = ?", r.ID).Scan(&sealed); err != nil {
		return "", err
	}
	if sealed == nil {
		return "", nil
	}
	pt, err := s.sealer.Open(sealed, smtpAAD(r.OrgID))
	if err != nil {
		return "", fmt.Errorf("open smtp password of realm %d: %w", r.ID, err)
	}
	return string(pt), nil
}
