package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

const selectDeployment = `SELECT d.id, d.org_id, d.project_id, d.environment_id, e.name, d.release_id, r.number, d.previous_release_id,
	d.strategy, d.state, d.decisions, d.message, d.step, d.reason, d.created_by, d.created_by_id, d.created_at, d.updated_at, d.finished_at
	FROM deploy_deployments d JOIN deploy_environments e ON e.id = d.environment_id JOIN deploy_releases r ON r.id = d.release_id`

func (s *Service) deployments(ctx context.Context, q store.Querier, where string, args ...any) ([]Deployment, error) {
	rows, err := q.Query(ctx, selectDeployment+" "+where, args...)
	if err != nil {
		return nil, err
	}
	out := []Deployment{}
	for rows.Next() {
		var (
			d        Deployment
			dec      string
			finished time.Time
		)
		if err := rows.Scan(&d.ID, &d.OrgID, &d.ProjectID, &d.EnvironmentID, &d.Environment, &d.ReleaseID, &d.ReleaseNumber, &d.PreviousReleaseID,
			&d.Strategy, &d.State, &dec, &d.Message, &d.Step, &d.Reason, &d.CreatedBy, &d.CreatedByID, store.TimeDest(&d.CreatedAt),
			store.TimeDest(&d.UpdatedAt), store.TimeDest(&finished)); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(dec), &d.Decisions); err != nil {
			rows.Close()
			return nil, fmt.Errorf("deployment %d: decisions: %w", d.ID, err)
		}
		if !finished.IsZero() && finished.Unix() > 0 {
			d.FinishedAt = &finished
		}
		out = append(out, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Approvals, err = s.approvals(ctx, q, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) approvals(ctx context.Context, q store.Querier, id int64) ([]Approval, error) {
	rows, err := q.Query(ctx, "SELECT user_id, username, approve, comment, at FROM deploy_approvals WHERE deployment_id = ? ORDER BY id", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Approval{}
	for rows.Next() {
		var a Approval
		if err := rows.Scan(&a.UserID, &a.User, &a.Approve, &a.Comment, store.TimeDest(&a.At)); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Deployments lists a project's deployments, newest first, optionally
// of one environment.
func (s *Service) Deployments(ctx context.Context, sc Scope, envName string, limit int) ([]Deployment, error) {
	if envName != "" {
		e, err := s.env(ctx, s.d.DB, sc, envName)
		if err != nil {
			return nil, err
		}
		return s.deployments(ctx, s.d.DB, "WHERE d.environment_id = ? ORDER BY d.id DESC LIMIT ?", e.ID, limit)
	}
	return s.deployments(ctx, s.d.DB, "WHERE d.project_id = ? ORDER BY d.id DESC LIMIT ?", sc.ProjectID, limit)
}

// Deployment returns one of a project's deployments.
func (s *Service) Deployment(ctx context.Context, sc Scope, id int64) (Deployment, error) {
	return s.deployment(ctx, s.d.DB, sc, id)
}

func (s *Service) deployment(ctx context.Context, q store.Querier, sc Scope, id int64) (Deployment, error) {
	ds, err := s.deployments(ctx, q, "WHERE d.id = ? AND d.project_id = ?", id, sc.ProjectID)
	if err != nil {
		return Deployment{}, err
	}
	if len(ds) == 0 {
		return Deployment{}, apperr.E(apperr.NotFound, "deployment %d not found in %s", id, sc)
	}
	if ds[0].Journal, err = s.journal(ctx, q, id); err != nil {
		return Deployment{}, err
	}
	return ds[0], nil
}

// DeployRequest asks for a release to run in an environment. Release
// names the release by number; FromEnvironment instead promotes the
// release running in another environment (the same digest: nothing is
// rebuilt).
type DeployRequest struct {
	Environment     string `json:"environment"`
	Release         int64  `json:"release,omitempty"`
	FromEnvironment string `json:"from_environment,omitempty"`
	Reason          string `json:"reason,omitempty"`
	// Strategy overrides the environment's strategy kind for this one
	// deployment (its settings stay).
	Strategy string `json:"strategy,omitempty"`
}

// Deploy checks a deployment against the environment's rules and the
// policy gates and records it: awaiting approval, queued to run, or
// denied (then the error says why and the record keeps the decisions).
func (s *Service) Deploy(ctx context.Context, sc Scope, req DeployRequest) (Deployment, error) {
	if len(req.Reason) > maxReason {
		return Deployment{}, apperr.InvalidField("reason", "reason must be at most %d bytes", maxReason)
	}
	if req.Environment == "" {
		return Deployment{}, apperr.InvalidField("environment", "name the environment to deploy to")
	}
	e, err := s.env(ctx, s.d.DB, sc, req.Environment)
	if err != nil {
		return Deployment{}, err
	}
	var rel Release
	switch {
	case req.Release != 0 && req.FromEnvironment != "":
		return Deployment{}, apperr.InvalidField("release", "give release or from_environment, not both")
	case req.Release != 0:
		if rel, err = s.Release(ctx, sc, req.Release); err != nil {
			return Deployment{}, err
		}
	case req.FromEnvironment != "":
		from, err := s.env(ctx, s.d.DB, sc, req.FromEnvironment)
		if err != nil {
			return Deployment{}, err
		}
		if from.CurrentReleaseID == 0 {
			return Deployment{}, apperr.E(apperr.Conflict, "environment %s runs no release to promote", from.Name)
		}
		if rel, err = s.releaseByID(ctx, s.d.DB, from.CurrentReleaseID); err != nil {
			return Deployment{}, err
		}
	default:
		return Deployment{}, apperr.InvalidField("release", "give the release number or from_environment")
	}
	strategy := e.Target.Strategy.Kind
	if req.Strategy != "" {
		st := e.Target.Strategy
		st.Kind = req.Strategy
		if st.Kind != Canary {
			st.Steps = nil
		}
		if _, err := st.normalize(); err != nil {
			return Deployment{}, err
		}
		strategy = req.Strategy
	}
	p := e.Protection
	if !branchAllowed(p.AllowedBranches, rel.SourceBranch) {
		s.auditDenied(ctx, sc, e, rel, "branch "+rel.SourceBranch+" not allowed")
		return Deployment{}, apperr.E(apperr.Forbidden, "release #%d comes from branch %q; environment %s takes releases from %s only",
			rel.Number, rel.SourceBranch, e.Name, strings.Join(p.AllowedBranches, ", "))
	}
	now := s.d.Now()
	if !windowOpen(p.Windows, now) {
		s.auditDenied(ctx, sc, e, rel, "outside deployment windows")
		return Deployment{}, apperr.E(apperr.Forbidden, "environment %s takes deployments only in its windows (UTC): %s", e.Name, windowsString(p.Windows))
	}
	decisions, allow := s.decide(ctx, sc, e, rel)
	state := StateQueued
	msg := ""
	if !allow {
		state, msg = StateDenied, "denied by policy: "+denyReasons(decisions)
	} else if p.RequiredApprovals > 0 {
		state = StateAwaitingApproval
		msg = fmt.Sprintf("waiting for %d approval(s)", p.RequiredApprovals)
	}
	dec, _ := json.Marshal(decisions)
	uid, who := actor(ctx)
	var out Deployment
	err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		t := store.Time(now)
		fin := any(int64(0))
		if terminal(state) {
			fin = t
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO deploy_deployments (org_id, project_id, environment_id, release_id, previous_release_id, strategy, state,
			decisions, message, reason, created_by, created_by_id, created_at, updated_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, sc.OrgID, sc.ProjectID, e.ID, rel.ID, e.CurrentReleaseID, strategy, state,
			string(dec), msg, req.Reason, who, uid, t, t, fin).Scan(&id); err != nil {
			return err
		}
		var err error
		if out, err = s.deployment(ctx, tx, sc, id); err != nil {
			return err
		}
		ids := make([]string, 0, len(decisions))
		for _, d := range decisions {
			ids = append(ids, d.Gate+":"+strconv.FormatBool(d.Allow)+":"+d.ID)
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.deployment.create", OrgID: sc.OrgID, Outcome: outcome(allow),
			Target: audit.Target{Type: "deployment", ID: strconv.FormatInt(id, 10), Name: sc.String() + "/" + e.Name},
			Details: map[string]any{"release": rel.Number, "digest": rel.Digest, "state": state, "strategy": strategy,
				"decisions": ids, "reason": req.Reason}})
	})
	if err != nil {
		return Deployment{}, err
	}
	if !allow {
		return out, apperr.E(apperr.Forbidden, "deployment %d of release #%d to %s denied by policy: %s", out.ID, rel.Number, e.Name, denyReasons(decisions))
	}
	s.poke()
	return out, nil
}

func outcome(ok bool) string {
	if ok {
		return audit.Success
	}
	return audit.Denied
}

func windowsString(ws []Window) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		days := "every day"
		if len(w.Days) > 0 {
			days = strings.Join(w.Days, ",")
		}
		parts[i] = days + " " + w.Start + "-" + w.End
	}
	return strings.Join(parts, "; ")
}

func denyReasons(ds []GateDecision) string {
	var parts []string
	for _, d := range ds {
		if !d.Allow {
			r := strings.Join(d.Reasons, "; ")
			if r == "" {
				r = "denied"
			}
			parts = append(parts, d.Gate+": "+r)
		}
	}
	return truncate(strings.Join(parts, " | "), 2000)
}

func (s *Service) auditDenied(ctx context.Context, sc Scope, e Environment, rel Release, why string) {
	if err := s.d.Audit.Append(ctx, audit.Record{Action: "deploy.deployment.create", OrgID: sc.OrgID, Outcome: audit.Denied,
		Target:  audit.Target{Type: "environment", ID: strconv.FormatInt(e.ID, 10), Name: sc.String() + "/" + e.Name},
		Details: map[string]any{"release": rel.Number, "digest": rel.Digest, "why": why}}); err != nil {
		s.log.Error("audit denied deployment", logging.KeyErr, err)
	}
}

// decide asks the pre-deploy gate and the environment's required gates.
func (s *Service) decide(ctx context.Context, sc Scope, e Environment, rel Release) ([]GateDecision, bool) {
	gates := append([]string{GatePreDeploy}, e.Protection.RequiredGates...)
	// The document follows policy's pre-deploy schema (release,
	// environment, images) with deploy's own fields beside; the wiring
	// to policy adds each image's evidence (scan, signatures,
	// provenance) from the registry.
	host, _, _ := strings.Cut(rel.Image, "/")
	doc := map[string]any{
		"release": map[string]any{"name": sc.String(), "version": strconv.FormatInt(rel.Number, 10), "number": rel.Number,
			"image": rel.Image, "digest": rel.Digest, "ref": rel.Ref(), "source_commit": rel.SourceCommit, "source_branch": rel.SourceBranch,
			"repository": rel.Repository, "pull_request": rel.PullRequest, "work_items": rel.WorkItems},
		"environment": map[string]any{"name": e.Name, "protected": e.Protection.RequiredApprovals > 0 || len(e.Protection.AllowedBranches) > 0,
			"target": e.Target.Kind, "required_approvals": e.Protection.RequiredApprovals},
		"images":  []any{map[string]any{"reference": rel.Ref(), "repository": rel.Image, "registry": host, "digest": rel.Digest}},
		"project": sc.String(),
	}
	var out []GateDecision
	allow := true
	for _, g := range slices.Compact(gates) {
		if s.d.Gate == nil {
			d := GateDecision{Gate: g, Allow: g == GatePreDeploy, Reasons: []string{"no policy engine is configured"}}
			allow = allow && d.Allow
			out = append(out, d)
			continue
		}
		d, err := s.d.Gate.Decide(ctx, g, GateInput{OrgID: sc.OrgID, Subject: fmt.Sprintf("release:%s#%d", sc, rel.Number),
			Environment: e.Name, Repository: rel.Repository, Document: doc})
		if err != nil {
			// Fail closed: a gate that cannot answer denies.
			s.log.Warn("policy gate failed", "gate", g, logging.KeyErr, err)
			d = GateDecision{Gate: g, Allow: false, Reasons: []string{"the gate could not decide: " + apperr.Message(err)}}
		}
		d.Gate = g
		allow = allow && d.Allow
		out = append(out, d)
	}
	return out, allow
}

// ApproveRequest approves or rejects a deployment.
type ApproveRequest struct {
	Approve bool   `json:"approve"`
	Comment string `json:"comment,omitempty"`
}

// Approve records a person's answer to a deployment waiting for
// approval. The person who asked for the deployment cannot approve it;
// when the environment names approvers only theirs count. One rejection
// ends the deployment; enough approvals queue it.
func (s *Service) Approve(ctx context.Context, sc Scope, id int64, req ApproveRequest) (Deployment, error) {
	if len(req.Comment) > maxReason {
		return Deployment{}, apperr.InvalidField("comment", "comment must be at most %d bytes", maxReason)
	}
	uid, who := actor(ctx)
	if uid == 0 {
		return Deployment{}, apperr.E(apperr.Unauthenticated, "sign in to approve")
	}
	var out Deployment
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		d, err := s.deployment(ctx, tx, sc, id)
		if err != nil {
			return err
		}
		if d.State != StateAwaitingApproval {
			return apperr.E(apperr.Conflict, "deployment %d is %s, not awaiting approval", id, d.State)
		}
		if d.CreatedByID == uid {
			return apperr.E(apperr.Forbidden, "you asked for this deployment: someone else must approve it")
		}
		es, err := s.envs(ctx, tx, "WHERE id = ?", d.EnvironmentID)
		if err != nil || len(es) == 0 {
			return errors.Join(err, errors.New("environment vanished"))
		}
		e := es[0]
		if len(e.Protection.Approvers) > 0 && !slices.Contains(e.Protection.Approvers, who) {
			return apperr.E(apperr.Forbidden, "environment %s is approved by %s only", e.Name, strings.Join(e.Protection.Approvers, ", "))
		}
		for _, a := range d.Approvals {
			if a.UserID == uid {
				return apperr.E(apperr.Conflict, "you already answered deployment %d", id)
			}
		}
		now := store.Time(s.d.Now())
		if _, err := tx.Exec(ctx, "INSERT INTO deploy_approvals (deployment_id, user_id, username, approve, comment, at) VALUES (?, ?, ?, ?, ?, ?)",
			id, uid, who, req.Approve, req.Comment, now); err != nil {
			return err
		}
		n := 1
		for _, a := range d.Approvals {
			if a.Approve {
				n++
			}
		}
		state, msg, fin := d.State, fmt.Sprintf("%d of %d approvals", n, e.Protection.RequiredApprovals), any(int64(0))
		action := "deploy.deployment.approve"
		switch {
		case !req.Approve:
			state, msg, fin, action = StateRejected, "rejected by "+who, now, "deploy.deployment.reject"
		case n >= e.Protection.RequiredApprovals:
			state, msg = StateQueued, "approved"
		}
		if _, err := tx.Exec(ctx, "UPDATE deploy_deployments SET state = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ?",
			state, msg, now, fin, id); err != nil {
			return err
		}
		if out, err = s.deployment(ctx, tx, sc, id); err != nil {
			return err
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: sc.OrgID,
			Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(id, 10), Name: sc.String() + "/" + e.Name},
			Details: map[string]any{"release": d.ReleaseNumber, "comment": truncate(req.Comment, 200), "state": state}})
	})
	if err == nil {
		s.poke()
	}
	return out, err
}

