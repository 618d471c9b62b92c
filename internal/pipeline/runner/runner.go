// Package runner is the remote pipeline runner (`rampart runner --server
// URL --token T`): a process on another machine that long-polls Rampart
// over HTTPS for queued jobs, unpacks the job's commit into a workspace,
// runs its `run` steps with a local executor (container through runc, or
// host), streams the log back in chunks and reports the end. A log answer
// saying the run was cancelled kills the job. Built-in steps (scan, image
// steps) run only on the server's own workers and fail here with a clear
// message.
//
// The token is a site administrator's, scoped to runner: runners receive
// the secrets of the jobs they take.
package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/pipeline"
)

// Options configure a runner.
type Options struct {
	Server string // base URL of Rampart
	Token  string
	Name   string
	// Executor runs the steps; WorkDir holds workspaces.
	Executor pipeline.Executor
	WorkDir  string
	HTTP     *http.Client
	Logger   *slog.Logger
	// Once makes Run return after one job (tests, one-shot runners).
	Once bool
}

// Run takes and runs jobs until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Server == "" || o.Token == "" || o.Executor == nil || o.WorkDir == "" {
		return errors.New("runner: server, token, executor and work directory are required")
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Name == "" {
		o.Name, _ = os.Hostname()
	}
	if err := os.MkdirAll(o.WorkDir, 0o700); err != nil {
		return err
	}
	r := &runner{o: o}
	backoff := time.Second
	for ctx.Err() == nil {
		job, ok, err := r.claim(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			o.Logger.Warn("claim", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		if !ok {
			continue
		}
		o.Logger.Info("job", "id", job.JobID, "name", job.Spec.Name, "repo", job.Repo)
		r.runJob(ctx, job)
		if o.Once {
			return nil
		}
	}
	return nil
}

type runner struct{ o Options }

func (r *runner) do(ctx context.Context, method, path, ctype string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.o.Server+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.o.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := r.o.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if w, ok := out.(io.Writer); ok {
			_, err = io.Copy(w, resp.Body)
			return resp.StatusCode, err
		}
		return resp.StatusCode, json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out)
	}
	return resp.StatusCode, nil
}

func (r *runner) claim(ctx context.Context) (pipeline.RunnerJob, bool, error) {
	body, _ := json.Marshal(pipeline.RunnerClaimRequest{Runner: r.o.Name, Executors: []string{r.o.Executor.Name()}, WaitSeconds: 25})
	var job pipeline.RunnerJob
	status, err := r.do(ctx, "POST", "/api/v1/runners/jobs", "application/json", body, &job)
	if err != nil || status != http.StatusOK {
		return job, false, err
	}
	return job, true, nil
}

// logSender batches a job's output and posts it every 300 ms or 256 KiB;
// an answer asking to cancel calls cancel.
type logSender struct {
	r      *runner
	path   string
	cancel func()
	mu     sync.Mutex
	buf    bytes.Buffer
	masker *pipeline.Masker
}

func (l *logSender) Write(p []byte) (int, error) {
	l.mu.Lock()
	_, _ = l.masker.Write(p)
	big := l.buf.Len() >= 256<<10
	l.mu.Unlock()
	if big {
		l.flush(context.Background(), false)
	}
	return len(p), nil
}

type rawBuf struct{ l *logSender }

func (b rawBuf) Write(p []byte) (int, error) { return b.l.buf.Write(p) }

// flush posts what is buffered; with force it posts even nothing, as a
// heartbeat that also learns about a cancel.
func (l *logSender) flush(ctx context.Context, force bool) {
	l.mu.Lock()
	data := bytes.Clone(l.buf.Bytes())
	l.buf.Reset()
	l.mu.Unlock()
	if len(data) == 0 && !force {
		return
	}
	for {
		chunk := data[:min(len(data), 1<<20)]
		data = data[len(chunk):]
		var resp pipeline.RunnerLogResponse
		if _, err := l.r.do(context.WithoutCancel(ctx), "POST", l.path, "application/octet-stream", chunk, &resp); err != nil {
			l.r.o.Logger.Warn("send log", "err", err)
			return
		}
		if resp.Cancel {
			l.cancel()
		}
		if len(data) == 0 {
			return
		}
	}
}

