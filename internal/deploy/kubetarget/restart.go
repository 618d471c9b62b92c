package kubetarget

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
)

var _ deploy.Restarter = (*Target)(nil)

// annRestarted on a pod template makes the Deployment replace its pods;
// it is written by its own field manager, as `kubectl rollout restart`
// does, so the release's applies neither own nor remove it.
const annRestarted = "rampart.dev/restarted-at"

// restartManager is the field manager of the restart annotation.
const restartManager = FieldManager + "-restart"

// Restart replaces the pods of the release the environment runs with
// fresh ones, rolling (max surge 1, max unavailable 0): the release's
// Secret is applied with the plan's secrets (their current values), the
// Deployment the Service selects gets a new restart annotation on its pod
// template, and the rollout is watched until every new pod is available.
// A release of the project's own manifests holds no Deployment Rampart
// generated, so it cannot be restarted this way.
func (t *Target) Restart(ctx context.Context, p deploy.Plan) error {
	if p.Release.Config.Manifests != "" {
		return apperr.E(apperr.Invalid, "release #%d is the project's own manifests: redeploy it to restart its pods", p.Release.Number)
	}
	cs, err := t.client(p.Connection)
	if err != nil {
		return err
	}
	if err := checkLeastPrivilege(ctx, cs); err != nil {
		return err
	}
	set, err := t.activeSet(ctx, cs, p)
	if err != nil {
		return err
	}
	if set == "" {
		set = Name(p.Scope.Project)
	}
	t.progress(p, "restarting release #%d: replacing the pods of Deployment %s one at a time", p.Release.Number, set)
	// The Secret (and the Deployment, unchanged) as the release has them.
	if _, err := t.applyRelease(ctx, cs, p, p.Release, p.Secrets, set, p.Env.Target.Replicas); err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q},`+
		`"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`,
		set, p.Connection.Namespace, annRestarted, time.Now().UTC().Format(time.RFC3339Nano))
	force := true
	d, err := cs.AppsV1().Deployments(p.Connection.Namespace).Patch(ctx, set, types.ApplyPatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: restartManager, Force: &force})
	if err != nil {
		return unavailable("restart Deployment "+set, err)
	}
	if err := t.wait(ctx, cs, p, set, d.Generation); err != nil {
		return err
	}
	return t.hook(ctx, p, 1, 1, 100, fmt.Sprintf("release #%d restarted in Deployment %s", p.Release.Number, set))
}
