package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Envelope encryption: every secret version (and every signing key) is
// sealed with AES-256-GCM under a data key of its own, and the data key is
// wrapped by the key-encryption key. Both carry the same associated data,
// which names what the ciphertext belongs to, so a ciphertext or wrapped
// key copied to another secret or version fails to open.

// cipherFormat starts every value ciphertext.
const cipherFormat byte = 1

// versionAAD binds a secret version's ciphertext and data key to it.
// uid is the secret's immutable id, made before its first write.
func versionAAD(uid string, version int) []byte {
	return fmt.Appendf(nil, "rampart/vault/secret/%s/version/%d", uid, version)
}

// signingAAD binds a signing key's ciphertext and data key to it.
func signingAAD(uid string) []byte { return []byte("rampart/vault/signing-key/" + uid) }

// newUID returns a random id for a secret or key (128 bits, hex).
func newUID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// internalAAD binds one of the vault's own keys (the fingerprint key).
func internalAAD(name string) []byte { return []byte("rampart/vault/key/" + name) }

// sealed is what the store keeps of an encrypted value.
type sealed struct {
	ciphertext []byte
	wrapped    []byte
	kekVersion int
}

func (s *Service) seal(ctx context.Context, plaintext, aad []byte) (sealed, error) {
	dek := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, dek); err != nil {
		return sealed{}, err
	}
	defer clear(dek)
	gcm, err := newGCM(dek)
	if err != nil {
		return sealed{}, err
	}
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	out[0] = cipherFormat
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return sealed{}, err
	}
	out = gcm.Seal(out, out[1:], plaintext, aad)
	wrapped, v, err := s.kek.Wrap(ctx, dek, aad)
	if err != nil {
		return sealed{}, fmt.Errorf("wrap data key: %w", err)
	}
	return sealed{ciphertext: out, wrapped: wrapped, kekVersion: v}, nil
}

func (s *Service) open(ctx context.Context, sl sealed, aad []byte) ([]byte, error) {
	if len(sl.ciphertext) == 0 || len(sl.wrapped) == 0 {
		return nil, apperr.E(apperr.Internal, "the stored ciphertext is missing")
	}
	dek, err := s.kek.Unwrap(ctx, sl.wrapped, aad)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the data key is malformed")
	}
	ns := gcm.NonceSize()
	if len(sl.ciphertext) < 1+ns+gcm.Overhead() || sl.ciphertext[0] != cipherFormat {
		return nil, apperr.E(apperr.Internal, "the stored ciphertext is malformed")
	}
	pt, err := gcm.Open(nil, sl.ciphertext[1:1+ns], sl.ciphertext[1+ns:], aad)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the stored ciphertext does not decrypt (altered, or moved from another secret)")
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// fingerprint is the keyed fingerprint (HMAC-SHA256) of a value: equal
// values have equal fingerprints, and without the vault's fingerprint key
// nobody can compute one to test a guess.
func (s *Service) fingerprint(value []byte) string {
	m := hmac.New(sha256.New, s.fpKey)
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))
}
