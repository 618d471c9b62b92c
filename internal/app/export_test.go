package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/deploy"
)

// DeployPullAuth is the Kubernetes target's PullAuth as newDeploy wires
// it, for tests.
func (a *App) DeployPullAuth(ctx context.Context, image string) (string, deploy.Value, bool) {
	return deployPulls{oci: a.OCI, ids: a.IDs, host: registryHost(a.url), log: a.log}.PullAuth(ctx, image)
}

// LocalRepository is preDeployGate.localRepository, for tests.
func LocalRepository(publicURL, uri string) (string, bool) {
	return preDeployGate{url: publicURL}.localRepository(uri)
}

// PreDeployDecide is the pre-deploy gate as newDeploy wires it, for
// benchmarks.
func (a *App) PreDeployDecide(ctx context.Context, in deploy.GateInput) (deploy.GateDecision, error) {
	g := preDeployGate{policy: a.Policy, oci: a.OCI, scm: a.SCM, host: registryHost(a.url), url: a.url, log: a.log}
	return g.Decide(ctx, deploy.GatePreDeploy, in)
}
