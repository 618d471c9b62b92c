package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Dialect is the SQL flavour of a database.
type Dialect uint8

// Dialects.
const (
	SQLite Dialect = iota + 1
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// DB is an open database.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	rebind  sync.Map // query string → rewritten query (Postgres only)

	// stmts caches prepared statements by query text (SQLite only: pgx
	// keeps its own per-connection statement cache). Preparing is most of
	// the cost of a small SQLite query; database/sql prepares a cached
	// statement once per connection and reuses it from then on.
	stmts     sync.Map // query string → *sql.Stmt
	nstmts    atomic.Int32
	preparing sync.Map // query string → struct{}, prepares running in the background
	noprep    sync.Map // query string → struct{}, queries that failed to prepare: run unprepared
	closed    atomic.Bool
}

// maxStmts bounds the statement cache: queries built at run time (IN lists
// of varying length) stop being cached once it is full.
const maxStmts = 2048

// Querier runs statements; both *DB and *Tx implement it.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (*Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *Row
	Dialect() Dialect
}

var (
	_ Querier = (*DB)(nil)
	_ Querier = (*Tx)(nil)
)

// Open opens the database named by rawURL:
//
//	sqlite:///abs/path/rampart.db   (also sqlite:relative/path.db)
//	postgres://user:pass@host:5432/db?sslmode=disable
//
// It does not apply migrations; call Migrate.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//"))
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(ctx, rawURL)
	}
	return nil, apperr.E(apperr.Invalid, "store URL must start with sqlite: or postgres:// (got %q)", redactURL(rawURL))
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, apperr.E(apperr.Invalid, "sqlite store URL has no path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"foreign_keys(1)",
		"busy_timeout(10000)",
		"synchronous(NORMAL)",
	} {
		q.Add("_pragma", p)
	}
	// BEGIN IMMEDIATE: a write transaction takes the write lock up front, so
	// two writers queue on busy_timeout instead of failing on lock upgrade.
	q.Set("_txlock", "immediate")
	// A SQLite URI filename: '%', '?' and '#' in the path must be escaped
	// or SQLite cuts the name there.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(8)
	// Keep every open connection idle rather than closing all but two
	// (database/sql's default): a new SQLite connection re-runs the pragmas,
	// re-reads the schema and re-prepares its statements, which under
	// concurrent load cost more CPU than the queries themselves.
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &DB{sql: db, dialect: SQLite}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "invalid postgres URL")
	}
	db.SetMaxOpenConns(20)
	// Keep every open connection idle, as for SQLite: with fewer idle
	// than open, a burst of more than the idle limit closes connections
	// only to open new ones moments later, and each new connection costs
	// a SCRAM authentication (thousands of PBKDF2 rounds) on both sides;
	// under the vault's write load that was a quarter of Rampart's CPU.
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Replaced now and then, so that a failover, a pooler or a server's
	// idle_session_timeout does not leave the pool holding dead ones for
	// good.
	db.SetConnMaxLifetime(30 * time.Minute)
	s := &DB{sql: db, dialect: Postgres}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// redactURL hides a password in a database URL for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable>"
	}
	return u.Redacted()
}

// Dialect returns the database's SQL flavour.
func (db *DB) Dialect() Dialect { return db.dialect }

// Stats reports the connection pool's statistics.
func (db *DB) Stats() sql.DBStats { return db.sql.Stats() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "database unavailable")
	}
	return nil
}

