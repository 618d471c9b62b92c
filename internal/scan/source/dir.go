package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// DirSource walks a directory tree.
type DirSource struct {
	root string
	opts Options
}

var _ Source = (*DirSource)(nil)

// Dir returns a Source over the regular files under root. It skips .git
// directories, never follows symbolic links (a link's target is scanned
// only where it lies inside root, under its own path), and skips files
// over the size limit, binary files and unreadable ones with a note each.
func Dir(root string, opts Options) *DirSource {
	return &DirSource{root: root, opts: opts}
}

// Walk implements Source.
func (d *DirSource) Walk(ctx context.Context, fn func(File) error) (report.Stats, []report.Note, error) {
	var (
		stats report.Stats
		notes []report.Note
	)
	root, err := filepath.EvalSymlinks(d.root)
	if err != nil {
		return stats, nil, fmt.Errorf("scan directory: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return stats, nil, fmt.Errorf("scan directory: %w", err)
	}
	if !fi.IsDir() {
		return stats, nil, fmt.Errorf("scan directory: %s is not a directory", d.root)
	}
	limit := d.opts.maxSize()
	err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if err != nil {
			notes = append(notes, report.Note{Path: rel, Message: "skipped: " + describe(err)})
			stats.Skipped++
			if de != nil && de.IsDir() && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if de.IsDir() {
			if p == root {
				return nil
			}
			if de.Name() == ".git" || (d.opts.Skip != nil && d.opts.Skip(rel, true)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() {
			return nil // symbolic links, devices, sockets, pipes
		}
		if d.opts.Skip != nil && d.opts.Skip(rel, false) {
			return nil
		}
		data, note := readFile(p, rel, limit)
		if note != nil {
			notes = append(notes, *note)
			stats.Skipped++
			return nil
		}
		if IsBinary(data) {
			notes = append(notes, binaryNote(rel))
			stats.Skipped++
			return nil
		}
		stats.Files++
		stats.Bytes += int64(len(data))
		return fn(File{Path: rel, Data: data, Loc: report.Location{Path: rel}})
	})
	return stats, notes, err
}

// readFile reads a regular file up to limit bytes; a problem is a note.
func readFile(p, rel string, limit int64) ([]byte, *report.Note) {
	f, err := os.Open(p)
	if err != nil {
		return nil, &report.Note{Path: rel, Message: "skipped: " + describe(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &report.Note{Path: rel, Message: "skipped: " + describe(err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &report.Note{Path: rel, Message: "skipped: not a regular file"}
	}
	if fi.Size() > limit {
		n := sizeNote(rel, fi.Size(), limit)
		return nil, &n
	}
	// The file may grow between Stat and Read: never read past the limit.
	data := make([]byte, 0, fi.Size()+1)
	data, err = readAll(io.LimitReader(f, limit+1), data)
	if err != nil {
		return nil, &report.Note{Path: rel, Message: "skipped: " + describe(err)}
	}
	if int64(len(data)) > limit {
		n := sizeNote(rel, int64(len(data)), limit)
		return nil, &n
	}
	return data, nil
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// describe gives an error without the absolute path that os errors carry
// (the note already names the file, relative to the root).
func describe(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
