package pipeline

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/scm"
)

var (
	errTimeout  = errors.New("timed out")
	errLogLimit = errors.New("log limit exceeded")
)

// executeLocal runs a claimed job on this server and records its end.
// ctx is the job's own context (cancelled by Cancel or the log limit);
// srv ends when the server stops.
func (s *Service) executeLocal(ctx, srv context.Context, j JobRun, ex Executor) {
	res := s.runJob(ctx, j, ex)
	if srv.Err() != nil && context.Cause(ctx) == errShutdown {
		// Left running: the next start marks it failed with ReasonRestart.
		return
	}
	if err := s.runs.finishJob(context.WithoutCancel(srv), res, s.now()); err != nil {
		s.log.Error("record job end", "job", j.ID, "err", err)
	}
	s.logs.notify(j.ID)
}

// runJob runs every step of a job and returns its final state.
func (s *Service) runJob(parent context.Context, j JobRun, ex Executor) JobRun {
	start := s.now()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	timeout := j.Spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancelT := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancelT()

	fail := func(reason string) JobRun {
		j.Status, j.Reason = StatusFailed, reason
		for i := range j.Steps {
			if !finished(j.Steps[i].Status) {
				j.Steps[i].Status = StatusSkipped
			}
		}
		return j
	}
	r, err := s.runs.run(ctx, s.d.DB, j.RunID)
	if err != nil {
		return fail("run not found")
	}
	repo, err := s.d.Repos.RepoByID(ctx, r.RepoID)
	if err != nil {
		return fail("repository not found")
	}

	// Secrets first: their values must be masked from the first byte.
	env, secrets, reason := s.jobEnv(ctx, r, repo, j)
	log, err := s.openLog(ctx, j, secrets, func() { cancel(errLogLimit) })
	if err != nil {
		s.log.Error("open job log", "job", j.ID, "err", err)
		return fail("could not open the log")
	}
	defer func() {
		_ = log.Close()
	}()
	isolation := "isolated"
	if !ex.Isolated() {
		isolation = "NOT isolated: it runs as a plain process of the machine"
	}
	log.Printf("\x1b[1m[rampart] job %s of %s run #%d, commit %s, executor %s (%s)\x1b[0m\n", j.Name, r.Repo, r.Number, short(r.SHA), ex.Name(), isolation)
	if reason != "" {
		log.Printf("\x1b[31m[rampart] %s\x1b[0m\n", reason)
		return fail(reason)
	}

	disk := j.Spec.Limits.Disk
	if disk <= 0 {
		disk = s.d.DefaultDisk
	}
	dir := s.workDir(j.ID)
	_ = os.RemoveAll(dir)
	ws, err := ex.Workspace(dir, disk)
	if err != nil {
		s.log.Error("workspace", "job", j.ID, "err", err)
		log.Printf("\x1b[31m[rampart] could not prepare the workspace\x1b[0m\n")
		return fail("could not prepare the workspace")
	}
	defer func() {
		if err := ws.Cleanup(); err != nil {
			s.log.Warn("remove workspace", "job", j.ID, "err", err)
		}
	}()
	if err := checkout(ctx, s.d.Repos.Path(repo), r.SHA, dir, ws.UID, ws.GID); err != nil {
		s.log.Warn("checkout", "job", j.ID, "err", err)
		log.Printf("\x1b[31m[rampart] checkout of %s failed: %v\x1b[0m\n", short(r.SHA), err)
		return fail("checkout failed")
	}
	s.restoreCaches(ctx, repo, j.Spec, dir, ws, log)

	failed := false
	for i := range j.Steps {
		st := &j.Steps[i]
		spec := j.Spec.Steps[i]
		cond, _ := ParseCondition(spec.If)
		if ctx.Err() != nil && !cond.UsesStatus() {
			st.Status = StatusSkipped
			continue
		}
		if !cond.Eval(&Context{Vars: runVars(r, j.Spec), Failed: failed, Cancelled: context.Cause(ctx) == errCancelled}) {
			st.Status = StatusSkipped
			_ = s.runs.setStep(ctx, j.ID, *st)
			continue
		}
		st.Status, st.StartedAt = StatusRunning, s.now()
		_ = s.runs.setStep(context.WithoutCancel(ctx), j.ID, *st)
		log.Printf("\x1b[1;36m▶ %s\x1b[0m\n", st.Name)
		stepCtx := ctx
		var cancelStep context.CancelFunc = func() {}
		if spec.Timeout > 0 {
			stepCtx, cancelStep = context.WithTimeoutCause(ctx, spec.Timeout, errTimeout)
		}
		code, err := s.runStep(stepCtx, r, repo, j, i, spec, ex, dir, env, log)
		cancelStep()
		st.ExitCode, st.FinishedAt = code, s.now()
		switch {
		case err != nil:
			log.Printf("\x1b[31m[rampart] step %q: %v\x1b[0m\n", st.Name, err)
			st.Status = StatusFailed
		case code != 0:
			st.Status = StatusFailed
			log.Printf("\x1b[31m[rampart] step %q exited with code %d\x1b[0m\n", st.Name, code)
		default:
			st.Status = StatusSuccess
		}
		if st.Status == StatusFailed && !spec.ContinueOnError {
			failed = true
			if j.ExitCode == 0 {
				j.ExitCode = code
			}
		}
		if stepCtx.Err() != nil && ctx.Err() == nil && spec.Timeout > 0 {
			log.Printf("\x1b[31m[rampart] step %q timed out after %s\x1b[0m\n", st.Name, spec.Timeout)
		}
		_ = s.runs.setStep(context.WithoutCancel(ctx), j.ID, *st)
	}
	if !failed && ctx.Err() == nil {
		s.saveCaches(ctx, repo, j.Spec, dir, log)
	}
	s.saveArtifacts(context.WithoutCancel(ctx), j, dir, log)

	j.Status = StatusSuccess
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errLogLimit) || log.Exceeded():
		j.Status, j.Reason = StatusFailed, fmt.Sprintf("the log exceeded its limit of %d bytes", log.limit.limit)
	case errors.Is(cause, errTimeout):
		j.Status, j.Reason = StatusFailed, "timed out after "+timeout.String()
		log.Printf("\x1b[31m[rampart] the job timed out after %s and was killed\x1b[0m\n", timeout)
	case errors.Is(cause, errCancelled):
		j.Status, j.Reason = StatusCancelled, "run cancelled"
		log.Printf("\x1b[33m[rampart] cancelled\x1b[0m\n")
	case failed:
		j.Status, j.Reason = StatusFailed, "a step failed"
	}
	log.Printf("\x1b[1m[rampart] job %s: %s in %s\x1b[0m\n", j.Name, j.Status, s.now().Sub(start).Round(time.Millisecond))
	_ = log.Close()
	j.LogBytes = log.Size()
	for i := range j.Steps {
		if !finished(j.Steps[i].Status) {
			j.Steps[i].Status = StatusSkipped
		}
	}
	return j
}

