package registry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/store"
)

// Repository is a repository's settings.
type Repository struct {
	ID        int64
	Name      string
	OrgID     int64
	ProjectID int64
	// Public repositories can be pulled anonymously.
	Public bool
	// ImmutableTags refuses moving or deleting a tag once set.
	ImmutableTags bool
	// Quarantine denies pulls of images not yet scanned or failing policy.
	Quarantine bool
	Retention  Retention
	// Upstream, when set, makes the repository a pull-through cache of
	// that repository URL (https://host/path).
	Upstream  string
	CreatedAt time.Time
}

// Retention says which tags a retention run keeps; zero values keep all.
type Retention struct {
	// KeepLast keeps the N most recently pushed tags.
	KeepLast int64
	// KeepSigned keeps tags whose image carries a signature.
	KeepSigned bool
	// MaxAgeDays removes tags pushed longer ago than this.
	MaxAgeDays int64
}

// Enabled reports whether any rule would remove something.
func (r Retention) Enabled() bool { return r.KeepLast > 0 || r.MaxAgeDays > 0 }

const selectRepo = `SELECT id, name, org_id, project_id, public, immutable_tags, quarantine, keep_last, keep_signed,
	max_age_days, upstream, created_at FROM registry_repos`

func scanRepo(r interface{ Scan(...any) error }) (Repository, error) {
	var x Repository
	err := r.Scan(&x.ID, &x.Name, &x.OrgID, &x.ProjectID, &x.Public, &x.ImmutableTags, &x.Quarantine, &x.Retention.KeepLast,
		&x.Retention.KeepSigned, &x.Retention.MaxAgeDays, &x.Upstream, store.TimeDest(&x.CreatedAt))
	return x, err
}

// target is a repository name resolved for authorisation.
type target struct {
	name string
	repo *Repository // nil until the first push
	res  authz.Resource
	// stale explains why the name maps to nothing usable (unknown org,
	// deleted org or project).
	stale string
}

// resolve maps a repository name onto its org (first component) and, for
// ORG/PROJECT/NAME with an existing project, its project.
func (s *Service) resolve(ctx context.Context, name string, _ bool) (target, error) {
	t := target{name: name}
	if !validName(name) {
		return t, oci(400, codeNameInvalid, "invalid repository name %q: want ORG/NAME or ORG/PROJECT/NAME in lowercase", name)
	}
	repo, err := scanRepo(s.db.QueryRow(ctx, selectRepo+" WHERE name = ?", name))
	switch {
	case err == nil:
		t.repo = &repo
		o, err := s.ids.OrgByID(ctx, repo.OrgID)
		if apperr.Is(err, apperr.NotFound) || (err == nil && !strings.HasPrefix(name, o.Name+"/")) {
			t.stale = fmt.Sprintf("repository %s belongs to an org that no longer exists", name)
			return t, nil
		}
		if err != nil {
			return t, err
		}
		t.res = authz.Resource{OrgID: o.ID, ProjectID: repo.ProjectID, RequireMFA: o.RequireMFA}
		if repo.ProjectID != 0 {
			parts := strings.Split(name, "/")
			p, err := s.ids.Project(ctx, o.ID, parts[1])
			if apperr.Is(err, apperr.NotFound) || (err == nil && p.ID != repo.ProjectID) {
				t.stale = fmt.Sprintf("repository %s belongs to a project that no longer exists", name)
				return t, nil
			}
			if err != nil {
				return t, err
			}
		}
		return t, nil
	case !apperr.Is(err, apperr.NotFound):
		return t, err
	}
	parts := strings.Split(name, "/")
	o, err := s.ids.Org(ctx, parts[0])
	if apperr.Is(err, apperr.NotFound) {
		t.stale = fmt.Sprintf("no org named %q: a repository name starts with its org (ORG/NAME or ORG/PROJECT/NAME)", parts[0])
		return t, nil
	}
	if err != nil {
		return t, err
	}
	t.res = authz.Resource{OrgID: o.ID, RequireMFA: o.RequireMFA}
	if len(parts) >= 3 {
		p, err := s.ids.Project(ctx, o.ID, parts[1])
		if err == nil {
			t.res.ProjectID = p.ID
		} else if !apperr.Is(err, apperr.NotFound) {
			return t, err
		}
	}
	return t, nil
}

// ensureRepo creates the repository of t on its first push.
func (s *Service) ensureRepo(ctx context.Context, t *target) error {
	if t.repo != nil {
		return nil
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, `INSERT INTO registry_repos (name, org_id, project_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, t.name, t.res.OrgID, t.res.ProjectID, store.Time(s.now()))
		if err != nil {
			return err
		}
		repo, err := scanRepo(tx.QueryRow(ctx, selectRepo+" WHERE name = ?", t.name))
		if err != nil {
			return err
		}
		t.repo = &repo
		if n == 0 {
			return nil
		}
		return s.audit.AppendTx(ctx, tx, auditRecord("registry.repository.create", t.name, t.res.OrgID,
			map[string]any{"project_id": t.res.ProjectID}))
	})
	return err
}

func auditRecord(action, repo string, orgID int64, details map[string]any) audit.Record {
	return audit.Record{Action: action, OrgID: orgID, Target: audit.Target{Type: "repository", ID: repo, Name: repo}, Details: details}
}

// Repository returns a repository by name.
func (s *Service) Repository(ctx context.Context, name string) (Repository, error) {
	r, err := scanRepo(s.db.QueryRow(ctx, selectRepo+" WHERE name = ?", name))
	if apperr.Is(err, apperr.NotFound) {
		return r, apperr.E(apperr.NotFound, "repository %s not found", name)
	}
	return r, err
}

// Repositories lists an org's repositories by name.
func (s *Service) Repositories(ctx context.Context, orgID int64) ([]Repository, error) {
	rows, err := s.db.Query(ctx, selectRepo+" WHERE org_id = ? ORDER BY name", orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
