package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rampartsec/rampart/internal/apperr"
)

// PushOptions say how to reach a registry.
type PushOptions struct {
	// Auth authenticates (basic credentials, exchanged for a bearer token
	// when the registry asks for one); when nil, Keychain, else anonymous.
	Auth     authn.Authenticator
	Keychain authn.Keychain
	// Insecure allows a plain HTTP registry.
	Insecure bool
	// Resolver supplies the transport (optional).
	Resolver *Resolver
}

func (o PushOptions) resolver() *Resolver {
	r := &Resolver{Auth: o.Auth, Keychain: o.Keychain, Insecure: o.Insecure}
	if o.Resolver != nil {
		r.Transport = o.Resolver.Transport
	}
	return r
}

// Pushed is what Push wrote.
type Pushed struct {
	// Image is the pushed image by digest (registry/repo@sha256:…).
	Image name.Digest
	// Tag is the reference pushed to, as given.
	Tag string
	// Referrers are the evidence manifests pushed, by digest.
	Referrers []name.Digest
}

// Push uploads img to ref (a tag or a repository) and, when ev is not nil,
// attaches the evidence as OCI referrers of the pushed digest. Registries
// without the referrers API get the referrers tag schema
// (sha256-<digest>), which clients such as oras discover read.
func Push(ctx context.Context, img v1.Image, ref string, ev *Evidence, o PushOptions) (*Pushed, error) {
	r := o.resolver()
	n, err := r.parse(ref)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "digest of the image")
	}
	if err := remote.Write(n, img, r.options(ctx)...); err != nil {
		return nil, registryError(err, "push "+ref)
	}
	out := &Pushed{Image: n.Context().Digest(d.String()), Tag: ref}
	if ev == nil {
		return out, nil
	}
	refs, err := ev.Referrers()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "evidence manifests")
	}
	for _, a := range refs {
		ad, err := a.Digest()
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "evidence digest")
		}
		dn := n.Context().Digest(ad.String())
		if err := remote.Write(dn, a, r.options(ctx)...); err != nil {
			return nil, registryError(err, "push evidence to "+n.Context().String())
		}
		out.Referrers = append(out.Referrers, dn)
	}
	return out, nil
}

// Layout file names of the evidence written next to an image.
const (
	LayoutSBOMFile       = "sbom.cdx.json"
	LayoutProvenanceFile = "provenance.intoto.json"
)

// WriteLayout writes img as an OCI image layout at dir, tagged tag (the
// org.opencontainers.image.ref.name annotation, when not empty), with the
// evidence (when not nil) both as referrer manifests in the layout and as
// plain files next to it (sbom.cdx.json, provenance.intoto.json). The
// layout is assembled beside dir and renamed into place: a failed write
// leaves nothing behind. dir must not exist yet, or be empty.
func WriteLayout(dir, tag string, img v1.Image, ev *Evidence) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return apperr.E(apperr.Conflict, "%s exists and is not empty", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return apperr.Wrap(err, apperr.Invalid, "create "+parent)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return apperr.Wrap(err, apperr.Invalid, "create a directory in "+parent)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "write the layout")
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return apperr.Wrap(err, apperr.Internal, "write the image")
	}
	if ev != nil {
		refs, err := ev.Referrers()
		if err != nil {
			return apperr.Wrap(err, apperr.Internal, "evidence manifests")
		}
		for i, a := range refs {
			typ := []string{ArtifactTypeSBOM, ArtifactTypeProvenance}[i]
			if err := p.AppendImage(a, layout.WithAnnotations(map[string]string{"org.opencontainers.artifact.type": typ})); err != nil {
				return apperr.Wrap(err, apperr.Internal, "write the evidence")
			}
		}
		for name, data := range map[string][]byte{LayoutSBOMFile: ev.SBOM, LayoutProvenanceFile: ev.Provenance} {
			if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
				return apperr.Wrap(err, apperr.Internal, "write "+name)
			}
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return apperr.Wrap(err, apperr.Internal, "chmod the layout")
	}
	os.Remove(dir) // empty, if it exists
	if err := os.Rename(tmp, dir); err != nil {
		return apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("move the layout to %s", dir))
	}
	ok = true
	return nil
}
