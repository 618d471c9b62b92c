package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rampartsec/rampart/internal/apperr"
)

// validUpstream checks a pull-through cache's upstream: an http(s) URL of
// a repository, without credentials, query or fragment.
func validUpstream(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" ||
		u.Fragment != "" || strings.Trim(u.Path, "/") == "" {
		return apperr.InvalidField("upstream", "upstream must be http(s)://HOST/REPOSITORY")
	}
	if _, err := upstreamRepo(raw); err != nil {
		return apperr.InvalidField("upstream", "upstream repository: %v", err)
	}
	return nil
}

func upstreamRepo(raw string) (name.Repository, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return name.Repository{}, err
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(u.Host+"/"+strings.Trim(u.Path, "/"), opts...)
}

func (s *Service) remoteOpts(ctx context.Context) []remote.Option {
	tr := s.upstream.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr)}
}

// proxyManifest fetches a manifest (and every blob and child manifest it
// needs) from the upstream of a pull-through cache, stores it, and
// returns it. Images fetched this way are scanned like pushed ones.
func (s *Service) proxyManifest(ctx context.Context, t target, ref string) (ManifestInfo, error) {
	if err := s.fetchUpstream(ctx, t, ref, 0); err != nil {
		return ManifestInfo{}, err
	}
	return s.lookupManifest(ctx, t.repo.ID, ref)
}

func (s *Service) fetchUpstream(ctx context.Context, t target, ref string, depth int) error {
	if depth > 2 {
		return apperr.E(apperr.Invalid, "upstream indexes nest too deeply")
	}
	repo, err := upstreamRepo(t.repo.Upstream)
	if err != nil {
		return err
	}
	var r name.Reference
	if looksLikeDigest(ref) {
		r = repo.Digest(ref)
	} else {
		r = repo.Tag(ref)
	}
	desc, err := remote.Get(r, s.remoteOpts(ctx)...)
	if err != nil {
		s.log.InfoContext(ctx, "pull-through: upstream manifest unavailable", "repository", t.name, "ref", ref, "err", err)
		return apperr.Wrap(err, apperr.NotFound, "not found upstream")
	}
	if int64(len(desc.Manifest)) > s.maxMan {
		return apperr.E(apperr.TooLarge, "upstream manifest is too large")
	}
	m, mt, err := parseManifest(desc.Manifest, string(desc.MediaType))
	if err != nil {
		return apperr.E(apperr.Invalid, "upstream manifest: %v", err)
	}
	d := Digest(desc.Digest.String())
	if digestOf(d.Algorithm(), desc.Manifest) != d {
		return apperr.E(apperr.Invalid, "upstream manifest does not match its digest")
	}
	var blobs []Descriptor
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, l := range m.Layers {
		if !nonDistributable(l) {
			blobs = append(blobs, l)
		}
	}
	for _, b := range blobs {
		if _, err := s.fetchBlob(ctx, t, Digest(b.Digest)); err != nil {
			return err
		}
	}
	for _, c := range m.Manifests {
		if _, err := s.lookupManifest(ctx, t.repo.ID, c.Digest); err == nil {
			continue
		}
		if err := s.fetchUpstream(ctx, t, c.Digest, depth+1); err != nil {
			return err
		}
	}
	tag := ""
	if !looksLikeDigest(ref) {
		tag = ref
	}
	_, err = s.storeManifest(ctx, t, d, mt, desc.Manifest, m, tag)
	return err
}

// proxyBlob fetches a blob a pull-through cache does not hold yet.
func (s *Service) proxyBlob(ctx context.Context, repo *Repository, d Digest) (int64, error) {
	return s.fetchBlob(ctx, target{name: repo.Name, repo: repo}, d)
}

// fetchBlob copies one blob from upstream, verifying its digest, unless
// it is already linked.
func (s *Service) fetchBlob(ctx context.Context, t target, d Digest) (int64, error) {
	if size, err := s.blobSize(ctx, s.db, t.repo.ID, d); err == nil {
		return size, nil
	}
	repo, err := upstreamRepo(t.repo.Upstream)
	if err != nil {
		return 0, err
	}
	l, err := remote.Layer(repo.Digest(string(d)), s.remoteOpts(ctx)...)
	if err != nil {
		return 0, apperr.Wrap(err, apperr.NotFound, "blob not found upstream")
	}
	rc, err := l.Compressed()
	if err != nil {
		return 0, apperr.Wrap(err, apperr.NotFound, "blob not found upstream")
	}
	defer rc.Close()
	u := &upload{ID: newUploadID(), RepoID: t.repo.ID}
	if _, err := s.db.Exec(ctx, "INSERT INTO registry_uploads (id, repo_id, size, started_at, updated_at) VALUES (?, ?, 0, ?, ?)",
		u.ID, u.RepoID, s.now().UnixMicro(), s.now().UnixMicro()); err != nil {
		return 0, err
	}
	if err := s.content.d.PutContent(ctx, uploadPath(u.ID), nil); err != nil {
		s.cancelUpload(ctx, u.ID)
		return 0, err
	}
	if err := s.appendUpload(ctx, u, rc, -1, d.Algorithm()); err != nil {
		s.cancelUpload(ctx, u.ID)
		return 0, err
	}
	if err := s.verifyUpload(ctx, u, d); err != nil {
		s.cancelUpload(ctx, u.ID)
		return 0, fmt.Errorf("upstream blob %s: %w", d, err)
	}
	if err := s.content.commitUpload(ctx, u.ID, d); err != nil {
		return 0, err
	}
	if _, err := s.db.Exec(ctx, "DELETE FROM registry_uploads WHERE id = ?", u.ID); err != nil {
		return 0, err
	}
	return u.Size, s.link(ctx, t, d, u.Size)
}

var _ io.Reader
