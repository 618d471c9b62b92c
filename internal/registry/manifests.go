package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// Scan states of an image manifest.
const (
	ScanPending     = "pending"     // queued, not scanned yet: quarantined
	ScanPassed      = "passed"      // scanned, policy allows pulls
	ScanQuarantined = "quarantined" // scanned, policy denies pulls
	ScanFailed      = "failed"      // the scanner could not read the image
)

// ManifestInfo is a stored manifest without its content.
type ManifestInfo struct {
	ID           int64
	RepoID       int64
	Digest       string
	MediaType    string
	ArtifactType string
	Size         int64
	Subject      string
	Annotations  map[string]string
	IsImage      bool
	ScanStatus   string
	ScanReason   string
	ScanSummary  string
	ScannedAt    time.Time
	CreatedAt    time.Time
}

const selectManifest = `SELECT id, repo_id, digest, media_type, artifact_type, size, subject, annotations, is_image,
	scan_status, scan_reason, scan_summary, scanned_at, created_at FROM registry_manifests`

func scanManifest(r interface{ Scan(...any) error }) (ManifestInfo, error) {
	var m ManifestInfo
	var ann string
	err := r.Scan(&m.ID, &m.RepoID, &m.Digest, &m.MediaType, &m.ArtifactType, &m.Size, &m.Subject, &ann, &m.IsImage,
		&m.ScanStatus, &m.ScanReason, &m.ScanSummary, store.TimeDest(&m.ScannedAt), store.TimeDest(&m.CreatedAt))
	if err == nil && ann != "" {
		_ = json.Unmarshal([]byte(ann), &m.Annotations)
	}
	return m, err
}

