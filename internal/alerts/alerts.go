package alerts

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the alerts schema (after identity's: it refers to orgs).
var Migrations = store.EmbeddedMigrations("alerts", migrationFS, "migrations")

// State is where an alert is in its lifecycle.
type State string

// States of an alert.
const (
	StateOpen      State = "open"
	StateDismissed State = "dismissed"
	StateFixed     State = "fixed"
)

// ParseState reads a state name; "all" (or "") means any state.
func ParseState(s string) (State, error) {
	switch st := State(strings.ToLower(strings.TrimSpace(s))); st {
	case StateOpen, StateDismissed, StateFixed:
		return st, nil
	case "", "all":
		return "", nil
	}
	return "", apperr.InvalidField("state", "unknown alert state %q (want open, dismissed, fixed or all)", clip(s))
}

// Label is the state's name for people.
func (s State) Label() string {
	switch s {
	case StateOpen:
		return "Open"
	case StateDismissed:
		return "Dismissed"
	case StateFixed:
		return "Fixed"
	}
	return string(s)
}

// Reason says why an alert was dismissed.
type Reason string

// Dismissal reasons.
const (
	FalsePositive Reason = "false_positive"
	WontFix       Reason = "wont_fix"
	UsedInTests   Reason = "used_in_tests"
)

// Reasons lists the dismissal reasons.
func Reasons() []Reason { return []Reason{FalsePositive, WontFix, UsedInTests} }

// Label is the reason's name for people.
func (r Reason) Label() string {
	switch r {
	case FalsePositive:
		return "False positive"
	case WontFix:
		return "Won't fix"
	case UsedInTests:
		return "Used in tests"
	}
	return string(r)
}

// ParseReason reads a dismissal reason ("won't fix" and "wont-fix" too).
func ParseReason(s string) (Reason, error) {
	n := strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(strings.ToLower(strings.TrimSpace(s)))
	for _, r := range Reasons() {
		if Reason(n) == r {
			return r, nil
		}
	}
	return "", apperr.InvalidField("reason", "unknown dismissal reason %q (want false_positive, wont_fix or used_in_tests)", clip(s))
}

// MaxComment caps a dismissal comment.
const MaxComment = 2000

// Sources of alerts.
const (
	// SourceScan alerts come from scans of a default branch.
	SourceScan = "scan"
	// SourceBypass alerts come from a push let past push protection.
	SourceBypass = "bypass"
)

// Alert is one finding of a repository's default branch, followed over
// scans.
type Alert struct {
	ID int64
	// Source is SourceScan or SourceBypass.
	Source      string
	OrgID       int64
	RepoID      int64
	Repo        string // ORG/NAME
	Fingerprint string
	Kind        scan.Kind
	RuleID      string
	Title       string
	Severity    scan.Severity
	Path        string
	Line        int
	// Finding is the scanner's finding as last seen (never a secret: only
	// its redacted start).
	Finding scan.Finding
	State   State

	FirstSeenAt time.Time
	FirstCommit string
	LastSeenAt  time.Time
	LastCommit  string
	// OpenedAt is when the alert was last opened (or reopened): its age
	// counts from there.
	OpenedAt time.Time
	Reopened int

	DismissedReason  Reason
	DismissedComment string
	DismissedBy      string
	DismissedAt      time.Time
	FixedAt          time.Time
	FixedCommit      string
	// WorkItem is the number of the work item made from the alert (0 for
	// none).
	WorkItem int64
}

// Org returns the name of the alert's org.
func (a Alert) Org() string { o, _, _ := strings.Cut(a.Repo, "/"); return o }

// Age is how long the alert has been open at now (0 unless open).
func (a Alert) Age(now time.Time) time.Duration {
	if a.State != StateOpen {
		return 0
	}
	return now.Sub(a.OpenedAt)
}

// AgeDays is Age in whole days.
func (a Alert) AgeDays(now time.Time) int { return int(a.Age(now) / (24 * time.Hour)) }

// ShortCommit is a commit id shortened for pages.
func ShortCommit(c string) string { return short(c) }

// LastShort is the last commit the finding was seen in, shortened.
func (a Alert) LastShort() string { return short(a.LastCommit) }

// FixedShort is the commit that fixed the alert, shortened.
func (a Alert) FixedShort() string { return short(a.FixedCommit) }

func (a Alert) target() audit.Target {
	return audit.Target{Type: "alert", ID: strconv.FormatInt(a.ID, 10), Name: a.Repo + " " + a.RuleID}
}

// Path is the alert's page.
func Path(org string, id int64) string {
	return "/orgs/" + url.PathEscape(org) + "/alerts/" + strconv.FormatInt(id, 10)
}

// Repos tells where a repository lives on disk and which branch is its
// default. scm implements it.
type Repos interface {
	RepoPath(ctx context.Context, repoID int64) (path, defaultBranch string, err error)
}

// Scanner scans a directory (scan.Scanner does).
type Scanner interface {
	Dir(ctx context.Context, root string, o scan.Options) (*scan.Report, error)
}

// WorkItems creates work items linked to alerts (boards does).
type WorkItems interface {
	CreateLinkedTx(ctx context.Context, tx *store.Tx, o identity.Org, in boards.NewItem, l boards.Link) (boards.WorkItem, error)
	Exists(ctx context.Context, orgID, n int64) (bool, error)
}

// Limits bound a scan of a tree.
type Limits struct {
	// MaxTreeBytes caps the bytes written out of one tree (default 1 GiB).
	MaxTreeBytes int64
	// MaxFiles caps the files written out of one tree (default 200,000).
	MaxFiles int
	// MaxFileSize leaves larger files out of the scan (default 10 MiB).
	MaxFileSize int64
	// MaxAlerts caps the findings one scan turns into alerts (default
	// 5,000, worst first); a capped scan fixes nothing.
	MaxAlerts int
	// Timeout bounds one scan (default 10 minutes).
	Timeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxTreeBytes <= 0 {
		l.MaxTreeBytes = 1 << 30
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 200_000
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = 10 << 20
	}
	if l.MaxAlerts <= 0 {
		l.MaxAlerts = 5000
	}
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Minute
	}
	return l
}

