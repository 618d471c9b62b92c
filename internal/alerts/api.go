package alerts

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity"
)

// AlertJSON is an alert on the wire.
type AlertJSON struct {
	ID  int64  `json:"id"`
	Org string `json:"org"`
	// Source is scan (the default branch) or bypass (a push let past push
	// protection).
	Source      string    `json:"source"`
	Repo        string    `json:"repo"`
	Kind        string    `json:"kind"`
	Rule        string    `json:"rule"`
	Title       string    `json:"title"`
	Severity    string    `json:"severity"`
	Path        string    `json:"path,omitempty"`
	Line        int       `json:"line,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	State       string    `json:"state"`
	FirstSeenAt time.Time `json:"first_seen_at"`
	FirstCommit string    `json:"first_commit,omitempty"`
	LastSeenAt  time.Time `json:"last_seen_at"`
	LastCommit  string    `json:"last_commit,omitempty"`
	OpenedAt    time.Time `json:"opened_at"`
	Reopened    int       `json:"reopened,omitempty"`
	// Dismissal is set while the alert is dismissed.
	Dismissal   *DismissalJSON `json:"dismissal,omitempty"`
	FixedAt     *time.Time     `json:"fixed_at,omitempty"`
	FixedCommit string         `json:"fixed_commit,omitempty"`
	// WorkItem is the linked work item ("AB#12").
	WorkItem    string `json:"workitem,omitempty"`
	WorkItemURL string `json:"workitem_url,omitempty"`
	Description string `json:"description,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	// Secret is the start of a leaked secret, never all of it.
	Secret  string       `json:"secret,omitempty"`
	Package *PackageJSON `json:"package,omitempty"`
	URL     string       `json:"url"`
}

