package keyring

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// testArgon2 keeps derivations fast in tests; production uses DefaultArgon2.
var testArgon2 = Argon2Params{Time: 1, MemoryKiB: 1 << 10, Threads: 1}

func rings(t *testing.T) map[string]func(dir string) (*Ring, error) {
	return map[string]func(dir string) (*Ring, error){
		"file": OpenFileRing,
		"passphrase": func(dir string) (*Ring, error) {
			return OpenPassphraseRing(dir, []byte("correct horse battery staple"), testArgon2)
		},
	}
}

// TestRing_RotateKeepsEveryVersion wraps under each version in turn and
// reopens the keyring from disk: every wrapped key still unwraps, and new
// wraps use the newest version.
func TestRing_RotateKeepsEveryVersion(t *testing.T) {
	for name, open := range rings(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "keys")
			r, err := open(dir)
			if err != nil {
				t.Fatal(err)
			}
			type sealed struct {
				blob, aad, dek []byte
				version        int
			}
			var all []sealed
			for want := 1; want <= 3; want++ {
				dek := bytes.Repeat([]byte{byte(want)}, 32)
				aad := []byte("secret:7:version:" + string(rune('0'+want)))
				blob, v, err := r.Wrap(ctx, dek, aad)
				if err != nil {
					t.Fatal(err)
				}
				if v != want {
					t.Fatalf("wrapped under version %d, want %d", v, want)
				}
				if got, _ := WrappedVersion(blob); got != want {
					t.Fatalf("blob names version %d, want %d", got, want)
				}
				all = append(all, sealed{blob, aad, dek, v})
				if want < 3 {
					if nv, err := r.Rotate(ctx); err != nil || nv != want+1 {
						t.Fatalf("Rotate = %d, %v", nv, err)
					}
				}
			}
			again, err := open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if cur, _ := again.Current(ctx); cur != 3 {
				t.Fatalf("reopened keyring's current version = %d, want 3", cur)
			}
			for _, s := range all {
				got, err := again.Unwrap(ctx, s.blob, s.aad)
				if err != nil || !bytes.Equal(got, s.dek) {
					t.Fatalf("unwrap version %d after reopening = %x, %v", s.version, got, err)
				}
			}
			// The primary (identity's) key is version 1 and stays put.
			ct, err := r.Primary().Seal([]byte("seed"), "totp:user:1")
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := again.Primary().Open(ct, "totp:user:1"); err != nil || string(pt) != "seed" {
				t.Fatalf("primary key changed across rotation: %q, %v", pt, err)
			}
		})
	}
}

