package deploy

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the deploy component's schema.
var Migrations = store.EmbeddedMigrations("deploy", migrationFS, "migrations")

// Scope names the project a call is about.
type Scope struct {
	OrgID     int64
	ProjectID int64
	Org       string
	Project   string
	// Env, Release and RequestedBy say, when secrets are resolved, which
	// environment and release number the workload is for and who deployed
	// it: what the vault's deployment policies match and its audit names.
	Env         string
	Release     int64
	RequestedBy string
}

func (s Scope) String() string { return s.Org + "/" + s.Project }

// GatePreDeploy is the policy gate every deployment asks.
const GatePreDeploy = "pre-deploy"

// Gate asks a policy gate (package policy's Decide) about a release.
type Gate interface {
	Decide(ctx context.Context, gate string, in GateInput) (GateDecision, error)
}

// GateInput is what a gate judges.
type GateInput struct {
	OrgID       int64
	Subject     string
	Environment string
	Repository  string
	Document    map[string]any
}

// GateDecision is a gate's answer as a deployment records it.
type GateDecision struct {
	Gate    string   `json:"gate"`
	ID      string   `json:"id,omitempty"`
	Allow   bool     `json:"allow"`
	Reasons []string `json:"reasons,omitempty"`
	// Stage is when the gate was asked: empty when the deployment was
	// requested, StageBeforeRollout when it was asked again right before
	// the rollout of a deployment that waited (see gateBeforeRollout).
	Stage string `json:"stage,omitempty"`
}

// Puller is who a target pulls a release's image for: the person who
// asked for the deployment, in the deployment's project. The service puts
// it into the context of Target.Rollout and Target.Recover; the wiring's
// registry credentials (a pull-only token for the image's one repository,
// minted for this person) read it with PullerFrom.
type Puller struct {
	Scope  Scope
	UserID int64
}

type pullerKey struct{}

// WithPuller returns ctx carrying p.
func WithPuller(ctx context.Context, p Puller) context.Context {
	return context.WithValue(ctx, pullerKey{}, p)
}

// PullerFrom returns the puller of ctx, if any.
func PullerFrom(ctx context.Context) (Puller, bool) {
	p, ok := ctx.Value(pullerKey{}).(Puller)
	return p, ok && p.UserID != 0
}

// Secrets resolves secret references (the vault) to values when an
// instance starts.
type Secrets interface {
	Resolve(ctx context.Context, sc Scope, refs []SecretRef) (map[string]Value, error)
}

// Sealer encrypts service-connection credentials at rest (the keyring).
type Sealer interface {
	Seal(plaintext []byte, aad string) ([]byte, error)
	Open(ciphertext []byte, aad string) ([]byte, error)
}

// Publisher publishes a typed event inside a transaction (package
// events' Bus).
type Publisher interface {
	Publish(ctx context.Context, tx *store.Tx, typ string, payload any) error
}

// EventFinished is the type of the event published when a deployment
// ends after running (succeeded, rolled back or failed).
const EventFinished = "deploy.deployment.finished"

// FinishedEvent is the payload of EventFinished.
type FinishedEvent struct {
	Org           string   `json:"org"`
	Project       string   `json:"project"`
	Environment   string   `json:"environment"`
	Deployment    int64    `json:"deployment"`
	State         string   `json:"state"`
	Release       int64    `json:"release"`
	Digest        string   `json:"digest"`
	Image         string   `json:"image"`
	SourceCommit  string   `json:"source_commit,omitempty"`
	Repository    string   `json:"repository,omitempty"`
	PullRequest   int64    `json:"pull_request,omitempty"`
	WorkItems     []string `json:"work_items"`
	RunningNumber int64    `json:"running_release"`
}

// Target runs releases somewhere: the node runtime or Kubernetes.
type Target interface {
	// Rollout replaces what runs in the plan's environment by its
	// release, following the environment's strategy. When it returns an
	// error the previous release (if any) must be running again.
	Rollout(ctx context.Context, p Plan) error
	// Recover is called at start for a rollout that was interrupted: it
	// leaves exactly one of the two releases running and says which.
	Recover(ctx context.Context, p Plan) (runningReleaseID int64, err error)
	// Ensure makes the environment's current release run after a
	// restart of Rampart: it reattaches to what runs, restarts what
	// died and removes what should not be there.
	Ensure(ctx context.Context, p Plan) error
}

