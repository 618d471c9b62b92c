package registry

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// maxReferrers bounds how many referrers of one image Evidence reports.
const maxReferrers = 100

// Evidence is what the registry knows of one image that a policy gate
// (pre-deploy) asks about: its scan, whether Rampart's key signed it, and
// the artifacts attached to it as referrers.
type Evidence struct {
	Repository string
	Digest     string
	// ScanStatus is one of the Scan* states ("" when the manifest is not
	// an image the registry scans, an index for example).
	ScanStatus string
	ScanReason string
	ScannedAt  time.Time
	// Report is the newest scan report (package report's JSON) the
	// scanner attached; nil before the first scan.
	Report []byte
	// Signed is true when a cosign signature of the digest verifies
	// with the registry's key.
	Signed bool
	// Referrers are the manifests whose subject is the image, oldest
	// first (at most 100).
	Referrers []Referrer
}

// Referrer is an artifact attached to an image (OCI subject).
type Referrer struct {
	Digest       string
	ArtifactType string
	Size         int64
	// Signed is true when the referrer manifest itself carries a
	// signature by the registry's key (a signed attestation).
	Signed bool
}

// Evidence gathers the evidence of repo@digest. A repository or digest
// this registry does not hold is NotFound; the caller decides what
// missing evidence means.
func (s *Service) Evidence(ctx context.Context, repoName, digest string) (Evidence, error) {
	v, err := s.VerifyImage(ctx, repoName, digest)
	if err != nil {
		return Evidence{}, err
	}
	ev := Evidence{Repository: repoName, Digest: digest, ScanStatus: v.ScanStatus, ScanReason: v.ScanReason, Signed: v.Signed}
	repo, err := s.Repository(ctx, repoName)
	if err != nil {
		return Evidence{}, err
	}
	m, err := s.lookupManifest(ctx, repo.ID, digest)
	if err != nil {
		return Evidence{}, err
	}
	ev.ScannedAt = m.ScannedAt
	if rep, err := s.Report(ctx, repo, digest); err == nil {
		ev.Report = rep
	} else if !apperr.Is(err, apperr.NotFound) {
		return Evidence{}, err
	}
	refs, err := s.referrersOf(ctx, repo.ID, digest)
	if err != nil {
		return Evidence{}, err
	}
	if len(refs) > maxReferrers {
		refs = refs[len(refs)-maxReferrers:]
	}
	for _, r := range refs {
		rv, err := s.VerifyImage(ctx, repoName, r.Digest)
		if err != nil {
			return Evidence{}, err
		}
		ev.Referrers = append(ev.Referrers, Referrer{Digest: r.Digest, ArtifactType: r.ArtifactType, Size: r.Size, Signed: rv.Signed})
	}
	return ev, nil
}

// ArtifactContent returns the single layer of the artifact manifest
// repo@digest (an SBOM, an attestation), at most limit bytes: a longer
// layer is a TooLarge error.
func (s *Service) ArtifactContent(ctx context.Context, repoName, digest string, limit int64) ([]byte, error) {
	if _, ok := ParseDigest(digest); !ok {
		return nil, apperr.InvalidField("digest", "invalid digest %q", digest)
	}
	repo, err := s.Repository(ctx, repoName)
	if err != nil {
		return nil, err
	}
	m, err := s.lookupManifest(ctx, repo.ID, digest)
	if apperr.Is(err, apperr.NotFound) {
		return nil, apperr.E(apperr.NotFound, "%s has no manifest %s", repoName, digest)
	}
	if err != nil {
		return nil, err
	}
	body, err := s.manifestContent(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	var man Manifest
	if err := json.Unmarshal(body, &man); err != nil || len(man.Layers) != 1 {
		return nil, apperr.E(apperr.Invalid, "%s@%s is not an artifact with one layer", repoName, digest)
	}
	l := man.Layers[0]
	if l.Size > limit {
		return nil, apperr.E(apperr.TooLarge, "the artifact %s@%s is %d bytes, over the limit of %d", repoName, digest, l.Size, limit)
	}
	d, ok := ParseDigest(l.Digest)
	if !ok {
		return nil, apperr.E(apperr.Invalid, "%s@%s names an invalid layer digest", repoName, digest)
	}
	rc, err := s.content.open(ctx, d, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit || digestOf(d.Algorithm(), b) != d {
		return nil, apperr.E(apperr.Invalid, "the layer of %s@%s does not match its digest", repoName, digest)
	}
	return b, nil
}
