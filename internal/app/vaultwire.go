package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/pipeline"
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

// wireVault connects the vault to the components that use it after they
// are built: pipelines read secrets through it.
func (a *App) wireVault() {
	a.Pipelines.SetSecrets(pipelineSecrets{vault: a.Vault, ids: a.IDs})
}