// RollbackError is what a target returns when a release failed and
// bringing the previous one back failed too: the new release keeps
// serving (degraded) rather than nothing.
type RollbackError struct {
	Cause, Err error
}

func (e *RollbackError) Error() string {
	return e.Cause.Error() + "; the rollback failed too: " + e.Err.Error()
}

// Unwrap returns the release's failure.
func (e *RollbackError) Unwrap() error { return e.Cause }

// Hook is called at every step of a rollout, after the step's instances
// are healthy and its traffic is switched; an error fails the step and
// rolls the release back. Release analysis plugs in here.
type Hook interface {
	Step(ctx context.Context, s StepInfo) error
}

// HookFunc adapts a function to Hook.
type HookFunc func(ctx context.Context, s StepInfo) error

// Step calls f.
func (f HookFunc) Step(ctx context.Context, s StepInfo) error { return f(ctx, s) }

// StepInfo describes a rollout step.
type StepInfo struct {
	Deployment int64
	Scope      Scope
	Env        string
	Release    int64
	Strategy   string
	// Step counts from 1 to Of.
	Step, Of int
	// Weight is the new release's share of traffic in percent.
	Weight int
}

// Plan is everything a target needs to carry out a deployment.
type Plan struct {
	Deployment Deployment
	Scope      Scope
	Env        Environment
	Release    Release
	// Previous is the release running before (nil for the first).
	Previous *Release
	// Secrets are the release's resolved secret values, PreviousSecrets
	// the previous release's (to start it again on rollback).
	Secrets         map[string]Value
	PreviousSecrets map[string]Value
	Connection      *Connection
	Hook            Hook
	// Progress records the step in words.
	Progress func(step string)
	// Record appends a durable entry to the deployment's rollout journal
	// (JournalStarted, …); nil records nothing. An error recording the
	// commit point fails the rollout (it is rolled back).
	Record func(ctx context.Context, kind, detail string) error
	// Journal is what the rollout recorded before Rampart stopped; set
	// for Recover only.
	Journal []JournalEntry
}

// Deps are the service's collaborators.
type Deps struct {
	DB     *store.DB
	Audit  *audit.Log
	Sealer Sealer
	Logger *slog.Logger
	// Targets run releases, by kind (node, kubernetes).
	Targets map[string]Target
	// Gate asks policy gates; nil records the pre-deploy gate as not
	// configured (allowed) and denies environments that require gates.
	Gate Gate
	// Secrets resolves secret references; nil fails releases that have
	// any.
	Secrets Secrets
	// Runtime is the node runtime, for listing instances and their logs
	// (nil when this machine runs none).
	Runtime Runtime
	// Events, when set, receives deploy.deployment.finished inside the
	// transaction recording a deployment's outcome (boards link work
	// items to environments, monitoring starts release analysis).
	Events Publisher
	// Hook is called at every rollout step (nil: none).
	Hook Hook
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Poll is how often queued deployments and expired approvals are
	// looked for (default 1s).
	Poll time.Duration
}

// Service manages environments, releases, deployments and approvals,
// and runs deployments on their targets.
type Service struct {
	d     Deps
	log   *slog.Logger
	nudge chan struct{}

	mu      sync.Mutex
	running map[int64]bool // environment ids with a rollout in progress
	wg      sync.WaitGroup
	started chan struct{}
	once    sync.Once
}

// New returns the service.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.Audit == nil || d.Sealer == nil || d.Logger == nil {
		return nil, errors.New("deploy: DB, Audit, Sealer and Logger are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.Targets == nil {
		d.Targets = map[string]Target{}
	}
	return &Service{d: d, log: d.Logger.With(logging.KeyComponent, "deploy"), nudge: make(chan struct{}, 1),
		running: map[int64]bool{}, started: make(chan struct{})}, nil
}

func actor(ctx context.Context) (int64, string) {
	i := reqinfo.From(ctx)
	return i.ActorID, i.ActorName
}

// ---- environments

const selectEnv = `SELECT id, org_id, project_id, org_name, project_name, name, position, protection, target, current_release_id, previous_release_id,
	status, status_message, created_at, updated_at, created_by FROM deploy_environments`

