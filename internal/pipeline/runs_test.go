package pipeline

import (
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// The run store's contract, on SQLite and PostgreSQL.
func TestRunStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		s := runStore{db}
		def, err := Parse([]byte("jobs:\n  a: {steps: [{run: x}, {run: y}]}\n  b: {needs: [a], steps: [{run: z}]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		nr := newRun{Run: Run{RepoID: 7, OrgID: 3, Repo: "acme/app", Event: EventPush, Ref: "refs/heads/main",
			SHA: "0123456789012345678901234567890123456789", Actor: "ada", Status: StatusQueued, CreatedAt: now},
			TriggerKey: "event:1", Jobs: def.Jobs}
		var r Run
		var created bool
		if err := db.Tx(ctx, func(tx *store.Tx) error { r, created, err = s.insert(ctx, tx, nr); return err }); err != nil || !created {
			t.Fatalf("insert: %v created=%v", err, created)
		}
		if r.Number != 1 || !r.CreatedAt.Equal(now) {
			t.Errorf("run %+v", r)
		}
		// The same event delivered again creates nothing.
		if err := db.Tx(ctx, func(tx *store.Tx) error { _, created, err = s.insert(ctx, tx, nr); return err }); err != nil || created {
			t.Fatalf("second insert: %v created=%v", err, created)
		}
		nr.TriggerKey = "event:2"
		var r2 Run
		if err := db.Tx(ctx, func(tx *store.Tx) error { r2, _, err = s.insert(ctx, tx, nr); return err }); err != nil || r2.Number != 2 {
			t.Fatalf("next run: %+v %v", r2, err)
		}
		jobs, err := s.jobs(ctx, db, r.ID, true)
		if err != nil || len(jobs) != 2 || len(jobs[0].Steps) != 2 || jobs[1].Spec.Needs[0] != "a" || jobs[0].Status != StatusPending {
			t.Fatalf("jobs %+v %v", jobs, err)
		}
		if _, err := db.Exec(ctx, "UPDATE pipeline_jobs SET status = 'queued' WHERE id = ?", jobs[0].ID); err != nil {
			t.Fatal(err)
		}
		ok, err := s.claim(ctx, jobs[0].ID, "local", ExecutorHost, now)
		if err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if ok, _ := s.claim(ctx, jobs[0].ID, "other", ExecutorHost, now); ok {
			t.Error("a job was claimed twice")
		}
		if got, _ := s.run(ctx, db, r.ID); got.Status != StatusRunning || !got.StartedAt.Equal(now) {
			t.Errorf("run after claim %+v", got)
		}
		j := jobs[0]
		j.Status, j.ExitCode, j.LogBytes = StatusSuccess, 0, 42
		j.Steps[0].Status, j.Steps[1].Status = StatusSuccess, StatusSuccess
		if err := s.finishJob(ctx, j, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := s.job(ctx, j.ID)
		if err != nil || got.Status != StatusSuccess || got.LogBytes != 42 || got.Steps[1].Status != StatusSuccess {
			t.Errorf("finished job %+v %v", got, err)
		}
		active, err := s.activeRuns(ctx)
		if err != nil || len(active) != 2 {
			t.Errorf("active runs %d %v", len(active), err)
		}
		list, err := s.runs(ctx, 7, 10)
		if err != nil || len(list) != 2 || list[0].Number != 2 {
			t.Errorf("runs %+v %v", list, err)
		}
		if _, err := s.runByNumber(ctx, 7, 9); err == nil {
			t.Error("run #9 found")
		}
	}, Migrations)
}
