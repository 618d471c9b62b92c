package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/logging"
)

// Workload is one instance to start: a release's image and
// configuration for an environment.
type Workload struct {
	// Group names the environment the instance belongs to ("e" and its
	// id); instances of a group are listed together.
	Group     string
	ReleaseID int64
	// Image is the reference by digest to pull.
	Image       string
	Command     []string
	Env         map[string]string
	Secrets     map[string]Value
	Port        int
	MemoryBytes int64
	CPUMillis   int64
	Pids        int64
}

// Instance is a running (or restarting) instance of a release.
type Instance struct {
	ID        string `json:"id"`
	Group     string `json:"group"`
	ReleaseID int64  `json:"release_id"`
	// Addr is where the instance's port is published on the loopback
	// interface (host:port): the gateway's backend.
	Addr string `json:"addr"`
	// State is running, restarting or stopped.
	State     string    `json:"state"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"started_at"`
	// LastExit describes the last exit of the instance's process.
	LastExit string `json:"last_exit,omitempty"`
}

// Runtime runs instances on this machine (package noderuntime: OCI
// containers through runc).
type Runtime interface {
	// Start pulls the image (once per digest) and starts an instance.
	Start(ctx context.Context, w Workload) (Instance, error)
	// Check makes one HTTP health check of an instance.
	Check(ctx context.Context, id, path string) error
	// Instance returns an instance's state.
	Instance(ctx context.Context, id string) (Instance, error)
	// Instances lists a group's instances.
	Instances(ctx context.Context, group string) ([]Instance, error)
	// Stop stops an instance and removes it.
	Stop(ctx context.Context, id string) error
	// Logs returns the end of an instance's output.
	Logs(ctx context.Context, id string, max int) ([]byte, error)
}

// Router is the gateway's route service: deployments point a route's
// backends at the instances that should get traffic.
type Router interface {
	Get(ctx context.Context, sc gateway.Scope, name string) (gateway.StoredRoute, error)
	Put(ctx context.Context, sc gateway.Scope, name string, spec gateway.Spec) (gateway.StoredRoute, bool, error)
}

