package boards

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// Templates are the boards page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// Pages are the boards pages, for web.Deps.Pages.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/static/boards/{file}", Anonymous: true, Handler: web.StaticFiles(staticFS, "static")},
		{Method: "GET", Path: "/boards", Handler: s.indexPage},
		{Method: "GET", Path: "/orgs/{org}/board", Handler: s.boardPage},
		{Method: "GET", Path: "/orgs/{org}/workitems/new", Handler: s.newPage},
		{Method: "POST", Path: "/orgs/{org}/workitems", Handler: s.createSubmit},
		{Method: "GET", Path: "/orgs/{org}/workitems/{number}", Handler: s.itemPage},
		{Method: "POST", Path: "/orgs/{org}/workitems/{number}", Handler: s.updateSubmit},
		{Method: "POST", Path: "/orgs/{org}/workitems/{number}/move", Handler: s.moveSubmit},
		{Method: "POST", Path: "/orgs/{org}/workitems/{number}/delete", Handler: s.deleteSubmit},
	}
}

// Nav is the boards entry of the navigation bar, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Boards", Path: "/boards", Order: 30}}
}

type indexView struct {
	Orgs     []identity.Org
	Assigned []assignedItem
}

type assignedItem struct {
	Org  string
	Item WorkItem
}

// indexPage lists the boards the user can open and the open items
// assigned to them.
func (s *Service) indexPage(c *web.Ctx) error {
	if err := c.Check(authz.OrgList, authz.Site); err != nil {
		return err
	}
	ctx := c.R.Context()
	orgs, err := s.ids.OrgsOf(ctx, c.P.User.ID)
	if err != nil {
		return err
	}
	v := indexView{}
	for _, o := range orgs {
		if !authz.Decide(c.P.Subject, authz.WorkItemRead, o.Resource()).Allow {
			continue
		}
		v.Orgs = append(v.Orgs, o)
		items, err := s.List(ctx, o, Filter{Assignee: c.P.User.Username, Limit: 100})
		if err != nil {
			return err
		}
		for _, w := range items {
			if w.State != StateClosed {
				v.Assigned = append(v.Assigned, assignedItem{Org: o.Name, Item: w})
			}
		}
	}
	return c.Render(http.StatusOK, "boards_index", "Boards", v)
}

// column is one state's column of the board.
type column struct {
	State State
	Items []WorkItem
}

type boardView struct {
	Org        identity.Org
	Columns    []column
	Filter     Filter
	Query      string // the filter as a query string, kept across moves
	Types      []Type
	States     []State
	Projects   []identity.Project
	Members    []identity.Member
	CanWrite   bool
	CanAlerts  bool
	Total      int
	Capped     bool
	Priorities []int
}

// boardPage is the Kanban board of an org.
func (s *Service) boardPage(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemRead)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	v := boardView{Org: o, Types: Types(), States: States(), Priorities: priorities(),
		CanWrite:  authz.Decide(c.P.Subject, authz.WorkItemWrite, o.Resource()).Allow,
		CanAlerts: authz.Decide(c.P.Subject, authz.AlertRead, o.Resource()).Allow}
	if v.Projects, err = s.ids.Projects(ctx, o.ID); err != nil {
		return err
	}
	if v.Members, err = s.ids.Members(ctx, o.ID); err != nil {
		return err
	}
	f, err := ParseFilter(c.R.URL.Query().Get)
	if err != nil {
		return c.RenderForm("boards_board", o.Name+" board", s.columns(v, nil), err)
	}
	f.State, f.Limit = "", MaxList
	v.Filter = f
	v.Query = filterQuery(f)
	items, err := s.List(ctx, o, f)
	if err != nil {
		if apperr.KindOf(err) == apperr.Invalid {
			return c.RenderForm("boards_board", o.Name+" board", s.columns(v, nil), err)
		}
		return err
	}
	v.Total, v.Capped = len(items), len(items) == MaxList
	return c.Render(http.StatusOK, "boards_board", o.Name+" board", s.columns(v, items))
}