func (r *runner) runJob(ctx context.Context, job pipeline.RunnerJob) {
	base := "/api/v1/runners/jobs/" + strconv.FormatInt(job.JobID, 10)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timeout := job.Spec.Timeout
	if timeout <= 0 {
		timeout = pipeline.DefaultTimeout
	}
	jctx, cancelT := context.WithTimeout(jctx, timeout)
	defer cancelT()
	ls := &logSender{r: r, path: base + "/log", cancel: cancel}
	ls.masker = pipeline.NewMasker(rawBuf{ls}, job.Secrets)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-t.C:
				ls.flush(ctx, n%5 == 0)
			}
		}
	}()
	finish := func(req pipeline.RunnerFinishRequest) {
		close(done)
		ls.mu.Lock()
		_ = ls.masker.Close()
		ls.mu.Unlock()
		ls.flush(ctx, false)
		body, _ := json.Marshal(req)
		if _, err := r.do(context.WithoutCancel(ctx), "POST", base+"/finish", "application/json", body, nil); err != nil {
			r.o.Logger.Warn("report job end", "err", err)
		}
	}

	disk := job.Spec.Limits.Disk
	if disk <= 0 {
		disk = 1 << 30
	}
	dir := filepath.Join(r.o.WorkDir, "job-"+strconv.FormatInt(job.JobID, 10))
	_ = os.RemoveAll(dir)
	ws, err := r.o.Executor.Workspace(dir, disk)
	if err != nil {
		fmt.Fprintf(ls, "[runner] could not prepare the workspace: %v\n", err)
		finish(pipeline.RunnerFinishRequest{Status: pipeline.StatusFailed, Reason: "could not prepare the workspace"})
		return
	}
	defer ws.Cleanup()
	var src bytes.Buffer
	if _, err := r.do(jctx, "GET", base+"/source", "", nil, &src); err != nil {
		fmt.Fprintf(ls, "[runner] could not download the source: %v\n", err)
		finish(pipeline.RunnerFinishRequest{Status: pipeline.StatusFailed, Reason: "could not download the source"})
		return
	}
	if err := untar(&src, dir, ws.UID, ws.GID); err != nil {
		fmt.Fprintf(ls, "[runner] could not unpack the source: %v\n", err)
		finish(pipeline.RunnerFinishRequest{Status: pipeline.StatusFailed, Reason: "could not unpack the source"})
		return
	}
	env := make([]string, 0, len(job.Env))
	for k, v := range job.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	steps := make([]pipeline.RunnerStepJSON, len(job.Spec.Steps))
	failed := false
	for i, st := range job.Spec.Steps {
		cond, err := pipeline.ParseCondition(st.If)
		if err != nil || (jctx.Err() != nil && !cond.UsesStatus()) || !cond.Eval(&pipeline.Context{Vars: job.Vars, Failed: failed}) {
			steps[i].Status = pipeline.StatusSkipped
			continue
		}
		fmt.Fprintf(ls, "\x1b[1;36m▶ %s\x1b[0m\n", st.Name)
		code := 0
		if st.Type != pipeline.StepRun {
			fmt.Fprintf(ls, "\x1b[31m[runner] %s steps run only on Rampart's own workers, not on remote runners\x1b[0m\n", st.Type)
			code = 1
		} else {
			stepEnv := env
			for k, v := range st.Env {
				stepEnv = append(stepEnv, k+"="+v)
			}
			sctx, scancel := jctx, context.CancelFunc(func() {})
			if st.Timeout > 0 {
				sctx, scancel = context.WithTimeout(jctx, st.Timeout)
			}
			res, err := r.o.Executor.Exec(sctx, pipeline.ExecSpec{ID: "runner-job-" + strconv.FormatInt(job.JobID, 10) + "-" + strconv.Itoa(i),
				Workspace: dir, Image: job.Spec.Image, Script: st.Run, Env: stepEnv, Network: job.Spec.Network, Limits: job.Spec.Limits, Output: ls})
			scancel()
			code = res.ExitCode
			if err != nil {
				fmt.Fprintf(ls, "\x1b[31m[runner] the command could not be started: %v\x1b[0m\n", err)
				code = -1
			}
			if res.PidsLimited && code == 0 {
				code = 1
			}
		}
		steps[i].ExitCode = code
		steps[i].Status = pipeline.StatusSuccess
		if code != 0 {
			steps[i].Status = pipeline.StatusFailed
			if !st.ContinueOnError {
				failed = true
			}
		}
	}
	req := pipeline.RunnerFinishRequest{Status: pipeline.StatusSuccess, Steps: steps}
	switch {
	case errors.Is(jctx.Err(), context.DeadlineExceeded):
		req.Status, req.Reason = pipeline.StatusFailed, "timed out after "+timeout.String()
	case jctx.Err() != nil && ctx.Err() == nil:
		req.Status, req.Reason = pipeline.StatusCancelled, "run cancelled"
	case failed:
		req.Status, req.Reason = pipeline.StatusFailed, "a step failed"
	}
	for _, s := range steps {
		if s.Status == pipeline.StatusFailed && req.ExitCode == 0 {
			req.ExitCode = s.ExitCode
		}
	}
	finish(req)
}

// untar unpacks the job's source (regular files and directories) into dir
// through an os.Root, so no entry can land outside it.
func untar(r io.Reader, dir string, uid, gid int) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode)&0o755)
			if err != nil {
				return err
			}
			_, err = io.CopyN(f, tr, h.Size)
			f.Close()
			if err != nil {
				return err
			}
		default:
			continue
		}
		if uid >= 0 {
			_ = root.Lchown(name, uid, gid)
		}
	}
}
