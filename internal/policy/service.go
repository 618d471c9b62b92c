package policy

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the policy schema (component "policy"): the decision log
// and org exceptions. It refers to identity's orgs, so apply it after
// identity.Migrations.
var Migrations = store.EmbeddedMigrations("policy", migrationFS, "migrations")

// logWriters is how many goroutines write the decision log: while one
// commits a batch, another gathers the next, so that a writer waiting for
// the database (or for a CPU on a busy machine) does not hold every
// caller up.
const logWriters = 4

// Defaults of the service.
const (
	DefaultReloadInterval = 30 * time.Second
	DefaultRetention      = 90 * 24 * time.Hour
	// MaxExceptionDays bounds how far ahead a stored exception may expire.
	MaxExceptionDays = 366
)

// ExceptionLister provides exceptions kept outside the policy bundles and
// the database — the repositories' .rampart/ignore.yaml files, read by
// source hosting — so that the gates honour them and the exceptions page
// lists them.
type ExceptionLister interface {
	Exceptions(ctx context.Context, orgID int64) ([]exception.Exception, error)
}

// Deps are the policy service's collaborators.
type Deps struct {
	DB     *store.DB
	Audit  *audit.Log
	IDs    *identity.Service
	Logger *slog.Logger
	// Clock tells the time for decisions and exception expiry (time.Now
	// when nil).
	Clock func() time.Time
	// Sources are loaded after the built-in library: a policy directory,
	// the policy repository.
	Sources []Source
	// Settings are overlaid on the bundles' settings (what the server
	// knows: rampart_registry).
	Settings map[string]any
	// Timeout bounds one evaluation (DefaultTimeout when zero).
	Timeout time.Duration
	// ReloadInterval is how often Run reloads the sources (default 30 s).
	ReloadInterval time.Duration
	// Retention is how long decisions are kept (default 90 days).
	Retention time.Duration
	// Exceptions, when set, adds exceptions kept elsewhere.
	Exceptions ExceptionLister
	// Registerer receives the decision metrics; may be nil.
	Registerer prometheus.Registerer
}

// Service runs the gates: it keeps the current engine, applies org
// exceptions, records every decision and reloads the bundles.
type Service struct {
	db        *store.DB
	audit     *audit.Log
	ids       *identity.Service
	log       *slog.Logger
	now       func() time.Time
	sources   []Source
	settings  map[string]any
	timeout   time.Duration
	interval  time.Duration
	retention time.Duration
	external  ExceptionLister

	engine atomic.Pointer[Engine]

	mu         sync.Mutex
	loadedAt   time.Time
	loadErr    error
	loadErrAt  time.Time
	failedRev  string
	orgCache   map[int64]cachedExceptions
	decisions  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	writer     *logWriter
	closeOnce  sync.Once
	writerDone chan struct{}
}

type cachedExceptions struct {
	list []exception.Exception
	at   time.Time
}

// exceptionTTL is how long org exceptions are cached (other replicas'
// changes show after at most this long).
const exceptionTTL = 5 * time.Second

// New loads the built-in library and the sources, compiles them and
// starts the decision log writer (stop it with Close). A bundle that does
// not compile is an Invalid error naming its file and line.
func New(ctx context.Context, d Deps) (*Service, error) {
	switch {
	case d.DB == nil, d.Audit == nil, d.IDs == nil, d.Logger == nil:
		return nil, errors.New("policy: DB, Audit, IDs and Logger are required")
	}
	s := &Service{db: d.DB, audit: d.Audit, ids: d.IDs, log: d.Logger.With("component", "policy"), now: d.Clock,
		sources: d.Sources, settings: d.Settings, timeout: d.Timeout, interval: d.ReloadInterval, retention: d.Retention,
		external: d.Exceptions, orgCache: map[int64]cachedExceptions{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.interval <= 0 {
		s.interval = DefaultReloadInterval
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	s.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_policy_decisions_total",
		Help: "Policy decisions by gate and outcome (allow, warn, deny)."}, []string{"gate", "outcome"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_policy_evaluation_seconds",
		Help: "Time to evaluate a gate's policies.", Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1}},
		[]string{"gate"})
	if d.Registerer != nil {
		if err := d.Registerer.Register(s.decisions); err != nil {
			return nil, err
		}
		if err := d.Registerer.Register(s.latency); err != nil {
			return nil, err
		}
	}
	e, err := s.build(ctx)
	if err != nil {
		return nil, err
	}
	s.engine.Store(e)
	s.loadedAt = s.now()
	s.writer = newLogWriter(s.db, s.log)
	s.writerDone = make(chan struct{})
	var writers sync.WaitGroup
	for range logWriters {
		writers.Go(s.writer.run)
	}
	go func() {
		writers.Wait()
		close(s.writerDone)
	}()
	return s, nil
}

