package scm

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the scm schema.
var Migrations = store.EmbeddedMigrations("scm", migrationFS, "migrations")

// Event types published by scm (payloads in doc.go).
const (
	EventPush         = "scm.push"
	EventPullRequest  = "scm.pull_request"
	EventSecretBypass = "scm.secret_bypass"
)

// Defaults of Deps' limits.
const (
	DefaultMaxPushBytes = 512 << 20
	DefaultHookTimeout  = 2 * time.Minute
)

// BypassAlerter raises a security alert when a push bypasses push
// protection. The alerts component implements it; nil records the bypass
// only in the audit log and as an scm.secret_bypass event.
type BypassAlerter interface {
	SecretBypassed(ctx context.Context, b SecretBypass) error
}

// LeakHandler is told about secrets that entered a repository through a
// bypass, so that the vault can rotate the ones it manages. It never sees
// the secret values, only where they are.
type LeakHandler interface {
	SecretsLeaked(ctx context.Context, repo Repo, findings []report.Finding) error
}

// MergeGate decides whether a pull request may merge, in addition to
// branch protection (the policy engine's pre-merge gate). A refusal is an
// error of kind Forbidden or Conflict whose message says why.
type MergeGate interface {
	MayMerge(ctx context.Context, pr PullRequest, repo Repo) error
}

// Deps are the collaborators of the scm service.
type Deps struct {
	DB     *store.DB
	IDs    *identity.Service
	Audit  *audit.Log
	Events *events.Bus
	Logger *slog.Logger
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Root is the directory holding the bare repositories (DATA/git).
	Root string
	// PublicURL is where users reach Rampart (HTTPS clone URLs, links).
	PublicURL string
	// SSHURL is the ssh:// base of clone URLs ("" when SSH is off).
	SSHURL string
	// GitBin is the git binary; empty looks it up on PATH. Without git the
	// service starts but every git operation is Unavailable.
	GitBin string
	// MaxPushBytes caps the pack data of one push (0: DefaultMaxPushBytes).
	MaxPushBytes int64
	// HookTimeout bounds the checks of one push (0: DefaultHookTimeout).
	HookTimeout time.Duration
	// Secrets scans pushes; nil builds the engine from the default rules.
	Secrets *secrets.Engine
	// Alerts, Leaks and Gates are optional (see their types).
	Alerts BypassAlerter
	Leaks  LeakHandler
	Gates  []MergeGate
	// Webhooks tunes webhook delivery; zero values take defaults.
	Webhooks WebhookOptions
}

// Service hosts repositories: it owns their metadata, their directories on
// disk, pushes and pull requests.
type Service struct {
	db        *store.DB
	ids       *identity.Service
	audit     *audit.Log
	events    *events.Bus
	log       *slog.Logger
	now       func() time.Time
	root      string
	hooksDir  string
	tmpDir    string
	publicURL string
	sshURL    string
	gitBin    string
	maxPush   int64
	hookTO    time.Duration
	engine    *secrets.Engine
	alerts    BypassAlerter
	leaks     LeakHandler
	gates     []MergeGate
	hooks     *webhookSender
	findings  findingsCache

	locksMu sync.Mutex
	locks   map[int64]chan struct{}
}

// New returns the scm service, creating its directories and hook scripts.
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil, d.IDs == nil, d.Audit == nil, d.Events == nil, d.Logger == nil:
		return nil, errors.New("scm: DB, IDs, Audit, Events and Logger are required")
	case d.Root == "":
		return nil, errors.New("scm: Root is required")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.MaxPushBytes <= 0 {
		d.MaxPushBytes = DefaultMaxPushBytes
	}
	if d.HookTimeout <= 0 {
		d.HookTimeout = DefaultHookTimeout
	}
	root, err := filepath.Abs(d.Root)
	if err != nil {
		return nil, err
	}
	s := &Service{db: d.DB, ids: d.IDs, audit: d.Audit, events: d.Events, log: d.Logger.With(logging.KeyComponent, "scm"),
		now: d.Clock, root: root, hooksDir: filepath.Join(root, "hooks"), tmpDir: filepath.Join(root, "tmp"),
		publicURL: d.PublicURL, sshURL: d.SSHURL, maxPush: d.MaxPushBytes, hookTO: d.HookTimeout,
		engine: d.Secrets, alerts: d.Alerts, leaks: d.Leaks, gates: d.Gates, locks: map[int64]chan struct{}{}}
	s.gitBin = d.GitBin
	if s.gitBin == "" {
		if p, err := exec.LookPath("git"); err == nil {
			s.gitBin = p
		} else {
			s.log.Warn("git is not installed: repositories are unavailable until it is")
		}
	}
	if s.engine == nil {
		if s.engine, err = secrets.New(secrets.DefaultRules()); err != nil {
			return nil, fmt.Errorf("scm: secret rules: %w", err)
		}
	}
	for _, dir := range []string{root, s.hooksDir, s.tmpDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("scm: %w", err)
		}
	}
	// Leftovers of pushes interrupted by a crash.
	if ents, err := os.ReadDir(s.tmpDir); err == nil {
		for _, e := range ents {
			_ = os.RemoveAll(filepath.Join(s.tmpDir, e.Name()))
		}
	}
	if err := writeHooks(s.hooksDir); err != nil {
		return nil, err
	}
	s.hooks = newWebhookSender(s, d.Webhooks)
	return s, nil
}

