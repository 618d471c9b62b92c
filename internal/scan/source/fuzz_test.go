package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func FuzzParseLog(f *testing.F) {
	oid := func(c string) string { return strings.Repeat(c, 40) }
	f.Add("\x01" + oid("a") + "\x001700000000\x00Alice\x00a@x\x00\n:000000 100644 " + oid("0") + " " + oid("b") + " A\x00f.txt\x00")
	f.Add("\x01" + oid("c") + "\x001\x00B\x00b@x\x00\x00::100644 100644 100644 " + oid("1") + " " + oid("2") + " " + oid("3") + " MM\x00m.go\x00")
	f.Add("\x01abc\x00x\x00")
	f.Add(":100644 100644 zz yy M\x00")
	f.Fuzz(func(t *testing.T, log string) {
		for _, baselines := range []bool{false, true} {
			seen := map[string]bool{}
			_, _ = parseLog(strings.NewReader(log), baselines, func(m blobMeta) bool {
				if !validOID(m.oid) {
					t.Fatalf("invalid object id %q handed over", m.oid)
				}
				if seen[m.oid] {
					t.Fatalf("object %s handed over twice", m.oid)
				}
				seen[m.oid] = true
				return true
			})
		}
	})
}

func FuzzReadBlob(f *testing.F) {
	oid := strings.Repeat("ab", 20)
	f.Add(oid, oid+" blob 5\nhello\n")
	f.Add(oid, oid+" missing\n")
	f.Add(oid, oid+" blob 99999999999\nx")
	f.Add(oid, oid+" blob -1\n")
	f.Fuzz(func(t *testing.T, oid, answer string) {
		data, size, err := readBlob(bufio.NewReader(strings.NewReader(answer)), oid, 1<<10)
		if err == nil && data != nil && int64(len(data)) != size {
			t.Fatalf("read %d bytes of a %d-byte blob", len(data), size)
		}
	})
}

func FuzzLayer(f *testing.F) {
	f.Add([]byte{})
	f.Add(tarBytes(map[string]string{"etc/a": "x", "etc/.wh.b": "", "var/.wh..wh..opq": "", "../../escape": "y"}))
	f.Fuzz(func(t *testing.T, layer []byte) {
		img, err := imageOfLayer(layer)
		if err != nil {
			return
		}
		src, err := FromImage(img, ImageOptions{MaxFileSize: 1 << 10, MaxFSSize: 1 << 12})
		if err != nil {
			return
		}
		_, _, _ = src.Walk(t.Context(), func(f File) error {
			if f.Path == "" || strings.HasPrefix(f.Path, "/") || strings.HasPrefix(f.Path, "../") {
				t.Fatalf("bad path %q", f.Path)
			}
			return nil
		})
		_, _, _ = src.FS(t.Context())
	})
}

func tarBytes(files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
	}
	tw.Close()
	return buf.Bytes()
}

func imageOfLayer(layer []byte) (v1.Image, error) {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(empty.Image, l)
}
