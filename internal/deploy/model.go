package deploy

import (
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Limits on what callers send.
const (
	maxEnvVars       = 100
	maxEnvValue      = 4 << 10
	maxSecretRefs    = 50
	maxWorkItems     = 50
	maxReason        = 1000
	maxListItems     = 20
	maxReplicas      = 20
	maxCanarySteps   = 10
	maxCommandArgs   = 64
	maxApprovals     = 10
	maxPause         = 24 * time.Hour
	maxHealthTimeout = 10 * time.Minute
)

// Duration is a time.Duration written as "5s", "250ms" in JSON.
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes the duration as Go does ("1m30s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration ("90s", "1m30s").
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) > 32 {
		return fmt.Errorf("duration too long")
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 5m")
	}
	if v < 0 {
		return fmt.Errorf("duration must not be negative")
	}
	*d = Duration(v)
	return nil
}

// Target kinds: where an environment's releases run.
const (
	KindNode       = "node"
	KindKubernetes = "kubernetes"
)

// Strategies: how a release replaces the one running.
const (
	Recreate  = "recreate"
	Rolling   = "rolling"
	BlueGreen = "blue_green"
	Canary    = "canary"
)

// Environment is a place a project's releases run (dev, staging,
// production), with the rules a deployment there must pass and the
// target it runs on.
type Environment struct {
	ID         int64      `json:"id"`
	OrgID      int64      `json:"-"`
	ProjectID  int64      `json:"-"`
	Org        string     `json:"-"`
	Project    string     `json:"-"`
	Name       string     `json:"name"`
	Position   int        `json:"position"`
	Protection Protection `json:"protection"`
	Target     TargetSpec `json:"target"`
	// CurrentReleaseID is the release running there (0: none yet);
	// PreviousReleaseID the one before it (what a rollback returns to).
	CurrentReleaseID  int64 `json:"current_release_id"`
	PreviousReleaseID int64 `json:"previous_release_id"`
	// Status is empty, deploying, running or degraded; StatusMessage
	// says what happened last in words.
	Status        string    `json:"status"`
	StatusMessage string    `json:"status_message,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	CreatedBy     string    `json:"created_by"`
}

// Protection are an environment's rules: who must approve, which policy
// gates must allow, from which branches and when a release may go there.
type Protection struct {
	// RequiredApprovals is how many approvals a deployment needs (0:
	// none). The person who asked for a deployment cannot approve it.
	RequiredApprovals int `json:"required_approvals"`
	// Approvers, when set, are the only users whose approval counts;
	// otherwise any maintainer of the project may approve.
	Approvers []string `json:"approvers,omitempty"`
	// RequiredGates are policy gates asked besides pre-deploy.
	RequiredGates []string `json:"required_gates,omitempty"`
	// AllowedBranches are patterns (path.Match: main, release/*) the
	// release's source branch must match; empty allows any.
	AllowedBranches []string `json:"allowed_branches,omitempty"`
	// Windows are the times deployments may start (UTC); empty: always.
	Windows []Window `json:"windows,omitempty"`
	// ApprovalTimeout is how long a deployment waits for its approvals
	// before it expires (default 24h).
	ApprovalTimeout Duration `json:"approval_timeout,omitempty"`
}

// Window is a time of the week when deployments may start, in UTC.
type Window struct {
	// Days are mon, tue, wed, thu, fri, sat, sun (empty: every day).
	Days []string `json:"days,omitempty"`
	// Start and End are HH:MM; End after Start.
	Start string `json:"start"`
	End   string `json:"end"`
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func parseHM(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	var h, m int
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// Open reports whether t falls inside the window.
func (w Window) Open(t time.Time) bool {
	t = t.UTC()
	if len(w.Days) > 0 && !slices.Contains(w.Days, dayNames[t.Weekday()]) {
		return false
	}
	s, _ := parseHM(w.Start)
	e, _ := parseHM(w.End)
	m := t.Hour()*60 + t.Minute()
	return m >= s && m < e
}

// TargetSpec says where and how an environment runs its releases.
type TargetSpec struct {
	// Kind is node (runc on this machine, the default) or kubernetes.
	Kind string `json:"kind"`
	// Replicas is how many instances run (default 1).
	Replicas int `json:"replicas"`
	// Port is the port the application listens on inside its container
	// (default 8080); it is given to it as $PORT.
	Port int `json:"port"`
	// HealthPath is requested with GET; a 2xx or 3xx answer is healthy
	// (default /healthz).
	HealthPath string `json:"health_path"`
	// HealthTimeout is how long a new instance may take to become
	// healthy (default 30s).
	HealthTimeout Duration `json:"health_timeout,omitempty"`
	// Strategy is how a release replaces the running one.
	Strategy Strategy `json:"strategy"`
	// Host, when set, is the gateway host routed to the environment's
	// instances: the route follows releases.
	Host string `json:"host,omitempty"`
	// MemoryBytes, CPUMillis and Pids limit each instance (cgroups);
	// defaults 256 MiB, 1000 (one core) and 256.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	CPUMillis   int64 `json:"cpu_millis,omitempty"`
	Pids        int64 `json:"pids,omitempty"`
}

// Strategy is a rollout strategy with its settings.
type Strategy struct {
	// Kind is recreate, rolling (default), blue_green or canary.
	Kind string `json:"kind"`
	// Steps are the canary's traffic percentages, rising, ending at 100
	// (default 10, 50, 100).
	Steps []int `json:"steps,omitempty"`
	// Pause is the time between steps (canary) or between replicas
	// (rolling); for blue_green on Kubernetes, how long the old colour
	// keeps running after the switch before it is scaled down.
	Pause Duration `json:"pause,omitempty"`
	// Preview (blue_green on Kubernetes) adds a preview Service that
	// selects the new colour before the switch; other strategies ignore
	// it.
	Preview bool `json:"preview,omitempty"`
}

var envNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// ValidateEnvName checks an environment name: lowercase letters, digits
// and dashes, starting with a letter, at most 31 bytes (it becomes part
// of namespace, route and container names).
func ValidateEnvName(name string) error {
	if !envNameRE.MatchString(name) {
		return apperr.InvalidField("name", "environment names are 1-31 lowercase letters, digits and dashes, starting with a letter")
	}
	return nil
}

// normalize checks p and fills defaults.
func (p Protection) normalize() (Protection, error) {
	if p.RequiredApprovals < 0 || p.RequiredApprovals > maxApprovals {
		return p, apperr.InvalidField("protection.required_approvals", "required approvals must be 0 to %d", maxApprovals)
	}
	for _, l := range []struct {
		field string
		v     []string
	}{{"approvers", p.Approvers}, {"required_gates", p.RequiredGates}, {"allowed_branches", p.AllowedBranches}} {
		if len(l.v) > maxListItems {
			return p, apperr.InvalidField("protection."+l.field, "at most %d entries", maxListItems)
		}
		for _, s := range l.v {
			if s == "" || len(s) > 100 || strings.ContainsAny(s, " \t\r\n") {
				return p, apperr.InvalidField("protection."+l.field, "entries are 1-100 bytes without spaces")
			}
		}
	}
	if p.RequiredApprovals > 0 && len(p.Approvers) > 0 && len(p.Approvers) < p.RequiredApprovals {
		return p, apperr.InvalidField("protection.approvers", "%d approvals are required but only %d approvers are named", p.RequiredApprovals, len(p.Approvers))
	}
	for _, b := range p.AllowedBranches {
		if _, err := path.Match(b, ""); err != nil {
			return p, apperr.InvalidField("protection.allowed_branches", "bad pattern %q", b)
		}
	}
	if len(p.Windows) > maxListItems {
		return p, apperr.InvalidField("protection.windows", "at most %d windows", maxListItems)
	}
	for _, w := range p.Windows {
		s, ok1 := parseHM(w.Start)
		e, ok2 := parseHM(w.End)
		if !ok1 || !ok2 || e <= s {
			return p, apperr.InvalidField("protection.windows", "a window's start and end are HH:MM (UTC) with end after start")
		}
		for _, d := range w.Days {
			if !slices.Contains(dayNames, d) {
				return p, apperr.InvalidField("protection.windows", "days are mon, tue, wed, thu, fri, sat or sun")
			}
		}
	}
	if p.ApprovalTimeout == 0 {
		p.ApprovalTimeout = Duration(24 * time.Hour)
	}
	if p.ApprovalTimeout.D() < time.Second || p.ApprovalTimeout.D() > 30*24*time.Hour {
		return p, apperr.InvalidField("protection.approval_timeout", "approval timeout must be 1s to 30 days")
	}
	return p, nil
}

// normalize checks t and fills defaults.
func (t TargetSpec) normalize() (TargetSpec, error) {
	if t.Kind == "" {
		t.Kind = KindNode
	}
	if t.Kind != KindNode && t.Kind != KindKubernetes {
		return t, apperr.InvalidField("target.kind", "target kind must be node or kubernetes")
	}
	if t.Replicas == 0 {
		t.Replicas = 1
	}
	if t.Replicas < 1 || t.Replicas > maxReplicas {
		return t, apperr.InvalidField("target.replicas", "replicas must be 1 to %d", maxReplicas)
	}
	if t.Port == 0 {
		t.Port = 8080
	}
	if t.Port < 1 || t.Port > 65535 {
		return t, apperr.InvalidField("target.port", "port must be 1 to 65535")
	}
	if t.HealthPath == "" {
		t.HealthPath = "/healthz"
	}
	if !strings.HasPrefix(t.HealthPath, "/") || len(t.HealthPath) > 200 || strings.ContainsAny(t.HealthPath, " \r\n\t#") {
		return t, apperr.InvalidField("target.health_path", "health path must start with / and hold no spaces (at most 200 bytes)")
	}
	if t.HealthTimeout == 0 {
		t.HealthTimeout = Duration(30 * time.Second)
	}
	if t.HealthTimeout.D() < 100*time.Millisecond || t.HealthTimeout.D() > maxHealthTimeout {
		return t, apperr.InvalidField("target.health_timeout", "health timeout must be 100ms to 10m")
	}
	var err error
	if t.Strategy, err = t.Strategy.normalize(); err != nil {
		return t, err
	}
	if len(t.Host) > 253 || strings.ContainsAny(t.Host, " /\\\r\n\t@") {
		return t, apperr.InvalidField("target.host", "host must be a host name")
	}
	if t.MemoryBytes == 0 {
		t.MemoryBytes = 256 << 20
	}
	if t.CPUMillis == 0 {
		t.CPUMillis = 1000
	}
	if t.Pids == 0 {
		t.Pids = 256
	}
	if t.MemoryBytes < 4<<20 || t.MemoryBytes > 64<<30 {
		return t, apperr.InvalidField("target.memory_bytes", "memory limit must be 4 MiB to 64 GiB")
	}
	if t.CPUMillis < 10 || t.CPUMillis > 64000 {
		return t, apperr.InvalidField("target.cpu_millis", "CPU limit must be 10 to 64000 millicores")
	}
	if t.Pids < 8 || t.Pids > 32768 {
		return t, apperr.InvalidField("target.pids", "process limit must be 8 to 32768")
	}
	return t, nil
}

func (s Strategy) normalize() (Strategy, error) {
	if s.Kind == "" {
		s.Kind = Rolling
	}
	switch s.Kind {
	case Recreate, Rolling, BlueGreen:
		if len(s.Steps) > 0 {
			return s, apperr.InvalidField("target.strategy.steps", "steps are for the canary strategy")
		}
	case Canary:
		if len(s.Steps) == 0 {
			s.Steps = []int{10, 50, 100}
		}
		if len(s.Steps) > maxCanarySteps {
			return s, apperr.InvalidField("target.strategy.steps", "at most %d canary steps", maxCanarySteps)
		}
		prev := 0
		for _, p := range s.Steps {
			if p <= prev || p > 100 {
				return s, apperr.InvalidField("target.strategy.steps", "canary steps are rising percentages from 1 to 100")
			}
			prev = p
		}
		if prev != 100 {
			return s, apperr.InvalidField("target.strategy.steps", "the last canary step must be 100")
		}
	default:
		return s, apperr.InvalidField("target.strategy.kind", "strategy must be recreate, rolling, blue_green or canary")
	}
	if s.Pause.D() > maxPause {
		return s, apperr.InvalidField("target.strategy.pause", "pause must be at most 24h")
	}
	return s, nil
}

// Release is an immutable record of what to run: an image by digest,
// its configuration, references to its secrets (never their values),
// where it came from and why. Promotion to another environment deploys
// the same release: nothing is rebuilt.
type Release struct {
	ID        int64  `json:"id"`
	OrgID     int64  `json:"-"`
	ProjectID int64  `json:"-"`
	Number    int64  `json:"number"`
	Image     string `json:"image"`
	Digest    string `json:"digest"`
	// Config is the runtime configuration (environment variables,
	// command).
	Config ReleaseConfig `json:"config"`
	// SecretRefs name secrets in the vault, injected as environment
	// variables when an instance starts.
	SecretRefs   []SecretRef `json:"secret_refs"`
	SourceCommit string      `json:"source_commit,omitempty"`
	SourceBranch string      `json:"source_branch,omitempty"`
	Repository   string      `json:"repository,omitempty"`
	PullRequest  int64       `json:"pull_request,omitempty"`
	WorkItems    []string    `json:"work_items"`
	Reason       string      `json:"reason,omitempty"`
	CreatedBy    string      `json:"created_by"`
	CreatedAt    time.Time   `json:"created_at"`
}

// Ref is the image reference by digest.
func (r Release) Ref() string { return r.Image + "@" + r.Digest }

// ReleaseConfig is a release's runtime configuration.
type ReleaseConfig struct {
	Env     map[string]string `json:"env,omitempty"`
	Command []string          `json:"command,omitempty"`
	// Manifests are the project's own Kubernetes manifests (YAML
	// documents), applied instead of the generated Deployment and
	// Service on Kubernetes targets; ${IMAGE} in them becomes the
	// release's image by digest. Namespaced objects only.
	Manifests string `json:"manifests,omitempty"`
}

// maxManifests bounds a release's manifests.
const maxManifests = 256 << 10

// SecretRef injects a vault secret as an environment variable.
type SecretRef struct {
	// Env is the variable name.
	Env string `json:"env"`
	// Ref names the secret in the vault (path, optionally #key).
	Ref string `json:"ref"`
}

// Value is a secret value; it never shows in logs.
type Value string

// LogValue hides the value from slog.
func (Value) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String hides the value from fmt.
func (Value) String() string { return "[redacted]" }

var (
	envVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	imageRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9._:-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)+$`)
	commitRE = regexp.MustCompile(`^[a-f0-9]{7,64}$`)
	refRE    = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,200}(#[A-Za-z0-9._-]{1,100})?$`)
)

