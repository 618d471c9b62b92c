package audit

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// FuzzParseJournal: any bytes parse without a panic; what parses encodes
// back to a line that parses to the same entry.
func FuzzParseJournal(f *testing.F) {
	line, _ := appendJournalLine(nil, journaled{N: 3, Record: Record{Action: "vault.secret.read", At: time.Unix(5, 0).UTC(),
		Target: Target{Type: "secret", ID: "9"}, Details: map[string]any{"version": 2}}})
	f.Add(line)
	f.Add(append(append([]byte{}, line...), line[:20]...))
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte("zzzzzzzz {\"n\":1}\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, _ := parseJournal(b)
		for _, e := range entries {
			again, err := appendJournalLine(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			back, ok := parseJournalLine(bytes.TrimSuffix(again, []byte("\n")))
			if !ok || back.N != e.N || back.Record.Action != e.Record.Action || !back.Record.At.Equal(e.Record.At) {
				t.Fatalf("%q parsed to %+v, which re-parses to %+v (%v)", b, e, back, ok)
			}
		}
	})
}

// Under steady load entries keep arriving while a batch commits, so the
// queue is never empty when a commit ends: the file must still be emptied
// of what was committed (rewritten with the pending entries), or it grows
// by every read forever. The rewritten file replays correctly.
func TestJournal_FileStaysSmallUnderSteadyLoad(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), Migrations); err != nil {
		t.Fatal(err)
	}
	l := New(db, nil)
	path := filepath.Join(t.TempDir(), "j")
	slow := func(ctx context.Context, fn func(context.Context, *store.Tx) error) error {
		time.Sleep(20 * time.Millisecond) // entries arrive during every commit
		return db.DurableTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
	}
	j, err := l.OpenJournal(t.Context(), path, slow, nil)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 32 << 10
	j.mu.Lock()
	j.truncateAt = limit
	j.mu.Unlock()
	rec := Record{Action: "vault.secret.read", ActorName: "ci-bot", Target: Target{Type: "secret", ID: "1", Name: "acme/web/DB"},
		Details: map[string]any{"via": "kv"}}
	// The longest line an entry of this test takes.
	long := resolve(t.Context(), rec)
	long.Details, long.At = nil, time.Now().UTC()
	line, _ := appendJournalLine(nil, journaled{N: 1 << 40, Record: long, D: []byte(`{"via":"kv"}`)})
	deadline := time.Now().Add(1500 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		for range 20 {
			if err := j.Append(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			n++
		}
		// The file holds the entries not yet committed (those of the
		// batch being committed among them), and what accrued since it
		// was last emptied, until that passes the limit.
		j.mu.Lock()
		size, pending := j.size-j.base, len(j.queue)
		j.mu.Unlock()
		if bound := int64(pending)*int64(len(line)) + limit + int64(len(line)); size > bound {
			t.Fatalf("after %d entries the file holds %d bytes of them with %d pending: more than %d", n, size, pending, bound)
		}
		time.Sleep(time.Millisecond)
	}
	if total := n * len(line); total < 8*limit {
		t.Fatalf("only %d entries (%d bytes) appended: the limit of %d was never tested", n, total, limit)
	}
	if err := j.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Reopening replays nothing twice: the log holds each entry once.
	j, err = l.OpenJournal(t.Context(), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(t.Context())
	var count int
	if err := db.QueryRow(t.Context(), "SELECT COUNT(*) FROM audit_log WHERE action = 'vault.secret.read'").Scan(&count); err != nil || count != n {
		t.Fatalf("%d entries in the log (%v), want %d", count, err, n)
	}
}
