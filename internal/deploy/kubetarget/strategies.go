package kubetarget

import (
	"context"
	"fmt"
	"strconv"
	"time"

	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/gateway"
)

// rolling applies the release to the project's main Deployment, which
// Kubernetes rolls (or recreates); once it is available the Service
// selects it and whatever else ran (a blue-green colour, a canary) is
// scaled to zero. The hook is called once, at 100 %.
func (t *Target) rolling(ctx context.Context, cs *clients, p deploy.Plan) error {
	name := Name(p.Scope.Project)
	if err := t.applyAndWait(ctx, cs, p, p.Release, p.Secrets, name, p.Env.Target.Replicas); err != nil {
		return err
	}
	if p.Release.Config.Manifests == "" {
		if err := t.applyService(ctx, cs, p, name, name); err != nil {
			return err
		}
		if err := t.route(ctx, p, backend{name, 1, p.Release}); err != nil {
			return err
		}
		if err := t.scaleOthers(ctx, cs, p, name); err != nil {
			return err
		}
	}
	return t.hook(ctx, p, 1, 1, 100, fmt.Sprintf("release #%d runs in Deployment %s", p.Release.Number, name))
}

// blueGreen runs the release as the colour the Service does not select
// (NAME-blue or NAME-green) at full strength; once it is available (and
// seen through the preview Service NAME-preview when asked for) the
// hook is called at 0 %, the Service's selector switches to it, the
// hook is called at 100 %, and after the strategy's pause the old
// colour is scaled to zero. A failure switches the selector back.
// A colour that already runs the release (a rollback within reach) is
// simply scaled up again.
func (t *Target) blueGreen(ctx context.Context, cs *clients, p deploy.Plan) error {
	name := Name(p.Scope.Project)
	active, err := t.activeSet(ctx, cs, p)
	if err != nil {
		return err
	}
	set := name + "-blue"
	if active == set {
		set = name + "-green"
	}
	old := active
	if old == "" {
		old = "nothing"
	}
	t.progress(p, "starting %d pod(s) of release #%d as %s beside %s", p.Env.Target.Replicas, p.Release.Number, set, old)
	if err := t.applyAndWait(ctx, cs, p, p.Release, p.Secrets, set, p.Env.Target.Replicas); err != nil {
		return err
	}
	where := ""
	if p.Env.Target.Strategy.Preview {
		if err := t.applyService(ctx, cs, p, name+"-preview", set); err != nil {
			return err
		}
		where = " behind Service " + name + "-preview"
	}
	if err := t.hook(ctx, p, 1, 2, 0, fmt.Sprintf("release #%d available as %s%s; Service %s still selects %s", p.Release.Number, set, where, name, old)); err != nil {
		return err
	}
	if err := t.applyService(ctx, cs, p, name, set); err != nil {
		return err
	}
	if err := t.route(ctx, p, backend{name, 1, p.Release}); err != nil {
		return err
	}
	if err := t.hook(ctx, p, 2, 2, 100, fmt.Sprintf("Service %s switched to %s (release #%d)", name, set, p.Release.Number)); err != nil {
		return err
	}
	if d := p.Env.Target.Strategy.Pause.D(); d > 0 && active != "" {
		t.progress(p, "release #%d serves from %s; %s is scaled down in %s", p.Release.Number, set, active, d)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if err := t.scaleOthers(ctx, cs, p, set); err != nil {
		return err
	}
	t.progress(p, "release #%d serves from %s alone; Service %s selects it", p.Release.Number, set, name)
	return nil
}

// canary runs the release as NAME-canary beside the stable Deployment
// (the one the Service selects) and moves traffic to it step by step.
// Behind Rampart's gateway (the environment has a host and Rampart
// runs a gateway) the route's weights split the traffic between the
// Services NAME-stable and NAME-canary; otherwise the Service selects
// both Deployments and the weight becomes a replica ratio. The last
// step (100 %) promotes the release: the main Deployment rolls to it,
// the Service selects it alone and the canary and stable Deployments
// are scaled to zero. Each step calls the hook, then pauses.
func (t *Target) canary(ctx context.Context, cs *clients, p deploy.Plan) error {
	name := Name(p.Scope.Project)
	stable, err := t.activeSet(ctx, cs, p)
	if err != nil {
		return err
	}
	serving := false
	if stable != "" && p.Previous != nil {
		d, err := cs.AppsV1().Deployments(p.Connection.Namespace).Get(ctx, stable, metav1.GetOptions{})
		if err != nil && !k8serrors.IsNotFound(err) {
			return unavailable("read Deployment "+stable, err)
		}
		serving = err == nil && releaseOf(d) == strconv.FormatInt(p.Previous.ID, 10) && d.Spec.Replicas != nil && *d.Spec.Replicas > 0
	}
	if !serving {
		t.progress(p, "no stable release runs: release #%d is rolled out at once", p.Release.Number)
		return t.rolling(ctx, cs, p)
	}
	set := name + "-canary"
	n := p.Env.Target.Replicas
	steps := p.Env.Target.Strategy.Steps
	if len(steps) == 0 {
		steps = []int{10, 50, 100}
	}
	viaGateway := p.Env.Target.Host != "" && t.Router != nil
	for i, w := range steps {
		if w >= 100 {
			break
		}
		c, s := Split(n, w, viaGateway)
		if err := t.applyAndWait(ctx, cs, p, p.Release, p.Secrets, set, c); err != nil {
			return err
		}
		var what string
		if viaGateway {
			if i == 0 {
				if err := t.applyService(ctx, cs, p, name+"-stable", stable); err != nil {
					return err
				}
				if err := t.applyService(ctx, cs, p, name+"-canary", set); err != nil {
					return err
				}
			}
			if err := t.route(ctx, p, backend{name + "-stable", 100 - w, *p.Previous}, backend{name + "-canary", w, p.Release}); err != nil {
				return err
			}
			what = fmt.Sprintf("%d%% of traffic on release #%d (gateway weights %d/%d; %s %d pod(s), %s %d)",
				w, p.Release.Number, 100-w, w, stable, s, set, c)
		} else {
			if i == 0 {
				if err := t.applyService(ctx, cs, p, name, ""); err != nil {
					return err
				}
			}
			if err := t.scale(ctx, cs, p, stable, s); err != nil {
				return err
			}
			what = fmt.Sprintf("%d%% of traffic on release #%d asked; %d of %d pods run it (%s %d, %s %d)",
				w, p.Release.Number, c, c+s, stable, s, set, c)
		}
		if err := t.hook(ctx, p, i+1, len(steps), w, what); err != nil {
			return err
		}
		if err := sleep(ctx, p.Env.Target.Strategy.Pause.D()); err != nil {
			return err
		}
	}
	t.progress(p, "step %d/%d: promoting release #%d: Deployment %s rolls to it", len(steps), len(steps), p.Release.Number, name)
	if err := t.applyAndWait(ctx, cs, p, p.Release, p.Secrets, name, n); err != nil {
		return err
	}
	if err := t.applyService(ctx, cs, p, name, name); err != nil {
		return err
	}
	if err := t.route(ctx, p, backend{name, 1, p.Release}); err != nil {
		return err
	}
	if err := t.scaleOthers(ctx, cs, p, name); err != nil {
		return err
	}
	return t.hook(ctx, p, len(steps), len(steps), 100, fmt.Sprintf("release #%d promoted: Deployment %s runs it alone", p.Release.Number, name))
}

// Split returns how many pods the canary and the stable Deployment run
// for a canary weight in percent (below 100) out of n replicas. Through
// the gateway the stable Deployment keeps n (the route's weights split
// the traffic) and the canary gets its share of n, at least one. Through
// the Service alone the replica ratio is the weight: the canary gets
// its share rounded up, the stable the rest, each at least one.
func Split(n, weight int, viaGateway bool) (canary, stable int) {
	canary = min(max((n*weight+99)/100, 1), n)
	if viaGateway {
		return canary, n
	}
	return canary, max(n-canary, 1)
}

// backend is a Service that gets a weight of the gateway route.
type backend struct {
	service string
	weight  int
	rel     deploy.Release
}

// route points the environment's gateway route (deploy.RouteName) at
// the backends, keeping the operator's settings on it, when the
// environment has a host and Rampart runs a gateway.
func (t *Target) route(ctx context.Context, p deploy.Plan, bs ...backend) error {
	if p.Env.Target.Host == "" || t.Router == nil {
		return nil
	}
	sc := gateway.Scope{OrgID: p.Scope.OrgID, ProjectID: p.Scope.ProjectID, OrgName: p.Scope.Org, ProjectName: p.Scope.Project}
	name := deploy.RouteName(p.Env.Name)
	spec := gateway.Spec{Host: p.Env.Target.Host, Path: "/"}
	if cur, err := t.Router.Get(ctx, sc, name); err == nil {
		spec = cur.Spec
	} else if !apperr.Is(err, apperr.NotFound) {
		return err
	}
	spec.Host = p.Env.Target.Host
	spec.Backends = nil
	for _, b := range bs {
		if b.weight <= 0 {
			continue
		}
		w := b.weight
		spec.Backends = append(spec.Backends, gateway.Backend{URL: t.serviceURL(p.Connection.Namespace, b.service), Weight: &w,
			Version: "r" + strconv.FormatInt(b.rel.Number, 10)})
	}
	if _, _, err := t.Router.Put(ctx, sc, name, spec); err != nil {
		return fmt.Errorf("route %s: %w", name, err)
	}
	return nil
}

func (t *Target) serviceURL(namespace, service string) string {
	if t.ServiceURL != nil {
		return t.ServiceURL(namespace, service)
	}
	return "http://" + service + "." + namespace + ".svc.cluster.local"
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