// Close closes the database; with SQLite it checkpoints the WAL first so the
// data directory is left in one file.
func (db *DB) Close() error {
	db.closed.Store(true)
	db.stmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
	if db.dialect == SQLite {
		_, _ = db.sql.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return db.sql.Close()
}

func (db *DB) q(query string) string {
	if db.dialect != Postgres {
		return query
	}
	if v, ok := db.rebind.Load(query); ok {
		return v.(string)
	}
	r := rebindDollar(query)
	db.rebind.Store(query, r)
	return r
}

// stmt returns the cached prepared statement for query, preparing it on
// first use, or nil when the query is not cached (PostgreSQL, a full cache,
// a multi-statement script or a query that fails to prepare — running it
// unprepared then reports the error).
func (db *DB) stmt(ctx context.Context, query string) *sql.Stmt {
	if db.dialect != SQLite {
		return nil
	}
	if v, ok := db.stmts.Load(query); ok {
		return v.(*sql.Stmt)
	}
	if !db.cacheable(query) {
		return nil
	}
	st, err := db.sql.PrepareContext(ctx, query)
	if err != nil {
		// Remembered (within the same bound), so a query that cannot be
		// prepared on its own — one on a table its transaction created —
		// is not tried again on every run.
		if ctx.Err() == nil {
			db.noprep.Store(query, struct{}{})
			db.nstmts.Add(1)
		}
		return nil
	}
	if v, loaded := db.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt)
	}
	db.nstmts.Add(1)
	if db.closed.Load() { // Close ran meanwhile and may have missed it
		_ = st.Close()
		return nil
	}
	return st
}

// cacheable reports whether query may be prepared and cached.
func (db *DB) cacheable(query string) bool {
	if db.closed.Load() || db.nstmts.Load() >= maxStmts || strings.Contains(query, ";") {
		return false
	}
	_, failed := db.noprep.Load(query)
	return !failed
}

// txStmt returns the cached statement for query bound to tx, or nil. A
// transaction holds a connection, so preparing on the pool from inside it
// could wait for a connection forever when every connection is held by a
// transaction doing the same; a miss prepares in the background instead and
// this call runs unprepared.
func (tx *Tx) txStmt(ctx context.Context, query string) *sql.Stmt {
	db := tx.db
	if db.dialect != SQLite {
		return nil
	}
	if v, ok := db.stmts.Load(query); ok {
		return tx.tx.StmtContext(ctx, v.(*sql.Stmt))
	}
	if db.cacheable(query) {
		if _, busy := db.preparing.LoadOrStore(query, struct{}{}); !busy {
			go func() {
				defer db.preparing.Delete(query)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				db.stmt(ctx, query)
			}()
		}
	}
	return nil
}

// rebindDollar rewrites ? placeholders to $1, $2, … outside quoted strings,
// identifiers and comments.
func rebindDollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch c {
		case '\'', '"':
			j := i + 1
			for j < len(query) {
				if query[j] == c {
					if j+1 < len(query) && query[j+1] == c { // doubled quote escapes
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(query) {
				j = len(query) - 1
			}
			b.WriteString(query[i : j+1])
			i = j
		case '-':
			if i+1 < len(query) && query[i+1] == '-' {
				j := strings.IndexByte(query[i:], '\n')
				if j < 0 {
					j = len(query) - i - 1
				}
				b.WriteString(query[i : i+j+1])
				i += j
				continue
			}
			b.WriteByte(c)
		case '?':
			n++
			b.WriteByte('$')
			b.WriteString(fmt.Sprint(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Exec runs a statement and returns the number of rows it affected.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if st := db.stmt(ctx, query); st != nil {
		return execOn(ctx, stmtQuerier{st}, "", args)
	}
	return execOn(ctx, db.sql, db.q(query), args)
}

// Query runs a query returning rows.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	if st := db.stmt(ctx, query); st != nil {
		return queryOn(ctx, stmtQuerier{st}, "", args)
	}
	return queryOn(ctx, db.sql, db.q(query), args)
}

// QueryRow runs a query expected to return at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *Row {
	if st := db.stmt(ctx, query); st != nil {
		return &Row{row: st.QueryRowContext(ctx, args...)}
	}
	return &Row{row: db.sql.QueryRowContext(ctx, db.q(query), args...)}
}

// stmtQuerier runs a prepared statement through the sqlQuerier shape; the
// query text is ignored.
type stmtQuerier struct{ st *sql.Stmt }

func (s stmtQuerier) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.st.ExecContext(ctx, args...)
}

func (s stmtQuerier) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.st.QueryContext(ctx, args...)
}

type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func execOn(ctx context.Context, q sqlQuerier, query string, args []any) (int64, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, translate(err)
	}
	return n, nil
}

