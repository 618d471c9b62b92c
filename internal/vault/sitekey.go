package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// The site signing key: an ECDSA P-256 key of the whole Rampart (not of an
// org), generated in the vault at first start, for signatures made on the
// site's behalf — the registry's image signatures. Its private scalar is
// one of the vault's own keys (vault_keys, wrapped by the KEK and
// re-wrapped by KEK rotations); it is opened for each signature and never
// leaves the vault. Only the public key is exported.

// siteKeyName names the site signing key among the vault's own keys.
const siteKeyName = "site-signing-p256"

// SiteKeyRef is how the audit log names the site signing key.
const SiteKeyRef = "site/image-signing"

// SiteSigner signs with the site signing key.
type SiteSigner struct {
	s   *Service
	pub []byte
}

// SiteSigner returns the site signing key, generating it on first use.
func (s *Service) SiteSigner(ctx context.Context) (*SiteSigner, error) {
	priv, err := s.siteKey(ctx)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &SiteSigner{s: s, pub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}, nil
}

func (s *Service) siteKey(ctx context.Context) (*ecdsa.PrivateKey, error) {
	raw, err := s.internalKey(ctx, siteKeyName)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	// 32 random bytes are a valid P-256 scalar unless they are zero or
	// not below the group order (a chance of about 2^-32).
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("the vault's site signing key is not a P-256 scalar: %w", err)
	}
	return priv, nil
}

// PublicKeyPEM is the site key's public half as a PEM "PUBLIC KEY" block,
// the format cosign verify --key reads.
func (k *SiteSigner) PublicKeyPEM() []byte { return append([]byte(nil), k.pub...) }

// Sign returns an ASN.1 DER ECDSA signature over SHA-256(payload), as
// cosign makes. Every signature is audited (vault.key.sign).
func (k *SiteSigner) Sign(ctx context.Context, payload []byte) ([]byte, error) {
	priv, err := k.s.siteKey(ctx)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		return nil, err
	}
	if err := k.s.appendAudit(ctx, audit.Record{Action: "vault.key.sign",
		Target:  audit.Target{Type: "signing_key", ID: "site", Name: SiteKeyRef},
		Details: map[string]any{"digest": hex.EncodeToString(digest[:]), "bytes": len(payload)}}); err != nil {
		return nil, err
	}
	return sig, nil
}

// SiteKeyJSON is the site signing key's public half.
type SiteKeyJSON struct {
	Ref       string `json:"ref"`
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"public_key_pem"`
}

func (s *Service) apiSiteKey(c *httpapi.Call) error {
	k, err := s.SiteSigner(c.R.Context())
	if err != nil {
		return err
	}
	return c.JSON(SiteKeyJSON{Ref: SiteKeyRef, Algorithm: AlgECDSAP256, PublicKey: string(k.pub)})
}
