package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store"
)

const zeroSHA = "0000000000000000000000000000000000000000"

// SystemActor names Rampart itself in audit entries and status checks,
// and is the actor of scheduled runs.
const SystemActor = systemActor

const systemActor = "rampart-pipeline"

func systemCtx(ctx context.Context) context.Context {
	if reqinfo.From(ctx).ActorName != "" {
		return ctx
	}
	return reqinfo.WithActor(ctx, 0, systemActor)
}

// Subscribe registers the pipeline's event handlers: pushes and pull
// requests start runs. Handlers are idempotent (one run per event).
func (s *Service) Subscribe(bus *events.Bus) {
	bus.Subscribe("pipeline.triggers", []string{scm.EventPush, scm.EventPullRequest}, s.onEvent)
}

type pushEvent struct {
	Repo          string `json:"repo"`
	RepoID        int64  `json:"repo_id"`
	Ref           string `json:"ref"`
	Before        string `json:"before"`
	After         string `json:"after"`
	DefaultBranch bool   `json:"default_branch"`
	Pusher        string `json:"pusher"`
}

type pullEvent struct {
	Action  string `json:"action"`
	Repo    string `json:"repo"`
	RepoID  int64  `json:"repo_id"`
	Number  int64  `json:"number"`
	Base    string `json:"base"`
	Head    string `json:"head"`
	HeadSHA string `json:"head_sha"`
	Sender  string `json:"sender"`
}

func (s *Service) onEvent(ctx context.Context, e events.Event) error {
	key := "event:" + strconv.FormatInt(e.Seq, 10)
	switch e.Type {
	case scm.EventPush:
		var p pushEvent
		if err := e.Decode(&p); err != nil {
			s.log.Warn("bad push event", "err", err)
			return nil
		}
		if p.After == zeroSHA || p.After == "" {
			return nil
		}
		repo, err := s.d.Repos.RepoByID(ctx, p.RepoID)
		if apperr.KindOf(err) == apperr.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = s.trigger(ctx, trigger{repo: repo, key: key, event: EventPush, ref: p.Ref, sha: p.After, before: p.Before, actor: p.Pusher})
		if err != nil && apperr.KindOf(err) == apperr.Internal {
			return err
		}
		if repo.DefaultBranch != "" && p.Ref == "refs/heads/"+repo.DefaultBranch {
			if err := s.syncSchedules(ctx, repo, p.After); err != nil {
				s.log.Warn("schedules", "repo", repo.FullName(), "err", err)
			}
		}
		return nil
	case scm.EventPullRequest:
		var p pullEvent
		if err := e.Decode(&p); err != nil {
			s.log.Warn("bad pull_request event", "err", err)
			return nil
		}
		switch p.Action {
		case "opened", "synchronized", "reopened":
		default:
			return nil
		}
		repo, err := s.d.Repos.RepoByID(ctx, p.RepoID)
		if apperr.KindOf(err) == apperr.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = s.trigger(ctx, trigger{repo: repo, key: key, event: EventPullRequest, ref: "refs/pull/" + strconv.FormatInt(p.Number, 10) + "/head",
			sha: p.HeadSHA, base: p.Base, pr: p.Number, actor: p.Sender})
		if err != nil && apperr.KindOf(err) == apperr.Internal {
			return err
		}
	}
	return nil
}

type trigger struct {
	repo    scm.Repo
	key     string
	event   string
	ref     string
	sha     string
	before  string // pushes: for path filters
	base    string // pull requests: the base branch
	pr      int64
	actor   string
	rerunOf int64
	manual  bool // audit as a manual action
	// scheduled runs match when the definition still has schedules.
	scheduled bool
}

