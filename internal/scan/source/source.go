package source

import (
	"bytes"
	"context"
	"fmt"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// DefaultMaxFileSize is the size above which a file is skipped with a
// note, when Options do not say otherwise.
const DefaultMaxFileSize = 10 << 20

// File is one piece of content to scan.
type File struct {
	// Path is slash-separated and relative to the target's root.
	Path string
	// Data is the whole content. It belongs to the callee: a Source never
	// reuses it after handing it over.
	Data []byte
	// Loc carries what is known of the content's origin: the commit,
	// author and date that introduced it (git), or the layer that wrote
	// it (images). Its Path equals Path.
	Loc report.Location
	// Baseline marks content that is already known (the version of a
	// file just before the scanned range of history): scanners report
	// nothing in it, and drop the same secret under the same path in the
	// files that follow.
	Baseline bool
}

// Source produces the files of a scan target.
type Source interface {
	// Walk calls fn for every file to scan, from one goroutine, and
	// returns what it covered and what it skipped. An error from fn stops
	// the walk and is returned; so is the context's error. Problems with
	// single files (unreadable, too large, binary) are notes, not errors.
	Walk(ctx context.Context, fn func(File) error) (report.Stats, []report.Note, error)
}

// Options tune Dir.
type Options struct {
	// MaxFileSize skips larger files with a note; 0 means
	// DefaultMaxFileSize, a negative value no limit.
	MaxFileSize int64
	// Skip, when set, is asked about every file and directory (path
	// relative to the root, slash-separated); true leaves it out silently.
	Skip func(path string, dir bool) bool
}

func (o Options) maxSize() int64 {
	switch {
	case o.MaxFileSize == 0:
		return DefaultMaxFileSize
	case o.MaxFileSize < 0:
		return 1<<63 - 1
	}
	return o.MaxFileSize
}

// binarySniff is how much of a file's start is checked for NUL bytes.
const binarySniff = 8000

// IsBinary reports whether content looks binary: a NUL byte among its
// first 8000 bytes, as git decides.
func IsBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), binarySniff)], 0) >= 0
}

// sizeNote explains a file skipped for its size.
func sizeNote(path string, size, limit int64) report.Note {
	return report.Note{Path: path, Message: fmt.Sprintf("skipped: %s is over the %s size limit", humanSize(size), humanSize(limit))}
}

func binaryNote(path string) report.Note {
	return report.Note{Path: path, Message: "skipped: binary content"}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