// NodeTarget runs releases on the node runtime and keeps the
// environment's gateway route in step with them.
type NodeTarget struct {
	Runtime Runtime
	// Router may be nil (no gateway): environments with a host fail.
	Router Router
	Logger *slog.Logger
	// CrashLoop is how many restarts of a new instance fail a rollout
	// (default 3).
	CrashLoop int
	// Sleep waits between steps (default: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ Target = (*NodeTarget)(nil)

// GroupOf is the runtime group of an environment.
func GroupOf(envID int64) string { return "e" + strconv.FormatInt(envID, 10) }

// RouteName is the gateway route an environment's releases get.
func RouteName(env string) string { return "env-" + env }

func (t *NodeTarget) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
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

func workload(p Plan, rel Release, secrets map[string]Value) Workload {
	env := map[string]string{}
	for k, v := range rel.Config.Env {
		env[k] = v
	}
	return Workload{Group: GroupOf(p.Env.ID), ReleaseID: rel.ID, Image: rel.Ref(), Command: rel.Config.Command, Env: env,
		Secrets: secrets, Port: p.Env.Target.Port, MemoryBytes: p.Env.Target.MemoryBytes, CPUMillis: p.Env.Target.CPUMillis, Pids: p.Env.Target.Pids}
}

// startHealthy starts n instances of rel and waits until each answers
// its health check; on failure it stops what it started.
func (t *NodeTarget) startHealthy(ctx context.Context, p Plan, rel Release, secrets map[string]Value, n int) ([]Instance, error) {
	var out []Instance
	for range n {
		in, err := t.Runtime.Start(ctx, workload(p, rel, secrets))
		if err != nil {
			t.stopAll(context.WithoutCancel(ctx), out)
			return nil, err
		}
		out = append(out, in)
	}
	for _, in := range out {
		if err := t.waitHealthy(ctx, p, in); err != nil {
			t.stopAll(context.WithoutCancel(ctx), out)
			return nil, err
		}
	}
	if rel.ID == p.Release.ID {
		_ = t.journal(ctx, p, JournalStarted, fmt.Sprintf("%d healthy instance(s) of release #%d", n, rel.Number))
	}
	return out, nil
}

// waitHealthy polls an instance's health check until it passes, the
// environment's health timeout passes or the instance crash-loops.
func (t *NodeTarget) waitHealthy(ctx context.Context, p Plan, in Instance) error {
	limit := t.CrashLoop
	if limit <= 0 {
		limit = 3
	}
	deadline := time.Now().Add(p.Env.Target.HealthTimeout.D())
	var last error
	for {
		if err := t.Runtime.Check(ctx, in.ID, p.Env.Target.HealthPath); err == nil {
			return nil
		} else {
			last = err
		}
		cur, err := t.Runtime.Instance(ctx, in.ID)
		if err != nil {
			return err
		}
		if cur.Restarts >= limit {
			return apperr.E(apperr.Unavailable, "instance %s crash-loops (%d restarts; last exit: %s)", in.ID, cur.Restarts, cur.LastExit)
		}
		if time.Now().After(deadline) {
			return apperr.E(apperr.Unavailable, "instance %s not healthy within %s: %s", in.ID, p.Env.Target.HealthTimeout.D(), apperr.Message(last))
		}
		if err := t.sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func (t *NodeTarget) stopAll(ctx context.Context, ins []Instance) {
	for _, in := range ins {
		if err := t.Runtime.Stop(ctx, in.ID); err != nil {
			t.Logger.Warn("stop instance", "instance", in.ID, logging.KeyErr, err)
		}
	}
}

// route points the environment's route at backends: old instances get
// oldShare percent of the traffic, new ones the rest.
func (t *NodeTarget) route(ctx context.Context, p Plan, old []Instance, oldRel *Release, nw []Instance, newShare int) error {
	if p.Env.Target.Host == "" {
		return nil
	}
	if t.Router == nil {
		return apperr.E(apperr.Unavailable, "environment %s routes host %s but this Rampart runs no gateway", p.Env.Name, p.Env.Target.Host)
	}
	sc := gateway.Scope{OrgID: p.Scope.OrgID, ProjectID: p.Scope.ProjectID, OrgName: p.Scope.Org, ProjectName: p.Scope.Project}
	name := RouteName(p.Env.Name)
	spec := gateway.Spec{Host: p.Env.Target.Host, Path: "/"}
	if cur, err := t.Router.Get(ctx, sc, name); err == nil {
		spec = cur.Spec // keep the operator's WAF, limits and auth settings
	} else if !apperr.Is(err, apperr.NotFound) {
		return err
	}
	spec.Host = p.Env.Target.Host
	spec.HealthCheck.Path = p.Env.Target.HealthPath
	spec.Backends = nil
	if newShare < 100 && len(old) == 0 {
		newShare = 100
	}
	if newShare > 0 && len(nw) == 0 {
		newShare = 0
	}
	oldW, newW := weights(newShare, len(old), len(nw))
	add := func(ins []Instance, rel Release, w int) {
		for _, in := range ins {
			spec.Backends = append(spec.Backends, gateway.Backend{URL: "http://" + in.Addr, Weight: &w, Version: "r" + strconv.FormatInt(rel.Number, 10)})
		}
	}
	if oldRel != nil && oldW > 0 {
		add(old, *oldRel, oldW)
	}
	if newW > 0 {
		add(nw, p.Release, newW)
	}
	if len(spec.Backends) == 0 {
		return apperr.E(apperr.Internal, "no backends for route %s", name)
	}
	_, _, err := t.Router.Put(ctx, sc, name, spec)
	return err
}

// journal appends an entry to the rollout journal; only the commit
// point's failure to be recorded matters (the caller rolls back), other
// entries are informative and a failure is logged.
func (t *NodeTarget) journal(ctx context.Context, p Plan, kind, detail string) error {
	if p.Record == nil {
		return nil
	}
	err := p.Record(ctx, kind, detail)
	if err != nil && kind != JournalCommitted {
		t.Logger.Warn("rollout journal", "kind", kind, logging.KeyErr, err)
		return nil
	}
	return err
}

// commit records the commit point: every step's check passed. After it
// a restart completes the rollout rather than rolling it back.
func (t *NodeTarget) commit(ctx context.Context, p Plan) error {
	return t.journal(context.WithoutCancel(ctx), p, JournalCommitted, fmt.Sprintf("release #%d passed every step", p.Release.Number))
}

// stopOld stops the previous release's instances once the new one is
// committed.
func (t *NodeTarget) stopOld(ctx context.Context, p Plan, old []Instance) {
	t.stopAll(ctx, old)
	if len(old) > 0 {
		_ = t.journal(ctx, p, JournalOldStopped, fmt.Sprintf("%d instance(s) stopped", len(old)))
	}
}

func (t *NodeTarget) hook(ctx context.Context, p Plan, step, of, weight int) error {
	what := fmt.Sprintf("step %d/%d: %d%% of traffic on release #%d", step, of, weight, p.Release.Number)
	if p.Progress != nil {
		p.Progress(what)
	}
	_ = t.journal(ctx, p, JournalRouted, what)
	if p.Hook != nil {
		err := p.Hook.Step(ctx, StepInfo{Deployment: p.Deployment.ID, Scope: p.Scope, Env: p.Env.Name, Release: p.Release.Number,
			Strategy: p.Deployment.Strategy, Step: step, Of: of, Weight: weight})
		if err != nil {
			// The hook's words (release analysis) are meant for people.
			return apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("step %d/%d failed its analysis: %s", step, of, truncate(err.Error(), 300)))
		}
	}
	_ = t.journal(ctx, p, JournalStepPassed, fmt.Sprintf("step %d/%d", step, of))
	return nil
}

// split sorts a group's instances into those of the new release, those
// of the previous one and the rest.
func split(ins []Instance, newID int64, prev *Release) (nw, old, other []Instance) {
	for _, in := range ins {
		switch {
		case in.ReleaseID == newID:
			nw = append(nw, in)
		case prev != nil && in.ReleaseID == prev.ID:
			old = append(old, in)
		default:
			other = append(other, in)
		}
	}
	return
}

// Rollout carries out the environment's strategy. Whatever fails, the
// environment ends running the previous release (when there was one):
// new instances are stopped only after the old ones serve again.
func (t *NodeTarget) Rollout(ctx context.Context, p Plan) error {
	if t.Runtime == nil {
		return apperr.E(apperr.Unavailable, "this Rampart runs no node runtime (runc and root are needed)")
	}
	ins, err := t.Runtime.Instances(ctx, GroupOf(p.Env.ID))
	if err != nil {
		return err
	}
	stale, old, other := split(ins, p.Release.ID, p.Previous)
	// Leftovers of other releases, and of this one from an earlier
	// attempt, go first; they get no traffic.
	t.stopAll(ctx, append(stale, other...))
	n := p.Env.Target.Replicas
	strategy := p.Deployment.Strategy
	if p.Previous == nil || len(old) == 0 {
		strategy = Recreate // nothing runs: there is nothing to shift traffic from
	}
	switch strategy {
	case Recreate:
		return t.recreate(ctx, p, old, n)
	case Rolling:
		return t.rolling(ctx, p, old, n)
	case BlueGreen:
		return t.blueGreen(ctx, p, old, n)
	case Canary:
		return t.canary(ctx, p, old, n)
	}
	return apperr.E(apperr.Invalid, "unknown strategy %q", strategy)
}

// restore brings the previous release back to n healthy instances
// (keeping those that still run) and routes all traffic to it, then
// stops the new release's instances.
func (t *NodeTarget) restore(ctx context.Context, p Plan, kept []Instance, nw []Instance, n int, cause error) error {
	stopping := ctx
	ctx = context.WithoutCancel(ctx)
	if p.Previous == nil {
		t.stopAll(ctx, nw)
		return cause
	}
	why := "interrupted"
	if cause != nil {
		why = apperr.Message(cause)
	}
	if p.Progress != nil {
		p.Progress(fmt.Sprintf("rolling back to release #%d: %s", p.Previous.Number, why))
	}
	_ = t.journal(ctx, p, JournalRollback, fmt.Sprintf("to release #%d: %s", p.Previous.Number, why))
	var started []Instance
	if missing := n - len(kept); missing > 0 {
		ins, err := t.startHealthy(ctx, p, *p.Previous, p.PreviousSecrets, missing)
		if err != nil {
			// The new release keeps serving rather than nothing.
			return &RollbackError{Cause: cause, Err: err}
		}
		started = ins
	}
	if len(started) > 0 {
		_ = t.journal(ctx, p, JournalStarted, fmt.Sprintf("%d instance(s) of release #%d", len(started), p.Previous.Number))
	}
	all := append(slices.Clone(kept), started...)
	if err := t.route(ctx, p, all, p.Previous, nil, 0); err != nil {
		return &RollbackError{Cause: cause, Err: err}
	}
	_ = t.journal(ctx, p, JournalRouted, fmt.Sprintf("all traffic on release #%d", p.Previous.Number))
	if err := testPause(stopping, "rollback:routed"); err != nil {
		return err
	}
	t.stopAll(ctx, nw)
	return cause
}

func (t *NodeTarget) recreate(ctx context.Context, p Plan, old []Instance, n int) error {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf("stopping %d instance(s), starting %d of release #%d", len(old), n, p.Release.Number))
	}
	t.stopAll(ctx, old)
	nw, err := t.startHealthy(ctx, p, p.Release, p.Secrets, n)
	if err != nil {
		return t.restore(ctx, p, nil, nil, n, err)
	}
	if err := t.route(ctx, p, nil, nil, nw, 100); err != nil {
		return t.restore(ctx, p, nil, nw, n, err)
	}
	if err := t.hook(ctx, p, 1, 1, 100); err != nil {
		return t.restore(ctx, p, nil, nw, n, err)
	}
	if err := t.commit(ctx, p); err != nil {
		return t.restore(ctx, p, nil, nw, n, err)
	}
	return nil
}