// trigger reads the definition at the commit and records a run (queued,
// or failed with the reason when the definition is invalid). It returns
// a zero Run when the definition's triggers do not match.
func (s *Service) trigger(ctx context.Context, t trigger) (Run, error) {
	repoPath := s.d.Repos.Path(t.repo)
	data, found, err := readDefinition(ctx, repoPath, t.sha)
	if err != nil {
		return Run{}, err
	}
	if !found {
		if t.manual {
			return Run{}, apperr.E(apperr.Invalid, "commit %s has no %s", short(t.sha), DefinitionPath)
		}
		return Run{}, nil
	}
	r := Run{RepoID: t.repo.ID, OrgID: t.repo.OrgID, ProjectID: t.repo.ProjectID, Repo: t.repo.FullName(), Event: t.event,
		Ref: t.ref, SHA: t.sha, PR: t.pr, Actor: t.actor, Status: StatusQueued, RerunOf: t.rerunOf, CreatedAt: s.now()}
	if r.Actor == "" {
		r.Actor = systemActor
	}
	def, perr := Parse(data)
	var jobs []*Job
	if perr != nil {
		r.Status, r.Reason, r.FinishedAt = StatusFailed, "invalid pipeline definition: "+perr.Error(), s.now()
	} else {
		if t.scheduled && len(def.On.Schedules) == 0 {
			return Run{}, nil
		}
		if !t.manual && t.rerunOf == 0 && !t.scheduled {
			match, err := s.matches(ctx, def, t, repoPath)
			if err != nil {
				return Run{}, err
			}
			if !match {
				return Run{}, nil
			}
		}
		if t.manual && t.rerunOf == 0 && !def.On.Manual && !def.On.defaulted {
			return Run{}, apperr.E(apperr.Invalid, "this pipeline does not allow manual runs: add `manual: true` under `on:`")
		}
		if reason := s.checkSecrets(ctx, t.repo, r, def); reason != "" {
			r.Status, r.Reason, r.FinishedAt = StatusFailed, reason, s.now()
		}
		jobs = def.Jobs
	}
	if t.manual && r.Status == StatusFailed {
		return Run{}, apperr.E(apperr.Invalid, "%s", r.Reason)
	}
	var created bool
	err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		var err error
		r, created, err = s.runs.insert(ctx, tx, newRun{Run: r, TriggerKey: t.key, Jobs: jobs})
		if err != nil || !created || !t.manual {
			return err
		}
		action := "pipeline.run.start"
		if t.rerunOf != 0 {
			action = "pipeline.run.rerun"
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: r.OrgID, Target: runTarget(r),
			Details: map[string]any{"ref": r.Ref, "sha": r.SHA, "rerun_of": r.RerunOf}})
	})
	if err != nil {
		return Run{}, err
	}
	if created {
		s.log.Info("run created", "run", r.ID, "repo", r.Repo, "number", r.Number, "event", r.Event, "status", r.Status)
		s.postStatus(ctx, r)
		s.poke()
	}
	return r, nil
}

