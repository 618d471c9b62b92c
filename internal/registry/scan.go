package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/sbom"
	"github.com/rampartsec/rampart/internal/scan/source"
	"github.com/rampartsec/rampart/internal/store"
)

// ImageScanner scans an image's contents; *scan.Scanner implements it.
type ImageScanner interface {
	ScanImage(ctx context.Context, target string, img *source.ImageSource, o scan.Options) (*report.Report, error)
}

// ImageFacts are what a policy decides on.
type ImageFacts struct {
	Repository string
	Digest     string
	Report     *report.Report
}

// Verdict is a policy's decision about an image.
type Verdict struct {
	Allow bool
	// Reason says why an image is quarantined; it is shown to whoever
	// tries to pull it.
	Reason string
}

// Policy decides, after a scan, whether an image may be pulled. The policy
// component's image gate replaces DefaultPolicy through Deps.Policy.
type Policy interface {
	Evaluate(ctx context.Context, f ImageFacts) (Verdict, error)
}

// DefaultPolicy quarantines an image with a secret in a layer or a
// critical vulnerability that has a fix.
type DefaultPolicy struct{}

// Evaluate implements Policy.
func (DefaultPolicy) Evaluate(_ context.Context, f ImageFacts) (Verdict, error) {
	for _, x := range f.Report.Findings {
		if x.Suppressed != nil {
			continue
		}
		switch {
		case x.Kind == report.KindSecret:
			where := x.Location.Path
			if x.Location.Layer != "" {
				where += " (layer " + x.Location.Layer + ")"
			}
			return Verdict{Reason: fmt.Sprintf("a secret (%s) is in %s", x.RuleID, where)}, nil
		case x.Kind == report.KindVulnerability && x.Severity >= report.SeverityCritical && x.Vuln != nil && x.Vuln.FixedVersion != "":
			return Verdict{Reason: fmt.Sprintf("critical vulnerability %s in %s %s, fixed in %s", x.RuleID, x.Vuln.Package.Name,
				x.Vuln.Package.Version, x.Vuln.FixedVersion)}, nil
		}
	}
	return Verdict{Allow: true}, nil
}

// AdvisoryVersion tells the registry when the advisory database changed,
// so that images are scanned again.
type AdvisoryVersion interface {
	Version(ctx context.Context) (string, error)
}

// AdvisoryDBVersion adapts an advisory database: its version is when data
// last arrived and how much there is.
type AdvisoryDBVersion struct{ DB *advisory.DB }