// validate checks a new release.
func (r *Release) validate() error {
	if !imageRE.MatchString(r.Image) || len(r.Image) > 255 {
		return apperr.InvalidField("image", "image must be a repository reference such as registry.example.com/acme/web (no tag, no digest)")
	}
	if !digestRE.MatchString(r.Digest) {
		return apperr.InvalidField("digest", "digest must be sha256: and 64 hex digits: releases name images by digest")
	}
	if len(r.Config.Env) > maxEnvVars {
		return apperr.InvalidField("config.env", "at most %d environment variables", maxEnvVars)
	}
	for k, v := range r.Config.Env {
		if !envVarRE.MatchString(k) {
			return apperr.InvalidField("config.env", "bad environment variable name %q", truncate(k, 64))
		}
		if len(v) > maxEnvValue || strings.ContainsRune(v, 0) {
			return apperr.InvalidField("config.env", "the value of %s is over %d bytes or holds a NUL", k, maxEnvValue)
		}
		if k == "PORT" {
			return apperr.InvalidField("config.env", "PORT is set by the runtime from the environment's port")
		}
	}
	if len(r.Config.Command) > maxCommandArgs {
		return apperr.InvalidField("config.command", "at most %d command arguments", maxCommandArgs)
	}
	for _, a := range r.Config.Command {
		if len(a) > maxEnvValue || strings.ContainsRune(a, 0) {
			return apperr.InvalidField("config.command", "command arguments are at most %d bytes without NUL", maxEnvValue)
		}
	}
	if len(r.Config.Manifests) > maxManifests || strings.ContainsRune(r.Config.Manifests, 0) {
		return apperr.InvalidField("config.manifests", "manifests are at most %d bytes of YAML", maxManifests)
	}
	if len(r.SecretRefs) > maxSecretRefs {
		return apperr.InvalidField("secret_refs", "at most %d secret references", maxSecretRefs)
	}
	seen := map[string]bool{}
	for _, s := range r.SecretRefs {
		if !envVarRE.MatchString(s.Env) || !refRE.MatchString(s.Ref) {
			return apperr.InvalidField("secret_refs", "a secret reference is {env: NAME, ref: path[#key]}")
		}
		if seen[s.Env] || r.Config.Env[s.Env] != "" {
			return apperr.InvalidField("secret_refs", "variable %s is set twice", s.Env)
		}
		seen[s.Env] = true
	}
	if r.SourceCommit != "" && !commitRE.MatchString(r.SourceCommit) {
		return apperr.InvalidField("source_commit", "source commit must be a hex object id")
	}
	if len(r.SourceBranch) > 200 || strings.ContainsAny(r.SourceBranch, " \r\n\t~^:?*[\\") {
		return apperr.InvalidField("source_branch", "source branch must be a branch name")
	}
	if len(r.Repository) > 200 || strings.ContainsAny(r.Repository, " \r\n\t") {
		return apperr.InvalidField("repository", "repository must be ORG/NAME")
	}
	if r.PullRequest < 0 {
		return apperr.InvalidField("pull_request", "pull request must be a positive number")
	}
	if len(r.WorkItems) > maxWorkItems {
		return apperr.InvalidField("work_items", "at most %d work items", maxWorkItems)
	}
	for _, w := range r.WorkItems {
		if w == "" || len(w) > 100 || strings.ContainsAny(w, "\r\n\t") {
			return apperr.InvalidField("work_items", "work items are 1-100 bytes on one line")
		}
	}
	if len(r.Reason) > maxReason {
		return apperr.InvalidField("reason", "reason must be at most %d bytes", maxReason)
	}
	if r.WorkItems == nil {
		r.WorkItems = []string{}
	}
	if r.SecretRefs == nil {
		r.SecretRefs = []SecretRef{}
	}
	return nil
}

