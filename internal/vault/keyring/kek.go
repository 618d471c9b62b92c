package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// KEK is a key-encryption key: it wraps the vault's data keys. It has
// versions; Wrap always uses the current one, Unwrap any version still
// held, so rotating (Rotate, then re-wrapping every data key) never makes a
// stored value unreadable on the way.
//
// Implementations: *Ring (a local key file per version, or keys derived
// from an operator passphrase with argon2id) and transitkms.KEK (HashiCorp
// Vault's Transit engine).
type KEK interface {
	// Kind names the implementation: "file", "passphrase" or "transit".
	Kind() string
	// Wrap encrypts a data key under the current version, bound to aad.
	// The result names the version it was wrapped under.
	Wrap(ctx context.Context, dek, aad []byte) (wrapped []byte, version int, err error)
	// Unwrap decrypts what Wrap returned for the same aad. A wrong aad, a
	// changed blob or a version no longer held fail with an error; there
	// is never a fallback.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
	// Current returns the version Wrap uses now.
	Current(ctx context.Context) (int, error)
	// Rotate makes a new current version and returns it. Earlier versions
	// keep unwrapping.
	Rotate(ctx context.Context) (int, error)
}

// wrapFormat starts every data key wrapped by a Ring.
const wrapFormat byte = 2

// Ring is a KEK held on this machine: versioned AES-256-GCM keys, either
// one file per version (kind "file") or derived from a passphrase (kind
// "passphrase"). It is safe for concurrent use.
type Ring struct {
	kind string
	dir  string

	rotMu    sync.Mutex // one rotation at a time
	mu       sync.RWMutex
	versions map[int]cipher.AEAD
	current  int

	// rotate creates the next version's key durably and returns it.
	rotate func(next int) ([]byte, error)
	// load reads version v's key from the keyring's storage (nil when the
	// kind keeps no versions there): another replica sharing the key
	// directory may have rotated. loadMu serialises loads; checked is
	// when storage was last looked at for newer versions.
	load    func(v int) ([]byte, error)
	loadMu  sync.Mutex
	checked time.Time
	// primary seals identity's small secrets (version 1).
	primary *Local
}

var _ KEK = (*Ring)(nil)

// Kind implements KEK.
func (r *Ring) Kind() string { return r.kind }

// Primary returns the keyring's first key as a Local, for the small
// secrets identity seals (TOTP seeds, OIDC keys, federation secrets). It is
// not rotated with the vault's key-encryption key.
func (r *Ring) Primary() *Local { return r.primary }

