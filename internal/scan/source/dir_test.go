package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/source"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// walkAll collects what a source produces.
func walkAll(t *testing.T, src source.Source) (map[string]source.File, report.Stats, []report.Note) {
	t.Helper()
	files := map[string]source.File{}
	stats, notes, err := src.Walk(t.Context(), func(f source.File) error {
		if _, dup := files[f.Path]; dup && !f.Baseline {
			t.Errorf("%s produced twice", f.Path)
		}
		if !f.Baseline {
			files[f.Path] = f
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return files, stats, notes
}

func noteMap(notes []report.Note) map[string]string {
	m := map[string]string{}
	for _, n := range notes {
		m[n.Path] = n.Message
	}
	return m
}

func TestDir_SkipsWhatItCannotScanAndSaysWhy(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.txt"), "outside the root\n")
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "app/config.env"), "TOKEN=abc\n")
	writeFile(t, filepath.Join(root, "README.md"), "# app\n")
	writeFile(t, filepath.Join(root, ".git/config"), "[core]\n")
	writeFile(t, filepath.Join(root, "vendor/lib.go"), "package lib\n")
	writeFile(t, filepath.Join(root, "logo.png"), "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	writeFile(t, filepath.Join(root, "big.log"), strings.Repeat("x", 2048))
	writeFile(t, filepath.Join(root, "vanishing.txt"), "here when listed\n")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README.md", filepath.Join(root, "inside-link.md")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := os.Geteuid() != 0 // root reads anything
	if unreadable {
		writeFile(t, filepath.Join(root, "locked.txt"), "no access\n")
		if err := os.Chmod(filepath.Join(root, "locked.txt"), 0); err != nil {
			t.Fatal(err)
		}
	}

	src := source.Dir(root, source.Options{
		MaxFileSize: 1024,
		Skip: func(p string, dir bool) bool {
			if p == "vanishing.txt" { // removed between listing and reading
				os.Remove(filepath.Join(root, p))
			}
			return p == "vendor" && dir
		},
	})
	files, stats, notes := walkAll(t, src)

	var paths []string
	for p, f := range files {
		paths = append(paths, p)
		if f.Loc.Path != p {
			t.Errorf("%s: Loc.Path = %q", p, f.Loc.Path)
		}
	}
	slices.Sort(paths)
	if diff := cmp.Diff([]string{"README.md", "app/config.env"}, paths); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if got := string(files["app/config.env"].Data); got != "TOKEN=abc\n" {
		t.Errorf("content = %q", got)
	}
	want := map[string]string{
		"logo.png":      "skipped: binary content",
		"big.log":       "skipped: 2.0 KiB is over the 1.0 KiB size limit",
		"vanishing.txt": "skipped: open: no such file or directory",
	}
	if unreadable {
		want["locked.txt"] = "skipped: open: permission denied"
	}
	if diff := cmp.Diff(want, noteMap(notes)); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	wantStats := report.Stats{Files: 2, Bytes: int64(len("TOKEN=abc\n") + len("# app\n")), Skipped: int64(len(want))}
	if diff := cmp.Diff(wantStats, stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestDir_Errors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, "x")
	for _, tt := range []struct {
		name, root, want string
	}{
		{"missing root", filepath.Join(t.TempDir(), "nope"), "no such file or directory"},
		{"root is a file", file, "is not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := source.Dir(tt.root, source.Options{}).Walk(t.Context(), func(source.File) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDir_StopsOnCallbackErrorAndCancel(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(root, n), n)
	}
	stop := errors.New("stop")
	calls := 0
	_, _, err := source.Dir(root, source.Options{}).Walk(t.Context(), func(source.File) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err = %v after %d calls, want stop after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := source.Dir(root, source.Options{}).Walk(ctx, func(source.File) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled walk: err = %v", err)
	}
}
