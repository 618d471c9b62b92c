package scm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// NewRepo describes a repository to create.
type NewRepo struct {
	Name        string
	Description string
	// Project optionally places the repository in a project of the org.
	Project string
	// DefaultBranch defaults to "main".
	DefaultBranch string
	Public        bool
}

const selectRepo = `SELECT id, org_id, COALESCE(project_id, 0), name, description, default_branch, public, created_at FROM repos`

func scanRepo(r interface{ Scan(...any) error }) (Repo, error) {
	var x Repo
	err := r.Scan(&x.ID, &x.OrgID, &x.ProjectID, &x.Name, &x.Description, &x.DefaultBranch, &x.Public, store.TimeDest(&x.CreatedAt))
	return x, err
}

func withOrg(r Repo, o identity.Org) Repo {
	r.Org, r.orgMFA = o.Name, o.RequireMFA
	return r
}

// validateText checks a free-text field.
func validateText(field, s string, max int, multiline bool) error {
	if len(s) > max {
		return apperr.InvalidField(field, "%s must be at most %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return apperr.InvalidField(field, "%s must be valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return apperr.InvalidField(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// CreateRepo creates an empty repository in org o: its row, and a bare
// git directory made by git itself.
func (s *Service) CreateRepo(ctx context.Context, o identity.Org, nr NewRepo) (Repo, error) {
	if err := s.available(); err != nil {
		return Repo{}, err
	}
	if err := ValidateRepoName(nr.Name); err != nil {
		return Repo{}, err
	}
	if err := validateText("description", nr.Description, 1000, false); err != nil {
		return Repo{}, err
	}
	if nr.DefaultBranch == "" {
		nr.DefaultBranch = "main"
	}
	if err := ValidateBranchName(nr.DefaultBranch); err != nil {
		return Repo{}, err
	}
	var projectID int64
	if nr.Project != "" {
		p, err := s.ids.Project(ctx, o.ID, nr.Project)
		if err != nil {
			return Repo{}, err
		}
		projectID = p.ID
	}
	r := Repo{OrgID: o.ID, ProjectID: projectID, Name: nr.Name, Description: nr.Description,
		DefaultBranch: nr.DefaultBranch, Public: nr.Public}
	r = withOrg(r, o)
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		var pid any
		if projectID != 0 {
			pid = projectID
		}
		err := tx.QueryRow(ctx, `INSERT INTO repos (org_id, project_id, name, description, default_branch, public, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, o.ID, pid, r.Name, r.Description, r.DefaultBranch, r.Public,
			nullID(actorID(ctx)), store.Time(now)).Scan(&r.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "name", Msg: fmt.Sprintf("repository %s/%s already exists", o.Name, r.Name)}
		}
		if err != nil {
			return err
		}
		r.CreatedAt = now.UTC().Truncate(time.Microsecond)
		if err := s.initRepo(ctx, r); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "repo.create", OrgID: o.ID, Target: r.target(),
			Details: map[string]any{"public": r.Public, "default_branch": r.DefaultBranch, "project": nr.Project}})
	})
	if err != nil {
		if r.ID != 0 {
			_ = os.RemoveAll(s.Path(r))
		}
		return Repo{}, err
	}
	return r, nil
}

// initRepo creates the bare repository in a temporary directory and moves
// it into place, so a crash never leaves a half-made repository.
func (s *Service) initRepo(ctx context.Context, r Repo) error {
	dst := s.Path(r)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	// A directory left by a deleted repository whose id was reused.
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.tmpDir, "init-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bare := filepath.Join(tmp, "repo.git")
	if _, err := s.run(ctx, tmp, nil, nil, "init", "--quiet", "--bare", "--initial-branch="+r.DefaultBranch, bare); err != nil {
		return fmt.Errorf("init repository: %w", err)
	}
	// Pushes go through receive-pack with Rampart's hooks; these settings
	// are for anyone inspecting the directory by hand.
	for _, kv := range [][2]string{{"receive.fsckObjects", "true"}, {"gc.autoDetach", "false"}, {"core.logAllRefUpdates", "true"}} {
		if _, err := s.run(ctx, bare, nil, nil, "config", kv[0], kv[1]); err != nil {
			return err
		}
	}
	_ = os.RemoveAll(filepath.Join(bare, "hooks")) // git's samples
	return os.Rename(bare, dst)
}

// Repo returns the repository ORG/NAME (a trailing ".git" is ignored).
func (s *Service) Repo(ctx context.Context, org, name string) (Repo, error) {
	name = strings.TrimSuffix(name, ".git")
	o, err := s.ids.Org(ctx, org)
	if apperr.Is(err, apperr.NotFound) {
		return Repo{}, notFound(clip(org, 40) + "/" + clip(name, 40))
	}
	if err != nil {
		return Repo{}, err
	}
	return s.repoIn(ctx, o, name)
}

func (s *Service) repoIn(ctx context.Context, o identity.Org, name string) (Repo, error) {
	r, err := scanRepo(s.db.QueryRow(ctx, selectRepo+" WHERE org_id = ? AND name = ?", o.ID, name))
	if apperr.Is(err, apperr.NotFound) {
		return Repo{}, notFound(o.Name + "/" + clip(name, 40))
	}
	if err != nil {
		return Repo{}, err
	}
	return withOrg(r, o), nil
}

// RepoByID returns a repository by id.
func (s *Service) RepoByID(ctx context.Context, id int64) (Repo, error) {
	r, err := scanRepo(s.db.QueryRow(ctx, selectRepo+" WHERE id = ?", id))
	if apperr.Is(err, apperr.NotFound) {
		return Repo{}, apperr.E(apperr.NotFound, "repository %d not found", id)
	}
	if err != nil {
		return Repo{}, err
	}
	o, err := s.ids.OrgByID(ctx, r.OrgID)
	if err != nil {
		return Repo{}, err
	}
	return withOrg(r, o), nil
}

// Repos lists an org's repositories by name.
func (s *Service) Repos(ctx context.Context, o identity.Org) ([]Repo, error) {
	rows, err := s.db.Query(ctx, selectRepo+" WHERE org_id = ? ORDER BY name", o.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Repo
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, withOrg(r, o))
	}
	return out, rows.Err()
}

// RepoUpdate changes repository settings; nil fields stay.
type RepoUpdate struct {
	Description   *string
	DefaultBranch *string
	Public        *bool
}

// UpdateRepo applies u.
func (s *Service) UpdateRepo(ctx context.Context, r Repo, u RepoUpdate) (Repo, error) {
	details := map[string]any{}
	if u.Description != nil {
		if err := validateText("description", *u.Description, 1000, false); err != nil {
			return r, err
		}
		r.Description = *u.Description
		details["description"] = r.Description
	}
	if u.DefaultBranch != nil {
		if err := ValidateBranchName(*u.DefaultBranch); err != nil {
			return r, err
		}
		r.DefaultBranch = *u.DefaultBranch
		details["default_branch"] = r.DefaultBranch
	}
	if u.Public != nil {
		r.Public = *u.Public
		details["public"] = r.Public
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "UPDATE repos SET description = ?, default_branch = ?, public = ? WHERE id = ?",
			r.Description, r.DefaultBranch, r.Public, r.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound(r.FullName())
		}
		if u.DefaultBranch != nil {
			if _, err := s.gitIn(ctx, r, "symbolic-ref", "HEAD", "refs/heads/"+r.DefaultBranch); err != nil {
				return err
			}
		}
		action := "repo.update"
		if u.Public != nil {
			action = "repo.update.visibility"
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: r.OrgID, Target: r.target(), Details: details})
	})
	return r, err
}

// DeleteRepo deletes a repository, its pull requests, checks and hooks,
// and its directory.
func (s *Service) DeleteRepo(ctx context.Context, r Repo) error {
	unlock, err := s.lockRepo(ctx, r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM repos WHERE id = ?", r.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound(r.FullName())
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "repo.delete", OrgID: r.OrgID, Target: r.target()})
	})
	if err != nil {
		return err
	}
	// Move aside first: the row is gone, the directory must not be served.
	trash := filepath.Join(s.tmpDir, "deleted-"+randomHex(8))
	if err := os.Rename(s.Path(r), trash); err != nil && !os.IsNotExist(err) {
		s.log.Warn("remove repository directory", "repo", r.FullName(), "err", err)
		return nil
	}
	_ = os.RemoveAll(trash)
	return nil
}