func (s *Service) columns(v boardView, items []WorkItem) boardView {
	for _, st := range States() {
		col := column{State: st}
		for _, w := range items {
			if w.State == st {
				col.Items = append(col.Items, w)
			}
		}
		v.Columns = append(v.Columns, col)
	}
	return v
}

// filterQuery encodes the board's filters (without the state).
func filterQuery(f Filter) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("type", string(f.Type))
	set("assignee", f.Assignee)
	set("project", f.Project)
	set("q", f.Query)
	if f.Priority != 0 {
		q.Set("priority", strconv.Itoa(f.Priority))
	}
	return q.Encode()
}

type formView struct {
	Org      identity.Org
	Item     WorkItem
	Types    []Type
	States   []State
	Projects []identity.Project
	Members  []identity.Member
	// Shown item only.
	Links      []Link
	Children   []WorkItem
	Parent     *WorkItem
	CanWrite   bool
	CanDelete  bool
	Priorities []int
}

func priorities() []int {
	var out []int
	for p := MinPriority; p <= MaxPriority; p++ {
		out = append(out, p)
	}
	return out
}

func (s *Service) form(ctx context.Context, o identity.Org, w WorkItem) (formView, error) {
	v := formView{Org: o, Item: w, Types: Types(), States: States(), Priorities: priorities()}
	var err error
	if v.Projects, err = s.ids.Projects(ctx, o.ID); err != nil {
		return v, err
	}
	v.Members, err = s.ids.Members(ctx, o.ID)
	return v, err
}

// newPage is the form for a new work item; ?type= and ?parent= preset it.
func (s *Service) newPage(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemWrite)
	if err != nil {
		return err
	}
	q := c.R.URL.Query()
	w := WorkItem{Type: TypeStory, State: StateNew, Priority: DefaultPriority}
	if t, err := ParseType(q.Get("type")); err == nil {
		w.Type = t
	}
	if n, err := ParseNumber(q.Get("parent")); err == nil {
		w.Parent = n
	}
	v, err := s.form(c.R.Context(), o, w)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "boards_new", "New work item", v)
}

func (s *Service) createSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemWrite)
	if err != nil {
		return err
	}
	f := c.R.PostFormValue
	in := NewItem{Type: Type(f("type")), Title: f("title"), Description: normalizeNewlines(f("description")), State: State(f("state")),
		Assignee: f("assignee"), Project: f("project")}
	var perr error
	if in.Priority, perr = formInt(f("priority"), "priority"); perr == nil {
		in.Parent, perr = formNumber(f("parent"))
	}
	var w WorkItem
	if perr == nil {
		w, err = s.Create(c.R.Context(), o, in)
	} else {
		err = perr
	}
	if err != nil {
		v, ferr := s.form(c.R.Context(), o, WorkItem{Type: in.Type, Title: in.Title, Description: in.Description, State: in.State,
			Priority: in.Priority, Assignee: in.Assignee, Project: in.Project, Parent: in.Parent})
		if ferr != nil {
			return ferr
		}
		return c.RenderForm("boards_new", "New work item", v, err)
	}
	return c.Redirect(ItemPath(o.Name, w.Number), w.Ref()+" created.")
}

// itemPage shows a work item with its links and children, and the form
// to change it.
func (s *Service) itemPage(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemRead)
	if err != nil {
		return err
	}
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return apperr.E(apperr.NotFound, "no work item %q", clip(c.R.PathValue("number")))
	}
	w, err := s.Get(c.R.Context(), o, n)
	if err != nil {
		return err
	}
	v, err := s.itemView(c, o, w)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "boards_item", w.Ref()+" "+w.Title, v)
}

