package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// A Journal takes entries that must be recorded before a request is
// answered but need not wait for a database commit: Append writes the
// entry to a local file (one write system call: it survives a crash of
// Rampart, as Vault's file audit device does, though not a power cut before
// the operating system wrote it out) and a goroutine commits what was
// written to the log in batches: it gathers for journalGather after an
// entry arrives, then commits everything gathered in one transaction
// (List, Export, Verify and Flush commit at once). At open, entries a
// crash left uncommitted are appended; the database remembers, per
// journal, the last entry committed (in the same transaction as the
// entries), so none is appended twice.
//
// The vault answers secret reads this way: their audit entries are the
// one write on a read's path, and a group commit of them costs a read
// more latency than its own work.
//
// Entries keep the time they were appended (Record.At); their place in the
// chain is the order they are committed in, so an entry may come after an
// entry of a later action that committed directly. List, Export and Verify
// commit a journal's pending entries first, so a process sees its own
// entries at once; another replica's appear within journalGather and a
// commit.
type Journal struct {
	log    *Log
	path   string
	id     string
	commit CommitFunc
	logger *slog.Logger

	mu        sync.Mutex
	f         *os.File
	size      int64 // bytes in the file
	base      int64 // the header's
	next      int64 // the next entry's number in the journal
	queue     []journaled
	committed int64 // the last entry number the log holds
	closed    bool
	changed   chan struct{} // closed and replaced when committed moves or an attempt fails
	lastErr   error         // the last commit's failure, nil after a success

	// truncateAt is the file size past which a commit empties it of
	// committed entries (journalTruncateAt; tests lower it).
	truncateAt int64

	wake     chan struct{} // an entry was queued
	flushNow chan struct{} // a Flush waits: commit without gathering
	done     chan struct{}
	wg       sync.WaitGroup
}

// CommitFunc runs fn in a durable transaction (a group committer's, or
// store.DB.DurableTx).
type CommitFunc func(ctx context.Context, fn func(ctx context.Context, tx *store.Tx) error) error

type journaled struct {
	N      int64  `json:"n"`
	Record Record `json:"r"` // without Details: D holds them
	// D is the record's details as the log stores and hashes them
	// (canonicalDetails), encoded once at Append.
	D json.RawMessage `json:"d,omitempty"`
}

// details is what the log stores as e's details: D, or for a line
// written before D existed, the record's own details encoded.
func (e journaled) details() (string, error) {
	if len(e.D) > 0 {
		return string(e.D), nil
	}
	return canonicalDetails(e.Record.Details)
}

const (
	journalMagic = "rampart-audit-journal 1 "
	// MaxJournalQueue bounds the entries written and not yet committed:
	// beyond it Append fails (the database has been failing for a while)
	// rather than let the file grow without end.
	MaxJournalQueue = 100_000
	// journalTruncateAt is the size past which the journal is emptied of
	// its committed entries (truncated, or rewritten with the pending ones
	// when there are any: under steady load there always are).
	journalTruncateAt = 16 << 20
	journalBatch      = 1024
	// journalGather is how long the committer gathers entries after the
	// first one before it commits them: at most one commit a
	// journalGather, so at 5,000 reads a second one commit carries about
	// 500 entries and an entry costs an insert, not a commit.
	journalGather  = 100 * time.Millisecond
	maxJournalLine = 1 << 20
)

