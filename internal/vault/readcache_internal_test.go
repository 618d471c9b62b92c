package vault

import "testing"

// A write empties the cache at once: a destroyed version's ciphertext and
// wrapped key do not stay in memory until the cache happens to fill.
func TestReadCache_InvalidateForgetsTheRows(t *testing.T) {
	c := newReadCache()
	e := readEntry{gen: c.generation(), sl: sealed{ciphertext: []byte("sealed"), wrapped: []byte("wrapped")}}
	c.put(readKey{"1/2/prod/DB", 0}, e)
	if _, ok := c.get(readKey{"1/2/prod/DB", 0}); ok {
		// at is zero: older than the TTL, never served
		t.Fatal("an entry older than the TTL was served")
	}
	if len(c.m) != 1 || c.bytes == 0 {
		t.Fatalf("put kept %d entries, %d bytes", len(c.m), c.bytes)
	}
	c.invalidate()
	if len(c.m) != 0 || c.bytes != 0 {
		t.Fatalf("after a write the cache holds %d entries, %d bytes", len(c.m), c.bytes)
	}
}
