// Package store is the platform's own state: a thin layer over database/sql
// with two dialects, SQLite (modernc.org/sqlite, pure Go, the embedded
// default) and PostgreSQL (pgx, for scale-out).
//
// Components write portable SQL with '?' placeholders; the PostgreSQL dialect
// rewrites them to $n. Both dialects support RETURNING and ON CONFLICT, so one
// query serves both. Times are stored as BIGINT microseconds since the Unix
// epoch (see Time and TimeDest) so that comparisons and ordering behave the
// same on both engines.
//
// Each component embeds its own versioned migrations (NNNN_name.sql) and
// hands them to Migrate at start. Migration files are text/templates with a
// few dialect helpers: {{autoid}} for an auto-increment primary key and
// {{blob}} for binary columns.
//
// Driver errors never leave this package: a missing row becomes
// apperr.NotFound, a unique or foreign-key violation apperr.Conflict, a busy
// database apperr.Unavailable. The contract suite in storetest runs against
// both dialects.
package store
