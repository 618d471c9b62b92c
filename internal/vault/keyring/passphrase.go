package keyring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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

// passphraseFile records how each key version is derived; it holds no key.
const passphraseFile = "passphrase.json"

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
// argon2id(passphrase, salt N). keys/passphrase.json records the salts and
// parameters (no key); it is created on first start with params. A wrong
// passphrase is refused before anything is decrypted.
func OpenPassphraseRing(dir string, passphrase []byte, params Argon2Params) (*Ring, error) {
	if len(passphrase) < MinPassphrase {
		return nil, apperr.E(apperr.Invalid, "the keyring passphrase must have at least %d characters", MinPassphrase)
	}
	if params.Time == 0 || params.MemoryKiB < 8 || params.Threads == 0 {
		return nil, apperr.E(apperr.Invalid, "argon2id parameters must be positive")
	}
	path := filepath.Join(dir, passphraseFile)
	b, err := os.ReadFile(path)
	var doc passphraseDoc
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(filepath.Join(dir, "master.key")); err == nil {
			return nil, apperr.E(apperr.Invalid, "%s holds a master key file: this data directory uses the file keyring, not a passphrase", dir)
		}
		doc = passphraseDoc{KDF: "argon2id", Params: params}
		salt := make([]byte, 16)
		if _, err := io.ReadFull(rand.Reader, salt); err != nil {
			return nil, err
		}
		key := derive(passphrase, salt, params)
		doc.Versions = []derivedVersion{{Version: 1, Salt: salt, Check: checkValue(key)}}
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(path, out); err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &doc); err != nil || doc.KDF != "argon2id" || len(doc.Versions) == 0 {
			return nil, apperr.E(apperr.Invalid, "%s is not a passphrase keyring description", path)
		}
	}
	r := &Ring{kind: "passphrase", dir: dir}
	for _, v := range doc.Versions {
		if v.Version < 1 || len(v.Salt) < 16 {
			return nil, apperr.E(apperr.Invalid, "%s: version %d is malformed", path, v.Version)
		}
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
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var now passphraseDoc
		if err := json.Unmarshal(b, &now); err != nil {
			return nil, err
		}
		for _, dv := range now.Versions {
			if dv.Version != v {
				continue
			}
			key := derive(passphrase, dv.Salt, now.Params)
			if !hmac.Equal(checkValue(key), dv.Check) {
				return nil, apperr.E(apperr.Unauthenticated, "the passphrase does not open key-encryption key version %d", v)
			}
			doc = now
			return key, nil
		}
		return nil, nil
	}
	r.rotate = func(next int) ([]byte, error) {
		salt := make([]byte, 16)
		if _, err := io.ReadFull(rand.Reader, salt); err != nil {
			return nil, err
		}
		key := derive(passphrase, salt, doc.Params)
		nd := doc
		nd.Versions = append(append([]derivedVersion(nil), doc.Versions...), derivedVersion{Version: next, Salt: salt, Check: checkValue(key)})
		out, err := json.MarshalIndent(nd, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := replaceFileAtomic(path, out); err != nil {
			return nil, fmt.Errorf("record key-encryption key version %d: %w", next, err)
		}
		doc = nd
		return key, nil
	}
	return r, nil
}