func (t *NodeTarget) rolling(ctx context.Context, p Plan, old []Instance, n int) error {
	var nw []Instance
	remaining := slices.Clone(old)
	for i := range n {
		one, err := t.startHealthy(ctx, p, p.Release, p.Secrets, 1)
		if err != nil {
			return t.restore(ctx, p, remaining, nw, n, err)
		}
		nw = append(nw, one...)
		share := 100 * len(nw) / n
		if err := t.route(ctx, p, remaining[min(1, len(remaining)):], p.Previous, nw, share); err != nil {
			return t.restore(ctx, p, remaining, nw, n, err)
		}
		if len(remaining) > 0 {
			t.stopAll(ctx, remaining[:1])
			remaining = remaining[1:]
		}
		if err := t.hook(ctx, p, i+1, n, share); err != nil {
			return t.restore(ctx, p, remaining, nw, n, err)
		}
		if i == 0 {
			if err := testPause(ctx, "rolling:first-replica"); err != nil {
				return err
			}
		}
		if i < n-1 {
			if err := t.sleep(ctx, p.Env.Target.Strategy.Pause.D()); err != nil {
				return err
			}
		}
	}
	if err := t.commit(ctx, p); err != nil {
		return t.restore(ctx, p, remaining, nw, n, err)
	}
	if err := t.route(ctx, p, nil, nil, nw, 100); err != nil {
		return t.restore(ctx, p, remaining, nw, n, err)
	}
	t.stopOld(ctx, p, remaining)
	return nil
}

