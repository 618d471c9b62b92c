package boards

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

// NewItem is what creating a work item takes. Zero values take defaults:
// state New, priority DefaultPriority, no assignee, project or parent.
type NewItem struct {
	Type        Type
	Title       string
	Description string
	State       State
	Priority    int
	// Assignee and Project are names; Parent is an item number.
	Assignee string
	Project  string
	Parent   int64
}

// Update changes the fields that are set. An empty Assignee or Project
// clears it; a zero Parent removes the parent.
type Update struct {
	Type        *Type
	Title       *string
	Description *string
	State       *State
	Priority    *int
	Assignee    *string
	Project     *string
	Parent      *int64
}

const selectItem = `SELECT id, org_id, number, type, title, description, state, priority, assignee_id, project_id,
	parent_number, created_by, created_at, updated_at, state_changed_at, resolved_at, closed_at FROM workitems`

func scanItem(r interface{ Scan(...any) error }) (WorkItem, error) {
	var (
		w                         WorkItem
		assignee, project, parent *int64
	)
	err := r.Scan(&w.ID, &w.OrgID, &w.Number, &w.Type, &w.Title, &w.Description, &w.State, &w.Priority, &assignee,
		&project, &parent, &w.CreatedBy, store.TimeDest(&w.CreatedAt), store.TimeDest(&w.UpdatedAt),
		store.TimeDest(&w.StateChangedAt), store.TimeDest(&w.ResolvedAt), store.TimeDest(&w.ClosedAt))
	if assignee != nil {
		w.AssigneeID = *assignee
	}
	if project != nil {
		w.ProjectID = *project
	}
	if parent != nil {
		w.Parent = *parent
	}
	return w, err
}

func validTitle(title string) (string, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return "", apperr.InvalidField("title", "title must not be empty")
	}
	return title, ValidateText("title", title, MaxTitle, false)
}

func validPriority(p int) error {
	if p < MinPriority || p > MaxPriority {
		return apperr.InvalidField("priority", "priority must be %d (highest) to %d (lowest), not %d", MinPriority, MaxPriority, p)
	}
	return nil
}

// resolveAssignee returns the id of the org member named username ("" for
// none).
func (s *Service) resolveAssignee(ctx context.Context, o identity.Org, username string) (int64, error) {
	username = strings.TrimSpace(username)
	if username == "" {
		return 0, nil
	}
	if err := ValidateText("assignee", username, 64, false); err != nil {
		return 0, err
	}
	ms, err := s.ids.Members(ctx, o.ID)
	if err != nil {
		return 0, err
	}
	for _, m := range ms {
		if m.User.Username == username {
			if m.User.Disabled {
				return 0, apperr.InvalidField("assignee", "user %q is disabled", username)
			}
			return m.User.ID, nil
		}
	}
	return 0, apperr.InvalidField("assignee", "%q is not a member of %s", clip(username), o.Name)
}

// resolveProject returns the id of the org's project named name ("" for
// none).
func (s *Service) resolveProject(ctx context.Context, o identity.Org, name string) (int64, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return 0, nil
	}
	if err := identity.ValidateName("project", name); err != nil {
		return 0, err
	}
	p, err := s.ids.Project(ctx, o.ID, name)
	if apperr.Is(err, apperr.NotFound) {
		return 0, apperr.InvalidField("project", "%s has no project %q", o.Name, name)
	}
	return p.ID, err
}

// Create adds a work item to org o; the actor comes from ctx.
func (s *Service) Create(ctx context.Context, o identity.Org, in NewItem) (WorkItem, error) {
	var w WorkItem
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		w, err = s.CreateTx(ctx, tx, o, in)
		return err
	})
	if err != nil {
		return WorkItem{}, err
	}
	return w, nil
}

