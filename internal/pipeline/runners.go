package pipeline

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// Remote runners (`rampart runner`) take queued jobs over HTTPS: they
// long-poll POST /api/v1/runners/jobs, download the commit's files, run
// the steps with their own executor, send the log in chunks (each answer
// says whether the run was cancelled) and report the end. Their token is
// a site administrator's, scoped to runner.

// RunnerClaimRequest asks for a job.
type RunnerClaimRequest struct {
	// Runner names the runner (logs, the job's runner field).
	Runner string `json:"runner"`
	// Executors the runner has: "container", "host".
	Executors []string `json:"executors"`
	// WaitSeconds is how long to wait for a job (0-30, default 25).
	WaitSeconds int `json:"wait_seconds,omitempty"`
}

// RunnerJob is a job handed to a runner.
type RunnerJob struct {
	JobID    int64             `json:"job_id"`
	RunID    int64             `json:"run_id"`
	Repo     string            `json:"repo"`
	SHA      string            `json:"sha"`
	Executor string            `json:"executor"`
	Spec     Job               `json:"spec"`
	Vars     map[string]string `json:"vars"` // the names `if` conditions see
	Env      map[string]string `json:"env"`  // secrets included
	// Secrets are the values the runner masks too (the server masks
	// again what it stores).
	Secrets []string `json:"secrets"`
}

// RunnerLogResponse answers a log chunk.
type RunnerLogResponse struct {
	Cancel bool `json:"cancel"`
}

// RunnerFinishRequest reports a job's end.
type RunnerFinishRequest struct {
	Status   string           `json:"status"`
	Reason   string           `json:"reason,omitempty"`
	ExitCode int              `json:"exit_code"`
	Steps    []RunnerStepJSON `json:"steps"`
}

// RunnerStepJSON is a step's end reported by a runner.
type RunnerStepJSON struct {
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
}

// remoteJob is a job running on a remote runner, as this server tracks it.
type remoteJob struct {
	mu       sync.Mutex
	job      JobRun
	log      *jobLog
	lastSeen time.Time
}

// remoteTimeout fails a remote job whose runner stopped reporting.
const remoteTimeout = 2 * time.Minute

type remoteJobs struct {
	mu   sync.Mutex
	jobs map[int64]*remoteJob
	wake chan struct{} // closed and replaced when jobs are queued
}

func (s *Service) runnerRoutes() []httpapi.Route {
	const base = httpapi.Prefix + "/runners/jobs"
	return []httpapi.Route{
		{Method: "POST", Path: base, Tag: "runners", Summary: "Take a queued job, waiting up to wait_seconds (remote runners: a site administrator's token with the runner scope); 204 when none",
			Action: authz.RunnerJobs, Request: RunnerClaimRequest{}, Response: RunnerJob{}, Handler: s.apiClaim},
		{Method: "GET", Path: base + "/{job}/source", Tag: "runners", Summary: "The job's commit as a tar archive (remote runners)",
			Action: authz.RunnerJobs, Handler: s.apiSource},
		{Method: "POST", Path: base + "/{job}/log", Tag: "runners", Summary: "Append a chunk of the job's log (application/octet-stream, at most 1 MiB; remote runners)",
			Action: authz.RunnerJobs, Response: RunnerLogResponse{}, Handler: s.apiRunnerLog},
		{Method: "POST", Path: base + "/{job}/finish", Tag: "runners", Summary: "Report the job's end (remote runners)",
			Action: authz.RunnerJobs, Request: RunnerFinishRequest{}, Status: http.StatusNoContent, Handler: s.apiFinish},
	}
}

func (s *Service) apiClaim(c *httpapi.Call) error {
	var req RunnerClaimRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	if req.Runner == "" || len(req.Runner) > 64 || strings.ContainsAny(req.Runner, " \t\r\n/") {
		return apperr.InvalidField("runner", "runner must be a name of 1 to 64 characters without spaces or slashes")
	}
	if len(req.Executors) == 0 {
		return apperr.InvalidField("executors", "list the executors the runner has (container, host)")
	}
	for _, e := range req.Executors {
		if e != ExecutorContainer && e != ExecutorHost {
			return apperr.InvalidField("executors", "unknown executor %q (container, host)", e)
		}
	}
	wait := 25 * time.Second
	if req.WaitSeconds < 0 || req.WaitSeconds > 30 {
		return apperr.InvalidField("wait_seconds", "wait_seconds must be between 0 and 30")
	} else if req.WaitSeconds > 0 {
		wait = time.Duration(req.WaitSeconds) * time.Second
	}
	ctx := c.R.Context()
	deadline := time.Now().Add(wait)
	for {
		job, ok, err := s.claimRemote(ctx, req.Runner, req.Executors)
		if err != nil {
			return err
		}
		if ok {
			return c.JSON(job)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return c.NoContent()
		}
		s.remote.mu.Lock()
		wake := s.remote.wake
		s.remote.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-time.After(min(left, time.Second)):
		}
	}
}

