package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"strings"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters drawn uniformly from base62.
func randomString(r io.Reader, n int) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		if buf[0] >= 248 { // 248 = 62*4: reject to avoid modulo bias
			continue
		}
		b.WriteByte(base62[buf[0]%62])
	}
	return b.String(), nil
}

// hashSecret hashes a high-entropy secret (token, session id) for storage
// and lookup. Such secrets need no salt or slow hash: they cannot be guessed.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// checksum62 encodes the CRC-32 of s in six base62 characters.
func checksum62(s string) string {
	n := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(s))))
	out := n.Text(62)
	// big.Int's base-62 digits are 0-9a-zA-Z; map onto ours for consistency.
	out = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return 'A' + (r - 'a')
		case r >= 'A' && r <= 'Z':
			return 'a' + (r - 'A')
		}
		return r
	}, out)
	return strings.Repeat("0", 6-len(out)) + out
}
