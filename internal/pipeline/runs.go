package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// Run and job states.
const (
	StatusPending   = "pending" // a job waiting for the jobs it needs
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSuccess   = "success"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	StatusSkipped   = "skipped"
)

// ReasonRestart is the reason of jobs (and their runs) that were running
// when Rampart stopped.
const ReasonRestart = "interrupted by a restart of Rampart"

func finished(status string) bool {
	switch status {
	case StatusSuccess, StatusFailed, StatusCancelled, StatusSkipped:
		return true
	}
	return false
}

// Events that start runs.
const (
	EventPush        = "push"
	EventPullRequest = "pull_request"
	EventManual      = "manual"
	EventSchedule    = "schedule"
	EventRerun       = "rerun"
)

// Run is one execution of a repository's pipeline at a commit.
type Run struct {
	ID         int64
	RepoID     int64
	OrgID      int64
	ProjectID  int64
	Repo       string // ORG/NAME
	Number     int64  // per repository, from 1
	Event      string
	Ref        string
	SHA        string
	PR         int64
	Actor      string
	Status     string
	Reason     string
	RerunOf    int64
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// JobRun is the state of one job of a run.
type JobRun struct {
	ID         int64
	RunID      int64
	Idx        int
	Name       string
	Spec       Job
	Status     string
	Reason     string
	ExitCode   int
	Executor   string
	Runner     string
	LogBytes   int64
	StartedAt  time.Time
	FinishedAt time.Time
	Steps      []StepState
}

// StepState is the state of one step of a job.
type StepState struct {
	Idx        int
	Name       string
	Type       string
	Status     string
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

const runCols = `id, repo_id, org_id, project_id, repo, number, event, ref, sha, pr_number, actor, status, reason, rerun_of, created_at, started_at, finished_at`

func scanRun(r interface{ Scan(...any) error }) (Run, error) {
	var x Run
	err := r.Scan(&x.ID, &x.RepoID, &x.OrgID, &x.ProjectID, &x.Repo, &x.Number, &x.Event, &x.Ref, &x.SHA, &x.PR, &x.Actor,
		&x.Status, &x.Reason, &x.RerunOf, store.TimeDest(&x.CreatedAt), store.TimeDest(&x.StartedAt), store.TimeDest(&x.FinishedAt))
	return x, err
}

const jobCols = `id, run_id, idx, name, spec, status, reason, exit_code, executor, runner, log_bytes, started_at, finished_at`

func scanJob(r interface{ Scan(...any) error }) (JobRun, error) {
	var j JobRun
	var spec string
	err := r.Scan(&j.ID, &j.RunID, &j.Idx, &j.Name, &spec, &j.Status, &j.Reason, &j.ExitCode, &j.Executor, &j.Runner, &j.LogBytes,
		store.TimeDest(&j.StartedAt), store.TimeDest(&j.FinishedAt))
	if err != nil {
		return j, err
	}
	if err := json.Unmarshal([]byte(spec), &j.Spec); err != nil {
		return j, fmt.Errorf("job %d spec: %w", j.ID, err)
	}
	return j, nil
}

// runStore is the persistence of runs.
type runStore struct{ db *store.DB }

// newRun is a run to insert with its jobs.
type newRun struct {
	Run
	TriggerKey string
	Jobs       []*Job
}

// insert records a run and its jobs; ok is false when a run with the same
// trigger key exists already (the event was delivered twice).
func (s runStore) insert(ctx context.Context, tx *store.Tx, nr newRun) (Run, bool, error) {
	var exists int64
	err := tx.QueryRow(ctx, "SELECT id FROM pipeline_runs WHERE trigger_key = ?", nr.TriggerKey).Scan(&exists)
	if err == nil {
		return Run{}, false, nil
	}
	if apperr.KindOf(err) != apperr.NotFound {
		return Run{}, false, err
	}
	r := nr.Run
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(number), 0) + 1 FROM pipeline_runs WHERE repo_id = ?", r.RepoID).Scan(&r.Number); err != nil {
		return r, false, err
	}
	row := tx.QueryRow(ctx, `INSERT INTO pipeline_runs (repo_id, org_id, project_id, repo, number, trigger_key, event, ref, sha, pr_number,
		actor, status, reason, rerun_of, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+runCols,
		r.RepoID, r.OrgID, r.ProjectID, r.Repo, r.Number, nr.TriggerKey, r.Event, r.Ref, r.SHA, r.PR, r.Actor, r.Status, r.Reason,
		r.RerunOf, store.Time(r.CreatedAt), store.Time(r.FinishedAt))
	if r, err = scanRun(row); err != nil {
		return r, false, fmt.Errorf("insert run: %w", err)
	}
	for i, j := range nr.Jobs {
		spec, err := json.Marshal(j)
		if err != nil {
			return r, false, err
		}
		status := StatusPending
		if r.Status != StatusQueued {
			status = StatusSkipped
		}
		var jobID int64
		if err := tx.QueryRow(ctx, `INSERT INTO pipeline_jobs (run_id, idx, name, spec, status) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			r.ID, i, j.Name, string(spec), status).Scan(&jobID); err != nil {
			return r, false, fmt.Errorf("insert job %s: %w", j.Name, err)
		}
		for k, st := range j.Steps {
			if _, err := tx.Exec(ctx, `INSERT INTO pipeline_steps (job_id, idx, name, type, status) VALUES (?, ?, ?, ?, ?)`,
				jobID, k, st.Name, st.Type, status); err != nil {
				return r, false, fmt.Errorf("insert step: %w", err)
			}
		}
	}
	return r, true, nil
}