// Version implements AdvisoryVersion.
func (a AdvisoryDBVersion) Version(ctx context.Context) (string, error) {
	st, err := a.DB.Status(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d/%d/%d/%d", st.Advisories, st.LastImport.UnixMicro(), st.LastUpdate.UnixMicro(), st.NewestModified.UnixMicro()), nil
}

// Artifact types of what the scanner attaches to images.
const (
	ArtifactScanReport = "application/vnd.rampart.scan.report.v1+json"
	ArtifactSBOM       = "application/vnd.cyclonedx+json"
	mediaRampartConfig = "application/vnd.rampart.artifact.config.v1+json"
)

func enqueueScan(ctx context.Context, tx *store.Tx, manifestID int64, reason string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO registry_scan_queue (manifest_id, reason, enqueued_at) VALUES (?, ?, ?)
		ON CONFLICT (manifest_id) DO NOTHING`, manifestID, reason, store.Time(now))
	return err
}

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Summary is what the UI and API show of a scan.
type Summary struct {
	Critical, High, Medium, Low, Other int
	Secrets, Vulnerabilities           int
	Packages                           int
	Report                             string `json:",omitempty"` // digest of the report artifact
	SBOM                               string `json:",omitempty"`
}

// Run scans queued images until ctx ends, and queues every image again
// when the advisory database changes. Several replicas may run it: jobs
// are leased.
func (s *Service) Run(ctx context.Context) error {
	if s.scanner == nil {
		<-ctx.Done()
		return nil
	}
	ctx = reqinfo.WithActor(ctx, 0, "registry-scanner")
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var lastCheck time.Time
	for {
		if s.now().Sub(lastCheck) > time.Minute {
			lastCheck = s.now()
			if err := s.queueRescans(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "queue rescans", "err", err)
			}
		}
		for {
			did, err := s.scanNext(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "scan worker", "err", err)
			}
			if !did || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// queueRescans queues every image scanned against another version of the
// advisory database.
func (s *Service) queueRescans(ctx context.Context) error {
	if s.advisories == nil {
		return nil
	}
	v, err := s.advisories.Version(ctx)
	if err != nil {
		return err
	}
	n, err := s.db.Exec(ctx, `INSERT INTO registry_scan_queue (manifest_id, reason, enqueued_at)
		SELECT id, 'advisories', ? FROM registry_manifests WHERE is_image AND scan_status <> ? AND advisories <> ?
		ON CONFLICT (manifest_id) DO NOTHING`, store.Time(s.now()), ScanPending, v)
	if err == nil && n > 0 {
		s.log.InfoContext(ctx, "advisory database changed: images queued for a rescan", "count", n)
	}
	return err
}

// ScanPending reports how many images wait for the scanner.
func (s *Service) QueueLength(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM registry_scan_queue").Scan(&n)
	return n, err
}

const scanLease = 15 * time.Minute

// scanNext claims one queued image and scans it.
func (s *Service) scanNext(ctx context.Context) (did bool, err error) {
	now := s.now()
	var id, attempts int64
	var reason string
	err = s.db.QueryRow(ctx, `UPDATE registry_scan_queue SET lease_until = ?, attempts = attempts + 1
		WHERE manifest_id = (SELECT manifest_id FROM registry_scan_queue WHERE lease_until < ? ORDER BY enqueued_at, manifest_id LIMIT 1)
		AND lease_until < ? RETURNING manifest_id, attempts, reason`,
		now.Add(scanLease).UnixMicro(), now.UnixMicro(), now.UnixMicro()).Scan(&id, &attempts, &reason)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "panic in scan", "err", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = s.finishScan(ctx, id, ScanFailed, "the scanner crashed on this image", nil, "")
		}
	}()
	return true, s.scanOne(ctx, id, attempts)
}

func (s *Service) scanOne(ctx context.Context, id, attempts int64) error {
	m, err := scanManifest(s.db.QueryRow(ctx, selectManifest+" WHERE id = ?", id))
	if apperr.Is(err, apperr.NotFound) {
		return nil // deleted meanwhile; the queue row went with it
	}
	if err != nil {
		return err
	}
	repo, err := scanRepo(s.db.QueryRow(ctx, selectRepo+" WHERE id = ?", m.RepoID))
	if err != nil {
		return err
	}
	version := ""
	if s.advisories != nil {
		if version, err = s.advisories.Version(ctx); err != nil {
			return err
		}
	}
	body, err := s.manifestContent(ctx, id)
	if err != nil {
		return err
	}
	ref := repo.Name + "@" + m.Digest
	img, err := partial.CompressedToImage(&storedImage{s: s, ctx: ctx, manifest: body, mediaType: m.MediaType})
	var rep *report.Report
	if err == nil {
		var src *source.ImageSource
		if src, err = source.FromImage(img, source.ImageOptions{}); err == nil {
			rep, err = s.scanner.ScanImage(ctx, ref, src, scan.Options{Kinds: scan.Kinds{Secrets: true, Deps: true}, Now: s.now})
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempts < 3 && apperr.KindOf(err) == apperr.Unavailable {
			return nil // the lease expires and another attempt follows
		}
		s.log.WarnContext(ctx, "image scan failed", "repository", repo.Name, "digest", m.Digest, "err", err)
		return s.finishScan(ctx, id, ScanFailed, "the image could not be read: "+apperr.Message(err), nil, version)
	}
	v, err := s.policy.Evaluate(ctx, ImageFacts{Repository: repo.Name, Digest: m.Digest, Report: rep})
	if err != nil {
		return err
	}
	sum := summarize(rep)
	t := target{name: repo.Name, repo: &repo}
	subject := Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
	rj, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if sum.Report, err = s.attach(ctx, t, subject, ArtifactScanReport, "application/json", rj,
		map[string]string{"org.opencontainers.image.created": s.now().UTC().Format(time.RFC3339), "dev.rampart.scan.status": statusOf(v)}); err != nil {
		if errors.Is(err, errSubjectGone) {
			return nil
		}
		return fmt.Errorf("attach scan report: %w", err)
	}
	var sb bytes.Buffer
	if err := sbom.CycloneDX(&sb, rep, sbom.Options{Name: repo.Name, Version: m.Digest}); err == nil {
		if sum.SBOM, err = s.attach(ctx, t, subject, ArtifactSBOM, "application/vnd.cyclonedx+json", sb.Bytes(),
			map[string]string{"org.opencontainers.image.created": s.now().UTC().Format(time.RFC3339)}); err != nil {
			if errors.Is(err, errSubjectGone) {
				return nil
			}
			return fmt.Errorf("attach SBOM: %w", err)
		}
	}
	status := ScanPassed
	if !v.Allow {
		status = ScanQuarantined
	}
	return s.finishScan(ctx, id, status, v.Reason, &sum, version)
}

func statusOf(v Verdict) string {
	if v.Allow {
		return ScanPassed
	}
	return ScanQuarantined
}

func summarize(r *report.Report) Summary {
	var s Summary
	s.Packages = len(r.Packages)
	for _, f := range r.Findings {
		if f.Suppressed != nil {
			continue
		}
		switch f.Severity {
		case report.SeverityCritical:
			s.Critical++
		case report.SeverityHigh:
			s.High++
		case report.SeverityMedium:
			s.Medium++
		case report.SeverityLow:
			s.Low++
		default:
			s.Other++
		}
		switch f.Kind {
		case report.KindSecret:
			s.Secrets++
		case report.KindVulnerability:
			s.Vulnerabilities++
		}
	}
	return s
}

// finishScan records the outcome and removes the job, in one transaction.
func (s *Service) finishScan(ctx context.Context, id int64, status, reason string, sum *Summary, version string) error {
	sj := ""
	if sum != nil {
		b, _ := json.Marshal(sum)
		sj = string(b)
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		m, err := scanManifest(tx.QueryRow(ctx, selectManifest+" WHERE id = ?", id))
		if apperr.Is(err, apperr.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE registry_manifests SET scan_status = ?, scan_reason = ?, scan_summary = ?, scanned_at = ?,
			advisories = ? WHERE id = ?`, status, reason, sj, store.Time(s.now()), version, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM registry_scan_queue WHERE manifest_id = ?", id); err != nil {
			return err
		}
		repo, err := scanRepo(tx.QueryRow(ctx, selectRepo+" WHERE id = ?", m.RepoID))
		if err != nil {
			return err
		}
		details := map[string]any{"digest": m.Digest, "status": status}
		if reason != "" {
			details["reason"] = reason
		}
		if sum != nil {
			details["critical"], details["high"], details["secrets"] = sum.Critical, sum.High, sum.Secrets
		}
		rec := auditRecord("registry.image.scan", repo.Name, repo.OrgID, details)
		if status != ScanPassed {
			rec.Outcome = audit.Failure
		}
		return s.audit.AppendTx(ctx, tx, rec)
	})
}

