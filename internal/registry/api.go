package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// RepositoryJSON is a repository on the wire.
type RepositoryJSON struct {
	Name          string        `json:"name"`
	Project       int64         `json:"project_id,omitempty"`
	Public        bool          `json:"public"`
	ImmutableTags bool          `json:"immutable_tags"`
	Quarantine    bool          `json:"quarantine"`
	Retention     RetentionJSON `json:"retention"`
	Upstream      string        `json:"upstream,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
}

// RetentionJSON is a repository's retention rules on the wire.
type RetentionJSON struct {
	KeepLast   int64 `json:"keep_last"`
	KeepSigned bool  `json:"keep_signed"`
	MaxAgeDays int64 `json:"max_age_days"`
}

// RepositoryDetail is a repository with its tags and images.
type RepositoryDetail struct {
	RepositoryJSON
	Tags      []TagJSON      `json:"tags"`
	Manifests []ManifestJSON `json:"manifests"`
}

// TagJSON is a tag on the wire.
type TagJSON struct {
	Name      string    `json:"name"`
	Digest    string    `json:"digest"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ManifestJSON is a manifest on the wire.
type ManifestJSON struct {
	Digest       string    `json:"digest"`
	MediaType    string    `json:"media_type"`
	ArtifactType string    `json:"artifact_type,omitempty"`
	Size         int64     `json:"size"`
	Subject      string    `json:"subject,omitempty"`
	Image        bool      `json:"image"`
	ScanStatus   string    `json:"scan_status,omitempty"`
	ScanReason   string    `json:"scan_reason,omitempty"`
	Summary      *Summary  `json:"summary,omitempty"`
	ScannedAt    time.Time `json:"scanned_at,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
}

// ConfigureRequest changes a repository's settings; absent fields stay.
type ConfigureRequest struct {
	Public        *bool          `json:"public,omitempty"`
	ImmutableTags *bool          `json:"immutable_tags,omitempty"`
	Quarantine    *bool          `json:"quarantine,omitempty"`
	Retention     *RetentionJSON `json:"retention,omitempty"`
	Upstream      *string        `json:"upstream,omitempty"`
}

// SignRequest names the image to sign.
type SignRequest struct {
	Digest string `json:"digest"`
}

// QuotaRequest sets a project's (or, with an empty project, the org's own
// repositories') storage quota; 0 removes it.
type QuotaRequest struct {
	Project  string `json:"project"`
	MaxBytes int64  `json:"max_bytes"`
}

// Routes are the registry's management API, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const p = httpapi.Prefix + "/orgs/{org}/registry"
	return []httpapi.Route{
		{Method: "GET", Path: p + "/repositories", Tag: "registry", Summary: "List the org's container repositories",
			Action: authz.RegistryRead, On: httpapi.OnOrg, Response: []RepositoryJSON{}, Handler: s.apiList},
		{Method: "GET", Path: p + "/repositories/{repo}", Tag: "registry", Summary: "Show a repository (NAME or PROJECT%2FNAME) with its tags, images and scan results",
			Action: authz.RegistryRead, On: httpapi.OnOrg, Response: RepositoryDetail{}, Handler: s.apiGet},
		{Method: "PUT", Path: p + "/repositories/{repo}", Tag: "registry", Summary: "Create a repository or change its settings: public, immutable tags, quarantine, retention, pull-through upstream",
			Action: authz.RegistryAdmin, On: httpapi.OnOrg, Request: ConfigureRequest{}, Response: RepositoryJSON{}, Handler: s.apiConfigure},
		{Method: "POST", Path: p + "/repositories/{repo}/retention", Tag: "registry", Summary: "Apply the repository's retention rules now",
			Action: authz.RegistryAdmin, On: httpapi.OnOrg, Response: RetentionResult{}, Handler: s.apiRetention},
		{Method: "POST", Path: p + "/repositories/{repo}/signatures", Tag: "registry", Summary: "Sign an image digest with Rampart's key (cosign format)",
			Action: authz.RegistrySign, On: httpapi.OnOrg, Request: SignRequest{}, Response: Verification{}, Status: http.StatusCreated, Handler: s.apiSign},
		{Method: "GET", Path: p + "/repositories/{repo}/manifests/{digest}/verification", Tag: "registry", Summary: "Verify an image's signatures and show its scan status (for policy gates)",
			Action: authz.RegistryRead, On: httpapi.OnOrg, Response: Verification{}, Handler: s.apiVerify},
		{Method: "GET", Path: p + "/repositories/{repo}/manifests/{digest}/report", Tag: "registry", Summary: "The scan report of an image (scan/report JSON)",
			Action: authz.RegistryRead, On: httpapi.OnOrg, Handler: s.apiReport},
		{Method: "GET", Path: p + "/repositories/{repo}/manifests/{digest}/sbom", Tag: "registry", Summary: "The CycloneDX SBOM of an image's packages, from its scan",
			Action: authz.RegistryRead, On: httpapi.OnOrg, Handler: s.apiSBOM},
		{Method: "GET", Path: p + "/quota", Tag: "registry", Summary: "Show a project's storage quota and use (?project=NAME; none for the org's own repositories)",
			Action: authz.RegistryRead, On: httpapi.OnOrg, Response: Quota{}, Handler: s.apiGetQuota},
		{Method: "PUT", Path: p + "/quota", Tag: "registry", Summary: "Set a project's storage quota (owners)",
			Action: authz.RegistryQuota, On: httpapi.OnOrg, Request: QuotaRequest{}, Response: Quota{}, Handler: s.apiSetQuota},
		{Method: "GET", Path: httpapi.Prefix + "/registry/signing-key", Tag: "registry", Summary: "The public key image signatures verify with (PEM), for cosign verify --key",
			Action: authz.Public, Handler: s.apiKey},
		{Method: "POST", Path: httpapi.Prefix + "/registry/gc", Tag: "registry", Summary: "Collect unreferenced blobs now (site administrators)",
			Action: authz.RegistryGC, Response: GCResult{}, Handler: s.apiGC},
	}
}

func repoJSON(r Repository) RepositoryJSON {
	return RepositoryJSON{Name: r.Name, Project: r.ProjectID, Public: r.Public, ImmutableTags: r.ImmutableTags, Quarantine: r.Quarantine,
		Retention: RetentionJSON{KeepLast: r.Retention.KeepLast, KeepSigned: r.Retention.KeepSigned, MaxAgeDays: r.Retention.MaxAgeDays},
		Upstream:  r.Upstream, CreatedAt: r.CreatedAt}
}

// apiRepo loads the repository named by {org}/{repo}.
func (s *Service) apiRepo(c *httpapi.Call) (Repository, error) {
	name := c.Org.Name + "/" + c.R.PathValue("repo")
	if !validName(name) {
		return Repository{}, apperr.InvalidField("repo", "invalid repository name %q", name)
	}
	r, err := s.Repository(c.R.Context(), name)
	if err == nil && r.OrgID != c.Org.ID {
		return r, apperr.E(apperr.NotFound, "repository %s not found", name)
	}
	return r, err
}

func (s *Service) apiList(c *httpapi.Call) error {
	rs, err := s.Repositories(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	out := make([]RepositoryJSON, len(rs))
	for i, r := range rs {
		out[i] = repoJSON(r)
	}
	return c.JSON(out)
}

func (s *Service) apiGet(c *httpapi.Call) error {
	r, err := s.apiRepo(c)
	if err != nil {
		return err
	}
	d, err := s.Detail(c.R.Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

// Detail lists a repository's tags and manifests.
func (s *Service) Detail(ctx contextT, r Repository) (RepositoryDetail, error) {
	d := RepositoryDetail{RepositoryJSON: repoJSON(r), Tags: []TagJSON{}, Manifests: []ManifestJSON{}}
	rows, err := s.db.Query(ctx, `SELECT t.name, m.digest, t.updated_at FROM registry_tags t JOIN registry_manifests m ON m.id = t.manifest_id
		WHERE t.repo_id = ? ORDER BY t.name LIMIT 1000`, r.ID)
	if err != nil {
		return d, err
	}
	for rows.Next() {
		var t TagJSON
		if err := rows.Scan(&t.Name, &t.Digest, storeTime(&t.UpdatedAt)); err != nil {
			rows.Close()
			return d, err
		}
		d.Tags = append(d.Tags, t)
	}
	rows.Close()
	rows, err = s.db.Query(ctx, selectManifest+" WHERE repo_id = ? ORDER BY id DESC LIMIT 1000", r.ID)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return d, err
		}
		d.Manifests = append(d.Manifests, manifestJSON(m))
	}
	return d, rows.Err()
}

func manifestJSON(m ManifestInfo) ManifestJSON {
	j := ManifestJSON{Digest: m.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType, Size: m.Size, Subject: m.Subject,
		Image: m.IsImage, ScanStatus: m.ScanStatus, ScanReason: m.ScanReason, ScannedAt: m.ScannedAt, CreatedAt: m.CreatedAt}
	if m.ScanSummary != "" {
		var sum Summary
		if json.Unmarshal([]byte(m.ScanSummary), &sum) == nil {
			j.Summary = &sum
		}
	}
	return j
}

func (s *Service) apiConfigure(c *httpapi.Call) error {
	var req ConfigureRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	set := RepositorySettings{Public: req.Public, ImmutableTags: req.ImmutableTags, Quarantine: req.Quarantine, Upstream: req.Upstream}
	if req.Retention != nil {
		set.Retention = &Retention{KeepLast: req.Retention.KeepLast, KeepSigned: req.Retention.KeepSigned, MaxAgeDays: req.Retention.MaxAgeDays}
	}
	name := c.Org.Name + "/" + c.R.PathValue("repo")
	r, err := s.Configure(c.R.Context(), name, set)
	if err != nil {
		return err
	}
	return c.JSON(repoJSON(r))
}

func (s *Service) apiRetention(c *httpapi.Call) error {
	r, err := s.apiRepo(c)
	if err != nil {
		return err
	}
	res, err := s.ApplyRetention(c.R.Context(), r.Name)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (s *Service) apiSign(c *httpapi.Call) error {
	var req SignRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	r, err := s.apiRepo(c)
	if err != nil {
		return err
	}
	if err := s.SignImage(c.R.Context(), r.Name, req.Digest, c.P.User.Username); err != nil {
		return err
	}
	v, err := s.VerifyImage(c.R.Context(), r.Name, req.Digest)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Service) apiVerify(c *httpapi.Call) error {
	r, err := s.apiRepo(c)
	if err != nil {
		return err
	}
	v, err := s.VerifyImage(c.R.Context(), r.Name, c.R.PathValue("digest"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Service) apiReport(c *httpapi.Call) error {
	return s.apiAttached(c, ArtifactScanReport, "application/json")
}

func (s *Service) apiSBOM(c *httpapi.Call) error {
	return s.apiAttached(c, ArtifactSBOM, "application/vnd.cyclonedx+json")
}

// apiAttached serves the newest artifact of a type the scanner attached to
// an image.
func (s *Service) apiAttached(c *httpapi.Call, artifactType, contentType string) error {
	r, err := s.apiRepo(c)
	if err != nil {
		return err
	}
	b, err := s.attached(c.R.Context(), r, c.R.PathValue("digest"), artifactType)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", contentType)
	c.W.Header().Set("Cache-Control", "no-store")
	_, err = c.W.Write(b)
	return err
}

// Report returns the newest scan report attached to an image.
func (s *Service) Report(ctx contextT, r Repository, digest string) ([]byte, error) {
	return s.attached(ctx, r, digest, ArtifactScanReport)
}

// SBOM returns the newest CycloneDX SBOM the scanner attached to an image.
func (s *Service) SBOM(ctx contextT, r Repository, digest string) ([]byte, error) {
	return s.attached(ctx, r, digest, ArtifactSBOM)
}

// attached returns the single layer of the newest referrer of an image
// with the given artifact type.
func (s *Service) attached(ctx contextT, r Repository, digest, artifactType string) ([]byte, error) {
	if _, ok := ParseDigest(digest); !ok {
		return nil, apperr.InvalidField("digest", "invalid digest %q", digest)
	}
	refs, err := s.referrersOf(ctx, r.ID, digest)
	if err != nil {
		return nil, err
	}
	for i := len(refs) - 1; i >= 0; i-- {
		if refs[i].ArtifactType != artifactType {
			continue
		}
		body, err := s.manifestContent(ctx, refs[i].ID)
		if err != nil {
			return nil, err
		}
		var m Manifest
		if err := json.Unmarshal(body, &m); err != nil || len(m.Layers) != 1 {
			continue
		}
		d, ok := ParseDigest(m.Layers[0].Digest)
		if !ok {
			continue
		}
		rc, err := s.content.open(ctx, d, 0)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, 64<<20))
	}
	what := "scan report"
	if artifactType == ArtifactSBOM {
		what = "SBOM"
	}
	return nil, apperr.E(apperr.NotFound, "%s@%s has no %s yet", r.Name, digest, what)
}

// apiProject resolves the optional project of a quota call.
func (s *Service) apiProject(c *httpapi.Call, name string) (int64, error) {
	if name == "" {
		return 0, nil
	}
	p, err := c.IDs().Project(c.R.Context(), c.Org.ID, name)
	if err != nil {
		return 0, err
	}
	return p.ID, nil
}

func (s *Service) apiGetQuota(c *httpapi.Call) error {
	pid, err := s.apiProject(c, c.R.URL.Query().Get("project"))
	if err != nil {
		return err
	}
	q, err := s.GetQuota(c.R.Context(), c.Org.ID, pid)
	if err != nil {
		return err
	}
	return c.JSON(q)
}

func (s *Service) apiSetQuota(c *httpapi.Call) error {
	var req QuotaRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	pid, err := s.apiProject(c, req.Project)
	if err != nil {
		return err
	}
	if err := s.SetQuota(c.R.Context(), c.Org.ID, pid, req.MaxBytes); err != nil {
		return err
	}
	q, err := s.GetQuota(c.R.Context(), c.Org.ID, pid)
	if err != nil {
		return err
	}
	return c.JSON(q)
}

func (s *Service) apiKey(c *httpapi.Call) error {
	c.W.Header().Set("Content-Type", "application/x-pem-file")
	_, err := c.W.Write(s.PublicKeyPEM())
	return err
}

func (s *Service) apiGC(c *httpapi.Call) error {
	res, err := s.CollectGarbage(c.R.Context())
	if err != nil {
		return err
	}
	return c.JSON(res)
}