// Deps are the service's collaborators.
type Deps struct {
	DB     *store.DB
	IDs    *identity.Service
	Audit  *audit.Log
	Events *events.Bus
	Logger *slog.Logger
	// Scanner returns the scanner for the next scan (see LocalScanner).
	Scanner func(ctx context.Context) (Scanner, error)
	// WorkItems makes work items from alerts.
	WorkItems WorkItems
	// Repos finds repositories; without it pushes cannot be scanned (and
	// a warning says so).
	Repos Repos
	// Clock replaces time.Now (tests).
	Clock func() time.Time
	// PublicURL is where users reach Rampart (links in events and work
	// items).
	PublicURL string
	// TempDir holds trees while they are scanned (default os.TempDir()).
	TempDir string
	// Git is the git binary (default "git" from PATH).
	Git    string
	Limits Limits
}

// Service keeps security alerts.
type Service struct {
	db        *store.DB
	ids       *identity.Service
	audit     *audit.Log
	bus       *events.Bus
	log       *slog.Logger
	scanner   func(ctx context.Context) (Scanner, error)
	items     WorkItems
	repos     Repos
	now       func() time.Time
	publicURL string
	tempDir   string
	git       string
	limits    Limits

	// repoLocks serialises scans of one repository in this process.
	mu        sync.Mutex
	repoLocks map[int64]*sync.Mutex
}

// New returns the alerts service and subscribes it to scm's pushes.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.IDs == nil || d.Audit == nil || d.Events == nil || d.Logger == nil || d.Scanner == nil || d.WorkItems == nil {
		return nil, errors.New("alerts: DB, IDs, Audit, Events, Logger, Scanner and WorkItems are required")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.TempDir == "" {
		d.TempDir = os.TempDir()
	}
	if d.Git == "" {
		d.Git = "git"
	}
	s := &Service{db: d.DB, ids: d.IDs, audit: d.Audit, bus: d.Events, log: d.Logger.With("component", "alerts"),
		scanner: d.Scanner, items: d.WorkItems, repos: d.Repos, now: d.Clock, publicURL: strings.TrimSuffix(d.PublicURL, "/"),
		tempDir: d.TempDir, git: d.Git, limits: d.Limits.withDefaults(), repoLocks: map[int64]*sync.Mutex{}}
	d.Events.Subscribe("alerts", []string{EventPush}, s.handle)
	d.Events.Subscribe("alerts-bypass", []string{EventBypass}, s.handleBypass)
	return s, nil
}

