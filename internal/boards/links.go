package boards

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// LinkKind is what a link points at.
type LinkKind string

// Kinds of link.
const (
	LinkCommit      LinkKind = "commit"
	LinkPullRequest LinkKind = "pull_request"
	LinkAlert       LinkKind = "alert"
)

// Label is the kind's name for people.
func (k LinkKind) Label() string {
	switch k {
	case LinkPullRequest:
		return "Pull request"
	case LinkAlert:
		return "Security alert"
	}
	return "Commit"
}

// Link ties a work item to a commit, a pull request or a security alert.
type Link struct {
	Kind LinkKind
	// RepoID and Repo ("ORG/NAME") name the repository of a commit or
	// pull request (and of an alert).
	RepoID int64
	Repo   string
	// Ref is the commit id, the pull request number or the alert id.
	Ref   string
	Title string
	URL   string
	// Fixes is set when the mention carried a closing keyword.
	Fixes     bool
	CreatedAt time.Time
}

// Short is the link's ref shortened for display (commit ids to 10).
func (l Link) Short() string {
	if l.Kind == LinkCommit && len(l.Ref) > 10 {
		return l.Ref[:10]
	}
	return l.Ref
}

// Events scm publishes that boards reads.
const (
	EventPush        = "scm.push"
	EventPullRequest = "scm.pull_request"
)

// PushEvent is the payload of scm.push, as scm documents it.
type PushEvent struct {
	Repo          string       `json:"repo"` // ORG/NAME
	RepoID        int64        `json:"repo_id"`
	Ref           string       `json:"ref"`
	Before        string       `json:"before"`
	After         string       `json:"after"`
	DefaultBranch bool         `json:"default_branch"`
	Pusher        string       `json:"pusher"`
	Commits       []PushCommit `json:"commits"`
}

// PushCommit is one commit of a push.
type PushCommit struct {
	ID          string `json:"id"`
	Message     string `json:"message"`
	AuthorName  string `json:"author_name"`
	AuthorEmail string `json:"author_email"`
	// Timestamp is kept as sent; boards does not read it.
	Timestamp json.RawMessage `json:"timestamp,omitempty"`
}

// PullRequestEvent is the payload of scm.pull_request, as scm documents it.
type PullRequestEvent struct {
	Action      string `json:"action"` // opened, edited, synchronized, closed, reopened, merged
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
}

// maxCommits bounds the commits of one push that are read for mentions.
const maxCommits = 2000

var shaRE = regexp.MustCompile(`^[0-9a-f]{4,64}$`)

// SplitRepo splits "ORG/NAME" and checks both names.
func SplitRepo(full string) (org, name string, err error) {
	org, name, ok := strings.Cut(full, "/")
	if !ok || strings.Contains(name, "/") {
		return "", "", apperr.InvalidField("repo", "repository %q is not of the form ORG/NAME", clip(full))
	}
	if err := identity.ValidateName("repo", org); err != nil {
		return "", "", err
	}
	if err := ValidateText("repo", name, 100, false); err != nil || name == "" || name == "." || name == ".." {
		return "", "", apperr.InvalidField("repo", "repository name %q is not valid", clip(name))
	}
	return org, name, nil
}

// handle is the boards subscriber. Malformed events are logged and
// dropped: retrying cannot mend them, and they must not hold up the ones
// behind.
func (s *Service) handle(ctx context.Context, e events.Event) error {
	var err error
	switch e.Type {
	case EventPush:
		var p PushEvent
		if err = decode(e, &p); err == nil {
			err = s.HandlePush(ctx, p)
		}
	case EventPullRequest:
		var p PullRequestEvent
		if err = decode(e, &p); err == nil {
			err = s.HandlePullRequest(ctx, p)
		}
	default:
		return nil
	}
	if err != nil && apperr.KindOf(err) != apperr.Internal && apperr.KindOf(err) != apperr.Unavailable {
		s.log.WarnContext(ctx, "ignoring event", "event", e.Seq, "type", e.Type, logging.KeyErr, err)
		return nil
	}
	return wrapf(err, "boards: event %d", e.Seq)
}

