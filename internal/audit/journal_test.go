package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func readCtx(t *testing.T, i int) context.Context {
	return reqinfo.With(t.Context(), reqinfo.Info{RequestID: fmt.Sprintf("req-%d", i), RemoteIP: "192.0.2.9", UserAgent: "vault-agent", ActorID: 7, ActorName: "ci-bot"})
}

func readRecord(i int) audit.Record {
	return audit.Record{Action: "vault.secret.read", OrgID: 0, Target: audit.Target{Type: "secret", ID: fmt.Sprint(i), Name: "acme/web/DB"},
		Details: map[string]any{"version": i, "via": "kv", "big": int64(1) << 60}}
}

// failing is a commit function of a database that is down.
func failing(context.Context, func(context.Context, *store.Tx) error) error {
	return errors.New("database unreachable")
}

// migratedSQLite is a fresh SQLite database holding the audit log's tables.
func migratedSQLite(t *testing.T) *store.DB {
	t.Helper()
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), audit.Migrations); err != nil {
		t.Fatal(err)
	}
	return db
}

// appendReads appends the read entries from to to-1 to j.
func appendReads(t *testing.T, j *audit.Journal, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := j.Append(readCtx(t, i), readRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// mustVerify fails the test unless the log's chain verifies.
func mustVerify(t *testing.T, l *audit.Log) {
	t.Helper()
	if rep, err := l.Verify(t.Context()); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func listReads(t *testing.T, l *audit.Log) []audit.Entry {
	t.Helper()
	es, err := l.List(t.Context(), audit.Filter{Action: "vault.secret.read", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// Entries appended to a journal are in a listing at once, with the actor,
// request details and time of the append, and the chain verifies.
func TestJournal_ListShowsEntriesAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
		l := audit.New(db, func() time.Time { return at })
		j, err := l.OpenJournal(t.Context(), filepath.Join(t.TempDir(), "j"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close(t.Context())
		appendReads(t, j, 0, 3)
		es := listReads(t, l)
		if len(es) != 3 {
			t.Fatalf("%d entries listed, want 3", len(es))
		}
		for k, e := range es {
			i := 2 - k // newest first
			if e.RequestID != fmt.Sprintf("req-%d", i) || e.ActorName != "ci-bot" || e.SourceIP != "192.0.2.9" || !e.At.Equal(at.Truncate(time.Microsecond)) ||
				fmt.Sprint(e.Details["version"]) != fmt.Sprint(i) {
				t.Errorf("entry %d: %+v", i, e)
			}
		}
		var details string
		if err := db.QueryRow(t.Context(), "SELECT details FROM audit_log WHERE request_id = 'req-1'").Scan(&details); err != nil ||
			details != `{"big":1152921504606846976,"version":1,"via":"kv"}` {
			t.Errorf("stored details %s %v: numbers must keep their digits", details, err)
		}
		mustVerify(t, l)
	}, audit.Migrations)
}

// Entries written while the database could not take them are appended at
// the next open, once, in order; a torn last line (a write cut short) is
// ignored, an unreadable line in the middle is reported by an entry of
// its own.
func TestJournal_ReplaysWhatWasNotCommitted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := audit.New(db, nil)
		path := filepath.Join(t.TempDir(), "j")
		down, err := l.OpenJournal(t.Context(), path, failing, nil)
		if err != nil {
			t.Fatal(err)
		}
		appendReads(t, down, 0, 6)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		if err := down.Close(ctx); err == nil {
			t.Fatal("Close with entries it could not commit: no error")
		}
		cancel()
		if n := len(listReads(t, l)); n != 0 {
			t.Fatalf("%d entries reached the log through a failing database", n)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(raw, []byte("\n"))
		// lines[0] is the header; damage entry 3 (lines[3]) and add a torn
		// line at the end.
		lines[3] = bytes.Replace(lines[3], []byte("ci-bot"), []byte("ci-bat"), 1)
		damaged := append(bytes.Join(lines, nil), []byte("0badc0de {\"n\":7,\"r\":{\"act")...)
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}

		for round := range 2 {
			j, err := l.OpenJournal(t.Context(), path, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			es := listReads(t, l)
			var ids []string
			for _, e := range es {
				ids = append([]string{e.RequestID}, ids...)
			}
			if got := strings.Join(ids, " "); got != "req-0 req-1 req-3 req-4 req-5" {
				t.Errorf("open %d: entries %q, want req-0 req-1 req-3 req-4 req-5 once each, in order", round, got)
			}
			corrupt, err := l.List(t.Context(), audit.Filter{Action: "audit.journal.corrupt"})
			if err != nil || len(corrupt) != 1 || fmt.Sprint(corrupt[0].Details["unreadable_entries"]) != "1" {
				t.Errorf("open %d: corruption entries %+v %v, want one naming 1 unreadable entry", round, corrupt, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() > 100 {
				t.Errorf("open %d: the journal was not emptied after replay: %v %v", round, fi.Size(), err)
			}
			if err := j.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		mustVerify(t, l)
	}, audit.Migrations)
}

// A journal whose entries were committed but not yet emptied from the file
// (a crash right after a commit) appends none of them again.
func TestJournal_CommittedEntriesAreNotReplayed(t *testing.T) {
	db := migratedSQLite(t)
	l := audit.New(db, nil)
	path := filepath.Join(t.TempDir(), "j")
	j, err := l.OpenJournal(t.Context(), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	appendReads(t, j, 0, 4)
	if err := j.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, kept, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err = l.OpenJournal(t.Context(), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(t.Context())
	if n := len(listReads(t, l)); n != 4 {
		t.Fatalf("%d entries after reopening a journal of 4 committed ones, want 4", n)
	}
	// New entries continue the journal's numbering.
	if err := j.Append(readCtx(t, 9), readRecord(9)); err != nil {
		t.Fatal(err)
	}
	if n := len(listReads(t, l)); n != 5 {
		t.Fatalf("%d entries, want 5", n)
	}
}

// A journal is one process's: a second open fails, and a file that is not
// a journal is refused with a clear error and left alone.
func TestJournal_RefusesSharedAndForeignFiles(t *testing.T) {
	db := migratedSQLite(t)
	l := audit.New(db, nil)
	path := filepath.Join(t.TempDir(), "j")
	j, err := l.OpenJournal(t.Context(), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenJournal(t.Context(), path, nil, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: %v, want in use", err)
	}
	j.Close(t.Context())
	j.Close(t.Context()) // twice is harmless

	foreign := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte("shopping list\nmilk\n")
	if err := os.WriteFile(foreign, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenJournal(t.Context(), foreign, nil, nil); err == nil || !strings.Contains(err.Error(), "not a Rampart audit journal") {
		t.Errorf("open a foreign file: %v", err)
	}
	if got, _ := os.ReadFile(foreign); !bytes.Equal(got, content) {
		t.Errorf("the foreign file was changed: %q", got)
	}
	if err := j.Append(readCtx(t, 1), readRecord(1)); err == nil {
		t.Error("append to a closed journal: no error")
	}
}

// Entries arriving a few at a time reach the log in a few large commits,
// not a commit each: a commit costs as much as a hundred inserts, and the
// vault's read rate depends on it. Every entry still gets there without a
// Flush.
func TestJournal_GathersEntriesIntoFewCommits(t *testing.T) {
	db := migratedSQLite(t)
	l := audit.New(db, nil)
	var commits atomic.Int64
	counting := func(ctx context.Context, fn func(context.Context, *store.Tx) error) error {
		err := db.DurableTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
		if err == nil {
			commits.Add(1)
		} else {
			t.Logf("commit: %v", err)
		}
		return err
	}
	j, err := l.OpenJournal(t.Context(), filepath.Join(t.TempDir(), "j"), counting, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(t.Context())
	const n = 40
	for i := range n {
		if err := j.Append(readCtx(t, i), readRecord(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c int64
		if err := db.QueryRow(t.Context(), "SELECT COUNT(*) FROM audit_log").Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d entries reached the log without a Flush", c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := commits.Load(); c > 5 {
		t.Errorf("%d entries a millisecond apart took %d commits, want a few", n, c)
	}
}

// A user agent cut mid-character (the request-id middleware keeps 256
// bytes) or sent as invalid UTF-8 is stored with U+FFFD: PostgreSQL would
// refuse the entry, and a journal entry the log refuses holds up every
// later one.
func TestJournal_InvalidUTF8DoesNotHoldUpTheLog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := audit.New(db, nil)
		j, err := l.OpenJournal(t.Context(), filepath.Join(t.TempDir(), "j"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close(t.Context())
		ua := (strings.Repeat("a", 255) + "é")[:256]
		bad := reqinfo.With(t.Context(), reqinfo.Info{RequestID: "bad\xff", UserAgent: ua, ActorName: "eve"})
		if err := j.Append(bad, readRecord(0)); err != nil {
			t.Fatal(err)
		}
		appendReads(t, j, 1, 4)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := j.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
		es := listReads(t, l)
		if len(es) != 4 {
			t.Fatalf("%d entries in the log, want 4", len(es))
		}
		first := es[len(es)-1]
		if first.UserAgent != strings.Repeat("a", 255)+"\uFFFD" || first.RequestID != "bad\uFFFD" {
			t.Errorf("stored user agent %q, request id %q", first.UserAgent, first.RequestID)
		}
		mustVerify(t, l)
	}, audit.Migrations)
}

// A commit that went through but whose answer was lost (the connection
// dropped at COMMIT) is retried: the entries it appended are not appended
// again.
func TestJournal_LostCommitAnswerIsNotAppendedTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := audit.New(db, nil)
		var once atomic.Bool
		lossy := func(ctx context.Context, fn func(context.Context, *store.Tx) error) error {
			err := db.DurableTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
			if err == nil && once.CompareAndSwap(false, true) {
				return errors.New("connection reset by peer")
			}
			return err
		}
		j, err := l.OpenJournal(t.Context(), filepath.Join(t.TempDir(), "j"), lossy, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close(t.Context())
		appendReads(t, j, 0, 3)
		if err := j.Flush(t.Context()); err == nil {
			t.Fatal("the first commit's lost answer: Flush reported no error")
		}
		if err := j.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(listReads(t, l)); n != 3 {
			t.Fatalf("3 reads, %d entries in the log", n)
		}
	}, audit.Migrations)
}
