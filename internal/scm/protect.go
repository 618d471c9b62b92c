package scm

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Protection is a branch protection rule: it applies to every branch
// whose name matches Pattern ('*' matches within one path component).
// When several rules match a branch, each of them applies (the strictest
// setting wins).
type Protection struct {
	ID      int64
	Pattern string
	// RequirePR refuses direct pushes to existing matching branches:
	// changes arrive by merging pull requests.
	RequirePR bool
	// RequiredChecks are status check contexts that must be "success" on
	// the commit before it lands (pushed directly or merged).
	RequiredChecks []string
	// RequiredApprovals is the number of approving reviews a pull request
	// needs; approvals of older commits are dismissed when the pull
	// request's branch moves if DismissStale is set. A positive value
	// implies RequirePR.
	RequiredApprovals int
	DismissStale      bool
	// AllowForcePush and AllowDeletion lift the default refusals of
	// non-fast-forward updates and deletions.
	AllowForcePush bool
	AllowDeletion  bool
	// RequireSigned accepts only commits signed by an SSH key registered
	// in Rampart (verified with git verify-commit).
	RequireSigned bool
	CreatedAt     time.Time
}

// Limits on protection rules.
const (
	maxProtections    = 50
	maxRequiredChecks = 20
	maxApprovals      = 10
)

// ValidateContext checks a status check context name.
func ValidateContext(c string) error {
	if c == "" || len(c) > 100 {
		return apperr.InvalidField("context", "context must be 1-100 bytes")
	}
	return validateText("context", c, 100, false)
}

func (p *Protection) normalize() error {
	if err := ValidatePattern(p.Pattern); err != nil {
		return err
	}
	if p.RequiredApprovals < 0 || p.RequiredApprovals > maxApprovals {
		return apperr.InvalidField("required_approvals", "required_approvals must be 0-%d", maxApprovals)
	}
	if len(p.RequiredChecks) > maxRequiredChecks {
		return apperr.InvalidField("required_checks", "at most %d required checks", maxRequiredChecks)
	}
	var checks []string
	for _, c := range p.RequiredChecks {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if strings.Contains(c, ",") {
			return apperr.InvalidField("required_checks", "check context %q must not contain a comma", clip(c, 60))
		}
		if err := ValidateContext(c); err != nil {
			return err
		}
		if !slices.Contains(checks, c) {
			checks = append(checks, c)
		}
	}
	p.RequiredChecks = checks
	if p.RequiredApprovals > 0 {
		p.RequirePR = true
	}
	return nil
}

const selectProtection = `SELECT id, pattern, require_pr, required_checks, required_approvals, dismiss_stale,
	allow_force_push, allow_deletion, require_signed, created_at FROM branch_protections`

func scanProtection(r interface{ Scan(...any) error }) (Protection, error) {
	var (
		p      Protection
		checks string
		appr   int64
	)
	err := r.Scan(&p.ID, &p.Pattern, &p.RequirePR, &checks, &appr, &p.DismissStale, &p.AllowForcePush,
		&p.AllowDeletion, &p.RequireSigned, store.TimeDest(&p.CreatedAt))
	if checks != "" {
		p.RequiredChecks = strings.Split(checks, ",")
	}
	p.RequiredApprovals = int(appr)
	return p, err
}

