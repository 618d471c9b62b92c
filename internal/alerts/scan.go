package alerts

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/ignore"
	"github.com/rampartsec/rampart/internal/store"
)

// Events: scm's push, which alerts reads, and the ones alerts publishes.
const (
	EventPush      = boards.EventPush
	EventOpened    = "alerts.opened"
	EventFixed     = "alerts.fixed"
	EventDismissed = "alerts.dismissed"
)

// Event is the payload of alerts.opened, alerts.fixed and
// alerts.dismissed.
type Event struct {
	AlertID     int64  `json:"alert_id"`
	Org         string `json:"org"`
	Repo        string `json:"repo"` // ORG/NAME
	RepoID      int64  `json:"repo_id"`
	Kind        string `json:"kind"` // secret, vulnerability, misconfiguration
	Rule        string `json:"rule"`
	Severity    string `json:"severity"`
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path,omitempty"`
	Line        int    `json:"line,omitempty"`
	// Commit is where the finding was last seen (opened, dismissed) or
	// the commit that fixed it (fixed).
	Commit string `json:"commit,omitempty"`
	State  string `json:"state"`
	// Reopened is set on alerts.opened for an alert that was open before.
	Reopened bool   `json:"reopened,omitempty"`
	URL      string `json:"url"`
}

func (s *Service) publish(ctx context.Context, tx *store.Tx, typ string, a Alert) error {
	commit := a.LastCommit
	if typ == EventFixed {
		commit = a.FixedCommit
	}
	return s.bus.Publish(ctx, tx, typ, Event{AlertID: a.ID, Org: a.Org(), Repo: a.Repo, RepoID: a.RepoID, Kind: string(a.Kind),
		Rule: a.RuleID, Severity: a.Severity.String(), Fingerprint: a.Fingerprint, Path: a.Path, Line: a.Line, Commit: commit,
		State: string(a.State), Reopened: typ == EventOpened && a.Reopened > 0, URL: s.publicURL + Path(a.Org(), a.ID)})
}

// commitRE matches a full object id (SHA-1 or SHA-256). Only such ids
// reach git's command line, so nothing there can be read as an option.
var commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// zeroCommit reports an all-zero id: the branch was deleted.
func zeroCommit(c string) bool { return strings.Trim(c, "0") == "" }

// handle scans the default branch of a repository after each push to it.
// A push that cannot be scanned (the repository or commit is gone, the
// tree is over the limits) is recorded on the repository and dropped:
// retrying would not mend it, and later pushes must not wait behind it.
func (s *Service) handle(ctx context.Context, e events.Event) error {
	if e.Type != EventPush {
		return nil
	}
	var p boards.PushEvent
	if err := e.Decode(&p); err != nil {
		s.log.WarnContext(ctx, "ignoring malformed push event", "event", e.Seq, logging.KeyErr, err)
		return nil
	}
	if !p.DefaultBranch || zeroCommit(p.After) {
		return nil
	}
	repo, err := s.repoOf(ctx, p.Repo, p.RepoID, p.Ref)
	if err != nil {
		s.log.WarnContext(ctx, "ignoring push event", "event", e.Seq, "repo", clip(p.Repo), logging.KeyErr, err)
		return nil
	}
	if s.repos == nil {
		s.log.WarnContext(ctx, "cannot scan pushes: no repository directory is wired in", "repo", repo.Name)
		return nil
	}
	_, err = s.ScanCommit(ctx, repo, p.After)
	if err != nil && !errors.Is(err, errApply) {
		s.log.WarnContext(ctx, "default branch scan failed", "repo", repo.Name, "commit", clip(p.After), logging.KeyErr, err)
		return nil
	}
	return err
}

// Repo names a repository to scan.
type Repo struct {
	ID    int64
	Name  string // ORG/NAME
	Org   identity.Org
	Ref   string // the default branch, refs/heads/…
	Force bool   // a scan asked for by a person
}

