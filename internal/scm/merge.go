package scm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// Merge strategies.
const (
	MergeCommit = "merge"
	MergeSquash = "squash"
	MergeRebase = "rebase"
)

// MergeStatus says whether a pull request can merge now, and why not.
type MergeStatus struct {
	// Mergeable is false when git cannot merge head into base cleanly.
	Mergeable bool
	Conflicts []string
	// Blockers are the unmet rules (branch protection, gates); merging
	// is allowed when Mergeable and Blockers is empty.
	Blockers  []string
	Approvals int
	Required  int
	Checks    []Status
	BaseSHA   string
}

// CanMerge reports whether the pull request may merge now.
func (m MergeStatus) CanMerge() bool { return m.Mergeable && len(m.Blockers) == 0 }

// MergeStatus computes mergeability (a trial merge with git merge-tree,
// nothing written to any branch) and the branch protection of the base.
func (s *Service) MergeStatus(ctx context.Context, r Repo, pr PullRequest) (MergeStatus, error) {
	var m MergeStatus
	if pr.State != PullOpen {
		m.Blockers = append(m.Blockers, "the pull request is "+pr.State)
		return m, nil
	}
	dir := s.Path(r)
	base, err := s.resolveCommit(ctx, dir, nil, "refs/heads/"+pr.Base)
	if err != nil {
		m.Blockers = append(m.Blockers, "the base branch "+pr.Base+" no longer exists")
		return m, nil
	}
	m.BaseSHA = base
	if _, err := s.resolveCommit(ctx, dir, nil, "refs/heads/"+pr.Head); err != nil {
		m.Blockers = append(m.Blockers, "the head branch "+pr.Head+" no longer exists")
	}
	_, conflicts, err := s.mergeTree(ctx, dir, "", base, pr.HeadSHA)
	if err != nil {
		return m, err
	}
	m.Conflicts = conflicts
	m.Mergeable = len(conflicts) == 0
	ps, err := s.Protections(ctx, r)
	if err != nil {
		return m, err
	}
	rl := rulesFor(ps, pr.Base)
	if m.Checks, err = s.Statuses(ctx, r, pr.HeadSHA); err != nil {
		return m, err
	}
	if missing, err := s.missingChecks(ctx, s.db, r, pr.HeadSHA, rl.checks); err != nil {
		return m, err
	} else if len(missing) > 0 {
		m.Blockers = append(m.Blockers, "required checks not passed: "+strings.Join(missing, ", "))
	}
	reviews, err := s.Reviews(ctx, pr)
	if err != nil {
		return m, err
	}
	latest := map[string]Review{}
	var order []string
	for _, rv := range reviews {
		if rv.Dismissed || rv.State == ReviewCommented {
			continue
		}
		if _, ok := latest[rv.Author]; !ok {
			order = append(order, rv.Author)
		}
		latest[rv.Author] = rv
	}
	var requested []string
	for _, who := range order {
		rv := latest[who]
		switch rv.State {
		case ReviewApproved:
			if !rl.dismissStale || rv.CommitSHA == pr.HeadSHA {
				m.Approvals++
			}
		case ReviewChangesRequested:
			requested = append(requested, who)
		}
	}
	m.Required = rl.approvals
	if m.Approvals < rl.approvals {
		m.Blockers = append(m.Blockers, fmt.Sprintf("%s of %d required", plural(m.Approvals, "approval", "approvals"), rl.approvals))
	}
	if rl.approvals > 0 && len(requested) > 0 {
		m.Blockers = append(m.Blockers, "changes requested by "+strings.Join(requested, ", "))
	}
	for _, g := range s.gates {
		if err := g.MayMerge(ctx, pr, r); err != nil {
			if k := apperr.KindOf(err); k == apperr.Internal || k == apperr.Unavailable {
				return m, err
			}
			m.Blockers = append(m.Blockers, apperr.Message(err))
		}
	}
	return m, nil
}