// build loads every source and compiles a new engine.
func (s *Service) build(ctx context.Context) (*Engine, error) {
	bundles, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return NewEngine(ctx, bundles, EngineOptions{Timeout: s.timeout, Settings: s.settings})
}

func (s *Service) load(ctx context.Context) ([]*Bundle, error) {
	lib, err := Builtin{}.Load(ctx)
	if err != nil {
		return nil, err
	}
	bundles := []*Bundle{lib}
	for _, src := range s.sources {
		b, err := src.Load(ctx)
		if err != nil {
			return nil, err
		}
		bundles = append(bundles, b)
	}
	return bundles, nil
}

// Close stops the decision log writer after it has written what it holds.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.writer.close()
		<-s.writerDone
	})
}

// Engine returns the engine decisions use now.
func (s *Service) Engine() *Engine { return s.engine.Load() }

// Status says what is loaded.
type Status struct {
	Revision string       `json:"revision"`
	LoadedAt time.Time    `json:"loaded_at"`
	Bundles  []BundleInfo `json:"bundles"`
	Policies int          `json:"policies"`
	// Error is why the last reload was refused (the previous revision
	// stays in force), "" when it succeeded.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
}

// BundleInfo names one loaded bundle.
type BundleInfo struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
}

// Status reports the loaded revision and the last reload error.
func (s *Service) Status() Status {
	e := s.Engine()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Revision: e.Revision(), LoadedAt: s.loadedAt, Policies: len(e.policies), ErrorAt: s.loadErrAt}
	for _, b := range e.bundles {
		st.Bundles = append(st.Bundles, BundleInfo{Name: b.Name, Revision: b.Revision})
	}
	if s.loadErr != nil {
		st.Error = apperr.Message(s.loadErr)
	}
	return st
}

// Reload loads the sources again and switches to them when their
// revision changed. A bundle that does not compile is refused: the
// previous revision stays in force and the error is returned, kept for
// Status and audited once per failing revision.
func (s *Service) Reload(ctx context.Context) (changed bool, err error) {
	bundles, err := s.load(ctx)
	if err != nil {
		return false, s.reloadFailed(ctx, "", err)
	}
	revs := make([]string, len(bundles))
	for i, b := range bundles {
		revs[i] = b.Revision
	}
	rev := strings.Join(revs, "+")
	old := s.Engine()
	if rev == old.Revision() {
		s.mu.Lock()
		s.loadErr, s.failedRev = nil, ""
		s.mu.Unlock()
		return false, nil
	}
	e, err := NewEngine(ctx, bundles, EngineOptions{Timeout: s.timeout, Settings: s.settings})
	if err != nil {
		return false, s.reloadFailed(ctx, rev, err)
	}
	s.engine.Store(e)
	s.mu.Lock()
	s.loadedAt, s.loadErr, s.failedRev = s.now(), nil, ""
	s.mu.Unlock()
	s.log.InfoContext(ctx, "policy bundles reloaded", "revision", rev, "previous", old.Revision())
	if err := s.audit.Append(ctx, audit.Record{Action: "policy.reload", Target: audit.Target{Type: "policy", ID: rev},
		Details: map[string]any{"revision": rev, "previous": old.Revision(), "policies": len(e.policies)}}); err != nil {
		return true, err
	}
	return true, nil
}

func (s *Service) reloadFailed(ctx context.Context, rev string, err error) error {
	s.mu.Lock()
	repeat := rev != "" && rev == s.failedRev
	s.loadErr, s.loadErrAt, s.failedRev = err, s.now(), rev
	s.mu.Unlock()
	if repeat {
		return err
	}
	s.log.WarnContext(ctx, "policy bundles refused; the previous revision stays in force", "revision", rev, "err", err)
	if apperr.KindOf(err) == apperr.Invalid && rev != "" {
		if aerr := s.audit.Append(ctx, audit.Record{Action: "policy.reload", Outcome: audit.Failure, Target: audit.Target{Type: "policy", ID: rev},
			Details: map[string]any{"revision": rev, "error": apperr.Message(err)}}); aerr != nil {
			s.log.ErrorContext(ctx, "audit refused policy reload", "err", aerr)
		}
	}
	return err
}