// Rollback deploys the environment's previous release again. It skips
// approvals (that release passed them) but not the policy gates.
func (s *Service) Rollback(ctx context.Context, sc Scope, envName, reason string) (Deployment, error) {
	e, err := s.env(ctx, s.d.DB, sc, envName)
	if err != nil {
		return Deployment{}, err
	}
	if e.PreviousReleaseID == 0 {
		return Deployment{}, apperr.E(apperr.Conflict, "environment %s has no previous release to roll back to", envName)
	}
	rel, err := s.releaseByID(ctx, s.d.DB, e.PreviousReleaseID)
	if err != nil {
		return Deployment{}, err
	}
	decisions, allow := s.decide(ctx, sc, e, rel)
	if !allow {
		return Deployment{}, apperr.E(apperr.Forbidden, "rollback to release #%d denied by policy: %s", rel.Number, denyReasons(decisions))
	}
	dec, _ := json.Marshal(decisions)
	uid, who := actor(ctx)
	if reason == "" {
		reason = "rollback"
	}
	var out Deployment
	err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		t := store.Time(s.d.Now())
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO deploy_deployments (org_id, project_id, environment_id, release_id, previous_release_id, strategy, state,
			decisions, message, reason, created_by, created_by_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, sc.OrgID, sc.ProjectID, e.ID, rel.ID, e.CurrentReleaseID, e.Target.Strategy.Kind,
			StateQueued, string(dec), "rollback", truncate(reason, maxReason), who, uid, t, t).Scan(&id); err != nil {
			return err
		}
		var err error
		if out, err = s.deployment(ctx, tx, sc, id); err != nil {
			return err
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.rollback", OrgID: sc.OrgID,
			Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(id, 10), Name: sc.String() + "/" + e.Name},
			Details: map[string]any{"release": rel.Number, "reason": truncate(reason, 200)}})
	})
	if err == nil {
		s.poke()
	}
	return out, err
}

