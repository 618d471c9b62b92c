package registry_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/registry"
)

// TestSignatures_CosignVerifies signs an image through the API and checks
// that the real cosign accepts the signature with Rampart's public key,
// and refuses it with another key.
func TestSignatures_CosignVerifies(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	cosign := tool(t, "cosign", cosignVersion)
	w := newWorld(t)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	ref := w.host + "/acme/app:v1"
	mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"app/main.txt": "signed\n"}), "-t", ref)
	digest := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", ref))
	waitScanned(t, w, "acme/app", digest)

	api := w.a.Client(t, dev)
	var v registry.Verification
	api.Must(200, "GET", "/api/v1/orgs/acme/registry/repositories/app/manifests/"+digest+"/verification", nil).Decode(t, &v)
	if v.Signed {
		t.Fatalf("unsigned image reported signed: %+v", v)
	}
	api.Must(201, "POST", "/api/v1/orgs/acme/registry/repositories/app/signatures", registry.SignRequest{Digest: digest}).Decode(t, &v)
	if !v.Signed || v.Signatures != 1 || v.ScanStatus != registry.ScanPassed {
		t.Fatalf("after signing: %+v", v)
	}
	key := filepath.Join(t.TempDir(), "rampart.pub")
	if err := os.WriteFile(key, w.a.Client(t, "").Must(200, "GET", "/api/v1/registry/signing-key", nil).Body, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(h.env(), "COSIGN_EXPERIMENTAL=0", "TUF_ROOT="+filepath.Join(h.dir, "tuf"))
	out := mustRun(t, env, cosign, "verify", "--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry=true",
		"--allow-insecure-registry=true", w.host+"/acme/app@"+digest)
	if !strings.Contains(out, digest) {
		t.Errorf("cosign verify output does not name the digest: %s", out)
	}

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	otherKey := filepath.Join(t.TempDir(), "other.pub")
	if err := os.WriteFile(otherKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, env, cosign, "verify", "--key", otherKey, "--insecure-ignore-tlog=true", "--allow-http-registry=true",
		"--allow-insecure-registry=true", w.host+"/acme/app@"+digest); err == nil {
		t.Fatalf("cosign accepted the signature with another key: %s", out)
	}
	// A reader may verify but not sign.
	reader := w.member(t, o, "viewer", authz.Reader)
	w.a.Client(t, reader).Must(403, "POST", "/api/v1/orgs/acme/registry/repositories/app/signatures", registry.SignRequest{Digest: digest})
}
