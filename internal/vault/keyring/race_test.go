package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
)

// TestRing_ConcurrentRotation: two replicas share one key directory and
// rotate the key-encryption key at the same moment, many times over. Both
// rotations succeed with different versions (the one that loses the race
// for version N loads the winner's N and makes N+1), each wraps a data
// key under the version it made, and afterwards every data key unwraps —
// on both replicas and on a keyring opened afresh from the directory, so
// no version was lost, overwritten or left half-written.
func TestRing_ConcurrentRotation(t *testing.T) {
	const rounds = 40
	for name, open := range rings(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "keys")
			a, err := open(dir)
			if err != nil {
				t.Fatal(err)
			}
			b, err := open(dir)
			if err != nil {
				t.Fatal(err)
			}
			type sealed struct {
				blob, aad, dek []byte
				version        int
			}
			var all []sealed
			for round := range rounds {
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					got   [2]sealed
					errs  [2]error
				)
				for i, r := range []*Ring{a, b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						v, err := r.Rotate(ctx)
						if err != nil {
							errs[i] = err
							return
						}
						dek := bytes.Repeat([]byte{byte(round), byte(i)}, 16)
						aad := []byte(fmt.Sprintf("secret:%d:replica:%d", round, i))
						blob, wv, err := r.Wrap(ctx, dek, aad)
						if err != nil {
							errs[i] = err
							return
						}
						// Wrap may already use a newer version the other
						// replica made; never an older one.
						if wv < v {
							errs[i] = fmt.Errorf("rotated to %d but wrapped under %d", v, wv)
							return
						}
						got[i] = sealed{blob, aad, dek, v}
					}()
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d, replica %d: %v", round, i, err)
					}
				}
				if got[0].version == got[1].version {
					t.Fatalf("round %d: both replicas rotated to version %d", round, got[0].version)
				}
				all = append(all, got[0], got[1])
			}
			fresh, err := open(dir)
			if err != nil {
				t.Fatalf("reopen after concurrent rotations: %v", err)
			}
			if want := 1 + 2*rounds; len(fresh.Versions()) != want {
				t.Errorf("reopened keyring holds %d versions, want %d", len(fresh.Versions()), want)
			}
			for _, r := range []*Ring{a, b, fresh} {
				for _, s := range all {
					dek, err := r.Unwrap(ctx, s.blob, s.aad)
					if err != nil || !bytes.Equal(dek, s.dek) {
						t.Fatalf("unwrap %s after concurrent rotations: %x, %v", s.aad, dek, err)
					}
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Errorf("temporary file %s left in the key directory", e.Name())
				}
			}
		})
	}
}

// TestRing_ConcurrentFirstStart: replicas sharing an empty key directory
// start at the same moment. One creates the first key (master.key or
// passphrase.json), the others load it — none fails, none reads a
// half-written file, and all hold the same version 1.
func TestRing_ConcurrentFirstStart(t *testing.T) {
	const replicas = 8
	for name, open := range rings(t) {
		t.Run(name, func(t *testing.T) {
			for round := range 20 {
				dir := filepath.Join(t.TempDir(), "keys")
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					got   [replicas]*Ring
					errs  [replicas]error
				)
				for i := range replicas {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						got[i], errs[i] = open(dir)
					}()
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d, replica %d: %v", round, i, err)
					}
				}
				ct, err := got[0].Primary().Seal([]byte("seed"), "totp:user:1")
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range got {
					if pt, err := r.Primary().Open(ct, "totp:user:1"); err != nil || string(pt) != "seed" {
						t.Fatalf("round %d: replica %d holds another version 1: %v", round, i, err)
					}
				}
			}
		})
	}
}

