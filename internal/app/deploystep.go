package app

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/pipeline/imagesteps"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/vault"
)

// deployStep carries out pipelines' deploy steps through the deploy
// service, as the run's user with a credential limited to
// authz.ScopeDeployStep in the project of the run's repository. The
// release records the image digest, the run's commit, branch,
// repository, pull request and the work items (AB#N) its commit message
// and pull request mention. It is built before the deploy service and
// reads it when a step runs.
type deployStep struct{ a *App }

var _ imagesteps.Deployer = deployStep{}

// maxMentionText bounds the text searched for work item mentions.
const maxMentionText = 64 << 10

// DeployImage implements imagesteps.Deployer.
func (d deployStep) DeployImage(ctx context.Context, req imagesteps.DeployRequest) error {
	a := d.a
	if a.Deploy == nil {
		return apperr.E(apperr.Unavailable, "deploy steps are not available on this server (no deploy service)")
	}
	run := req.Run
	if run.Actor == "" || run.Actor == pipeline.SystemActor {
		return apperr.E(apperr.Forbidden, "deploy: this run has no user to deploy as (it was started by %s)", pipeline.SystemActor)
	}
	orgName, repoName, ok := strings.Cut(run.Repo, "/")
	if !ok {
		return apperr.E(apperr.Invalid, "deploy: bad repository name %q", run.Repo)
	}
	repo, err := a.SCM.Repo(ctx, orgName, repoName)
	if err != nil {
		return err
	}
	if repo.ProjectID == 0 {
		return apperr.E(apperr.Forbidden, "deploy: repository %s belongs to no project: environments are a project's", run.Repo)
	}
	org, err := a.IDs.Org(ctx, orgName)
	if err != nil {
		return err
	}
	project, err := projectName(ctx, a.IDs, org.ID, repo.ProjectID)
	if err != nil {
		return err
	}
	u, err := a.IDs.UserByName(ctx, run.Actor)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.Forbidden, "deploy: the run's user %s no longer exists", run.Actor)
		}
		return err
	}
	if u.Disabled {
		return apperr.E(apperr.Forbidden, "deploy: the run's user %s is disabled", run.Actor)
	}
	sub, err := a.IDs.Subject(ctx, u, []authz.Scope{authz.ScopeDeployStep}, "pipeline")
	if err != nil {
		return err
	}
	res := authz.Resource{OrgID: org.ID, ProjectID: repo.ProjectID, RequireMFA: org.RequireMFA}
	if err := authz.Check(sub, authz.DeployPipelineStep, res); err != nil {
		return apperr.Wrap(err, apperr.KindOf(err), "deploy: "+run.Actor+" may not deploy in "+orgName+"/"+project+": "+apperr.Message(err))
	}
	branch, _ := strings.CutPrefix(run.Ref, "refs/heads/")
	var mentions strings.Builder
	if cs, err := a.SCM.Log(ctx, repo, run.Commit, 1); err == nil && len(cs) > 0 {
		mentions.WriteString(cs[0].Message)
	}
	if run.PR != 0 {
		if pr, err := a.SCM.Pull(ctx, repo, run.PR); err == nil {
			mentions.WriteString("\n" + pr.Title + "\n" + pr.Body)
			if branch == "" || strings.HasPrefix(run.Ref, "refs/pull/") {
				branch = pr.Head
			}
		}
	}
	text := mentions.String()
	if len(text) > maxMentionText {
		text = text[:maxMentionText]
	}
	items := []string{}
	for _, r := range boards.ParseRefs(text) {
		if len(items) < 50 {
			items = append(items, "AB#"+strconv.FormatInt(r.Number, 10))
		}
	}
	reason := req.Reason
	if reason == "" {
		reason = "pipeline " + run.Repo + " run #" + strconv.FormatInt(run.Number, 10) + " job " + run.Job
	}
	if err := d.waitScanned(ctx, req); err != nil {
		return err
	}
	sc := deploy.Scope{OrgID: org.ID, ProjectID: repo.ProjectID, Org: org.Name, Project: project}
	actx := reqinfo.WithActor(ctx, u.ID, u.Username)
	_, err = a.Deploy.DeployAndWait(actx, sc, deploy.PipelineDeploy{
		Release: deploy.Release{Image: req.Image, Digest: req.Digest, SourceCommit: run.Commit, SourceBranch: branch,
			Repository: run.Repo, PullRequest: run.PR, WorkItems: items, Reason: truncateReason(reason + " (" + run.URL + ")")},
		Environment: req.Environment, Strategy: req.Strategy, ApprovalTimeout: req.ApprovalTimeout}, req.Log)
	return err
}

// waitScanned waits until the registry's scan has decided about the
// image (pulls of an image are refused until then, and the pre-deploy
// gate judges the scan's evidence), telling the job's log.
func (d deployStep) waitScanned(ctx context.Context, req imagesteps.DeployRequest) error {
	_, repoName, _ := strings.Cut(req.Image, "/")
	told := false
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		r, err := d.a.OCI.Repository(ctx, repoName)
		if err != nil {
			return err
		}
		det, err := d.a.OCI.Detail(ctx, r)
		if err != nil {
			return err
		}
		status := ""
		for _, m := range det.Manifests {
			if m.Digest == req.Digest {
				status = m.ScanStatus
			}
		}
		switch status {
		case "":
			return apperr.E(apperr.NotFound, "deploy: %s@%s is not in the registry", req.Image, req.Digest)
		case registry.ScanPending:
			if !told {
				req.Log("waiting for the registry's scan of " + req.Digest)
				told = true
			}
		default:
			req.Log("registry scan of " + req.Digest + ": " + status)
			return nil
		}
		select {
		case <-ctx.Done():
			return apperr.E(apperr.Unavailable, "deploy: the registry had not scanned %s when the step ended", req.Digest)
		case <-t.C:
		}
	}
}

func truncateReason(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}

// vaultRestarts is the vault's Restarter: a rotation of a secret of a
// project that asked for restarts restarts, one instance at a time, the
// environments whose running release references it.
type vaultRestarts struct{ a *App }

var _ vault.Restarter = vaultRestarts{}

// SecretRotated implements vault.Restarter.
func (r vaultRestarts) SecretRotated(ctx context.Context, ev vault.RotationEvent) error {
	if r.a.Deploy == nil || ev.Ref.Project == "" {
		return nil
	}
	rotated := ev.Ref.String()
	uses := func(ref string) bool {
		p, err := vault.ParseRef(ref)
		return err == nil && p.String() == rotated
	}
	ctx = reqinfo.WithActor(ctx, 0, "vault")
	_, err := r.a.Deploy.RestartUsing(ctx, ev.Ref.Org, ev.Ref.Project, uses, "secret "+rotated+" rotated to version "+strconv.Itoa(ev.Version))
	return err
}
