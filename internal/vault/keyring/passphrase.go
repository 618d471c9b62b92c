package keyring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"golang.org/x/crypto/argon2"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Argon2Params tune the passphrase derivation (argon2id).
type Argon2Params struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultArgon2 follows RFC 9106's second recommendation (64 MiB, 3 passes).
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// MinPassphrase is the shortest passphrase accepted, in bytes.
const MinPassphrase = 12

// passphraseFile records how the keys are derived (the KDF, its
// parameters and version 1's salt); it holds no key. It is written once,
// at first start. Each later version's salt is in a file of its own,
// passphrase-N.json (a derivedVersion), created exclusively by the
// rotation that makes version N, so replicas rotating at the same time
// never overwrite each other's versions. (A passphrase.json written before
// that may list later versions too; they are read as well, also when a
// replica still running that code adds one while this one runs.)
const passphraseFile = "passphrase.json"

var passphraseVersionFile = regexp.MustCompile(`^passphrase-([0-9]{1,9})\.json$`)

func passphraseVersionPath(dir string, v int) string {
	return filepath.Join(dir, fmt.Sprintf("passphrase-%d.json", v))
}

type passphraseDoc struct {
	KDF      string           `json:"kdf"`
	Params   Argon2Params     `json:"params"`
	Versions []derivedVersion `json:"versions"`
}

type derivedVersion struct {
	Version int    `json:"version"`
	Salt    []byte `json:"salt"`
	// Check tells a wrong passphrase from a right one without trying to
	// decrypt anything: HMAC-SHA256(key, "rampart-keyring-check").
	Check []byte `json:"check"`
}

func checkValue(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("rampart-keyring-check"))
	return m.Sum(nil)[:16]
}

func derive(passphrase, salt []byte, p Argon2Params) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
}

// OpenPassphraseRing opens the keyring whose keys are derived from an
// operator passphrase with argon2id: version N's key is
// argon2id(passphrase, salt N). keys/passphrase.json records the
// parameters and version 1's salt (no key); it is created on first start
// with params. A wrong passphrase is refused before anything is decrypted.
func OpenPassphraseRing(dir string, passphrase []byte, params Argon2Params) (*Ring, error) {
	if len(passphrase) < MinPassphrase {
		return nil, apperr.E(apperr.Invalid, "the keyring passphrase must have at least %d characters", MinPassphrase)
	}
	if params.Time == 0 || params.MemoryKiB < 8 || params.Threads == 0 {
		return nil, apperr.E(apperr.Invalid, "argon2id parameters must be positive")
	}
	removeStaleTemps(dir)
	path := filepath.Join(dir, passphraseFile)
	doc, err := readPassphraseDoc(path)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "master.key")); err == nil {
			return nil, apperr.E(apperr.Invalid, "%s holds a master key file: this data directory uses the file keyring, not a passphrase", dir)
		}
		doc, err = createPassphraseDoc(path, passphrase, params)
		if errors.Is(err, fs.ErrExist) {
			// Another replica sharing the directory created it first.
			doc, err = readPassphraseDoc(path)
		}
	}
	if err != nil {
		return nil, err
	}
	versions := doc.Versions
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read key directory: %w", err)
	}
	for _, e := range entries {
		m := passphraseVersionFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		dv, err := readDerivedVersion(dir, v)
		if err != nil {
			return nil, err
		}
		versions = append(versions, dv)
	}
	r := &Ring{kind: "passphrase", dir: dir}
	seen := map[int]bool{}
	for _, v := range versions {
		if v.Version < 1 || len(v.Salt) < 16 {
			return nil, apperr.E(apperr.Invalid, "%s: version %d is malformed", dir, v.Version)
		}
		if seen[v.Version] {
			return nil, apperr.E(apperr.Invalid, "%s: version %d is recorded twice", dir, v.Version)
		}
		seen[v.Version] = true
		key := derive(passphrase, v.Salt, doc.Params)
		if !hmac.Equal(checkValue(key), v.Check) {
			return nil, apperr.E(apperr.Unauthenticated, "the passphrase does not open the keyring in %s", dir)
		}
		if err := r.add(v.Version, key); err != nil {
			return nil, err
		}
		if v.Version == 1 {
			if r.primary, err = FromKey(key); err != nil {
				return nil, err
			}
		}
	}
	if r.primary == nil {
		return nil, apperr.E(apperr.Invalid, "%s has no version 1", path)
	}
	r.load = func(v int) ([]byte, error) {
		dv, err := readDerivedVersion(dir, v)
		if errors.Is(err, os.ErrNotExist) {
			// A replica still running the earlier code records a rotation
			// by rewriting passphrase.json: follow it there too.
			dv, err = listedVersion(path, v)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		key := derive(passphrase, dv.Salt, doc.Params)
		if !hmac.Equal(checkValue(key), dv.Check) {
			return nil, apperr.E(apperr.Unauthenticated, "the passphrase does not open key-encryption key version %d", v)
		}
		return key, nil
	}
	r.rotate = func(next int) ([]byte, error) {
		// A passphrase.json from before per-version files may list it, or
		// a replica still running the earlier code may just have added it
		// there.
		if _, err := listedVersion(path, next); err == nil {
			return nil, errVersionTaken
		} else if !errors.Is(err, os.ErrNotExist) {
			// No path in the message: it reaches API callers.
			return nil, apperr.Wrap(err, apperr.Unavailable, passphraseFile+" of the passphrase keyring does not load")
		}
		salt := make([]byte, 16)
		if _, err := io.ReadFull(rand.Reader, salt); err != nil {
			return nil, err
		}
		key := derive(passphrase, salt, doc.Params)
		out, err := json.MarshalIndent(derivedVersion{Version: next, Salt: salt, Check: checkValue(key)}, "", "  ")
		if err != nil {
			return nil, err
		}
		err = writeFileAtomic(passphraseVersionPath(dir, next), out)
		if errors.Is(err, fs.ErrExist) {
			return nil, errVersionTaken
		}
		if err != nil {
			return nil, fmt.Errorf("record key-encryption key version %d: %w", next, err)
		}
		return key, nil
	}
	return r, nil
}