// TestPassphraseRing_OlderDescription: a passphrase.json that lists
// several versions (written by rotations before versions had files of
// their own) still opens, and rotation goes on after its last version.
func TestPassphraseRing_OlderDescription(t *testing.T) {
	ctx := context.Background()
	pass := []byte("correct horse battery staple")
	dir := t.TempDir()
	doc := passphraseDoc{KDF: "argon2id", Params: testArgon2}
	for v := 1; v <= 3; v++ {
		salt := bytes.Repeat([]byte{byte(v)}, 16)
		doc.Versions = append(doc.Versions, derivedVersion{Version: v, Salt: salt, Check: checkValue(derive(pass, salt, testArgon2))})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, passphraseFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := OpenPassphraseRing(dir, pass, testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Versions(); len(got) != 3 || got[2] != 3 {
		t.Fatalf("versions = %v, want 1, 2, 3", got)
	}
	if v, err := r.Rotate(ctx); err != nil || v != 4 {
		t.Fatalf("Rotate = %d, %v; want 4", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "passphrase-4.json")); err != nil {
		t.Fatalf("version 4 has no file of its own: %v", err)
	}
	again, err := OpenPassphraseRing(dir, pass, testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Versions(); len(got) != 4 {
		t.Fatalf("reopened versions = %v, want 1 to 4", got)
	}
	// A version recorded both in passphrase.json and in a file of its own
	// is refused rather than guessed at.
	dup, err := json.Marshal(derivedVersion{Version: 3, Salt: bytes.Repeat([]byte{9}, 16), Check: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "passphrase-3.json"), dup, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPassphraseRing(dir, pass, testArgon2); !apperr.Is(err, apperr.Invalid) || !strings.Contains(err.Error(), "recorded twice") {
		t.Fatalf("a version recorded twice: %v", err)
	}
}

// TestWriteFileAtomic_NeverReplaces: creating a key file whose name is
// taken fails with fs.ErrExist, leaves the existing file as it was and
// leaves no temporary file behind; a new one appears whole, mode 0600.
func TestWriteFileAtomic_NeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek-2.key")
	first := bytes.Repeat([]byte{1}, keyLen)
	if err := writeFileAtomic(path, first); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v, %v", fi, err)
	}
	err := writeFileAtomic(path, bytes.Repeat([]byte{2}, keyLen))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write = %v, want fs.ErrExist", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("existing key file changed: %x, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want only kek-2.key", len(entries))
	}
}

// TestPassphraseRing_FollowsOlderReplica: during a rolling upgrade a
// replica still running the earlier code rotates by rewriting
// passphrase.json with one more version. A replica on this code that
// shares the directory must pick that version up as it picks up a
// passphrase-N.json: it unwraps what the older replica wrapped under it,
// and its own next rotation makes the version after it — not a second
// version with the same number, which would leave data keys wrapped under
// one of the two unreadable and the directory refused at the next start.
func TestPassphraseRing_FollowsOlderReplica(t *testing.T) {
	ctx := t.Context()
	pass := []byte("correct horse battery staple")
	dir := t.TempDir()
	r, err := OpenPassphraseRing(dir, pass, testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	// The older replica's rotation: passphrase.json rewritten (by rename)
	// listing version 2 too.
	path := filepath.Join(dir, passphraseFile)
	doc, err := readPassphraseDoc(path)
	if err != nil {
		t.Fatal(err)
	}
	salt := bytes.Repeat([]byte{2}, 16)
	doc.Versions = append(doc.Versions, derivedVersion{Version: 2, Salt: salt, Check: checkValue(derive(pass, salt, testArgon2))})
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp-older")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	older, err := OpenPassphraseRing(dir, pass, testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	dek, aad := bytes.Repeat([]byte{7}, 32), []byte("secret:1:version:1")
	blob, v, err := older.Wrap(ctx, dek, aad)
	if err != nil || v != 2 {
		t.Fatalf("older replica wraps under %d, %v; want 2", v, err)
	}

	if got, err := r.Unwrap(ctx, blob, aad); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap under the older replica's version 2: %x, %v", got, err)
	}
	if v, err := r.Rotate(ctx); err != nil || v != 3 {
		t.Fatalf("Rotate after the older replica's rotation = %d, %v; want 3", v, err)
	}
	fresh, err := OpenPassphraseRing(dir, pass, testArgon2)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := fresh.Versions(); len(got) != 3 {
		t.Errorf("reopened versions = %v, want 1 to 3", got)
	}
	if got, err := fresh.Unwrap(ctx, blob, aad); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap after reopening: %x, %v", got, err)
	}
}