func (s *Service) poke() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// ---- running deployments

// Run recovers interrupted rollouts and the environments' workloads,
// then runs queued deployments and expires unanswered approvals until
// ctx ends; it waits for rollouts in flight before returning.
func (s *Service) Run(ctx context.Context) error {
	s.recover(ctx)
	s.once.Do(func() { close(s.started) })
	t := time.NewTicker(s.d.Poll)
	defer t.Stop()
	defer s.wg.Wait()
	for {
		s.expire(ctx)
		s.dispatch(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.nudge:
		}
	}
}

// Started is closed once Run has recovered the environments.
func (s *Service) Started() <-chan struct{} { return s.started }

// expire ends deployments whose approvals did not come in time.
func (s *Service) expire(ctx context.Context) {
	ds, err := s.deployments(ctx, s.d.DB, "WHERE d.state = ?", StateAwaitingApproval)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list deployments awaiting approval", logging.KeyErr, err)
		}
		return
	}
	now := s.d.Now()
	for _, d := range ds {
		es, err := s.envs(ctx, s.d.DB, "WHERE id = ?", d.EnvironmentID)
		if err != nil || len(es) == 0 {
			continue
		}
		if now.Sub(d.CreatedAt) < es[0].Protection.ApprovalTimeout.D() {
			continue
		}
		err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
			n, err := tx.Exec(ctx, "UPDATE deploy_deployments SET state = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ? AND state = ?",
				StateExpired, "no approval within "+es[0].Protection.ApprovalTimeout.D().String()+"; the environment keeps its release",
				store.Time(now), store.Time(now), d.ID, StateAwaitingApproval)
			if err != nil || n == 0 {
				return err
			}
			return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.deployment.expire", OrgID: d.OrgID, ActorName: "system",
				Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(d.ID, 10), Name: es[0].Name},
				Details: map[string]any{"release": d.ReleaseNumber}})
		})
		if err != nil {
			s.log.Warn("expire deployment", "deployment", d.ID, logging.KeyErr, err)
		}
	}
}

