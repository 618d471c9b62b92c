package deploy

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are deploy's page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: embedded
	return sub
}

// Nav is deploy's navigation entry, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Deployments", Path: "/deploy", Order: 40}}
}

// Pages are deploy's browser pages, for web.Deps.Pages: the projects
// list, a project's environments board with pending approvals and
// deployment history, and a release with its difference to another.
func (s *Service) Pages() []web.Page {
	const p = "/orgs/{org}/projects/{project}/deploy"
	return []web.Page{
		{Method: "GET", Path: "/deploy", Handler: s.projectsPage},
		{Method: "GET", Path: p, Handler: s.project(authz.DeployRead, s.boardPage)},
		{Method: "GET", Path: p + "/releases/{number}", Handler: s.project(authz.DeployRead, s.releasePage)},
		{Method: "POST", Path: p + "/deployments/{id}/approval", Handler: s.project(authz.DeployApprove, s.approvalSubmit)},
	}
}

// project resolves {org}/{project} and authorises a before h runs.
func (s *Service) project(a authz.Action, h func(c *web.Ctx, sc Scope) error) func(c *web.Ctx) error {
	return func(c *web.Ctx) error {
		ctx := c.R.Context()
		o, err := c.IDs().Org(ctx, c.R.PathValue("org"))
		if err != nil {
			return err
		}
		p, err := c.IDs().Project(ctx, o.ID, c.R.PathValue("project"))
		if err != nil {
			return err
		}
		if err := c.Check(a, p.Resource(o)); err != nil {
			return err
		}
		return h(c, Scope{OrgID: o.ID, ProjectID: p.ID, Org: o.Name, Project: p.Name})
	}
}

type projectRow struct {
	Org, Project string
	Environments []Environment
}

func (s *Service) projectsPage(c *web.Ctx) error {
	ctx := c.R.Context()
	orgs, err := c.IDs().OrgsOf(ctx, c.P.User.ID)
	if c.P.Subject.SiteAdmin {
		orgs, err = c.IDs().ListOrgs(ctx)
	}
	if err != nil {
		return err
	}
	var rows []projectRow
	for _, o := range orgs {
		ps, err := c.IDs().Projects(ctx, o.ID)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if c.Check(authz.DeployRead, p.Resource(o)) != nil {
				continue
			}
			es, err := s.Environments(ctx, Scope{OrgID: o.ID, ProjectID: p.ID, Org: o.Name, Project: p.Name})
			if err != nil {
				return err
			}
			rows = append(rows, projectRow{Org: o.Name, Project: p.Name, Environments: es})
		}
	}
	return c.Render(http.StatusOK, "deploy_projects", "Deployments", rows)
}

// envCard is one environment on the board.
type envCard struct {
	EnvironmentJSON
	// Running says in words which release runs (the fault cases: the
	// old or the new one, never none).
	Running string
	Pending []Deployment
}

type boardView struct {
	Org, Project string
	Envs         []envCard
	Deployments  []Deployment
	Releases     []Release
	CanApprove   bool
}

func (s *Service) boardPage(c *web.Ctx, sc Scope) error {
	ctx := c.R.Context()
	v, err := s.board(ctx, sc)
	if err != nil {
		return err
	}
	o, _ := c.IDs().Org(ctx, sc.Org)
	v.CanApprove = c.Check(authz.DeployApprove, authz.Resource{OrgID: o.ID, ProjectID: sc.ProjectID, RequireMFA: o.RequireMFA}) == nil
	return c.Render(http.StatusOK, "deploy_board", sc.String()+": deployments", v)
}

func (s *Service) board(ctx context.Context, sc Scope) (boardView, error) {
	v := boardView{Org: sc.Org, Project: sc.Project}
	es, err := s.Environments(ctx, sc)
	if err != nil {
		return v, err
	}
	if v.Deployments, err = s.Deployments(ctx, sc, "", 30); err != nil {
		return v, err
	}
	if v.Releases, err = s.Releases(ctx, sc, 30); err != nil {
		return v, err
	}
	for _, e := range es {
		j, err := s.envJSON(ctx, e)
		if err != nil {
			return v, err
		}
		card := envCard{EnvironmentJSON: j, Running: "nothing runs here yet"}
		if j.Current != nil {
			card.Running = "release #" + strconv.FormatInt(j.Current.Number, 10) + " runs"
		}
		for _, d := range v.Deployments {
			if d.EnvironmentID == e.ID && (d.State == StateAwaitingApproval || d.State == StateQueued || d.State == StateRunning) {
				card.Pending = append(card.Pending, d)
			}
		}
		v.Envs = append(v.Envs, card)
	}
	return v, nil
}

type releaseView struct {
	Org, Project string
	Release      Release
	Against      *Release
	Changes      []Change
	Others       []Release
}

func (s *Service) releasePage(c *web.Ctx, sc Scope) error {
	ctx := c.R.Context()
	n, err := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	if err != nil || n < 1 {
		return apperr.E(apperr.NotFound, "no such release")
	}
	r, err := s.Release(ctx, sc, n)
	if err != nil {
		return err
	}
	v := releaseView{Org: sc.Org, Project: sc.Project, Release: r}
	against := n - 1
	if a := c.R.URL.Query().Get("against"); a != "" {
		if against, err = strconv.ParseInt(a, 10, 64); err != nil {
			return apperr.InvalidField("against", "against must be a release number")
		}
	}
	if against > 0 {
		if b, err := s.Release(ctx, sc, against); err == nil {
			v.Against = &b
			v.Changes = Diff(b, r)
		} else if !apperr.Is(err, apperr.NotFound) {
			return err
		}
	}
	if v.Others, err = s.Releases(ctx, sc, 50); err != nil {
		return err
	}
	return c.Render(http.StatusOK, "deploy_release", sc.String()+": release #"+strconv.FormatInt(n, 10), v)
}

func (s *Service) approvalSubmit(c *web.Ctx, sc Scope) error {
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return apperr.E(apperr.NotFound, "no such deployment")
	}
	decision := c.R.PostFormValue("decision")
	if decision != "approve" && decision != "reject" {
		return apperr.InvalidField("decision", "decision must be approve or reject")
	}
	back := "/orgs/" + sc.Org + "/projects/" + sc.Project + "/deploy"
	d, err := s.Approve(c.R.Context(), sc, id, ApproveRequest{Approve: decision == "approve", Comment: c.R.PostFormValue("comment")})
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Forbidden || k == apperr.Conflict || k == apperr.Invalid {
			return c.Redirect(back, apperr.Message(err))
		}
		return err
	}
	return c.Redirect(back, "Deployment "+strconv.FormatInt(d.ID, 10)+" is "+d.State+".")
}
