package oidcop

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/identity"
)

// TokenPrefix starts every opaque value the provider hands out (access
// tokens, authorization codes), so secret scanners can recognise them.
const TokenPrefix = "rpo_"

// tokenAAD binds sealed token bodies to their purpose: a value sealed for
// anything else never opens as a token.
const tokenAAD = "oidc:opaque-token"

// maxOpaqueLen bounds what tokenCrypto will try to open.
const maxOpaqueLen = 1024

// tokenCrypto is the op.Crypto the library uses to turn an authorization
// request id into a code and "tokenID:subject" into an opaque access token.
// It seals with identity's Sealer, so values cannot be forged or read
// without the master key; what the store keeps of them is only a hash.
type tokenCrypto struct{ sealer identity.Sealer }

var _ op.Crypto = tokenCrypto{}

func (c tokenCrypto) Encrypt(s string) (string, error) {
	b, err := c.sealer.Seal([]byte(s), tokenAAD)
	if err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

var errNotOurs = errors.New("not an opaque token of this provider")

func (c tokenCrypto) Decrypt(s string) (string, error) {
	body, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(s) > maxOpaqueLen {
		return "", errNotOurs
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", errNotOurs
	}
	pt, err := c.sealer.Open(b, tokenAAD)
	if err != nil {
		return "", errNotOurs
	}
	return string(pt), nil
}

// splitTokenID parses the "tokenID:subject" body of an access token.
func splitTokenID(s string) (id, subject string, ok bool) {
	id, subject, ok = strings.Cut(s, ":")
	if !ok || id == "" || subject == "" || strings.Contains(subject, ":") {
		return "", "", false
	}
	return id, subject, true
}

// randomID returns n bytes of randomness, URL-safe encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret hashes a high-entropy secret for storage and lookup.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
