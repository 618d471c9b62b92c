package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestCA_IssuesVerifiableServerCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServerCert([]string{"localhost", "127.0.0.1", "rampart.example"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, name := range []string{"localhost", "127.0.0.1", "rampart.example"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode %v, %v", fi.Mode().Perm(), err)
	}
	// A second start reuses both.
	ca2, err := EnsureCA(dir)
	if err != nil || !ca2.Cert.Equal(ca.Cert) {
		t.Fatalf("CA not reused: %v", err)
	}
	cert2, err := ca2.ServerCert([]string{"rampart.example", "localhost", "127.0.0.1"})
	if err != nil || !cert2.Leaf.Equal(cert.Leaf) {
		t.Fatalf("server cert not reused: %v", err)
	}
	// A new host name gets a new certificate.
	cert3, err := ca2.ServerCert([]string{"localhost", "other.example"})
	if err != nil || cert3.Leaf.Equal(cert.Leaf) {
		t.Fatalf("server cert not reissued for a new host: %v", err)
	}
}