// dispatch starts the oldest queued deployment of every environment
// that has no rollout in progress and whose window is open.
func (s *Service) dispatch(ctx context.Context) {
	ds, err := s.deployments(ctx, s.d.DB, "WHERE d.state = ? ORDER BY d.id", StateQueued)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list queued deployments", logging.KeyErr, err)
		}
		return
	}
	now := s.d.Now()
	for _, d := range ds {
		s.mu.Lock()
		busy := s.running[d.EnvironmentID]
		s.mu.Unlock()
		if busy || ctx.Err() != nil {
			continue
		}
		es, err := s.envs(ctx, s.d.DB, "WHERE id = ?", d.EnvironmentID)
		if err != nil || len(es) == 0 {
			continue
		}
		if !windowOpen(es[0].Protection.Windows, now) {
			continue
		}
		// Claim it: only one runner moves it from queued to running.
		n, err := s.d.DB.Exec(ctx, "UPDATE deploy_deployments SET state = ?, message = ?, updated_at = ? WHERE id = ? AND state = ?",
			StateRunning, "starting", store.Time(now), d.ID, StateQueued)
		if err != nil || n == 0 {
			continue
		}
		s.mu.Lock()
		s.running[d.EnvironmentID] = true
		s.mu.Unlock()
		d.State = StateRunning
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.running, d.EnvironmentID)
				s.mu.Unlock()
				s.poke()
			}()
			s.execute(ctx, es[0], d)
		})
	}
}

