package keyring

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLocal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "master.key")
	k, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	ct, err := k.Seal([]byte("JBSWY3DPEHPK3PXP"), "totp:user:1")
	if err != nil {
		t.Fatal(err)
	}
	// Reopening the same file yields the same key.
	k2, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k2.Open(ct, "totp:user:1")
	if err != nil || string(pt) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := k2.Open(ct, "totp:user:2"); err == nil {
		t.Fatal("ciphertext opened under another context")
	}
	ct[len(ct)-1] ^= 1
	if _, err := k2.Open(ct, "totp:user:1"); err == nil {
		t.Fatal("tampered ciphertext opened")
	}
	if _, err := k2.Open([]byte{1, 2}, "x"); err == nil {
		t.Fatal("short ciphertext opened")
	}
}

func TestOpenLocal_RefusesOpenPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if _, err := OpenLocal(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocal(path); err == nil {
		t.Fatal("world-readable key accepted")
	}
}