// Versions lists the versions held, oldest first.
func (r *Ring) Versions() []int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]int, 0, len(r.versions))
	for v := range r.versions {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// Current implements KEK.
func (r *Ring) Current(context.Context) (int, error) {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current, nil
}

// refreshEvery is how often Wrap and Current look for versions another
// replica sharing the key directory added.
const refreshEvery = 5 * time.Second

// refresh loads the versions after the current one that storage holds,
// at most every refreshEvery: replicas sharing the key directory follow a
// rotation made on one of them, wrapping under the new version within
// seconds.
func (r *Ring) refresh() {
	if r.load == nil {
		return
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if time.Since(r.checked) < refreshEvery {
		return
	}
	_ = r.loadNewer() // an unreadable version shows when it is needed
}

// loadNewer adds the versions after the current one that storage holds.
// The caller holds loadMu.
func (r *Ring) loadNewer() error {
	r.checked = time.Now()
	if r.load == nil {
		return nil
	}
	for {
		r.mu.RLock()
		next := r.current + 1
		r.mu.RUnlock()
		key, err := r.load(next)
		if err == nil && key != nil {
			err = r.add(next, key)
		}
		if err != nil {
			// No path in the message: it reaches API callers.
			return apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("key-encryption key version %d of the %s keyring does not load", next, r.kind))
		}
		if key == nil {
			return nil
		}
	}
}

// loadVersion adds version v from storage if it is there (a rotation on
// another replica), reporting whether the ring now holds it.
func (r *Ring) loadVersion(v int) bool {
	if r.load == nil {
		return false
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	r.mu.RLock()
	have := r.versions[v] != nil
	r.mu.RUnlock()
	if have {
		return true
	}
	key, err := r.load(v)
	return err == nil && key != nil && r.add(v, key) == nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keyLen {
		return nil, fmt.Errorf("keyring: key must be %d bytes", keyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (r *Ring) add(version int, key []byte) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.versions == nil {
		r.versions = map[int]cipher.AEAD{}
	}
	r.versions[version] = aead
	if version > r.current {
		r.current = version
	}
	return nil
}

// Wrap implements KEK: format byte, version (4 bytes, big endian), nonce,
// then the sealed data key.
func (r *Ring) Wrap(_ context.Context, dek, aad []byte) ([]byte, int, error) {
	r.refresh()
	r.mu.RLock()
	v, aead := r.current, r.versions[r.current]
	r.mu.RUnlock()
	if aead == nil {
		return nil, 0, apperr.E(apperr.Unavailable, "the keyring holds no key-encryption key")
	}
	ns := aead.NonceSize()
	out := make([]byte, 5+ns, 5+ns+len(dek)+aead.Overhead())
	out[0] = wrapFormat
	binary.BigEndian.PutUint32(out[1:5], uint32(v))
	if _, err := io.ReadFull(rand.Reader, out[5:]); err != nil {
		return nil, 0, err
	}
	return aead.Seal(out, out[5:5+ns], dek, aad), v, nil
}

// WrappedVersion returns the key version a blob from Ring.Wrap names.
func WrappedVersion(wrapped []byte) (int, error) {
	if len(wrapped) < 5 || wrapped[0] != wrapFormat {
		return 0, apperr.E(apperr.Internal, "wrapped data key is malformed")
	}
	return int(binary.BigEndian.Uint32(wrapped[1:5])), nil
}

// Unwrap implements KEK.
func (r *Ring) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	v, err := WrappedVersion(wrapped)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	aead := r.versions[v]
	r.mu.RUnlock()
	if aead == nil && r.loadVersion(v) {
		r.mu.RLock()
		aead = r.versions[v]
		r.mu.RUnlock()
	}
	if aead == nil {
		// No path in the message: it reaches API callers.
		return nil, apperr.E(apperr.Unavailable, "key-encryption key version %d is missing from the %s keyring", v, r.kind)
	}
	ns := aead.NonceSize()
	if len(wrapped) < 5+ns+aead.Overhead() {
		return nil, apperr.E(apperr.Internal, "wrapped data key is malformed")
	}
	dek, err := aead.Open(nil, wrapped[5:5+ns], wrapped[5+ns:], aad)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, fmt.Sprintf("data key does not unwrap with key-encryption key version %d (wrong key, altered data or moved ciphertext)", v))
	}
	return dek, nil
}

// errVersionTaken is what a Ring's rotate returns when the version it
// was asked to create exists already: another replica sharing the key
// directory created it first.
var errVersionTaken = errors.New("key-encryption key version exists already")

// rotateAttempts bounds how often Rotate tries the next version again
// after losing the race for one to another replica.
const rotateAttempts = 10

// Rotate implements KEK: the next version's key is on disk (synced) before
// it is used for anything. Storage creates a version exclusively, so when
// replicas sharing the key directory rotate at the same time exactly one
// of them makes version N; the others load that N and make N+1 (and so
// on), and every Rotate returns a version of its own. Nothing is
// overwritten.
func (r *Ring) Rotate(ctx context.Context) (int, error) {
	r.rotMu.Lock()
	defer r.rotMu.Unlock()
	// No load runs while this rotation writes.
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	for range rotateAttempts {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		// Follow the rotations other replicas made first, so this one
		// adds the version after theirs.
		if err := r.loadNewer(); err != nil {
			return 0, err
		}
		r.mu.RLock()
		next := r.current + 1
		r.mu.RUnlock()
		key, err := r.rotate(next)
		if errors.Is(err, errVersionTaken) {
			continue // load the winner's version, then try the one after it
		}
		if err != nil {
			return 0, err
		}
		if err := r.add(next, key); err != nil {
			return 0, err
		}
		return next, nil
	}
	return 0, apperr.E(apperr.Conflict, "key-encryption key rotation lost %d races in a row to rotations on other replicas sharing the %s keyring; try again", rotateAttempts, r.kind)
}

var kekFile = regexp.MustCompile(`^kek-([0-9]{1,9})\.key$`)

// OpenFileRing opens the key-file keyring in dir: version 1 is master.key
// (the file OpenLocal uses, created on first start), later versions are
// kek-N.key. Every file must have mode 0600 and 32 bytes.
func OpenFileRing(dir string) (*Ring, error) {
	removeStaleTemps(dir)
	if _, err := os.Stat(filepath.Join(dir, passphraseFile)); err == nil {
		return nil, apperr.E(apperr.Invalid, "%s holds %s: this data directory's keyring is derived from a passphrase", dir, passphraseFile)
	}
	primary, err := OpenLocal(filepath.Join(dir, "master.key"))
	if err != nil {
		return nil, err
	}
	master, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	r := &Ring{kind: "file", dir: dir, primary: primary}
	if err := r.add(1, master); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read key directory: %w", err)
	}
	for _, e := range entries {
		m := kekFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		if v < 2 {
			return nil, apperr.E(apperr.Invalid, "key file %s: versions start at 2 (version 1 is master.key)", e.Name())
		}
		key, err := readKeyFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := r.add(v, key); err != nil {
			return nil, err
		}
	}
	r.load = func(v int) ([]byte, error) {
		if v < 2 {
			return nil, nil
		}
		key, err := readKeyFile(filepath.Join(dir, fmt.Sprintf("kek-%d.key", v)))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return key, err
	}
	r.rotate = func(next int) ([]byte, error) {
		key := make([]byte, keyLen)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, err
		}
		err := writeFileAtomic(filepath.Join(dir, fmt.Sprintf("kek-%d.key", next)), key)
		if errors.Is(err, fs.ErrExist) {
			return nil, errVersionTaken
		}
		if err != nil {
			return nil, fmt.Errorf("write key-encryption key version %d: %w", next, err)
		}
		return key, nil
	}
	return r, nil
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, apperr.E(apperr.Invalid, "key file %s is readable by other users (mode %v); run chmod 600 on it", path, fi.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if len(key) != keyLen {
		return nil, apperr.E(apperr.Invalid, "key file %s has %d bytes, want %d", path, len(key), keyLen)
	}
	return key, nil
}

// writeFileAtomic creates path (mode 0600) holding data, so that path
// either does not exist or holds all of data, even across a crash, and is
// never replaced: a synced temporary file is linked into place and the
// directory is synced. When path exists already (another replica created
// it first) the error satisfies errors.Is(err, fs.ErrExist) and path is
// untouched.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err // *os.LinkError, fs.ErrExist when path exists
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	return syncDir(dir)
}

// staleTempAge is how old a temporary file of writeFileAtomic must be
// before an opening keyring removes it: older than any write in progress.
const staleTempAge = time.Minute

// removeStaleTemps removes the temporary files writeFileAtomic left in dir
// when a crash stopped it: they may hold key material (a copy of, or a
// second link to, a key file). Failures are ignored: a leftover file is no
// reason not to start.
func removeStaleTemps(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTempAge {
			_ = os.Remove(m)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
