package boards

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the boards schema (after identity's: it refers to orgs,
// users and projects).
var Migrations = store.EmbeddedMigrations("boards", migrationFS, "migrations")

// Limits on what a work item holds.
const (
	MaxTitle       = 255
	MaxDescription = 64 << 10
	// MaxList caps the items one List returns.
	MaxList = 1000
)

// Type is the kind of a work item.
type Type string

// Types of work item, highest in the hierarchy first.
const (
	TypeEpic  Type = "epic"
	TypeStory Type = "story"
	TypeBug   Type = "bug"
	TypeTask  Type = "task"
)

// Types lists the work item types.
func Types() []Type { return []Type{TypeEpic, TypeStory, TypeBug, TypeTask} }

// ParseType reads a type name (any case).
func ParseType(s string) (Type, error) {
	if strings.TrimSpace(s) == "" {
		return "", apperr.InvalidField("type", "type is required: epic, story, bug or task")
	}
	t := Type(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Types() {
		if t == k {
			return t, nil
		}
	}
	return "", apperr.InvalidField("type", "unknown work item type %q (want epic, story, bug or task)", clip(s))
}

// Label is the type's name for people.
func (t Type) Label() string { return label(string(t)) }

// parentTypes lists the types an item of type t may have as parent.
func (t Type) parentTypes() []Type {
	switch t {
	case TypeStory, TypeBug:
		return []Type{TypeEpic}
	case TypeTask:
		return []Type{TypeStory, TypeBug}
	}
	return nil
}

func (t Type) mayHaveParent(p Type) bool {
	for _, pt := range t.parentTypes() {
		if pt == p {
			return true
		}
	}
	return false
}

// State is where a work item is on the board.
type State string

// States, in board order.
const (
	StateNew      State = "new"
	StateActive   State = "active"
	StateResolved State = "resolved"
	StateClosed   State = "closed"
)

// States lists the states in board order.
func States() []State { return []State{StateNew, StateActive, StateResolved, StateClosed} }

// ParseState reads a state name (any case).
func ParseState(s string) (State, error) {
	st := State(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range States() {
		if st == k {
			return st, nil
		}
	}
	return "", apperr.InvalidField("state", "unknown state %q (want new, active, resolved or closed)", clip(s))
}

// Label is the state's name for people.
func (s State) Label() string { return label(string(s)) }

// open reports whether a closing keyword may still resolve the item.
func (s State) open() bool { return s == StateNew || s == StateActive }

func label(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Priorities run from 1 (highest) to 4; new items get DefaultPriority.
const (
	MinPriority     = 1
	MaxPriority     = 4
	DefaultPriority = 2
)

// WorkItem is one item of an org's board.
type WorkItem struct {
	ID          int64
	OrgID       int64
	Number      int64
	Type        Type
	Title       string
	Description string
	State       State
	Priority    int
	AssigneeID  int64
	ProjectID   int64
	// Parent is the number of the parent item (0 for none).
	Parent    int64
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	// StateChangedAt is when the item last changed state.
	StateChangedAt time.Time
	ResolvedAt     time.Time
	ClosedAt       time.Time

	// Assignee and Project are the names of AssigneeID and ProjectID,
	// filled by the service's readers.
	Assignee string
	Project  string
}

// Ref is the item's reference as code mentions it: "AB#12".
func (w WorkItem) Ref() string { return "AB#" + strconv.FormatInt(w.Number, 10) }

func (w WorkItem) target() audit.Target {
	return audit.Target{Type: "workitem", ID: w.Ref(), Name: w.Title}
}

// Repos tells where a repository lives and which branch is its default.
// scm implements it; boards uses it to know whether a merged pull request
// went into the default branch.
type Repos interface {
	RepoPath(ctx context.Context, repoID int64) (path, defaultBranch string, err error)
}

// Deps are the service's collaborators.
type Deps struct {
	DB     *store.DB
	IDs    *identity.Service
	Audit  *audit.Log
	Events *events.Bus
	Logger *slog.Logger
	// Clock replaces time.Now (tests).
	Clock func() time.Time
	// PublicURL is where users reach Rampart, for links in API answers.
	PublicURL string
	// Repos, when set, tells which branch of a repository is its default;
	// without it only pushes (which say so themselves) resolve items.
	Repos Repos
}

// Service keeps work items.
type Service struct {
	db        *store.DB
	ids       *identity.Service
	audit     *audit.Log
	log       *slog.Logger
	now       func() time.Time
	publicURL string
	repos     Repos
}

// New returns the boards service and subscribes it to scm's events.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.IDs == nil || d.Audit == nil || d.Events == nil || d.Logger == nil {
		return nil, errors.New("boards: DB, IDs, Audit, Events and Logger are required")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	s := &Service{db: d.DB, ids: d.IDs, audit: d.Audit, log: d.Logger.With("component", "boards"), now: d.Clock,
		publicURL: strings.TrimSuffix(d.PublicURL, "/"), repos: d.Repos}
	d.Events.Subscribe("boards", []string{EventPush, EventPullRequest}, s.handle)
	return s, nil
}

// ValidateText checks a free-text field: at most max bytes of UTF-8
// without control characters (newlines and tabs only when multiline).
func ValidateText(field, s string, max int, multiline bool) error {
	if len(s) > max {
		return apperr.InvalidField(field, "%s must be at most %d bytes (it has %d)", field, max, len(s))
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

// clip shortens user input quoted back in an error message.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}

// ParseNumber reads a work item number: "12" or "AB#12".
func ParseNumber(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if len(t) > 3 && strings.EqualFold(t[:3], "ab#") {
		t = t[3:]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || len(t) > maxRefDigits {
		return 0, apperr.InvalidField("number", "%q is not a work item number (12 or AB#12)", clip(s))
	}
	return n, nil
}

// forUpdate locks the rows a PostgreSQL query reads until the transaction
// ends; SQLite transactions hold the write lock already.
func forUpdate(tx *store.Tx) string {
	if tx.Dialect() == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func notFound(orgName string, n int64) error {
	return apperr.E(apperr.NotFound, "work item AB#%d not found in %s", n, orgName)
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