// repoOf resolves a repository named in an event.
func (s *Service) repoOf(ctx context.Context, full string, id int64, ref string) (Repo, error) {
	if id <= 0 {
		return Repo{}, apperr.InvalidField("repo_id", "event without a repository id")
	}
	orgName, _, err := boards.SplitRepo(full)
	if err != nil {
		return Repo{}, err
	}
	o, err := s.ids.Org(ctx, orgName)
	if err != nil {
		return Repo{}, err
	}
	if len(ref) > 255 || !utf8.ValidString(ref) {
		ref = ""
	}
	return Repo{ID: id, Name: full, Org: o, Ref: ref}, nil
}

// Result says what one scan changed.
type Result struct {
	Repo     string `json:"repo"`
	Commit   string `json:"commit"`
	Findings int    `json:"findings"`
	Opened   int    `json:"opened"`
	Reopened int    `json:"reopened"`
	Fixed    int    `json:"fixed"`
	// Notes are what the scan could not do (unreadable files, files over
	// the size limit, a broken ignore file, …).
	Notes []string `json:"notes,omitempty"`
	// Capped is set when the scan found more than the alert limit: only
	// the worst were kept, and no alert was marked fixed.
	Capped bool `json:"capped,omitempty"`
	// Superseded is set when a newer scan of the repository was applied
	// first; this one changed nothing.
	Superseded bool `json:"superseded,omitempty"`
}

// errApply marks a failure to record a scan (the store), which is worth a
// retry, unlike a failure to scan.
var errApply = errors.New("apply scan")

func (s *Service) repoLock(id int64) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.repoLocks[id]
	if !ok {
		m = &sync.Mutex{}
		s.repoLocks[id] = m
	}
	return m
}

// ScanCommit scans the tree of commit in repo and brings its alerts up to
// date. A failed scan is recorded on the repository.
func (s *Service) ScanCommit(ctx context.Context, repo Repo, commit string) (Result, error) {
	res := Result{Repo: repo.Name, Commit: commit}
	if s.repos == nil {
		return res, apperr.E(apperr.Unavailable, "repositories cannot be scanned: no repository directory is wired in")
	}
	lock := s.repoLock(repo.ID)
	lock.Lock()
	defer lock.Unlock()
	started := s.now()
	if !commitRE.MatchString(commit) {
		err := apperr.InvalidField("commit", "%q is not a full commit id", clip(printable(commit)))
		s.recordFailure(ctx, repo, "", started, err)
		return res, err
	}
	rep, notes, err := s.scanTree(ctx, repo, commit)
	if err != nil {
		s.recordFailure(ctx, repo, commit, started, err)
		return res, err
	}
	res.Notes = notes
	if err := s.apply(ctx, repo, commit, started, rep, &res); err != nil {
		return res, fmt.Errorf("%w: %w", errApply, err)
	}
	return res, nil
}

// scanTree writes out the tree of commit and scans it.
func (s *Service) scanTree(ctx context.Context, repo Repo, commit string) (*scan.Report, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.limits.Timeout)
	defer cancel()
	gitDir, _, err := s.repos.RepoPath(ctx, repo.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(s.tempDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", repo.Name, err)
	}
	dir, err := os.MkdirTemp(s.tempDir, "rampart-alerts-")
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", repo.Name, err)
	}
	defer os.RemoveAll(dir)
	tree := filepath.Join(dir, "tree")
	var notes []string
	skipped, err := s.extract(ctx, gitDir, commit, tree)
	if err != nil {
		return nil, nil, err
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d files over %d bytes, symbolic links or special files were not scanned", skipped, s.limits.MaxFileSize))
	}
	sc, err := s.scanner(ctx)
	if err != nil {
		return nil, nil, err
	}
	rep, err := sc.Dir(ctx, tree, scan.Options{Kinds: scan.AllKinds, MaxFileSize: s.limits.MaxFileSize, Now: s.now, Workers: 2})
	if err != nil {
		return nil, nil, err
	}
	sup, err := ignore.Load(filepath.Join(tree, filepath.FromSlash(ignore.DefaultPath)))
	if err != nil {
		notes = append(notes, ignore.DefaultPath+" was not applied: "+printable(strings.TrimPrefix(err.Error(), tree+string(filepath.Separator))))
	} else {
		sup.Path = ignore.DefaultPath
		sup.Apply(rep, s.now())
	}
	for _, n := range rep.Notes {
		if len(notes) >= 20 {
			notes = append(notes, fmt.Sprintf("and %d more notes", len(rep.Notes)-20))
			break
		}
		msg := printable(n.Message)
		if n.Path != "" {
			msg = printable(n.Path) + ": " + msg
		}
		notes = append(notes, msg)
	}
	return rep, notes, nil
}

