package scm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Pull request states.
const (
	PullOpen   = "open"
	PullClosed = "closed"
	PullMerged = "merged"
)

// Pull request event actions (scm.pull_request's "action").
const (
	ActionOpened       = "opened"
	ActionEdited       = "edited"
	ActionSynchronized = "synchronized"
	ActionClosed       = "closed"
	ActionReopened     = "reopened"
	ActionMerged       = "merged"
)

// PullRequest proposes merging a head branch into a base branch of the
// same repository.
type PullRequest struct {
	ID     int64
	RepoID int64
	Number int64
	Title  string
	Body   string
	Author string
	Base   string // branch names
	Head   string
	// BaseSHA is the base branch's commit when the pull request was
	// opened, merged or closed; HeadSHA the head branch's latest commit.
	BaseSHA     string
	HeadSHA     string
	State       string
	MergeCommit string
	MergedBy    string
	MergedAt    time.Time
	ClosedAt    time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func prTarget(r Repo, pr PullRequest) audit.Target {
	return audit.Target{Type: "pull_request", ID: strconv.FormatInt(pr.ID, 10), Name: r.FullName() + "#" + strconv.FormatInt(pr.Number, 10)}
}

// PullEvent is the payload of scm.pull_request (see doc.go).
type PullEvent struct {
	Action      string `json:"action"`
	Repo        string `json:"repo"`
	RepoID      int64  `json:"repo_id"`
	Number      int64  `json:"number"`
	Title       string `json:"title"`
	Body        string `json:"body"`
	Base        string `json:"base"`
	Head        string `json:"head"`
	HeadSHA     string `json:"head_sha"`
	MergeCommit string `json:"merge_commit"`
	Author      string `json:"author"`
	URL         string `json:"url"`
	// Sender is who caused the event (the author, a pusher, the merger).
	Sender string `json:"sender"`
}

// PullURL is the page of a pull request.
func (s *Service) PullURL(r Repo, n int64) string {
	return s.WebURL(r) + "/pulls/" + strconv.FormatInt(n, 10)
}

func (s *Service) publishPull(ctx context.Context, tx *store.Tx, r Repo, pr PullRequest, action string) error {
	return s.events.Publish(ctx, tx, EventPullRequest, PullEvent{Action: action, Repo: r.FullName(), RepoID: r.ID,
		Number: pr.Number, Title: pr.Title, Body: pr.Body, Base: pr.Base, Head: pr.Head, HeadSHA: pr.HeadSHA,
		MergeCommit: pr.MergeCommit, Author: pr.Author, URL: s.PullURL(r, pr.Number), Sender: actorName(ctx)})
}

const selectPull = `SELECT id, repo_id, number, title, body, author_name, base_ref, head_ref, base_sha, head_sha, state,
	merge_commit, merged_by, merged_at, closed_at, created_at, updated_at FROM pull_requests`

func scanPull(r interface{ Scan(...any) error }) (PullRequest, error) {
	var p PullRequest
	err := r.Scan(&p.ID, &p.RepoID, &p.Number, &p.Title, &p.Body, &p.Author, &p.Base, &p.Head, &p.BaseSHA, &p.HeadSHA, &p.State,
		&p.MergeCommit, &p.MergedBy, store.TimeDest(&p.MergedAt), store.TimeDest(&p.ClosedAt), store.TimeDest(&p.CreatedAt),
		store.TimeDest(&p.UpdatedAt))
	return p, err
}

// NewPull describes a pull request to open.
type NewPull struct {
	Title string
	Body  string
	Head  string
	Base  string // default: the repository's default branch
}

func validatePullText(title, body string) error {
	if strings.TrimSpace(title) == "" {
		return apperr.InvalidField("title", "title must not be empty")
	}
	if err := validateText("title", title, 256, false); err != nil {
		return err
	}
	return validateText("body", body, 64<<10, true)
}

// OpenPull opens a pull request from np.Head into np.Base.
func (s *Service) OpenPull(ctx context.Context, r Repo, np NewPull) (PullRequest, error) {
	if np.Base == "" {
		np.Base = r.DefaultBranch
	}
	if err := validatePullText(np.Title, np.Body); err != nil {
		return PullRequest{}, err
	}
	if err := ValidateBranchName(np.Head); err != nil {
		return PullRequest{}, apperr.InvalidField("head", "%s", apperr.Message(err))
	}
	if err := ValidateBranchName(np.Base); err != nil {
		return PullRequest{}, apperr.InvalidField("base", "%s", apperr.Message(err))
	}
	if np.Head == np.Base {
		return PullRequest{}, apperr.InvalidField("head", "head and base must be different branches")
	}
	dir := s.Path(r)
	headSHA, err := s.resolveCommit(ctx, dir, nil, "refs/heads/"+np.Head)
	if err != nil {
		return PullRequest{}, apperr.InvalidField("head", "branch %q does not exist", np.Head)
	}
	baseSHA, err := s.resolveCommit(ctx, dir, nil, "refs/heads/"+np.Base)
	if err != nil {
		return PullRequest{}, apperr.InvalidField("base", "branch %q does not exist", np.Base)
	}
	if ok, err := s.isAncestor(ctx, dir, nil, headSHA, baseSHA); err != nil {
		return PullRequest{}, err
	} else if ok {
		return PullRequest{}, apperr.E(apperr.Invalid, "%s has no commits that %s lacks: nothing to merge", np.Head, np.Base)
	}
	pr := PullRequest{RepoID: r.ID, Title: strings.TrimSpace(np.Title), Body: np.Body, Author: actorName(ctx), Base: np.Base,
		Head: np.Head, BaseSHA: baseSHA, HeadSHA: headSHA, State: PullOpen}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var open int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM pull_requests WHERE repo_id = ? AND head_ref = ? AND base_ref = ? AND state = 'open'",
			r.ID, np.Head, np.Base).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return apperr.E(apperr.Conflict, "a pull request from %s into %s is already open", np.Head, np.Base)
		}
		if err := tx.QueryRow(ctx, "UPDATE repos SET next_pr = next_pr + 1 WHERE id = ? RETURNING next_pr - 1", r.ID).Scan(&pr.Number); err != nil {
			return err
		}
		now := s.now()
		pr.CreatedAt, pr.UpdatedAt = now.UTC().Truncate(time.Microsecond), now.UTC().Truncate(time.Microsecond)
		if err := tx.QueryRow(ctx, `INSERT INTO pull_requests (repo_id, number, title, body, author_id, author_name, base_ref, head_ref,
			base_sha, head_sha, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?) RETURNING id`,
			r.ID, pr.Number, pr.Title, pr.Body, nullID(actorID(ctx)), pr.Author, pr.Base, pr.Head, pr.BaseSHA, pr.HeadSHA,
			store.Time(now), store.Time(now)).Scan(&pr.ID); err != nil {
			return err
		}
		if err := s.pinPull(ctx, r, pr); err != nil {
			return err
		}
		if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.open", OrgID: r.OrgID, Target: prTarget(r, pr),
			Details: map[string]any{"head": pr.Head, "base": pr.Base, "head_sha": pr.HeadSHA}}); err != nil {
			return err
		}
		return s.publishPull(ctx, tx, r, pr, ActionOpened)
	})
	return pr, err
}

