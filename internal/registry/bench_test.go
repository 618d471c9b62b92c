package registry

import (
	"crypto/sha256"
	"testing"
)

// BenchmarkSHA256 is the ceiling of a registry that verifies every byte
// (bench/registry.sh prints it next to push and pull throughput).
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		h.Write(buf)
	}
}
