package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// Run is the contract suite: every dialect must behave the same way for
// everything the components rely on.
func Run(t *testing.T, b Backend) {
	t.Run("MigrateAppliesOnceInOrder", func(t *testing.T) {
		url := b.URL(t)
		db := OpenURL(t, url)
		ctx := t.Context()
		if err := db.Migrate(ctx, widgets); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		// A second process starting on the same database applies nothing twice.
		if err := OpenURL(t, url).Migrate(ctx, widgets); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		got, err := db.Applied(ctx, "widgets")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Fatalf("applied versions = %v, want [1 2]", got)
		}
	})

	t.Run("ConcurrentMigrateFromTwoHandles", func(t *testing.T) {
		url := b.URL(t)
		a, c := OpenURL(t, url), OpenURL(t, url)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, db := range []*store.DB{a, c} {
			wg.Go(func() { errs[i] = db.Migrate(context.Background(), widgets) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("concurrent migrate: %v", err)
			}
		}
	})

	t.Run("FailedMigrationLeavesNothing", func(t *testing.T) {
		db := b.Open(t)
		ctx := t.Context()
		bad := store.Migrations{Component: "bad", FS: fstest.MapFS{
			"0001_half.sql": {Data: []byte("CREATE TABLE half (id BIGINT);\nCREATE TABLE half (id BIGINT);\n")},
		}}
		if err := db.Migrate(ctx, bad); err == nil {
			t.Fatal("migration with a duplicate table succeeded")
		}
		if _, err := db.Exec(ctx, "INSERT INTO half (id) VALUES (1)"); err == nil {
			t.Fatal("table from a failed migration exists")
		}
		if v, _ := db.Applied(ctx, "bad"); len(v) != 0 {
			t.Fatalf("failed migration recorded as applied: %v", v)
		}
	})

	t.Run("RejectsBadMigrationNames", func(t *testing.T) {
		db := b.Open(t)
		bad := store.Migrations{Component: "bad", FS: fstest.MapFS{"1_x.sql": {Data: []byte("SELECT 1;")}}}
		if err := db.Migrate(t.Context(), bad); err == nil {
			t.Fatal("migration named 1_x.sql accepted")
		}
	})

	t.Run("RoundTripsTypes", func(t *testing.T) {
		db := migrated(t, b)
		ctx := t.Context()
		now := time.Now().Truncate(time.Microsecond).UTC()
		var id int64
		err := db.QueryRow(ctx, "INSERT INTO widgets (name, active, data, made_at, note) VALUES (?, ?, ?, ?, ?) RETURNING id",
			"it's ?", true, []byte{0, 1, 2, 255}, store.Time(now), nil).Scan(&id)
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		if id <= 0 {
			t.Fatalf("RETURNING id = %d", id)
		}
		var (
			name   string
			active bool
			data   []byte
			made   time.Time
			note   *string
		)
		err = db.QueryRow(ctx, "SELECT name, active, data, made_at, note FROM widgets WHERE id = ? AND name <> 'a ? in a literal'", id).
			Scan(&name, &active, &data, store.TimeDest(&made), &note)
		if err != nil {
			t.Fatalf("select: %v", err)
		}
		if name != "it's ?" || !active || string(data) != "\x00\x01\x02\xff" || !made.Equal(now) || note != nil {
			t.Fatalf("round trip = %q %v %v %v %v", name, active, data, made, note)
		}
	})

	t.Run("MissingRowIsNotFound", func(t *testing.T) {
		db := migrated(t, b)
		var name string
		err := db.QueryRow(t.Context(), "SELECT name FROM widgets WHERE id = ?", 424242).Scan(&name)
		if !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("err = %v, want NotFound", err)
		}
	})

	t.Run("UniqueViolationIsConflict", func(t *testing.T) {
		db := migrated(t, b)
		ctx := t.Context()
		if _, err := db.Exec(ctx, "INSERT INTO widgets (name, active) VALUES (?, ?)", "dup", false); err != nil {
			t.Fatal(err)
		}
		_, err := db.Exec(ctx, "INSERT INTO widgets (name, active) VALUES (?, ?)", "dup", false)
		if !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("err = %v, want Conflict", err)
		}
	})

	t.Run("ForeignKeysEnforced", func(t *testing.T) {
		db := migrated(t, b)
		_, err := db.Exec(t.Context(), "INSERT INTO parts (widget_id, label) VALUES (?, ?)", 999, "orphan")
		if !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("err = %v, want Conflict for a missing parent", err)
		}
	})

	t.Run("OnConflictUpsert", func(t *testing.T) {
		db := migrated(t, b)
		ctx := t.Context()
		for range 3 {
			if _, err := db.Exec(ctx, `INSERT INTO counters (name, n) VALUES (?, 1)
				ON CONFLICT (name) DO UPDATE SET n = counters.n + 1`, "c"); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT n FROM counters WHERE name = ?", "c").Scan(&n); err != nil || n != 3 {
			t.Fatalf("n = %d, %v; want 3", n, err)
		}
	})

	t.Run("TxRollsBackOnError", func(t *testing.T) {
		db := migrated(t, b)
		ctx := t.Context()
		boom := errors.New("boom")
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO widgets (name, active) VALUES (?, ?)", "ghost", true); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM widgets WHERE name = ?", "ghost").Scan(&n); err != nil || n != 0 {
			t.Fatalf("rolled-back row visible: n=%d err=%v", n, err)
		}
	})

	t.Run("ConcurrentTxSerialise", func(t *testing.T) {
		db := migrated(t, b)
		ctx := t.Context()
		if _, err := db.Exec(ctx, "INSERT INTO counters (name, n) VALUES ('x', 0)"); err != nil {
			t.Fatal(err)
		}
		const workers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Go(func() {
				for range each {
					errs <- db.Tx(ctx, func(tx *store.Tx) error {
						var n int
						if err := tx.QueryRow(ctx, "SELECT n FROM counters WHERE name = 'x'"+forUpdate(db)).Scan(&n); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, "UPDATE counters SET n = ? WHERE name = 'x'", n+1)
						return err
					})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("tx: %v", err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT n FROM counters WHERE name = 'x'").Scan(&n); err != nil || n != workers*each {
			t.Fatalf("n = %d (%v), want %d: lost updates", n, err, workers*each)
		}
	})

	t.Run("QueryIteratesInOrder", func(t *testing.T) {
		db := migrated(t, b)
		ctx := t.Context()
		for _, n := range []string{"c", "a", "b"} {
			if _, err := db.Exec(ctx, "INSERT INTO widgets (name, active) VALUES (?, FALSE)", n); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.Query(ctx, "SELECT name FROM widgets ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0] != "a" || got[2] != "c" {
			t.Fatalf("got %v", got)
		}
	})
}

// forUpdate returns the row-locking suffix where the dialect needs one
// (SQLite's immediate transactions already hold the write lock).
func forUpdate(db *store.DB) string {
	if db.Dialect() == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func migrated(t *testing.T, b Backend) *store.DB {
	t.Helper()
	db := b.Open(t)
	if err := db.Migrate(t.Context(), widgets); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

var widgets = store.Migrations{Component: "widgets", FS: fstest.MapFS{
	"0001_widgets.sql": {Data: []byte(`-- the contract suite's own tables
CREATE TABLE widgets (
	id {{autoid}},
	name TEXT NOT NULL UNIQUE,
	active BOOLEAN NOT NULL DEFAULT FALSE,
	data {{blob}},
	made_at BIGINT,
	note TEXT
);
CREATE TABLE parts (
	id {{autoid}},
	widget_id BIGINT NOT NULL REFERENCES widgets(id) ON DELETE CASCADE,
	label TEXT NOT NULL
);
`)},
	"0002_counters.sql": {Data: []byte(`CREATE TABLE counters (name TEXT PRIMARY KEY, n BIGINT NOT NULL);
`)},
}}