// attach stores content as an artifact referring to subject (an OCI 1.1
// referrer) and returns the artifact manifest's digest.
func (s *Service) attach(ctx context.Context, t target, subject Descriptor, artifactType, layerType string, content []byte, ann map[string]string) (string, error) {
	// A config of our own (not the shared empty JSON blob), so that the
	// artifacts Rampart attaches never hold a blob users push themselves.
	empty := []byte(`{"created_by":"rampart"}`)
	cfg, err := s.putInternalBlob(ctx, t, empty)
	if err != nil {
		return "", err
	}
	layer, err := s.putInternalBlob(ctx, t, content)
	if err != nil {
		return "", err
	}
	m := Manifest{SchemaVersion: 2, MediaType: MediaOCIManifest, ArtifactType: artifactType,
		Config:  &Descriptor{MediaType: mediaRampartConfig, Digest: string(cfg), Size: int64(len(empty))},
		Layers:  []Descriptor{{MediaType: layerType, Digest: string(layer), Size: int64(len(content))}},
		Subject: &subject, Annotations: ann}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	d := digestOf(SHA256, body)
	if _, err := s.storeManifestFor(ctx, t, d, MediaOCIManifest, body, &m, "", true); err != nil {
		return "", err
	}
	return string(d), nil
}

// putInternalBlob stores and links content the registry produced itself.
func (s *Service) putInternalBlob(ctx context.Context, t target, content []byte) (Digest, error) {
	d := digestOf(SHA256, content)
	ok, err := s.blobExists(ctx, d)
	if err != nil {
		return "", err
	}
	if !ok {
		if err := s.content.putBlob(ctx, newUploadID(), d, content); err != nil {
			return "", err
		}
	}
	return d, s.link(ctx, t, d, int64(len(content)))
}

// storedImage is an image in the registry's storage, for the scanner.
type storedImage struct {
	s         *Service
	ctx       context.Context
	manifest  []byte
	mediaType string
	parsed    *v1.Manifest
}

var _ partial.CompressedImageCore = (*storedImage)(nil)

func (i *storedImage) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *storedImage) MediaType() (types.MediaType, error) { return types.MediaType(i.mediaType), nil }

func (i *storedImage) m() (*v1.Manifest, error) {
	if i.parsed == nil {
		m, err := v1.ParseManifest(bytes.NewReader(i.manifest))
		if err != nil {
			return nil, err
		}
		i.parsed = m
	}
	return i.parsed, nil
}

func (i *storedImage) RawConfigFile() ([]byte, error) {
	m, err := i.m()
	if err != nil {
		return nil, err
	}
	if m.Config.Size > 16<<20 {
		return nil, apperr.E(apperr.Invalid, "image config of %d bytes is too large", m.Config.Size)
	}
	rc, err := i.s.content.open(i.ctx, Digest(m.Config.Digest.String()), 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 16<<20))
}

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := i.m()
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return &storedLayer{img: i, desc: l}, nil
		}
	}
	if m.Config.Digest == h {
		return &storedLayer{img: i, desc: m.Config}, nil
	}
	return nil, fmt.Errorf("layer %s is not in the manifest", h)
}

type storedLayer struct {
	img  *storedImage
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	return l.img.s.content.open(l.img.ctx, Digest(l.desc.Digest.String()), 0)
}
