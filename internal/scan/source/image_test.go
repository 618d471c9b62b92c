package source_test

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rampartsec/rampart/internal/scan/source"
)

// tarEntry is one member of a test layer: a file, a directory (name
// ending in /), a symbolic link (link set) or a whiteout.
type tarEntry struct {
	name, content, link string
}

func layerOf(t *testing.T, entries ...tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.content)), Typeflag: tar.TypeReg}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage has three layers:
//
//	1: etc/app.conf v1, etc/old.conf, var/cache/x, usr/bin/tool (binary)
//	2: deletes etc/old.conf, makes var/cache opaque and adds var/cache/y,
//	   a link etc/current → app.conf
//	3: rewrites etc/app.conf (v2)
func testImage(t *testing.T) (v1.Image, []string) {
	t.Helper()
	layers := []v1.Layer{
		layerOf(t,
			tarEntry{name: "etc/"},
			tarEntry{name: "etc/app.conf", content: "token=v1\n"},
			tarEntry{name: "etc/old.conf", content: "token=old\n"},
			tarEntry{name: "./var/cache/x", content: "cached\n"},
			tarEntry{name: "usr/bin/tool", content: "\x7fELF\x00\x00\x01"},
		),
		layerOf(t,
			tarEntry{name: "etc/.wh.old.conf"},
			tarEntry{name: "var/cache/.wh..wh..opq"},
			tarEntry{name: "var/cache/y", content: "fresh\n"},
			tarEntry{name: "etc/current", link: "app.conf"},
		),
		layerOf(t, tarEntry{name: "etc/app.conf", content: "token=v2\n"}),
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	return img, digests
}

// imageFiles writes the image in the three formats Image reads.
func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	dir := t.TempDir()
	docker := filepath.Join(dir, "docker.tar")
	tag, err := name.NewTag("registry.example.test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(docker, tag, img); err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(dir, "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "oci.tar")
	tarDir(t, lay, archive)
	return map[string]string{"docker-save tarball": docker, "OCI layout": lay, "OCI archive": archive}
}

// tarDir writes the tree under dir into a tar file.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestImage_FlattensLayersInEveryFormat(t *testing.T) {
	img, digests := testImage(t)
	for format, path := range imageFiles(t, img) {
		t.Run(format, func(t *testing.T) {
			src, err := source.Image(path)
			if err != nil {
				t.Fatal(err)
			}
			type file struct{ Path, Content, Layer string }
			var got []file
			stats, notes, err := src.Walk(t.Context(), func(f source.File) error {
				got = append(got, file{f.Path, string(f.Data), f.Loc.Layer})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b file) int { return strings.Compare(a.Path, b.Path) })
			want := []file{
				{"etc/app.conf", "token=v2\n", digests[2]},
				{"var/cache/y", "fresh\n", digests[1]},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if stats.Files != 2 || stats.Skipped != 1 || len(notes) != 1 || notes[0].Message != "skipped 1 binary files" {
				t.Errorf("stats %+v, notes %v: want 2 files and the binary skipped", stats, notes)
			}

			fsys, _, err := src.FS(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(fsys, "etc/app.conf", "var/cache/y", "usr/bin/tool", "etc/current"); err != nil {
				t.Error(err)
			}
			for name, want := range map[string]string{"etc/app.conf": "token=v2\n", "var/cache/y": "fresh\n"} {
				if b, err := fs.ReadFile(fsys, name); err != nil || string(b) != want {
					t.Errorf("ReadFile(%s) = %q, %v", name, b, err)
				}
			}
			for _, gone := range []string{"etc/old.conf", "var/cache/x"} {
				if _, err := fs.Stat(fsys, gone); !os.IsNotExist(err) {
					t.Errorf("%s: Stat err = %v, want it gone", gone, err)
				}
			}
			if target, err := fsys.(fs.ReadLinkFS).ReadLink("etc/current"); err != nil || target != "app.conf" {
				t.Errorf("ReadLink = %q, %v", target, err)
			}
		})
	}
}

func TestImage_SizeLimits(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image, layerOf(t,
		tarEntry{name: "big.txt", content: strings.Repeat("b", 3000)},
		tarEntry{name: "small.txt", content: "s\n"},
	))
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.FromImage(img, source.ImageOptions{MaxFileSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	files, stats, notes := walkAll(t, src)
	if _, ok := files["small.txt"]; !ok || len(files) != 1 || stats.Skipped != 1 {
		t.Errorf("files %v, stats %+v: want only small.txt", files, stats)
	}
	if diff := cmp.Diff(map[string]string{"big.txt": "skipped: 2.9 KiB is over the 1.0 KiB size limit"}, noteMap(notes)); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	fsys, _, err := src.FS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFile(fsys, "big.txt"); err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Errorf("reading a file over the limit: err = %v", err)
	}
	if fi, err := fs.Stat(fsys, "big.txt"); err != nil || fi.Size() != 3000 {
		t.Errorf("Stat(big.txt) = %v, %v: want it listed with its size", fi, err)
	}

	src, err = source.FromImage(img, source.ImageOptions{MaxLayerSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	files, _, notes = walkAll(t, src)
	if len(files) != 0 || len(notes) != 1 || !strings.Contains(notes[0].Message, "layer size limit") {
		t.Errorf("files %v, notes %v: want the layer skipped with a note", files, notes)
	}
}

func TestImage_CorruptArchives(t *testing.T) {
	img, _ := testImage(t)
	paths := imageFiles(t, img)
	dir := t.TempDir()
	whole, err := os.ReadFile(paths["docker-save tarball"])
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A layer blob of the OCI layout with its bytes flipped.
	lay := t.TempDir()
	if err := os.CopyFS(lay, os.DirFS(paths["OCI layout"])); err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(lay, "blobs", "sha256", m.Layers[0].Digest.Hex)
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, bytes.Repeat([]byte{0xff}, int(m.Layers[0].Size)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, want string
	}{
		{"random bytes", write("noise.tar", bytes.Repeat([]byte("not a tar "), 100)), "corrupt archive"},
		{"truncated", write("cut.tar", whole[:len(whole)/2]), ""},
		{"tar without image", write("plain.tar", tarOf(t, "hello.txt", "hi")), "not an image archive"},
		{"missing", filepath.Join(dir, "nope.tar"), "no such file"},
		{"empty layout", t.TempDir(), "index.json"},
		{"corrupt layer", lay, "corrupt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, err := source.Image(tt.path)
			if err == nil {
				_, _, err = src.Walk(t.Context(), func(source.File) error { return nil })
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func tarOf(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	return buf.Bytes()
}
