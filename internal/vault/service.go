package vault

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the vault schema; it needs identity's.
var Migrations = store.EmbeddedMigrations("vault", migrationFS, "migrations")

// Restarter restarts a project's running workloads that use a secret, one
// replica at a time, after the secret was rotated (deploy implements it).
type Restarter interface {
	SecretRotated(ctx context.Context, ev RotationEvent) error
}

// RotationEvent says that a secret got a new current version.
type RotationEvent struct {
	ID      int64
	Ref     Ref
	Version int
	At      time.Time
}

// Deps are the vault's collaborators.
type Deps struct {
	DB     *store.DB
	Audit  *audit.Log
	IDs    *identity.Service
	KEK    keyring.KEK
	Logger *slog.Logger
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Restarter, when set, receives rotations of secrets whose project
	// asks for rolling restarts.
	Restarter Restarter
	// Alerts, when set, receives leak alerts (they are always audited and
	// listed by Leaks).
	Alerts Alerter
	// ReadAuditJournal, when set, is the file the audit entries of secret
	// reads are written to before a read returns its value; they reach
	// the audit log in group commits off the read's path (audit.Journal).
	// Empty: each read waits for its entry's commit.
	ReadAuditJournal string
}

// Service is the vault.
type Service struct {
	db        *store.DB
	audit     *audit.Log
	ids       *identity.Service
	kek       keyring.KEK
	log       *slog.Logger
	now       func() time.Time
	restarter Restarter
	alerts    Alerter
	commit    *committer
	journal   *audit.Journal // the reads' audit entries (nil: committed per read)
	reads     *readCache
	fpKey     []byte

	policyMu    sync.Mutex
	policyCache map[int64]policySet

	placeMu sync.RWMutex
	places  map[Scope]cachedPlace

	// maxVersions is how many versions that are not destroyed a secret
	// may have (maxVersions; tests lower it).
	maxVersions int

	rotating sync.Mutex // one KEK rotation at a time in this process
	wake     chan struct{}
}

// New returns the vault. It loads (or creates) the vault's fingerprint
// key, so the key-encryption key must open it: a wrong or missing one
// fails here, before anything is served.
func New(ctx context.Context, d Deps) (*Service, error) {
	switch {
	case d.DB == nil:
		return nil, errors.New("vault: DB is required")
	case d.Audit == nil:
		return nil, errors.New("vault: Audit is required")
	case d.IDs == nil:
		return nil, errors.New("vault: IDs is required")
	case d.KEK == nil:
		return nil, errors.New("vault: KEK is required")
	case d.Logger == nil:
		return nil, errors.New("vault: Logger is required")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	s := &Service{db: d.DB, audit: d.Audit, ids: d.IDs, kek: d.KEK, log: d.Logger.With("component", "vault"),
		now: d.Clock, restarter: d.Restarter, alerts: d.Alerts, commit: newCommitter(d.DB, d.Audit), policyCache: map[int64]policySet{},
		places: map[Scope]cachedPlace{}, maxVersions: maxVersions, reads: newReadCache(),
		wake: make(chan struct{}, 1)}
	s.commit.onWrite = s.reads.invalidate
	key, err := s.internalKey(ctx, "fingerprint")
	if err != nil {
		return nil, err
	}
	s.fpKey = key
	if d.ReadAuditJournal != "" {
		if s.journal, err = d.Audit.OpenJournal(ctx, d.ReadAuditJournal, s.commit.doAudit, s.log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close commits the audit entries of reads still in the journal (within
// ctx; those left are appended at the next start) and closes it.
func (s *Service) Close(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	return s.journal.Close(ctx)
}

// internalKey loads one of the vault's own 32-byte keys, creating it on
// first use.
func (s *Service) internalKey(ctx context.Context, name string) ([]byte, error) {
	aad := internalAAD(name)
	for range 2 {
		var wrapped []byte
		err := s.db.QueryRow(ctx, "SELECT wrapped FROM vault_keys WHERE name = ?", name).Scan(&wrapped)
		if err == nil {
			key, err := s.kek.Unwrap(ctx, wrapped, aad)
			if err != nil {
				return nil, fmt.Errorf("open the vault's %s key: %w", name, err)
			}
			return key, nil
		}
		if !apperr.Is(err, apperr.NotFound) {
			return nil, err
		}
		key := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, err
		}
		w, v, err := s.kek.Wrap(ctx, key, aad)
		if err != nil {
			return nil, fmt.Errorf("wrap the vault's %s key: %w", name, err)
		}
		// Replicas starting together: the first insert wins, the others
		// read it back.
		if _, err := s.db.Exec(ctx, "INSERT INTO vault_keys (name, wrapped, kek_version, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
			name, w, v, store.Time(s.now())); err != nil {
			return nil, err
		}
	}
	return nil, apperr.E(apperr.Internal, "the vault's %s key could not be created", name)
}

// Run runs the background work (resuming an interrupted key rotation,
// delivering rotation events) until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.resumeRotation(ctx); err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "resume key-encryption key rotation", "err", err)
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if err := s.deliverEvents(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "deliver rotation events", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// Another replica's rotation may have stopped half-way.
			if err := s.resumeRotation(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "resume key-encryption key rotation", "err", err)
			}
		case <-s.wake:
		}
	}
}

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// place is a scope resolved to ids.
type place struct {
	org     identity.Org
	project identity.Project // zero for org-level
	env     string
}

func (p place) projectID() any {
	if p.project.ID == 0 {
		return nil
	}
	return p.project.ID
}

// scopeKey is the unique key of a name in a resolved scope.
func (p place) scopeKey(name string) string {
	return strconv.FormatInt(p.org.ID, 10) + "/" + strconv.FormatInt(p.project.ID, 10) + "/" + p.env + "/" + name
}

// Resolved scopes are cached: org and project ids and the org's MFA rule
// change rarely, and every such change goes through identity, whose
// generation then moves on. Across replicas a change is seen within
// placeTTL.
const (
	placeTTL  = 2 * time.Second
	maxPlaces = 4096
)

// cachedPlace is a scope resolved at one identity generation.
type cachedPlace struct {
	gen   uint64
	until time.Time
	p     place
}

func (s *Service) resolve(ctx context.Context, sc Scope) (place, error) {
	if err := sc.Validate(); err != nil {
		return place{}, err
	}
	now := s.now()
	gen := s.ids.Generation()
	s.placeMu.RLock()
	c, ok := s.places[sc]
	s.placeMu.RUnlock()
	if ok && c.gen == gen && now.Before(c.until) {
		return c.p, nil
	}
	o, err := s.ids.Org(ctx, sc.Org)
	if err != nil {
		return place{}, err
	}
	p := place{org: o, env: sc.Env}
	if sc.Project != "" {
		if p.project, err = s.ids.Project(ctx, o.ID, sc.Project); err != nil {
			return place{}, err
		}
	}
	s.placeMu.Lock()
	if len(s.places) >= maxPlaces {
		clear(s.places)
	}
	s.places[sc] = cachedPlace{gen: gen, until: now.Add(placeTTL), p: p}
	s.placeMu.Unlock()
	return p, nil
}

func nullTime(t time.Time) any { return store.Time(t) }
