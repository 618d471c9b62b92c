package keyring

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// FuzzRing_Unwrap: a wrapped data key read back from the database may be
// altered; Unwrap refuses anything but what Wrap made, with an error, and
// never panics or returns a key.
func FuzzRing_Unwrap(f *testing.F) {
	r, err := OpenFileRing(filepath.Join(f.TempDir(), "keys"))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	dek := bytes.Repeat([]byte{9}, 32)
	good, _, err := r.Wrap(ctx, dek, []byte("aad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("aad"))
	f.Add(good[:10], []byte("aad"))
	f.Add([]byte{wrapFormat, 0, 0, 0, 7}, []byte("aad"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, blob, aad []byte) {
		got, err := r.Unwrap(ctx, blob, aad)
		if err != nil {
			if got != nil {
				t.Fatal("a key came back with an error")
			}
			return
		}
		if !bytes.Equal(blob, good) || string(aad) != "aad" || !bytes.Equal(got, dek) {
			t.Fatalf("unwrapped %x from a blob Wrap did not make", got)
		}
	})
}
