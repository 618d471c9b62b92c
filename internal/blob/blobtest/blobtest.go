// Package blobtest is the contract suite every blob.Store implementation
// passes.
package blobtest

import (
	"io"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/blob"
)

// Run checks s against the blob.Store contract.
func Run(t *testing.T, s blob.Store) {
	ctx := t.Context()
	t.Run("write then read from offsets", func(t *testing.T) {
		w, err := s.Create(ctx, "logs/run-1/job-1.log")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "hello ")
		// Readable while still open (live logs).
		if n, err := s.Size(ctx, "logs/run-1/job-1.log"); err != nil || n != 6 {
			t.Errorf("Size while open = %d, %v; want 6", n, err)
		}
		io.WriteString(w, "world")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := s.Open(ctx, "logs/run-1/job-1.log", 6)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != "world" {
			t.Errorf("read from offset 6 = %q", b)
		}
	})
	t.Run("missing is not found", func(t *testing.T) {
		_, err := s.Open(ctx, "nope", 0)
		if apperr.KindOf(err) != apperr.NotFound {
			t.Errorf("Open(missing) = %v", err)
		}
	})
	t.Run("bad keys refused", func(t *testing.T) {
		for _, k := range []string{"", "../x", "a/../../b", "/abs", "a//b", "a/.hidden"} {
			if _, err := s.Create(ctx, k); err == nil || apperr.KindOf(err) != apperr.Invalid {
				t.Errorf("Create(%q) = %v; want invalid", k, err)
			}
		}
	})
	t.Run("delete by prefix", func(t *testing.T) {
		for _, k := range []string{"d/run-2/a", "d/run-2/b", "d/run-3/a"} {
			w, err := s.Create(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
		if err := s.Delete(ctx, "d/run-2/"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Size(ctx, "d/run-2/a"); apperr.KindOf(err) != apperr.NotFound {
			t.Errorf("d/run-2/a after delete: %v", err)
		}
		if _, err := s.Size(ctx, "d/run-3/a"); err != nil {
			t.Errorf("d/run-3/a deleted too: %v", err)
		}
	})
}