// claimRemote claims the oldest queued job a runner with these executors
// can run, within the per-project limit.
func (s *Service) claimRemote(ctx context.Context, runner string, executors []string) (RunnerJob, bool, error) {
	rows, err := s.d.DB.Query(ctx, `SELECT j.id, CASE WHEN r.project_id <> 0 THEN r.project_id ELSE -r.org_id END
		FROM pipeline_jobs j JOIN pipeline_runs r ON r.id = j.run_id WHERE j.status = 'queued' ORDER BY j.id LIMIT 100`)
	if err != nil {
		return RunnerJob{}, false, err
	}
	type cand struct{ id, project int64 }
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.project); err != nil {
			rows.Close()
			return RunnerJob{}, false, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if len(cands) == 0 {
		return RunnerJob{}, false, nil
	}
	perProject, err := s.runningPerProject(ctx)
	if err != nil {
		return RunnerJob{}, false, err
	}
	has := func(e string) bool {
		for _, x := range executors {
			if x == e {
				return true
			}
		}
		return false
	}
	for _, c := range cands {
		if perProject[c.project] >= s.d.MaxPerProject {
			continue
		}
		j, err := s.runs.job(ctx, c.id)
		if err != nil {
			return RunnerJob{}, false, err
		}
		exec := j.Spec.Executor
		switch {
		case exec != "" && !has(exec):
			continue
		case exec == "" && j.Spec.Image != "":
			if !has(ExecutorContainer) {
				continue
			}
			exec = ExecutorContainer
		case exec == "":
			exec = executors[0]
		}
		ok, err := s.runs.claim(ctx, c.id, "remote:"+runner, exec, s.now())
		if err != nil {
			return RunnerJob{}, false, err
		}
		if !ok {
			continue
		}
		j.Executor, j.Runner, j.Status = exec, "remote:"+runner, StatusRunning
		r, err := s.runs.run(ctx, s.d.DB, j.RunID)
		if err != nil {
			return RunnerJob{}, false, err
		}
		repo, err := s.d.Repos.RepoByID(ctx, r.RepoID)
		if err != nil {
			return RunnerJob{}, false, err
		}
		env, secrets, reason := s.jobEnv(ctx, r, repo, j)
		rj := &remoteJob{job: j, lastSeen: s.now()}
		if rj.log, err = s.openLog(ctx, j, secrets, nil); err != nil {
			return RunnerJob{}, false, err
		}
		rj.log.Printf("\x1b[1m[rampart] job %s of %s run #%d, commit %s, on runner %s, executor %s\x1b[0m\n", j.Name, r.Repo, r.Number, short(r.SHA), runner, exec)
		if reason != "" {
			rj.log.Printf("\x1b[31m[rampart] %s\x1b[0m\n", reason)
			s.finishRemote(ctx, rj, RunnerFinishRequest{Status: StatusFailed, Reason: reason})
			continue
		}
		s.remote.mu.Lock()
		s.remote.jobs[j.ID] = rj
		s.remote.mu.Unlock()
		return RunnerJob{JobID: j.ID, RunID: r.ID, Repo: r.Repo, SHA: r.SHA, Executor: exec, Spec: j.Spec,
			Vars: runVars(r, j.Spec), Env: env, Secrets: secrets}, true, nil
	}
	return RunnerJob{}, false, nil
}

func (s *Service) remoteJob(c *httpapi.Call) (*remoteJob, error) {
	id, err := strconv.ParseInt(c.R.PathValue("job"), 10, 64)
	if err != nil {
		return nil, apperr.E(apperr.NotFound, "job %q not found", c.R.PathValue("job"))
	}
	s.remote.mu.Lock()
	rj := s.remote.jobs[id]
	s.remote.mu.Unlock()
	if rj == nil {
		return nil, apperr.E(apperr.NotFound, "job %d is not running on a runner", id)
	}
	return rj, nil
}