// CreateTx adds a work item inside the caller's transaction, audited
// there.
func (s *Service) CreateTx(ctx context.Context, tx *store.Tx, o identity.Org, in NewItem) (WorkItem, error) {
	w, err := s.prepare(ctx, o, in)
	if err != nil {
		return WorkItem{}, err
	}
	if w.Parent != 0 {
		if err := s.checkParent(ctx, tx, o, w.Type, w.Parent, 0); err != nil {
			return WorkItem{}, err
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	w.CreatedAt, w.UpdatedAt, w.StateChangedAt = now, now, now
	stampState(&w, now)
	if err := tx.QueryRow(ctx, `INSERT INTO workitem_counters (org_id, last_number) VALUES (?, 1)
		ON CONFLICT (org_id) DO UPDATE SET last_number = workitem_counters.last_number + 1 RETURNING last_number`,
		o.ID).Scan(&w.Number); err != nil {
		return WorkItem{}, fmt.Errorf("number work item: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO workitems (org_id, number, type, title, description, state, priority, assignee_id,
		project_id, parent_number, created_by, created_at, updated_at, state_changed_at, resolved_at, closed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		o.ID, w.Number, w.Type, w.Title, w.Description, w.State, w.Priority, nullInt(w.AssigneeID), nullInt(w.ProjectID),
		nullInt(w.Parent), w.CreatedBy, store.Time(now), store.Time(now), store.Time(now), store.Time(w.ResolvedAt),
		store.Time(w.ClosedAt)).Scan(&w.ID)
	if err != nil {
		return WorkItem{}, fmt.Errorf("insert work item: %w", err)
	}
	details := map[string]any{"type": string(w.Type), "state": string(w.State), "priority": w.Priority}
	if w.Assignee != "" {
		details["assignee"] = w.Assignee
	}
	if w.Parent != 0 {
		details["parent"] = w.Parent
	}
	if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "workitem.create", OrgID: o.ID, Target: w.target(), Details: details}); err != nil {
		return WorkItem{}, err
	}
	return w, nil
}

// prepare validates a new item and resolves its names.
func (s *Service) prepare(ctx context.Context, o identity.Org, in NewItem) (WorkItem, error) {
	w := WorkItem{OrgID: o.ID, Type: in.Type, State: in.State, Priority: in.Priority, Description: in.Description,
		Parent: in.Parent, CreatedBy: reqinfo.From(ctx).ActorName}
	var err error
	if w.Type, err = ParseType(string(in.Type)); err != nil {
		return w, err
	}
	if w.Title, err = validTitle(in.Title); err != nil {
		return w, err
	}
	if err := ValidateText("description", w.Description, MaxDescription, true); err != nil {
		return w, err
	}
	if w.State == "" {
		w.State = StateNew
	} else if w.State, err = ParseState(string(in.State)); err != nil {
		return w, err
	}
	if w.Priority == 0 {
		w.Priority = DefaultPriority
	}
	if err := validPriority(w.Priority); err != nil {
		return w, err
	}
	if w.Parent < 0 {
		return w, apperr.InvalidField("parent", "parent must be a work item number")
	}
	if w.AssigneeID, err = s.resolveAssignee(ctx, o, in.Assignee); err != nil {
		return w, err
	}
	w.Assignee = strings.TrimSpace(in.Assignee)
	if w.ProjectID, err = s.resolveProject(ctx, o, in.Project); err != nil {
		return w, err
	}
	w.Project = strings.TrimSpace(in.Project)
	return w, nil
}

// stampState sets the resolved and closed times for the item's state.
func stampState(w *WorkItem, now time.Time) {
	switch w.State {
	case StateNew, StateActive:
		w.ResolvedAt, w.ClosedAt = time.Time{}, time.Time{}
	case StateResolved:
		w.ResolvedAt, w.ClosedAt = now, time.Time{}
	case StateClosed:
		if w.ResolvedAt.IsZero() {
			w.ResolvedAt = now
		}
		w.ClosedAt = now
	}
}

// checkParent checks that item self (0 when new) of type t may have item
// number parent of org o as its parent.
func (s *Service) checkParent(ctx context.Context, tx *store.Tx, o identity.Org, t Type, parent, self int64) error {
	if parent == self {
		return apperr.InvalidField("parent", "a work item cannot be its own parent")
	}
	var pt Type
	err := tx.QueryRow(ctx, "SELECT type FROM workitems WHERE org_id = ? AND number = ?", o.ID, parent).Scan(&pt)
	if apperr.Is(err, apperr.NotFound) {
		return apperr.InvalidField("parent", "parent AB#%d not found in %s", parent, o.Name)
	}
	if err != nil {
		return err
	}
	if !t.mayHaveParent(pt) {
		return apperr.InvalidField("parent", "%s", parentRule(t, pt))
	}
	return nil
}

func parentRule(t, parent Type) string {
	switch t {
	case TypeEpic:
		return "an epic has no parent"
	case TypeStory, TypeBug:
		return fmt.Sprintf("a %s's parent must be an epic, not a %s", t, parent)
	}
	return fmt.Sprintf("a task's parent must be a story or a bug, not a %s", parent)
}

// Get returns item number n of org o.
func (s *Service) Get(ctx context.Context, o identity.Org, n int64) (WorkItem, error) {
	w, err := scanItem(s.db.QueryRow(ctx, selectItem+" WHERE org_id = ? AND number = ?", o.ID, n))
	if apperr.Is(err, apperr.NotFound) {
		return w, notFound(o.Name, n)
	}
	if err != nil {
		return w, err
	}
	items := []WorkItem{w}
	if err := s.names(ctx, o, items); err != nil {
		return w, err
	}
	return items[0], nil
}

// Exists reports whether org orgID has item number n.
func (s *Service) Exists(ctx context.Context, orgID, n int64) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, "SELECT 1 FROM workitems WHERE org_id = ? AND number = ?", orgID, n).Scan(&one)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// names fills the assignee and project names of items.
func (s *Service) names(ctx context.Context, o identity.Org, items []WorkItem) error {
	users := map[int64]string{}
	var projects map[int64]string
	for i := range items {
		w := &items[i]
		if w.AssigneeID != 0 {
			name, ok := users[w.AssigneeID]
			if !ok {
				u, err := s.ids.User(ctx, w.AssigneeID)
				if err != nil && !apperr.Is(err, apperr.NotFound) {
					return err
				}
				name, users[w.AssigneeID] = u.Username, u.Username
			}
			w.Assignee = name
		}
		if w.ProjectID != 0 {
			if projects == nil {
				ps, err := s.ids.Projects(ctx, o.ID)
				if err != nil {
					return err
				}
				projects = map[int64]string{}
				for _, p := range ps {
					projects[p.ID] = p.Name
				}
			}
			w.Project = projects[w.ProjectID]
		}
	}
	return nil
}

