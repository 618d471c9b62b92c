package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// checkQuota refuses a new link that would take the repository's project
// (or org, for ORG/NAME repositories) over its storage quota. A blob
// already stored in the same project costs nothing more.
func (s *Service) checkQuota(ctx context.Context, tx *store.Tx, repo *Repository, size int64) error {
	var limit int64
	err := tx.QueryRow(ctx, "SELECT max_bytes FROM registry_quotas WHERE org_id = ? AND project_id = ?", repo.OrgID, repo.ProjectID).Scan(&limit)
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	used, err := s.usage(ctx, tx, repo.OrgID, repo.ProjectID)
	if err != nil {
		return err
	}
	if used+size > limit {
		return errDenied("storage quota exceeded: %d of %d bytes used, this blob needs %d more", used, limit, size)
	}
	return nil
}

// usage is the bytes of distinct blobs linked into a project's
// repositories.
func (s *Service) usage(ctx context.Context, q store.Querier, orgID, projectID int64) (int64, error) {
	var used int64
	err := q.QueryRow(ctx, `SELECT COALESCE(SUM(b.size), 0) FROM registry_blobs b WHERE b.digest IN
		(SELECT l.digest FROM registry_repo_blobs l JOIN registry_repos r ON r.id = l.repo_id WHERE r.org_id = ? AND r.project_id = ?)`,
		orgID, projectID).Scan(&used)
	return used, err
}

// Quota is a project's storage quota and use.
type Quota struct {
	MaxBytes  int64 `json:"max_bytes"`
	UsedBytes int64 `json:"used_bytes"`
}

// SetQuota sets (maxBytes > 0) or removes (0) a quota.
func (s *Service) SetQuota(ctx context.Context, orgID, projectID, maxBytes int64) error {
	if maxBytes < 0 {
		return apperr.InvalidField("max_bytes", "a quota cannot be negative")
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if maxBytes == 0 {
			_, err = tx.Exec(ctx, "DELETE FROM registry_quotas WHERE org_id = ? AND project_id = ?", orgID, projectID)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO registry_quotas (org_id, project_id, max_bytes) VALUES (?, ?, ?)
				ON CONFLICT (org_id, project_id) DO UPDATE SET max_bytes = excluded.max_bytes`, orgID, projectID, maxBytes)
		}
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, auditRecord("registry.quota.set", fmt.Sprintf("project:%d", projectID), orgID,
			map[string]any{"project_id": projectID, "max_bytes": maxBytes}))
	})
}

// GetQuota returns a project's quota (MaxBytes 0: none) and use.
func (s *Service) GetQuota(ctx context.Context, orgID, projectID int64) (Quota, error) {
	var q Quota
	err := s.db.QueryRow(ctx, "SELECT max_bytes FROM registry_quotas WHERE org_id = ? AND project_id = ?", orgID, projectID).Scan(&q.MaxBytes)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return q, err
	}
	q.UsedBytes, err = s.usage(ctx, s.db, orgID, projectID)
	return q, err
}

// RetentionResult says what a retention run removed.
type RetentionResult struct {
	Tags      []string `json:"tags"`
	Manifests []string `json:"manifests"`
}

// ApplyRetention removes the tags the repository's rules do not keep, and
// the manifests left without a tag (with their signatures, reports and
// other referrers). Signature tags (ALG-HEX.sig) follow their image.
func (s *Service) ApplyRetention(ctx context.Context, repoName string) (RetentionResult, error) {
	res := RetentionResult{Tags: []string{}, Manifests: []string{}}
	repo, err := s.Repository(ctx, repoName)
	if err != nil {
		return res, err
	}
	if !repo.Retention.Enabled() {
		return res, nil
	}
	type tagRow struct {
		name    string
		digest  string
		id      int64
		updated time.Time
	}
	rows, err := s.db.Query(ctx, `SELECT t.name, m.digest, m.id, t.updated_at FROM registry_tags t
		JOIN registry_manifests m ON m.id = t.manifest_id WHERE t.repo_id = ? ORDER BY t.updated_at DESC, t.name`, repo.ID)
	if err != nil {
		return res, err
	}
	var tags []tagRow
	var names []string
	for rows.Next() {
		var t tagRow
		if err := rows.Scan(&t.name, &t.digest, &t.id, store.TimeDest(&t.updated)); err != nil {
			rows.Close()
			return res, err
		}
		tags = append(tags, t)
		names = append(names, t.name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	signed := signedDigests(names)
	now := s.now()
	rank := 0
	var drop []tagRow
	for _, t := range tags {
		if strings.HasSuffix(t.name, ".sig") && len(signedDigests([]string{t.name})) == 1 {
			continue
		}
		rank++
		if repo.Retention.KeepSigned && signed[t.digest] {
			continue
		}
		old := repo.Retention.MaxAgeDays > 0 && now.Sub(t.updated) > time.Duration(repo.Retention.MaxAgeDays)*24*time.Hour
		over := repo.Retention.KeepLast > 0 && int64(rank) > repo.Retention.KeepLast
		if old || over {
			drop = append(drop, t)
		}
	}
	if len(drop) == 0 {
		return res, nil
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, t := range drop {
			if _, err := tx.Exec(ctx, "DELETE FROM registry_tags WHERE repo_id = ? AND name = ?", repo.ID, t.name); err != nil {
				return err
			}
			res.Tags = append(res.Tags, t.name)
		}
		gone := map[string]bool{}
		for _, t := range drop {
			if gone[t.digest] {
				continue
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM registry_tags WHERE manifest_id = ?) +
				(SELECT COUNT(*) FROM registry_manifest_children c JOIN registry_manifests p ON p.id = c.manifest_id
				 WHERE p.repo_id = ? AND c.child = ?)`, t.id, repo.ID, t.digest).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			if err := s.deleteWithReferrers(ctx, tx, repo.ID, t.digest, gone); err != nil {
				return err
			}
		}
		for d := range gone {
			res.Manifests = append(res.Manifests, d)
		}
		sort.Strings(res.Manifests)
		return s.audit.AppendTx(ctx, tx, auditRecord("registry.retention.apply", repo.Name, repo.OrgID,
			map[string]any{"tags": res.Tags, "manifests": res.Manifests}))
	})
	return res, err
}