// Run reloads the bundles every reload interval (when there is more than
// the built-in library) and purges decisions older than the retention,
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	reload := time.NewTicker(s.interval)
	defer reload.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload.C:
			if len(s.sources) > 0 {
				_, _ = s.Reload(ctx)
			}
		case <-purge.C:
			if n, err := s.PurgeDecisions(ctx); err != nil {
				s.log.WarnContext(ctx, "purge old policy decisions", "err", err)
			} else if n > 0 {
				s.log.DebugContext(ctx, "purged old policy decisions", "count", n)
			}
		}
	}
}

// Decide evaluates gate on in, applies the exceptions in force for the
// org, and records the decision in the decision log before returning it.
// An input that is not a JSON object, does not fit the gate's schema or
// is over MaxInput is an Invalid (or TooLarge) error and nothing is
// recorded. When the decision cannot be recorded the error is returned
// with the decision; callers fail closed.
func (s *Service) Decide(ctx context.Context, gate Gate, in Input) (Decision, error) {
	doc, err := s.check(gate, in)
	if err != nil {
		return Decision{}, err
	}
	return s.decide(ctx, gate, in, doc)
}

// decide is Decide on an input already checked.
func (s *Service) decide(ctx context.Context, gate Gate, in Input, doc document) (Decision, error) {
	d, err := s.evaluateDoc(ctx, gate, in, doc)
	if err != nil {
		return d, err
	}
	d.ID = newDecisionID()
	if err := s.writer.write(ctx, &d); err != nil {
		return d, apperr.Wrap(err, apperr.Unavailable, "the decision could not be recorded")
	}
	return d, nil
}

// Evaluate is Decide without recording: a dry run.
func (s *Service) Evaluate(ctx context.Context, gate Gate, in Input) (Decision, error) {
	doc, err := s.check(gate, in)
	if err != nil {
		return Decision{DryRun: true}, err
	}
	d, err := s.evaluateDoc(ctx, gate, in, doc)
	d.DryRun = true
	return d, err
}

// check checks the gate, the input's names and its document.
func (s *Service) check(gate Gate, in Input) (document, error) {
	if _, err := ParseGate(string(gate)); err != nil {
		return document{}, err
	}
	if len(in.Subject) > 500 || len(in.Environment) > 200 || len(in.Repository) > 300 {
		return document{}, apperr.E(apperr.Invalid, "subject, environment or repository too long")
	}
	return decodeInput(gate, in.Document)
}

func (s *Service) evaluateDoc(ctx context.Context, gate Gate, in Input, doc document) (Decision, error) {
	var err error
	var extra []exception.Exception
	if in.OrgID != 0 {
		if extra, err = s.orgExceptions(ctx, in.OrgID); err != nil {
			return Decision{}, err
		}
	}
	e := s.Engine()
	d := e.decide(ctx, gate, in, doc, extra, s.now())
	d.Caller = caller(ctx, in)
	s.decisions.WithLabelValues(string(gate), d.Outcome()).Inc()
	s.latency.WithLabelValues(string(gate)).Observe(d.DurationMS / 1000)
	return d, nil
}

// caller names who asked: the signed-in principal, else the component
// that says it asked.
func caller(ctx context.Context, in Input) string {
	if n := reqinfo.From(ctx).ActorName; n != "" {
		return n
	}
	if in.Caller != "" {
		return in.Caller
	}
	return "rampart"
}

// orgExceptions returns the org's stored exceptions and those of the
// external lister, cached for a few seconds.
func (s *Service) orgExceptions(ctx context.Context, orgID int64) ([]exception.Exception, error) {
	s.mu.Lock()
	c, ok := s.orgCache[orgID]
	s.mu.Unlock()
	if ok && s.now().Sub(c.at) < exceptionTTL && !s.now().Before(c.at) {
		return c.list, nil
	}
	list, err := s.storedExceptions(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if s.external != nil {
		more, err := s.external.Exceptions(ctx, orgID)
		if err != nil {
			return nil, fmt.Errorf("list repository exceptions: %w", err)
		}
		list = append(list, more...)
	}
	s.mu.Lock()
	s.orgCache[orgID] = cachedExceptions{list: list, at: s.now()}
	s.mu.Unlock()
	return list, nil
}

func (s *Service) forgetOrgExceptions(orgID int64) {
	s.mu.Lock()
	delete(s.orgCache, orgID)
	s.mu.Unlock()
}
