package alerts

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// Templates are the alerts page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// Pages are the security pages, for web.Deps.Pages.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/static/alerts/{file}", Anonymous: true, Handler: web.StaticFiles(staticFS, "static")},
		{Method: "GET", Path: "/security", Handler: s.indexPage},
		{Method: "GET", Path: "/orgs/{org}/security", Handler: s.overviewPage},
		{Method: "POST", Path: "/orgs/{org}/security/scan", Handler: s.scanSubmit},
		{Method: "GET", Path: "/orgs/{org}/alerts", Handler: s.listPage},
		{Method: "GET", Path: "/orgs/{org}/alerts/{id}", Handler: s.alertPage},
		{Method: "POST", Path: "/orgs/{org}/alerts/{id}/dismiss", Handler: s.dismissSubmit},
		{Method: "POST", Path: "/orgs/{org}/alerts/{id}/reopen", Handler: s.reopenSubmit},
		{Method: "POST", Path: "/orgs/{org}/alerts/{id}/workitem", Handler: s.workItemSubmit},
	}
}

// Nav is the security entry of the navigation bar, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Security", Path: "/security", Order: 40}}
}

// severityView is a severity with its count, for the pages.
type severityView struct {
	Name  string
	Count int
}

func severities(counts []int) []severityView {
	var out []severityView
	for i, sev := range SeverityOrder()[:4] {
		out = append(out, severityView{Name: sev.String(), Count: counts[i]})
	}
	return out
}

type indexRow struct {
	Org        identity.Org
	Open       int
	BySeverity []severityView
}

// indexPage lists the orgs whose alerts the user may read, with their
// open alerts.
func (s *Service) indexPage(c *web.Ctx) error {
	if err := c.Check(authz.OrgList, authz.Site); err != nil {
		return err
	}
	ctx := c.R.Context()
	orgs, err := s.ids.OrgsOf(ctx, c.P.User.ID)
	if err != nil {
		return err
	}
	var rows []indexRow
	for _, o := range orgs {
		if !authz.Decide(c.P.Subject, authz.AlertRead, o.Resource()).Allow {
			continue
		}
		v, err := s.Overview(ctx, o)
		if err != nil {
			return err
		}
		rows = append(rows, indexRow{Org: o, Open: v.Open, BySeverity: severities(v.BySeverity)})
	}
	return c.Render(http.StatusOK, "alerts_index", "Security", rows)
}

type ageView struct {
	Label      string
	Total      int
	BySeverity []severityView
}

type repoView struct {
	RepoSummary
	BySev []severityView
}

type overviewView struct {
	Org        identity.Org
	Overview   Overview
	BySeverity []severityView
	Ages       []ageView
	Repos      []repoView
	Severities []string
	Now        time.Time
	CanScan    bool
}

func (s *Service) overviewPage(c *web.Ctx) error {
	o, err := c.Org(authz.AlertRead)
	if err != nil {
		return err
	}
	v, err := s.overviewView(c, o)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "alerts_overview", o.Name+" security", v)
}

func (s *Service) overviewView(c *web.Ctx, o identity.Org) (overviewView, error) {
	ov, err := s.Overview(c.R.Context(), o)
	if err != nil {
		return overviewView{}, err
	}
	v := overviewView{Org: o, Overview: ov, BySeverity: severities(ov.BySeverity), Now: s.now(),
		CanScan: authz.Decide(c.P.Subject, authz.AlertScan, o.Resource()).Allow}
	for _, sev := range SeverityOrder()[:4] {
		v.Severities = append(v.Severities, sev.String())
	}
	for _, a := range ov.Ages {
		v.Ages = append(v.Ages, ageView{Label: a.Label, Total: a.Total, BySeverity: severities(a.BySeverity)})
	}
	for _, r := range ov.Repos {
		v.Repos = append(v.Repos, repoView{RepoSummary: r, BySev: severities(r.BySeverity)})
	}
	return v, nil
}

func (s *Service) scanSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.AlertScan)
	if err != nil {
		return err
	}
	repo := strings.TrimSpace(c.R.PostFormValue("repo"))
	res, err := s.ScanDefaultBranch(c.R.Context(), o, repo)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Internal || k == apperr.Unavailable {
			return err
		}
		v, verr := s.overviewView(c, o)
		if verr != nil {
			return verr
		}
		return c.RenderForm("alerts_overview", o.Name+" security", v, err)
	}
	msg := fmt.Sprintf("Scanned %s at %s: %d findings, %d new alerts, %d reopened, %d fixed.", res.Repo, short(res.Commit),
		res.Findings, res.Opened, res.Reopened, res.Fixed)
	if res.Superseded {
		msg = "A newer scan of " + res.Repo + " was applied first."
	}
	return c.Redirect("/orgs/"+url.PathEscape(o.Name)+"/security", msg)
}

type listView struct {
	Org        identity.Org
	Alerts     []Alert
	Filter     Filter
	State      string
	Repos      []RepoStatus
	Kinds      []scan.Kind
	States     []State
	Severities []string
	Now        time.Time
}

