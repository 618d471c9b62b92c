package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scm"
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

// Limits of leak reporting: what one push may make the vault compare.
const (
	maxLeakFindings   = 1000
	maxLeakCandidates = 32
	maxLeakBlob       = 8 << 20
	maxLeakLine       = 64 << 10
	maxLeakReport     = 10000 // vault.ReportLeaks's limit per call
)

// vaultLeaks hands secrets pushed past push protection to the vault's
// leak matching. scm tells where each secret is (commit, path, line and
// columns), never its value: the adapter reads the line from the pushed
// commit — still in git's quarantine during the pre-receive check — and
// reports the matched text and the words of the line; the vault compares
// keyed fingerprints and records a leak only for values it holds.
type vaultLeaks struct {
	vault *vault.Service
	repos interface{ Path(scm.Repo) string }
}

var _ scm.LeakHandler = vaultLeaks{}

// SecretsLeaked implements scm.LeakHandler.
func (l vaultLeaks) SecretsLeaked(ctx context.Context, repo scm.Repo, findings []report.Finding) error {
	if len(findings) > maxLeakFindings {
		findings = findings[:maxLeakFindings]
	}
	dir := l.repos.Path(repo)
	blobs := map[string][]byte{}
	var found []vault.Found
	var errs []error
	for _, f := range findings {
		loc := f.Location
		if loc.Commit == "" || loc.Path == "" || loc.StartLine < 1 {
			continue
		}
		key := loc.Commit + ":" + loc.Path
		data, ok := blobs[key]
		if !ok {
			var err error
			if data, err = readPushedBlob(ctx, dir, loc.Commit, loc.Path); err != nil {
				errs = append(errs, fmt.Errorf("read %s: %w", key, err))
				continue
			}
			blobs[key] = data
		}
		where := fmt.Sprintf("%s@%s:%s:%d", repo.FullName(), loc.Commit, loc.Path, loc.StartLine)
		for _, c := range leakCandidates(data, loc) {
			v := vault.NewValue([]byte(c))
			found = append(found, vault.Found{Value: &v, Source: "push-protection", Location: where})
		}
	}
	// The vault compares at most maxLeakReport findings per call: a push
	// with more (a fixtures file of fake tokens next to a real one) is
	// reported in parts, so none of its findings goes unmatched.
	for len(found) > 0 {
		n := min(len(found), maxLeakReport)
		if _, err := l.vault.ReportLeaks(ctx, found[:n]); err != nil {
			errs = append(errs, err)
		}
		found = found[n:]
	}
	if len(errs) > 0 {
		return fmt.Errorf("report leaked secrets of %s: %w", repo.FullName(), errs[0])
	}
	return nil
}

// readPushedBlob reads COMMIT:PATH from the repository at dir, looking
// also in the quarantine directories of pushes being received (git
// receive-pack keeps a push's objects there until its hooks accept it).
func readPushedBlob(ctx context.Context, dir, commit, path string) ([]byte, error) {
	if !isHex(commit) || strings.HasPrefix(path, "-") || strings.ContainsRune(path, 0) {
		return nil, apperr.E(apperr.Invalid, "bad commit or path")
	}
	var alternates []string
	for _, pat := range []string{"tmp_objdir-incoming-*", "incoming-*"} {
		m, _ := filepath.Glob(filepath.Join(dir, "objects", pat))
		alternates = append(alternates, m...)
	}
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "cat-file", "blob", commit+":"+path)
	cmd.Env = append(os.Environ(), "GIT_ALTERNATE_OBJECT_DIRECTORIES="+strings.Join(alternates, string(os.PathListSeparator)))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	data, rerr := io.ReadAll(io.LimitReader(out, maxLeakBlob))
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return data, rerr
}

func isHex(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// leakCandidates are the texts of a finding that may be a vault value:
// the matched text (by columns, 1-based runes, EndCol just past the end)
// and the words of its line, split at spaces, quotes and the separators
// of assignments.
func leakCandidates(data []byte, loc report.Location) []string {
	lines := bytes.Split(data, []byte("\n"))
	if loc.StartLine > len(lines) {
		return nil
	}
	line := string(bytes.TrimRight(lines[loc.StartLine-1], "\r"))
	if len(line) > maxLeakLine || !utf8.ValidString(line) {
		return nil
	}
	var out []string
	add := func(s string) {
		if len(s) < 4 || len(out) >= maxLeakCandidates {
			return
		}
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	if loc.StartCol > 0 && (loc.EndLine == 0 || loc.EndLine == loc.StartLine) && loc.EndCol > loc.StartCol {
		runes := []rune(line)
		if loc.EndCol-1 <= len(runes) {
			add(string(runes[loc.StartCol-1 : loc.EndCol-1]))
		}
	}
	add(strings.TrimSpace(line))
	for _, w := range strings.FieldsFunc(line, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune("\"'`=:,;()[]{}<>", r)
	}) {
		add(w)
	}
	return out
}

// wireVault connects the vault to the components that use it after they
// are built: pipelines read secrets through it.
func (a *App) wireVault() {
	a.Pipelines.SetSecrets(pipelineSecrets{vault: a.Vault, ids: a.IDs})
}

// scmPaths finds repositories on disk through scm, which is built after
// the leak handler it is given.
type scmPaths struct{ a *App }

func (p scmPaths) Path(r scm.Repo) string { return p.a.SCM.Path(r) }
