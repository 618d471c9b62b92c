package scm

import (
	"context"
	"net/url"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Status check states (GitHub's commit status states).
const (
	CheckPending = "pending"
	CheckSuccess = "success"
	CheckFailure = "failure"
	CheckError   = "error"
)

// Status is the state of one check context on one commit, posted by a
// pipeline or an external CI.
type Status struct {
	SHA         string
	Context     string
	State       string
	Description string
	TargetURL   string
	Creator     string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// maxStatusesPerCommit bounds the contexts one commit can collect.
const maxStatusesPerCommit = 100

// SetStatus records the state of a check context on a commit of r
// (replacing its previous state).
func (s *Service) SetStatus(ctx context.Context, r Repo, st Status) (Status, error) {
	switch st.State {
	case CheckPending, CheckSuccess, CheckFailure, CheckError:
	default:
		return st, apperr.InvalidField("state", "state must be pending, success, failure or error")
	}
	if st.Context == "" {
		st.Context = "default"
	}
	if err := ValidateContext(st.Context); err != nil {
		return st, err
	}
	if err := validateText("description", st.Description, 500, false); err != nil {
		return st, err
	}
	if st.TargetURL != "" {
		u, err := url.Parse(st.TargetURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(st.TargetURL) > 2000 {
			return st, apperr.InvalidField("target_url", "target_url must be an http(s) URL of at most 2000 bytes")
		}
	}
	sha, err := s.resolveCommit(ctx, s.Path(r), nil, st.SHA)
	if err != nil {
		return st, err
	}
	if sha != st.SHA {
		return st, apperr.InvalidField("sha", "give the full commit id (%s)", sha)
	}
	st.Creator = actorName(ctx)
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM status_checks WHERE repo_id = ? AND sha = ? AND context <> ?", r.ID, sha, st.Context).Scan(&n); err != nil {
			return err
		}
		if n >= maxStatusesPerCommit {
			return apperr.E(apperr.Invalid, "a commit may carry at most %d check contexts", maxStatusesPerCommit)
		}
		now := s.now()
		if err := tx.QueryRow(ctx, `INSERT INTO status_checks (repo_id, sha, context, state, description, target_url, creator, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, sha, context) DO UPDATE SET state = excluded.state,
			description = excluded.description, target_url = excluded.target_url, creator = excluded.creator, updated_at = excluded.updated_at
			RETURNING created_at, updated_at`, r.ID, sha, st.Context, st.State, st.Description, st.TargetURL, st.Creator,
			store.Time(now), store.Time(now)).Scan(store.TimeDest(&st.CreatedAt), store.TimeDest(&st.UpdatedAt)); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "repo.status.set", OrgID: r.OrgID, Target: r.target(),
			Details: map[string]any{"sha": sha, "context": st.Context, "state": st.State}})
	})
	return st, err
}

// Statuses lists the check states of a commit by context.
func (s *Service) Statuses(ctx context.Context, r Repo, sha string) ([]Status, error) {
	rows, err := s.db.Query(ctx, `SELECT sha, context, state, description, target_url, creator, created_at, updated_at
		FROM status_checks WHERE repo_id = ? AND sha = ? ORDER BY context`, r.ID, sha)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		var st Status
		if err := rows.Scan(&st.SHA, &st.Context, &st.State, &st.Description, &st.TargetURL, &st.Creator,
			store.TimeDest(&st.CreatedAt), store.TimeDest(&st.UpdatedAt)); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
