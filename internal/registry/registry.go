package registry

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the registry schema.
var Migrations = store.EmbeddedMigrations("registry", migrationFS, "migrations")

// Defaults of Limits.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxBlobBytes     = 16 << 30
	DefaultTokenLifetime    = 5 * time.Minute
	DefaultGCGrace          = time.Hour
)

// directory is what the registry needs from identity: orgs and projects to
// map repository names onto, and users to rebuild a token's subject.
type directory interface {
	Org(ctx context.Context, name string) (identity.Org, error)
	OrgByID(ctx context.Context, id int64) (identity.Org, error)
	Project(ctx context.Context, orgID int64, name string) (identity.Project, error)
	User(ctx context.Context, id int64) (identity.User, error)
	Subject(ctx context.Context, u identity.User, scopes []authz.Scope, via string) (authz.Subject, error)
}

// authenticator turns a request's Rampart credential (token as bearer or
// as the password of Basic auth) into a principal; authn.Authenticator.
type authenticator interface {
	Authenticate(r *http.Request) (*authn.Principal, error)
}

// Deps are the registry's collaborators.
type Deps struct {
	DB     *store.DB
	Audit  *audit.Log
	IDs    directory
	Authn  authenticator
	Driver storagedriver.StorageDriver
	// LocalRoot is Driver's root directory when Driver is distribution's
	// filesystem driver ("" otherwise). Uploads there get their disk
	// writes started while they arrive, so that the fsync making a blob
	// durable does not wait for the whole blob at the end.
	LocalRoot string
	// Sealer encrypts the registry's keys at rest (vault/keyring).
	Sealer identity.Sealer
	Logger *slog.Logger
	// PublicURL is where clients reach Rampart: the token realm is
	// PublicURL/v2/token and the service name its host.
	PublicURL string
	// Scanner scans pushed images; Policy decides on the reports (nil: the
	// built-in rule, see DefaultPolicy); Advisories tells when the
	// advisory database changed, to rescan (nil: never).
	Scanner    ImageScanner
	Policy     Policy
	Advisories AdvisoryVersion
	// Signer signs image digests (nil: a key generated at first start and
	// sealed in the store).
	Signer Signer
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Limits.
	MaxManifestBytes int64
	MaxBlobBytes     int64
	TokenLifetime    time.Duration
	// GCGrace is how old an unreferenced blob must be before garbage
	// collection removes it: pushes in flight finish well within it.
	GCGrace time.Duration
	// Upstream is the HTTP client of pull-through caches (nil: a default
	// with timeouts).
	Upstream *http.Client
}

// Service is the OCI registry.
type Service struct {
	db         *store.DB
	audit      *audit.Log
	ids        directory
	authn      authenticator
	content    *Content
	log        *slog.Logger
	publicURL  string
	service    string
	scanner    ImageScanner
	policy     Policy
	advisories AdvisoryVersion
	signer     Signer
	now        func() time.Time
	maxMan     int64
	maxBlob    int64
	tokenTTL   time.Duration
	gcGrace    time.Duration
	upstream   *http.Client
	tokenKey   []byte
	sealer     identity.Sealer
	uploads    uploadLocks
	// wake nudges the scan worker when an image is queued.
	wake chan struct{}
}

// New returns the registry. It creates its keys on first start.
func New(ctx context.Context, d Deps) (*Service, error) {
	switch {
	case d.DB == nil, d.Audit == nil, d.IDs == nil, d.Authn == nil, d.Driver == nil, d.Sealer == nil, d.Logger == nil:
		return nil, errors.New("registry: DB, Audit, IDs, Authn, Driver, Sealer and Logger are required")
	case d.PublicURL == "":
		return nil, errors.New("registry: PublicURL is required")
	}
	u, err := url.Parse(d.PublicURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("registry: PublicURL must be an absolute URL")
	}
	s := &Service{db: d.DB, audit: d.Audit, ids: d.IDs, authn: d.Authn, content: &Content{d: d.Driver, root: d.LocalRoot},
		log: d.Logger.With("component", "registry"), publicURL: strings.TrimSuffix(d.PublicURL, "/"), service: u.Host,
		scanner: d.Scanner, policy: d.Policy, advisories: d.Advisories, signer: d.Signer, now: d.Clock,
		maxMan: d.MaxManifestBytes, maxBlob: d.MaxBlobBytes, tokenTTL: d.TokenLifetime, gcGrace: d.GCGrace,
		upstream: d.Upstream, sealer: d.Sealer, wake: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxMan <= 0 {
		s.maxMan = DefaultMaxManifestBytes
	}
	if s.maxBlob <= 0 {
		s.maxBlob = DefaultMaxBlobBytes
	}
	if s.tokenTTL <= 0 {
		s.tokenTTL = DefaultTokenLifetime
	}
	if s.gcGrace <= 0 {
		s.gcGrace = DefaultGCGrace
	}
	if s.policy == nil {
		s.policy = DefaultPolicy{}
	}
	if s.upstream == nil {
		s.upstream = &http.Client{Timeout: 10 * time.Minute}
	}
	if s.tokenKey, err = s.ensureKey(ctx, "token-hmac", func() ([]byte, string, error) {
		k := make([]byte, 32)
		_, err := io.ReadFull(rand.Reader, k)
		return k, "", err
	}); err != nil {
		return nil, err
	}
	if s.signer == nil {
		if s.signer, err = s.localSigner(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ensureKey returns the named key, creating it on first use. Two replicas
// starting at once agree on one key: the first insert wins.
func (s *Service) ensureKey(ctx context.Context, name string, gen func() (priv []byte, pub string, err error)) ([]byte, error) {
	var sealed []byte
	err := s.db.QueryRow(ctx, "SELECT sealed FROM registry_keys WHERE name = ?", name).Scan(&sealed)
	if errors.Is(err, context.Canceled) {
		return nil, err
	}
	if err != nil {
		priv, pub, gerr := gen()
		if gerr != nil {
			return nil, gerr
		}
		sl, serr := s.sealerSeal(priv, name)
		if serr != nil {
			return nil, serr
		}
		if _, err := s.db.Exec(ctx, `INSERT INTO registry_keys (name, sealed, public, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, sl, pub, store.Time(s.now())); err != nil {
			return nil, err
		}
		if err := s.db.QueryRow(ctx, "SELECT sealed FROM registry_keys WHERE name = ?", name).Scan(&sealed); err != nil {
			return nil, err
		}
	}
	return s.sealerOpen(sealed, name)
}

func (s *Service) sealerSeal(b []byte, name string) ([]byte, error) {
	return s.sealer.Seal(b, "registry-key:"+name)
}

func (s *Service) sealerOpen(b []byte, name string) ([]byte, error) {
	return s.sealer.Open(b, "registry-key:"+name)
}

type authzScope = authz.Scope

func principalOf(u identity.User, sub authz.Subject) *authn.Principal {
	return &authn.Principal{User: u, Subject: sub}
}

type contextT = context.Context

func storeTime(t *time.Time) interface{ Scan(any) error } { return store.TimeDest(t) }
