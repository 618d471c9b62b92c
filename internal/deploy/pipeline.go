package deploy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// PipelineDeploy is what a pipeline's deploy step asks for: a release of
// the image its job built and pushed, deployed to one environment.
type PipelineDeploy struct {
	// Release is the release to record: image and digest, the run's
	// source (commit, branch, repository, pull request, work items) and
	// reason.
	Release Release
	// Environment receives the release; its protection rules apply.
	Environment string
	// Strategy overrides the environment's strategy kind ("": keep it).
	Strategy string
	// ApprovalTimeout, when set, is how long the step waits for
	// approvals before it gives the deployment up (expired); the
	// environment's own approval timeout applies too.
	ApprovalTimeout time.Duration
	// Poll is how often the deployment is looked at (default 250ms).
	Poll time.Duration
}

// DeployAndWait records p's release, asks for its deployment exactly as
// the API and the CLI do (allowed branches, windows, the pre-deploy gate
// and the required gates, approvals), then follows the deployment until
// it ends, telling report what happens: the release number, the gates'
// decisions, the wait for approvals, every rollout step, the gates'
// second answer before the rollout, the outcome. It returns the finished
// deployment, and an error unless the release runs: denied, rejected,
// expired, failed or rolled back. When ctx ends (the job's timeout or
// cancellation) while the deployment still waits for approvals or in the
// queue, the deployment is given up (expired) so nothing deploys after
// the job ended; a rollout already running finishes on its own.
func (s *Service) DeployAndWait(ctx context.Context, sc Scope, p PipelineDeploy, report func(string)) (Deployment, error) {
	if report == nil {
		report = func(string) {}
	}
	if p.ApprovalTimeout < 0 || p.ApprovalTimeout > 30*24*time.Hour {
		return Deployment{}, apperr.InvalidField("approval_timeout", "the approval timeout must be 0 to 30 days")
	}
	if p.Poll <= 0 {
		p.Poll = 250 * time.Millisecond
	}
	rel, err := s.CreateRelease(ctx, sc, p.Release)
	if err != nil {
		return Deployment{}, err
	}
	src := rel.SourceCommit
	if rel.SourceBranch != "" {
		src += " on " + rel.SourceBranch
	}
	report(fmt.Sprintf("release #%d recorded: %s (%s)", rel.Number, rel.Ref(), strings.TrimSpace(src)))
	d, err := s.Deploy(ctx, sc, DeployRequest{Environment: p.Environment, Release: rel.Number, Reason: p.Release.Reason, Strategy: p.Strategy})
	for _, g := range d.Decisions {
		report(decisionLine(g))
	}
	if err != nil {
		return d, err
	}
	report(fmt.Sprintf("deployment %d of release #%d to %s: %s", d.ID, rel.Number, p.Environment, stateLine(d)))
	seen := len(d.Decisions)
	last := d.State + "\x00" + d.Message + "\x00" + d.Step
	started := time.Now()
	tick := time.NewTicker(p.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.giveUp(context.WithoutCancel(ctx), sc, d, "the pipeline step ended ("+context.Cause(ctx).Error()+") before the deployment started", report)
		case <-tick.C:
		}
		cur, err := s.deployment(ctx, s.d.DB, sc, d.ID)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return d, err
		}
		d = cur
		for _, g := range d.Decisions[min(seen, len(d.Decisions)):] {
			report(decisionLine(g))
		}
		seen = len(d.Decisions)
		if now := d.State + "\x00" + d.Message + "\x00" + d.Step; now != last {
			last = now
			report(stateLine(d))
		}
		if terminal(d.State) {
			if d.State == StateSucceeded {
				return d, nil
			}
			return d, apperr.E(apperr.Unavailable, "deployment %d of release #%d to %s ended %s: %s", d.ID, d.ReleaseNumber, d.Environment, d.State, d.Message)
		}
		if d.State == StateAwaitingApproval && p.ApprovalTimeout > 0 && time.Since(started) > p.ApprovalTimeout {
			return s.giveUp(ctx, sc, d, "no approval within the step's approval-timeout of "+p.ApprovalTimeout.String(), report)
		}
	}
}

// giveUp ends a deployment that has not started (awaiting approval or
// queued) as expired, because the pipeline step waiting for it stops.
func (s *Service) giveUp(ctx context.Context, sc Scope, d Deployment, why string, report func(string)) (Deployment, error) {
	now := store.Time(s.d.Now())
	var n int64
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.Exec(ctx, "UPDATE deploy_deployments SET state = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ? AND state IN (?, ?)",
			StateExpired, truncate(why, 500)+"; the environment keeps its release", now, now, d.ID, StateAwaitingApproval, StateQueued)
		if err != nil || n == 0 {
			return err
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.deployment.expire", OrgID: sc.OrgID, ActorName: "system",
			Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(d.ID, 10), Name: sc.String() + "/" + d.Environment},
			Details: map[string]any{"release": d.ReleaseNumber, "why": truncate(why, 200)}})
	})
	if err != nil {
		s.log.Warn("give up deployment", "deployment", d.ID, logging.KeyErr, err)
	}
	if cur, err := s.deployment(ctx, s.d.DB, sc, d.ID); err == nil {
		d = cur
	}
	if n == 0 && !terminal(d.State) {
		report(fmt.Sprintf("deployment %d is %s: it goes on without this step", d.ID, d.State))
		return d, apperr.E(apperr.Unavailable, "the step ended while deployment %d was %s", d.ID, d.State)
	}
	report(stateLine(d))
	if d.State == StateSucceeded {
		return d, nil
	}
	return d, apperr.E(apperr.Unavailable, "deployment %d of release #%d to %s ended %s: %s", d.ID, d.ReleaseNumber, d.Environment, d.State, d.Message)
}

// decisionLine is a gate decision in words.
func decisionLine(g GateDecision) string {
	when := "at request"
	if g.Stage == StageBeforeRollout {
		when = "before the rollout"
	}
	verdict := "allow"
	if !g.Allow {
		verdict = "deny"
	}
	line := fmt.Sprintf("gate %s (%s): %s", g.Gate, when, verdict)
	if g.ID != "" {
		line += " [decision " + g.ID + "]"
	}
	if len(g.Reasons) > 0 {
		line += ": " + truncate(strings.Join(g.Reasons, "; "), 500)
	}
	return line
}

// stateLine is a deployment's state in words.
func stateLine(d Deployment) string {
	line := d.State
	switch {
	case d.State == StateRunning && d.Step != "":
		line += ": " + d.Step
	case d.Message != "":
		line += ": " + d.Message
	}
	if d.State == StateAwaitingApproval && len(d.Approvals) > 0 {
		names := make([]string, 0, len(d.Approvals))
		for _, a := range d.Approvals {
			names = append(names, a.User)
		}
		line += " (answered by " + strings.Join(names, ", ") + ")"
	}
	return line
}
