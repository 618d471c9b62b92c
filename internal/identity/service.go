package identity

import (
	"context"

	"crypto/rand"
	"embed"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/rampartsec/rampart/internal/reqinfo"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the identity schema.
var Migrations = store.EmbeddedMigrations("identity", migrationFS, "migrations")

// Sealer encrypts small secrets at rest (TOTP seeds, upstream client
// secrets) bound to a context string. vault/keyring.Local implements it.
type Sealer interface {
	Seal(plaintext []byte, aad string) ([]byte, error)
	Open(ciphertext []byte, aad string) ([]byte, error)
}

// Deps are the collaborators of the identity service.
type Deps struct {
	DB     *store.DB
	Audit  *audit.Log
	Sealer Sealer
	Logger *slog.Logger
	// Clock and Rand default to time.Now and crypto/rand.
	Clock func() time.Time
	Rand  io.Reader
	// Sessions bounds browser sessions.
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	// PublicURL is where users reach Rampart: its host name is the WebAuthn
	// relying party ID and it is the only origin accepted. Without a host
	// name (empty, or an IP address) security keys are unavailable.
	PublicURL string
}

// Service is the identity service.
type Service struct {
	db     *store.DB
	audit  *audit.Log
	sealer Sealer
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader

	sessionIdle, sessionAbsolute time.Duration
	throttle                     throttlePolicy
	// rp is the WebAuthn relying party; nil when security keys are
	// unavailable.
	rp *webauthn.WebAuthn
	// auth caches verified tokens; writeTx empties it.
	auth *authCache
	// deleteHooks run in the transactions deleting projects and orgs.
	deleteHooks []DeleteHook
}

// DeleteHook is called inside the transaction that deletes a project
// (projectID set) or an org with all its projects (projectID 0), before
// it commits: it removes what other components keep for them, and its
// error undoes the deletion. reason is "project.delete" or "org.delete".
type DeleteHook func(ctx context.Context, tx *store.Tx, orgID, projectID int64, reason string) error

// OnDelete registers a hook run when a project or an org is deleted. It is
// for wiring at start-up, before the service serves requests.
func (s *Service) OnDelete(h DeleteHook) { s.deleteHooks = append(s.deleteHooks, h) }

func (s *Service) runDeleteHooks(ctx context.Context, tx *store.Tx, orgID, projectID int64, reason string) error {
	for _, h := range s.deleteHooks {
		if err := h(ctx, tx, orgID, projectID, reason); err != nil {
			return err
		}
	}
	return nil
}

// New returns the identity service.
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil:
		return nil, errors.New("identity: DB is required")
	case d.Audit == nil:
		return nil, errors.New("identity: Audit is required")
	case d.Sealer == nil:
		return nil, errors.New("identity: Sealer is required")
	case d.Logger == nil:
		return nil, errors.New("identity: Logger is required")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.SessionIdle <= 0 {
		d.SessionIdle = 2 * time.Hour
	}
	if d.SessionAbsolute <= 0 {
		d.SessionAbsolute = 24 * time.Hour
	}
	rp, err := newRelyingParty(d.PublicURL)
	if err != nil {
		d.Logger.Warn("security keys and passkeys are disabled", logging.KeyURL, d.PublicURL, logging.KeyErr, err)
	}
	return &Service{
		rp:              rp,
		db:              d.DB,
		audit:           d.Audit,
		sealer:          d.Sealer,
		log:             d.Logger.With("component", "identity"),
		now:             d.Clock,
		rand:            d.Rand,
		sessionIdle:     d.SessionIdle,
		sessionAbsolute: d.SessionAbsolute,
		throttle:        defaultThrottle,
		auth:            newAuthCache(TokenCacheTTL),
	}, nil
}

// DB returns the store, for components that extend identity (OIDC provider,
// federation) with their own tables.
func (s *Service) DB() *store.DB { return s.db }

// Audit returns the audit log identity writes to.
func (s *Service) Audit() *audit.Log { return s.audit }

// Sealer returns the at-rest encryption identity uses.
func (s *Service) Sealer() Sealer { return s.sealer }

// Now returns the service's current time.
func (s *Service) Now() time.Time { return s.now() }

// withSystemActor marks work done by Rampart itself (first-start setup) in
// the audit log, unless a user is already acting.
func withSystemActor(ctx context.Context) context.Context {
	if reqinfo.From(ctx).ActorName != "" {
		return ctx
	}
	return reqinfo.WithActor(ctx, 0, "system")
}

func actorID(ctx context.Context) int64 { return reqinfo.From(ctx).ActorID }

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}
