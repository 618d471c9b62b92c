package scm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/store"
)

// pushSession is the state of one receive-pack run: what pre-receive
// accepted, for post-receive to record.
type pushSession struct {
	s   *Service
	c   GitCommand
	ctx context.Context

	unlock  func()
	commits map[string][]Commit // by ref: the commits new to the repository
	bypass  *SecretBypass
}

func (p *pushSession) release() {
	if p.unlock != nil {
		p.unlock()
	}
}

// Commit is a commit as events and pages show it.
type Commit struct {
	ID          string    `json:"id"`
	Message     string    `json:"message"`
	AuthorName  string    `json:"author_name"`
	AuthorEmail string    `json:"author_email"`
	Timestamp   time.Time `json:"timestamp"`
}

// maxEventCommits caps the commits of one ref in an scm.push event.
const maxEventCommits = 100

// refusal is why one ref update is refused.
type refusal struct {
	ref, why string
}

// preReceive decides a push: every update must pass branch protection,
// then the new content must hold no secret (or carry a bypass reason).
func (p *pushSession) preReceive(req hookRequest) (bool, []string) {
	s, r := p.s, p.c.Repo
	ctx, cancel := context.WithTimeout(p.ctx, s.hookTO)
	defer cancel()
	start := time.Now()
	var scanTime time.Duration
	defer func() {
		// Benchmarks (bench/pushprotect) read these timings.
		s.log.DebugContext(ctx, "pre-receive checked", "repo", r.FullName(), "updates", len(req.Updates),
			"checks_ms", float64(time.Since(start).Microseconds())/1000, "scan_ms", float64(scanTime.Microseconds())/1000)
	}()
	fail := func(err error) (bool, []string) {
		if apperr.KindOf(err) == apperr.Internal {
			s.log.ErrorContext(ctx, "pre-receive", "repo", r.FullName(), "err", err)
		}
		return false, []string{"rampart: push refused: " + apperr.Message(err)}
	}
	if p.unlock == nil {
		unlock, err := s.lockRepo(ctx, r.ID)
		if err != nil {
			return fail(err)
		}
		p.unlock = unlock
	}
	env, err := p.quarantineEnv(req.Quarantine)
	if err != nil {
		return fail(err)
	}
	dir := s.Path(r)
	current, err := s.refsAt(ctx, dir, nil)
	if err != nil {
		return fail(err)
	}
	protections, err := s.Protections(ctx, r)
	if err != nil {
		return fail(err)
	}
	var refused []refusal
	var stale []string
	for _, u := range req.Updates {
		cur := current[u.Ref]
		if cur == "" {
			cur = zeroID
		}
		if cur != u.Old {
			stale = append(stale, u.Ref)
			continue
		}
		why, err := p.checkUpdate(ctx, env, protections, u)
		if err != nil {
			return fail(err)
		}
		if why != "" {
			refused = append(refused, refusal{u.Ref, why})
		}
	}
	if len(stale) > 0 {
		lines := []string{"", "rampart: push refused: the remote changed while you pushed:"}
		for _, ref := range stale {
			lines = append(lines, "  "+ref+" is no longer at the commit your push started from")
		}
		return false, append(lines, "", "Fetch first (git pull --rebase, or git fetch and merge), then push again.", "")
	}
	if len(refused) > 0 {
		lines := []string{"", "rampart: push refused by branch protection:"}
		for _, x := range refused {
			lines = append(lines, "  "+x.ref+": "+x.why)
		}
		return false, append(lines, "")
	}

	// Push protection: only the blobs this push brings. What post-receive
	// will announce is listed meanwhile.
	var (
		wg      sync.WaitGroup
		logErr  error
		commits = map[string][]Commit{}
	)
	wg.Go(func() {
		for _, u := range req.Updates {
			if u.delete() {
				continue
			}
			cs, err := s.newCommits(ctx, dir, env, u.New, maxEventCommits)
			if err != nil {
				logErr = err
				return
			}
			commits[u.Ref] = cs
		}
	})
	scanStart := time.Now()
	findings, err := p.scanPush(ctx, env, req.Updates, current)
	scanTime = time.Since(scanStart)
	wg.Wait()
	if err != nil {
		return fail(err)
	}
	if logErr != nil {
		return fail(logErr)
	}
	p.commits = commits
	if len(findings) > 0 {
		reason, bypass := pushOption(req.Options, "secret-bypass")
		if !bypass {
			return false, secretMessage(findings)
		}
		if err := validateBypassReason(reason); err != nil {
			return false, append(secretMessage(findings), "rampart: the bypass was not accepted: "+apperr.Message(err))
		}
		if err := p.recordBypass(ctx, reason, findings); err != nil {
			return fail(err)
		}
	}

	var lines []string
	if p.bypass != nil {
		lines = append(lines, "", fmt.Sprintf("rampart: push protection bypassed for %d secret(s); recorded in the audit log and reported to security.", len(p.bypass.Findings)), "")
	}
	return true, lines
}