// pinPull keeps the pull request's head commit reachable
// (refs/pull/N/head), even after its branch is deleted.
func (s *Service) pinPull(ctx context.Context, r Repo, pr PullRequest) error {
	_, err := s.gitIn(ctx, r, "update-ref", "refs/pull/"+strconv.FormatInt(pr.Number, 10)+"/head", pr.HeadSHA)
	return err
}

// Pull returns pull request number n of r.
func (s *Service) Pull(ctx context.Context, r Repo, n int64) (PullRequest, error) {
	pr, err := scanPull(s.db.QueryRow(ctx, selectPull+" WHERE repo_id = ? AND number = ?", r.ID, n))
	if apperr.Is(err, apperr.NotFound) {
		return pr, apperr.E(apperr.NotFound, "pull request #%d not found in %s", n, r.FullName())
	}
	return pr, err
}

// Pulls lists r's pull requests in a state ("" for all), newest first.
func (s *Service) Pulls(ctx context.Context, r Repo, state string, limit int) ([]PullRequest, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q, args := selectPull+" WHERE repo_id = ?", []any{r.ID}
	switch state {
	case "":
	case PullOpen, PullClosed, PullMerged:
		q += " AND state = ?"
		args = append(args, state)
	default:
		return nil, apperr.InvalidField("state", "state must be open, closed or merged")
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY number DESC LIMIT "+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PullRequest
	for rows.Next() {
		p, err := scanPull(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// EditPull changes a pull request's title and body (nil: unchanged).
func (s *Service) EditPull(ctx context.Context, r Repo, pr PullRequest, title, body *string) (PullRequest, error) {
	if title != nil {
		pr.Title = strings.TrimSpace(*title)
	}
	if body != nil {
		pr.Body = *body
	}
	if err := validatePullText(pr.Title, pr.Body); err != nil {
		return pr, err
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		if _, err := tx.Exec(ctx, "UPDATE pull_requests SET title = ?, body = ?, updated_at = ? WHERE id = ?", pr.Title, pr.Body, store.Time(now), pr.ID); err != nil {
			return err
		}
		pr.UpdatedAt = now.UTC().Truncate(time.Microsecond)
		if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.edit", OrgID: r.OrgID, Target: prTarget(r, pr)}); err != nil {
			return err
		}
		return s.publishPull(ctx, tx, r, pr, ActionEdited)
	})
	return pr, err
}

// ClosePull closes an open pull request without merging it.
func (s *Service) ClosePull(ctx context.Context, r Repo, pr PullRequest) (PullRequest, error) {
	if pr.State != PullOpen {
		return pr, apperr.E(apperr.Conflict, "pull request #%d is %s", pr.Number, pr.State)
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		n, err := tx.Exec(ctx, "UPDATE pull_requests SET state = 'closed', closed_at = ?, updated_at = ? WHERE id = ? AND state = 'open'",
			store.Time(now), store.Time(now), pr.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Conflict, "pull request #%d changed meanwhile; reload it", pr.Number)
		}
		pr.State, pr.ClosedAt, pr.UpdatedAt = PullClosed, now.UTC().Truncate(time.Microsecond), now.UTC().Truncate(time.Microsecond)
		if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.close", OrgID: r.OrgID, Target: prTarget(r, pr)}); err != nil {
			return err
		}
		return s.publishPull(ctx, tx, r, pr, ActionClosed)
	})
	return pr, err
}

