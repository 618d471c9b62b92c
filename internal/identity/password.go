package identity

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/rampartsec/rampart/internal/apperr"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1
// lane). Hashes record their parameters, so raising these later rehashes
// passwords at their owners' next sign-in.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16

	minPasswordLen = 10
	maxPasswordLen = 256
)

type argonParams struct {
	time, memory uint32
	threads      uint8
}

var currentArgon = argonParams{argonTime, argonMemory, argonThreads}

// hashPassword returns an argon2id hash in PHC string format.
func hashPassword(rand io.Reader, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	p := currentArgon
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC-encoded hash, and
// whether the hash should be upgraded to current parameters.
func checkPassword(encoded, password string) (ok, rehash bool) {
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		return false, false
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, ok && p != currentArgon
}

func parsePHC(s string) (p argonParams, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("not an argon2id hash")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, fmt.Errorf("unsupported argon2 version")
	}
	// Sscanf ignores trailing text and takes signs and leading zeros: accept
	// only the canonical spelling, so one hash has one text.
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, p.threads) {
		return p, nil, nil, fmt.Errorf("bad argon2 parameters")
	}
	if p.memory == 0 || p.memory > 1<<21 || p.time == 0 || p.time > 16 || p.threads == 0 {
		return p, nil, nil, fmt.Errorf("argon2 parameters out of range")
	}
	// The decoder skips newlines and ignores stray bits: compare the
	// re-encoding too.
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 || b64.EncodeToString(salt) != parts[4] {
		return p, nil, nil, fmt.Errorf("bad argon2 salt")
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 || b64.EncodeToString(key) != parts[5] {
		return p, nil, nil, fmt.Errorf("bad argon2 key")
	}
	return p, salt, key, nil
}

// commonPasswords are refused outright (a short list of the most used ones;
// the length rule already rules out most others).
var commonPasswords = map[string]bool{
	"password123": true, "1234567890": true, "qwertyuiop": true, "password1234": true,
	"123456789a": true, "iloveyou123": true, "administrator": true, "letmein123": true,
	"welcome123": true, "changeme123": true, "passw0rd123": true, "0123456789": true,
	"1q2w3e4r5t": true, "qwerty12345": true, "rampart123": true, "admin12345": true,
}

// validatePassword enforces the password policy (NIST SP 800-63B style:
// length, not a known common password, not the user name).
func validatePassword(username, password string) error {
	n := len([]rune(password))
	switch {
	case n < minPasswordLen:
		return apperr.InvalidField("password", "password must be at least %d characters", minPasswordLen)
	case len(password) > maxPasswordLen:
		return apperr.InvalidField("password", "password must be at most %d bytes", maxPasswordLen)
	case commonPasswords[strings.ToLower(password)]:
		return apperr.InvalidField("password", "password is too common")
	case username != "" && strings.EqualFold(password, username):
		return apperr.InvalidField("password", "password must not be the user name")
	}
	return nil
}