// plan gathers what a target needs for deployment d in environment e.
func (s *Service) plan(ctx context.Context, e Environment, d Deployment, withSecrets bool) (Plan, error) {
	sc := Scope{OrgID: e.OrgID, ProjectID: e.ProjectID, Org: e.Org, Project: e.Project, Env: e.Name, RequestedBy: d.CreatedBy}
	rel, err := s.releaseByID(ctx, s.d.DB, d.ReleaseID)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Deployment: d, Scope: sc, Env: e, Release: rel, Hook: s.d.Hook}
	if d.PreviousReleaseID != 0 {
		prev, err := s.releaseByID(ctx, s.d.DB, d.PreviousReleaseID)
		if err != nil {
			return Plan{}, err
		}
		p.Previous = &prev
	}
	if e.Target.Kind == KindKubernetes {
		c, err := s.connection(ctx, s.d.DB, e.ID, true)
		if err != nil {
			return Plan{}, apperr.Wrap(err, apperr.Invalid, "environment "+e.Name+" needs a service connection to its cluster")
		}
		p.Connection = &c
	}
	if withSecrets {
		if p.Secrets, err = s.resolve(ctx, sc, rel); err != nil {
			return Plan{}, err
		}
		if p.Previous != nil {
			// The previous release's secrets are resolved when a target
			// must start it again (rollback); see Plan.PreviousSecrets.
			if p.PreviousSecrets, err = s.resolve(ctx, sc, *p.Previous); err != nil {
				s.log.Warn("resolve the previous release's secrets", logging.KeyErr, err)
			}
		}
	}
	return p, nil
}