const selectAlert = `SELECT id, source, org_id, repo_id, repo, fingerprint, kind, rule_id, title, severity, path, line, finding, state,
	first_seen_at, first_commit, last_seen_at, last_commit, opened_at, reopened, dismissed_reason, dismissed_comment,
	dismissed_by, dismissed_at, fixed_at, fixed_commit, workitem FROM alerts`

func scanAlert(r interface{ Scan(...any) error }) (Alert, error) {
	var (
		a        Alert
		finding  string
		workitem *int64
	)
	err := r.Scan(&a.ID, &a.Source, &a.OrgID, &a.RepoID, &a.Repo, &a.Fingerprint, &a.Kind, &a.RuleID, &a.Title, &a.Severity, &a.Path,
		&a.Line, &finding, &a.State, store.TimeDest(&a.FirstSeenAt), &a.FirstCommit, store.TimeDest(&a.LastSeenAt),
		&a.LastCommit, store.TimeDest(&a.OpenedAt), &a.Reopened, &a.DismissedReason, &a.DismissedComment, &a.DismissedBy,
		store.TimeDest(&a.DismissedAt), store.TimeDest(&a.FixedAt), &a.FixedCommit, &workitem)
	if err != nil {
		return a, err
	}
	if workitem != nil {
		a.WorkItem = *workitem
	}
	if err := json.Unmarshal([]byte(finding), &a.Finding); err != nil {
		// The columns hold what pages need; the detail is a bonus.
		a.Finding = scan.Finding{Kind: a.Kind, RuleID: a.RuleID, Title: a.Title, Severity: a.Severity,
			Location: scan.Location{Path: a.Path, StartLine: a.Line}, Fingerprint: a.Fingerprint}
	}
	return a, nil
}

// Get returns alert id of org o.
func (s *Service) Get(ctx context.Context, o identity.Org, id int64) (Alert, error) {
	a, err := scanAlert(s.db.QueryRow(ctx, selectAlert+" WHERE id = ? AND org_id = ?", id, o.ID))
	if apperr.Is(err, apperr.NotFound) {
		return a, apperr.E(apperr.NotFound, "alert %d not found in %s", id, o.Name)
	}
	return a, err
}

// ParseID reads an alert id from a path.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.InvalidField("id", "%q is not an alert id", clip(s))
	}
	return id, nil
}

// Filter selects alerts. Zero fields match everything.
type Filter struct {
	Repo  string // NAME or ORG/NAME
	State State
	Kind  scan.Kind
	// Severity keeps alerts at or above it.
	Severity scan.Severity
	Limit    int
}

// MaxList caps the alerts one List returns.
const MaxList = 1000

// ParseFilter reads a filter from query-string values.
func ParseFilter(get func(string) string) (Filter, error) {
	var f Filter
	var err error
	if f.State, err = ParseState(get("state")); err != nil {
		return f, err
	}
	switch k := scan.Kind(strings.ToLower(strings.TrimSpace(get("kind")))); k {
	case "", scan.KindSecret, scan.KindVulnerability, scan.KindMisconfiguration:
		f.Kind = k
	default:
		return f, apperr.InvalidField("kind", "unknown alert kind %q (want secret, vulnerability or misconfiguration)", clip(string(k)))
	}
	if v := get("severity"); v != "" {
		if f.Severity, err = scan.ParseSeverity(v); err != nil {
			return f, apperr.InvalidField("severity", "unknown severity %q (want info, low, medium, high or critical)", clip(v))
		}
	}
	f.Repo = strings.TrimSpace(get("repo"))
	if err := boardsText("repo", f.Repo, 200); err != nil {
		return f, err
	}
	if v := get("limit"); v != "" {
		n, lerr := strconv.Atoi(v)
		if lerr != nil || n < 1 || n > MaxList {
			return f, apperr.InvalidField("limit", "limit must be 1 to %d", MaxList)
		}
		f.Limit = n
	}
	return f, nil
}

func boardsText(field, s string, max int) error { return boards.ValidateText(field, s, max, false) }

