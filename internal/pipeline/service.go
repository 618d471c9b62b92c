package pipeline

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/blob"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the pipeline schema.
var Migrations = store.EmbeddedMigrations("pipeline", migrationFS, "migrations")

// StatusContext is the context of the status check each run posts.
const StatusContext = "rampart/pipeline"

// Repos is what pipelines need from source hosting (scm.Service).
type Repos interface {
	RepoByID(ctx context.Context, id int64) (scm.Repo, error)
	Repo(ctx context.Context, org, name string) (scm.Repo, error)
	Path(r scm.Repo) string
	Authorize(sub authz.Subject, a authz.Action, r scm.Repo) error
	SetStatus(ctx context.Context, r scm.Repo, st scm.Status) (scm.Status, error)
	Pull(ctx context.Context, r scm.Repo, n int64) (scm.PullRequest, error)
	AddComment(ctx context.Context, r scm.Repo, pr scm.PullRequest, c scm.Comment) (scm.Comment, error)
	WebURL(r scm.Repo) string
}

// SecretScope says whose secrets a reference is resolved among.
type SecretScope struct {
	OrgID     int64
	ProjectID int64
	RepoID    int64
	Repo      string // ORG/NAME
	// Ref is the git ref the run is for (refs/heads/BRANCH, refs/tags/TAG):
	// what the vault's pipeline policies match.
	Ref string
	// RunID and Job name the run and job reading, for the audit log (0
	// and "" in the check made before the run is created).
	RunID int64
	Job   string
	// Actor is the user the run acts for.
	Actor string
}

// SecretSource resolves the secret references of jobs (the vault
// implements it). A reference that does not resolve is apperr.NotFound.
type SecretSource interface {
	Secret(ctx context.Context, scope SecretScope, ref string) (string, error)
}

// RunRef identifies the run a step belongs to, for evidence (provenance).
type RunRef struct {
	RunID  int64
	Number int64
	Repo   string
	Commit string
	Ref    string
	Job    string
	URL    string
	// Actor is the user the run acts for (SystemActor for scheduled
	// runs): image steps reach Rampart's registry as them.
	Actor string
	// PR is the run's pull request (0: none); Event its trigger.
	PR    int64
	Event string
}

// ImageStep is a build-image, push-image, sign, sbom or deploy step to
// carry out.
type ImageStep struct {
	Type      string            // StepBuildImage, StepPushImage, StepSign, StepSBOM, StepDeploy
	With      map[string]string // the step's validated parameters
	Workspace string            // host directory of the job's checkout
	Env       map[string]string // the job's environment, secrets included
	Log       interface{ Write([]byte) (int, error) }
	Run       RunRef
	// Network is the job's network setting: without it, image steps
	// reach no registry but this Rampart's.
	Network bool
}

// ImageBuilder carries out the image steps (package pipeline/imagesteps
// implements it).
type ImageBuilder interface {
	ImageStep(ctx context.Context, s ImageStep) error
}

// Scanner scans a job's workspace for the scan step (package scan through
// a small adapter in app). It returns the findings as a human-readable
// report for the log and the pull request, and whether any finding is at
// or above failOn ("" or "none" never fails).
type Scanner interface {
	ScanDir(ctx context.Context, dir, failOn string) (report string, failed bool, err error)
}

// Deps are the collaborators of the pipeline service.
type Deps struct {
	DB     *store.DB
	Audit  *audit.Log
	Events *events.Bus
	Repos  Repos
	Blobs  blob.Store
	Logger *slog.Logger
	Clock  func() time.Time
	// Executors by name; the first is the default. At least one unless
	// LocalWorkers is 0 (only remote runners take jobs).
	Executors []Executor
	// Secrets may be nil: runs referencing secrets are then refused.
	Secrets SecretSource
	// Images may be nil: image steps then fail with a clear error.
	Images  ImageBuilder
	Scanner Scanner
	// WorkDir holds job workspaces.
	WorkDir string
	// PublicURL is Rampart's base URL (links in status checks).
	PublicURL string
	// LocalWorkers is how many jobs this server runs at once (default 2;
	// negative: none, remote runners only).
	LocalWorkers int
	// MaxPerProject bounds the running jobs of one project (or org, for
	// repositories outside projects), local and remote (default 4).
	MaxPerProject int
	// MaskPaths are host paths hidden from container jobs (the data
	// directory).
	MaskPaths []string
	// DefaultLogLimit is a job's log size limit unless it sets one
	// (default 16 MiB).
	DefaultLogLimit int64
	// DefaultDisk is a job's workspace size unless it sets one (default
	// 1 GiB).
	DefaultDisk int64
	// RemoteRunners leaves jobs no local executor can run queued for
	// remote runners (instead of failing them).
	RemoteRunners bool
	// Poll is how often the scheduler looks at the store without being
	// woken (default 1 s).
	Poll time.Duration
}