func (s *Service) resolve(ctx context.Context, sc Scope, rel Release) (map[string]Value, error) {
	if len(rel.SecretRefs) == 0 {
		return map[string]Value{}, nil
	}
	if s.d.Secrets == nil {
		return nil, apperr.E(apperr.Unavailable, "release #%d references secrets but no vault is configured", rel.Number)
	}
	sc.Release = rel.Number
	v, err := s.d.Secrets.Resolve(ctx, sc, rel.SecretRefs)
	if err != nil {
		return nil, fmt.Errorf("resolve the secrets of release #%d: %w", rel.Number, err)
	}
	return v, nil
}

// execute carries out a claimed deployment.
func (s *Service) execute(ctx context.Context, e Environment, d Deployment) {
	ctx = reqinfo.WithActor(ctx, 0, "deploy")
	log := s.log.With("deployment", d.ID, "environment", e.Name)
	if !s.gateBeforeRollout(ctx, e, d) {
		return
	}
	s.setEnvStatus(ctx, e.ID, "deploying", fmt.Sprintf("deploying release #%d (deployment %d)", d.ReleaseNumber, d.ID))
	tgt, ok := s.d.Targets[e.Target.Kind]
	var err error
	var p Plan
	if !ok {
		err = apperr.E(apperr.Unavailable, "this Rampart has no %s target", e.Target.Kind)
	} else if p, err = s.plan(ctx, e, d, true); err == nil {
		p.Progress = func(step string) {
			if _, err := s.d.DB.Exec(context.WithoutCancel(ctx), "UPDATE deploy_deployments SET step = ?, updated_at = ? WHERE id = ?",
				truncate(step, 500), store.Time(s.d.Now()), d.ID); err != nil {
				log.Warn("record step", logging.KeyErr, err)
			}
		}
		p.Record = s.recorder(d.ID)
		err = rollout(WithPuller(ctx, Puller{Scope: p.Scope, UserID: d.CreatedByID}), tgt, p)
	}
	if ctx.Err() != nil {
		// Rampart is stopping: leave the deployment running; recover
		// decides at the next start.
		log.Warn("rollout interrupted by shutdown", logging.KeyErr, err)
		return
	}
	s.finish(context.WithoutCancel(ctx), e, d, err)
}

// recorder returns a Plan.Record writing to deployment id's journal.
func (s *Service) recorder(id int64) func(ctx context.Context, kind, detail string) error {
	return func(ctx context.Context, kind, detail string) error {
		return s.record(context.WithoutCancel(ctx), id, kind, detail)
	}
}