// ReopenPull reopens a closed pull request whose head branch still exists.
func (s *Service) ReopenPull(ctx context.Context, r Repo, pr PullRequest) (PullRequest, error) {
	if pr.State != PullClosed {
		return pr, apperr.E(apperr.Conflict, "only a closed pull request can be reopened (#%d is %s)", pr.Number, pr.State)
	}
	head, err := s.resolveCommit(ctx, s.Path(r), nil, "refs/heads/"+pr.Head)
	if err != nil {
		return pr, apperr.E(apperr.Conflict, "branch %s no longer exists; push it again to reopen", pr.Head)
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var open int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM pull_requests WHERE repo_id = ? AND head_ref = ? AND base_ref = ? AND state = 'open'",
			r.ID, pr.Head, pr.Base).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return apperr.E(apperr.Conflict, "another pull request from %s into %s is open", pr.Head, pr.Base)
		}
		now := s.now()
		n, err := tx.Exec(ctx, "UPDATE pull_requests SET state = 'open', closed_at = NULL, head_sha = ?, updated_at = ? WHERE id = ? AND state = 'closed'",
			head, store.Time(now), pr.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Conflict, "pull request #%d changed meanwhile; reload it", pr.Number)
		}
		moved := head != pr.HeadSHA
		pr.State, pr.ClosedAt, pr.HeadSHA, pr.UpdatedAt = PullOpen, time.Time{}, head, now.UTC().Truncate(time.Microsecond)
		if moved {
			if err := s.pinPull(ctx, r, pr); err != nil {
				return err
			}
			if err := s.dismissStale(ctx, tx, r, pr); err != nil {
				return err
			}
		}
		if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.reopen", OrgID: r.OrgID, Target: prTarget(r, pr)}); err != nil {
			return err
		}
		return s.publishPull(ctx, tx, r, pr, ActionReopened)
	})
	return pr, err
}