func (s *Service) itemView(c *web.Ctx, o identity.Org, w WorkItem) (formView, error) {
	ctx := c.R.Context()
	v, err := s.form(ctx, o, w)
	if err != nil {
		return v, err
	}
	v.CanWrite = authz.Decide(c.P.Subject, authz.WorkItemWrite, o.Resource()).Allow
	v.CanDelete = authz.Decide(c.P.Subject, authz.WorkItemDelete, o.Resource()).Allow
	if w.ID != 0 {
		if v.Links, err = s.Links(ctx, w); err != nil {
			return v, err
		}
	}
	if v.Children, err = s.List(ctx, o, Filter{Parent: w.Number}); err != nil {
		return v, err
	}
	if w.Parent != 0 {
		if p, err := s.Get(ctx, o, w.Parent); err == nil {
			v.Parent = &p
		}
	}
	return v, nil
}

func (s *Service) updateSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemWrite)
	if err != nil {
		return err
	}
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return apperr.E(apperr.NotFound, "no work item %q", clip(c.R.PathValue("number")))
	}
	ctx := c.R.Context()
	w, err := s.Get(ctx, o, n)
	if err != nil {
		return err
	}
	f := c.R.PostFormValue
	t, st := Type(f("type")), State(f("state"))
	title, desc, assignee, project := f("title"), normalizeNewlines(f("description")), f("assignee"), f("project")
	u := Update{Type: &t, State: &st, Title: &title, Description: &desc, Assignee: &assignee, Project: &project}
	prio, err := formInt(f("priority"), "priority")
	if err == nil {
		u.Priority = &prio
		var parent int64
		if parent, err = formNumber(f("parent")); err == nil {
			u.Parent = &parent
		}
	}
	if err == nil {
		_, err = s.Update(ctx, o, n, u)
	}
	if err != nil {
		// Show what was typed, with the error.
		w.Type, w.State, w.Title, w.Description, w.Assignee, w.Project = t, st, title, desc, assignee, project
		v, verr := s.itemView(c, o, w)
		if verr != nil {
			return verr
		}
		return c.RenderForm("boards_item", w.Ref(), v, err)
	}
	return c.Redirect(ItemPath(o.Name, n), w.Ref()+" saved.")
}

// moveSubmit moves an item to another column (the board's forms, for
// browsers without the drag-and-drop script).
func (s *Service) moveSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemWrite)
	if err != nil {
		return err
	}
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return apperr.E(apperr.NotFound, "no work item %q", clip(c.R.PathValue("number")))
	}
	st := State(c.R.PostFormValue("state"))
	w, err := s.Update(c.R.Context(), o, n, Update{State: &st})
	if err != nil {
		return err
	}
	back := "/orgs/" + url.PathEscape(o.Name) + "/board"
	if q := c.R.PostFormValue("return"); q != "" {
		if f, err := ParseFilter(mustQuery(q).Get); err == nil {
			if enc := filterQuery(f); enc != "" {
				back += "?" + enc
			}
		}
	}
	return c.Redirect(back, w.Ref()+" moved to "+w.State.Label()+".")
}

func mustQuery(q string) url.Values {
	v, err := url.ParseQuery(q)
	if err != nil {
		return url.Values{}
	}
	return v
}

func (s *Service) deleteSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.WorkItemDelete)
	if err != nil {
		return err
	}
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return apperr.E(apperr.NotFound, "no work item %q", clip(c.R.PathValue("number")))
	}
	if err := s.Delete(c.R.Context(), o, n); err != nil {
		return err
	}
	return c.Redirect("/orgs/"+url.PathEscape(o.Name)+"/board", "AB#"+strconv.FormatInt(n, 10)+" deleted.")
}

// formInt reads an optional whole number from a form.
func formInt(v, field string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, apperr.InvalidField(field, "%s must be a whole number", field)
	}
	return n, nil
}

// formNumber reads an optional work item number (12 or AB#12) from a form.
func formNumber(v string) (int64, error) {
	if strings.TrimSpace(v) == "" {
		return 0, nil
	}
	n, err := ParseNumber(v)
	if err != nil {
		return 0, apperr.InvalidField("parent", "parent must be a work item number such as 12 or AB#12")
	}
	return n, nil
}

// normalizeNewlines turns the CRLF line ends browsers send into LF.
func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
