package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/vault"
)

// The vault's adapters: pipelines and deployments read secrets through
// its runtime injection (policies for the run or deployment, every read
// audited on its behalf), the registry signs with the vault's site key,
// and push protection reports bypassed secrets to the vault's leak
// matching.

// pipelineSecrets resolves pipeline jobs' secret references through
// vault.ResolveForJob: a reference is a vault reference (ORG/NAME,
// ORG/PROJECT/NAME or ORG/PROJECT/ENV/NAME) and a vault policy must grant
// it to pipeline:PROJECT:BRANCH:ENV of the run's repository (pipelines
// deploy to no environment, so ENV is matched against "": use "*").
type pipelineSecrets struct {
	vault *vault.Service
	ids   *identity.Service
}

var _ pipeline.SecretSource = pipelineSecrets{}

// Secret implements pipeline.SecretSource.
func (p pipelineSecrets) Secret(ctx context.Context, sc pipeline.SecretScope, ref string) (string, error) {
	org, _, _ := strings.Cut(sc.Repo, "/")
	if sc.ProjectID == 0 {
		return "", apperr.E(apperr.Forbidden, "repository %s belongs to no project: vault policies grant secrets to a project's pipelines", sc.Repo)
	}
	project, err := projectName(ctx, p.ids, sc.OrgID, sc.ProjectID)
	if err != nil {
		return "", err
	}
	branch, ok := strings.CutPrefix(sc.Ref, "refs/heads/")
	if !ok {
		branch = sc.Ref
	}
	run := "(before start)"
	if sc.RunID != 0 {
		run = strconv.FormatInt(sc.RunID, 10)
	}
	b, err := p.vault.ResolveForJob(ctx, vault.PipelineRun{Org: org, Project: project, Branch: branch, Run: run,
		Job: sc.Job, TriggeredBy: sc.Actor}, []vault.Injection{{Ref: ref, Env: "SECRET"}})
	if err != nil {
		return "", err
	}
	return string(b.Env[0].Value.Reveal()), nil
}

// projectName is the name of project id of org orgID.
func projectName(ctx context.Context, ids *identity.Service, orgID, id int64) (string, error) {
	ps, err := ids.Projects(ctx, orgID)
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.ID == id {
			return p.Name, nil
		}
	}
	return "", apperr.E(apperr.NotFound, "project %d not found", id)
}

// deploySecrets resolves a release's secret references through
// vault.ResolveForDeployment: each must be granted to
// deployment:PROJECT:ENV by a vault policy; every read is audited with the
// release and the user who deployed it.
type deploySecrets struct {
	vault *vault.Service
}

var _ deploy.Secrets = deploySecrets{}

// Resolve implements deploy.Secrets.
func (d deploySecrets) Resolve(ctx context.Context, sc deploy.Scope, refs []deploy.SecretRef) (map[string]deploy.Value, error) {
	specs := make([]vault.Injection, 0, len(refs))
	for _, r := range refs {
		if strings.Contains(r.Ref, "#") {
			return nil, apperr.InvalidField("secret_refs", "%q: vault secrets have one value; name the secret without #key", r.Ref)
		}
		specs = append(specs, vault.Injection{Ref: r.Ref, Env: r.Env})
	}
	by := sc.RequestedBy
	if by == "" {
		by = "deploy"
	}
	b, err := d.vault.ResolveForDeployment(ctx, vault.DeploymentRun{Org: sc.Org, Project: sc.Project, Env: sc.Env,
		Release: strconv.FormatInt(sc.Release, 10), RequestedBy: by}, specs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]deploy.Value, len(b.Env))
	for _, e := range b.Env {
		out[e.Name] = deploy.Value(e.Value.Reveal())
	}
	return out, nil
}

var _ registry.Signer = (*vault.SiteSigner)(nil)

// wireVault connects the vault to the components that use it after they
// are built: pipelines read secrets through it.
func (a *App) wireVault() {
	a.Pipelines.SetSecrets(pipelineSecrets{vault: a.Vault, ids: a.IDs})
}
