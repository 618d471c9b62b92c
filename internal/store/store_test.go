package store_test

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestContract(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { storetest.Run(t, b) })
	}
}

func TestOpen_RejectsUnknownScheme(t *testing.T) {
	_, err := store.Open(t.Context(), "mysql://root:hunter2@db/x")
	if !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("err = %v, want Invalid", err)
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") {
		t.Fatalf("error leaks the password: %q", msg)
	}
}

func TestOpen_SQLitePathWithURICharacters(t *testing.T) {
	dir := t.TempDir() + "/odd #dir?%41"
	db, err := store.Open(t.Context(), "sqlite:"+dir+"/rampart.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(t.Context(), "CREATE TABLE x (a INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/rampart.db"); err != nil {
		t.Fatalf("database not where asked: %v", err)
	}
}

// TestStatementCache checks what the prepared-statement cache must not
// change: results after the schema changes under a cached statement, and
// transactions that all miss the cache at once while holding every pooled
// connection (preparing from inside them must not wait for a connection).
func TestStatementCache(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/rampart.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)", "a", "1"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT * FROM kv WHERE k = ?"
	var k, v string
	if err := db.QueryRow(ctx, q, "a").Scan(&k, &v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "ALTER TABLE kv ADD COLUMN w TEXT NOT NULL DEFAULT 'x'"); err != nil {
		t.Fatal(err)
	}
	var w string
	if err := db.QueryRow(ctx, q, "a").Scan(&k, &v, &w); err != nil || w != "x" {
		t.Fatalf("cached statement after ALTER TABLE: w=%q err=%v", w, err)
	}

	// More concurrent transactions than pooled connections, each running a
	// query nobody ran before.
	errs := make(chan error, 32)
	for i := range 32 {
		go func() {
			errs <- db.Tx(ctx, func(tx *store.Tx) error {
				var n int
				return tx.QueryRow(ctx, "SELECT count(*) + "+strconv.Itoa(i)+" FROM kv WHERE v <> ?", "zz").Scan(&n)
			})
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// And the same queries again, now from the cache, inside and outside
	// transactions.
	for i := range 32 {
		var n int
		query := "SELECT count(*) + " + strconv.Itoa(i) + " FROM kv WHERE v <> ?"
		if err := db.QueryRow(ctx, query, "zz").Scan(&n); err != nil || n != 1+i {
			t.Fatalf("%s: n=%d err=%v", query, n, err)
		}
		if err := db.Tx(ctx, func(tx *store.Tx) error { return tx.QueryRow(ctx, query, "zz").Scan(&n) }); err != nil || n != 1+i {
			t.Fatalf("in tx %s: n=%d err=%v", query, n, err)
		}
	}
	// A statement that fails to prepare still reports its error.
	if _, err := db.Exec(ctx, "INSERT INTO nosuch (a) VALUES (?)", 1); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("err = %v, want one naming the missing table", err)
	}
}

func BenchmarkQueryRow(b *testing.B) {
	ctx := b.Context()
	db, err := store.Open(ctx, "sqlite:"+b.TempDir()+"/rampart.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, a INTEGER, b INTEGER, c TEXT)"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, "INSERT INTO kv (k, v, a, b, c) VALUES (?, ?, 1, 2, 'c')", "a", "1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var k, v, c string
		var x, y int
		if err := db.QueryRow(ctx, "SELECT k, v, a, b, c FROM kv WHERE k = ? AND a > 0 AND b > 0", "a").Scan(&k, &v, &x, &y, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// Bursts of concurrent queries reuse the pool's connections instead of
// closing some and opening new ones (a new PostgreSQL connection costs an
// authentication on both sides).
func TestPool_KeepsItsConnections(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t)
			ctx := t.Context()
			for range 5 {
				var wg sync.WaitGroup
				for range 40 {
					wg.Go(func() {
						var n int
						if err := db.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			if st := db.Stats(); st.MaxIdleClosed > 0 || st.MaxIdleTimeClosed > 0 {
				t.Fatalf("bursts closed %d idle connections (and %d for idle time) only to open others: %+v", st.MaxIdleClosed, st.MaxIdleTimeClosed, st)
			}
		})
	}
}