// Service runs pipelines.
type Service struct {
	d      Deps
	runs   runStore
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	execs  map[string]Executor
	logs   *logHub
	mu     sync.Mutex
	cancel map[int64]context.CancelCauseFunc // running local jobs
	wg     sync.WaitGroup
	// running counts local jobs in flight.
	running int
	remote  remoteJobs
	// instance tells this server's containers from another's on the same
	// host (their cgroups share one hierarchy).
	instance string
}

// New returns the pipeline service.
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil, d.Audit == nil, d.Repos == nil, d.Blobs == nil, d.Logger == nil:
		return nil, errors.New("pipeline: DB, Audit, Repos, Blobs and Logger are required")
	case d.WorkDir == "":
		return nil, errors.New("pipeline: WorkDir is required")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.LocalWorkers == 0 {
		d.LocalWorkers = 2
	}
	if d.LocalWorkers > 0 && len(d.Executors) == 0 {
		return nil, errors.New("pipeline: local workers need at least one executor")
	}
	if d.MaxPerProject <= 0 {
		d.MaxPerProject = 4
	}
	if d.DefaultLogLimit <= 0 {
		d.DefaultLogLimit = 16 << 20
	}
	if d.DefaultDisk <= 0 {
		d.DefaultDisk = 1 << 30
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if err := os.MkdirAll(d.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("pipeline work directory: %w", err)
	}
	s := &Service{d: d, runs: runStore{d.DB}, log: d.Logger.With("component", "pipeline"), now: d.Clock,
		wake: make(chan struct{}, 1), execs: map[string]Executor{}, logs: newLogHub(), cancel: map[int64]context.CancelCauseFunc{},
		remote: remoteJobs{jobs: map[int64]*remoteJob{}, wake: make(chan struct{})}, instance: strings.ToLower(rand.Text()[:8])}
	for _, e := range d.Executors {
		s.execs[e.Name()] = e
	}
	return s, nil
}

// SetSecrets wires the secret source (the vault) after construction.
func (s *Service) SetSecrets(src SecretSource) { s.d.Secrets = src }

// SetImages wires the image builder after construction.
func (s *Service) SetImages(b ImageBuilder) { s.d.Images = b }

// DefaultExecutor is the name of the executor jobs use unless they ask
// for another ("" when this server runs no jobs).
func (s *Service) DefaultExecutor() string {
	if len(s.d.Executors) == 0 {
		return ""
	}
	return s.d.Executors[0].Name()
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules and executes jobs until ctx ends. On start, jobs this
// server was running when it stopped are marked failed with
// ReasonRestart; queued runs simply resume.
func (s *Service) Run(ctx context.Context) error {
	if err := s.recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing to recover now
		}
		return fmt.Errorf("pipeline: recover interrupted jobs: %w", err)
	}
	t := time.NewTicker(s.d.Poll)
	defer t.Stop()
	defer s.wg.Wait()
	var schedChecked time.Time
	for {
		// Schedules are looked at every 10 s of the service's clock.
		if now := s.now(); now.Sub(schedChecked) >= 10*time.Second || now.Before(schedChecked) {
			schedChecked = now
			if err := s.runSchedules(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("schedules", "err", err)
			}
		}
		if err := s.advanceAll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("advance runs", "err", err)
		}
		if err := s.startJobs(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("start jobs", "err", err)
		}
		s.wakeRunners()
		s.expireRemote(ctx)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, c := range s.cancel {
				c(errShutdown)
			}
			s.mu.Unlock()
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

var errShutdown = errors.New(ReasonRestart)

