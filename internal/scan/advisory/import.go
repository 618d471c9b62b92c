package advisory

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/store"
)

// ImportResult says what an Import or Update changed.
type ImportResult struct {
	// Files counts the advisory files read.
	Files int `json:"files"`
	// Added, Updated and Unchanged count advisories new to the database,
	// replaced by a newer version, and already present (same or older).
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Ecosystems lists the base ecosystems the imported advisories affect.
	Ecosystems []string `json:"ecosystems,omitempty"`
	// Notes name the files that could not be imported and why.
	Notes []report.Note `json:"notes,omitempty"`
}

func (r *ImportResult) add(o *ImportResult) {
	r.Files += o.Files
	r.Added += o.Added
	r.Updated += o.Updated
	r.Unchanged += o.Unchanged
	r.Notes = append(r.Notes, o.Notes...)
	seen := map[string]bool{}
	for _, e := range r.Ecosystems {
		seen[e] = true
	}
	for _, e := range o.Ecosystems {
		if !seen[e] {
			seen[e] = true
			r.Ecosystems = append(r.Ecosystems, e)
		}
	}
	sort.Strings(r.Ecosystems)
}

// Import loads OSV advisories from path: a directory (searched recursively
// for *.json files), a zip archive such as OSV's all.zip, or one JSON file.
// A file that cannot be read or is not a valid OSV record becomes a Note
// and the others are imported; a corrupt archive is an error. An advisory
// already in the database is replaced only by a version with a newer
// "modified" time (or, at the same time, different content), so importing
// the same data twice changes nothing.
func (db *DB) Import(ctx context.Context, path string) (*ImportResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, apperr.Wrap(err, apperr.NotFound, fmt.Sprintf("%s does not exist", path))
		}
		return nil, apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("cannot read %s", path))
	}
	if st.IsDir() {
		return db.importFrom(ctx, dirSource(path), path, false)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("cannot read %s", path))
	}
	defer f.Close()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if strings.EqualFold(filepath.Ext(path), ".zip") || bytes.Equal(magic[:n], []byte("PK\x03\x04")) {
		src, err := zipSource(f, st.Size())
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("%s is not a valid zip archive", path))
		}
		return db.importFrom(ctx, src, path, false)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return db.importFrom(ctx, fileSource(path), path, false)
	}
	return nil, apperr.E(apperr.Invalid, "%s is neither a directory, a zip archive nor a JSON file", path)
}

// source calls fn for every advisory file it holds; read returns the
// file's content. An error from fn stops the walk.
type source func(fn func(name string, read func() ([]byte, error)) error) error

func readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("file is over the %d byte limit", maxRecordSize)
	}
	return b, nil
}

func dirSource(root string) source {
	return func(fn func(string, func() ([]byte, error)) error) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if err != nil {
				if p == root {
					return err
				}
				return fn(rel, func() ([]byte, error) { return nil, err })
			}
			if d.IsDir() {
				if p != root && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.EqualFold(filepath.Ext(p), ".json") || !d.Type().IsRegular() {
				return nil
			}
			return fn(rel, func() ([]byte, error) {
				f, err := os.Open(p)
				if err != nil {
					return nil, err
				}
				defer f.Close()
				return readCapped(f)
			})
		})
	}
}

func fileSource(path string) source {
	return func(fn func(string, func() ([]byte, error)) error) error {
		return fn(filepath.Base(path), func() ([]byte, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readCapped(f)
		})
	}
}