// checkUpdate applies branch protection to one update; why is "" when the
// update may proceed.
func (p *pushSession) checkUpdate(ctx context.Context, env []string, ps []Protection, u refUpdate) (string, error) {
	s, r := p.s, p.c.Repo
	switch {
	case strings.HasPrefix(u.Ref, "refs/heads/"), strings.HasPrefix(u.Ref, "refs/tags/"):
	default:
		return "only branches (refs/heads/) and tags (refs/tags/) may be pushed", nil
	}
	branch, isBranch := u.branch()
	if !isBranch {
		return "", nil // tags: any commit or tag object
	}
	if err := ValidateBranchName(branch); err != nil {
		return apperr.Message(err), nil
	}
	// receive-pack itself refuses a branch pointing at anything but a
	// commit.
	if u.delete() && branch == r.DefaultBranch {
		return "the default branch cannot be deleted; make another branch the default first", nil
	}
	rl := rulesFor(ps, branch)
	if !rl.protected {
		return "", nil
	}
	switch {
	case u.delete():
		if !rl.allowDeletion {
			return "deleting this branch is not allowed (" + rl.what() + ")", nil
		}
		return "", nil
	case u.create():
		// A new branch matching a rule may be created; later pushes are checked.
	case rl.requirePR:
		return "changes must be made through a pull request (" + rl.what() + ")", nil
	default:
		ff, err := s.isAncestor(ctx, s.Path(r), env, u.Old, u.New)
		if err != nil {
			return "", err
		}
		if !ff && !rl.allowForcePush {
			return "force pushes are not allowed (" + rl.what() + "); fetch and merge or rebase instead", nil
		}
	}
	if len(rl.checks) > 0 {
		missing, err := s.missingChecks(ctx, s.db, r, u.New, rl.checks)
		if err != nil {
			return "", err
		}
		if len(missing) > 0 {
			return "required status checks have not passed on " + short(u.New) + ": " + strings.Join(missing, ", ") + " (" + rl.what() + ")", nil
		}
	}
	if rl.requireSigned {
		bad, err := s.unsignedCommits(ctx, env, r, u)
		if err != nil {
			return "", err
		}
		if len(bad) > 0 {
			return "commits must be signed with an SSH key registered in Rampart; not verified: " + strings.Join(bad, ", ") + " (" + rl.what() + ")", nil
		}
	}
	return "", nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// pushOption returns the value of a "name=value" push option.
func pushOption(opts []string, name string) (string, bool) {
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, name+"="); ok {
			return v, true
		}
		if o == name {
			return "", true
		}
	}
	return "", false
}

func validateBypassReason(reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return apperr.E(apperr.Invalid, "give a reason: git push -o secret-bypass=\"why this is safe\"")
	}
	return validateText("reason", reason, 500, false)
}

// newCommits lists the commits reachable from tip and from no ref of the
// repository (before the push), oldest first, the newest max of them.
func (s *Service) newCommits(ctx context.Context, dir string, env []string, tip string, max int) ([]Commit, error) {
	out, err := s.run(ctx, dir, env, nil, "log", "--max-count="+strconv.Itoa(max), "--reverse", "--no-show-signature",
		"--format=%H%x00%an%x00%ae%x00%at%x00%B%x1e", tip, "--not", "--branches", "--tags", "--")
	if err != nil {
		return nil, err
	}
	return parseCommitLog(string(out)), nil
}

