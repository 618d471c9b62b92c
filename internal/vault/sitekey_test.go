package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/vault"
)

// TestSiteSigner: the site key is generated once, survives a restart and
// a KEK rotation, signs what cosign verifies (ECDSA P-256 over SHA-256,
// ASN.1) and audits every signature.
func TestSiteSigner(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		k, err := e.v.SiteSigner(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicKeyPEM()
		blk, _ := pem.Decode(pub)
		if blk == nil || blk.Type != "PUBLIC KEY" {
			t.Fatalf("public key is not a PEM PUBLIC KEY: %q", pub)
		}
		parsed, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		ec, ok := parsed.(*ecdsa.PublicKey)
		if !ok || ec.Curve.Params().Name != "P-256" {
			t.Fatalf("public key %T is not ECDSA P-256", parsed)
		}
		payload := []byte(`{"critical":{}}`)
		sig, err := k.Sign(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(payload)
		if !ecdsa.VerifyASN1(ec, sum[:], sig) {
			t.Fatal("the signature does not verify with the public key")
		}
		entries, err := e.audit.List(ctx, audit.Filter{Action: "vault.key.sign"})
		if err != nil || len(entries) != 1 || entries[0].TargetName != vault.SiteKeyRef {
			t.Fatalf("audit entries %+v, %v; want one vault.key.sign of %s", entries, err, vault.SiteKeyRef)
		}

		if _, err := e.v.RotateKEK(ctx); err != nil {
			t.Fatal(err)
		}
		again, err := e.start(t, e.ring, true).SiteSigner(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(again.PublicKeyPEM()) != string(pub) {
			t.Fatal("the site key changed after a KEK rotation and a restart")
		}
		sig, err = again.Sign(ctx, payload)
		if err != nil || !ecdsa.VerifyASN1(ec, sum[:], sig) {
			t.Fatalf("sign after rotation: %v", err)
		}
	})
}