// extract writes the regular files of commit's tree under dest, within
// the limits, and returns how many entries it left out.
func (s *Service) extract(ctx context.Context, gitDir, commit, dest string) (skipped int, err error) {
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.git, "--git-dir="+gitDir, "archive", "--format=tar", commit)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, apperr.Wrap(err, apperr.Unavailable, "cannot run git")
	}
	skipped, werr := s.writeTree(root, tar.NewReader(out))
	if werr != nil {
		cancel() // stop git, then reap it
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		return skipped, werr
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "not a valid object name") || strings.Contains(msg, "not a tree object") ||
			strings.Contains(msg, "not a git repository") || strings.Contains(msg, "bad object") {
			return skipped, apperr.Wrap(fmt.Errorf("git archive: %s", msg), apperr.NotFound, "commit "+short(commit)+" is not in the repository")
		}
		return skipped, fmt.Errorf("git archive %s: %v: %s", short(commit), err, msg)
	}
	return skipped, nil
}

// writeTree writes the regular files of a tar stream into root.
func (s *Service) writeTree(root *os.Root, tr *tar.Reader) (skipped int, err error) {
	var total int64
	files := 0
	// git archive lists a directory's files together: the last directory
	// written to stays open, so that each file costs one openat, not one
	// per path component.
	dirs := dirCache{root: root}
	defer dirs.close()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, apperr.Wrap(err, apperr.Invalid, "the repository's tree could not be read")
		}
		name, ok := safeName(h.Name)
		if !ok {
			skipped++
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return skipped, err
			}
		case tar.TypeReg:
			if h.Size > s.limits.MaxFileSize || h.Size < 0 {
				skipped++
				continue
			}
			files++
			total += h.Size
			if files > s.limits.MaxFiles {
				return skipped, apperr.E(apperr.TooLarge, "the tree has more than %d files: not scanned", s.limits.MaxFiles)
			}
			if total > s.limits.MaxTreeBytes {
				return skipped, apperr.E(apperr.TooLarge, "the tree is over %d bytes: not scanned", s.limits.MaxTreeBytes)
			}
			dir, err := dirs.open(path.Dir(name))
			if err != nil {
				return skipped, err
			}
			f, err := dir.OpenFile(path.Base(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				skipped++
				continue
			}
			_, cerr := io.Copy(f, io.LimitReader(tr, h.Size))
			if err := errors.Join(cerr, f.Close()); err != nil {
				return skipped, err
			}
		case tar.TypeXGlobalHeader:
			// git archive's comment with the commit id.
		default:
			// Symbolic links (which could point anywhere), submodules and
			// the rest are not scanned.
			skipped++
		}
	}
}

// dirCache keeps the directory of the tree last written to open.
type dirCache struct {
	root *os.Root
	name string
	dir  *os.Root
}

// open returns directory name (made if missing) of the tree, as a root of
// its own: nothing opened through it leaves it.
func (c *dirCache) open(name string) (*os.Root, error) {
	if name == "." {
		return c.root, nil
	}
	if c.dir != nil && c.name == name {
		return c.dir, nil
	}
	c.close()
	if err := c.root.MkdirAll(name, 0o700); err != nil {
		return nil, err
	}
	d, err := c.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	c.name, c.dir = name, d
	return d, nil
}

func (c *dirCache) close() {
	if c.dir != nil {
		c.dir.Close()
		c.dir, c.name = nil, ""
	}
}

