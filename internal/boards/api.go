package boards

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity"
)

// WorkItemJSON is a work item on the wire.
type WorkItemJSON struct {
	Org         string     `json:"org"`
	Number      int64      `json:"number"`
	Ref         string     `json:"ref"` // AB#12
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	State       string     `json:"state"`
	Priority    int        `json:"priority"`
	Assignee    string     `json:"assignee,omitempty"`
	Project     string     `json:"project,omitempty"`
	Parent      int64      `json:"parent,omitempty"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	URL         string     `json:"url"`
	// Links and Children are filled when one item is shown.
	Links    []WorkItemLinkJSON `json:"links,omitempty"`
	Children []int64            `json:"children,omitempty"`
}

// WorkItemLinkJSON is a link of a work item on the wire.
type WorkItemLinkJSON struct {
	Kind      string    `json:"kind"` // commit, pull_request, alert
	Repo      string    `json:"repo,omitempty"`
	Ref       string    `json:"ref"`
	Title     string    `json:"title,omitempty"`
	URL       string    `json:"url,omitempty"`
	Fixes     bool      `json:"fixes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateWorkItemRequest creates a work item.
type CreateWorkItemRequest struct {
	Type        string `json:"type"` // epic, story, bug, task
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	State       string `json:"state,omitempty"`    // default new
	Priority    int    `json:"priority,omitempty"` // 1 (highest) to 4; default 2
	Assignee    string `json:"assignee,omitempty"`
	Project     string `json:"project,omitempty"`
	Parent      int64  `json:"parent,omitempty"`
}

// UpdateWorkItemRequest changes the fields it sets; "" clears the assignee
// or project, 0 removes the parent.
type UpdateWorkItemRequest struct {
	Type        *string `json:"type,omitempty"`
	Title       *string `json:"title,omitempty"`
	Description *string `json:"description,omitempty"`
	State       *string `json:"state,omitempty"`
	Priority    *int    `json:"priority,omitempty"`
	Assignee    *string `json:"assignee,omitempty"`
	Project     *string `json:"project,omitempty"`
	Parent      *int64  `json:"parent,omitempty"`
}

// Routes are the boards API, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const prefix = httpapi.Prefix + "/orgs/{org}/workitems"
	return []httpapi.Route{
		{Method: "GET", Path: prefix, Tag: "boards", Summary: "List work items (filters: state, type, priority, assignee (or none), project, parent, q, limit)",
			Action: authz.WorkItemRead, On: httpapi.OnOrg, Response: []WorkItemJSON{}, Handler: s.apiList},
		{Method: "POST", Path: prefix, Tag: "boards", Summary: "Create a work item",
			Action: authz.WorkItemWrite, On: httpapi.OnOrg, Request: CreateWorkItemRequest{}, Response: WorkItemJSON{}, Status: http.StatusCreated, Handler: s.apiCreate},
		{Method: "GET", Path: prefix + "/{number}", Tag: "boards", Summary: "Show a work item with its links and children",
			Action: authz.WorkItemRead, On: httpapi.OnOrg, Response: WorkItemJSON{}, Handler: s.apiGet},
		{Method: "PATCH", Path: prefix + "/{number}", Tag: "boards", Summary: "Change a work item (move it with state)",
			Action: authz.WorkItemWrite, On: httpapi.OnOrg, Request: UpdateWorkItemRequest{}, Response: WorkItemJSON{}, Handler: s.apiUpdate},
		{Method: "DELETE", Path: prefix + "/{number}", Tag: "boards", Summary: "Delete a work item (maintainers); its number is not reused",
			Action: authz.WorkItemDelete, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDelete},
	}
}

// JSON returns w on the wire (without links).
func (s *Service) JSON(o identity.Org, w WorkItem) WorkItemJSON {
	j := WorkItemJSON{Org: o.Name, Number: w.Number, Ref: w.Ref(), Type: string(w.Type), Title: w.Title, Description: w.Description,
		State: string(w.State), Priority: w.Priority, Assignee: w.Assignee, Project: w.Project, Parent: w.Parent,
		CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, URL: s.publicURL + ItemPath(o.Name, w.Number)}
	if !w.ResolvedAt.IsZero() {
		j.ResolvedAt = &w.ResolvedAt
	}
	if !w.ClosedAt.IsZero() {
		j.ClosedAt = &w.ClosedAt
	}
	return j
}

// ItemPath is the page of item n of org.
func ItemPath(org string, n int64) string {
	return "/orgs/" + url.PathEscape(org) + "/workitems/" + strconv.FormatInt(n, 10)
}

func (s *Service) apiList(c *httpapi.Call) error {
	f, err := ParseFilter(c.R.URL.Query().Get)
	if err != nil {
		return err
	}
	items, err := s.List(c.R.Context(), c.Org, f)
	if err != nil {
		return err
	}
	out := make([]WorkItemJSON, len(items))
	for i, w := range items {
		out[i] = s.JSON(c.Org, w)
	}
	return c.JSON(out)
}

func (s *Service) apiCreate(c *httpapi.Call) error {
	var req CreateWorkItemRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	w, err := s.Create(c.R.Context(), c.Org, NewItem{Type: Type(req.Type), Title: req.Title, Description: req.Description,
		State: State(req.State), Priority: req.Priority, Assignee: req.Assignee, Project: req.Project, Parent: req.Parent})
	if err != nil {
		return err
	}
	return c.JSON(s.JSON(c.Org, w))
}

func (s *Service) apiGet(c *httpapi.Call) error {
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return err
	}
	j, err := s.detail(c, n)
	if err != nil {
		return err
	}
	return c.JSON(j)
}

// detail returns item n with its links and children.
func (s *Service) detail(c *httpapi.Call, n int64) (WorkItemJSON, error) {
	ctx := c.R.Context()
	w, err := s.Get(ctx, c.Org, n)
	if err != nil {
		return WorkItemJSON{}, err
	}
	j := s.JSON(c.Org, w)
	links, err := s.Links(ctx, w)
	if err != nil {
		return j, err
	}
	for _, l := range links {
		j.Links = append(j.Links, WorkItemLinkJSON{Kind: string(l.Kind), Repo: l.Repo, Ref: l.Ref, Title: l.Title, URL: l.URL,
			Fixes: l.Fixes, CreatedAt: l.CreatedAt})
	}
	kids, err := s.List(ctx, c.Org, Filter{Parent: n})
	if err != nil {
		return j, err
	}
	for _, k := range kids {
		j.Children = append(j.Children, k.Number)
	}
	return j, nil
}

func (s *Service) apiUpdate(c *httpapi.Call) error {
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return err
	}
	var req UpdateWorkItemRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	u := Update{Title: req.Title, Description: req.Description, Priority: req.Priority, Assignee: req.Assignee,
		Project: req.Project, Parent: req.Parent}
	if req.Type != nil {
		t := Type(*req.Type)
		u.Type = &t
	}
	if req.State != nil {
		st := State(*req.State)
		u.State = &st
	}
	if _, err := s.Update(c.R.Context(), c.Org, n, u); err != nil {
		return err
	}
	j, err := s.detail(c, n)
	if err != nil {
		return err
	}
	return c.JSON(j)
}

func (s *Service) apiDelete(c *httpapi.Call) error {
	n, err := ParseNumber(c.R.PathValue("number"))
	if err != nil {
		return err
	}
	if err := s.Delete(c.R.Context(), c.Org, n); err != nil {
		return err
	}
	return c.NoContent()
}