// Filter selects work items. Zero fields match everything.
type Filter struct {
	State    State
	Type     Type
	Priority int
	// Assignee is a user name, or "none" for unassigned items.
	Assignee string
	Project  string
	// Parent lists the children of an item.
	Parent int64
	// Query matches titles containing it (case-insensitive).
	Query string
	// Limit caps the result (default and at most MaxList).
	Limit int
}

// ParseFilter reads a filter from query-string values, as the API and the
// board page take them.
func ParseFilter(get func(string) string) (Filter, error) {
	var f Filter
	var err error
	if v := get("state"); v != "" {
		if f.State, err = ParseState(v); err != nil {
			return f, err
		}
	}
	if v := get("type"); v != "" {
		if f.Type, err = ParseType(v); err != nil {
			return f, err
		}
	}
	if v := get("priority"); v != "" {
		p, perr := strconv.Atoi(v)
		if perr != nil {
			return f, apperr.InvalidField("priority", "priority must be %d to %d", MinPriority, MaxPriority)
		}
		if err := validPriority(p); err != nil {
			return f, err
		}
		f.Priority = p
	}
	f.Assignee = strings.TrimSpace(get("assignee"))
	if err := ValidateText("assignee", f.Assignee, 64, false); err != nil {
		return f, err
	}
	f.Project = strings.TrimSpace(get("project"))
	if f.Project != "" {
		if err := identity.ValidateName("project", f.Project); err != nil {
			return f, err
		}
	}
	if v := get("parent"); v != "" {
		if f.Parent, err = ParseNumber(v); err != nil {
			return f, apperr.InvalidField("parent", "parent must be a work item number")
		}
	}
	f.Query = strings.TrimSpace(get("q"))
	if err := ValidateText("q", f.Query, 200, false); err != nil {
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

// List returns org o's items matching f: by state in board order, then
// priority, then number.
func (s *Service) List(ctx context.Context, o identity.Org, f Filter) ([]WorkItem, error) {
	conds := []string{"org_id = ?"}
	args := []any{o.ID}
	if f.State != "" {
		conds, args = append(conds, "state = ?"), append(args, f.State)
	}
	if f.Type != "" {
		conds, args = append(conds, "type = ?"), append(args, f.Type)
	}
	if f.Priority != 0 {
		conds, args = append(conds, "priority = ?"), append(args, f.Priority)
	}
	switch f.Assignee {
	case "":
	case "none":
		conds = append(conds, "assignee_id IS NULL")
	default:
		u, err := s.ids.UserByName(ctx, f.Assignee)
		if apperr.Is(err, apperr.NotFound) {
			return []WorkItem{}, nil
		}
		if err != nil {
			return nil, err
		}
		conds, args = append(conds, "assignee_id = ?"), append(args, u.ID)
	}
	if f.Project != "" {
		p, err := s.ids.Project(ctx, o.ID, f.Project)
		if apperr.Is(err, apperr.NotFound) {
			return nil, apperr.InvalidField("project", "%s has no project %q", o.Name, f.Project)
		}
		if err != nil {
			return nil, err
		}
		conds, args = append(conds, "project_id = ?"), append(args, p.ID)
	}
	if f.Parent != 0 {
		conds, args = append(conds, "parent_number = ?"), append(args, f.Parent)
	}
	if f.Query != "" {
		conds, args = append(conds, "LOWER(title) LIKE ? ESCAPE '\\'"), append(args, "%"+escapeLike(strings.ToLower(f.Query))+"%")
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	q := selectItem + " WHERE " + strings.Join(conds, " AND ") +
		` ORDER BY CASE state WHEN 'new' THEN 0 WHEN 'active' THEN 1 WHEN 'resolved' THEN 2 ELSE 3 END, priority, number LIMIT ` +
		strconv.Itoa(limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list work items: %w", err)
	}
	defer rows.Close()
	out := []WorkItem{}
	for rows.Next() {
		w, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.names(ctx, o, out)
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Update changes item number n of org o; the actor comes from ctx. An
// update that changes nothing is not recorded.
func (s *Service) Update(ctx context.Context, o identity.Org, n int64, u Update) (WorkItem, error) {
	// Validate and resolve names before taking the write lock.
	var (
		title, desc string
		assigneeID  int64
		projectID   int64
		err         error
	)
	if u.Type != nil {
		t, err := ParseType(string(*u.Type))
		if err != nil {
			return WorkItem{}, err
		}
		u.Type = &t
	}
	if u.State != nil {
		st, err := ParseState(string(*u.State))
		if err != nil {
			return WorkItem{}, err
		}
		u.State = &st
	}
	if u.Title != nil {
		if title, err = validTitle(*u.Title); err != nil {
			return WorkItem{}, err
		}
	}
	if u.Description != nil {
		desc = *u.Description
		if err := ValidateText("description", desc, MaxDescription, true); err != nil {
			return WorkItem{}, err
		}
	}
	if u.Priority != nil {
		if err := validPriority(*u.Priority); err != nil {
			return WorkItem{}, err
		}
	}
	if u.Parent != nil && *u.Parent < 0 {
		return WorkItem{}, apperr.InvalidField("parent", "parent must be a work item number")
	}
	if u.Assignee != nil {
		if assigneeID, err = s.resolveAssignee(ctx, o, *u.Assignee); err != nil {
			return WorkItem{}, err
		}
	}
	if u.Project != nil {
		if projectID, err = s.resolveProject(ctx, o, *u.Project); err != nil {
			return WorkItem{}, err
		}
	}
	var w WorkItem
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		old, err := scanItem(tx.QueryRow(ctx, selectItem+" WHERE org_id = ? AND number = ?"+forUpdate(tx), o.ID, n))
		if apperr.Is(err, apperr.NotFound) {
			return notFound(o.Name, n)
		}
		if err != nil {
			return err
		}
		w = old
		changes := map[string]any{}
		change := func(field string, from, to any) { changes[field] = []any{from, to} }
		if u.Type != nil && *u.Type != old.Type {
			w.Type = *u.Type
			change("type", old.Type, w.Type)
		}
		if u.Title != nil && title != old.Title {
			w.Title = title
			change("title", old.Title, w.Title)
		}
		if u.Description != nil && desc != old.Description {
			w.Description = desc
			changes["description"] = "changed"
		}
		if u.Priority != nil && *u.Priority != old.Priority {
			w.Priority = *u.Priority
			change("priority", old.Priority, w.Priority)
		}
		if u.Assignee != nil && assigneeID != old.AssigneeID {
			w.AssigneeID = assigneeID
			change("assignee", s.userName(ctx, old.AssigneeID), strings.TrimSpace(*u.Assignee))
		}
		if u.Project != nil && projectID != old.ProjectID {
			w.ProjectID = projectID
			change("project", s.projectName(ctx, o, old.ProjectID), strings.TrimSpace(*u.Project))
		}
		if u.Parent != nil && *u.Parent != old.Parent {
			w.Parent = *u.Parent
			change("parent", old.Parent, w.Parent)
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		if u.State != nil && *u.State != old.State {
			w.State = *u.State
			w.StateChangedAt = now
			stampState(&w, now)
			change("state", old.State, w.State)
		}
		if len(changes) == 0 {
			return nil
		}
		if w.Parent != 0 && (w.Parent != old.Parent || w.Type != old.Type) {
			if err := s.checkParent(ctx, tx, o, w.Type, w.Parent, w.Number); err != nil {
				return err
			}
		}
		if w.Type != old.Type {
			if err := s.checkChildren(ctx, tx, o, w); err != nil {
				return err
			}
		}
		w.UpdatedAt = now
		if _, err := tx.Exec(ctx, `UPDATE workitems SET type = ?, title = ?, description = ?, state = ?, priority = ?,
			assignee_id = ?, project_id = ?, parent_number = ?, updated_at = ?, state_changed_at = ?, resolved_at = ?,
			closed_at = ? WHERE id = ?`, w.Type, w.Title, w.Description, w.State, w.Priority, nullInt(w.AssigneeID),
			nullInt(w.ProjectID), nullInt(w.Parent), store.Time(now), store.Time(w.StateChangedAt),
			store.Time(w.ResolvedAt), store.Time(w.ClosedAt), w.ID); err != nil {
			return fmt.Errorf("update work item: %w", err)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "workitem.update", OrgID: o.ID, Target: w.target(), Details: changes})
	})
	if err != nil {
		return WorkItem{}, err
	}
	items := []WorkItem{w}
	if err := s.names(ctx, o, items); err != nil {
		return WorkItem{}, err
	}
	return items[0], nil
}

// userName returns the name of user id ("" for none or unknown).
func (s *Service) userName(ctx context.Context, id int64) string {
	if id == 0 {
		return ""
	}
	u, err := s.ids.User(ctx, id)
	if err != nil {
		return "#" + strconv.FormatInt(id, 10)
	}
	return u.Username
}

// projectName returns the name of project id of org o ("" for none).
func (s *Service) projectName(ctx context.Context, o identity.Org, id int64) string {
	items := []WorkItem{{ProjectID: id}}
	if id == 0 || s.names(ctx, o, items) != nil {
		return ""
	}
	return items[0].Project
}

// checkChildren checks that w's children may still have it as parent
// after its type changed.
func (s *Service) checkChildren(ctx context.Context, tx *store.Tx, o identity.Org, w WorkItem) error {
	rows, err := tx.Query(ctx, "SELECT number, type FROM workitems WHERE org_id = ? AND parent_number = ? ORDER BY number", o.ID, w.Number)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			n int64
			t Type
		)
		if err := rows.Scan(&n, &t); err != nil {
			return err
		}
		if !t.mayHaveParent(w.Type) {
			return apperr.InvalidField("type", "AB#%d cannot become a %s: its child AB#%d is a %s (%s)", w.Number, w.Type, n, t, parentRule(t, w.Type))
		}
	}
	return rows.Err()
}

// Delete removes item number n of org o; its children lose their parent
// and its number is not reused.
func (s *Service) Delete(ctx context.Context, o identity.Org, n int64) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		w, err := scanItem(tx.QueryRow(ctx, selectItem+" WHERE org_id = ? AND number = ?"+forUpdate(tx), o.ID, n))
		if apperr.Is(err, apperr.NotFound) {
			return notFound(o.Name, n)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE workitems SET parent_number = NULL WHERE org_id = ? AND parent_number = ?", o.ID, n); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM workitems WHERE id = ?", w.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "workitem.delete", OrgID: o.ID, Target: w.target(),
			Details: map[string]any{"type": string(w.Type), "state": string(w.State)}})
	})
}