// deleteWithReferrers deletes a manifest, the manifests referring to it
// and its signature tag's manifest.
func (s *Service) deleteWithReferrers(ctx context.Context, tx *store.Tx, repoID int64, digest string, gone map[string]bool) error {
	if gone[digest] || len(gone) > 10000 {
		return nil
	}
	gone[digest] = true
	rows, err := tx.Query(ctx, "SELECT digest FROM registry_manifests WHERE repo_id = ? AND subject = ?", repoID, digest)
	if err != nil {
		return err
	}
	var refs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return err
		}
		refs = append(refs, d)
	}
	rows.Close()
	if d, ok := ParseDigest(digest); ok {
		var sd string
		err := tx.QueryRow(ctx, `SELECT m.digest FROM registry_tags t JOIN registry_manifests m ON m.id = t.manifest_id
			WHERE t.repo_id = ? AND t.name = ?`, repoID, sigTag(d)).Scan(&sd)
		if err == nil {
			refs = append(refs, sd)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM registry_manifests WHERE repo_id = ? AND digest = ?", repoID, digest); err != nil {
		return err
	}
	for _, r := range refs {
		if err := s.deleteWithReferrers(ctx, tx, repoID, r, gone); err != nil {
			return err
		}
	}
	return nil
}

// GCResult says what garbage collection removed.
type GCResult struct {
	Uploads  int   `json:"uploads"`
	Links    int   `json:"links"`
	Blobs    int   `json:"blobs"`
	Orphans  int   `json:"orphans"`
	Bytes    int64 `json:"bytes"`
	Duration string
}