func (t *NodeTarget) blueGreen(ctx context.Context, p Plan, old []Instance, n int) error {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf("starting %d instance(s) of release #%d beside the running ones", n, p.Release.Number))
	}
	nw, err := t.startHealthy(ctx, p, p.Release, p.Secrets, n)
	if err != nil {
		return t.restore(ctx, p, old, nil, n, err)
	}
	if err := t.route(ctx, p, old, p.Previous, nw, 100); err != nil {
		return t.restore(ctx, p, old, nw, n, err)
	}
	if err := testPause(ctx, "blue_green:switched"); err != nil {
		return err
	}
	if err := t.hook(ctx, p, 1, 1, 100); err != nil {
		return t.restore(ctx, p, old, nw, n, err)
	}
	if err := t.commit(ctx, p); err != nil {
		return t.restore(ctx, p, old, nw, n, err)
	}
	if err := testPause(ctx, "blue_green:committed"); err != nil {
		return err
	}
	t.stopOld(ctx, p, old)
	return nil
}

func (t *NodeTarget) canary(ctx context.Context, p Plan, old []Instance, n int) error {
	nw, err := t.startHealthy(ctx, p, p.Release, p.Secrets, n)
	if err != nil {
		return t.restore(ctx, p, old, nil, n, err)
	}
	steps := p.Env.Target.Strategy.Steps
	if len(steps) == 0 {
		steps = []int{10, 50, 100}
	}
	for i, w := range steps {
		if err := t.route(ctx, p, old, p.Previous, nw, w); err != nil {
			return t.restore(ctx, p, old, nw, n, err)
		}
		if err := t.hook(ctx, p, i+1, len(steps), w); err != nil {
			return t.restore(ctx, p, old, nw, n, err)
		}
		if i < len(steps)-1 {
			if err := testPause(ctx, "canary:pause"); err != nil {
				return err
			}
			if err := t.sleep(ctx, p.Env.Target.Strategy.Pause.D()); err != nil {
				return err
			}
		}
	}
	if err := t.commit(ctx, p); err != nil {
		return t.restore(ctx, p, old, nw, n, err)
	}
	t.stopOld(ctx, p, old)
	return nil
}