func scanEnvs(rows *store.Rows) ([]Environment, error) {
	defer rows.Close()
	var out []Environment
	for rows.Next() {
		var (
			e          Environment
			prot, targ string
		)
		if err := rows.Scan(&e.ID, &e.OrgID, &e.ProjectID, &e.Org, &e.Project, &e.Name, &e.Position, &prot, &targ, &e.CurrentReleaseID, &e.PreviousReleaseID,
			&e.Status, &e.StatusMessage, store.TimeDest(&e.CreatedAt), store.TimeDest(&e.UpdatedAt), &e.CreatedBy); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(prot), &e.Protection); err != nil {
			return nil, fmt.Errorf("environment %d: protection: %w", e.ID, err)
		}
		if err := json.Unmarshal([]byte(targ), &e.Target); err != nil {
			return nil, fmt.Errorf("environment %d: target: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Service) envs(ctx context.Context, q store.Querier, where string, args ...any) ([]Environment, error) {
	rows, err := q.Query(ctx, selectEnv+" "+where, args...)
	if err != nil {
		return nil, err
	}
	return scanEnvs(rows)
}

// Environments lists a project's environments in promotion order.
func (s *Service) Environments(ctx context.Context, sc Scope) ([]Environment, error) {
	out, err := s.envs(ctx, s.d.DB, "WHERE project_id = ? ORDER BY position, name", sc.ProjectID)
	if out == nil && err == nil {
		out = []Environment{}
	}
	return out, err
}

// Environment returns a project's environment by name.
func (s *Service) Environment(ctx context.Context, sc Scope, name string) (Environment, error) {
	return s.env(ctx, s.d.DB, sc, name)
}

func (s *Service) env(ctx context.Context, q store.Querier, sc Scope, name string) (Environment, error) {
	es, err := s.envs(ctx, q, "WHERE project_id = ? AND name = ?", sc.ProjectID, name)
	if err != nil {
		return Environment{}, err
	}
	if len(es) == 0 {
		return Environment{}, apperr.E(apperr.NotFound, "environment %q not found in %s", truncate(name, 64), sc)
	}
	return es[0], nil
}

// EnvironmentSpec is what callers set on an environment.
type EnvironmentSpec struct {
	Position   int        `json:"position"`
	Protection Protection `json:"protection"`
	Target     TargetSpec `json:"target"`
}

// PutEnvironment creates or replaces an environment's rules and target.
func (s *Service) PutEnvironment(ctx context.Context, sc Scope, name string, spec EnvironmentSpec) (Environment, bool, error) {
	if err := ValidateEnvName(name); err != nil {
		return Environment{}, false, err
	}
	var err error
	if spec.Protection, err = spec.Protection.normalize(); err != nil {
		return Environment{}, false, err
	}
	if spec.Target, err = spec.Target.normalize(); err != nil {
		return Environment{}, false, err
	}
	if spec.Position < 0 || spec.Position > 1000 {
		return Environment{}, false, apperr.InvalidField("position", "position must be 0 to 1000")
	}
	if _, ok := s.d.Targets[spec.Target.Kind]; !ok {
		return Environment{}, false, apperr.InvalidField("target.kind", "this Rampart has no %s target", spec.Target.Kind)
	}
	prot, _ := json.Marshal(spec.Protection)
	targ, _ := json.Marshal(spec.Target)
	var (
		out     Environment
		created bool
	)
	err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		now := store.Time(s.d.Now())
		_, who := actor(ctx)
		prev, err := s.env(ctx, tx, sc, name)
		switch {
		case apperr.Is(err, apperr.NotFound):
			created = true
			_, err = tx.Exec(ctx, `INSERT INTO deploy_environments (org_id, project_id, org_name, project_name, name, position, protection, target, created_at, updated_at, created_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, sc.OrgID, sc.ProjectID, sc.Org, sc.Project, name, spec.Position, string(prot), string(targ), now, now, who)
		case err != nil:
			return err
		default:
			if prev.Target.Kind != spec.Target.Kind && prev.CurrentReleaseID != 0 {
				return apperr.InvalidField("target.kind", "environment %s runs release(s) on %s: create a new environment to change the target kind", name, prev.Target.Kind)
			}
			_, err = tx.Exec(ctx, "UPDATE deploy_environments SET position = ?, protection = ?, target = ?, updated_at = ? WHERE id = ?",
				spec.Position, string(prot), string(targ), now, prev.ID)
		}
		if err != nil {
			return err
		}
		if out, err = s.env(ctx, tx, sc, name); err != nil {
			return err
		}
		action := "deploy.environment.update"
		if created {
			action = "deploy.environment.create"
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: sc.OrgID,
			Target: audit.Target{Type: "environment", ID: strconv.FormatInt(out.ID, 10), Name: sc.String() + "/" + name},
			Details: map[string]any{"required_approvals": spec.Protection.RequiredApprovals, "approvers": spec.Protection.Approvers,
				"required_gates": spec.Protection.RequiredGates, "allowed_branches": spec.Protection.AllowedBranches,
				"windows": len(spec.Protection.Windows), "target": spec.Target.Kind, "strategy": spec.Target.Strategy.Kind,
				"replicas": spec.Target.Replicas, "host": spec.Target.Host}})
	})
	return out, created, err
}

// DeleteEnvironment removes an environment that runs nothing.
func (s *Service) DeleteEnvironment(ctx context.Context, sc Scope, name string) error {
	return s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, sc, name)
		if err != nil {
			return err
		}
		if e.CurrentReleaseID != 0 {
			return apperr.E(apperr.Conflict, "environment %s runs release #%d: it cannot be deleted while it runs something", name, s.releaseNumber(ctx, tx, e.CurrentReleaseID))
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM deploy_deployments WHERE environment_id = ? AND state IN (?, ?, ?)",
			e.ID, StateAwaitingApproval, StateQueued, StateRunning).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.E(apperr.Conflict, "environment %s has deployments in progress", name)
		}
		for _, q := range []string{"DELETE FROM deploy_connections WHERE environment_id = ?", "DELETE FROM deploy_environments WHERE id = ?"} {
			if _, err := tx.Exec(ctx, q, e.ID); err != nil {
				return err
			}
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.environment.delete", OrgID: sc.OrgID,
			Target: audit.Target{Type: "environment", ID: strconv.FormatInt(e.ID, 10), Name: sc.String() + "/" + name}})
	})
}

func (s *Service) releaseNumber(ctx context.Context, q store.Querier, id int64) int64 {
	var n int64
	_ = q.QueryRow(ctx, "SELECT number FROM deploy_releases WHERE id = ?", id).Scan(&n)
	return n
}

// ---- releases

const selectRelease = `SELECT id, org_id, project_id, number, image, digest, config, secret_refs, source_commit, source_branch,
	repository, pull_request, work_items, reason, created_by, created_at FROM deploy_releases`

func (s *Service) releases(ctx context.Context, q store.Querier, where string, args ...any) ([]Release, error) {
	rows, err := q.Query(ctx, selectRelease+" "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Release{}
	for rows.Next() {
		var (
			r                Release
			cfg, refs, items string
		)
		if err := rows.Scan(&r.ID, &r.OrgID, &r.ProjectID, &r.Number, &r.Image, &r.Digest, &cfg, &refs, &r.SourceCommit, &r.SourceBranch,
			&r.Repository, &r.PullRequest, &items, &r.Reason, &r.CreatedBy, store.TimeDest(&r.CreatedAt)); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(cfg), &r.Config), json.Unmarshal([]byte(refs), &r.SecretRefs),
			json.Unmarshal([]byte(items), &r.WorkItems)); err != nil {
			return nil, fmt.Errorf("release %d: %w", r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CreateRelease records a new release of a project. Releases never
// change after this.
func (s *Service) CreateRelease(ctx context.Context, sc Scope, r Release) (Release, error) {
	if err := r.validate(); err != nil {
		return Release{}, err
	}
	cfg, _ := json.Marshal(r.Config)
	refs, _ := json.Marshal(r.SecretRefs)
	items, _ := json.Marshal(r.WorkItems)
	var out Release
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(number), 0) + 1 FROM deploy_releases WHERE project_id = ?", sc.ProjectID).Scan(&n); err != nil {
			return err
		}
		_, who := actor(ctx)
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO deploy_releases (org_id, project_id, number, image, digest, config, secret_refs, source_commit,
			source_branch, repository, pull_request, work_items, reason, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, sc.OrgID, sc.ProjectID, n, r.Image, r.Digest, string(cfg), string(refs),
			r.SourceCommit, r.SourceBranch, r.Repository, r.PullRequest, string(items), r.Reason, who, store.Time(s.d.Now())).Scan(&id); err != nil {
			return err
		}
		rs, err := s.releases(ctx, tx, "WHERE id = ?", id)
		if err != nil || len(rs) == 0 {
			return errors.Join(err, errors.New("release vanished"))
		}
		out = rs[0]
		refNames := make([]string, len(r.SecretRefs))
		for i, ref := range r.SecretRefs {
			refNames[i] = ref.Env + "=" + ref.Ref
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.release.create", OrgID: sc.OrgID,
			Target: audit.Target{Type: "release", ID: strconv.FormatInt(id, 10), Name: sc.String() + "#" + strconv.FormatInt(n, 10)},
			Details: map[string]any{"image": r.Ref(), "source_commit": r.SourceCommit, "source_branch": r.SourceBranch,
				"pull_request": r.PullRequest, "secret_refs": refNames, "reason": r.Reason}})
	})
	return out, err
}

// Releases lists a project's releases, newest first.
func (s *Service) Releases(ctx context.Context, sc Scope, limit int) ([]Release, error) {
	return s.releases(ctx, s.d.DB, "WHERE project_id = ? ORDER BY number DESC LIMIT ?", sc.ProjectID, limit)
}

// Release returns a project's release by number.
func (s *Service) Release(ctx context.Context, sc Scope, number int64) (Release, error) {
	rs, err := s.releases(ctx, s.d.DB, "WHERE project_id = ? AND number = ?", sc.ProjectID, number)
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, apperr.E(apperr.NotFound, "release #%d not found in %s", number, sc)
	}
	return rs[0], nil
}

func (s *Service) releaseByID(ctx context.Context, q store.Querier, id int64) (Release, error) {
	rs, err := s.releases(ctx, q, "WHERE id = ?", id)
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, apperr.E(apperr.NotFound, "release %d not found", id)
	}
	return rs[0], nil
}

// Change is one difference between two releases.
type Change struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// Diff lists what differs between releases a and b: image, digest,
// configuration, secret references (names, never values) and source.
func Diff(a, b Release) []Change {
	out := []Change{}
	add := func(field, from, to string) {
		if from != to {
			out = append(out, Change{field, from, to})
		}
	}
	add("image", a.Image, b.Image)
	add("digest", a.Digest, b.Digest)
	add("source_commit", a.SourceCommit, b.SourceCommit)
	add("source_branch", a.SourceBranch, b.SourceBranch)
	add("repository", a.Repository, b.Repository)
	add("pull_request", prString(a.PullRequest), prString(b.PullRequest))
	add("work_items", strings.Join(a.WorkItems, ","), strings.Join(b.WorkItems, ","))
	add("command", strings.Join(a.Config.Command, " "), strings.Join(b.Config.Command, " "))
	add("manifests", manifestsDigest(a.Config.Manifests), manifestsDigest(b.Config.Manifests))
	keys := map[string]bool{}
	for k := range a.Config.Env {
		keys[k] = true
	}
	for k := range b.Config.Env {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		add("env."+k, a.Config.Env[k], b.Config.Env[k])
	}
	refs := func(r Release) map[string]string {
		m := map[string]string{}
		for _, s := range r.SecretRefs {
			m[s.Env] = s.Ref
		}
		return m
	}
	ra, rb := refs(a), refs(b)
	names := map[string]bool{}
	for k := range ra {
		names[k] = true
	}
	for k := range rb {
		names[k] = true
	}
	sorted = sorted[:0]
	for k := range names {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		add("secret."+k, ra[k], rb[k])
	}
	return out
}

func prString(n int64) string {
	if n == 0 {
		return ""
	}
	return "#" + strconv.FormatInt(n, 10)
}

// ---- helpers shared by the deployment code

func branchAllowed(patterns []string, branch string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, branch); ok {
			return true
		}
	}
	return false
}

func windowOpen(ws []Window, t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	for _, w := range ws {
		if w.Open(t) {
			return true
		}
	}
	return false
}

// manifestsDigest names manifests by a short hash (the diff shows that
// they changed; the release shows them whole).
func manifestsDigest(m string) string {
	if m == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(m))
	return "sha256:" + hex.EncodeToString(sum[:6])
}