// recover fails the jobs that were running on this server.
func (s *Service) recover(ctx context.Context) error {
	now := store.Time(s.now())
	return s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE pipeline_runs SET reason = ? WHERE status = 'running' AND id IN
			(SELECT run_id FROM pipeline_jobs WHERE status = 'running')`, ReasonRestart); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE pipeline_steps SET status = 'failed', finished_at = ? WHERE status = 'running' AND job_id IN
			(SELECT id FROM pipeline_jobs WHERE status = 'running')`, now); err != nil {
			return err
		}
		// Remote jobs too: their log writers lived in the stopped process.
		_, err := tx.Exec(ctx, `UPDATE pipeline_jobs SET status = 'failed', reason = ?, finished_at = ? WHERE status = 'running'`,
			ReasonRestart, now)
		return err
	})
}

// advanceAll moves every active run forward: jobs whose needs are done
// are queued or skipped; runs whose jobs are all done finish.
func (s *Service) advanceAll(ctx context.Context) error {
	runs, err := s.runs.activeRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if err := s.advance(ctx, r); err != nil {
			s.log.Warn("advance run", "run", r.ID, "err", err)
		}
	}
	return nil
}

func (s *Service) advance(ctx context.Context, r Run) error {
	var done *Run
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		jobs, err := s.runs.jobs(ctx, tx, r.ID, false)
		if err != nil {
			return err
		}
		byName := map[string]JobRun{}
		for _, j := range jobs {
			byName[j.Name] = j
		}
		all := true
		for _, j := range jobs {
			if j.Status == StatusPending {
				ready, failed, allOK := true, false, true
				for _, n := range j.Spec.Needs {
					st := byName[n].Status
					if !finished(st) {
						ready = false
					}
					if st == StatusFailed || st == StatusCancelled {
						failed = true
					}
					if st != StatusSuccess {
						allOK = false
					}
				}
				if ready {
					cond := j.Spec.Condition()
					next := StatusSkipped
					if cond.Eval(&Context{Vars: runVars(r, j.Spec), Failed: failed}) && (allOK || cond.UsesStatus()) {
						next = StatusQueued
					}
					if _, err := tx.Exec(ctx, "UPDATE pipeline_jobs SET status = ? WHERE id = ? AND status = 'pending'", next, j.ID); err != nil {
						return err
					}
					if next == StatusSkipped {
						if _, err := tx.Exec(ctx, "UPDATE pipeline_steps SET status = 'skipped' WHERE job_id = ?", j.ID); err != nil {
							return err
						}
					}
					j.Status = next
					byName[j.Name] = j
				}
			}
			if !finished(j.Status) {
				all = false
			}
		}
		if !all {
			return nil
		}
		status := StatusSuccess
		for _, j := range jobs {
			if st := byName[j.Name].Status; st == StatusFailed || st == StatusCancelled {
				status = StatusFailed
			}
		}
		n, err := tx.Exec(ctx, "UPDATE pipeline_runs SET status = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
			status, store.Time(s.now()), r.ID)
		if err != nil || n == 0 {
			return err
		}
		r.Status = status
		done = &r
		return nil
	})
	if err != nil {
		return err
	}
	if done != nil {
		s.postStatus(ctx, *done)
		s.poke()
	}
	return nil
}

// runVars are the names a condition sees.
func runVars(r Run, j Job) map[string]string {
	v := map[string]string{"event": r.Event, "ref": r.Ref, "sha": r.SHA, "repo": r.Repo, "actor": r.Actor}
	if b, ok := cutPrefix(r.Ref, "refs/heads/"); ok {
		v["branch"] = b
	}
	if t, ok := cutPrefix(r.Ref, "refs/tags/"); ok {
		v["tag"] = t
	}
	for k, x := range j.Matrix {
		v["matrix."+k] = x
	}
	return v
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// startJobs claims queued jobs for the local workers within the limits.
func (s *Service) startJobs(ctx context.Context) error {
	if s.d.LocalWorkers < 0 {
		return nil
	}
	type cand struct {
		id      int64
		project int64
		spec    string
	}
	rows, err := s.d.DB.Query(ctx, `SELECT j.id, CASE WHEN r.project_id <> 0 THEN r.project_id ELSE -r.org_id END, j.spec
		FROM pipeline_jobs j JOIN pipeline_runs r ON r.id = j.run_id WHERE j.status = 'queued' ORDER BY j.id LIMIT 100`)
	if err != nil {
		return err
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.project, &c.spec); err != nil {
			rows.Close()
			return err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if len(cands) == 0 {
		return rows.Err()
	}
	perProject, err := s.runningPerProject(ctx)
	if err != nil {
		return err
	}
	for _, c := range cands {
		s.mu.Lock()
		full := s.running >= s.d.LocalWorkers
		s.mu.Unlock()
		if full {
			return nil
		}
		if perProject[c.project] >= s.d.MaxPerProject {
			continue
		}
		j, err := s.runs.job(ctx, c.id)
		if err != nil {
			return err
		}
		exec, err := s.executorFor(j.Spec)
		if err != nil && s.d.RemoteRunners {
			continue // a remote runner may take it
		}
		if err != nil {
			// No executor here can run it.
			if _, err := s.d.DB.Exec(ctx, `UPDATE pipeline_jobs SET status = 'failed', reason = ?, finished_at = ? WHERE id = ? AND status = 'queued'`,
				apperr.Message(err), store.Time(s.now()), c.id); err != nil {
				return err
			}
			s.poke()
			continue
		}
		ok, err := s.runs.claim(ctx, c.id, "local", exec.Name(), s.now())
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		perProject[c.project]++
		jctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		s.mu.Lock()
		s.running++
		s.cancel[c.id] = cancel
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				s.running--
				delete(s.cancel, c.id)
				s.mu.Unlock()
				cancel(nil)
				s.poke()
			}()
			s.executeLocal(jctx, ctx, j, exec)
		})
	}
	return nil
}