// List returns org o's alerts matching f: worst first, then oldest.
func (s *Service) List(ctx context.Context, o identity.Org, f Filter) ([]Alert, error) {
	conds := []string{"org_id = ?"}
	args := []any{o.ID}
	if f.Repo != "" {
		full := f.Repo
		if !strings.Contains(full, "/") {
			full = o.Name + "/" + full
		}
		conds, args = append(conds, "repo = ?"), append(args, full)
	}
	if f.State != "" {
		conds, args = append(conds, "state = ?"), append(args, f.State)
	}
	if f.Kind != "" {
		conds, args = append(conds, "kind = ?"), append(args, f.Kind)
	}
	if f.Severity != scan.SeverityUnknown {
		conds, args = append(conds, "severity >= ?"), append(args, int(f.Severity))
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	return s.query(ctx, selectAlert+" WHERE "+strings.Join(conds, " AND ")+
		" ORDER BY severity DESC, opened_at, id LIMIT "+strconv.Itoa(limit), args...)
}

func (s *Service) query(ctx context.Context, q string, args ...any) ([]Alert, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// lockAlert reads alert id of org o for update inside tx.
func lockAlert(ctx context.Context, tx *store.Tx, o identity.Org, id int64) (Alert, error) {
	q := selectAlert + " WHERE id = ? AND org_id = ?"
	if tx.Dialect() == store.Postgres {
		q += " FOR UPDATE"
	}
	a, err := scanAlert(tx.QueryRow(ctx, q, id, o.ID))
	if apperr.Is(err, apperr.NotFound) {
		return a, apperr.E(apperr.NotFound, "alert %d not found in %s", id, o.Name)
	}
	return a, err
}

// Dismiss closes an open alert for a reason, with a comment; the actor
// comes from ctx.
func (s *Service) Dismiss(ctx context.Context, o identity.Org, id int64, reason Reason, comment string) (Alert, error) {
	reason, err := ParseReason(string(reason))
	if err != nil {
		return Alert{}, err
	}
	comment = strings.TrimSpace(strings.ReplaceAll(comment, "\r\n", "\n"))
	if comment == "" {
		return Alert{}, apperr.InvalidField("comment", "say why the alert is dismissed in a comment")
	}
	if err := boards.ValidateText("comment", comment, MaxComment, true); err != nil {
		return Alert{}, err
	}
	actor := reqinfo.From(ctx).ActorName
	var a Alert
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if a, err = lockAlert(ctx, tx, o, id); err != nil {
			return err
		}
		if a.State != StateOpen {
			return apperr.E(apperr.Conflict, "alert %d is %s, not open: only open alerts can be dismissed", id, a.State)
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		a.State, a.DismissedReason, a.DismissedComment, a.DismissedBy, a.DismissedAt = StateDismissed, reason, comment, actor, now
		if _, err := tx.Exec(ctx, `UPDATE alerts SET state = ?, dismissed_reason = ?, dismissed_comment = ?, dismissed_by = ?,
			dismissed_at = ? WHERE id = ?`, a.State, reason, comment, actor, store.Time(now), a.ID); err != nil {
			return err
		}
		if err := s.publish(ctx, tx, EventDismissed, a); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "alert.dismiss", OrgID: o.ID, Target: a.target(),
			Details: map[string]any{"reason": string(reason), "comment": comment, "repo": a.Repo, "kind": string(a.Kind),
				"rule": a.RuleID, "severity": a.Severity.String(), "path": a.Path, "fingerprint": a.Fingerprint}})
	})
	return a, err
}

// Reopen opens a dismissed alert again; the actor comes from ctx.
func (s *Service) Reopen(ctx context.Context, o identity.Org, id int64) (Alert, error) {
	var a Alert
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if a, err = lockAlert(ctx, tx, o, id); err != nil {
			return err
		}
		if a.State != StateDismissed {
			return apperr.E(apperr.Conflict, "alert %d is %s, not dismissed: only dismissed alerts can be reopened", id, a.State)
		}
		was := a.DismissedReason
		now := s.now().UTC().Truncate(time.Microsecond)
		a.State, a.OpenedAt, a.Reopened = StateOpen, now, a.Reopened+1
		a.DismissedReason, a.DismissedComment, a.DismissedBy, a.DismissedAt = "", "", "", time.Time{}
		if _, err := tx.Exec(ctx, `UPDATE alerts SET state = ?, opened_at = ?, reopened = ?, dismissed_reason = '',
			dismissed_comment = '', dismissed_by = '', dismissed_at = NULL WHERE id = ?`, a.State, store.Time(now), a.Reopened, a.ID); err != nil {
			return err
		}
		if err := s.publish(ctx, tx, EventOpened, a); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "alert.reopen", OrgID: o.ID, Target: a.target(),
			Details: map[string]any{"was": string(was), "repo": a.Repo, "rule": a.RuleID, "fingerprint": a.Fingerprint}})
	})
	return a, err
}