func readPassphraseDoc(path string) (passphraseDoc, error) {
	var doc passphraseDoc
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return doc, err
	}
	if err != nil {
		return doc, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.KDF != "argon2id" || len(doc.Versions) == 0 {
		return doc, apperr.E(apperr.Invalid, "%s is not a passphrase keyring description", path)
	}
	if doc.Params.Time == 0 || doc.Params.MemoryKiB < 8 || doc.Params.Threads == 0 {
		return doc, apperr.E(apperr.Invalid, "%s: argon2id parameters must be positive", path)
	}
	return doc, nil
}

// createPassphraseDoc writes passphrase.json with version 1; when another
// replica created it first the error satisfies errors.Is(err, fs.ErrExist).
func createPassphraseDoc(path string, passphrase []byte, params Argon2Params) (passphraseDoc, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, salt); err != nil {
		return passphraseDoc{}, err
	}
	key := derive(passphrase, salt, params)
	doc := passphraseDoc{KDF: "argon2id", Params: params, Versions: []derivedVersion{{Version: 1, Salt: salt, Check: checkValue(key)}}}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return passphraseDoc{}, err
	}
	if err := writeFileAtomic(path, out); err != nil {
		return passphraseDoc{}, fmt.Errorf("create %s: %w", path, err)
	}
	return doc, nil
}

// listedVersion returns version v as passphrase.json at path lists it
// (os.ErrNotExist when it does not): rotations before versions had files
// of their own, and replicas still running that code, record versions
// there.
func listedVersion(path string, v int) (derivedVersion, error) {
	doc, err := readPassphraseDoc(path)
	if err != nil {
		return derivedVersion{}, err
	}
	for _, dv := range doc.Versions {
		if dv.Version == v {
			return dv, nil
		}
	}
	return derivedVersion{}, os.ErrNotExist
}

// readDerivedVersion reads passphrase-v.json (os.ErrNotExist when absent).
func readDerivedVersion(dir string, v int) (derivedVersion, error) {
	path := passphraseVersionPath(dir, v)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return derivedVersion{}, err
	}
	if err != nil {
		return derivedVersion{}, fmt.Errorf("read %s: %w", path, err)
	}
	var dv derivedVersion
	if err := json.Unmarshal(b, &dv); err != nil || dv.Version != v || len(dv.Salt) < 16 || len(dv.Check) == 0 {
		return derivedVersion{}, apperr.E(apperr.Invalid, "%s is not the description of key-encryption key version %d", path, v)
	}
	if v < 2 {
		return derivedVersion{}, apperr.E(apperr.Invalid, "%s: versions in files of their own start at 2 (version 1 is in %s)", path, passphraseFile)
	}
	return dv, nil
}