func (s *Service) runningPerProject(ctx context.Context) (map[int64]int, error) {
	rows, err := s.d.DB.Query(ctx, `SELECT CASE WHEN r.project_id <> 0 THEN r.project_id ELSE -r.org_id END, COUNT(*)
		FROM pipeline_jobs j JOIN pipeline_runs r ON r.id = j.run_id WHERE j.status = 'running' GROUP BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var p int64
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

func (s *Service) executorFor(j Job) (Executor, error) {
	name := j.Executor
	if name == "" {
		if len(s.d.Executors) == 0 {
			return nil, apperr.E(apperr.Unavailable, "no executor on this server")
		}
		if j.Image != "" {
			if e, ok := s.execs[ExecutorContainer]; ok {
				return e, nil
			}
			return nil, apperr.E(apperr.Unavailable, "job %s names an image but this server has no container executor (runc)", j.Name)
		}
		return s.d.Executors[0], nil
	}
	e, ok := s.execs[name]
	if !ok {
		return nil, apperr.E(apperr.Unavailable, "no %s executor on this server", name)
	}
	return e, nil
}

// postStatus posts the run's state as a status check on its commit.
func (s *Service) postStatus(ctx context.Context, r Run) {
	repo, err := s.d.Repos.RepoByID(ctx, r.RepoID)
	if err != nil {
		s.log.Warn("status check: repository", "run", r.ID, "err", err)
		return
	}
	st := scm.Status{SHA: r.SHA, Context: StatusContext, TargetURL: s.runURL(repo, r.Number)}
	switch r.Status {
	case StatusQueued, StatusRunning:
		st.State, st.Description = scm.CheckPending, fmt.Sprintf("run #%d is %s", r.Number, r.Status)
	case StatusSuccess:
		st.State, st.Description = scm.CheckSuccess, fmt.Sprintf("run #%d succeeded", r.Number)
	case StatusCancelled:
		st.State, st.Description = scm.CheckError, fmt.Sprintf("run #%d was cancelled", r.Number)
	default:
		st.State, st.Description = scm.CheckFailure, fmt.Sprintf("run #%d failed", r.Number)
		if r.Reason != "" {
			st.Description += ": " + r.Reason
		}
	}
	st.Description = strings.Join(strings.Fields(st.Description), " ")
	if len(st.Description) > 480 {
		st.Description = st.Description[:480] + "…"
	}
	if _, err := s.d.Repos.SetStatus(systemCtx(ctx), repo, st); err != nil {
		s.log.Warn("status check", "run", r.ID, "err", err)
	}
}

func (s *Service) runURL(repo scm.Repo, number int64) string {
	u := s.d.Repos.WebURL(repo) + "/pipelines/" + strconv.FormatInt(number, 10)
	if len(u) > 2000 || (len(u) > 0 && u[0] == '/') {
		return ""
	}
	return u
}

// workDir is the directory of a job's workspace.
func (s *Service) workDir(jobID int64) string {
	return filepath.Join(s.d.WorkDir, "job-"+strconv.FormatInt(jobID, 10))
}