// CollectGarbage removes abandoned uploads, blob links no manifest needs,
// and blobs no repository links, once they are older than the grace
// period. It is safe while pushes run: a blob being uploaded is not a
// blob yet; a blob just uploaded is younger than the grace period; a
// manifest can only reference linked blobs (a foreign key), and a blob is
// first marked 'deleting' — which refuses new links to it — before its
// content goes.
func (s *Service) CollectGarbage(ctx context.Context) (GCResult, error) {
	start := time.Now()
	var res GCResult
	cutoff := store.Time(s.now().Add(-s.gcGrace))
	// Uploads idle for a day.
	rows, err := s.db.Query(ctx, "SELECT id FROM registry_uploads WHERE updated_at < ?", store.Time(s.now().Add(-24*time.Hour)))
	if err != nil {
		return res, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return res, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		s.cancelUpload(ctx, id)
		res.Uploads++
	}
	// Links no manifest of their repository references.
	// One at a time: a manifest being pushed may reference a link now, and
	// its foreign key then refuses the delete (PostgreSQL reports the
	// conflict once the push commits): that link stays.
	type link struct {
		repo   int64
		digest string
	}
	var links []link
	rows, err = s.db.Query(ctx, `SELECT repo_id, digest FROM registry_repo_blobs WHERE created_at < ? AND NOT EXISTS
		(SELECT 1 FROM registry_manifest_blobs mb WHERE mb.repo_id = registry_repo_blobs.repo_id AND mb.digest = registry_repo_blobs.digest)`, cutoff)
	if err != nil {
		return res, err
	}
	for rows.Next() {
		var l link
		if err := rows.Scan(&l.repo, &l.digest); err != nil {
			rows.Close()
			return res, err
		}
		links = append(links, l)
	}
	rows.Close()
	for _, l := range links {
		n, err := s.db.Exec(ctx, `DELETE FROM registry_repo_blobs WHERE repo_id = ? AND digest = ? AND NOT EXISTS
			(SELECT 1 FROM registry_manifest_blobs mb WHERE mb.repo_id = registry_repo_blobs.repo_id AND mb.digest = registry_repo_blobs.digest)`,
			l.repo, l.digest)
		switch {
		case apperr.Is(err, apperr.Conflict):
			continue
		case err != nil:
			return res, err
		}
		res.Links += int(n)
	}
	// Blobs no repository links.
	rows, err = s.db.Query(ctx, `SELECT digest, size FROM registry_blobs b WHERE (b.created_at < ? OR b.state = 'deleting') AND NOT EXISTS
		(SELECT 1 FROM registry_repo_blobs l WHERE l.digest = b.digest)`, cutoff)
	if err != nil {
		return res, err
	}
	type cand struct {
		d    string
		size int64
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.d, &c.size); err != nil {
			rows.Close()
			return res, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	for _, c := range cands {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		marked, err := s.markDeleting(ctx, c.d)
		if err != nil {
			return res, err
		}
		if !marked {
			continue // linked meanwhile
		}
		if err := s.content.deleteBlob(ctx, Digest(c.d)); err != nil {
			return res, err
		}
		if _, err := s.db.Exec(ctx, "DELETE FROM registry_blobs WHERE digest = ? AND state = 'deleting'", c.d); err != nil {
			return res, err
		}
		res.Blobs++
		res.Bytes += c.size
	}
	// Content with no record: a crash between the rename and the record.
	orphans, freed, err := s.sweepOrphans(ctx)
	if err != nil {
		return res, err
	}
	res.Orphans, res.Bytes = orphans, res.Bytes+freed
	res.Duration = time.Since(start).Round(time.Millisecond).String()
	if res.Uploads+res.Links+res.Blobs+res.Orphans > 0 {
		err = s.audit.Append(ctx, auditRecord("registry.gc", "*", 0, map[string]any{"uploads": res.Uploads, "links": res.Links,
			"blobs": res.Blobs, "orphans": res.Orphans, "bytes": res.Bytes}))
	}
	return res, err
}

// markDeleting marks an unlinked blob 'deleting', after which it can no
// longer be linked. The UPDATE takes the row's lock first, so a link
// being made now either committed before (and the count, a new statement,
// sees it) or waits and then finds the blob marked.
func (s *Service) markDeleting(ctx context.Context, digest string) (bool, error) {
	marked := false
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "UPDATE registry_blobs SET state = 'deleting' WHERE digest = ?", digest)
		if err != nil || n == 0 {
			return err
		}
		var links int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM registry_repo_blobs WHERE digest = ?", digest).Scan(&links); err != nil {
			return err
		}
		if links > 0 {
			return errLinked
		}
		marked = true
		return nil
	})
	if errors.Is(err, errLinked) {
		return false, nil
	}
	return marked, err
}

var errLinked = errors.New("blob linked meanwhile")