func (s *Service) apiSource(c *httpapi.Call) error {
	rj, err := s.remoteJob(c)
	if err != nil {
		return err
	}
	r, err := s.runs.run(c.R.Context(), s.d.DB, rj.job.RunID)
	if err != nil {
		return err
	}
	repo, err := s.d.Repos.RepoByID(c.R.Context(), r.RepoID)
	if err != nil {
		return err
	}
	if !validSHA(r.SHA) {
		return apperr.E(apperr.Invalid, "invalid commit")
	}
	cmd := exec.CommandContext(c.R.Context(), "git", "--git-dir", s.d.Repos.Path(repo), "archive", "--format=tar", r.SHA)
	c.W.Header().Set("Content-Type", "application/x-tar")
	cmd.Stdout = c.W
	return cmd.Run()
}

// maxLogChunk bounds one log upload.
const maxLogChunk = 1 << 20

func (s *Service) apiRunnerLog(c *httpapi.Call) error {
	rj, err := s.remoteJob(c)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.W, c.R.Body, maxLogChunk))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.E(apperr.TooLarge, "a log chunk may be at most %d bytes", maxLogChunk)
		}
		return apperr.Wrap(err, apperr.Invalid, "read log chunk")
	}
	rj.mu.Lock()
	rj.lastSeen = s.now()
	_, _ = rj.log.Write(data)
	exceeded := rj.log.Exceeded()
	rj.mu.Unlock()
	status, err := s.runs.jobStatus(c.R.Context(), rj.job.ID)
	if err != nil {
		return err
	}
	return c.JSON(RunnerLogResponse{Cancel: status != StatusRunning || exceeded})
}

func (s *Service) apiFinish(c *httpapi.Call) error {
	var req RunnerFinishRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	rj, err := s.remoteJob(c)
	if err != nil {
		return err
	}
	switch req.Status {
	case StatusSuccess, StatusFailed, StatusCancelled:
	default:
		return apperr.InvalidField("status", "status must be success, failed or cancelled")
	}
	if len(req.Steps) > len(rj.job.Steps) || len(req.Reason) > 500 {
		return apperr.E(apperr.Invalid, "more steps than the job has, or a reason over 500 bytes")
	}
	for _, st := range req.Steps {
		switch st.Status {
		case StatusSuccess, StatusFailed, StatusSkipped, StatusCancelled:
		default:
			return apperr.InvalidField("steps", "step status must be success, failed, skipped or cancelled")
		}
	}
	s.finishRemote(c.R.Context(), rj, req)
	return c.NoContent()
}

// finishRemote records a remote job's end and forgets it.
func (s *Service) finishRemote(ctx context.Context, rj *remoteJob, req RunnerFinishRequest) {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	j := rj.job
	j.Status, j.Reason, j.ExitCode = req.Status, req.Reason, req.ExitCode
	if rj.log.Exceeded() {
		j.Status, j.Reason = StatusFailed, "the log exceeded its limit of "+strconv.FormatInt(rj.log.limit.limit, 10)+" bytes"
	}
	for i := range j.Steps {
		if i < len(req.Steps) {
			j.Steps[i].Status, j.Steps[i].ExitCode = req.Steps[i].Status, req.Steps[i].ExitCode
		} else if !finished(j.Steps[i].Status) {
			j.Steps[i].Status = StatusSkipped
		}
	}
	rj.log.Printf("\x1b[1m[rampart] job %s: %s\x1b[0m\n", j.Name, j.Status)
	_ = rj.log.Close()
	j.LogBytes = rj.log.Size()
	if err := s.runs.finishJob(context.WithoutCancel(ctx), j, s.now()); err != nil {
		s.log.Error("record remote job end", "job", j.ID, "err", err)
	}
	s.remote.mu.Lock()
	delete(s.remote.jobs, j.ID)
	s.remote.mu.Unlock()
	s.logs.notify(j.ID)
	s.poke()
}

// expireRemote fails remote jobs whose runner went silent.
func (s *Service) expireRemote(ctx context.Context) {
	s.remote.mu.Lock()
	var stale []*remoteJob
	for _, rj := range s.remote.jobs {
		rj.mu.Lock()
		if s.now().Sub(rj.lastSeen) > remoteTimeout {
			stale = append(stale, rj)
		}
		rj.mu.Unlock()
	}
	s.remote.mu.Unlock()
	for _, rj := range stale {
		s.finishRemote(ctx, rj, RunnerFinishRequest{Status: StatusFailed, Reason: "the runner stopped reporting"})
	}
}

// wakeRunners tells waiting runners that jobs may be queued.
func (s *Service) wakeRunners() {
	s.remote.mu.Lock()
	close(s.remote.wake)
	s.remote.wake = make(chan struct{})
	s.remote.mu.Unlock()
}