// parseCommitLog reads the records of the --format used by newCommits.
func parseCommitLog(out string) []Commit {
	var cs []Commit
	for rec := range strings.SplitSeq(out, "\x1e") {
		rec = strings.TrimLeft(rec, "\n")
		f := strings.SplitN(rec, "\x00", 5)
		if len(f) != 5 {
			continue
		}
		sec, _ := strconv.ParseInt(f[3], 10, 64)
		msg := strings.TrimRight(f[4], "\n")
		if len(msg) > 4096 {
			msg = strings.ToValidUTF8(msg[:4096], "")
		}
		cs = append(cs, Commit{ID: f[0], AuthorName: f[1], AuthorEmail: f[2], Timestamp: time.Unix(sec, 0).UTC(), Message: msg})
	}
	return cs
}

// scanView makes a throwaway git directory in which git sees the objects
// of a push still in quarantine plus the repository's, and the
// repository's refs: the scanner runs plain git commands in it without
// the quarantine environment.
func (s *Service) scanView(ctx context.Context, r Repo, env []string, refs map[string]string) (string, func(), error) {
	var quarantine string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "GIT_QUARANTINE_PATH="); ok {
			quarantine = v
		}
	}
	if quarantine == "" {
		return s.Path(r), func() {}, nil
	}
	dir, err := os.MkdirTemp(s.tmpDir, "scan-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	var packed strings.Builder
	for name, id := range refs {
		packed.WriteString(id + " " + name + "\n")
	}
	files := map[string]string{
		"HEAD":                    "ref: refs/heads/" + r.DefaultBranch + "\n",
		"config":                  "[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
		"packed-refs":             packed.String(),
		"objects/info/alternates": quarantine + "\n" + filepath.Join(s.Path(r), "objects") + "\n",
		"refs/.keep":              "",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			cleanup()
			return "", nil, err
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return dir, cleanup, nil
}

// recordBypass audits a push protection bypass, publishes it and raises
// an alert, in one transaction with the audit entry.
func (p *pushSession) recordBypass(ctx context.Context, reason string, findings []report.Finding) error {
	s, r := p.s, p.c.Repo
	b := SecretBypass{Repo: r.FullName(), RepoID: r.ID, Pusher: p.c.Who.User.Username, Reason: strings.TrimSpace(reason),
		At: s.now().UTC()}
	for _, f := range findings {
		b.Findings = append(b.Findings, BypassedSecret{RuleID: f.RuleID, Title: f.Title, Path: f.Location.Path,
			Line: f.Location.StartLine, Commit: f.Location.Commit, Fingerprint: f.Fingerprint})
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var rules, paths []string
		for _, f := range b.Findings {
			if !slices.Contains(rules, f.RuleID) {
				rules = append(rules, f.RuleID)
			}
			paths = append(paths, fmt.Sprintf("%s:%d", f.Path, f.Line))
		}
		if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "repo.push.secret_bypass", OrgID: r.OrgID, Target: r.target(),
			Details: map[string]any{"reason": b.Reason, "rules": rules, "locations": paths, "secrets": len(b.Findings)}}); err != nil {
			return err
		}
		return s.events.Publish(ctx, tx, EventSecretBypass, b)
	})
	if err != nil {
		return err
	}
	p.bypass = &b
	if s.alerts != nil {
		if err := s.alerts.SecretBypassed(ctx, b); err != nil {
			s.log.ErrorContext(ctx, "raise secret bypass alert", "repo", r.FullName(), "err", err)
		}
	}
	if s.leaks != nil {
		if err := s.leaks.SecretsLeaked(ctx, r, findings); err != nil {
			s.log.ErrorContext(ctx, "report leaked secrets", "repo", r.FullName(), "err", err)
		}
	}
	return nil
}

// SecretBypass is a push that carried secrets past push protection with
// a reason (the payload of scm.secret_bypass).
type SecretBypass struct {
	Repo     string           `json:"repo"`
	RepoID   int64            `json:"repo_id"`
	Pusher   string           `json:"pusher"`
	Reason   string           `json:"reason"`
	At       time.Time        `json:"at"`
	Findings []BypassedSecret `json:"findings"`
}

// BypassedSecret says where a bypassed secret is, never what it is.
type BypassedSecret struct {
	RuleID      string `json:"rule_id"`
	Title       string `json:"title"`
	Path        string `json:"path"`
	Line        int    `json:"line"`
	Commit      string `json:"commit"`
	Fingerprint string `json:"fingerprint"`
}
