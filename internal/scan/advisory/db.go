package advisory

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the schema of the advisory database, for callers that keep
// it in a store they open themselves.
var Migrations = store.Migrations{Component: "advisory", FS: mustSub(migrationFS, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return s
}

// DefaultBaseURL is where OSV publishes its per-ecosystem archives.
const DefaultBaseURL = "https://osv-vulnerabilities.storage.googleapis.com"

// EnvPath names the environment variable that overrides DefaultPath.
const EnvPath = "RAMPART_ADVISORY_DB"

// DB is a local OSV advisory database.
type DB struct {
	st    *store.DB
	owned bool
	// Client downloads archives in Update; nil means http.DefaultClient.
	Client *http.Client
	// Now is the clock stamped on imports; nil means time.Now.
	Now func() time.Time
}

// Open opens (creating it if needed) the advisory database at path: a
// SQLite file, or a store URL (sqlite:… or postgres://…) to keep it in a
// server database.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, apperr.E(apperr.Invalid, "no advisory database path given")
	}
	url := path
	if !strings.HasPrefix(path, "sqlite:") && !strings.HasPrefix(path, "postgres://") && !strings.HasPrefix(path, "postgresql://") {
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			return nil, apperr.E(apperr.Invalid, "advisory database %s is a directory, not a file", path)
		}
		url = "sqlite:" + path
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	db, err := New(ctx, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	db.owned = true
	return db, nil
}

// New uses an open store for the advisory database, applying Migrations.
// Close does not close st.
func New(ctx context.Context, st *store.DB) (*DB, error) {
	if err := st.Migrate(ctx, Migrations); err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, "prepare the advisory database")
	}
	return &DB{st: st}, nil
}

// Close closes the database if Open opened it.
func (db *DB) Close() error {
	if db.owned {
		return db.st.Close()
	}
	return nil
}

func (db *DB) now() time.Time {
	if db.Now != nil {
		return db.Now()
	}
	return time.Now()
}

func (db *DB) client() *http.Client {
	if db.Client != nil {
		return db.Client
	}
	return http.DefaultClient
}

// DefaultPath is where a standalone `rampart scan` keeps its database:
// $RAMPART_ADVISORY_DB if set, else advisories.db in a rampart folder of
// the user's cache directory ($XDG_CACHE_HOME or ~/.cache on Linux).
func DefaultPath(getenv func(string) string) (string, error) {
	if p := getenv(EnvPath); p != "" {
		return p, nil
	}
	dir := getenv("XDG_CACHE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", apperr.Wrap(err, apperr.Invalid, "no user cache directory: pass --db or set "+EnvPath)
		}
		dir = d
	}
	return filepath.Join(dir, "rampart", "advisories.db"), nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
