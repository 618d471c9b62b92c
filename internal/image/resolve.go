package image

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// BaseResolver finds the image a FROM or COPY --from names. The pipeline
// gives its own (images of Rampart's registry with the run's credentials).
type BaseResolver interface {
	// Resolve returns the image ref names for platform, and the material
	// recorded in provenance.
	Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, Material, error)
}

// Location prefixes of local base images.
const (
	// PrefixLayout names an OCI image layout directory:
	// oci-layout:DIR, oci-layout:DIR:TAG or oci-layout:DIR@sha256:….
	PrefixLayout = "oci-layout:"
	// PrefixTarball names an image tarball (docker save, or a tar of an
	// OCI layout): tarball:FILE.
	PrefixTarball = "tarball:"
)

// Resolver is the default BaseResolver: local OCI layouts and tarballs,
// and any registry with token or basic authentication.
type Resolver struct {
	// Local maps names used in FROM to local locations (oci-layout:…,
	// tarball:…); FROM may also name such a location directly.
	Local map[string]string
	// Auth authenticates to every registry; when nil, Keychain is used
	// (when nil too, anonymous access).
	Auth     authn.Authenticator
	Keychain authn.Keychain
	// Insecure allows plain HTTP registries.
	Insecure bool
	// Transport for registry requests (default http.DefaultTransport).
	Transport http.RoundTripper
}

var _ BaseResolver = (*Resolver)(nil)

// Resolve implements BaseResolver.
func (r *Resolver) Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, Material, error) {
	loc := ref
	if l, ok := r.Local[ref]; ok {
		loc = l
	}
	var img v1.Image
	var err error
	switch {
	case strings.HasPrefix(loc, PrefixLayout):
		img, err = layoutImage(strings.TrimPrefix(loc, PrefixLayout), platform)
	case strings.HasPrefix(loc, PrefixTarball):
		var src *source.ImageSource
		if src, err = source.OpenImage(strings.TrimPrefix(loc, PrefixTarball), source.ImageOptions{}); err == nil {
			img = src.V1Image()
		}
	default:
		img, err = r.remote(ctx, loc, platform)
	}
	if err != nil {
		return nil, Material{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, Material{}, apperr.Wrap(err, apperr.Invalid, "cannot read the manifest of "+loc)
	}
	return img, Material{URI: loc, Digest: d}, nil
}

func (r *Resolver) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	switch {
	case r.Auth != nil:
		opts = append(opts, remote.WithAuth(r.Auth))
	case r.Keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(r.Keychain))
	}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
	return opts
}

func (r *Resolver) parse(ref string) (name.Reference, error) {
	var nopts []name.Option
	if r.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	n, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "invalid image reference "+ref)
	}
	return n, nil
}

func (r *Resolver) remote(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error) {
	n, err := r.parse(ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(n, append(r.options(ctx), remote.WithPlatform(platform))...)
	if err != nil {
		return nil, registryError(err, "pull "+ref)
	}
	return img, nil
}

// registryError classifies an error of a registry.
func registryError(err error, what string) error {
	if te, ok := err.(*transport.Error); ok {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return apperr.Wrap(err, apperr.Unauthenticated, what+": the registry refused the credentials")
		case http.StatusForbidden:
			return apperr.Wrap(err, apperr.Forbidden, what+": the registry denied access")
		case http.StatusNotFound:
			return apperr.Wrap(err, apperr.NotFound, what+": not found")
		}
		return apperr.Wrap(err, apperr.Unavailable, what+": "+te.Error())
	}
	return apperr.Wrap(err, apperr.Unavailable, what+": "+err.Error())
}

// layoutImage opens the image of an OCI layout: dir, dir:tag or
// dir@digest; an index is narrowed to platform.
func layoutImage(loc string, platform v1.Platform) (v1.Image, error) {
	dir, sel := loc, ""
	if i := strings.LastIndex(loc, "@"); i > 0 {
		dir, sel = loc[:i], loc[i:]
	} else if i := strings.LastIndex(loc, ":"); i > strings.LastIndex(loc, "/") {
		dir, sel = loc[:i], loc[i:]
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, apperr.E(apperr.NotFound, "OCI layout %s not found", dir)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "OCI layout "+dir+" cannot be read")
	}
	return pickImage(idx, sel, platform, "OCI layout "+dir, 0)
}

func pickImage(idx v1.ImageIndex, sel string, platform v1.Platform, what string, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, apperr.E(apperr.Invalid, "%s: indexes nested too deeply", what)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, what+": bad index")
	}
	var cands []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case strings.HasPrefix(sel, "@"):
			if d.Digest.String() == sel[1:] {
				cands = append(cands, d)
			}
		case strings.HasPrefix(sel, ":"):
			if d.Annotations["org.opencontainers.image.ref.name"] == sel[1:] {
				cands = append(cands, d)
			}
		default:
			if d.ArtifactType == ArtifactTypeSBOM || d.ArtifactType == ArtifactTypeProvenance || d.Annotations["org.opencontainers.artifact.type"] != "" {
				continue // referrers (SBOM, provenance) stored beside an image
			}
			if d.Platform != nil && !d.Platform.Satisfies(platform) {
				continue
			}
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return nil, apperr.E(apperr.NotFound, "%s holds no image %s for %s", what, sel, platform.String())
	}
	// Prefer an exact platform match, then the first.
	d := cands[0]
	for _, c := range cands {
		if c.Platform != nil && c.Platform.Satisfies(platform) {
			d = c
			break
		}
	}
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, what+": bad index")
		}
		return pickImage(child, "", platform, what, depth+1)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, what+": bad image")
	}
	return img, nil
}

// extractWith flattens img with layers appended.
func extractWith(img v1.Image, layers []v1.Layer) io.ReadCloser {
	if len(layers) > 0 {
		if i, err := mutate.AppendLayers(img, layers...); err == nil {
			img = i
		}
	}
	return mutate.Extract(img)
}
