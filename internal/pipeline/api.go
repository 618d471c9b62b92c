package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
)

// RunJSON is a run on the wire.
type RunJSON struct {
	ID         int64      `json:"id"`
	Number     int64      `json:"number"`
	Repo       string     `json:"repo"`
	Event      string     `json:"event"`
	Ref        string     `json:"ref"`
	SHA        string     `json:"sha"`
	PR         int64      `json:"pull_request,omitempty"`
	Actor      string     `json:"actor"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	RerunOf    int64      `json:"rerun_of,omitempty"`
	URL        string     `json:"url,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Jobs       []JobJSON  `json:"jobs,omitempty"`
}

// JobJSON is a job of a run on the wire.
type JobJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Stage      string     `json:"stage,omitempty"`
	Needs      []string   `json:"needs,omitempty"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	ExitCode   int        `json:"exit_code"`
	Executor   string     `json:"executor,omitempty"`
	Isolated   bool       `json:"isolated"`
	Runner     string     `json:"runner,omitempty"`
	LogBytes   int64      `json:"log_bytes"`
	Artifacts  bool       `json:"artifacts"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Steps      []StepJSON `json:"steps"`
}

// StepJSON is a step of a job on the wire.
type StepJSON struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
}

// StartRunRequest starts a run manually.
type StartRunRequest struct {
	// Ref is a branch, tag or commit (default: the default branch).
	Ref string `json:"ref,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Service) runJSON(repo scm.Repo, r Run, jobs []JobRun) RunJSON {
	out := RunJSON{ID: r.ID, Number: r.Number, Repo: r.Repo, Event: r.Event, Ref: r.Ref, SHA: r.SHA, PR: r.PR, Actor: r.Actor,
		Status: r.Status, Reason: r.Reason, RerunOf: r.RerunOf, URL: s.runURL(repo, r.Number), CreatedAt: r.CreatedAt,
		StartedAt: optTime(r.StartedAt), FinishedAt: optTime(r.FinishedAt)}
	for _, j := range jobs {
		jj := JobJSON{ID: j.ID, Name: j.Name, Stage: j.Spec.Stage, Needs: j.Spec.Needs, Status: j.Status, Reason: j.Reason,
			ExitCode: j.ExitCode, Executor: j.Executor, Isolated: j.Executor != ExecutorHost, Runner: j.Runner, LogBytes: j.LogBytes,
			Artifacts: len(j.Spec.Artifacts) > 0 && finished(j.Status), StartedAt: optTime(j.StartedAt), FinishedAt: optTime(j.FinishedAt),
			Steps: []StepJSON{}}
		if j.Executor == "" {
			jj.Isolated = false
		}
		for _, st := range j.Steps {
			jj.Steps = append(jj.Steps, StepJSON{Name: st.Name, Type: st.Type, Status: st.Status, ExitCode: st.ExitCode})
		}
		out.Jobs = append(out.Jobs, jj)
	}
	return out
}

// Routes are the pipeline API routes, for httpapi.Deps.Extra. They are
// checked by the handler against the repository (its project's grants
// apply); the adapter's check is a formality (authz.Public).
func (s *Service) Routes() []httpapi.Route {
	const (
		runs = httpapi.Prefix + "/orgs/{org}/repos/{repo}/pipelines/runs"
		run  = runs + "/{number}"
		job  = run + "/jobs/{job}"
	)
	return []httpapi.Route{
		{Method: "GET", Path: runs, Tag: "pipelines", Summary: "List the repository's pipeline runs, newest first (?limit=, readers)",
			Action: authz.Public, Response: []RunJSON{}, Handler: s.withRepo(authz.PipelineRead, s.apiRuns)},
		{Method: "POST", Path: runs, Tag: "pipelines", Summary: "Start a run at a branch, tag or commit (developers; needs `manual: true` under `on:` when `on:` is given)",
			Action: authz.Public, Request: StartRunRequest{}, Response: RunJSON{}, Status: http.StatusCreated, Handler: s.withRepo(authz.PipelineRun, s.apiStart)},
		{Method: "GET", Path: run, Tag: "pipelines", Summary: "Show a run with its jobs and steps (readers)",
			Action: authz.Public, Response: RunJSON{}, Handler: s.withRepo(authz.PipelineRead, s.apiRun)},
		{Method: "POST", Path: run + "/cancel", Tag: "pipelines", Summary: "Cancel a queued or running run (developers)",
			Action: authz.Public, Response: RunJSON{}, Handler: s.withRepo(authz.PipelineRun, s.apiCancel)},
		{Method: "POST", Path: run + "/rerun", Tag: "pipelines", Summary: "Run a finished run's commit again (developers)",
			Action: authz.Public, Response: RunJSON{}, Status: http.StatusCreated, Handler: s.withRepo(authz.PipelineRun, s.apiRerun)},
		{Method: "GET", Path: job + "/log", Tag: "pipelines", Summary: "A job's log (text/plain with ANSI colours; ?follow=1 or Accept: text/event-stream streams it live as server-sent events; readers)",
			Action: authz.Public, Handler: s.withRepo(authz.PipelineRead, s.apiLog)},
		{Method: "GET", Path: job + "/artifacts", Tag: "pipelines", Summary: "Download a job's artifacts as a tar.gz (readers)",
			Action: authz.Public, Handler: s.withRepo(authz.PipelineRead, s.apiArtifacts)},
	}
}

// AllRoutes are the repository routes and the remote runners' routes.
func (s *Service) AllRoutes() []httpapi.Route { return append(s.Routes(), s.runnerRoutes()...) }

func (s *Service) withRepo(a authz.Action, h func(c *httpapi.Call, r scm.Repo) error) func(c *httpapi.Call) error {
	return func(c *httpapi.Call) error {
		if !c.P.Subject.Authenticated() {
			return apperr.E(apperr.Unauthenticated, "sign in first")
		}
		r, err := s.d.Repos.Repo(c.R.Context(), c.R.PathValue("org"), c.R.PathValue("repo"))
		if err != nil {
			return err
		}
		if err := s.d.Repos.Authorize(c.P.Subject, a, r); err != nil {
			return err
		}
		return h(c, r)
	}
}

func (s *Service) apiRuns(c *httpapi.Call, repo scm.Repo) error {
	limit := 50
	if v := c.R.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return apperr.InvalidField("limit", "limit must be between 1 and 500")
		}
		limit = n
	}
	runs, err := s.runs.runs(c.R.Context(), repo.ID, limit)
	if err != nil {
		return err
	}
	out := []RunJSON{}
	for _, r := range runs {
		out = append(out, s.runJSON(repo, r, nil))
	}
	return c.JSON(out)
}

func (s *Service) pathRun(c *httpapi.Call, repo scm.Repo) (Run, error) {
	n, err := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	if err != nil || n < 1 {
		return Run{}, apperr.E(apperr.NotFound, "run %q not found", c.R.PathValue("number"))
	}
	return s.runs.runByNumber(c.R.Context(), repo.ID, n)
}

func (s *Service) apiRun(c *httpapi.Call, repo scm.Repo) error {
	r, err := s.pathRun(c, repo)
	if err != nil {
		return err
	}
	jobs, err := s.runs.jobs(c.R.Context(), s.d.DB, r.ID, true)
	if err != nil {
		return err
	}
	return c.JSON(s.runJSON(repo, r, jobs))
}

func (s *Service) apiStart(c *httpapi.Call, repo scm.Repo) error {
	var req StartRunRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	r, err := s.StartManual(c.R.Context(), repo, req.Ref)
	if err != nil {
		return err
	}
	jobs, err := s.runs.jobs(c.R.Context(), s.d.DB, r.ID, true)
	if err != nil {
		return err
	}
	return c.JSON(s.runJSON(repo, r, jobs))
}

func (s *Service) apiCancel(c *httpapi.Call, repo scm.Repo) error {
	r, err := s.pathRun(c, repo)
	if err != nil {
		return err
	}
	if r, err = s.Cancel(c.R.Context(), r); err != nil {
		return err
	}
	jobs, err := s.runs.jobs(c.R.Context(), s.d.DB, r.ID, true)
	if err != nil {
		return err
	}
	return c.JSON(s.runJSON(repo, r, jobs))
}

func (s *Service) apiRerun(c *httpapi.Call, repo scm.Repo) error {
	r, err := s.pathRun(c, repo)
	if err != nil {
		return err
	}
	nr, err := s.Rerun(c.R.Context(), repo, r)
	if err != nil {
		return err
	}
	jobs, err := s.runs.jobs(c.R.Context(), s.d.DB, nr.ID, true)
	if err != nil {
		return err
	}
	return c.JSON(s.runJSON(repo, nr, jobs))
}

func (s *Service) pathJob(c *httpapi.Call, repo scm.Repo) (Run, JobRun, error) {
	r, err := s.pathRun(c, repo)
	if err != nil {
		return r, JobRun{}, err
	}
	id, err := strconv.ParseInt(c.R.PathValue("job"), 10, 64)
	if err != nil {
		return r, JobRun{}, apperr.E(apperr.NotFound, "job %q not found", c.R.PathValue("job"))
	}
	j, err := s.runs.job(c.R.Context(), id)
	if err != nil || j.RunID != r.ID {
		return r, JobRun{}, apperr.E(apperr.NotFound, "job %d not found in run #%d", id, r.Number)
	}
	return r, j, nil
}

func (s *Service) apiLog(c *httpapi.Call, repo scm.Repo) error {
	r, j, err := s.pathJob(c, repo)
	if err != nil {
		return err
	}
	follow := c.R.URL.Query().Get("follow") == "1" || strings.Contains(c.R.Header.Get("Accept"), "text/event-stream")
	if !follow {
		rc, err := s.d.Blobs.Open(c.R.Context(), logKey(r.ID, j.ID), 0)
		if apperr.KindOf(err) == apperr.NotFound {
			c.W.Header().Set("Content-Type", "text/plain; charset=utf-8")
			return nil
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		c.W.Header().Set("Content-Type", "text/plain; charset=utf-8")
		c.W.Header().Set("Cache-Control", "no-store")
		_, err = io.Copy(c.W, rc)
		return err
	}
	return s.streamLog(c, r, j)
}

// streamLog sends a job's log as server-sent events: "log" events whose
// data is a JSON string of bytes (ANSI kept), then one "end" event with
// the job's final status. Reconnecting clients send Last-Event-ID (the
// byte offset) to resume.
func (s *Service) streamLog(c *httpapi.Call, r Run, j JobRun) error {
	ctx := c.R.Context()
	w := c.W
	rc := http.NewResponseController(w)
	var offset int64
	if v := c.R.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			offset = n
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	wake, stop := s.logs.watch(j.ID)
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	keepalive := time.Now()
	buf := make([]byte, 32<<10)
	for {
		status, err := s.runs.jobStatus(ctx, j.ID)
		if err != nil {
			return nil
		}
		sent := false
		if body, err := s.d.Blobs.Open(ctx, logKey(r.ID, j.ID), offset); err == nil {
			for {
				n, rerr := body.Read(buf)
				if n > 0 {
					offset += int64(n)
					data, _ := json.Marshal(string(buf[:n]))
					if _, err := fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", offset, data); err != nil {
						body.Close()
						return nil
					}
					sent = true
				}
				if rerr != nil {
					break
				}
			}
			body.Close()
		}
		if finished(status) {
			fmt.Fprintf(w, "event: end\ndata: %q\n\n", status)
			_ = rc.Flush()
			return nil
		}
		if sent {
			_ = rc.Flush()
		} else if time.Since(keepalive) > 15*time.Second {
			fmt.Fprint(w, ": keep-alive\n\n")
			_ = rc.Flush()
			keepalive = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
	}
}

func (s *Service) apiArtifacts(c *httpapi.Call, repo scm.Repo) error {
	r, j, err := s.pathJob(c, repo)
	if err != nil {
		return err
	}
	rc, err := s.d.Blobs.Open(c.R.Context(), artifactKey(r.ID, j.ID), 0)
	if apperr.KindOf(err) == apperr.NotFound {
		return apperr.E(apperr.NotFound, "job %s has no artifacts", j.Name)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	c.W.Header().Set("Content-Type", "application/gzip")
	c.W.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="run-%d-job-%d-artifacts.tar.gz"`, r.Number, j.ID))
	_, err = io.Copy(c.W, rc)
	return err
}

// Runs lists a repository's runs, newest first.
func (s *Service) Runs(ctx context.Context, repo scm.Repo, limit int) ([]Run, error) {
	return s.runs.runs(ctx, repo.ID, limit)
}

// RunByNumber returns a run of a repository with its jobs and steps.
func (s *Service) RunByNumber(ctx context.Context, repo scm.Repo, number int64) (Run, []JobRun, error) {
	r, err := s.runs.runByNumber(ctx, repo.ID, number)
	if err != nil {
		return r, nil, err
	}
	jobs, err := s.runs.jobs(ctx, s.d.DB, r.ID, true)
	return r, jobs, err
}