// decode reads an event's payload; a payload that does not decode is
// invalid, never worth a retry.
func decode(e events.Event, v any) error {
	if err := e.Decode(v); err != nil {
		return apperr.Wrap(err, apperr.Invalid, "malformed payload")
	}
	return nil
}

// orgOf finds the org of a repository named in an event.
func (s *Service) orgOf(ctx context.Context, repo string, repoID int64) (identity.Org, error) {
	if repoID <= 0 {
		return identity.Org{}, apperr.InvalidField("repo_id", "event without a repository id")
	}
	orgName, _, err := SplitRepo(repo)
	if err != nil {
		return identity.Org{}, err
	}
	return s.ids.Org(ctx, orgName)
}

// HandlePush links the items the pushed commits mention and, on the
// default branch, resolves the ones they fix.
func (s *Service) HandlePush(ctx context.Context, p PushEvent) error {
	o, err := s.orgOf(ctx, p.Repo, p.RepoID)
	if err != nil {
		return err
	}
	commits := p.Commits
	if len(commits) > maxCommits {
		commits = commits[:maxCommits]
	}
	actor := actorName(p.Pusher)
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, c := range commits {
			if !shaRE.MatchString(c.ID) {
				continue
			}
			for _, ref := range ParseRefs(c.Message) {
				l := Link{Kind: LinkCommit, RepoID: p.RepoID, Repo: p.Repo, Ref: c.ID, Title: firstLine(c.Message), Fixes: ref.Fixes}
				resolve := ref.Fixes && p.DefaultBranch
				via := fmt.Sprintf("commit %s in %s", c.ID, p.Repo)
				if err := s.mention(ctx, tx, o, ref.Number, l, resolve, actor, via); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// HandlePullRequest links the items a pull request's title and body
// mention and, once it is merged into the default branch, resolves the
// ones it fixes.
func (s *Service) HandlePullRequest(ctx context.Context, p PullRequestEvent) error {
	o, err := s.orgOf(ctx, p.Repo, p.RepoID)
	if err != nil {
		return err
	}
	if p.Number <= 0 {
		return apperr.InvalidField("number", "pull request event without a number")
	}
	refs := ParseRefs(p.Title + "\n" + p.Body)
	if len(refs) == 0 {
		return nil
	}
	resolve := false
	if p.Action == "merged" {
		if resolve, err = s.intoDefault(ctx, p); err != nil {
			return err
		}
	}
	actor := actorName(p.Author)
	l := Link{Kind: LinkPullRequest, RepoID: p.RepoID, Repo: p.Repo, Ref: strconv.FormatInt(p.Number, 10),
		Title: firstLine(p.Title), URL: safeURL(p.URL)}
	via := fmt.Sprintf("pull request #%d in %s", p.Number, p.Repo)
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, ref := range refs {
			l.Fixes = ref.Fixes
			if err := s.mention(ctx, tx, o, ref.Number, l, ref.Fixes && resolve, actor, via); err != nil {
				return err
			}
		}
		return nil
	})
}

// intoDefault reports whether a merged pull request went into its
// repository's default branch.
func (s *Service) intoDefault(ctx context.Context, p PullRequestEvent) (bool, error) {
	if s.repos == nil {
		return false, nil
	}
	_, def, err := s.repos.RepoPath(ctx, p.RepoID)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return def != "" && strings.TrimPrefix(p.Base, "refs/heads/") == strings.TrimPrefix(def, "refs/heads/"), nil
}

// mention links item number n of org o and, when resolve is set, resolves
// it — once per link, so that a redelivered event cannot undo a later
// reopening.
func (s *Service) mention(ctx context.Context, tx *store.Tx, o identity.Org, n int64, l Link, resolve bool, actor, via string) error {
	w, err := scanItem(tx.QueryRow(ctx, selectItem+" WHERE org_id = ? AND number = ?"+forUpdate(tx), o.ID, n))
	if apperr.Is(err, apperr.NotFound) {
		return nil // a number the org does not have: not a link
	}
	if err != nil {
		return err
	}
	linkID, resolved, err := s.upsertLink(ctx, tx, w, l)
	if err != nil || !resolve || resolved {
		return err
	}
	if _, err := tx.Exec(ctx, "UPDATE workitem_links SET resolved = ? WHERE id = ?", true, linkID); err != nil {
		return err
	}
	if !w.State.open() {
		return nil
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	from := w.State
	w.State, w.StateChangedAt, w.UpdatedAt = StateResolved, now, now
	stampState(&w, now)
	if _, err := tx.Exec(ctx, `UPDATE workitems SET state = ?, updated_at = ?, state_changed_at = ?, resolved_at = ?, closed_at = ?
		WHERE id = ?`, w.State, store.Time(now), store.Time(now), store.Time(w.ResolvedAt), store.Time(w.ClosedAt), w.ID); err != nil {
		return err
	}
	return s.audit.AppendTx(ctx, tx, audit.Record{Action: "workitem.resolve", OrgID: o.ID, Target: w.target(), ActorName: actor,
		Details: map[string]any{"state": []any{from, w.State}, "via": via}})
}

// upsertLink stores l on w once, returning its id and whether it already
// resolved the item.
func (s *Service) upsertLink(ctx context.Context, tx *store.Tx, w WorkItem, l Link) (int64, bool, error) {
	var (
		id       int64
		resolved bool
	)
	err := tx.QueryRow(ctx, `INSERT INTO workitem_links (item_id, kind, repo_id, repo, ref, title, url, fixes, resolved, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (item_id, kind, repo_id, ref) DO UPDATE SET title = excluded.title, url = excluded.url,
			fixes = (workitem_links.fixes OR excluded.fixes)
		RETURNING id, resolved`,
		w.ID, l.Kind, l.RepoID, l.Repo, l.Ref, l.Title, l.URL, l.Fixes, false, store.Time(s.now())).Scan(&id, &resolved)
	if err != nil {
		return 0, false, fmt.Errorf("link AB#%d: %w", w.Number, err)
	}
	return id, resolved, nil
}

// LinkTx links w to l inside the caller's transaction (idempotent).
func (s *Service) LinkTx(ctx context.Context, tx *store.Tx, w WorkItem, l Link) error {
	_, _, err := s.upsertLink(ctx, tx, w, l)
	return err
}

// CreateLinkedTx creates a work item linked to l, inside the caller's
// transaction (security alerts create their work items this way).
func (s *Service) CreateLinkedTx(ctx context.Context, tx *store.Tx, o identity.Org, in NewItem, l Link) (WorkItem, error) {
	w, err := s.CreateTx(ctx, tx, o, in)
	if err != nil {
		return w, err
	}
	return w, s.LinkTx(ctx, tx, w, l)
}

// Links returns what item w is linked to, oldest first.
func (s *Service) Links(ctx context.Context, w WorkItem) ([]Link, error) {
	rows, err := s.db.Query(ctx, `SELECT kind, repo_id, repo, ref, title, url, fixes, created_at FROM workitem_links
		WHERE item_id = ? ORDER BY created_at, id`, w.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Link{}
	for rows.Next() {
		var l Link
		if err := rows.Scan(&l.Kind, &l.RepoID, &l.Repo, &l.Ref, &l.Title, &l.URL, &l.Fixes, store.TimeDest(&l.CreatedAt)); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// firstLine returns the first line of a message, without control
// characters, at most MaxTitle bytes.
func firstLine(msg string) string {
	line, _, _ := strings.Cut(msg, "\n")
	line = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(line, ""))
	line = strings.TrimSpace(line)
	if len(line) > MaxTitle {
		line = strings.ToValidUTF8(line[:MaxTitle], "")
	}
	return line
}

// safeURL keeps an http(s) URL from an event, else nothing: it becomes a
// link on a page.
func safeURL(raw string) string {
	if len(raw) > 2048 {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// actorName is who an event-driven change is audited as.
func actorName(user string) string {
	user = firstLine(user)
	if user == "" {
		return "system"
	}
	if len(user) > 64 {
		user = user[:64]
	}
	return user
}