// finish records a rollout's outcome.
func (s *Service) finish(ctx context.Context, e Environment, d Deployment, rerr error) {
	s.finishNote(ctx, e, d, rerr, "")
}

// finishNote records a rollout's outcome; note is added to the message
// of a success.
func (s *Service) finishNote(ctx context.Context, e Environment, d Deployment, rerr error, note string) {
	now := store.Time(s.d.Now())
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		state, msg, action := StateSucceeded, fmt.Sprintf("release #%d runs", d.ReleaseNumber), "deploy.deployment.succeed"
		if note != "" {
			msg += " (" + note + ")"
		}
		envStatus := "running"
		var rb *RollbackError
		if rerr != nil {
			action = "deploy.deployment.fail"
			if errors.As(rerr, &rb) {
				// Neither release could be made healthy: say so.
				state, envStatus = StateFailed, "degraded"
				msg = fmt.Sprintf("release #%d failed (%s) and the rollback to release #%d failed too (%s): the environment is degraded, whatever still runs of either release serves",
					d.ReleaseNumber, truncate(apperr.Message(rb.Cause), 300), s.releaseNumber(ctx, tx, d.PreviousReleaseID),
					truncate(apperr.Message(rb.Err), 300))
			} else if d.PreviousReleaseID != 0 {
				state = StateRolledBack
				msg = fmt.Sprintf("release #%d failed (%s); release #%d runs again", d.ReleaseNumber, truncate(apperr.Message(rerr), 500),
					s.releaseNumber(ctx, tx, d.PreviousReleaseID))
			} else {
				state, envStatus = StateFailed, "empty"
				msg = fmt.Sprintf("release #%d failed (%s); nothing ran before it", d.ReleaseNumber, truncate(apperr.Message(rerr), 500))
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE deploy_deployments SET state = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ?",
			state, msg, now, now, d.ID); err != nil {
			return err
		}
		if rerr == nil {
			if _, err := tx.Exec(ctx, `UPDATE deploy_environments SET previous_release_id = CASE WHEN current_release_id = ? THEN previous_release_id ELSE current_release_id END,
				current_release_id = ?, status = ?, status_message = ?, updated_at = ? WHERE id = ?`,
				d.ReleaseID, d.ReleaseID, envStatus, msg, now, e.ID); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, "UPDATE deploy_environments SET status = ?, status_message = ?, updated_at = ? WHERE id = ?",
			envStatus, msg, now, e.ID); err != nil {
			return err
		}
		if s.d.Events != nil {
			rel, err := s.releaseByID(ctx, tx, d.ReleaseID)
			if err != nil {
				return err
			}
			running := rel.Number
			if rerr != nil {
				running = s.releaseNumber(ctx, tx, d.PreviousReleaseID)
			}
			if err := s.d.Events.Publish(ctx, tx, EventFinished, FinishedEvent{Org: e.Org, Project: e.Project, Environment: e.Name,
				Deployment: d.ID, State: state, Release: rel.Number, Digest: rel.Digest, Image: rel.Image, SourceCommit: rel.SourceCommit,
				Repository: rel.Repository, PullRequest: rel.PullRequest, WorkItems: rel.WorkItems, RunningNumber: running}); err != nil {
				return err
			}
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: d.OrgID, ActorName: "system", Outcome: outcome(rerr == nil),
			Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(d.ID, 10), Name: e.Name},
			Details: map[string]any{"release": d.ReleaseNumber, "state": state, "message": msg}})
	})
	if err != nil {
		s.log.Error("record deployment outcome", "deployment", d.ID, logging.KeyErr, err)
	}
}

func (s *Service) setEnvStatus(ctx context.Context, id int64, status, msg string) {
	if _, err := s.d.DB.Exec(ctx, "UPDATE deploy_environments SET status = ?, status_message = ?, updated_at = ? WHERE id = ?",
		status, msg, store.Time(s.d.Now()), id); err != nil {
		s.log.Warn("set environment status", logging.KeyErr, err)
	}
}

func (s *Service) journalNote(ctx context.Context, id int64, detail string) {
	if err := s.record(ctx, id, JournalRecovered, detail); err != nil {
		s.log.Warn("record the recovery", logging.KeyErr, err)
	}
}

