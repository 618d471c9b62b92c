package pipeline

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/pipeline.js static/pipeline.css
var staticFS embed.FS

// Templates are the pipeline pages' templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: embedded
	return sub
}

// Nav is the pipeline navigation entry, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Pipelines", Path: "/pipelines", Order: 30}}
}

// Pages are the pipeline browser pages, for web.Deps.Pages: the recent
// runs of every repository the user may read, a repository's runs, and a
// run with its job graph and live logs. The script and style are served
// from /pipeline/static/ (same origin: the strict CSP allows them).
func (s *Service) Pages() []web.Page {
	const repo = "/orgs/{org}/repos/{repo}/pipelines"
	return []web.Page{
		{Method: "GET", Path: "/pipeline/static/pipeline.js", Anonymous: true, Handler: s.staticPage("static/pipeline.js", "text/javascript; charset=utf-8")},
		{Method: "GET", Path: "/pipeline/static/pipeline.css", Anonymous: true, Handler: s.staticPage("static/pipeline.css", "text/css; charset=utf-8")},
		{Method: "GET", Path: "/pipelines", Handler: s.allRunsPage},
		{Method: "GET", Path: repo, Handler: s.page(authz.PipelineRead, s.runsPage)},
		{Method: "POST", Path: repo, Handler: s.page(authz.PipelineRun, s.startSubmit)},
		{Method: "GET", Path: repo + "/{number}", Handler: s.page(authz.PipelineRead, s.runPage)},
		{Method: "POST", Path: repo + "/{number}/cancel", Handler: s.page(authz.PipelineRun, s.cancelSubmit)},
		{Method: "POST", Path: repo + "/{number}/rerun", Handler: s.page(authz.PipelineRun, s.rerunSubmit)},
	}
}

func runPagePath(repo scm.Repo, n int64) string {
	return "/orgs/" + repo.Org + "/repos/" + repo.Name + "/pipelines/" + strconv.FormatInt(n, 10)
}

func (s *Service) staticPage(name, ctype string) func(c *web.Ctx) error {
	return func(c *web.Ctx) error {
		data, err := staticFS.ReadFile(name)
		if err != nil {
			return err
		}
		c.W.Header().Set("Content-Type", ctype)
		c.W.Header().Set("Cache-Control", "public, max-age=3600")
		_, err = c.W.Write(data)
		return err
	}
}

func (s *Service) page(a authz.Action, h func(c *web.Ctx, r scm.Repo) error) func(c *web.Ctx) error {
	return func(c *web.Ctx) error {
		r, err := s.d.Repos.Repo(c.R.Context(), c.R.PathValue("org"), c.R.PathValue("repo"))
		if err != nil {
			return err
		}
		if err := s.d.Repos.Authorize(c.P.Subject, a, r); err != nil {
			return err
		}
		return h(c, r)
	}
}

type runRow struct {
	RunJSON
	Page string // the run's page
}

type runsView struct {
	Repo   scm.Repo
	Base   string // /orgs/ORG/repos/NAME
	Runs   []runRow
	CanRun bool
	All    bool
}

func (s *Service) allRunsPage(c *web.Ctx) error {
	ctx := c.R.Context()
	rows, err := s.d.DB.Query(ctx, "SELECT "+runCols+" FROM pipeline_runs ORDER BY id DESC LIMIT 500")
	if err != nil {
		return err
	}
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return err
		}
		runs = append(runs, r)
	}
	rows.Close()
	v := runsView{All: true}
	repos := map[int64]*scm.Repo{}
	for _, r := range runs {
		repo, seen := repos[r.RepoID]
		if !seen {
			if rp, err := s.d.Repos.RepoByID(ctx, r.RepoID); err == nil && s.d.Repos.Authorize(c.P.Subject, authz.PipelineRead, rp) == nil {
				repo = &rp
			}
			repos[r.RepoID] = repo
		}
		if repo != nil && len(v.Runs) < 50 {
			v.Runs = append(v.Runs, runRow{s.runJSON(*repo, r, nil), runPagePath(*repo, r.Number)})
		}
	}
	return c.Render(http.StatusOK, "pipeline_runs", "Pipelines", v)
}

func (s *Service) runsPage(c *web.Ctx, repo scm.Repo) error {
	runs, err := s.runs.runs(c.R.Context(), repo.ID, 50)
	if err != nil {
		return err
	}
	v := runsView{Repo: repo, Base: "/orgs/" + repo.Org + "/repos/" + repo.Name, CanRun: s.d.Repos.Authorize(c.P.Subject, authz.PipelineRun, repo) == nil}
	for _, r := range runs {
		v.Runs = append(v.Runs, runRow{s.runJSON(repo, r, nil), runPagePath(repo, r.Number)})
	}
	return c.Render(http.StatusOK, "pipeline_runs", repo.FullName()+": pipelines", v)
}