// Recover settles a rollout that Rampart's stop (or crash) interrupted,
// deciding by its journal (p.Journal). Past the commit point (every
// step's check passed: Committed) the rollout is completed: the new
// release is brought to full strength, gets all the traffic and the
// previous release's instances are stopped. Before it, the previous
// release is brought back to full strength and gets all the traffic,
// and the new release's instances are stopped. Without a previous
// release the new one is made to run. Instances that survived are kept,
// duplicates stopped; Recover may itself be interrupted and run again.
func (t *NodeTarget) Recover(ctx context.Context, p Plan) (int64, error) {
	if t.Runtime == nil {
		return 0, apperr.E(apperr.Unavailable, "this Rampart runs no node runtime")
	}
	ins, err := t.Runtime.Instances(ctx, GroupOf(p.Env.ID))
	if err != nil {
		return 0, err
	}
	nw, old, other := split(ins, p.Release.ID, p.Previous)
	t.stopAll(ctx, other)
	if p.Previous == nil {
		return p.Release.ID, t.Ensure(ctx, p)
	}
	if Committed(p.Journal) {
		err := t.Ensure(ctx, p)
		if err == nil {
			_ = t.journal(ctx, p, JournalOldStopped, fmt.Sprintf("%d instance(s) stopped", len(old)))
			return p.Release.ID, nil
		}
		// The committed release cannot run any more: fall back.
		t.Logger.Warn("complete an interrupted rollout", "environment", p.Env.Name, logging.KeyErr, err)
		if ins, err = t.Runtime.Instances(ctx, GroupOf(p.Env.ID)); err != nil {
			return 0, err
		}
		nw, old, _ = split(ins, p.Release.ID, p.Previous)
	}
	n := p.Env.Target.Replicas
	old = t.dedupe(ctx, old, n)
	if err := t.restore(ctx, p, old, nw, n, nil); err != nil {
		return 0, err
	}
	return p.Previous.ID, nil
}