// syncPulls moves the open pull requests whose head is branch to sha
// (after a push), dismissing stale approvals where protection says so.
// It returns how many pull requests the branch heads.
func (s *Service) syncPulls(ctx context.Context, tx *store.Tx, r Repo, branch, sha string) (int, error) {
	rows, err := tx.Query(ctx, selectPull+" WHERE repo_id = ? AND head_ref = ? AND state = 'open'", r.ID, branch)
	if err != nil {
		return 0, err
	}
	var prs []PullRequest
	for rows.Next() {
		p, err := scanPull(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		prs = append(prs, p)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	now := s.now()
	for _, pr := range prs {
		if pr.HeadSHA == sha {
			continue
		}
		pr.HeadSHA = sha
		if _, err := tx.Exec(ctx, "UPDATE pull_requests SET head_sha = ?, updated_at = ? WHERE id = ?", sha, store.Time(now), pr.ID); err != nil {
			return 0, err
		}
		if err := s.pinPull(ctx, r, pr); err != nil {
			return 0, err
		}
		if err := s.dismissStale(ctx, tx, r, pr); err != nil {
			return 0, err
		}
		if err := s.publishPull(ctx, tx, r, pr, ActionSynchronized); err != nil {
			return 0, err
		}
	}
	return len(prs), nil
}

// dismissStale dismisses approvals of older commits when the base
// branch's protection asks for it.
func (s *Service) dismissStale(ctx context.Context, tx *store.Tx, r Repo, pr PullRequest) error {
	ps, err := s.Protections(ctx, r)
	if err != nil {
		return err
	}
	if !rulesFor(ps, pr.Base).dismissStale {
		return nil
	}
	n, err := tx.Exec(ctx, "UPDATE pr_reviews SET dismissed = TRUE WHERE pr_id = ? AND state = ? AND commit_sha <> ? AND dismissed = FALSE",
		pr.ID, ReviewApproved, pr.HeadSHA)
	if err != nil {
		return err
	}
	if n > 0 {
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.review.dismiss_stale", OrgID: r.OrgID, Target: prTarget(r, pr),
			ActorName: "system", Details: map[string]any{"dismissed": n, "head_sha": pr.HeadSHA}})
	}
	return nil
}

// Review states.
const (
	ReviewApproved         = "approved"
	ReviewChangesRequested = "changes_requested"
	ReviewCommented        = "commented"
)

// Review is a reviewer's verdict on a pull request at one commit.
type Review struct {
	ID        int64
	Author    string
	State     string
	Body      string
	CommitSHA string
	Dismissed bool
	CreatedAt time.Time
}