func (s *Service) startSubmit(c *web.Ctx, repo scm.Repo) error {
	base := "/orgs/" + repo.Org + "/repos/" + repo.Name + "/pipelines"
	r, err := s.StartManual(c.R.Context(), repo, strings.TrimSpace(c.R.PostFormValue("ref")))
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Internal || k == apperr.Unavailable {
			return err
		}
		return c.Redirect(base, "Not started: "+apperr.Message(err))
	}
	return c.Redirect(base+"/"+strconv.FormatInt(r.Number, 10), "Run #"+strconv.FormatInt(r.Number, 10)+" started.")
}

// graphColumn is one level of the job graph: jobs whose longest chain of
// needs has the same length.
type graphColumn struct {
	Jobs []JobJSON
}

type runView struct {
	Repo    scm.Repo
	Base    string
	Run     RunJSON
	Columns []graphColumn
	CanRun  bool
	Active  bool
	APIBase string
}

func (s *Service) runPage(c *web.Ctx, repo scm.Repo) error {
	n, err := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	if err != nil || n < 1 {
		return apperr.E(apperr.NotFound, "run %q not found", c.R.PathValue("number"))
	}
	r, jobs, err := s.RunByNumber(c.R.Context(), repo, n)
	if err != nil {
		return err
	}
	rj := s.runJSON(repo, r, jobs)
	v := runView{Repo: repo, Base: "/orgs/" + repo.Org + "/repos/" + repo.Name, Run: rj,
		CanRun: s.d.Repos.Authorize(c.P.Subject, authz.PipelineRun, repo) == nil, Active: !finished(r.Status),
		APIBase: "/api/v1/orgs/" + repo.Org + "/repos/" + repo.Name + "/pipelines/runs/" + strconv.FormatInt(r.Number, 10)}
	// Columns by depth in the needs graph (a DAG: validated at parse).
	depth := map[string]int{}
	var level func(j JobJSON) int
	byName := map[string]JobJSON{}
	for _, j := range rj.Jobs {
		byName[j.Name] = j
	}
	level = func(j JobJSON) int {
		if d, ok := depth[j.Name]; ok {
			return d
		}
		depth[j.Name] = 0
		d := 0
		for _, n := range j.Needs {
			if nj, ok := byName[n]; ok {
				d = max(d, level(nj)+1)
			}
		}
		depth[j.Name] = d
		return d
	}
	for _, j := range rj.Jobs {
		d := level(j)
		for len(v.Columns) <= d {
			v.Columns = append(v.Columns, graphColumn{})
		}
		v.Columns[d].Jobs = append(v.Columns[d].Jobs, j)
	}
	return c.Render(http.StatusOK, "pipeline_run", repo.FullName()+" run #"+strconv.FormatInt(r.Number, 10), v)
}

func (s *Service) pathRunWeb(c *web.Ctx, repo scm.Repo) (Run, error) {
	n, err := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	if err != nil || n < 1 {
		return Run{}, apperr.E(apperr.NotFound, "run %q not found", c.R.PathValue("number"))
	}
	return s.runs.runByNumber(c.R.Context(), repo.ID, n)
}

func (s *Service) cancelSubmit(c *web.Ctx, repo scm.Repo) error {
	r, err := s.pathRunWeb(c, repo)
	if err != nil {
		return err
	}
	page := "/orgs/" + repo.Org + "/repos/" + repo.Name + "/pipelines/" + strconv.FormatInt(r.Number, 10)
	if _, err := s.Cancel(c.R.Context(), r); err != nil {
		if apperr.KindOf(err) == apperr.Conflict {
			return c.Redirect(page, apperr.Message(err))
		}
		return err
	}
	return c.Redirect(page, "Run cancelled.")
}

func (s *Service) rerunSubmit(c *web.Ctx, repo scm.Repo) error {
	r, err := s.pathRunWeb(c, repo)
	if err != nil {
		return err
	}
	base := "/orgs/" + repo.Org + "/repos/" + repo.Name + "/pipelines/"
	nr, err := s.Rerun(c.R.Context(), repo, r)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.Conflict || k == apperr.Invalid {
			return c.Redirect(base+strconv.FormatInt(r.Number, 10), "Not re-run: "+apperr.Message(err))
		}
		return err
	}
	return c.Redirect(base+strconv.FormatInt(nr.Number, 10), "Run #"+strconv.FormatInt(nr.Number, 10)+" started.")
}