// lookupManifest finds a manifest by digest or tag.
func (s *Service) lookupManifest(ctx context.Context, repoID int64, ref string) (ManifestInfo, error) {
	if looksLikeDigest(ref) {
		if _, ok := ParseDigest(ref); !ok {
			return ManifestInfo{}, errDigestInvalid("invalid or unsupported digest %q", ref)
		}
		return scanManifest(s.db.QueryRow(ctx, selectManifest+" WHERE repo_id = ? AND digest = ?", repoID, ref))
	}
	if !validTag(ref) {
		return ManifestInfo{}, oci(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", ref)
	}
	return scanManifest(s.db.QueryRow(ctx, `SELECT m.id, m.repo_id, m.digest, m.media_type, m.artifact_type, m.size, m.subject,
		m.annotations, m.is_image, m.scan_status, m.scan_reason, m.scan_summary, m.scanned_at, m.created_at
		FROM registry_tags t JOIN registry_manifests m ON m.id = t.manifest_id WHERE t.repo_id = ? AND t.name = ?`, repoID, ref))
}

func (s *Service) manifestContent(ctx context.Context, id int64) ([]byte, error) {
	var b []byte
	err := s.db.QueryRow(ctx, "SELECT content FROM registry_manifests WHERE id = ?", id).Scan(&b)
	return b, err
}

func (h *call) manifest() error {
	switch h.r.Method {
	case http.MethodPut:
		return h.putManifest()
	case http.MethodDelete:
		return h.deleteManifest()
	}
	ctx := h.r.Context()
	if h.t.repo == nil {
		return errManifestUnknown(h.ref)
	}
	m, err := h.s.lookupManifest(ctx, h.t.repo.ID, h.ref)
	if apperr.Is(err, apperr.NotFound) && h.t.repo.Upstream != "" {
		m, err = h.s.proxyManifest(ctx, h.t, h.ref)
	}
	if apperr.Is(err, apperr.NotFound) {
		return errManifestUnknown(h.ref)
	}
	if err != nil {
		return err
	}
	if h.r.Method == http.MethodGet {
		if err := h.s.quarantined(h.t.repo, m); err != nil {
			return err
		}
	}
	hd := h.w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Docker-Content-Digest", m.Digest)
	hd.Set("ETag", `"`+m.Digest+`"`)
	hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	if h.r.Method == http.MethodHead {
		h.w.WriteHeader(http.StatusOK)
		return nil
	}
	body, err := h.s.manifestContent(ctx, m.ID)
	if err != nil {
		return err
	}
	h.w.WriteHeader(http.StatusOK)
	_, _ = h.w.Write(body)
	return nil
}

// quarantined refuses pulls of an image that is not yet scanned or that
// the policy rejected, saying why.
func (s *Service) quarantined(repo *Repository, m ManifestInfo) error {
	if !repo.Quarantine || !m.IsImage {
		return nil
	}
	switch m.ScanStatus {
	case ScanPassed:
		return nil
	case ScanPending:
		return errDenied("image %s@%s is quarantined until it has been scanned; try again shortly", repo.Name, m.Digest)
	case ScanFailed:
		return errDenied("image %s@%s is quarantined: the scan failed: %s", repo.Name, m.Digest, m.ScanReason)
	}
	return errDenied("image %s@%s is quarantined: %s", repo.Name, m.Digest, m.ScanReason)
}

func (h *call) putManifest() error {
	ctx := h.r.Context()
	body, err := io.ReadAll(io.LimitReader(h.r.Body, h.s.maxMan+1))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if int64(len(body)) > h.s.maxMan {
		return oci(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest exceeds %d bytes", h.s.maxMan)
	}
	var d Digest
	tag := ""
	if looksLikeDigest(h.ref) {
		want, ok := ParseDigest(h.ref)
		if !ok {
			return errDigestInvalid("invalid or unsupported digest %q", h.ref)
		}
		if d = digestOf(want.Algorithm(), body); d != want {
			return errDigestInvalid("manifest content does not match digest %s", want)
		}
	} else {
		if !validTag(h.ref) {
			return oci(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", h.ref)
		}
		tag, d = h.ref, digestOf(SHA256, body)
	}
	m, mt, err := parseManifest(body, h.r.Header.Get("Content-Type"))
	if err != nil {
		return oci(http.StatusBadRequest, codeManifestInvalid, "%v", err)
	}
	if err := h.s.ensureRepo(ctx, &h.t); err != nil {
		return err
	}
	if h.t.repo.Upstream != "" {
		return errDenied("%s is a pull-through cache of %s: it cannot be pushed to", h.t.name, h.t.repo.Upstream)
	}
	if _, err := h.s.storeManifest(ctx, h.t, d, mt, body, m, tag); err != nil {
		return err
	}
	hd := h.w.Header()
	hd.Set("Location", "/v2/"+h.t.name+"/manifests/"+string(d))
	hd.Set("Docker-Content-Digest", string(d))
	if m.Subject != nil {
		hd.Set("OCI-Subject", m.Subject.Digest)
	}
	hd.Set("Content-Length", "0")
	h.w.WriteHeader(http.StatusCreated)
	return nil
}

// storeManifest records a verified manifest (and its tag) in one
// transaction: every blob it needs must be linked into the repository, so
// that garbage collection can never leave it dangling. New images are
// queued for scanning.
func (s *Service) storeManifest(ctx context.Context, t target, d Digest, mt string, body []byte, m *Manifest, tag string) (int64, error) {
	return s.storeManifestFor(ctx, t, d, mt, body, m, tag, false)
}

// errSubjectGone stops attaching an artifact to an image deleted meanwhile.
var errSubjectGone = apperr.E(apperr.NotFound, "the image was deleted")

// storeManifestFor is storeManifest; needSubject (Rampart's own artifacts)
// refuses to store a referrer whose subject is gone.
func (s *Service) storeManifestFor(ctx context.Context, t target, d Digest, mt string, body []byte, m *Manifest, tag string, needSubject bool) (int64, error) {
	repo := t.repo
	var blobs []Descriptor
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, l := range m.Layers {
		if !nonDistributable(l) {
			blobs = append(blobs, l)
		}
	}
	image := scannable(m, mt)
	ann := ""
	if len(m.Annotations) > 0 {
		b, _ := json.Marshal(m.Annotations)
		ann = string(b)
	}
	subject := ""
	if m.Subject != nil {
		subject = m.Subject.Digest
	}
	var id int64
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if needSubject && subject != "" {
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM registry_manifests WHERE repo_id = ? AND digest = ?", repo.ID, subject).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return errSubjectGone
			}
		}
		seen := map[string]bool{}
		for _, b := range blobs {
			if seen[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			size, err := s.blobSize(ctx, tx, repo.ID, Digest(b.Digest))
			if apperr.Is(err, apperr.NotFound) {
				e := oci(http.StatusBadRequest, codeManifestBlobUnknown, "blob %s is not in %s: push it first", b.Digest, t.name)
				e.Detail = map[string]string{"digest": b.Digest}
				return e
			}
			if err != nil {
				return err
			}
			if size != b.Size {
				return oci(http.StatusBadRequest, codeManifestInvalid, "descriptor of %s says %d bytes, the blob has %d", b.Digest, b.Size, size)
			}
		}
		for _, c := range m.Manifests {
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM registry_manifests WHERE repo_id = ? AND digest = ?", repo.ID, c.Digest).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				e := oci(http.StatusBadRequest, codeManifestBlobUnknown, "manifest %s is not in %s: push it first", c.Digest, t.name)
				e.Detail = map[string]string{"digest": c.Digest}
				return e
			}
		}
		existing, err := scanManifest(tx.QueryRow(ctx, selectManifest+" WHERE repo_id = ? AND digest = ?", repo.ID, string(d)))
		created := false
		switch {
		case err == nil:
			id = existing.ID
		case apperr.Is(err, apperr.NotFound):
			status := ""
			if image {
				status = ScanPending
			}
			if err := tx.QueryRow(ctx, `INSERT INTO registry_manifests (repo_id, digest, media_type, artifact_type, size, content,
				subject, annotations, is_image, scan_status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				repo.ID, string(d), mt, artifactTypeOf(m), len(body), body, subject, ann, image, status, store.Time(s.now())).Scan(&id); err != nil {
				return err
			}
			created = true
			for digest := range seen {
				if _, err := tx.Exec(ctx, "INSERT INTO registry_manifest_blobs (manifest_id, repo_id, digest) VALUES (?, ?, ?)",
					id, repo.ID, digest); err != nil {
					return err
				}
			}
			kids := map[string]bool{}
			for _, c := range m.Manifests {
				if kids[c.Digest] {
					continue
				}
				kids[c.Digest] = true
				if _, err := tx.Exec(ctx, "INSERT INTO registry_manifest_children (manifest_id, child) VALUES (?, ?)", id, c.Digest); err != nil {
					return err
				}
			}
			if image {
				if err := enqueueScan(ctx, tx, id, "push", s.now()); err != nil {
					return err
				}
			}
		default:
			return err
		}
		moved := false
		if tag != "" {
			var cur int64
			err := tx.QueryRow(ctx, "SELECT manifest_id FROM registry_tags WHERE repo_id = ? AND name = ?", repo.ID, tag).Scan(&cur)
			switch {
			case err == nil && cur == id:
			case err == nil && repo.ImmutableTags:
				return errDenied("tag %s of %s is immutable: push under a new tag", tag, t.name)
			case err == nil:
				moved = true
				if _, err := tx.Exec(ctx, "UPDATE registry_tags SET manifest_id = ?, updated_at = ? WHERE repo_id = ? AND name = ?",
					id, store.Time(s.now()), repo.ID, tag); err != nil {
					return err
				}
			case apperr.Is(err, apperr.NotFound):
				moved = true
				if _, err := tx.Exec(ctx, "INSERT INTO registry_tags (repo_id, name, manifest_id, updated_at) VALUES (?, ?, ?, ?)",
					repo.ID, tag, id, store.Time(s.now())); err != nil {
					return err
				}
			default:
				return err
			}
		}
		if !created && !moved {
			return nil
		}
		details := map[string]any{"digest": string(d), "media_type": mt}
		if tag != "" {
			details["tag"] = tag
		}
		if subject != "" {
			details["subject"] = subject
		}
		return s.audit.AppendTx(ctx, tx, auditRecord("registry.manifest.push", t.name, repo.OrgID, details))
	})
	if err == nil && image {
		s.nudge()
	}
	return id, err
}

func (h *call) deleteManifest() error {
	ctx := h.r.Context()
	if h.t.repo == nil {
		return errManifestUnknown(h.ref)
	}
	repo := h.t.repo
	isDigest := looksLikeDigest(h.ref)
	m, err := h.s.lookupManifest(ctx, repo.ID, h.ref)
	if apperr.Is(err, apperr.NotFound) {
		return errManifestUnknown(h.ref)
	}
	if err != nil {
		return err
	}
	err = h.s.db.Tx(ctx, func(tx *store.Tx) error {
		if !isDigest {
			if repo.ImmutableTags {
				return errDenied("tag %s of %s is immutable", h.ref, h.t.name)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM registry_tags WHERE repo_id = ? AND name = ?", repo.ID, h.ref); err != nil {
				return err
			}
			return h.s.audit.AppendTx(ctx, tx, auditRecord("registry.tag.delete", h.t.name, repo.OrgID,
				map[string]any{"tag": h.ref, "digest": m.Digest}))
		}
		if repo.ImmutableTags {
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM registry_tags WHERE manifest_id = ?", m.ID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return errDenied("%s@%s carries immutable tags", h.t.name, m.Digest)
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM registry_manifests WHERE id = ?", m.ID); err != nil {
			return err
		}
		if err := deleteOwnArtifacts(ctx, tx, repo.ID, m.Digest); err != nil {
			return err
		}
		return h.s.audit.AppendTx(ctx, tx, auditRecord("registry.manifest.delete", h.t.name, repo.OrgID, map[string]any{"digest": m.Digest}))
	})
	if err != nil {
		return err
	}
	h.w.Header().Set("Content-Length", "0")
	h.w.WriteHeader(http.StatusAccepted)
	return nil
}

// maxTagsPage caps one page of the tag list.
const maxTagsPage = 1000

func (h *call) tags() error {
	ctx := h.r.Context()
	if h.t.repo == nil {
		return errNameUnknown(h.t.name)
	}
	q := h.r.URL.Query()
	n := maxTagsPage
	if v := q.Get("n"); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			return oci(http.StatusBadRequest, codeUnsupported, "n must be a non-negative number")
		}
		n = min(x, maxTagsPage)
	}
	last := q.Get("last")
	rows, err := h.s.db.Query(ctx, "SELECT name FROM registry_tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?",
		h.t.repo.ID, last, n+1)
	if err != nil {
		return err
	}
	tags := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tags = append(tags, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// SQL collations may differ; the spec wants lexical (byte) order.
	sort.Strings(tags)
	if len(tags) > n {
		tags = tags[:n]
		h.w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?n=%d&last=%s>; rel="next"`, h.t.name, n, tags[len(tags)-1]))
	}
	return h.json(http.StatusOK, "application/json", map[string]any{"name": h.t.name, "tags": tags})
}

// referrers serves the OCI 1.1 referrers API: an index of the manifests
// whose subject is the given digest, optionally filtered by artifactType.
func (h *call) referrers() error {
	ctx := h.r.Context()
	d, err := h.digestRef()
	if err != nil {
		return err
	}
	idx := map[string]any{"schemaVersion": 2, "mediaType": MediaOCIIndex}
	list := []Descriptor{}
	at := h.r.URL.Query().Get("artifactType")
	if h.t.repo != nil {
		ms, err := h.s.referrersOf(ctx, h.t.repo.ID, string(d))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if at != "" && m.ArtifactType != at {
				continue
			}
			list = append(list, Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType,
				Annotations: m.Annotations})
		}
	}
	if at != "" {
		h.w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	idx["manifests"] = list
	return h.json(http.StatusOK, MediaOCIIndex, idx)
}

func (s *Service) referrersOf(ctx context.Context, repoID int64, subject string) ([]ManifestInfo, error) {
	rows, err := s.db.Query(ctx, selectManifest+" WHERE repo_id = ? AND subject = ? ORDER BY id", repoID, subject)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ManifestInfo
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// deleteOwnArtifacts removes the scan reports and SBOMs Rampart attached to
// a deleted manifest: they describe nothing any more.
func deleteOwnArtifacts(ctx context.Context, tx *store.Tx, repoID int64, digest string) error {
	_, err := tx.Exec(ctx, `DELETE FROM registry_manifests WHERE repo_id = ? AND subject = ? AND artifact_type IN (?, ?)`,
		repoID, digest, ArtifactScanReport, ArtifactSBOM)
	return err
}
