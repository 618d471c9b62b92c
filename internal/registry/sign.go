package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Signer signs image digests. The vault's signing keys replace the local
// key through Deps.Signer.
type Signer interface {
	// PublicKeyPEM is the PEM "PUBLIC KEY" block cosign verifies with.
	PublicKeyPEM() []byte
	// Sign returns an ASN.1 ECDSA signature over SHA-256(payload).
	Sign(ctx context.Context, payload []byte) ([]byte, error)
}

// localKey is an ECDSA P-256 key generated at first start and kept sealed
// in the store.
type localKey struct {
	priv *ecdsa.PrivateKey
	pub  []byte
}

func (k *localKey) PublicKeyPEM() []byte { return k.pub }

func (k *localKey) Sign(_ context.Context, payload []byte) ([]byte, error) {
	h := sha256.Sum256(payload)
	return k.priv.Sign(rand.Reader, h[:], crypto.SHA256)
}

func (s *Service) localSigner(ctx context.Context) (Signer, error) {
	der, err := s.ensureKey(ctx, "image-signing-p256", func() ([]byte, string, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, "", err
		}
		b, err := x509.MarshalECPrivateKey(k)
		return b, "", err
	})
	if err != nil {
		return nil, err
	}
	priv, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("image signing key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &localKey{priv: priv, pub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})}, nil
}

// PublicKeyPEM returns the key image signatures verify with.
func (s *Service) PublicKeyPEM() []byte { return s.signer.PublicKeyPEM() }

// cosign's formats.
const (
	cosignPayloadType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	cosignSigAnnotation = "dev.cosignproject.cosign/signature"
	cosignType          = "cosign container image signature"
)

// simpleSigning is cosign's signed payload.
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// sigTag is where cosign looks for an image's signatures.
func sigTag(d Digest) string { return d.Algorithm() + "-" + d.Hex() + ".sig" }

// SignImage signs repo@digest with the registry's key in cosign's format:
// a simple-signing payload stored as a layer of the manifest tagged
// ALG-HEX.sig, its signature in the layer's annotation. An image already
// signed gets one more layer. The signing is audited.
func (s *Service) SignImage(ctx context.Context, repoName, digest, signedBy string) error {
	d, ok := ParseDigest(digest)
	if !ok {
		return apperr.InvalidField("digest", "invalid digest %q", digest)
	}
	t, err := s.resolve(ctx, repoName, false)
	if err != nil {
		return err
	}
	if t.repo == nil {
		return apperr.E(apperr.NotFound, "repository %s not found", repoName)
	}
	m, err := s.lookupManifest(ctx, t.repo.ID, string(d))
	if apperr.Is(err, apperr.NotFound) {
		return apperr.E(apperr.NotFound, "%s has no manifest %s", repoName, d)
	}
	if err != nil {
		return err
	}
	var p simpleSigning
	p.Critical.Identity.DockerReference = s.service + "/" + repoName
	p.Critical.Image.DockerManifestDigest = m.Digest
	p.Critical.Type = cosignType
	p.Optional = map[string]any{"signed-by": "rampart", "signer": signedBy}
	payload, err := json.Marshal(p)
	if err != nil {
		return err
	}
	sig, err := s.signer.Sign(ctx, payload)
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	pd, err := s.putInternalBlob(ctx, t, payload)
	if err != nil {
		return err
	}
	layer := Descriptor{MediaType: cosignPayloadType, Digest: string(pd), Size: int64(len(payload)),
		Annotations: map[string]string{cosignSigAnnotation: base64.StdEncoding.EncodeToString(sig)}}
	tag := sigTag(d)
	var layers []Descriptor
	if old, err := s.lookupManifest(ctx, t.repo.ID, tag); err == nil {
		body, err := s.manifestContent(ctx, old.ID)
		if err != nil {
			return err
		}
		var om Manifest
		if json.Unmarshal(body, &om) == nil {
			layers = om.Layers
		}
	}
	layers = append(layers, layer)
	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.Digest
	}
	cfg, err := json.Marshal(map[string]any{"architecture": "", "os": "", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	if err != nil {
		return err
	}
	cd, err := s.putInternalBlob(ctx, t, cfg)
	if err != nil {
		return err
	}
	sm := Manifest{SchemaVersion: 2, MediaType: MediaOCIManifest,
		Config: &Descriptor{MediaType: MediaOCIConfig, Digest: string(cd), Size: int64(len(cfg))}, Layers: layers}
	body, err := json.Marshal(sm)
	if err != nil {
		return err
	}
	if t.repo.ImmutableTags {
		// Signature tags move as signatures are added: they are exempt.
		r := *t.repo
		r.ImmutableTags = false
		t.repo = &r
	}
	if _, err := s.storeManifest(ctx, t, digestOf(SHA256, body), MediaOCIManifest, body, &sm, tag); err != nil {
		return err
	}
	return s.audit.Append(ctx, auditRecord("registry.image.sign", repoName, t.repo.OrgID, map[string]any{"digest": m.Digest}))
}

// Verification is the result of VerifyImage.
type Verification struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Signed is true when at least one signature verifies with the
	// registry's key.
	Signed     bool   `json:"signed"`
	Signatures int    `json:"signatures"`
	ScanStatus string `json:"scan_status"`
	ScanReason string `json:"scan_reason,omitempty"`
}