func queryOn(ctx context.Context, q sqlQuerier, query string, args []any) (*Rows, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	return &Rows{rows: rows}, nil
}

// Rows is the result of a query. Always Close it (or drain it with Next).
type Rows struct{ rows *sql.Rows }

// Next advances to the next row.
func (r *Rows) Next() bool { return r.rows.Next() }

// Scan copies the current row into dest.
func (r *Rows) Scan(dest ...any) error { return translate(r.rows.Scan(dest...)) }

// Err returns the error, if any, that ended iteration.
func (r *Rows) Err() error { return translate(r.rows.Err()) }

// Close releases the rows.
func (r *Rows) Close() error { return translate(r.rows.Close()) }

// Row is the result of QueryRow.
type Row struct{ row *sql.Row }

// Scan copies the row into dest; a missing row is apperr.NotFound.
func (r *Row) Scan(dest ...any) error { return translate(r.row.Scan(dest...)) }

// Tx is a transaction.
type Tx struct {
	tx *sql.Tx
	db *DB
}

// Dialect returns the database's SQL flavour.
func (tx *Tx) Dialect() Dialect { return tx.db.dialect }

// Exec runs a statement inside the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if st := tx.txStmt(ctx, query); st != nil {
		return execOn(ctx, stmtQuerier{st}, "", args)
	}
	return execOn(ctx, tx.tx, tx.db.q(query), args)
}

// Query runs a query inside the transaction.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	if st := tx.txStmt(ctx, query); st != nil {
		return queryOn(ctx, stmtQuerier{st}, "", args)
	}
	return queryOn(ctx, tx.tx, tx.db.q(query), args)
}

// QueryRow runs a single-row query inside the transaction.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *Row {
	if st := tx.txStmt(ctx, query); st != nil {
		return &Row{row: st.QueryRowContext(ctx, args...)}
	}
	return &Row{row: tx.tx.QueryRowContext(ctx, tx.db.q(query), args...)}
}

// Tx runs fn in a transaction, committing if fn returns nil and rolling back
// otherwise. Serialization failures and deadlocks (PostgreSQL) are retried a
// few times, so fn must be safe to run again.
func (db *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	const attempts = 5
	var err error
	for i := range attempts {
		err = db.tx1(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
	return err
}

func (db *DB) tx1(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	tx := &Tx{tx: stx, db: db}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = stx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return translate(stx.Commit())
}

type retryErr struct{ err error }

func (e *retryErr) Error() string { return e.err.Error() }
func (e *retryErr) Unwrap() error { return e.err }

func retryable(err error) bool {
	var r *retryErr
	return errors.As(err, &r)
}

// translate turns driver errors into apperr kinds.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.Wrap(err, apperr.NotFound, "not found")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return apperr.Wrap(err, apperr.Conflict, "already exists")
		case "23503": // foreign_key_violation
			return apperr.Wrap(err, apperr.Conflict, "referenced by or referring to a missing record")
		case "23514", "23502", "22001", "22P02": // check, not null, too long, bad text representation
			return apperr.Wrap(err, apperr.Invalid, "invalid value")
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return &retryErr{apperr.Wrap(err, apperr.Unavailable, "database busy, try again")}
		case "57P01", "57P02", "57P03", "08000", "08003", "08006":
			return apperr.Wrap(err, apperr.Unavailable, "database unavailable")
		}
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return apperr.Wrap(err, apperr.Conflict, "already exists")
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return apperr.Wrap(err, apperr.Conflict, "referenced by or referring to a missing record")
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			return apperr.Wrap(err, apperr.Invalid, "invalid value")
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY_SNAPSHOT:
			return &retryErr{apperr.Wrap(err, apperr.Unavailable, "database busy, try again")}
		}
		return err
	}
	return err
}

// Time converts t to its stored form: microseconds since the Unix epoch, or
// NULL for the zero time.
func Time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// TimeDest returns a scan destination that fills t from a stored time
// (NULL leaves the zero time).
func TimeDest(t *time.Time) interface{ Scan(any) error } { return timeDest{t} }

type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("store: cannot scan %T into time", src)
	}
	return nil
}