func (s *Service) listPage(c *web.Ctx) error {
	o, err := c.Org(authz.AlertRead)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	q := c.R.URL.Query()
	v := listView{Org: o, Kinds: []scan.Kind{scan.KindSecret, scan.KindVulnerability, scan.KindMisconfiguration},
		States: []State{StateOpen, StateDismissed, StateFixed}, Now: s.now()}
	for _, sev := range SeverityOrder()[:5] {
		v.Severities = append(v.Severities, sev.String())
	}
	if v.Repos, err = s.Repos(ctx, o); err != nil {
		return err
	}
	f, err := ParseFilter(q.Get)
	if err != nil {
		return c.RenderForm("alerts_list", o.Name+" alerts", v, err)
	}
	v.State = q.Get("state")
	if !q.Has("state") {
		f.State, v.State = StateOpen, string(StateOpen)
	}
	v.Filter = f
	if v.Alerts, err = s.List(ctx, o, f); err != nil {
		return err
	}
	return c.Render(http.StatusOK, "alerts_list", o.Name+" alerts", v)
}

type alertView struct {
	Org         identity.Org
	Alert       Alert
	Reasons     []Reason
	Types       []boards.Type
	Members     []identity.Member
	Projects    []identity.Project
	CanDismiss  bool
	CanWorkItem bool
	Now         time.Time
	Comment     string
}

func (s *Service) alertPage(c *web.Ctx) error {
	o, err := c.Org(authz.AlertRead)
	if err != nil {
		return err
	}
	id, err := ParseID(c.R.PathValue("id"))
	if err != nil {
		return apperr.E(apperr.NotFound, "no alert %q", clip(c.R.PathValue("id")))
	}
	a, err := s.Get(c.R.Context(), o, id)
	if err != nil {
		return err
	}
	v, err := s.alertView(c, o, a)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "alerts_alert", fmt.Sprintf("Alert %d", a.ID), v)
}

func (s *Service) alertView(c *web.Ctx, o identity.Org, a Alert) (alertView, error) {
	ctx := c.R.Context()
	v := alertView{Org: o, Alert: a, Reasons: Reasons(), Types: boards.Types(), Now: s.now(),
		CanDismiss: authz.Decide(c.P.Subject, authz.AlertDismiss, o.Resource()).Allow,
		CanWorkItem: authz.Decide(c.P.Subject, authz.AlertWorkItem, o.Resource()).Allow &&
			authz.Decide(c.P.Subject, authz.WorkItemWrite, o.Resource()).Allow}
	if a.WorkItem != 0 {
		exists, err := s.items.Exists(ctx, o.ID, a.WorkItem)
		if err != nil {
			return v, err
		}
		if !exists {
			v.Alert.WorkItem = 0
		}
	}
	if v.CanWorkItem && v.Alert.WorkItem == 0 {
		var err error
		if v.Members, err = s.ids.Members(ctx, o.ID); err != nil {
			return v, err
		}
		if v.Projects, err = s.ids.Projects(ctx, o.ID); err != nil {
			return v, err
		}
	}
	return v, nil
}

// alertForm loads the alert a form posts to, checking a on its org.
func (s *Service) alertForm(c *web.Ctx, a authz.Action) (identity.Org, int64, error) {
	o, err := c.Org(a)
	if err != nil {
		return o, 0, err
	}
	id, err := ParseID(c.R.PathValue("id"))
	if err != nil {
		return o, 0, apperr.E(apperr.NotFound, "no alert %q", clip(c.R.PathValue("id")))
	}
	return o, id, nil
}

func (s *Service) dismissSubmit(c *web.Ctx) error {
	o, id, err := s.alertForm(c, authz.AlertDismiss)
	if err != nil {
		return err
	}
	comment := c.R.PostFormValue("comment")
	a, err := s.Dismiss(c.R.Context(), o, id, Reason(c.R.PostFormValue("reason")), comment)
	if err != nil {
		cur, gerr := s.Get(c.R.Context(), o, id)
		if gerr != nil {
			return gerr
		}
		v, verr := s.alertView(c, o, cur)
		if verr != nil {
			return verr
		}
		v.Comment = comment
		return c.RenderForm("alerts_alert", fmt.Sprintf("Alert %d", id), v, err)
	}
	return c.Redirect(Path(o.Name, id), fmt.Sprintf("Alert %d dismissed as %s.", id, strings.ToLower(a.DismissedReason.Label())))
}

func (s *Service) reopenSubmit(c *web.Ctx) error {
	o, id, err := s.alertForm(c, authz.AlertDismiss)
	if err != nil {
		return err
	}
	if _, err := s.Reopen(c.R.Context(), o, id); err != nil {
		return err
	}
	return c.Redirect(Path(o.Name, id), fmt.Sprintf("Alert %d reopened.", id))
}

func (s *Service) workItemSubmit(c *web.Ctx) error {
	o, id, err := s.alertForm(c, authz.AlertWorkItem)
	if err != nil {
		return err
	}
	if err := c.Check(authz.WorkItemWrite, o.Resource()); err != nil {
		return err
	}
	in := NewWorkItem{Assignee: c.R.PostFormValue("assignee"), Project: c.R.PostFormValue("project")}
	if t := c.R.PostFormValue("type"); t != "" {
		if in.Type, err = boards.ParseType(t); err != nil {
			return err
		}
	}
	_, w, err := s.CreateWorkItem(c.R.Context(), o, id, in)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Internal || k == apperr.Unavailable {
			return err
		}
		cur, gerr := s.Get(c.R.Context(), o, id)
		if gerr != nil {
			return gerr
		}
		v, verr := s.alertView(c, o, cur)
		if verr != nil {
			return verr
		}
		return c.RenderForm("alerts_alert", fmt.Sprintf("Alert %d", id), v, err)
	}
	return c.Redirect(boards.ItemPath(o.Name, w.Number), fmt.Sprintf("%s created from alert %d.", w.Ref(), id))
}