func runTarget(r Run) audit.Target {
	return audit.Target{Type: "pipeline_run", ID: strconv.FormatInt(r.ID, 10), Name: r.Repo + "#" + strconv.FormatInt(r.Number, 10)}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// checkSecrets resolves every secret reference before a run starts; the
// reason is "" when all resolve.
func (s *Service) checkSecrets(ctx context.Context, repo scm.Repo, r Run, def *Definition) string {
	refs := def.SecretRefs()
	if len(refs) == 0 {
		return ""
	}
	if s.d.Secrets == nil {
		return "the pipeline references secrets (" + strings.Join(refs, ", ") + ") but no secret source configured on this server"
	}
	scope := SecretScope{OrgID: repo.OrgID, ProjectID: repo.ProjectID, RepoID: repo.ID, Repo: repo.FullName(), Ref: r.Ref, Actor: r.Actor}
	var missing []string
	for _, ref := range refs {
		v, err := s.d.Secrets.Secret(ctx, scope, ref)
		switch {
		case err != nil && apperr.KindOf(err) == apperr.NotFound:
			missing = append(missing, ref)
		case err != nil && apperr.KindOf(err) == apperr.Forbidden, err != nil && apperr.KindOf(err) == apperr.Invalid:
			return "secret " + ref + ": " + apperr.Message(err)
		case err != nil:
			return "secret " + ref + " could not be read"
		case len(v) < minSecretLen:
			return fmt.Sprintf("secret %s is shorter than %d bytes: it could not be masked in logs", ref, minSecretLen)
		}
	}
	if len(missing) > 0 {
		return "missing secrets: " + strings.Join(missing, ", ")
	}
	return ""
}

// matches applies the definition's triggers to an event.
func (s *Service) matches(ctx context.Context, def *Definition, t trigger, repoPath string) (bool, error) {
	switch t.event {
	case EventPush:
		f := def.On.Push
		if f == nil {
			return false, nil
		}
		if tag, ok := cutPrefix(t.ref, "refs/tags/"); ok {
			return globAny(f.Tags, tag, false), nil
		}
		branch, ok := cutPrefix(t.ref, "refs/heads/")
		if !ok || !globAny(f.Branches, branch, true) {
			return false, nil
		}
		if len(f.Paths) == 0 && len(f.PathsIgnore) == 0 {
			return true, nil
		}
		if t.before == "" || t.before == zeroSHA {
			return true, nil
		}
		files, err := changedFiles(ctx, repoPath, t.before, t.sha)
		if err != nil {
			return true, nil // history rewritten beyond reach: run rather than skip
		}
		for _, file := range files {
			if (len(f.Paths) == 0 || globAny(f.Paths, file, true)) && !globAny(f.PathsIgnore, file, false) {
				return true, nil
			}
		}
		return false, nil
	case EventPullRequest:
		f := def.On.PullRequest
		return f != nil && globAny(f.Branches, t.base, true), nil
	}
	return true, nil
}

// globAny matches name against glob patterns where * stays within a path
// element and ** crosses elements; an empty list gives emptyMatches.
func globAny(patterns []string, name string, emptyMatches bool) bool {
	if len(patterns) == 0 {
		return emptyMatches
	}
	for _, p := range patterns {
		if glob(p, name) {
			return true
		}
	}
	return false
}

func glob(pattern, name string) bool {
	if pattern == "**" {
		return true
	}
	pp := strings.Split(pattern, "/")
	np := strings.Split(name, "/")
	var match func(i, j int) bool
	match = func(i, j int) bool {
		for i < len(pp) {
			if pp[i] == "**" {
				for k := j; k <= len(np); k++ {
					if match(i+1, k) {
						return true
					}
				}
				return false
			}
			if j >= len(np) {
				return false
			}
			if ok, _ := path.Match(pp[i], np[j]); !ok {
				return false
			}
			i++
			j++
		}
		return j == len(np)
	}
	return match(0, 0)
}

// readDefinition reads .rampart/pipeline.yaml at a commit of a bare
// repository; found is false when the commit has none.
func readDefinition(ctx context.Context, repoPath, sha string) ([]byte, bool, error) {
	if !validSHA(sha) {
		return nil, false, apperr.E(apperr.Invalid, "invalid commit id")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	obj := sha + ":" + DefinitionPath
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "--git-dir", repoPath, "cat-file", "-s", obj)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if strings.Contains(errb.String(), "does not exist") || strings.Contains(errb.String(), "Not a valid object") ||
			strings.Contains(errb.String(), "exists on disk, but not in") || strings.Contains(errb.String(), "path") {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read %s at %s: %s", DefinitionPath, short(sha), strings.TrimSpace(errb.String()))
	}
	size, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		return nil, false, fmt.Errorf("size of %s: %w", DefinitionPath, err)
	}
	if size > MaxDefinitionBytes {
		// Parse reports the size with the right message.
		return make([]byte, size), true, nil
	}
	out.Reset()
	errb.Reset()
	cmd = exec.CommandContext(ctx, "git", "--git-dir", repoPath, "cat-file", "blob", obj)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %s", DefinitionPath, short(sha), strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), true, nil
}