// SetGates replaces the merge gates (the lead wires the policy engine's
// pre-merge gate here once it exists).
func (s *Service) SetGates(g ...MergeGate) { s.gates = g }

// Run delivers webhooks until ctx ends. Call Subscribe before the event
// bus runs.
func (s *Service) Run(ctx context.Context) error { return s.hooks.run(ctx) }

// Subscribe registers scm's own event subscribers (webhook fan-out).
func (s *Service) Subscribe(bus *events.Bus) {
	bus.Subscribe("scm.webhooks", []string{EventPush, EventPullRequest}, s.hooks.enqueue)
}

// Repo is a hosted git repository.
type Repo struct {
	ID    int64
	OrgID int64
	Org   string
	// ProjectID is the project the repository belongs to (0: the org).
	ProjectID     int64
	Name          string
	Description   string
	DefaultBranch string
	// Public repositories may be cloned and read by anyone.
	Public    bool
	CreatedAt time.Time
	// orgMFA mirrors the org's two-factor requirement for authz.
	orgMFA bool
}

// FullName is ORG/NAME.
func (r Repo) FullName() string { return r.Org + "/" + r.Name }

// Resource is the repository's authz resource: its project when it has
// one, else its org.
func (r Repo) Resource() authz.Resource {
	return authz.Resource{OrgID: r.OrgID, ProjectID: r.ProjectID, RequireMFA: r.orgMFA}
}

func (r Repo) target() audit.Target {
	return audit.Target{Type: "repo", ID: strconv.FormatInt(r.ID, 10), Name: r.FullName()}
}

// Authorize decides whether sub may do a to the repository; reading a
// public repository needs nothing.
func (s *Service) Authorize(sub authz.Subject, a authz.Action, r Repo) error {
	if r.Public && a == authz.RepoRead {
		return authz.Check(sub, authz.RepoReadPublic, r.Resource())
	}
	return authz.Check(sub, a, r.Resource())
}

func notFound(name string) error { return apperr.E(apperr.NotFound, "repository %s not found", name) }

// Path returns the on-disk directory of a repository's bare git
// directory. Other components read repositories there (security alerts
// scan the default branch; the policy engine reads its policy
// repository); they never write to it.
func (s *Service) Path(r Repo) string {
	return filepath.Join(s.root, strconv.FormatInt(r.OrgID, 10), strconv.FormatInt(r.ID, 10)+".git")
}

// Locate returns a repository by ORG and NAME with its on-disk path and
// default branch, for other components (read-only use).
func (s *Service) Locate(ctx context.Context, org, name string) (repo Repo, path string, err error) {
	r, err := s.Repo(ctx, org, name)
	if err != nil {
		return Repo{}, "", err
	}
	return r, s.Path(r), nil
}

// CloneURLs returns the HTTPS and SSH clone URLs of a repository.
func (s *Service) CloneURLs(r Repo) (httpURL, sshURL string) {
	httpURL = s.publicURL + "/" + r.Org + "/" + r.Name + ".git"
	if s.sshURL != "" {
		sshURL = s.sshURL + "/" + r.Org + "/" + r.Name + ".git"
	}
	return
}

// WebURL returns the page of a repository.
func (s *Service) WebURL(r Repo) string { return s.publicURL + "/orgs/" + r.Org + "/repos/" + r.Name }

func (s *Service) available() error {
	if s.gitBin == "" {
		return apperr.E(apperr.Unavailable, "git is not installed on the server")
	}
	return nil
}

// lockRepo serialises pushes and merges of one repository on this
// replica, so that a push's checks see the refs it will update.
func (s *Service) lockRepo(ctx context.Context, id int64) (unlock func(), err error) {
	s.locksMu.Lock()
	ch, ok := s.locks[id]
	if !ok {
		ch = make(chan struct{}, 1)
		s.locks[id] = ch
	}
	s.locksMu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-ctx.Done():
		return nil, apperr.Wrap(ctx.Err(), apperr.Unavailable, "timed out waiting for another push to this repository")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
