// Package keyring holds the key-encryption keys that protect Rampart's
// secrets at rest: TOTP seeds, OIDC signing keys, upstream client secrets,
// and every vault secret's data key.
//
// The embedded default is a local master key: 32 random bytes in a file
// created at first start with mode 0600. Seal and Open use AES-256-GCM with
// associated data, so a ciphertext only opens in the context it was sealed
// for (for example "totp:user:42"): copied to another row, it fails.
//
// The vault wraps data keys through the KEK interface, which has versions
// and rotates. Ring implements it on this machine, with one key file per
// version (master.key is version 1, then kek-2.key, kek-3.key, …) or with
// keys derived from an operator passphrase by argon2id (the salts are in
// passphrase.json and passphrase-N.json, the keys nowhere on disk). transitkms implements it with
// HashiCorp Vault's Transit engine. Identity keeps sealing with version 1
// (Ring.Primary); rotation re-wraps the vault's data keys only.
//
// Several replicas sharing one PostgreSQL database must share the key
// directory (or the passphrase, or the Transit key). Every file in it is
// created once and never replaced: written to a temporary file, synced,
// linked into place only if the name is free, then the directory synced.
// So a crash leaves a key file whole or absent, and replicas creating the
// same file at once (first start, or rotating to the same version) cannot
// overwrite each other: the loser loads the winner's file and, when
// rotating, makes the version after it.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/rampartsec/rampart/internal/apperr"
)

const keyLen = 32

// version prefixes every ciphertext so keys can be rotated later.
const version byte = 1

// Local is a keyring backed by a key file on disk.
type Local struct {
	aead cipher.AEAD
	id   string
}

// OpenLocal loads the master key at path, creating it (mode 0600, in a 0700
// directory) when absent. A key file readable by others is refused. The
// file is created like every key file (writeFileAtomic): it appears whole
// or not at all, and when replicas sharing the key directory start at the
// same time one creates it and the others load it.
func OpenLocal(path string) (*Local, error) {
	key, err := readMasterKey(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = create(path)
		if errors.Is(err, fs.ErrExist) {
			key, err = readMasterKey(path) // another replica created it first
		}
	}
	if err != nil {
		return nil, err
	}
	return FromKey(key)
}

func readMasterKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat master key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, apperr.E(apperr.Invalid, "master key %s is readable by other users (mode %v); run chmod 600 on it", path, fi.Mode().Perm())
	}
	if len(key) != keyLen {
		return nil, apperr.E(apperr.Invalid, "master key %s has %d bytes, want %d", path, len(key), keyLen)
	}
	return key, nil
}

// FromKey builds a keyring from raw key bytes (tests, passphrase-derived keys).
func FromKey(key []byte) (*Local, error) {
	if len(key) != keyLen {
		return nil, fmt.Errorf("keyring: key must be %d bytes", keyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("rampart-keyring-id"), key...))
	return &Local{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

func create(path string) ([]byte, error) {
	key := make([]byte, keyLen)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, key); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	return key, nil
}

// ID is a short fingerprint of the key (not secret), for logs and status.
func (k *Local) ID() string { return k.id }

// Seal encrypts plaintext bound to aad.
func (k *Local) Seal(plaintext []byte, aad string) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	out := append([]byte{version}, nonce...)
	return k.aead.Seal(out, nonce, plaintext, []byte(aad)), nil
}

// Open decrypts a ciphertext from Seal; it fails if the ciphertext was
// altered, sealed under another key, or sealed for another aad.
func (k *Local) Open(ciphertext []byte, aad string) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(ciphertext) < 1+ns+k.aead.Overhead() || ciphertext[0] != version {
		return nil, apperr.E(apperr.Internal, "sealed value is malformed")
	}
	pt, err := k.aead.Open(nil, ciphertext[1:1+ns], ciphertext[1+ns:], []byte(aad))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "sealed value does not open with this key")
	}
	return pt, nil
}
