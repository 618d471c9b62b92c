// Package storetest opens real databases for tests and holds the contract
// suite every store dialect must pass.
//
// SQLite databases live in t.TempDir(). PostgreSQL tests need
// RAMPART_TEST_POSTGRES (a URL whose role may create schemas); each test gets
// a fresh schema that is dropped afterwards. Without it they skip, or fail
// under CI=true.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/testenv"
)

// PostgresEnv names the environment variable holding the test server URL.
const PostgresEnv = "RAMPART_TEST_POSTGRES"

// SQLiteURL returns the URL of a fresh SQLite database in a temporary
// directory.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "rampart.db")
}

// OpenSQLite opens a fresh SQLite database in a temporary directory.
func OpenSQLite(t testing.TB) *store.DB { t.Helper(); return OpenURL(t, SQLiteURL(t)) }

// OpenURL opens the database at url and closes it when the test ends.
func OpenURL(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL returns a URL to a fresh, empty schema on the test server,
// dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := testenv.Env(t, PostgresEnv, "a postgres:// URL; .ci/run starts one")
	ctx := context.Background()
	admin, err := store.Open(ctx, base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres opens a fresh schema on the test PostgreSQL server.
func OpenPostgres(t testing.TB) *store.DB { t.Helper(); return OpenURL(t, PostgresURL(t)) }

// Backend is one store dialect as tests see it.
type Backend struct {
	Name string
	// URL returns the URL of a fresh, empty database of this dialect.
	URL func(t testing.TB) string
}

// Open opens a fresh database of this backend.
func (b Backend) Open(t testing.TB) *store.DB { t.Helper(); return OpenURL(t, b.URL(t)) }

// Backends lists every dialect, for table-driven tests.
func Backends() []Backend {
	return []Backend{
		{"sqlite", SQLiteURL},
		{"postgres", PostgresURL},
	}
}

// Each runs fn once per dialect, in subtests named after it, each with a
// fresh database that has the given migrations applied.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB), migrations ...store.Migrations) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t)
			if err := db.Migrate(t.Context(), migrations...); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			fn(t, db)
		})
	}
}