// Protections lists a repository's rules by pattern.
func (s *Service) Protections(ctx context.Context, r Repo) ([]Protection, error) {
	rows, err := s.db.Query(ctx, selectProtection+" WHERE repo_id = ? ORDER BY pattern", r.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Protection
	for rows.Next() {
		p, err := scanProtection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetProtection creates or replaces the rule for p.Pattern.
func (s *Service) SetProtection(ctx context.Context, r Repo, p Protection) (Protection, error) {
	if err := p.normalize(); err != nil {
		return p, err
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM branch_protections WHERE repo_id = ? AND pattern <> ?", r.ID, p.Pattern).Scan(&n); err != nil {
			return err
		}
		if n >= maxProtections {
			return apperr.E(apperr.Invalid, "a repository may have at most %d protection rules", maxProtections)
		}
		now := s.now()
		err := tx.QueryRow(ctx, `INSERT INTO branch_protections (repo_id, pattern, require_pr, required_checks, required_approvals,
			dismiss_stale, allow_force_push, allow_deletion, require_signed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repo_id, pattern) DO UPDATE SET require_pr = excluded.require_pr, required_checks = excluded.required_checks,
			required_approvals = excluded.required_approvals, dismiss_stale = excluded.dismiss_stale,
			allow_force_push = excluded.allow_force_push, allow_deletion = excluded.allow_deletion, require_signed = excluded.require_signed
			RETURNING id`, r.ID, p.Pattern, p.RequirePR, strings.Join(p.RequiredChecks, ","), p.RequiredApprovals, p.DismissStale,
			p.AllowForcePush, p.AllowDeletion, p.RequireSigned, store.Time(now)).Scan(&p.ID)
		if err != nil {
			return err
		}
		p.CreatedAt = now.UTC().Truncate(time.Microsecond)
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "repo.protection.set", OrgID: r.OrgID, Target: r.target(),
			Details: map[string]any{"pattern": p.Pattern, "require_pr": p.RequirePR, "required_checks": p.RequiredChecks,
				"required_approvals": p.RequiredApprovals, "dismiss_stale": p.DismissStale, "allow_force_push": p.AllowForcePush,
				"allow_deletion": p.AllowDeletion, "require_signed": p.RequireSigned}})
	})
	return p, err
}

// DeleteProtection removes the rule for pattern.
func (s *Service) DeleteProtection(ctx context.Context, r Repo, pattern string) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM branch_protections WHERE repo_id = ? AND pattern = ?", r.ID, pattern)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "no protection rule for %q", clip(pattern, 80))
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "repo.protection.delete", OrgID: r.OrgID, Target: r.target(),
			Details: map[string]any{"pattern": pattern}})
	})
}

// rules is the combined protection of one branch.
type rules struct {
	protected      bool
	patterns       []string
	requirePR      bool
	checks         []string
	approvals      int
	dismissStale   bool
	allowForcePush bool
	allowDeletion  bool
	requireSigned  bool
}

// rulesFor combines every rule matching branch, strictest first.
func rulesFor(ps []Protection, branch string) rules {
	r := rules{allowForcePush: true, allowDeletion: true}
	for _, p := range ps {
		if !matchPattern(p.Pattern, branch) {
			continue
		}
		r.protected = true
		r.patterns = append(r.patterns, p.Pattern)
		r.requirePR = r.requirePR || p.RequirePR
		for _, c := range p.RequiredChecks {
			if !slices.Contains(r.checks, c) {
				r.checks = append(r.checks, c)
			}
		}
		r.approvals = max(r.approvals, p.RequiredApprovals)
		r.dismissStale = r.dismissStale || p.DismissStale
		r.allowForcePush = r.allowForcePush && p.AllowForcePush
		r.allowDeletion = r.allowDeletion && p.AllowDeletion
		r.requireSigned = r.requireSigned || p.RequireSigned
	}
	return r
}

func (r rules) what() string {
	return "protected by rule " + strings.Join(quoteAll(r.patterns), ", ")
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// missingChecks returns the required contexts not "success" on sha.
func (s *Service) missingChecks(ctx context.Context, q store.Querier, r Repo, sha string, required []string) ([]string, error) {
	if len(required) == 0 {
		return nil, nil
	}
	states := map[string]string{}
	rows, err := q.Query(ctx, "SELECT context, state FROM status_checks WHERE repo_id = ? AND sha = ?", r.ID, sha)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var c, st string
		if err := rows.Scan(&c, &st); err != nil {
			rows.Close()
			return nil, err
		}
		states[c] = st
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range required {
		if states[c] != CheckSuccess {
			st := states[c]
			if st == "" {
				st = "not reported"
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", c, st))
		}
	}
	return missing, nil
}

// ProtectedBranch reports whether a protection rule of r matches branch
// (a short name such as main, or refs/heads/main): what the pre-deploy
// gate asks of the branch an image was built from.
func (s *Service) ProtectedBranch(ctx context.Context, r Repo, branch string) (bool, error) {
	branch = strings.TrimPrefix(branch, "refs/heads/")
	if branch == "" || strings.HasPrefix(branch, "refs/") {
		return false, nil
	}
	ps, err := s.Protections(ctx, r)
	if err != nil {
		return false, err
	}
	return rulesFor(ps, branch).protected, nil
}
