package deploy

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// StageBeforeRollout marks gate decisions taken again right before a
// rollout starts (GateDecision.Stage).
const StageBeforeRollout = "before_rollout"

// recheckAfter is how long a deployment may wait in the queue (behind
// another rollout or a closed window) before its gates are asked again
// even without approvals.
const recheckAfter = time.Minute

// needsRecheck reports whether deployment d waited long enough since its
// gates answered for their answer to be stale: it waited for approvals,
// or it stayed queued for more than recheckAfter.
func needsRecheck(d Deployment, now time.Time) bool {
	return len(d.Approvals) > 0 || now.Sub(d.CreatedAt) > recheckAfter
}

// gateBeforeRollout asks the pre-deploy gate and the required gates
// again, with the evidence of now, for a claimed deployment that waited
// (for approvals, or in the queue): an exception may have expired or a
// vulnerability may have been found meanwhile. Both decisions stay on
// the deployment (the new ones with Stage StageBeforeRollout). When a
// gate now denies, the deployment ends denied before anything is
// touched and false is returned; the environment keeps what it runs.
func (s *Service) gateBeforeRollout(ctx context.Context, e Environment, d Deployment) bool {
	now := s.d.Now()
	if !needsRecheck(d, now) {
		return true
	}
	log := s.log.With("deployment", d.ID, "environment", e.Name)
	rel, err := s.releaseByID(ctx, s.d.DB, d.ReleaseID)
	if err != nil {
		// The rollout's own plan fails on the same read and records it.
		log.Warn("read the release to ask the gates again", logging.KeyErr, err)
		return true
	}
	sc := Scope{OrgID: e.OrgID, ProjectID: e.ProjectID, Org: e.Org, Project: e.Project}
	fresh, allow := s.decide(ctx, sc, e, rel)
	for i := range fresh {
		fresh[i].Stage = StageBeforeRollout
	}
	all := append(append([]GateDecision{}, d.Decisions...), fresh...)
	dec, _ := json.Marshal(all)
	ids := make([]string, 0, len(fresh))
	for _, g := range fresh {
		ids = append(ids, g.Gate+":"+strconv.FormatBool(g.Allow)+":"+g.ID)
	}
	t := store.Time(now)
	err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		rec := audit.Record{Action: "deploy.deployment.gate", OrgID: d.OrgID, ActorName: "system", Outcome: outcome(allow),
			Target:  audit.Target{Type: "deployment", ID: strconv.FormatInt(d.ID, 10), Name: sc.String() + "/" + e.Name},
			Details: map[string]any{"release": d.ReleaseNumber, "digest": rel.Digest, "stage": StageBeforeRollout, "decisions": ids}}
		if allow {
			if _, err := tx.Exec(ctx, "UPDATE deploy_deployments SET decisions = ?, updated_at = ? WHERE id = ?", string(dec), t, d.ID); err != nil {
				return err
			}
			return s.d.Audit.AppendTx(ctx, tx, rec)
		}
		msg := "denied by policy before the rollout: " + denyReasons(fresh) + "; the environment keeps its release"
		if _, err := tx.Exec(ctx, "UPDATE deploy_deployments SET state = ?, decisions = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ?",
			StateDenied, string(dec), truncate(msg, 2500), t, t, d.ID); err != nil {
			return err
		}
		rec.Details["message"] = truncate(msg, 500)
		return s.d.Audit.AppendTx(ctx, tx, rec)
	})
	if err != nil {
		// Fail closed: a deployment whose second answer cannot be
		// recorded does not start.
		log.Error("record the gate decisions taken before the rollout", logging.KeyErr, err)
		if _, err := s.d.DB.Exec(context.WithoutCancel(ctx), "UPDATE deploy_deployments SET state = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ?",
			StateFailed, "the policy gates could not be asked again before the rollout; the environment keeps its release", t, t, d.ID); err != nil {
			log.Error("fail the deployment", logging.KeyErr, err)
		}
		return false
	}
	if !allow {
		log.Info("deployment denied by policy before its rollout")
	}
	return allow
}