// VerifyImage checks repo@digest's cosign signatures against the
// registry's key and reports its scan status: what a policy gate asks.
func (s *Service) VerifyImage(ctx context.Context, repoName, digest string) (Verification, error) {
	v := Verification{Repository: repoName, Digest: digest}
	d, ok := ParseDigest(digest)
	if !ok {
		return v, apperr.InvalidField("digest", "invalid digest %q", digest)
	}
	repo, err := s.Repository(ctx, repoName)
	if err != nil {
		return v, err
	}
	m, err := s.lookupManifest(ctx, repo.ID, string(d))
	if apperr.Is(err, apperr.NotFound) {
		return v, apperr.E(apperr.NotFound, "%s has no manifest %s", repoName, d)
	}
	if err != nil {
		return v, err
	}
	v.ScanStatus, v.ScanReason = m.ScanStatus, m.ScanReason
	sm, err := s.lookupManifest(ctx, repo.ID, sigTag(d))
	if apperr.Is(err, apperr.NotFound) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	body, err := s.manifestContent(ctx, sm.ID)
	if err != nil {
		return v, err
	}
	var man Manifest
	if err := json.Unmarshal(body, &man); err != nil {
		return v, nil
	}
	blk, _ := pem.Decode(s.signer.PublicKeyPEM())
	if blk == nil {
		return v, fmt.Errorf("signing key: no PEM block")
	}
	pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return v, err
	}
	pub, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return v, fmt.Errorf("signing key is not ECDSA")
	}
	for _, l := range man.Layers {
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[cosignSigAnnotation])
		if err != nil || l.MediaType != cosignPayloadType || l.Size > 1<<20 {
			continue
		}
		ld, ok := ParseDigest(l.Digest)
		if !ok {
			continue
		}
		rc, err := s.content.open(ctx, ld, 0)
		if err != nil {
			continue
		}
		payload, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil || digestOf(ld.Algorithm(), payload) != ld {
			continue
		}
		h := sha256.Sum256(payload)
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			continue
		}
		var p simpleSigning
		if json.Unmarshal(payload, &p) != nil || p.Critical.Image.DockerManifestDigest != m.Digest || p.Critical.Type != cosignType {
			continue
		}
		v.Signatures++
	}
	v.Signed = v.Signatures > 0
	return v, nil
}

// signed reports whether a manifest carries a signature tag (retention's
// keep-signed rule).
func signedDigests(tags []string) map[string]bool {
	out := map[string]bool{}
	for _, t := range tags {
		if h, ok := strings.CutSuffix(t, ".sig"); ok {
			alg, hex, ok := strings.Cut(h, "-")
			if ok && slices.Contains([]string{SHA256, SHA512}, alg) {
				out[alg+":"+hex] = true
			}
		}
	}
	return out
}

var _ = http.StatusOK