func (s *Service) sweepOrphans(ctx context.Context) (int, int64, error) {
	var n int
	var freed int64
	// Modification times are the storage's wall clock, not Rampart's.
	cutoff := time.Now().Add(-s.gcGrace)
	err := s.content.d.Walk(ctx, "/blobs", func(fi storagedriver.FileInfo) error {
		if fi.IsDir() || fi.ModTime().After(cutoff) {
			return nil
		}
		p := fi.Path()
		alg := path.Base(path.Dir(path.Dir(p)))
		d, ok := ParseDigest(alg + ":" + path.Base(p))
		if !ok {
			return nil
		}
		var c int
		if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM registry_blobs WHERE digest = ?", string(d)).Scan(&c); err != nil {
			return err
		}
		if c > 0 {
			return nil
		}
		if err := s.content.deleteBlob(ctx, d); err != nil {
			return err
		}
		n++
		freed += fi.Size()
		return nil
	})
	if isNotFound(err) {
		err = nil
	}
	return n, freed, err
}

// RepositorySettings are the settings an org maintainer changes.
type RepositorySettings struct {
	Public        *bool
	ImmutableTags *bool
	Quarantine    *bool
	Retention     *Retention
	Upstream      *string
}

// Configure creates the repository if needed and applies settings.
func (s *Service) Configure(ctx context.Context, name string, set RepositorySettings) (Repository, error) {
	t, err := s.resolve(ctx, name, true)
	if err != nil {
		if oe, ok := err.(*ociError); ok {
			return Repository{}, apperr.InvalidField("name", "%s", oe.Msg)
		}
		return Repository{}, err
	}
	if t.stale != "" {
		return Repository{}, apperr.E(apperr.Invalid, "%s", t.stale)
	}
	if set.Retention != nil && (set.Retention.KeepLast < 0 || set.Retention.MaxAgeDays < 0) {
		return Repository{}, apperr.InvalidField("retention", "retention values cannot be negative")
	}
	if set.Upstream != nil && *set.Upstream != "" {
		if err := validUpstream(*set.Upstream); err != nil {
			return Repository{}, err
		}
	}
	if err := s.ensureRepo(ctx, &t); err != nil {
		return Repository{}, err
	}
	r := *t.repo
	details := map[string]any{}
	if set.Public != nil {
		r.Public, details["public"] = *set.Public, *set.Public
	}
	if set.ImmutableTags != nil {
		r.ImmutableTags, details["immutable_tags"] = *set.ImmutableTags, *set.ImmutableTags
	}
	if set.Quarantine != nil {
		r.Quarantine, details["quarantine"] = *set.Quarantine, *set.Quarantine
	}
	if set.Retention != nil {
		r.Retention = *set.Retention
		details["retention"] = map[string]any{"keep_last": r.Retention.KeepLast, "keep_signed": r.Retention.KeepSigned, "max_age_days": r.Retention.MaxAgeDays}
	}
	if set.Upstream != nil {
		r.Upstream, details["upstream"] = *set.Upstream, *set.Upstream
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE registry_repos SET public = ?, immutable_tags = ?, quarantine = ?, keep_last = ?,
			keep_signed = ?, max_age_days = ?, upstream = ? WHERE id = ?`, r.Public, r.ImmutableTags, r.Quarantine,
			r.Retention.KeepLast, r.Retention.KeepSigned, r.Retention.MaxAgeDays, r.Upstream, r.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, auditRecord("registry.repository.update", r.Name, r.OrgID, details))
	})
	return r, err
}

// Housekeeping applies retention to every repository with rules and
// collects garbage, every interval, until ctx ends.
func (s *Service) Housekeeping(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rows, err := s.db.Query(ctx, "SELECT name FROM registry_repos WHERE keep_last > 0 OR max_age_days > 0")
		if err != nil {
			s.log.WarnContext(ctx, "retention", "err", err)
			continue
		}
		var names []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				names = append(names, n)
			}
		}
		rows.Close()
		for _, n := range names {
			if _, err := s.ApplyRetention(ctx, n); err != nil {
				s.log.WarnContext(ctx, "retention", "repository", n, "err", err)
			}
		}
		if _, err := s.CollectGarbage(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "garbage collection", "err", err)
		}
	}
}

var _ = http.StatusOK