// Deployment states.
const (
	StateAwaitingApproval = "awaiting_approval"
	StateQueued           = "queued"
	StateRunning          = "running"
	StateSucceeded        = "succeeded"
	// StateRolledBack: the new release failed (or was interrupted) and
	// the previous one runs again.
	StateRolledBack = "rolled_back"
	// StateFailed: it failed and there was nothing to roll back to.
	StateFailed   = "failed"
	StateRejected = "rejected"
	StateExpired  = "expired"
	StateDenied   = "denied"
)

func terminal(state string) bool {
	switch state {
	case StateSucceeded, StateRolledBack, StateFailed, StateRejected, StateExpired, StateDenied:
		return true
	}
	return false
}

// Deployment is a request to run a release in an environment, and what
// became of it.
type Deployment struct {
	ID                int64          `json:"id"`
	OrgID             int64          `json:"-"`
	ProjectID         int64          `json:"-"`
	EnvironmentID     int64          `json:"environment_id"`
	Environment       string         `json:"environment"`
	ReleaseID         int64          `json:"release_id"`
	ReleaseNumber     int64          `json:"release_number"`
	PreviousReleaseID int64          `json:"previous_release_id"`
	Strategy          string         `json:"strategy"`
	State             string         `json:"state"`
	Decisions         []GateDecision `json:"decisions"`
	Approvals         []Approval     `json:"approvals"`
	Message           string         `json:"message,omitempty"`
	Step              string         `json:"step,omitempty"`
	Reason            string         `json:"reason,omitempty"`
	CreatedBy         string         `json:"created_by"`
	CreatedByID       int64          `json:"-"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
	FinishedAt        *time.Time     `json:"finished_at,omitempty"`
	// Journal is the rollout's durable steps (shown for one deployment,
	// not in lists).
	Journal []JournalEntry `json:"journal,omitempty"`
}

// Approval is one person's answer to a deployment waiting for approval.
type Approval struct {
	User    string    `json:"user"`
	UserID  int64     `json:"-"`
	Approve bool      `json:"approve"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
