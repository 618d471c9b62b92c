package alerts

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSafeName checks that every name the tree writer accepts stays in
// the tree.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"a/b.txt", "../etc/passwd", "/abs", "a/../../b", ".git/config", "a/.GIT/x", "a\nb", "a\\b", "./a//b/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, ok := safeName(name)
		if !ok {
			return
		}
		if clean == "" || path.IsAbs(clean) || path.Clean(clean) != clean || clean == ".." || strings.HasPrefix(clean, "../") ||
			strings.ContainsAny(clean, "\\\x00\n\r") || !fs.ValidPath(clean) {
			t.Fatalf("safeName(%q) = %q", name, clean)
		}
	})
}

func tarOf(entries ...tar.Header) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, h := range entries {
		h := h
		body := strings.Repeat("x", int(h.Size))
		_ = w.WriteHeader(&h)
		_, _ = w.Write([]byte(body))
	}
	_ = w.Close()
	return b.Bytes()
}

// FuzzWriteTree feeds arbitrary bytes to the writer of git archive's
// output: no panic, nothing written outside the tree, limits kept.
func FuzzWriteTree(f *testing.F) {
	f.Add(tarOf(tar.Header{Name: "a/b.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}))
	f.Add(tarOf(tar.Header{Name: "../escape.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}))
	f.Add(tarOf(tar.Header{Name: "link", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink},
		tar.Header{Name: "link/x", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}))
	f.Add(tarOf(tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "d/f", Size: 2, Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "d/f", Size: 2, Typeflag: tar.TypeReg, Mode: 0o644}))
	f.Add([]byte("not a tar at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dest := filepath.Join(parent, "tree")
		if err := os.Mkdir(dest, 0o700); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		s := &Service{limits: Limits{MaxTreeBytes: 1 << 20, MaxFiles: 50, MaxFileSize: 64 << 10}.withDefaults()}
		_, _ = s.writeTree(root, tar.NewReader(bytes.NewReader(data)))
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 || entries[0].Name() != "tree" {
			t.Fatalf("something was written next to the tree: %v %v", entries, err)
		}
		files := 0
		err = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				t.Fatalf("a symbolic link was written: %s", p)
			}
			if d.Type().IsRegular() {
				files++
			}
			return nil
		})
		if err != nil || files > 50 {
			t.Fatalf("%d files written (%v)", files, err)
		}
	})
}
