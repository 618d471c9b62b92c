package registry

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeback starts the disk writes of an upload's bytes while more are
// still arriving, so that the fsync that makes the upload durable (the
// driver's Commit) finds little left to write. It works on the filesystem
// driver's file through a descriptor of its own: sync_file_range applies
// to the file, whichever descriptor names it.
type writeback struct {
	f    *os.File
	done int64 // bytes already handed to the disk
}

// startWriteback opens the file at path for writeback from offset from;
// it returns nil when that is not possible (the caller then relies on the
// final fsync alone).
func startWriteback(path string, from int64) *writeback {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	return &writeback{f: f, done: from}
}

// wrote tells that the file now holds size bytes; once enough new bytes
// are there, their writeback starts (without waiting for it).
func (w *writeback) wrote(size int64) {
	if w == nil || size-w.done < writebackEvery {
		return
	}
	// Advisory: an error only means the final fsync does all the work.
	_ = unix.SyncFileRange(int(w.f.Fd()), w.done, size-w.done, unix.SYNC_FILE_RANGE_WRITE)
	w.done = size
}

func (w *writeback) close() {
	if w != nil {
		_ = w.f.Close()
	}
}