// mergeTree merges two commits into a tree (git merge-tree --write-tree);
// conflicts lists the conflicted paths when the merge is not clean.
func (s *Service) mergeTree(ctx context.Context, dir, mergeBase, ours, theirs string) (tree string, conflicts []string, err error) {
	args := []string{"merge-tree", "--write-tree", "--name-only", "--no-messages"}
	if mergeBase != "" {
		args = append(args, "--merge-base="+mergeBase)
	}
	out, err := s.run(ctx, dir, nil, nil, append(args, ours, theirs)...)
	if err != nil && exitCode(err) != 1 {
		return "", nil, err
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 || !hexID(lines[0]) {
		return "", nil, fmt.Errorf("merge-tree: unexpected output %q", clip(string(out), 200))
	}
	if err != nil { // exit 1: conflicts
		seen := map[string]bool{}
		for _, l := range lines[1:] {
			if l == "" {
				break
			}
			if !seen[l] {
				seen[l] = true
				conflicts = append(conflicts, l)
			}
		}
		if len(conflicts) == 0 {
			conflicts = []string{"(the merge is not clean)"}
		}
	}
	return lines[0], conflicts, nil
}

// MergeOptions tune a merge.
type MergeOptions struct {
	Strategy string // merge (default), squash or rebase
	// Message replaces the default commit message (merge and squash).
	Message string
}

// Merge merges an open pull request into its base branch with the chosen
// strategy, after branch protection and the merge gates allow it. The
// base branch moves only if it is still where the checks saw it.
func (s *Service) Merge(ctx context.Context, r Repo, pr PullRequest, merger identity.User, o MergeOptions) (PullRequest, error) {
	if o.Strategy == "" {
		o.Strategy = MergeCommit
	}
	switch o.Strategy {
	case MergeCommit, MergeSquash, MergeRebase:
	default:
		return pr, apperr.InvalidField("strategy", "strategy must be merge, squash or rebase")
	}
	if err := validateText("message", o.Message, 64<<10, true); err != nil {
		return pr, err
	}
	unlock, err := s.lockRepo(ctx, r.ID)
	if err != nil {
		return pr, err
	}
	defer unlock()
	// Re-read under the lock: a push may have moved it.
	if pr, err = s.Pull(ctx, r, pr.Number); err != nil {
		return pr, err
	}
	if pr.State != PullOpen {
		return pr, apperr.E(apperr.Conflict, "pull request #%d is %s", pr.Number, pr.State)
	}
	st, err := s.MergeStatus(ctx, r, pr)
	if err != nil {
		return pr, err
	}
	if !st.Mergeable && pr.State == PullOpen && len(st.Conflicts) > 0 {
		return pr, apperr.E(apperr.Conflict, "pull request #%d has conflicts with %s in: %s", pr.Number, pr.Base, strings.Join(st.Conflicts, ", "))
	}
	if len(st.Blockers) > 0 {
		return pr, apperr.E(apperr.Forbidden, "pull request #%d cannot merge: %s", pr.Number, strings.Join(st.Blockers, "; "))
	}
	dir := s.Path(r)
	base := st.BaseSHA
	who := merger.DisplayName
	if who == "" {
		who = merger.Username
	}
	email := merger.Email
	if email == "" {
		email = merger.Username + "@users.rampart.invalid"
	}
	env := []string{"GIT_AUTHOR_NAME=" + who, "GIT_AUTHOR_EMAIL=" + email, "GIT_COMMITTER_NAME=" + who, "GIT_COMMITTER_EMAIL=" + email}
	ref := "#" + strconv.FormatInt(pr.Number, 10)
	var newTip string
	switch o.Strategy {
	case MergeCommit, MergeSquash:
		tree, _, err := s.mergeTree(ctx, dir, "", base, pr.HeadSHA)
		if err != nil {
			return pr, err
		}
		msg := o.Message
		args := []string{"commit-tree", tree, "-p", base}
		if o.Strategy == MergeCommit {
			if msg == "" {
				msg = fmt.Sprintf("Merge pull request %s from %s\n\n%s", ref, pr.Head, pr.Title)
				if pr.Body != "" {
					msg += "\n\n" + pr.Body
				}
			}
			args = append(args, "-p", pr.HeadSHA)
		} else if msg == "" {
			msg = pr.Title + " (" + ref + ")"
			if pr.Body != "" {
				msg += "\n\n" + pr.Body
			}
		}
		out, err := s.run(ctx, dir, env, strings.NewReader(msg), args...)
		if err != nil {
			return pr, err
		}
		newTip = strings.TrimSpace(string(out))
	case MergeRebase:
		if newTip, err = s.rebaseOnto(ctx, dir, env, base, pr.HeadSHA); err != nil {
			return pr, err
		}
	}
	// Move the base branch only from where the checks saw it.
	if _, err := s.run(ctx, dir, nil, nil, "update-ref", "-m", "merge pull request "+ref, "refs/heads/"+pr.Base, newTip, base); err != nil {
		return pr, apperr.Wrap(err, apperr.Conflict, pr.Base+" moved while merging; try again")
	}
	commits, err := s.commitsBetween(ctx, dir, base, newTip, maxEventCommits)
	if err != nil {
		s.log.WarnContext(ctx, "list merged commits", "repo", r.FullName(), "err", err)
	}
	if commits == nil {
		commits = []Commit{}
	}
	err = s.db.Tx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE pull_requests SET state = 'merged', merge_commit = ?, merged_by = ?, merged_at = ?,
			base_sha = ?, updated_at = ? WHERE id = ?`, newTip, merger.Username, store.Time(now), base, store.Time(now), pr.ID); err != nil {
			return err
		}
		pr.State, pr.MergeCommit, pr.MergedBy, pr.BaseSHA = PullMerged, newTip, merger.Username, base
		pr.MergedAt, pr.UpdatedAt = now.UTC().Truncate(time.Microsecond), now.UTC().Truncate(time.Microsecond)
		if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "pull.merge", OrgID: r.OrgID, Target: prTarget(r, pr),
			Details: map[string]any{"strategy": o.Strategy, "base": pr.Base, "before": base, "after": newTip, "head_sha": pr.HeadSHA}}); err != nil {
			return err
		}
		if err := s.publishPull(ctx, tx, r, pr, ActionMerged); err != nil {
			return err
		}
		return s.events.Publish(ctx, tx, EventPush, PushEvent{Repo: r.FullName(), RepoID: r.ID, Ref: "refs/heads/" + pr.Base,
			Before: base, After: newTip, DefaultBranch: pr.Base == r.DefaultBranch, Pusher: merger.Username, Commits: commits})
	})
	if err != nil {
		return pr, err
	}
	return pr, nil
}

// rebaseOnto replays the commits of head that base lacks onto base, one
// by one, keeping their authors and messages.
func (s *Service) rebaseOnto(ctx context.Context, dir string, env []string, base, head string) (string, error) {
	out, err := s.run(ctx, dir, nil, nil, "rev-list", "--reverse", "--topo-order", "--parents", "--max-count=1001", head, "^"+base)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 1000 {
		return "", apperr.E(apperr.Invalid, "too many commits to rebase (over 1000); merge instead")
	}
	tip := base
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return "", apperr.E(apperr.Conflict, "commit %s is a merge commit: rebase cannot replay it; merge or squash instead", short(f[0]))
		}
		c, parent := f[0], f[1]
		tree, ok, err := s.cherryPickTree(ctx, dir, tip, parent, c)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", apperr.E(apperr.Conflict, "commit %s does not apply cleanly on %s; merge instead", short(c), short(base))
		}
		meta, err := s.run(ctx, dir, nil, nil, "show", "-s", "--format=%an%x00%ae%x00%aI%x00%B", c)
		if err != nil {
			return "", err
		}
		parts := strings.SplitN(string(meta), "\x00", 4)
		if len(parts) != 4 {
			return "", fmt.Errorf("read commit %s", c)
		}
		cenv := append([]string{"GIT_AUTHOR_NAME=" + parts[0], "GIT_AUTHOR_EMAIL=" + parts[1], "GIT_AUTHOR_DATE=" + parts[2]}, committerOnly(env)...)
		nc, err := s.run(ctx, dir, cenv, strings.NewReader(parts[3]), "commit-tree", tree, "-p", tip)
		if err != nil {
			return "", err
		}
		tip = strings.TrimSpace(string(nc))
	}
	return tip, nil
}

// cherryPickTree applies the change parent→c to tip's tree in a
// throwaway index (no work tree) and writes the result; ok is false when
// the change does not apply cleanly.
func (s *Service) cherryPickTree(ctx context.Context, dir, tip, parent, c string) (tree string, ok bool, err error) {
	idx, err := os.CreateTemp(s.tmpDir, "index-")
	if err != nil {
		return "", false, err
	}
	idx.Close()
	defer os.Remove(idx.Name())
	env := []string{"GIT_INDEX_FILE=" + idx.Name()}
	if _, err := s.run(ctx, dir, env, nil, "read-tree", tip); err != nil {
		return "", false, err
	}
	patch, err := s.run(ctx, dir, nil, nil, "diff-tree", "-p", "--binary", "--full-index", "--no-renames", parent, c)
	if err != nil {
		return "", false, err
	}
	if len(patch) > 0 {
		if _, err := s.run(ctx, dir, env, bytes.NewReader(patch), "apply", "--cached", "--whitespace=nowarn", "-"); err != nil {
			if exitCode(err) > 0 {
				return "", false, nil
			}
			return "", false, err
		}
	}
	out, err := s.run(ctx, dir, env, nil, "write-tree")
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(out)), true, nil
}

func committerOnly(env []string) []string {
	var out []string
	for _, e := range env {
		if strings.HasPrefix(e, "GIT_COMMITTER_") {
			out = append(out, e)
		}
	}
	return out
}

// commitsBetween lists the commits of to that from lacks, oldest first,
// the newest max of them.
func (s *Service) commitsBetween(ctx context.Context, dir, from, to string, max int) ([]Commit, error) {
	out, err := s.run(ctx, dir, nil, nil, "log", "--max-count="+strconv.Itoa(max), "--reverse", "--no-show-signature",
		"--format=%H%x00%an%x00%ae%x00%at%x00%B%x1e", to, "^"+from, "--")
	if err != nil {
		return nil, err
	}
	return parseCommitLog(string(out)), nil
}
