package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// Restarter is implemented by targets that can replace the instances of
// the release they run by fresh instances of the same release, one at a
// time, so that the new instances read the secrets' current values. A
// deployment whose release is also its previous release (a restart) is
// carried out by Restart instead of Rollout.
type Restarter interface {
	Restart(ctx context.Context, p Plan) error
}

// rollout hands a plan to its target: a restart of the running release
// to Restart when the target can restart, anything else to Rollout.
func rollout(ctx context.Context, tgt Target, p Plan) error {
	if p.Previous != nil && p.Previous.ID == p.Release.ID {
		if r, ok := tgt.(Restarter); ok {
			return r.Restart(ctx, p)
		}
	}
	return tgt.Rollout(ctx, p)
}

// maxRestartWhy bounds the reason recorded on a restart.
const maxRestartWhy = 300

// RestartUsing restarts, one instance at a time, every environment of
// the project org/project whose running release references a secret
// for which uses returns true (the vault calls it, through the wiring,
// after a rotation, when the project asked for restarts). Each restart
// is a new deployment of the running release, queued with strategy
// rolling, recorded in the history with why as its reason and audited
// as deploy.deployment.restart; it skips approvals and gates (the
// release already runs there: nothing new reaches the target). An
// environment with a deployment queued or running is left alone: that
// rollout starts instances that read the new value; so is one whose
// target does not implement Restarter. It returns the deployments
// created.
func (s *Service) RestartUsing(ctx context.Context, org, project string, uses func(ref string) bool, why string) ([]Deployment, error) {
	if uses == nil {
		return nil, apperr.E(apperr.Invalid, "no secret to restart for")
	}
	why = truncate(why, maxRestartWhy)
	es, err := s.envs(ctx, s.d.DB, "WHERE org_name = ? AND project_name = ? AND current_release_id <> 0 ORDER BY position, name", org, project)
	if err != nil {
		return nil, err
	}
	out := []Deployment{}
	var errs []error
	for _, e := range es {
		rel, err := s.releaseByID(ctx, s.d.DB, e.CurrentReleaseID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var refs []string
		for _, r := range rel.SecretRefs {
			if uses(r.Ref) {
				refs = append(refs, r.Env+"="+r.Ref)
			}
		}
		if len(refs) == 0 {
			continue
		}
		if _, ok := s.d.Targets[e.Target.Kind].(Restarter); !ok {
			// A new rollout of the same release would not restart its
			// workloads there: say so rather than record a restart that
			// changes nothing.
			s.log.Warn("secret rotated but this target cannot restart a release; the new value reaches the workload at its next deployment",
				"environment", e.Name, "target", e.Target.Kind)
			continue
		}
		d, created, err := s.queueRestart(ctx, e, rel, refs, why)
		if err != nil {
			errs = append(errs, fmt.Errorf("restart environment %s: %w", e.Name, err))
			continue
		}
		if created {
			out = append(out, d)
		}
	}
	if len(out) > 0 {
		s.poke()
	}
	return out, errors.Join(errs...)
}

// queueRestart records the restart of environment e's running release
// rel, unless a deployment is already queued or running there.
func (s *Service) queueRestart(ctx context.Context, e Environment, rel Release, refs []string, why string) (Deployment, bool, error) {
	sc := Scope{OrgID: e.OrgID, ProjectID: e.ProjectID, Org: e.Org, Project: e.Project}
	var (
		out     Deployment
		created bool
	)
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		var busy int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM deploy_deployments WHERE environment_id = ? AND state IN (?, ?)",
			e.ID, StateQueued, StateRunning).Scan(&busy); err != nil {
			return err
		}
		if busy > 0 {
			s.log.Info("restart skipped: a deployment is in progress", "environment", e.Name)
			return nil
		}
		// Images are pulled (when no longer cached) for whoever last
		// deployed the running release, as at a restart of Rampart.
		var uid int64
		if err := tx.QueryRow(ctx, `SELECT created_by_id FROM deploy_deployments WHERE environment_id = ? AND release_id = ?
			AND state = ? ORDER BY id DESC LIMIT 1`, e.ID, rel.ID, StateSucceeded).Scan(&uid); err != nil && !apperr.Is(err, apperr.NotFound) {
			return err
		}
		_, who := actor(ctx)
		if who == "" {
			who = "system"
		}
		dec, _ := json.Marshal([]GateDecision{})
		t := store.Time(s.d.Now())
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO deploy_deployments (org_id, project_id, environment_id, release_id, previous_release_id, strategy, state,
			decisions, message, reason, created_by, created_by_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.OrgID, e.ProjectID, e.ID, rel.ID, rel.ID, Rolling, StateQueued,
			string(dec), "restart of release #"+strconv.FormatInt(rel.Number, 10), why, who, uid, t, t).Scan(&id); err != nil {
			return err
		}
		var err error
		if out, err = s.deployment(ctx, tx, sc, id); err != nil {
			return err
		}
		created = true
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.deployment.restart", OrgID: e.OrgID,
			Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(id, 10), Name: sc.String() + "/" + e.Name},
			Details: map[string]any{"release": rel.Number, "secrets": refs, "reason": why}})
	})
	if err != nil {
		s.log.Warn("queue restart", "environment", e.Name, logging.KeyErr, err)
	}
	return out, created, err
}
