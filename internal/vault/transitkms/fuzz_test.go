package transitkms_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/vault/transitkms"
)

// FuzzVersion: the key version of a stored Transit ciphertext is read
// from its "vault:vN:" prefix; anything else is refused, never guessed.
func FuzzVersion(f *testing.F) {
	for _, s := range []string{"vault:v1:abc", "vault:v12:", "vault:v0:x", "vault:v-1:x", "vault:v+1:x", "vault:v01:x", "vault:vx:y", "vault:v1", "v1:abc", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ct []byte) {
		v, err := transitkms.Version(ct)
		if err != nil {
			return
		}
		if v < 1 || !strings.HasPrefix(string(ct), "vault:v"+strconv.Itoa(v)+":") {
			t.Fatalf("Version(%q) = %d", ct, v)
		}
	})
}
