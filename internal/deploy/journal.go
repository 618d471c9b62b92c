package deploy

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Kinds of rollout journal entries, in the order a rollout writes them.
const (
	// JournalStarted: instances of a release were started and are
	// healthy (detail: how many, of which release).
	JournalStarted = "started"
	// JournalRouted: the gateway route was changed (detail: the new
	// release's share of traffic).
	JournalRouted = "routed"
	// JournalStepPassed: a step's check (the hook) passed.
	JournalStepPassed = "step_passed"
	// JournalCommitted is the rollout's commit point: every step's check
	// passed. A rollout interrupted before it is rolled back at the next
	// start; one interrupted after it is completed.
	JournalCommitted = "committed"
	// JournalOldStopped: the previous release's instances were stopped.
	JournalOldStopped = "old_stopped"
	// JournalRollback: a rollback to the previous release began (detail:
	// why). It overrides an earlier commit.
	JournalRollback = "rollback"
	// JournalRecovered: Rampart restarted with the rollout unfinished and
	// settled it (detail: what it did).
	JournalRecovered = "recovered"
)

// JournalEntry is one durable step of a rollout.
type JournalEntry struct {
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// maxJournal bounds the entries a deployment keeps (a canary with many
// steps writes about four per step).
const maxJournal = 200

// Committed reports whether an interrupted rollout had reached its
// commit point: the last commit or rollback entry of the journal is a
// commit. A restarted Rampart completes such a rollout and rolls back
// every other one.
func Committed(j []JournalEntry) bool {
	for i := len(j) - 1; i >= 0; i-- {
		switch j[i].Kind {
		case JournalCommitted:
			return true
		case JournalRollback:
			return false
		}
	}
	return false
}

func (s *Service) journal(ctx context.Context, q store.Querier, id int64) ([]JournalEntry, error) {
	rows, err := q.Query(ctx, "SELECT kind, detail, at FROM deploy_rollout_journal WHERE deployment_id = ? ORDER BY id LIMIT ?", id, maxJournal)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []JournalEntry{}
	for rows.Next() {
		var e JournalEntry
		if err := rows.Scan(&e.Kind, &e.Detail, store.TimeDest(&e.At)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// record appends an entry to a deployment's journal. It is durable once
// it returns: the commit point is written before the rollout goes past
// it.
func (s *Service) record(ctx context.Context, id int64, kind, detail string) error {
	var n int
	if err := s.d.DB.QueryRow(ctx, "SELECT COUNT(*) FROM deploy_rollout_journal WHERE deployment_id = ?", id).Scan(&n); err != nil {
		return err
	}
	if n >= maxJournal && kind != JournalCommitted && kind != JournalRollback && kind != JournalRecovered {
		return nil // the decisive entries always go in; chatter stops
	}
	_, err := s.d.DB.Exec(ctx, "INSERT INTO deploy_rollout_journal (deployment_id, kind, detail, at) VALUES (?, ?, ?, ?)",
		id, kind, truncate(detail, 500), store.Time(s.d.Now()))
	if err != nil {
		return fmt.Errorf("rollout journal of deployment %d: %w", id, err)
	}
	return nil
}

// Test-only pause points. When the environment variable
// RAMPART_TEST_DEPLOY_PAUSE names a point ("rolling:first-replica",
// "blue_green:switched", "blue_green:committed", "canary:pause", and
// "rollback:routed": a rollback, or the settling of an interrupted
// rollout, has routed all traffic back to the previous release and not
// yet stopped the new one), the
// node target stops there: it creates the file named by
// RAMPART_TEST_DEPLOY_PAUSED and waits until Rampart stops. Tests use
// it to kill Rampart at a known step of a rollout; unset (always, in
// production) it does nothing.
const (
	pauseEnv  = "RAMPART_TEST_DEPLOY_PAUSE"
	pausedEnv = "RAMPART_TEST_DEPLOY_PAUSED"
)

// testPause implements the test-only pause points.
func testPause(ctx context.Context, point string) error {
	want := os.Getenv(pauseEnv)
	if want == "" || want != point {
		return nil
	}
	if f := os.Getenv(pausedEnv); f != "" {
		if err := os.WriteFile(f, []byte(point+"\n"), 0o600); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}