func changedFiles(ctx context.Context, repoPath, before, after string) ([]string, error) {
	if !validSHA(before) || !validSHA(after) {
		return nil, errors.New("invalid commit id")
	}
	out, err := exec.CommandContext(ctx, "git", "--git-dir", repoPath, "diff", "--name-only", "--no-renames", before, after, "--").Output()
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolveRef resolves a branch, tag or commit of a repository.
func resolveRef(ctx context.Context, repoPath, ref string) (fullRef, sha string, err error) {
	if ref == "" || len(ref) > 250 || strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \t\n\\:~^?*[") {
		return "", "", apperr.InvalidField("ref", "invalid ref %q", ref)
	}
	for _, cand := range []string{ref, "refs/heads/" + ref, "refs/tags/" + ref} {
		out, err := exec.CommandContext(ctx, "git", "--git-dir", repoPath, "rev-parse", "--verify", "--quiet", "--end-of-options", cand+"^{commit}").Output()
		if err == nil {
			sha := strings.TrimSpace(string(out))
			full := cand
			if validSHA(ref) {
				full = ""
			} else if !strings.HasPrefix(cand, "refs/") {
				continue
			}
			return full, sha, nil
		}
	}
	return "", "", apperr.InvalidField("ref", "ref %q is not a branch, tag or commit of this repository", ref)
}

// StartManual starts a run of the repository's pipeline at ref (a branch,
// tag or commit; the default branch when empty), by the caller in ctx.
func (s *Service) StartManual(ctx context.Context, repo scm.Repo, ref string) (Run, error) {
	if ref == "" {
		ref = repo.DefaultBranch
	}
	full, sha, err := resolveRef(ctx, s.d.Repos.Path(repo), ref)
	if err != nil {
		return Run{}, err
	}
	if full == "" {
		full = sha
	}
	actor := reqinfo.From(ctx).ActorName
	key := "manual:" + strconv.FormatInt(repo.ID, 10) + ":" + strconv.FormatInt(s.now().UnixNano(), 10)
	return s.trigger(ctx, trigger{repo: repo, key: key, event: EventManual, ref: full, sha: sha, actor: actor, manual: true})
}

// Rerun starts a new run with the same commit and event as run r.
func (s *Service) Rerun(ctx context.Context, repo scm.Repo, r Run) (Run, error) {
	if !finished(r.Status) {
		return Run{}, apperr.E(apperr.Conflict, "run #%d is still %s: cancel it or wait", r.Number, r.Status)
	}
	key := "rerun:" + strconv.FormatInt(r.ID, 10) + ":" + strconv.FormatInt(s.now().UnixNano(), 10)
	return s.trigger(ctx, trigger{repo: repo, key: key, event: r.Event, ref: r.Ref, sha: r.SHA, pr: r.PR,
		actor: reqinfo.From(ctx).ActorName, rerunOf: r.ID, manual: true})
}

// Cancel cancels a queued or running run: jobs not started are cancelled,
// running ones killed.
func (s *Service) Cancel(ctx context.Context, r Run) (Run, error) {
	if finished(r.Status) {
		return r, apperr.E(apperr.Conflict, "run #%d has already finished (%s)", r.Number, r.Status)
	}
	var running []int64
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		now := store.Time(s.now())
		n, err := tx.Exec(ctx, "UPDATE pipeline_runs SET status = 'cancelled', reason = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
			"cancelled by "+reqinfo.From(ctx).ActorName, now, r.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Conflict, "run #%d has already finished", r.Number)
		}
		rows, err := tx.Query(ctx, "SELECT id FROM pipeline_jobs WHERE run_id = ? AND status = 'running'", r.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			running = append(running, id)
		}
		rows.Close()
		if _, err := tx.Exec(ctx, "UPDATE pipeline_jobs SET status = 'cancelled', reason = 'run cancelled', finished_at = ? WHERE run_id = ? AND status IN ('pending', 'queued', 'running')",
			now, r.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE pipeline_steps SET status = 'cancelled' WHERE status IN ('pending', 'queued', 'running') AND job_id IN (SELECT id FROM pipeline_jobs WHERE run_id = ?)", r.ID); err != nil {
			return err
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "pipeline.run.cancel", OrgID: r.OrgID, Target: runTarget(r)})
	})
	if err != nil {
		return r, err
	}
	s.mu.Lock()
	for _, id := range running {
		if c := s.cancel[id]; c != nil {
			c(errCancelled)
		}
	}
	s.mu.Unlock()
	r, err = s.runs.run(ctx, s.d.DB, r.ID)
	if err == nil {
		s.postStatus(ctx, r)
	}
	return r, err
}

var errCancelled = errors.New("run cancelled")
