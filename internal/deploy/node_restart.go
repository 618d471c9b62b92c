package deploy

import (
	"context"
	"fmt"

	"github.com/rampartsec/rampart/internal/apperr"
)

var _ Restarter = (*NodeTarget)(nil)

// Restart replaces the instances of the release the environment runs by
// fresh instances of the same release, one at a time: each new instance
// starts with the plan's secrets (their current values), must pass its
// health check and gets its share of the traffic before one old
// instance stops. When a new instance fails, the old ones that remain
// get all the traffic again and the missing ones are started.
func (t *NodeTarget) Restart(ctx context.Context, p Plan) error {
	if t.Runtime == nil {
		return apperr.E(apperr.Unavailable, "this Rampart runs no node runtime (runc and root are needed)")
	}
	ins, err := t.Runtime.Instances(ctx, GroupOf(p.Env.ID))
	if err != nil {
		return err
	}
	var old, other []Instance
	for _, in := range ins {
		if in.ReleaseID == p.Release.ID {
			old = append(old, in)
		} else {
			other = append(other, in)
		}
	}
	t.stopAll(ctx, other)
	n := p.Env.Target.Replicas
	old = t.dedupe(ctx, old, n)
	if p.Progress != nil {
		p.Progress(fmt.Sprintf("restarting release #%d: replacing %d instance(s) one at a time", p.Release.Number, len(old)))
	}
	if len(old) == 0 {
		return t.recreate(ctx, p, nil, n)
	}
	return t.rolling(ctx, p, old, n)
}