// safeName cleans a path from the tree; absolute paths, paths leaving the
// tree, .git and control characters are refused.
func safeName(name string) (string, bool) {
	if name == "" || len(name) > 4096 || !utf8.ValidString(name) || strings.HasPrefix(name, "/") || strings.ContainsRune(name, '\\') {
		return "", false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	clean := path.Clean(name)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	for part := range strings.SplitSeq(clean, "/") {
		if part == ".." || strings.EqualFold(part, ".git") {
			return "", false
		}
	}
	return clean, true
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// recordFailure notes on the repository why its last scan failed.
func (s *Service) recordFailure(ctx context.Context, repo Repo, commit string, started time.Time, scanErr error) {
	msg := apperr.Message(scanErr)
	if apperr.KindOf(scanErr) == apperr.Internal {
		msg = "the scan failed; see the server log"
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		return s.touchRepo(ctx, tx, repo, commit, started, clipTo(msg, 500), 0, false)
	})
	if err != nil {
		s.log.ErrorContext(ctx, "record scan failure", "repo", repo.Name, logging.KeyErr, err)
	}
}

// touchRepo records a scan (ok) or a failed one on the repository.
func (s *Service) touchRepo(ctx context.Context, tx *store.Tx, repo Repo, commit string, started time.Time, errMsg string, notes int, ok bool) error {
	now := s.now()
	if ok {
		_, err := tx.Exec(ctx, `INSERT INTO alert_repos (repo_id, org_id, name, default_branch, last_commit, last_scan_at, last_started_at,
			last_error, last_notes, scans) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, 1)
			ON CONFLICT (repo_id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name,
				default_branch = CASE WHEN excluded.default_branch = '' THEN alert_repos.default_branch ELSE excluded.default_branch END,
				last_commit = excluded.last_commit, last_scan_at = excluded.last_scan_at, last_started_at = excluded.last_started_at,
				last_error = '', last_notes = excluded.last_notes, scans = alert_repos.scans + 1`,
			repo.ID, repo.Org.ID, repo.Name, repo.Ref, commit, store.Time(now), store.Time(started), notes)
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO alert_repos (repo_id, org_id, name, default_branch, last_error) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (repo_id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name, last_error = excluded.last_error`,
		repo.ID, repo.Org.ID, repo.Name, repo.Ref, errMsg)
	return err
}

// apply brings repo's alerts in line with a report of commit, in one
// transaction.
func (s *Service) apply(ctx context.Context, repo Repo, commit string, started time.Time, rep *scan.Report, res *Result) error {
	// One finding per fingerprint; findings come worst first.
	seen := map[string]bool{}
	var found []scan.Finding
	suppressed := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Fingerprint == "" || seen[f.Fingerprint] {
			continue
		}
		seen[f.Fingerprint] = true
		if f.Suppressed != nil {
			suppressed[f.Fingerprint] = true
			continue
		}
		found = append(found, f)
	}
	res.Findings = len(found)
	if len(found) > s.limits.MaxAlerts {
		found, res.Capped = found[:s.limits.MaxAlerts], true
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		*res = Result{Repo: res.Repo, Commit: res.Commit, Findings: res.Findings, Notes: res.Notes, Capped: res.Capped}
		var last *time.Time
		q := "SELECT last_started_at FROM alert_repos WHERE repo_id = ?"
		if tx.Dialect() == store.Postgres {
			q += " FOR UPDATE"
		}
		var prev time.Time
		err := tx.QueryRow(ctx, q, repo.ID).Scan(store.TimeDest(&prev))
		switch {
		case apperr.Is(err, apperr.NotFound):
		case err != nil:
			return err
		default:
			last = &prev
		}
		if last != nil && last.After(started) {
			res.Superseded = true
			return nil
		}
		existing, err := s.repoAlerts(ctx, tx, repo.ID)
		if err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		for _, f := range found {
			a, ok := existing[f.Fingerprint]
			if !ok {
				if err := s.open(ctx, tx, repo, commit, now, f); err != nil {
					return err
				}
				res.Opened++
				continue
			}
			delete(existing, f.Fingerprint)
			if err := s.seen(ctx, tx, a, commit, now, f, res); err != nil {
				return err
			}
		}
		if !res.Capped {
			for fp, a := range existing {
				if a.State != StateOpen || suppressed[fp] {
					continue
				}
				a.State, a.FixedAt, a.FixedCommit = StateFixed, now, commit
				if _, err := tx.Exec(ctx, "UPDATE alerts SET state = ?, fixed_at = ?, fixed_commit = ? WHERE id = ?",
					a.State, store.Time(now), commit, a.ID); err != nil {
					return err
				}
				if err := s.publish(ctx, tx, EventFixed, a); err != nil {
					return err
				}
				res.Fixed++
			}
		}
		if err := s.touchRepo(ctx, tx, repo, commit, started, "", len(res.Notes), true); err != nil {
			return err
		}
		if repo.Force {
			return s.audit.AppendTx(ctx, tx, audit.Record{Action: "alert.scan", OrgID: repo.Org.ID,
				Target:  audit.Target{Type: "repo", ID: fmt.Sprint(repo.ID), Name: repo.Name},
				Details: map[string]any{"commit": commit, "opened": res.Opened, "reopened": res.Reopened, "fixed": res.Fixed}})
		}
		return nil
	})
}

// repoAlerts returns the scan alerts of a repository by fingerprint.
func (s *Service) repoAlerts(ctx context.Context, tx *store.Tx, repoID int64) (map[string]Alert, error) {
	rows, err := tx.Query(ctx, selectAlert+" WHERE repo_id = ? AND source = 'scan'", repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out[a.Fingerprint] = a
	}
	return out, rows.Err()
}

// findingJSON stores a finding, within bounds.
func findingJSON(f scan.Finding) string {
	if len(f.Description) > 16<<10 {
		f.Description = clipTo(f.Description, 16<<10)
	}
	if f.Vuln != nil && len(f.Vuln.References) > 20 {
		v := *f.Vuln
		v.References = v.References[:20]
		f.Vuln = &v
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// open records a new alert.
func (s *Service) open(ctx context.Context, tx *store.Tx, repo Repo, commit string, now time.Time, f scan.Finding) error {
	a := Alert{Source: SourceScan, OrgID: repo.Org.ID, RepoID: repo.ID, Repo: repo.Name, Fingerprint: f.Fingerprint, Kind: f.Kind, RuleID: clipTo(f.RuleID, 200),
		Title: clipTo(printable(f.Title), 500), Severity: f.Severity, Path: clipTo(f.Location.Path, 1024), Line: f.Location.StartLine,
		Finding: f, State: StateOpen, FirstSeenAt: now, FirstCommit: commit, LastSeenAt: now, LastCommit: commit, OpenedAt: now}
	err := tx.QueryRow(ctx, `INSERT INTO alerts (org_id, repo_id, repo, source, fingerprint, kind, rule_id, title, severity, path, line,
		finding, state, first_seen_at, first_commit, last_seen_at, last_commit, opened_at)
		VALUES (?, ?, ?, 'scan', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.OrgID, a.RepoID, a.Repo, a.Fingerprint, a.Kind, a.RuleID, a.Title, int(a.Severity), a.Path, a.Line, findingJSON(f), a.State,
		store.Time(now), commit, store.Time(now), commit, store.Time(now)).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("open alert: %w", err)
	}
	return s.publish(ctx, tx, EventOpened, a)
}

// seen updates an alert whose finding a scan found again; a fixed alert
// reopens.
func (s *Service) seen(ctx context.Context, tx *store.Tx, a Alert, commit string, now time.Time, f scan.Finding, res *Result) error {
	reopen := a.State == StateFixed
	if reopen {
		a.State, a.OpenedAt, a.Reopened, a.FixedAt, a.FixedCommit = StateOpen, now, a.Reopened+1, time.Time{}, ""
	}
	a.LastSeenAt, a.LastCommit, a.Severity, a.Title = now, commit, f.Severity, clipTo(printable(f.Title), 500)
	a.Line = f.Location.StartLine
	if _, err := tx.Exec(ctx, `UPDATE alerts SET state = ?, opened_at = ?, reopened = ?, fixed_at = ?, fixed_commit = ?,
		last_seen_at = ?, last_commit = ?, severity = ?, title = ?, line = ?, finding = ? WHERE id = ?`,
		a.State, store.Time(a.OpenedAt), a.Reopened, store.Time(a.FixedAt), a.FixedCommit, store.Time(now), commit,
		int(a.Severity), a.Title, a.Line, findingJSON(f), a.ID); err != nil {
		return err
	}
	if !reopen {
		return nil
	}
	res.Reopened++
	return s.publish(ctx, tx, EventOpened, a)
}

// RepoStatus is what alerts knows of a repository's scans.
type RepoStatus struct {
	RepoID        int64
	Name          string
	DefaultBranch string
	LastCommit    string
	LastScanAt    time.Time
	LastError     string
	Scans         int64
}

// RepoByName returns the scan status of org o's repository name (NAME or
// ORG/NAME).
func (s *Service) RepoByName(ctx context.Context, o identity.Org, name string) (RepoStatus, error) {
	full := name
	if !strings.Contains(full, "/") {
		full = o.Name + "/" + name
	}
	var r RepoStatus
	err := s.db.QueryRow(ctx, `SELECT repo_id, name, default_branch, last_commit, last_scan_at, last_error, scans FROM alert_repos
		WHERE org_id = ? AND name = ?`, o.ID, full).Scan(&r.RepoID, &r.Name, &r.DefaultBranch, &r.LastCommit,
		store.TimeDest(&r.LastScanAt), &r.LastError, &r.Scans)
	if apperr.Is(err, apperr.NotFound) {
		return r, apperr.E(apperr.NotFound, "%s has not been pushed to since alerts were kept: push to its default branch first", clip(full))
	}
	return r, err
}

// Repos lists org o's scanned repositories by name.
func (s *Service) Repos(ctx context.Context, o identity.Org) ([]RepoStatus, error) {
	rows, err := s.db.Query(ctx, `SELECT repo_id, name, default_branch, last_commit, last_scan_at, last_error, scans FROM alert_repos
		WHERE org_id = ? ORDER BY name`, o.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []RepoStatus{}
	for rows.Next() {
		var r RepoStatus
		if err := rows.Scan(&r.RepoID, &r.Name, &r.DefaultBranch, &r.LastCommit, store.TimeDest(&r.LastScanAt), &r.LastError, &r.Scans); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ScanDefaultBranch scans the head of a repository's default branch now
// (a maintainer's rescan); the actor comes from ctx.
func (s *Service) ScanDefaultBranch(ctx context.Context, o identity.Org, name string) (Result, error) {
	st, err := s.RepoByName(ctx, o, name)
	if err != nil {
		return Result{}, err
	}
	if s.repos == nil {
		return Result{}, apperr.E(apperr.Unavailable, "repositories cannot be scanned: no repository directory is wired in")
	}
	gitDir, def, err := s.repos.RepoPath(ctx, st.RepoID)
	if err != nil {
		return Result{}, err
	}
	ref := "refs/heads/" + strings.TrimPrefix(def, "refs/heads/")
	if def == "" || !validRef(ref) {
		return Result{}, apperr.E(apperr.Invalid, "%s has no default branch", st.Name)
	}
	cmd := exec.CommandContext(ctx, s.git, "--git-dir="+gitDir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	out, err := cmd.Output()
	if err != nil {
		return Result{}, apperr.E(apperr.NotFound, "%s has no commit on %s yet", st.Name, def)
	}
	commit := strings.TrimSpace(string(out))
	return s.ScanCommit(ctx, Repo{ID: st.RepoID, Name: st.Name, Org: o, Ref: ref, Force: true}, commit)
}

// validRef accepts branch names git would, without anything an option or
// a revision expression could hide in.
func validRef(ref string) bool {
	if len(ref) > 255 || strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") || strings.HasSuffix(ref, "/") ||
		strings.HasSuffix(ref, ".lock") || strings.Contains(ref, "@{") {
		return false
	}
	for _, r := range ref {
		if r < 0x21 || r == 0x7f || strings.ContainsRune(`~^:?*[\`, r) {
			return false
		}
	}
	return true
}