// DismissalJSON says who dismissed an alert and why.
type DismissalJSON struct {
	Reason  string    `json:"reason"`
	Comment string    `json:"comment"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// PackageJSON is the vulnerable package of a dependency alert.
type PackageJSON struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Ecosystem    string   `json:"ecosystem"`
	FixedVersion string   `json:"fixed_version,omitempty"`
	Advisory     string   `json:"advisory"`
	Aliases      []string `json:"aliases,omitempty"`
}

// DismissRequest dismisses an alert.
type DismissRequest struct {
	Reason  string `json:"reason"` // false_positive, wont_fix, used_in_tests
	Comment string `json:"comment"`
}

// WorkItemRequest makes a work item from an alert; every field is
// optional.
type WorkItemRequest struct {
	Type     string `json:"type,omitempty"` // default bug
	Assignee string `json:"assignee,omitempty"`
	Project  string `json:"project,omitempty"`
	Priority int    `json:"priority,omitempty"` // default from the severity
}

// WorkItemResponse is the alert and the work item made from it.
type WorkItemResponse struct {
	Alert    AlertJSON           `json:"alert"`
	WorkItem boards.WorkItemJSON `json:"workitem"`
}

// ScanRequest rescans a repository's default branch.
type ScanRequest struct {
	Repo string `json:"repo"` // NAME or ORG/NAME
}

// OverviewJSON is an org's security overview on the wire.
type OverviewJSON struct {
	Org        string         `json:"org"`
	Open       int            `json:"open"`
	Dismissed  int            `json:"dismissed"`
	Fixed      int            `json:"fixed"`
	BySeverity map[string]int `json:"by_severity"`
	// ByAge counts open alerts by age bucket and severity.
	ByAge  []AgeJSON         `json:"by_age"`
	Oldest []AlertJSON       `json:"oldest"`
	Repos  []RepoSummaryJSON `json:"repos"`
}

// AgeJSON is one age bucket of the overview.
type AgeJSON struct {
	Age        string         `json:"age"`
	Total      int            `json:"total"`
	BySeverity map[string]int `json:"by_severity"`
}

// RepoSummaryJSON is a repository's line of the overview.
type RepoSummaryJSON struct {
	Repo          string         `json:"repo"`
	DefaultBranch string         `json:"default_branch,omitempty"`
	LastCommit    string         `json:"last_commit,omitempty"`
	LastScanAt    *time.Time     `json:"last_scan_at,omitempty"`
	LastError     string         `json:"last_error,omitempty"`
	Open          int            `json:"open"`
	BySeverity    map[string]int `json:"by_severity"`
}

// Routes are the alerts API, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const prefix = httpapi.Prefix + "/orgs/{org}/alerts"
	return []httpapi.Route{
		{Method: "GET", Path: prefix, Tag: "alerts", Summary: "List security alerts, worst first (filters: repo, state (default open; all), kind, severity (at least), limit)",
			Action: authz.AlertRead, On: httpapi.OnOrg, Response: []AlertJSON{}, Handler: s.apiList},
		{Method: "GET", Path: prefix + "/overview", Tag: "alerts", Summary: "The org's security overview: open alerts by severity and age, oldest first",
			Action: authz.AlertRead, On: httpapi.OnOrg, Response: OverviewJSON{}, Handler: s.apiOverview},
		{Method: "POST", Path: prefix + "/scan", Tag: "alerts", Summary: "Rescan a repository's default branch now (maintainers)",
			Action: authz.AlertScan, On: httpapi.OnOrg, Request: ScanRequest{}, Response: Result{}, Handler: s.apiScan},
		{Method: "GET", Path: prefix + "/{id}", Tag: "alerts", Summary: "Show a security alert",
			Action: authz.AlertRead, On: httpapi.OnOrg, Response: AlertJSON{}, Handler: s.apiGet},
		{Method: "POST", Path: prefix + "/{id}/dismiss", Tag: "alerts", Summary: "Dismiss an open alert with a reason and a comment (maintainers)",
			Action: authz.AlertDismiss, On: httpapi.OnOrg, Request: DismissRequest{}, Response: AlertJSON{}, Handler: s.apiDismiss},
		{Method: "POST", Path: prefix + "/{id}/reopen", Tag: "alerts", Summary: "Reopen a dismissed alert (maintainers)",
			Action: authz.AlertDismiss, On: httpapi.OnOrg, Response: AlertJSON{}, Handler: s.apiReopen},
		{Method: "POST", Path: prefix + "/{id}/workitem", Tag: "alerts", Summary: "Create a work item from an alert, linked both ways",
			Action: authz.AlertWorkItem, On: httpapi.OnOrg, Request: WorkItemRequest{}, Response: WorkItemResponse{}, Status: http.StatusCreated, Handler: s.apiWorkItem},
	}
}

// JSON returns a on the wire.
func (s *Service) JSON(a Alert) AlertJSON {
	j := AlertJSON{ID: a.ID, Source: a.Source, Org: a.Org(), Repo: a.Repo, Kind: string(a.Kind), Rule: a.RuleID, Title: a.Title,
		Severity: a.Severity.String(), Path: a.Path, Line: a.Line, Fingerprint: a.Fingerprint, State: string(a.State),
		FirstSeenAt: a.FirstSeenAt, FirstCommit: a.FirstCommit, LastSeenAt: a.LastSeenAt, LastCommit: a.LastCommit,
		OpenedAt: a.OpenedAt, Reopened: a.Reopened, FixedCommit: a.FixedCommit, Description: a.Finding.Description,
		Remediation: a.Finding.Remediation, URL: s.publicURL + Path(a.Org(), a.ID)}
	if a.State == StateDismissed {
		j.Dismissal = &DismissalJSON{Reason: string(a.DismissedReason), Comment: a.DismissedComment, By: a.DismissedBy, At: a.DismissedAt}
	}
	if !a.FixedAt.IsZero() {
		j.FixedAt = &a.FixedAt
	}
	if a.WorkItem != 0 {
		w := boards.WorkItem{Number: a.WorkItem}
		j.WorkItem, j.WorkItemURL = w.Ref(), s.publicURL+boards.ItemPath(a.Org(), a.WorkItem)
	}
	if a.Finding.Secret != nil {
		j.Secret = a.Finding.Secret.Redacted
	}
	if v := a.Finding.Vuln; v != nil {
		j.Package = &PackageJSON{Name: v.Package.Name, Version: v.Package.Version, Ecosystem: v.Package.Ecosystem,
			FixedVersion: v.FixedVersion, Advisory: v.ID, Aliases: v.Aliases}
	}
	return j
}

func (s *Service) apiList(c *httpapi.Call) error {
	q := c.R.URL.Query()
	f, err := ParseFilter(q.Get)
	if err != nil {
		return err
	}
	if !q.Has("state") {
		f.State = StateOpen
	}
	as, err := s.List(c.R.Context(), c.Org, f)
	if err != nil {
		return err
	}
	out := make([]AlertJSON, len(as))
	for i, a := range as {
		out[i] = s.JSON(a)
	}
	return c.JSON(out)
}

func (s *Service) apiOverview(c *httpapi.Call) error {
	v, err := s.Overview(c.R.Context(), c.Org)
	if err != nil {
		return err
	}
	return c.JSON(s.overviewJSON(c.Org, v))
}

func bySeverity(counts []int) map[string]int {
	m := map[string]int{}
	for i, sev := range SeverityOrder() {
		if i < len(counts) && (counts[i] > 0 || i < 4) {
			m[sev.String()] = counts[i]
		}
	}
	return m
}

func (s *Service) overviewJSON(o identity.Org, v Overview) OverviewJSON {
	j := OverviewJSON{Org: o.Name, Open: v.Open, Dismissed: v.Dismissed, Fixed: v.Fixed, BySeverity: bySeverity(v.BySeverity),
		ByAge: []AgeJSON{}, Oldest: []AlertJSON{}, Repos: []RepoSummaryJSON{}}
	for _, a := range v.Ages {
		j.ByAge = append(j.ByAge, AgeJSON{Age: a.Label, Total: a.Total, BySeverity: bySeverity(a.BySeverity)})
	}
	for _, a := range v.Oldest {
		j.Oldest = append(j.Oldest, s.JSON(a))
	}
	for _, r := range v.Repos {
		rj := RepoSummaryJSON{Repo: r.Name, DefaultBranch: r.DefaultBranch, LastCommit: r.LastCommit, LastError: r.LastError,
			Open: r.Open, BySeverity: bySeverity(r.BySeverity)}
		if !r.LastScanAt.IsZero() {
			t := r.LastScanAt
			rj.LastScanAt = &t
		}
		j.Repos = append(j.Repos, rj)
	}
	return j
}

func (s *Service) apiGet(c *httpapi.Call) error {
	id, err := ParseID(c.R.PathValue("id"))
	if err != nil {
		return err
	}
	a, err := s.Get(c.R.Context(), c.Org, id)
	if err != nil {
		return err
	}
	return c.JSON(s.JSON(a))
}

func (s *Service) apiDismiss(c *httpapi.Call) error {
	id, err := ParseID(c.R.PathValue("id"))
	if err != nil {
		return err
	}
	var req DismissRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	a, err := s.Dismiss(c.R.Context(), c.Org, id, Reason(req.Reason), req.Comment)
	if err != nil {
		return err
	}
	return c.JSON(s.JSON(a))
}

func (s *Service) apiReopen(c *httpapi.Call) error {
	id, err := ParseID(c.R.PathValue("id"))
	if err != nil {
		return err
	}
	a, err := s.Reopen(c.R.Context(), c.Org, id)
	if err != nil {
		return err
	}
	return c.JSON(s.JSON(a))
}

func (s *Service) apiWorkItem(c *httpapi.Call) error {
	// Making a work item is also writing to the board.
	if err := authz.Check(c.P.Subject, authz.WorkItemWrite, c.Org.Resource()); err != nil {
		return err
	}
	id, err := ParseID(c.R.PathValue("id"))
	if err != nil {
		return err
	}
	var req WorkItemRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	in := NewWorkItem{Assignee: req.Assignee, Project: req.Project, Priority: req.Priority}
	if req.Type != "" {
		t, err := boards.ParseType(req.Type)
		if err != nil {
			return err
		}
		in.Type = t
	}
	a, w, err := s.CreateWorkItem(c.R.Context(), c.Org, id, in)
	if err != nil {
		return err
	}
	return c.JSON(WorkItemResponse{Alert: s.JSON(a), WorkItem: workItemJSON(s.publicURL, c.Org, w)})
}

// workItemJSON renders a work item as boards does.
func workItemJSON(publicURL string, o identity.Org, w boards.WorkItem) boards.WorkItemJSON {
	j := boards.WorkItemJSON{Org: o.Name, Number: w.Number, Ref: w.Ref(), Type: string(w.Type), Title: w.Title,
		Description: w.Description, State: string(w.State), Priority: w.Priority, Assignee: w.Assignee, Project: w.Project,
		Parent: w.Parent, CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		URL: publicURL + boards.ItemPath(o.Name, w.Number)}
	return j
}

func (s *Service) apiScan(c *httpapi.Call) error {
	var req ScanRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	if req.Repo == "" {
		return apperr.InvalidField("repo", "name the repository to scan")
	}
	if err := boards.ValidateText("repo", req.Repo, 200, false); err != nil {
		return err
	}
	res, err := s.ScanDefaultBranch(c.R.Context(), c.Org, req.Repo)
	if err != nil {
		return err
	}
	return c.JSON(res)
}