// NewWorkItem says how to make a work item from an alert; zero fields
// take defaults (a bug, priority from the severity, no assignee or
// project).
type NewWorkItem struct {
	Type     boards.Type
	Assignee string
	Project  string
	Priority int
}

// CreateWorkItem makes a work item from alert id and links the two; an
// alert has at most one work item at a time.
func (s *Service) CreateWorkItem(ctx context.Context, o identity.Org, id int64, in NewWorkItem) (Alert, boards.WorkItem, error) {
	var (
		a Alert
		w boards.WorkItem
	)
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if a, err = lockAlert(ctx, tx, o, id); err != nil {
			return err
		}
		if a.WorkItem != 0 {
			exists, err := s.items.Exists(ctx, o.ID, a.WorkItem)
			if err != nil {
				return err
			}
			if exists {
				return apperr.E(apperr.Conflict, "alert %d already has work item AB#%d", id, a.WorkItem)
			}
		}
		typ := in.Type
		if typ == "" {
			typ = boards.TypeBug
		}
		prio := in.Priority
		if prio == 0 {
			prio = priorityOf(a.Severity)
		}
		w, err = s.items.CreateLinkedTx(ctx, tx, o, boards.NewItem{Type: typ, Title: workItemTitle(a), Description: s.workItemText(a),
			Priority: prio, Assignee: in.Assignee, Project: in.Project},
			boards.Link{Kind: boards.LinkAlert, RepoID: a.RepoID, Repo: a.Repo, Ref: strconv.FormatInt(a.ID, 10),
				Title: a.Title, URL: s.publicURL + Path(o.Name, a.ID)})
		if err != nil {
			return err
		}
		a.WorkItem = w.Number
		if _, err := tx.Exec(ctx, "UPDATE alerts SET workitem = ? WHERE id = ?", w.Number, a.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "alert.workitem", OrgID: o.ID, Target: a.target(),
			Details: map[string]any{"workitem": w.Ref()}})
	})
	return a, w, err
}

// priorityOf maps a severity to a work item priority.
func priorityOf(s scan.Severity) int {
	switch {
	case s >= scan.SeverityCritical:
		return 1
	case s >= scan.SeverityHigh:
		return 2
	case s >= scan.SeverityMedium:
		return 3
	}
	return 4
}

func workItemTitle(a Alert) string {
	t := "Fix " + a.Severity.String() + " " + string(a.Kind) + ": " + a.Title
	if a.Path != "" {
		t += " in " + a.Path
	}
	return clipTo(printable(t), boards.MaxTitle)
}

// printable drops control characters (file names may hold any).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

func (s *Service) workItemText(a Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Security alert %d in %s: %s (%s, rule %s).\n", a.ID, a.Repo, a.Title, a.Severity, a.RuleID)
	if a.Path != "" {
		fmt.Fprintf(&b, "Where: %s", a.Path)
		if a.Line > 0 {
			fmt.Fprintf(&b, " line %d", a.Line)
		}
		fmt.Fprintf(&b, " (commit %s).\n", short(a.LastCommit))
	}
	if v := a.Finding.Vuln; v != nil {
		fmt.Fprintf(&b, "Package: %s %s (%s)", v.Package.Name, v.Package.Version, v.Package.Ecosystem)
		if v.FixedVersion != "" {
			fmt.Fprintf(&b, "; fixed in %s", v.FixedVersion)
		}
		b.WriteString(".\n")
	}
	if a.Finding.Remediation != "" {
		fmt.Fprintf(&b, "\nHow to fix: %s\n", a.Finding.Remediation)
	}
	fmt.Fprintf(&b, "\nAlert: %s%s\n", s.publicURL, Path(a.Org(), a.ID))
	out := strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(b.String(), ""))
	return clipTo(out, boards.MaxDescription)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// clip shortens user input quoted back in an error message.
func clip(s string) string { return clipTo(s, 40) }

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