// jobEnv builds a job's environment; secrets are the values to mask;
// reason is set when the job cannot start.
func (s *Service) jobEnv(ctx context.Context, r Run, repo scm.Repo, j JobRun) (env map[string]string, secrets []string, reason string) {
	env = map[string]string{
		"CI": "true", "RAMPART": "true", "RAMPART_REPO": r.Repo, "RAMPART_SHA": r.SHA, "RAMPART_REF": r.Ref,
		"RAMPART_EVENT": r.Event, "RAMPART_RUN": strconv.FormatInt(r.Number, 10), "RAMPART_JOB": j.Name,
	}
	if b, ok := cutPrefix(r.Ref, "refs/heads/"); ok {
		env["RAMPART_BRANCH"] = b
	}
	for k, v := range j.Spec.Matrix {
		env["MATRIX_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))] = v
	}
	for k, v := range j.Spec.Env {
		env[k] = v
	}
	if len(j.Spec.Secrets) == 0 {
		return env, nil, ""
	}
	if s.d.Secrets == nil {
		return env, nil, "the job references secrets but no secret source configured on this server"
	}
	scope := SecretScope{OrgID: repo.OrgID, ProjectID: repo.ProjectID, RepoID: repo.ID, Repo: repo.FullName(),
		Ref: r.Ref, RunID: r.ID, Job: j.Name, Actor: r.Actor}
	for name, ref := range j.Spec.Secrets {
		v, err := s.d.Secrets.Secret(ctx, scope, ref)
		if err != nil {
			return env, secrets, "secret " + ref + " could not be read"
		}
		if len(v) < minSecretLen {
			return env, secrets, "secret " + ref + " is too short to be masked"
		}
		env[name] = v
		secrets = append(secrets, v)
	}
	return env, secrets, ""
}

func envList(env map[string]string, extra map[string]string) []string {
	merged := make(map[string]string, len(env)+len(extra))
	for k, v := range env {
		merged[k] = v
	}
	for k, v := range extra {
		merged[k] = v
	}
	out := make([]string, 0, len(merged))
	for k, v := range merged {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// runStep runs one step and returns its exit code.
func (s *Service) runStep(ctx context.Context, r Run, repo scm.Repo, j JobRun, idx int, spec Step, ex Executor, dir string,
	env map[string]string, log *jobLog) (int, error) {
	switch spec.Type {
	case StepRun:
		res, err := ex.Exec(ctx, ExecSpec{
			ID:        "job-" + s.instance + "-" + strconv.FormatInt(j.ID, 10) + "-" + strconv.Itoa(idx),
			Workspace: dir, Image: j.Spec.Image, Script: spec.Run, Env: envList(env, spec.Env),
			Network: j.Spec.Network, Limits: j.Spec.Limits, Output: log, Masked: s.d.MaskPaths,
		})
		if err != nil {
			s.log.Warn("exec", "job", j.ID, "err", err)
			return -1, errors.New("the command could not be started")
		}
		if res.OOM {
			log.Printf("\x1b[31m[rampart] killed: the job exceeded its memory limit\x1b[0m\n")
			if res.ExitCode == 0 {
				res.ExitCode = 137
			}
		}
		if res.PidsLimited {
			// A fork bomb dies out against the limit; the job still fails.
			log.Printf("\x1b[31m[rampart] the job reached its process limit: forks were refused\x1b[0m\n")
			if res.ExitCode == 0 {
				res.ExitCode = 1
			}
		}
		return res.ExitCode, nil
	case StepScan:
		if s.d.Scanner == nil {
			return -1, errors.New("the scanner is not available on this server")
		}
		target := filepath.Join(dir, filepath.FromSlash(spec.With["path"]))
		report, failed, err := s.d.Scanner.ScanDir(ctx, target, spec.With["fail-on"])
		if err != nil {
			s.log.Warn("scan step", "job", j.ID, "err", err)
			return -1, errors.New("the scan failed")
		}
		_, _ = io.WriteString(log, report)
		if r.PR != 0 {
			s.commentScan(ctx, repo, r, j.Name, report)
		}
		if failed {
			return 1, nil
		}
		return 0, nil
	default:
		if s.d.Images == nil {
			return -1, fmt.Errorf("%s steps are not available on this server (no image builder configured)", spec.Type)
		}
		err := s.d.Images.ImageStep(ctx, ImageStep{Type: spec.Type, With: spec.With, Workspace: dir, Env: env, Log: log,
			Run: RunRef{RunID: r.ID, Number: r.Number, Repo: r.Repo, Commit: r.SHA, Ref: r.Ref, Job: j.Name, URL: s.runURL(repo, r.Number), Actor: r.Actor,
				PR: r.PR, Event: r.Event}, Network: j.Spec.Network})
		if err != nil {
			return 1, err
		}
		return 0, nil
	}
}

// commentScan posts a scan step's report on the run's pull request.
func (s *Service) commentScan(ctx context.Context, repo scm.Repo, r Run, job, report string) {
	pr, err := s.d.Repos.Pull(ctx, repo, r.PR)
	if err != nil {
		return
	}
	body := fmt.Sprintf("**Scan** (pipeline run #%d, job %s, commit %s)\n\n```\n%s\n```", r.Number, job, short(r.SHA), stripANSI(report))
	if len(body) > 60000 {
		body = body[:60000] + "\n…(truncated)\n```"
	}
	if _, err := s.d.Repos.AddComment(systemCtx(ctx), repo, pr, scm.Comment{Body: body}); err != nil {
		s.log.Warn("scan comment", "run", r.ID, "err", err)
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkout fetches sha from the bare repository into dir and gives the
// files to uid:gid (when uid >= 0).
func checkout(ctx context.Context, repoPath, sha, dir string, uid, gid int) error {
	if !validSHA(sha) {
		return errors.New("invalid commit id")
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=uploadpack.allowAnySHA1InWant", "GIT_CONFIG_VALUE_0=true",
			// The workspace belongs to the job's user, not to Rampart's.
			"GIT_CONFIG_KEY_1=safe.directory", "GIT_CONFIG_VALUE_1=*")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("git %s: %s", args[0], strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := git("init", "-q"); err != nil {
		return err
	}
	if err := git("fetch", "-q", "--no-tags", repoPath, sha); err != nil {
		return err
	}
	if err := git("checkout", "-q", "--detach", sha); err != nil {
		return err
	}
	if uid < 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// MaxArtifactBytes bounds a job's artifact archive.
const MaxArtifactBytes = 512 << 20

func artifactKey(runID, jobID int64) string {
	return "artifacts/run-" + strconv.FormatInt(runID, 10) + "/job-" + strconv.FormatInt(jobID, 10) + ".tar.gz"
}

// saveArtifacts stores the job's artifact paths as one tar.gz.
func (s *Service) saveArtifacts(ctx context.Context, j JobRun, dir string, log *jobLog) {
	if len(j.Spec.Artifacts) == 0 {
		return
	}
	w, err := s.d.Blobs.Create(ctx, artifactKey(j.RunID, j.ID))
	if err != nil {
		log.Printf("\x1b[31m[rampart] artifacts: could not store them\x1b[0m\n")
		return
	}
	n, size, err := writeTarGz(w, dir, j.Spec.Artifacts, MaxArtifactBytes)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Printf("\x1b[31m[rampart] artifacts: %v\x1b[0m\n", err)
		return
	}
	if _, err := s.d.DB.Exec(ctx, `INSERT INTO pipeline_artifacts (job_id, name, size, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (job_id, name) DO UPDATE SET size = excluded.size`, j.ID, "artifacts.tar.gz", size, s.now().UnixMicro()); err != nil {
		s.log.Warn("record artifacts", "job", j.ID, "err", err)
	}
	log.Printf("[rampart] artifacts: %d files, %d bytes\n", n, size)
}

// writeTarGz archives the regular files under the given workspace paths
// (never following symbolic links out of dir).
func writeTarGz(w io.Writer, dir string, paths []string, max int64) (files int, size int64, err error) {
	cw := &countWriter{w: w}
	gz := gzip.NewWriter(cw)
	tw := tar.NewWriter(gz)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()
	for _, p := range paths {
		p = filepath.Clean(filepath.FromSlash(p))
		err := fs.WalkDir(root.FS(), filepath.ToSlash(p), func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if cw.n+info.Size() > max {
				return fmt.Errorf("over the limit of %d bytes", max)
			}
			f, err := root.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(info.Mode().Perm()), Size: info.Size(), Typeflag: tar.TypeReg, ModTime: info.ModTime()}); err != nil {
				return err
			}
			if _, err := io.CopyN(tw, f, info.Size()); err != nil {
				return err
			}
			files++
			return nil
		})
		if err != nil {
			return files, cw.n, err
		}
	}
	if err := tw.Close(); err != nil {
		return files, cw.n, err
	}
	if err := gz.Close(); err != nil {
		return files, cw.n, err
	}
	return files, cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func cacheKey(repoID int64, key string) string {
	return "caches/repo-" + strconv.FormatInt(repoID, 10) + "/" + key + ".tar.gz"
}

// restoreCaches unpacks the job's caches into the workspace.
func (s *Service) restoreCaches(ctx context.Context, repo scm.Repo, j Job, dir string, ws Workspace, log *jobLog) {
	for _, c := range j.Caches {
		rc, err := s.d.Blobs.Open(ctx, cacheKey(repo.ID, c.Key), 0)
		if err != nil {
			log.Printf("[rampart] cache %s: none yet\n", c.Key)
			continue
		}
		n, err := extractTarGz(rc, dir, ws.UID, ws.GID, MaxArtifactBytes)
		rc.Close()
		if err != nil {
			log.Printf("\x1b[33m[rampart] cache %s: not restored: %v\x1b[0m\n", c.Key, err)
			continue
		}
		log.Printf("[rampart] cache %s: restored %d files\n", c.Key, n)
	}
}

// saveCaches stores the job's cache paths after a successful job.
func (s *Service) saveCaches(ctx context.Context, repo scm.Repo, j Job, dir string, log *jobLog) {
	for _, c := range j.Caches {
		w, err := s.d.Blobs.Create(ctx, cacheKey(repo.ID, c.Key))
		if err != nil {
			continue
		}
		n, size, err := writeTarGz(w, dir, c.Paths, MaxArtifactBytes)
		w.Close()
		if err != nil {
			log.Printf("\x1b[33m[rampart] cache %s: not saved: %v\x1b[0m\n", c.Key, err)
			_ = s.d.Blobs.Delete(ctx, cacheKey(repo.ID, c.Key))
			continue
		}
		log.Printf("[rampart] cache %s: saved %d files (%d bytes)\n", c.Key, n, size)
	}
}

// extractTarGz unpacks regular files into dir through an os.Root, so no
// entry can land outside it.
func extractTarGz(r io.Reader, dir string, uid, gid int, max int64) (int, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	tr := tar.NewReader(gz)
	var total int64
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		total += h.Size
		if total > max {
			return n, fmt.Errorf("over %d bytes", max)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return n, err
		}
		f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode)&0o755)
		if err != nil {
			return n, err
		}
		_, err = io.CopyN(f, tr, h.Size)
		f.Close()
		if err != nil {
			return n, err
		}
		if uid >= 0 {
			_ = root.Lchown(name, uid, gid)
		}
		n++
	}
}
