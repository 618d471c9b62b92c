package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Workload is one object running in an environment, as the runtime gate
// sees it.
type Workload struct {
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace,omitempty"`
	Name      string          `json:"name"`
	Object    json.RawMessage `json:"object"`
}

// Workloads lists what runs in an environment (a Kubernetes cluster's
// pods: package kubeworkloads; the node runtime's containers).
type Workloads interface {
	Workloads(ctx context.Context) ([]Workload, error)
}

// RuntimeTarget is an environment whose workloads the runtime gate
// checks periodically.
type RuntimeTarget struct {
	OrgID       int64
	Environment string
	Workloads   Workloads
	// Interval between checks (default 5 minutes).
	Interval time.Duration
}

// maxWorkloads caps one runtime check.
const maxWorkloads = 5000

// CheckRuntime lists what runs in target's environment, judges it at the
// runtime gate and records the decision (subject runtime:ENVIRONMENT).
func (s *Service) CheckRuntime(ctx context.Context, target RuntimeTarget) (Decision, error) {
	if err := ValidEnvironment(target.Environment); err != nil {
		return Decision{}, err
	}
	ws, err := target.Workloads.Workloads(ctx)
	if err != nil {
		return Decision{}, apperr.Wrap(err, apperr.Unavailable, "list the workloads of "+target.Environment)
	}
	if len(ws) > maxWorkloads {
		return Decision{}, apperr.E(apperr.TooLarge, "%s runs %d workloads, more than the %d one check judges", target.Environment, len(ws), maxWorkloads)
	}
	if ws == nil {
		ws = []Workload{}
	}
	doc, err := json.Marshal(map[string]any{"environment": target.Environment, "workloads": ws})
	if err != nil {
		return Decision{}, fmt.Errorf("encode runtime input: %w", err)
	}
	return s.Decide(ctx, GateRuntime, Input{OrgID: target.OrgID, Subject: "runtime:" + target.Environment,
		Environment: target.Environment, Document: doc, Caller: "runtime-check"})
}

// WatchRuntime checks each target every interval until ctx ends; a
// failed check is logged and tried again at the next tick.
func (s *Service) WatchRuntime(ctx context.Context, targets []RuntimeTarget) error {
	if len(targets) == 0 {
		return nil
	}
	done := make(chan struct{}, len(targets))
	for _, t := range targets {
		interval := t.Interval
		if interval <= 0 {
			interval = 5 * time.Minute
		}
		go func() {
			defer func() { done <- struct{}{} }()
			tk := time.NewTicker(interval)
			defer tk.Stop()
			for {
				d, err := s.CheckRuntime(ctx, t)
				switch {
				case errors.Is(err, context.Canceled):
				case err != nil:
					s.log.WarnContext(ctx, "runtime policy check failed", "environment", t.Environment, "err", err)
				case !d.Allow:
					s.log.WarnContext(ctx, "running workloads violate policy", "environment", t.Environment, "decision", d.ID, "reasons", len(d.Deny))
				}
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		}()
	}
	for range targets {
		<-done
	}
	return nil
}
