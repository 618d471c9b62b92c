package image

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Cosign's signature format.
const (
	// SimpleSigningMediaType is the media type of a signed payload.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds the base64 signature of the payload.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	simpleSigningType   = "cosign container image signature"
)

// SimpleSigning is the payload cosign signs: the image's repository and
// manifest digest.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]string `json:"optional"`
}

// SignatureTag is where cosign keeps the signatures of digest in its
// repository: sha256-<hex>.sig.
func SignatureTag(d name.Digest) (name.Tag, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return name.Tag{}, apperr.Wrap(err, apperr.Invalid, "invalid digest "+d.DigestStr())
	}
	return d.Context().Tag(h.Algorithm + "-" + h.Hex + ".sig"), nil
}

// Sign signs a pushed image in cosign's format with key (ECDSA P-256, as
// cosign's keys) and pushes the signature next to it, keeping signatures
// already there. `cosign verify --key` checks it (offline:
// --insecure-ignore-tlog, as Rampart does not upload to a transparency
// log).
func Sign(ctx context.Context, img name.Digest, key crypto.Signer, o PushOptions) (name.Tag, error) {
	ek, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || ek.Curve.Params().BitSize != 256 {
		return name.Tag{}, apperr.E(apperr.Invalid, "signing key must be ECDSA P-256")
	}
	var p SimpleSigning
	p.Critical.Identity.DockerReference = img.Context().String()
	p.Critical.Image.DockerManifestDigest = img.DigestStr()
	p.Critical.Type = simpleSigningType
	payload, err := json.Marshal(p)
	if err != nil {
		return name.Tag{}, apperr.Wrap(err, apperr.Internal, "signature payload")
	}
	sum := sha256.Sum256(payload)
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return name.Tag{}, apperr.Wrap(err, apperr.Internal, "sign")
	}
	tag, err := SignatureTag(img)
	if err != nil {
		return name.Tag{}, err
	}
	r := o.resolver()
	if r.Insecure {
		if tag, err = name.NewTag(tag.String(), name.Insecure); err != nil {
			return name.Tag{}, apperr.Wrap(err, apperr.Invalid, "signature tag")
		}
	}
	base, err := remote.Image(tag, r.options(ctx)...)
	var te *transport.Error
	switch {
	case err == nil:
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	default:
		return name.Tag{}, registryError(err, "read signatures of "+img.String())
	}
	layer := static.NewLayer(payload, SimpleSigningMediaType)
	signed, err := mutate.Append(base, mutate.Addendum{Layer: layer, Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})
	if err != nil {
		return name.Tag{}, apperr.Wrap(err, apperr.Internal, "signature manifest")
	}
	if err := remote.Write(tag, signed, r.options(ctx)...); err != nil {
		return name.Tag{}, registryError(err, "push the signature of "+img.String())
	}
	return tag, nil
}

// ParseSigningKey reads an unencrypted PEM ECDSA private key (PKCS#8
// "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"), as kept in Rampart's vault.
func ParseSigningKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, apperr.E(apperr.Invalid, "signing key is not PEM")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, apperr.E(apperr.Invalid, "signing key: unsupported PEM type %q (want an unencrypted EC private key)", b.Type)
	}
	if err != nil {
		return nil, apperr.E(apperr.Invalid, "signing key cannot be parsed")
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve.Params().BitSize != 256 {
		return nil, apperr.E(apperr.Invalid, "signing key must be ECDSA P-256")
	}
	return ek, nil
}
