// Package advisory is Rampart's local OSV advisory database: it imports
// OSV records (a directory, a zip archive such as OSV's per-ecosystem
// all.zip, or a download of those archives), reports what it holds, and
// matches package inventories against it.
//
// # Storage
//
// Advisories live in a store database (internal/store): a SQLite file at a
// path the caller gives (the server keeps one in its data directory, a
// standalone `rampart scan` under the user's cache directory, see
// DefaultPath), or a PostgreSQL schema. Each advisory is one row; each
// package it affects is one row of advisory_affected, indexed by
// (ecosystem, normalised name) and holding that package's ranges and
// versions as compact JSON plus its precomputed severity. Matching a scan
// therefore reads only the rows of the packages scanned — a few index
// look-ups — instead of parsing a whole archive of JSON as osv-scanner's
// offline mode does on every run. SQLite was chosen over a purpose-built
// file because it gives indexed look-ups, atomic imports and concurrent
// readers for free, and the same SQL serves PostgreSQL when the platform
// scales out.
//
// # Import
//
// Records are parsed with encoding/json into the fields Rampart uses; a
// record that does not parse is a Note naming its file, never a failed
// import. A stored advisory is replaced only by a record with a newer
// "modified" time (or the same time and different content), so importing
// the same data twice changes nothing. Severity is computed at import: the
// base score of the newest CVSS vector present (v4, v3.1, v3.0, v2; scored
// by github.com/pandatix/go-cvss), else the textual rating of
// database_specific or ecosystem_specific ("severity", Debian's
// "urgency") or an Ubuntu severity entry.
//
// # Matching
//
// Match follows the OSV evaluation rules (see affects): SEMVER ranges
// compare as Semantic Versioning, ECOSYSTEM ranges with each ecosystem's
// ordering from osv-scalibr's semantic package (Go, npm, PyPI, Maven,
// crates.io, RubyGems, Packagist, NuGet, Debian, Alpine, Red Hat and the
// rest it knows); explicit versions lists; introduced, fixed,
// last_affected and limit events. Withdrawn advisories never match. GIT
// ranges and Go's symbol-level data (ecosystem_specific.imports) are
// ignored: Go advisories match at module level, as osv-scanner does
// without call analysis.
//
// Advisories about the same package that share an id or alias (a GHSA and
// a GO- advisory naming the same CVE) become one finding. Its id is the
// ecosystem's own database id when there is one (GO-, PYSEC-, RUSTSEC-,
// DSA-/DLA-, ALPINE-, RHSA-, …), else GHSA-, else any other database id,
// else a CVE (ties: the smaller id); the others go into Aliases. The
// finding takes the worst severity of the group and, as its fixed version,
// the lowest version above the installed one that fixes every merged
// advisory. Fingerprints hash (advisory id, ecosystem, package, version,
// path).
package advisory