// dedupe keeps at most n instances, preferring running ones.
func (t *NodeTarget) dedupe(ctx context.Context, ins []Instance, n int) []Instance {
	slices.SortStableFunc(ins, func(a, b Instance) int {
		ra, rb := a.State == "running", b.State == "running"
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	if len(ins) > n {
		t.stopAll(ctx, ins[n:])
		ins = ins[:n]
	}
	return ins
}

// Ensure makes the plan's release run with the environment's replica
// count after a restart: instances that survived are kept (the runtime
// reattached to them), missing ones are started, extra ones and those of
// other releases are stopped, and the route points at what runs.
func (t *NodeTarget) Ensure(ctx context.Context, p Plan) error {
	if t.Runtime == nil {
		return apperr.E(apperr.Unavailable, "this Rampart runs no node runtime")
	}
	ins, err := t.Runtime.Instances(ctx, GroupOf(p.Env.ID))
	if err != nil {
		return err
	}
	cur, _, other := split(ins, p.Release.ID, nil)
	n := p.Env.Target.Replicas
	cur = t.dedupe(ctx, cur, n)
	if missing := n - len(cur); missing > 0 {
		more, err := t.startHealthy(ctx, p, p.Release, p.Secrets, missing)
		if err != nil {
			if len(cur) == 0 {
				return err
			}
			t.Logger.Warn("environment runs fewer replicas than asked", "environment", p.Env.Name, logging.KeyErr, err)
		}
		cur = append(cur, more...)
	}
	if err := t.route(ctx, p, nil, nil, cur, 100); err != nil {
		return err
	}
	t.stopAll(ctx, other)
	return nil
}

// Instances lists a node environment's instances with their release
// numbers and, when logBytes > 0, the end of their output.
func (s *Service) Instances(ctx context.Context, sc Scope, envName string, logBytes int) ([]InstanceJSON, error) {
	e, err := s.env(ctx, s.d.DB, sc, envName)
	if err != nil {
		return nil, err
	}
	if e.Target.Kind != KindNode {
		return nil, apperr.E(apperr.Invalid, "environment %s runs on %s: instances are listed for node environments", envName, e.Target.Kind)
	}
	if s.d.Runtime == nil {
		return nil, apperr.E(apperr.Unavailable, "this Rampart runs no node runtime")
	}
	ins, err := s.d.Runtime.Instances(ctx, GroupOf(e.ID))
	if err != nil {
		return nil, err
	}
	out := make([]InstanceJSON, 0, len(ins))
	for _, in := range ins {
		j := InstanceJSON{Instance: in, ReleaseNumber: s.releaseNumber(ctx, s.d.DB, in.ReleaseID)}
		if logBytes > 0 {
			b, err := s.d.Runtime.Logs(ctx, in.ID, logBytes)
			if err != nil && !apperr.Is(err, apperr.NotFound) {
				return nil, err
			}
			j.Logs = string(b)
		}
		out = append(out, j)
	}
	return out, nil
}

// weights returns the per-backend weights giving nOld old backends
// 100-share percent of the traffic together and nNew new ones share
// percent, reduced to the gateway's range (at most 1000 each).
func weights(share, nOld, nNew int) (oldW, newW int) {
	oldW, newW = (100-share)*max(nNew, 1), share*max(nOld, 1)
	if g := gcd(oldW, newW); g > 1 {
		oldW, newW = oldW/g, newW/g
	}
	if m := max(oldW, newW); m > 1000 {
		oldW, newW = max(oldW*1000/m, min(oldW, 1)), max(newW*1000/m, min(newW, 1))
	}
	return oldW, newW
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