// AddReview records the caller's review of pr's current head.
func (s *Service) AddReview(ctx context.Context, r Repo, pr PullRequest, state, body string) (Review, error) {
	switch state {
	case ReviewApproved, ReviewChangesRequested, ReviewCommented:
	default:
		return Review{}, apperr.InvalidField("state", "state must be approved, changes_requested or commented")
	}
	if pr.State != PullOpen {
		return Review{}, apperr.E(apperr.Conflict, "pull request #%d is %s", pr.Number, pr.State)
	}
	if err := validateText("body", body, 64<<10, true); err != nil {
		return Review{}, err
	}
	if state == ReviewChangesRequested && strings.TrimSpace(body) == "" {
		return Review{}, apperr.InvalidField("body", "say what should change")
	}
	me := actorName(ctx)
	if me == pr.Author && state != ReviewCommented {
		return Review{}, apperr.E(apperr.Forbidden, "you cannot approve or request changes on your own pull request")
	}
	rv := Review{Author: me, State: state, Body: body, CommitSHA: pr.HeadSHA}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		if err := tx.QueryRow(ctx, `INSERT INTO pr_reviews (pr_id, author_id, author_name, state, body, commit_sha, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, pr.ID, nullID(actorID(ctx)), me, state, body, pr.HeadSHA, store.Time(now)).Scan(&rv.ID); err != nil {
			return err
		}
		rv.CreatedAt = now.UTC().Truncate(time.Microsecond)
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.review", OrgID: r.OrgID, Target: prTarget(r, pr),
			Details: map[string]any{"state": state, "commit": pr.HeadSHA}})
	})
	return rv, err
}

// Reviews lists pr's reviews, oldest first.
func (s *Service) Reviews(ctx context.Context, pr PullRequest) ([]Review, error) {
	rows, err := s.db.Query(ctx, "SELECT id, author_name, state, body, commit_sha, dismissed, created_at FROM pr_reviews WHERE pr_id = ? ORDER BY id", pr.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Review
	for rows.Next() {
		var rv Review
		if err := rows.Scan(&rv.ID, &rv.Author, &rv.State, &rv.Body, &rv.CommitSHA, &rv.Dismissed, store.TimeDest(&rv.CreatedAt)); err != nil {
			return nil, err
		}
		out = append(out, rv)
	}
	return out, rows.Err()
}

// Comment is a remark on a pull request, on its whole or on one line of
// one file of its diff.
type Comment struct {
	ID        int64
	Author    string
	Body      string
	Path      string // "" for a comment on the whole pull request
	Line      int
	Side      string // "new" or "old"
	CommitSHA string
	CreatedAt time.Time
}

// AddComment adds the caller's comment to pr.
func (s *Service) AddComment(ctx context.Context, r Repo, pr PullRequest, c Comment) (Comment, error) {
	if strings.TrimSpace(c.Body) == "" {
		return c, apperr.InvalidField("body", "comment must not be empty")
	}
	if err := validateText("body", c.Body, 64<<10, true); err != nil {
		return c, err
	}
	if c.Path != "" {
		if err := validateText("path", c.Path, 4096, false); err != nil {
			return c, err
		}
		if c.Line <= 0 || c.Line > 10_000_000 {
			return c, apperr.InvalidField("line", "line must be a positive line number")
		}
		switch c.Side {
		case "":
			c.Side = "new"
		case "new", "old":
		default:
			return c, apperr.InvalidField("side", "side must be new or old")
		}
		d, err := s.PullDiff(ctx, r, pr)
		if err != nil {
			return c, err
		}
		if !d.HasLine(c.Path, c.Side, c.Line) {
			return c, apperr.InvalidField("line", "line %d (%s side) of %s is not part of this pull request's diff", c.Line, c.Side, clip(c.Path, 120))
		}
	} else {
		c.Line, c.Side = 0, ""
	}
	c.Author, c.CommitSHA = actorName(ctx), pr.HeadSHA
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		if err := tx.QueryRow(ctx, `INSERT INTO pr_comments (pr_id, author_id, author_name, body, path, line, side, commit_sha, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, pr.ID, nullID(actorID(ctx)), c.Author, c.Body, c.Path, c.Line, c.Side,
			c.CommitSHA, store.Time(now)).Scan(&c.ID); err != nil {
			return err
		}
		c.CreatedAt = now.UTC().Truncate(time.Microsecond)
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.comment", OrgID: r.OrgID, Target: prTarget(r, pr),
			Details: map[string]any{"path": c.Path, "line": c.Line}})
	})
	return c, err
}

// Comments lists pr's comments, oldest first.
func (s *Service) Comments(ctx context.Context, pr PullRequest) ([]Comment, error) {
	rows, err := s.db.Query(ctx, "SELECT id, author_name, body, path, line, side, commit_sha, created_at FROM pr_comments WHERE pr_id = ? ORDER BY id", pr.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Comment
	for rows.Next() {
		var c Comment
		var line int64
		if err := rows.Scan(&c.ID, &c.Author, &c.Body, &c.Path, &line, &c.Side, &c.CommitSHA, store.TimeDest(&c.CreatedAt)); err != nil {
			return nil, err
		}
		c.Line = int(line)
		out = append(out, c)
	}
	return out, rows.Err()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
