package pipeline

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
)

// logKey is where a job's log is stored.
func logKey(runID, jobID int64) string {
	return "logs/run-" + strconv.FormatInt(runID, 10) + "/job-" + strconv.FormatInt(jobID, 10) + ".log"
}

// logHub wakes the readers following a job's log when bytes arrive.
type logHub struct {
	mu   sync.Mutex
	subs map[int64]map[chan struct{}]struct{}
}

func newLogHub() *logHub { return &logHub{subs: map[int64]map[chan struct{}]struct{}{}} }

// watch returns a channel signalled when the job's log grows (or the job
// ends), and a function to stop watching.
func (h *logHub) watch(jobID int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[jobID] == nil {
		h.subs[jobID] = map[chan struct{}]struct{}{}
	}
	h.subs[jobID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[jobID], ch)
		if len(h.subs[jobID]) == 0 {
			delete(h.subs, jobID)
		}
		h.mu.Unlock()
	}
}

func (h *logHub) notify(jobID int64) {
	h.mu.Lock()
	for ch := range h.subs[jobID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// jobLog is the writer a job's output goes through: the masker, then the
// size limit, then the blob.
type jobLog struct {
	masker *Masker
	limit  *limitWriter
	w      io.WriteCloser
}

func (s *Service) openLog(ctx context.Context, j JobRun, secrets []string, onLimit func()) (*jobLog, error) {
	w, err := s.d.Blobs.Create(ctx, logKey(j.RunID, j.ID))
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	limit := j.Spec.Limits.Log
	if limit <= 0 {
		limit = s.d.DefaultLogLimit
	}
	lw := &limitWriter{w: w, limit: limit, onLimit: onLimit, notify: func() { s.logs.notify(j.ID) }}
	return &jobLog{masker: NewMasker(lw, secrets), limit: lw, w: w}, nil
}

// Write implements io.Writer; it is safe for concurrent use.
func (l *jobLog) Write(p []byte) (int, error) {
	l.limit.mu.Lock()
	defer l.limit.mu.Unlock()
	return l.masker.Write(p)
}

// Printf writes a line of Rampart's own (step headers, errors).
func (l *jobLog) Printf(format string, args ...any) {
	fmt.Fprintf(l, format, args...)
}

// Close flushes the masker and closes the blob.
func (l *jobLog) Close() error {
	l.limit.mu.Lock()
	err := l.masker.Close()
	l.limit.mu.Unlock()
	if cerr := l.w.Close(); err == nil {
		err = cerr
	}
	l.limit.notify()
	return err
}

// Size is how many bytes were stored.
func (l *jobLog) Size() int64 { return l.limit.n.Load() }

// Exceeded reports whether the log hit its limit.
func (l *jobLog) Exceeded() bool { return l.limit.exceeded.Load() }

// limitWriter stores up to limit bytes, then a marker, then nothing; it
// calls onLimit once when the limit is hit.
type limitWriter struct {
	mu       sync.Mutex // held by jobLog around the masker
	w        io.Writer
	limit    int64
	n        atomic.Int64
	exceeded atomic.Bool
	onLimit  func()
	notify   func()
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.exceeded.Load() {
		return len(p), nil
	}
	room := l.limit - l.n.Load()
	if int64(len(p)) > room {
		if room > 0 {
			n, _ := l.w.Write(p[:room])
			l.n.Add(int64(n))
		}
		marker := fmt.Sprintf("\n\x1b[31m[rampart] log truncated: the job printed more than %d bytes, its log limit; the job fails\x1b[0m\n", l.limit)
		n, _ := io.WriteString(l.w, marker)
		l.n.Add(int64(n))
		l.exceeded.Store(true)
		if l.onLimit != nil {
			l.onLimit()
		}
		l.notify()
		return len(p), nil
	}
	n, err := l.w.Write(p)
	l.n.Add(int64(n))
	l.notify()
	if err != nil {
		return n, err
	}
	return len(p), nil
}