// recover runs at start: a rollout that was in progress when Rampart
// stopped is settled (its target leaves one of the two releases
// running, and the record says which), then every environment's current
// release is made to run (reattached or restarted, never duplicated).
func (s *Service) recover(ctx context.Context) {
	ctx = reqinfo.WithActor(ctx, 0, "deploy")
	ds, err := s.deployments(ctx, s.d.DB, "WHERE d.state = ? ORDER BY d.id", StateRunning)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("list interrupted deployments", logging.KeyErr, err)
		}
	}
	for _, d := range ds {
		es, err := s.envs(ctx, s.d.DB, "WHERE id = ?", d.EnvironmentID)
		if err != nil || len(es) == 0 {
			continue
		}
		e := es[0]
		tgt, ok := s.d.Targets[e.Target.Kind]
		if !ok {
			continue
		}
		p, err := s.plan(ctx, e, d, true)
		var running int64
		committed := false
		if err == nil {
			p.Record = s.recorder(d.ID)
			if p.Journal, err = s.journal(ctx, s.d.DB, d.ID); err == nil {
				committed = Committed(p.Journal)
				running, err = tgt.Recover(WithPuller(ctx, Puller{Scope: p.Scope, UserID: d.CreatedByID}), p)
			}
		}
		at := "before its first step"
		if d.Step != "" {
			at = "at " + d.Step
		}
		if err != nil {
			s.log.Error("recover interrupted rollout", "deployment", d.ID, logging.KeyErr, err)
			s.journalNote(ctx, d.ID, "failed: "+apperr.Message(err))
			s.finish(ctx, e, d, apperr.Wrap(err, apperr.Unavailable, "interrupted by a stop of Rampart "+at+", then: "+apperr.Message(err)))
			continue
		}
		switch {
		case running == d.ReleaseID && committed:
			s.journalNote(ctx, d.ID, fmt.Sprintf("completed: release #%d had passed its checks", d.ReleaseNumber))
			s.finishNote(ctx, e, d, nil, "Rampart stopped after the rollout's commit point; it was completed at the next start")
		case running == d.ReleaseID:
			// A first release: nothing ran before to go back to.
			s.journalNote(ctx, d.ID, fmt.Sprintf("started: release #%d is the environment's first", d.ReleaseNumber))
			s.finishNote(ctx, e, d, nil, "Rampart stopped in the middle of the rollout; the environment's first release was started at the next start")
		default:
			s.journalNote(ctx, d.ID, fmt.Sprintf("rolled back: release #%d runs again", s.releaseNumber(ctx, s.d.DB, running)))
			s.finish(ctx, e, d, apperr.E(apperr.Unavailable, "interrupted: Rampart stopped in the middle of the rollout, %s", at))
		}
	}
	es, err := s.envs(ctx, s.d.DB, "WHERE current_release_id <> 0")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("list environments", logging.KeyErr, err)
		}
		return
	}
	for _, e := range es {
		tgt, ok := s.d.Targets[e.Target.Kind]
		if !ok {
			continue
		}
		p, err := s.plan(ctx, e, Deployment{ReleaseID: e.CurrentReleaseID, EnvironmentID: e.ID, Strategy: e.Target.Strategy.Kind}, true)
		if err == nil {
			// Images are pulled again (when no longer cached) for whoever
			// last deployed the running release.
			var uid int64
			if qerr := s.d.DB.QueryRow(ctx, `SELECT created_by_id FROM deploy_deployments WHERE environment_id = ? AND release_id = ?
				AND state = ? ORDER BY id DESC LIMIT 1`, e.ID, e.CurrentReleaseID, StateSucceeded).Scan(&uid); qerr != nil && !apperr.Is(qerr, apperr.NotFound) {
				s.log.Warn("find the deployer of the running release", logging.KeyErr, qerr)
			}
			err = tgt.Ensure(WithPuller(ctx, Puller{Scope: p.Scope, UserID: uid}), p)
		}
		if err != nil {
			s.log.Error("restore environment", "environment", e.Name, logging.KeyErr, err)
			s.setEnvStatus(ctx, e.ID, "degraded", "release could not be restarted after a restart of Rampart: "+truncate(apperr.Message(err), 300))
		}
	}
}