// OpenJournal opens (or creates) the journal file at path, appends to the
// log the entries a previous run left uncommitted, and starts committing.
// commit nil commits with the database's own durable transactions. Only
// one process may hold a journal.
func (l *Log) OpenJournal(ctx context.Context, path string, commit CommitFunc, logger *slog.Logger) (*Journal, error) {
	if commit == nil {
		commit = func(ctx context.Context, fn func(ctx context.Context, tx *store.Tx) error) error {
			return l.db.DurableTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit journal %s is in use by another process: %w", path, err)
	}
	j := &Journal{log: l, path: path, commit: commit, logger: logger, f: f, truncateAt: journalTruncateAt,
		changed: make(chan struct{}), wake: make(chan struct{}, 1), flushNow: make(chan struct{}, 1), done: make(chan struct{})}
	if err := j.recover(ctx); err != nil {
		f.Close()
		return nil, err
	}
	l.mu.Lock()
	l.journals = append(l.journals, j)
	l.mu.Unlock()
	j.wg.Add(1)
	go j.run()
	return j, nil
}

// recover reads the file, appends what the log lacks and empties it.
func (j *Journal) recover(ctx context.Context) error {
	data, err := io.ReadAll(j.f)
	if err != nil {
		return fmt.Errorf("audit journal %s: %w", j.path, err)
	}
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok && (bytes.HasPrefix(data, []byte(journalMagic)) || bytes.HasPrefix([]byte(journalMagic), data)) {
		// New, or a header a crash cut short at creation (no entry is
		// written before the header is on disk): start afresh.
		j.next = 1
		return j.reset(newJournalID())
	}
	id, valid := strings.CutPrefix(string(header), journalMagic)
	if _, err := hex.DecodeString(id); !ok || !valid || len(id) != 32 || err != nil {
		return apperr.E(apperr.Invalid, "audit journal %s: not a Rampart audit journal (bad header); move it away to start a new one", j.path)
	}
	j.id = id
	var done int64
	err = j.log.db.QueryRow(ctx, "SELECT seq FROM audit_journals WHERE id = ?", id).Scan(&done)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return fmt.Errorf("audit journal: %w", err)
	}
	entries, corrupt := parseJournal(rest)
	last := done
	var pending []journaled
	for _, e := range entries {
		last = max(last, e.N)
		if e.N > done {
			pending = append(pending, e)
		}
	}
	for len(pending) > 0 {
		n := min(len(pending), journalBatch)
		if err := j.commitBatch(ctx, pending[:n]); err != nil {
			return fmt.Errorf("audit journal %s: append the entries of the previous run: %w", j.path, err)
		}
		pending = pending[n:]
	}
	if corrupt > 0 {
		if j.logger != nil {
			j.logger.Error("audit journal had unreadable entries; they are lost", "file", j.path, "count", corrupt)
		}
		if err := j.log.Append(ctx, Record{Action: "audit.journal.corrupt", Outcome: Failure, ActorName: "system",
			Target: Target{Type: "audit_journal", ID: id}, Details: map[string]any{"unreadable_entries": corrupt}}); err != nil {
			return err
		}
	}
	j.next, j.committed = last+1, last
	return j.truncate()
}

func newJournalID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reset makes the file hold only a header with id, durably.
func (j *Journal) reset(id string) error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("audit journal %s: %w", j.path, err)
	}
	h := journalMagic + id + "\n"
	if _, err := j.f.WriteString(h); err != nil {
		return fmt.Errorf("audit journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("audit journal %s: %w", j.path, err)
	}
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	j.id, j.base, j.size = id, int64(len(h)), int64(len(h))
	return nil
}

// truncate empties the file after its header (every entry committed).
func (j *Journal) truncate() error {
	if j.base == 0 {
		j.base = int64(len(journalMagic) + len(j.id) + 1)
	}
	if err := j.f.Truncate(j.base); err != nil {
		return fmt.Errorf("audit journal %s: %w", j.path, err)
	}
	j.size = j.base
	return nil
}