func (s runStore) run(ctx context.Context, q store.Querier, id int64) (Run, error) {
	r, err := scanRun(q.QueryRow(ctx, "SELECT "+runCols+" FROM pipeline_runs WHERE id = ?", id))
	if apperr.KindOf(err) == apperr.NotFound {
		return r, apperr.E(apperr.NotFound, "run %d not found", id)
	}
	return r, err
}

func (s runStore) runByNumber(ctx context.Context, repoID, number int64) (Run, error) {
	r, err := scanRun(s.db.QueryRow(ctx, "SELECT "+runCols+" FROM pipeline_runs WHERE repo_id = ? AND number = ?", repoID, number))
	if apperr.KindOf(err) == apperr.NotFound {
		return r, apperr.E(apperr.NotFound, "run #%d not found", number)
	}
	return r, err
}

func (s runStore) runs(ctx context.Context, repoID int64, limit int) ([]Run, error) {
	rows, err := s.db.Query(ctx, "SELECT "+runCols+" FROM pipeline_runs WHERE repo_id = ? ORDER BY number DESC LIMIT ?", repoID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s runStore) activeRuns(ctx context.Context) ([]Run, error) {
	rows, err := s.db.Query(ctx, "SELECT "+runCols+" FROM pipeline_runs WHERE status IN ('queued', 'running') ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s runStore) jobs(ctx context.Context, q store.Querier, runID int64, withSteps bool) ([]JobRun, error) {
	rows, err := q.Query(ctx, "SELECT "+jobCols+" FROM pipeline_jobs WHERE run_id = ? ORDER BY idx", runID)
	if err != nil {
		return nil, err
	}
	var out []JobRun
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if withSteps {
		for i := range out {
			if out[i].Steps, err = s.steps(ctx, q, out[i].ID); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (s runStore) job(ctx context.Context, id int64) (JobRun, error) {
	j, err := scanJob(s.db.QueryRow(ctx, "SELECT "+jobCols+" FROM pipeline_jobs WHERE id = ?", id))
	if apperr.KindOf(err) == apperr.NotFound {
		return j, apperr.E(apperr.NotFound, "job %d not found", id)
	}
	if err != nil {
		return j, err
	}
	j.Steps, err = s.steps(ctx, s.db, id)
	return j, err
}

func (s runStore) steps(ctx context.Context, q store.Querier, jobID int64) ([]StepState, error) {
	rows, err := q.Query(ctx, "SELECT idx, name, type, status, exit_code, started_at, finished_at FROM pipeline_steps WHERE job_id = ? ORDER BY idx", jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StepState
	for rows.Next() {
		var st StepState
		if err := rows.Scan(&st.Idx, &st.Name, &st.Type, &st.Status, &st.ExitCode, store.TimeDest(&st.StartedAt), store.TimeDest(&st.FinishedAt)); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// claim moves a queued job to running for runner; false when another
// worker (or a cancel) got there first.
func (s runStore) claim(ctx context.Context, jobID int64, runner, executor string, now time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, `UPDATE pipeline_jobs SET status = 'running', runner = ?, executor = ?, started_at = ? WHERE id = ? AND status = 'queued'`,
		runner, executor, store.Time(now), jobID)
	if err != nil || n == 0 {
		return false, err
	}
	_, err = s.db.Exec(ctx, `UPDATE pipeline_runs SET status = 'running', started_at = COALESCE(started_at, ?)
		WHERE id = (SELECT run_id FROM pipeline_jobs WHERE id = ?) AND status = 'queued'`, store.Time(now), jobID)
	return true, err
}

// finishJob records a job's end unless it already ended (cancelled).
func (s runStore) finishJob(ctx context.Context, j JobRun, now time.Time) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE pipeline_jobs SET status = ?, reason = ?, exit_code = ?, log_bytes = ?, finished_at = ?
			WHERE id = ? AND status = 'running'`, j.Status, j.Reason, j.ExitCode, j.LogBytes, store.Time(now), j.ID); err != nil {
			return err
		}
		for _, st := range j.Steps {
			if _, err := tx.Exec(ctx, `UPDATE pipeline_steps SET status = ?, exit_code = ?, started_at = ?, finished_at = ? WHERE job_id = ? AND idx = ?`,
				st.Status, st.ExitCode, store.Time(st.StartedAt), store.Time(st.FinishedAt), j.ID, st.Idx); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s runStore) setStep(ctx context.Context, jobID int64, st StepState) error {
	_, err := s.db.Exec(ctx, `UPDATE pipeline_steps SET status = ?, exit_code = ?, started_at = ?, finished_at = ? WHERE job_id = ? AND idx = ?`,
		st.Status, st.ExitCode, store.Time(st.StartedAt), store.Time(st.FinishedAt), jobID, st.Idx)
	return err
}

func (s runStore) jobStatus(ctx context.Context, jobID int64) (string, error) {
	var st string
	err := s.db.QueryRow(ctx, "SELECT status FROM pipeline_jobs WHERE id = ?", jobID).Scan(&st)
	return st, err
}