func zipSource(r io.ReaderAt, size int64) (source, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	return func(fn func(string, func() ([]byte, error)) error) error {
		for _, zf := range zr.File {
			if zf.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(zf.Name), ".json") {
				continue
			}
			err := fn(zf.Name, func() ([]byte, error) {
				if zf.UncompressedSize64 > maxRecordSize {
					return nil, fmt.Errorf("file is over the %d byte limit", maxRecordSize)
				}
				rc, err := zf.Open()
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				return readCapped(rc)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}, nil
}

type known struct {
	modified int64
	digest   string
}

type parsed struct {
	name string
	rec  *record
	err  error
}

// importFrom reads every file of src (in parallel), keeps the records that
// are new or newer than what the database holds, and writes them in
// batches. origin is recorded as the source of the ecosystems seen;
// update says whether this was a download (Update) or an Import.
func (db *DB) importFrom(ctx context.Context, src source, origin string, update bool) (*ImportResult, error) {
	have, err := db.knownAdvisories(ctx)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	ecos := map[string]bool{}

	type job struct {
		name string
		read func() ([]byte, error)
	}
	jobs := make(chan job, 64)
	out := make(chan parsed, 64)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var walkErr error
	go func() {
		defer close(jobs)
		walkErr = src(func(name string, read func() ([]byte, error)) error {
			select {
			case jobs <- job{name, read}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				b, err := j.read()
				var p parsed
				p.name = j.name
				if err != nil {
					p.err = err
				} else {
					p.rec, p.err = parseRecord(b)
				}
				select {
				case out <- p:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()

	var batch []*record
	inBatch := map[string]int{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := db.write(ctx, batch); err != nil {
			return err
		}
		batch, inBatch = batch[:0], map[string]int{}
		return nil
	}
	var failed error
	fresh := map[string]bool{}
	for p := range out {
		if failed != nil {
			continue // drain
		}
		res.Files++
		if p.err != nil {
			res.Notes = append(res.Notes, report.Note{Path: p.name, Message: p.err.Error()})
			continue
		}
		r := p.rec
		for _, a := range r.Affected {
			ecos[a.Ecosystem] = true
		}
		mod := micros(r.Modified)
		k, ok := have[r.ID]
		if ok && (mod < k.modified || (mod == k.modified && r.Digest == k.digest)) {
			res.Unchanged++
			continue
		}
		switch {
		case !ok:
			res.Added++
		case fresh[r.ID]:
			// a newer copy of a record read earlier in this import
		default:
			res.Updated++
		}
		fresh[r.ID] = true
		have[r.ID] = known{mod, r.Digest}
		if i, ok := inBatch[r.ID]; ok {
			batch[i] = r
			continue
		}
		inBatch[r.ID] = len(batch)
		batch = append(batch, r)
		if len(batch) >= 500 {
			if err := flush(); err != nil {
				failed = err
				cancel()
			}
		}
	}
	if failed != nil {
		return nil, failed
	}
	if walkErr != nil {
		return nil, apperr.Wrap(walkErr, apperr.Invalid, fmt.Sprintf("cannot read %s", origin))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for e := range ecos {
		res.Ecosystems = append(res.Ecosystems, e)
	}
	sort.Strings(res.Ecosystems)
	sort.Slice(res.Notes, func(i, j int) bool { return res.Notes[i].Path < res.Notes[j].Path })
	if err := db.recordSource(ctx, res.Ecosystems, origin, update); err != nil {
		return nil, err
	}
	return res, nil
}

// knownAdvisories returns the modified time and digest of every stored
// advisory.
func (db *DB) knownAdvisories(ctx context.Context) (map[string]known, error) {
	rows, err := db.st.Query(ctx, "SELECT id, modified, digest FROM advisory")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]known{}
	for rows.Next() {
		var id string
		var k known
		if err := rows.Scan(&id, &k.modified, &k.digest); err != nil {
			return nil, err
		}
		have[id] = k
	}
	return have, rows.Err()
}

// write stores a batch of records in one transaction, replacing the
// affected rows of advisories that already existed.
func (db *DB) write(ctx context.Context, batch []*record) error {
	return db.st.Tx(ctx, func(tx *store.Tx) error {
		const advCols = 9
		for chunk := range chunks(batch, 100) {
			ids := make([]any, len(chunk))
			for i, r := range chunk {
				ids[i] = r.ID
			}
			if _, err := tx.Exec(ctx, "DELETE FROM advisory_affected WHERE advisory_id IN ("+placeholders(len(ids), 1)+")", ids...); err != nil {
				return err
			}
			args := make([]any, 0, len(chunk)*advCols)
			for _, r := range chunk {
				aliases, _ := json.Marshal(nonNil(r.Aliases))
				refs, _ := json.Marshal(nonNil(r.Refs))
				args = append(args, r.ID, micros(r.Modified), micros(r.Published), micros(r.Withdrawn),
					r.Digest, r.Summary, r.Details, string(aliases), string(refs))
			}
			q := "INSERT INTO advisory (id, modified, published, withdrawn, digest, summary, details, aliases, refs) VALUES " +
				placeholders(len(chunk), advCols) +
				" ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, published = excluded.published," +
				" withdrawn = excluded.withdrawn, digest = excluded.digest, summary = excluded.summary," +
				" details = excluded.details, aliases = excluded.aliases, refs = excluded.refs"
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
		}
		var rows []any
		n := 0
		const affCols = 8
		insert := func() error {
			if n == 0 {
				return nil
			}
			q := "INSERT INTO advisory_affected (advisory_id, ecosystem, release, name, affected, severity, cvss_vector, cvss_score) VALUES " +
				placeholders(n, affCols)
			_, err := tx.Exec(ctx, q, rows...)
			rows, n = rows[:0], 0
			return err
		}
		for _, r := range batch {
			for _, a := range r.Affected {
				spec, _ := json.Marshal(a.Spec)
				rows = append(rows, r.ID, a.Ecosystem, a.Release, a.Name, string(spec), int(a.Severity.Level), a.Severity.Vector, a.Severity.Score)
				n++
				if n == 100 {
					if err := insert(); err != nil {
						return err
					}
				}
			}
		}
		return insert()
	})
}

// recordSource notes where the given ecosystems' advisories came from.
func (db *DB) recordSource(ctx context.Context, ecosystems []string, origin string, update bool) error {
	if len(ecosystems) == 0 {
		return nil
	}
	now := db.now().UnixMicro()
	return db.st.Tx(ctx, func(tx *store.Tx) error {
		for _, e := range ecosystems {
			updated := int64(0)
			set := "source = excluded.source, imported_at = excluded.imported_at"
			if update {
				updated = now
				set += ", updated_at = excluded.updated_at"
			}
			if _, err := tx.Exec(ctx, "INSERT INTO advisory_source (ecosystem, source, imported_at, updated_at) VALUES (?, ?, ?, ?)"+
				" ON CONFLICT (ecosystem) DO UPDATE SET "+set, e, cleanText(origin), now, updated); err != nil {
				return err
			}
		}
		return nil
	})
}

// placeholders returns n groups of cols "?" placeholders: (?, ?), (?, ?).
// With cols == 1 it returns a plain list for IN (…).
func placeholders(n, cols int) string {
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	if cols == 1 {
		group = "?"
	}
	return strings.TrimSuffix(strings.Repeat(group+", ", n), ", ")
}

func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for i := 0; i < len(s); i += n {
			if !yield(s[i:min(i+n, len(s))]) {
				return
			}
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
