package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// The decision log: every decision (but dry runs) is stored with its
// input digest, revision, result, time and caller. Decisions are written
// by a few goroutines (logWriters) in group commits: each Decide waits
// until its decision's transaction committed; a writer that takes a
// decision from the queue gathers every decision queued for up to
// flushWindow more (or maxBatch of them) into the same transaction, so
// thousands of admission reviews a second cost a few hundred
// transactions. The queue is bounded (queueSize): when it is full,
// Decide waits for room — back-pressure, never a dropped decision — until
// its context ends, and then the decision counts as not recorded, which
// fails the gate closed. Close writes what is queued before it returns.

// maxBatch caps the decisions of one transaction.
const maxBatch = 512

// flushWindow is how long a writer holding a decision waits for more to
// join its transaction: a commit's fixed cost (begin, WAL write, commit)
// is shared by every decision of the window, at the price of at most this
// much latency.
const flushWindow = 2 * time.Millisecond

// queueSize bounds the decisions waiting for a writer.
const queueSize = 4 * maxBatch

type logEntry struct {
	d    *Decision
	done chan error
}

type logWriter struct {
	db  *store.DB
	log *slog.Logger
	ch  chan logEntry

	mu     sync.RWMutex
	closed bool
}

func newLogWriter(db *store.DB, log *slog.Logger) *logWriter {
	return &logWriter{db: db, log: log, ch: make(chan logEntry, queueSize)}
}

var errLogClosed = apperr.E(apperr.Unavailable, "the decision log is shut down")

// write queues d and waits until it is stored.
func (w *logWriter) write(ctx context.Context, d *Decision) error {
	e := logEntry{d: d, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errLogClosed
	}
	select {
	case w.ch <- e:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-e.done:
		return err
	case <-ctx.Done():
		// The decision is still written; the caller stops waiting.
		return ctx.Err()
	}
}

// close stops accepting decisions; run returns once the queue is empty.
func (w *logWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
}

func (w *logWriter) run() {
	batch := make([]logEntry, 0, maxBatch)
	window := time.NewTimer(flushWindow)
	window.Stop()
	for e := range w.ch {
		batch = append(batch[:0], e)
		window.Reset(flushWindow)
	fill:
		for len(batch) < maxBatch {
			select {
			case e, ok := <-w.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			case <-window.C:
				break fill
			}
		}
		window.Stop()
		err := w.insert(batch)
		if err != nil {
			w.log.Error("write policy decisions", "count", len(batch), "err", err)
		}
		for _, e := range batch {
			e.done <- err
		}
	}
}

// rowsPerInsert caps the rows of one INSERT statement (14 parameters
// each; SQLite and PostgreSQL take tens of thousands): one statement per
// chunk rather than per decision, since preparing it is most of the cost.
const rowsPerInsert = 64

const insertDecisions = `INSERT INTO policy_decisions (id, org_id, gate, subject, environment, repository, allow, outcome,
	revision, input_digest, result, caller, at, duration_us) VALUES `

func (w *logWriter) insert(batch []logEntry) error {
	// Not the callers' contexts: a caller that stops waiting does not
	// take the others' decisions down with it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.db.Tx(ctx, func(tx *store.Tx) error {
		for len(batch) > 0 {
			chunk := batch[:min(len(batch), rowsPerInsert)]
			batch = batch[len(chunk):]
			var q strings.Builder
			q.WriteString(insertDecisions)
			args := make([]any, 0, 14*len(chunk))
			for i, e := range chunk {
				d := e.d
				result, err := json.Marshal(d)
				if err != nil {
					return fmt.Errorf("encode decision: %w", err)
				}
				var org any
				if d.OrgID != 0 {
					org = d.OrgID
				}
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				args = append(args, d.ID, org, string(d.Gate), d.Subject, d.Environment, d.Repository, d.Allow, d.Outcome(), d.Revision,
					d.InputDigest, string(result), d.Caller, store.Time(d.At), int64(d.DurationMS*1000))
			}
			if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func newDecisionID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "d" + hex.EncodeToString(b[:])
}

// DecisionFilter selects decisions.
type DecisionFilter struct {
	// Subject, Gate and Outcome ("allow", "warn", "deny") match exactly
	// when set.
	Subject string
	Gate    Gate
	Outcome string
	// Limit caps the result (default 50, at most 500).
	Limit int
}

// Decisions lists an org's decisions, newest first.
func (s *Service) Decisions(ctx context.Context, orgID int64, f DecisionFilter) ([]Decision, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	q := "SELECT result FROM policy_decisions WHERE org_id = ?"
	args := []any{orgID}
	if f.Subject != "" {
		q += " AND subject = ?"
		args = append(args, f.Subject)
	}
	if f.Gate != "" {
		if _, err := ParseGate(string(f.Gate)); err != nil {
			return nil, err
		}
		q += " AND gate = ?"
		args = append(args, string(f.Gate))
	}
	switch f.Outcome {
	case "":
	case "allow", "warn", "deny":
		q += " AND outcome = ?"
		args = append(args, f.Outcome)
	default:
		return nil, apperr.InvalidField("outcome", "outcome must be allow, warn or deny")
	}
	q += fmt.Sprintf(" ORDER BY seq DESC LIMIT %d", f.Limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Decision{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var d Decision
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return nil, fmt.Errorf("decode stored decision: %w", err)
		}
		d.OrgID = orgID
		out = append(out, d)
	}
	return out, rows.Err()
}

// DecisionByID returns one of an org's decisions.
func (s *Service) DecisionByID(ctx context.Context, orgID int64, id string) (Decision, error) {
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r < '0' || r > 'z' }) {
		return Decision{}, apperr.E(apperr.NotFound, "no decision %q", id)
	}
	var raw string
	err := s.db.QueryRow(ctx, "SELECT result FROM policy_decisions WHERE org_id = ? AND id = ?", orgID, id).Scan(&raw)
	if apperr.Is(err, apperr.NotFound) {
		return Decision{}, apperr.E(apperr.NotFound, "no decision %s in this org", id)
	}
	if err != nil {
		return Decision{}, err
	}
	var d Decision
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return Decision{}, fmt.Errorf("decode stored decision: %w", err)
	}
	d.OrgID = orgID
	return d, nil
}

// PurgeDecisions deletes decisions older than the retention.
func (s *Service) PurgeDecisions(ctx context.Context) (int64, error) {
	return s.db.Exec(ctx, "DELETE FROM policy_decisions WHERE at < ?", store.Time(s.now().Add(-s.retention)))
}