// compact replaces the file with one holding the header and the entries
// not yet committed (j.mu held). The new file is complete and synced
// before it takes the old one's name, so a crash leaves one or the other.
func (j *Journal) compact() error {
	tmp := j.path + ".compact"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error { f.Close(); os.Remove(tmp); return err }
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	buf := []byte(journalMagic + j.id + "\n")
	base := int64(len(buf))
	for _, e := range j.queue {
		if buf, err = appendJournalLine(buf, e); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Write(buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	_ = j.f.Close()
	j.f, j.base, j.size = f, base, int64(len(buf))
	return nil
}

// parseJournal reads the lines after the header: "CRC32C-HEX JSON\n". A
// last line without its newline is a write a crash cut short (never
// acknowledged) and is ignored; other unreadable lines are counted.
func parseJournal(b []byte) (entries []journaled, corrupt int) {
	for len(b) > 0 {
		line, rest, complete := bytes.Cut(b, []byte("\n"))
		b = rest
		if !complete {
			break
		}
		e, ok := parseJournalLine(line)
		if !ok {
			corrupt++
			continue
		}
		entries = append(entries, e)
	}
	return entries, corrupt
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func parseJournalLine(line []byte) (journaled, bool) {
	var e journaled
	if len(line) < 10 || line[8] != ' ' || len(line) > maxJournalLine {
		return e, false
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || uint32(sum) != crc32.Checksum(line[9:], crcTable) {
		return e, false
	}
	d := json.NewDecoder(bytes.NewReader(line[9:]))
	d.UseNumber() // details keep their numbers' text, and so their hash
	if err := d.Decode(&e); err != nil || e.N <= 0 || e.Record.Action == "" {
		return journaled{}, false
	}
	return e, true
}

func appendJournalLine(dst []byte, e journaled) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return dst, fmt.Errorf("audit: encode journal entry: %w", err)
	}
	if len(body)+10 > maxJournalLine {
		return dst, fmt.Errorf("audit: journal entry of %d bytes is too large", len(body))
	}
	dst = fmt.Appendf(dst, "%08x ", crc32.Checksum(body, crcTable))
	dst = append(dst, body...)
	return append(dst, '\n'), nil
}

// Append writes r to the journal; it reaches the log with the next commit.
// r's actor and request details are taken from ctx now, and its time is
// the log's clock now unless set. An error means nothing was recorded.
func (j *Journal) Append(ctx context.Context, r Record) error {
	if r.Action == "" {
		return errors.New("audit: record without action")
	}
	r = resolve(ctx, r)
	if r.At.IsZero() {
		r.At = j.log.now().UTC().Truncate(time.Microsecond)
	}
	details, err := canonicalDetails(r.Details)
	if err != nil {
		return err
	}
	r.Details = nil
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return apperr.E(apperr.Unavailable, "the audit journal is closed")
	}
	if len(j.queue) >= MaxJournalQueue {
		return apperr.E(apperr.Unavailable, "the audit log has not accepted entries for a while (%d waiting); refusing actions that must be audited", len(j.queue))
	}
	e := journaled{N: j.next, Record: r, D: json.RawMessage(details)}
	line, err := appendJournalLine(nil, e)
	if err != nil {
		return err
	}
	if n, err := j.f.Write(line); err != nil {
		if n > 0 {
			_ = j.f.Truncate(j.size) // no torn line before the next entry
		}
		return fmt.Errorf("audit journal: %w", err)
	}
	j.next++
	j.size += int64(len(line))
	j.queue = append(j.queue, e)
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// run commits the queue until Close.
func (j *Journal) run() {
	defer j.wg.Done()
	backoff := 50 * time.Millisecond
	gather := time.NewTimer(journalGather)
	gather.Stop()
	for {
		select {
		case <-j.wake:
			// Gather: one commit a while carries every entry of the
			// while, which is what makes an entry cheap (a commit costs
			// as much as a hundred inserts). A Flush or Close cuts it
			// short.
			gather.Reset(journalGather)
			select {
			case <-gather.C:
			case <-j.flushNow:
				gather.Stop()
			case <-j.done:
				gather.Stop()
				return
			}
		case <-j.flushNow:
		case <-j.done:
			return
		}
		for {
			j.mu.Lock()
			batch := j.queue[:min(len(j.queue), journalBatch)]
			j.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			err := j.commitBatch(context.Background(), batch)
			j.mu.Lock()
			if err != nil {
				j.lastErr = err
				close(j.changed)
				j.changed = make(chan struct{})
				j.mu.Unlock()
				if j.logger != nil {
					j.logger.Error("audit journal: commit failed; the entries stay in the journal and are retried", "err", err)
				}
				select {
				case <-time.After(backoff):
					backoff = min(2*backoff, 5*time.Second)
				case <-j.done:
					return
				}
				continue
			}
			backoff = 50 * time.Millisecond
			j.lastErr = nil
			j.committed = batch[len(batch)-1].N
			k := copy(j.queue, j.queue[len(batch):])
			clear(j.queue[k:])
			j.queue = j.queue[:k]
			if j.size > j.truncateAt {
				// Under steady load the queue is rarely empty here, so the
				// file is rewritten with only the pending entries.
				var err error
				if len(j.queue) == 0 {
					err = j.truncate()
				} else {
					err = j.compact()
				}
				if err != nil && j.logger != nil {
					j.logger.Error("audit journal: empty the file", "err", err)
				}
			}
			close(j.changed)
			j.changed = make(chan struct{})
			j.mu.Unlock()
		}
	}
}

// commitBatch appends entries to the log and records the last one's number,
// in one transaction.
func (j *Journal) commitBatch(ctx context.Context, batch []journaled) error {
	recs := make([]Pending, len(batch))
	for i, e := range batch {
		d, err := e.details()
		if err != nil {
			return err
		}
		recs[i] = Pending{Ctx: context.Background(), Record: e.Record, details: d}
	}
	last := batch[len(batch)-1].N
	return j.commit(ctx, func(ctx context.Context, tx *store.Tx) error {
		// A commit whose outcome was lost (its connection dropped at
		// COMMIT) may have appended some of batch: not again.
		var done int64
		if err := tx.QueryRow(ctx, "SELECT seq FROM audit_journals WHERE id = ?", j.id).Scan(&done); err != nil && !apperr.Is(err, apperr.NotFound) {
			return err
		}
		skip := 0
		for skip < len(batch) && batch[skip].N <= done {
			skip++
		}
		if skip == len(batch) {
			return nil
		}
		if err := j.log.AppendEachTx(ctx, tx, recs[skip:]...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_journals (id, seq) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`, j.id, last)
		return err
	})
}

// Flush waits until every entry appended before it is in the log. It
// fails when a commit fails meanwhile (the entries stay in the journal).
func (j *Journal) Flush(ctx context.Context) error {
	j.mu.Lock()
	target := j.next - 1
	j.mu.Unlock()
	select {
	case j.flushNow <- struct{}{}:
	default:
	}
	for {
		j.mu.Lock()
		if j.committed >= target {
			j.mu.Unlock()
			return nil
		}
		if j.closed {
			j.mu.Unlock()
			return apperr.E(apperr.Unavailable, "the audit journal is closed with entries not yet in the log; they are appended at the next start")
		}
		ch := j.changed
		j.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		j.mu.Lock()
		err := j.lastErr
		j.mu.Unlock()
		if err != nil {
			return fmt.Errorf("audit journal: entries not yet in the log: %w", err)
		}
	}
}

// Close commits what is pending (within ctx) and closes the file; entries
// left over are appended at the next open.
func (j *Journal) Close(ctx context.Context) error {
	ferr := j.Flush(ctx)
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.done)
	j.wg.Wait()
	j.mu.Lock()
	close(j.changed) // wake Flushes waiting for a commit that will not come
	j.changed = make(chan struct{})
	j.mu.Unlock()
	j.log.mu.Lock()
	for i, o := range j.log.journals {
		if o == j {
			j.log.journals = append(j.log.journals[:i], j.log.journals[i+1:]...)
			break
		}
	}
	j.log.mu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Close(); err != nil {
		return err
	}
	return ferr
}

// flushJournals commits the pending entries of this process's journals, so
// that a listing shows them.
func (l *Log) flushJournals(ctx context.Context) error {
	l.mu.Lock()
	js := append([]*Journal(nil), l.journals...)
	l.mu.Unlock()
	for _, j := range js {
		if err := j.Flush(ctx); err != nil {
			return err
		}
	}
	return nil
}
