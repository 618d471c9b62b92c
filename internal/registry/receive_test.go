package registry

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// failAfter returns its data and then err.
type failAfter struct {
	r   io.Reader
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// TestReceive checks that an upload's bytes reach the file and the hash
// whole, across buffer boundaries, and that a client going away leaves
// what did arrive (the upload resumes from there).
func TestReceive(t *testing.T) {
	data := make([]byte, 3*receiveBufSize+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	big := bytes.Repeat(data, writebackEvery/len(data)+2) // writeback starts on the way
	gone := errors.New("connection reset")
	cases := []struct {
		name    string
		body    io.Reader
		want    []byte
		wantErr error
	}{
		{"empty", bytes.NewReader(nil), nil, nil},
		{"smaller than a buffer", bytes.NewReader(data[:100]), data[:100], nil},
		{"exactly one buffer", bytes.NewReader(data[:receiveBufSize]), data[:receiveBufSize], nil},
		{"several buffers and a tail", bytes.NewReader(data), data, nil},
		{"past the writeback step", bytes.NewReader(big), big, nil},
		{"one byte at a time", io.LimitReader(&oneByte{data}, 1000), data[:1000], nil},
		{"client gone mid-buffer", &failAfter{bytes.NewReader(data[:receiveBufSize+500]), gone}, data[:receiveBufSize+500], gone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "upload")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Start with bytes already there, as a resumed upload has.
			prefix := []byte("earlier")
			if _, err := f.Write(prefix); err != nil {
				t.Fatal(err)
			}
			wb := startWriteback(p, int64(len(prefix)))
			defer wb.close()
			hs := sha256.New()
			n, err := receive(f, hs, tc.body, wb, int64(len(prefix)))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n != int64(len(tc.want)) {
				t.Fatalf("n = %d, want %d", n, len(tc.want))
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append(prefix, tc.want...)) {
				t.Fatalf("file holds %d bytes, not the %d sent after the prefix", len(got), len(tc.want))
			}
			if want := sha256.Sum256(tc.want); !bytes.Equal(hs.Sum(nil), want[:]) {
				t.Fatal("hash differs from the sha256 of the bytes received")
			}
		})
	}
}

// oneByte returns its data one byte per Read.
type oneByte struct{ b []byte }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}