// TestRing_Unwrap_Refuses covers every way a wrapped key must fail to
// open: another context, a flipped bit, truncation, an unknown version.
func TestRing_Unwrap_Refuses(t *testing.T) {
	ctx := context.Background()
	r, err := OpenFileRing(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob, _, err := r.Wrap(ctx, make([]byte, 32), []byte("secret:1:version:1"))
	if err != nil {
		t.Fatal(err)
	}
	flip := bytes.Clone(blob)
	flip[len(flip)-3] ^= 0x40
	future := bytes.Clone(blob)
	future[4] = 9
	tests := []struct {
		name string
		blob []byte
		aad  string
		want string
	}{
		{"moved to another secret", blob, "secret:2:version:1", "does not unwrap"},
		{"moved to another version", blob, "secret:1:version:2", "does not unwrap"},
		{"bit flipped", flip, "secret:1:version:1", "does not unwrap"},
		{"truncated", blob[:20], "secret:1:version:1", "malformed"},
		{"empty", nil, "secret:1:version:1", "malformed"},
		{"version not held", future, "secret:1:version:1", "version 9 is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Unwrap(ctx, tt.blob, []byte(tt.aad))
			if err == nil {
				t.Fatalf("unwrapped to %x", got)
			}
			if !strings.Contains(apperr.Message(err)+err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestPassphraseRing_WrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenPassphraseRing(dir, []byte("correct horse battery staple"), testArgon2); err != nil {
		t.Fatal(err)
	}
	_, err := OpenPassphraseRing(dir, []byte("incorrect horse battery staple"), testArgon2)
	if !apperr.Is(err, apperr.Unauthenticated) || !strings.Contains(err.Error(), "passphrase does not open") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := OpenPassphraseRing(t.TempDir(), []byte("short"), testArgon2); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("short passphrase: %v", err)
	}
	// The salts file holds no key material that opens anything by itself.
	b, err := os.ReadFile(filepath.Join(dir, passphraseFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, passphraseFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("passphrase.json mode = %v", fi.Mode().Perm())
	}
	if !strings.Contains(string(b), `"kdf": "argon2id"`) {
		t.Errorf("passphrase.json = %s", b)
	}
}

// TestRing_ModesDoNotMix: a data directory keeps the kind of keyring it
// was created with.
func TestRing_ModesDoNotMix(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFileRing(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPassphraseRing(dir, []byte("correct horse battery staple"), testArgon2); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("passphrase over a key file: %v", err)
	}
	dir2 := t.TempDir()
	if _, err := OpenPassphraseRing(dir2, []byte("correct horse battery staple"), testArgon2); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileRing(dir2); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("key file over a passphrase keyring: %v", err)
	}
}

func TestFileRing_BadKeyFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"short key file", func(dir string) { os.WriteFile(filepath.Join(dir, "kek-2.key"), []byte("short"), 0o600) }, "has 5 bytes"},
		{"open permissions", func(dir string) { os.WriteFile(filepath.Join(dir, "kek-2.key"), make([]byte, 32), 0o644) }, "readable by other users"},
		{"version 1 as a kek file", func(dir string) { os.WriteFile(filepath.Join(dir, "kek-1.key"), make([]byte, 32), 0o600) }, "versions start at 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := OpenFileRing(dir); err != nil {
				t.Fatal(err)
			}
			tt.setup(dir)
			if _, err := OpenFileRing(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenFileRing = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestFileRing_MissingVersion: a key file deleted behind Rampart's back
// makes what it wrapped fail with a clear error, never a fallback.
func TestFileRing_MissingVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := OpenFileRing(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	blob, v, err := r.Wrap(ctx, make([]byte, 32), []byte("a"))
	if err != nil || v != 2 {
		t.Fatal(v, err)
	}
	if err := os.Remove(filepath.Join(dir, "kek-2.key")); err != nil {
		t.Fatal(err)
	}
	again, err := OpenFileRing(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Unwrap(ctx, blob, []byte("a")); err == nil || !strings.Contains(err.Error(), "version 2 is missing") {
		t.Fatalf("Unwrap without the key file = %v", err)
	}
}

// TestRing_FollowsRotationOnAnotherReplica: two rings on one key
// directory (two replicas). After A rotates, B unwraps a data key A
// wrapped under the new version, and wraps new ones under it too; the
// error for a version that really is missing names no path.
func TestRing_FollowsRotationOnAnotherReplica(t *testing.T) {
	ctx := context.Background()
	open := map[string]func(dir string) (*Ring, error){
		"file": OpenFileRing,
		"passphrase": func(dir string) (*Ring, error) {
			return OpenPassphraseRing(dir, []byte("correct horse battery staple"), Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1})
		},
	}
	for name, openRing := range open {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, err := openRing(dir)
			if err != nil {
				t.Fatal(err)
			}
			b, err := openRing(dir)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := a.Rotate(ctx); err != nil || v != 2 {
				t.Fatalf("rotate: %d %v", v, err)
			}
			dek := bytes.Repeat([]byte{7}, 32)
			wrapped, v, err := a.Wrap(ctx, dek, []byte("aad"))
			if err != nil || v != 2 {
				t.Fatalf("A wraps under %d: %v", v, err)
			}
			got, err := b.Unwrap(ctx, wrapped, []byte("aad"))
			if err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("B unwraps A's version 2: %v", err)
			}
			if cur, _ := b.Current(ctx); cur != 2 {
				t.Errorf("B's current version is %d, want 2", cur)
			}
			if _, v, _ := b.Wrap(ctx, dek, nil); v != 2 {
				t.Errorf("B wraps under version %d, want 2", v)
			}
			missing := append([]byte{wrapped[0], 0, 0, 0, 9}, wrapped[5:]...)
			_, err = b.Unwrap(ctx, missing, []byte("aad"))
			if err == nil || strings.Contains(err.Error(), dir) {
				t.Errorf("a missing version 9: %v (want an error without the key directory)", err)
			}
		})
	}
}

// TestRing_RemovesStaleTemporaryFiles: a crash while a key file was being
// written leaves a temporary file that may hold key material; the next
// open removes it, and leaves a fresh one (a write in progress on another
// replica) and everything else alone.
func TestRing_RemovesStaleTemporaryFiles(t *testing.T) {
	for name, open := range rings(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			stale, fresh, other := filepath.Join(dir, ".tmp-123"), filepath.Join(dir, ".tmp-456"), filepath.Join(dir, "notes.tmp")
			for _, p := range []string{stale, fresh, other} {
				if err := os.WriteFile(p, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			old := time.Now().Add(-2 * time.Minute)
			if err := os.Chtimes(stale, old, old); err != nil {
				t.Fatal(err)
			}
			r, err = open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(stale); !os.IsNotExist(err) {
				t.Errorf("a temporary file left two minutes ago is still there: %v", err)
			}
			for _, p := range []string{fresh, other} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s was removed: %v", filepath.Base(p), err)
				}
			}
			if v, err := r.Current(context.Background()); err != nil || v != 2 {
				t.Errorf("current version %d (%v) after reopening, want 2", v, err)
			}
		})
	}
}
