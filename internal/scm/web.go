package scm

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are scm's page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: embedded
	return sub
}

// Nav is scm's navigation entry, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Repositories", Path: "/repos", Order: 20}}
}

// Pages are scm's browser pages, for web.Deps.Pages. Repository pages
// are open to anonymous visitors so that public repositories can be
// browsed; each authorises against the repository itself.
func (s *Service) Pages() []web.Page {
	const repo = "/orgs/{org}/repos/{repo}"
	read := func(h func(c *web.Ctx, r Repo) error) func(c *web.Ctx) error { return s.page(authz.RepoRead, h) }
	write := func(h func(c *web.Ctx, r Repo) error) func(c *web.Ctx) error { return s.page(authz.RepoWrite, h) }
	admin := func(h func(c *web.Ctx, r Repo) error) func(c *web.Ctx) error { return s.page(authz.RepoAdmin, h) }
	return []web.Page{
		{Method: "GET", Path: "/scm/static/scm.css", Anonymous: true, Handler: s.cssPage},
		{Method: "GET", Path: "/repos", Handler: s.allReposPage},
		{Method: "GET", Path: "/orgs/{org}/repos", Handler: s.orgReposPage},
		{Method: "POST", Path: "/orgs/{org}/repos", Handler: s.createRepoSubmit},
		{Method: "GET", Path: repo, Anonymous: true, Handler: read(s.codePage)},
		{Method: "GET", Path: repo + "/blob", Anonymous: true, Handler: read(s.blobPage)},
		{Method: "GET", Path: repo + "/commits", Anonymous: true, Handler: read(s.commitsPage)},
		{Method: "GET", Path: repo + "/pulls", Anonymous: true, Handler: read(s.pullsPage)},
		{Method: "GET", Path: repo + "/pulls/new", Handler: write(s.newPullPage)},
		{Method: "POST", Path: repo + "/pulls", Handler: write(s.openPullSubmit)},
		{Method: "GET", Path: repo + "/pulls/{number}", Anonymous: true, Handler: read(s.pullPage)},
		{Method: "POST", Path: repo + "/pulls/{number}/comments", Handler: write(s.commentSubmit)},
		{Method: "POST", Path: repo + "/pulls/{number}/reviews", Handler: write(s.reviewSubmit)},
		{Method: "POST", Path: repo + "/pulls/{number}/merge", Handler: write(s.mergeSubmit)},
		{Method: "POST", Path: repo + "/pulls/{number}/state", Handler: write(s.pullStateSubmit)},
		{Method: "GET", Path: repo + "/settings", Handler: admin(s.settingsPage)},
		{Method: "POST", Path: repo + "/settings", Handler: admin(s.settingsSubmit)},
		{Method: "POST", Path: repo + "/settings/protections", Handler: admin(s.protectionSubmit)},
		{Method: "POST", Path: repo + "/settings/protections/delete", Handler: admin(s.protectionDelete)},
		{Method: "POST", Path: repo + "/settings/hooks", Handler: admin(s.hookSubmit)},
		{Method: "POST", Path: repo + "/settings/hooks/{id}/delete", Handler: admin(s.hookDelete)},
		{Method: "POST", Path: repo + "/settings/hooks/{id}/deliveries/{delivery}/redeliver", Handler: admin(s.hookRedeliver)},
		{Method: "GET", Path: "/account/ssh-keys", Handler: s.sshKeysPage},
		{Method: "POST", Path: "/account/ssh-keys", Handler: s.sshKeySubmit},
		{Method: "POST", Path: "/account/ssh-keys/{id}/remove", Handler: s.sshKeyRemove},
	}
}

func (s *Service) cssPage(c *web.Ctx) error {
	c.W.Header().Set("Content-Type", "text/css; charset=utf-8")
	c.W.Header().Set("Cache-Control", "public, max-age=3600")
	_, err := fmt.Fprint(c.W, scmCSS, StyleCSS())
	return err
}

// page resolves {org}/{repo} and authorises a before h runs.
func (s *Service) page(a authz.Action, h func(c *web.Ctx, r Repo) error) func(c *web.Ctx) error {
	return func(c *web.Ctx) error {
		r, err := s.Repo(c.R.Context(), c.R.PathValue("org"), c.R.PathValue("repo"))
		if err != nil {
			if !c.P.Subject.Authenticated() {
				return apperr.E(apperr.Unauthenticated, "sign in first")
			}
			return err
		}
		if err := s.Authorize(c.P.Subject, a, r); err != nil {
			return err
		}
		return h(c, r)
	}
}

// repoView is what every repository page shows at its top.
type repoView struct {
	Repo      Repo
	Base      string // /orgs/ORG/repos/NAME
	Tab       string
	CloneURL  string
	SSHURL    string
	CanWrite  bool
	CanAdmin  bool
	OpenPulls int
}

func (s *Service) repoView(c *web.Ctx, r Repo, tab string) repoView {
	h, sh := s.CloneURLs(r)
	v := repoView{Repo: r, Base: "/orgs/" + r.Org + "/repos/" + r.Name, Tab: tab, CloneURL: h, SSHURL: sh,
		CanWrite: s.Authorize(c.P.Subject, authz.RepoWrite, r) == nil, CanAdmin: s.Authorize(c.P.Subject, authz.RepoAdmin, r) == nil}
	if prs, err := s.Pulls(c.R.Context(), r, PullOpen, 500); err == nil {
		v.OpenPulls = len(prs)
	}
	return v
}

type repoListView struct {
	Org       *identity.Org
	Repos     []RepoJSON
	CanCreate bool
	Projects  []identity.Project
	Form      CreateRepoRequest
}

func (s *Service) allReposPage(c *web.Ctx) error {
	ctx := c.R.Context()
	orgs, err := c.IDs().OrgsOf(ctx, c.P.User.ID)
	if c.P.Subject.SiteAdmin {
		orgs, err = c.IDs().ListOrgs(ctx)
	}
	if err != nil {
		return err
	}
	var v repoListView
	for _, o := range orgs {
		rs, err := s.Repos(ctx, o)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if s.Authorize(c.P.Subject, authz.RepoRead, r) == nil {
				v.Repos = append(v.Repos, s.RepoJSONOf(r, ""))
			}
		}
	}
	return c.Render(http.StatusOK, "repos", "Repositories", v)
}

func (s *Service) orgRepoList(c *web.Ctx, o identity.Org, form CreateRepoRequest) (repoListView, error) {
	rs, err := s.Repos(c.R.Context(), o)
	if err != nil {
		return repoListView{}, err
	}
	v := repoListView{Org: &o, Form: form}
	for _, r := range rs {
		if s.Authorize(c.P.Subject, authz.RepoRead, r) == nil {
			v.Repos = append(v.Repos, s.RepoJSONOf(r, ""))
		}
	}
	v.CanCreate = authz.Check(c.P.Subject, authz.RepoCreate, o.Resource()) == nil
	v.Projects, _ = c.IDs().Projects(c.R.Context(), o.ID)
	return v, nil
}

func (s *Service) orgReposPage(c *web.Ctx) error {
	o, err := c.Org(authz.OrgRead)
	if err != nil {
		return err
	}
	v, err := s.orgRepoList(c, o, CreateRepoRequest{DefaultBranch: "main"})
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "repos", o.Name+": repositories", v)
}

func (s *Service) createRepoSubmit(c *web.Ctx) error {
	ctx := c.R.Context()
	o, err := c.IDs().Org(ctx, c.R.PathValue("org"))
	if err != nil {
		return err
	}
	f := c.R.PostForm
	req := CreateRepoRequest{Name: strings.TrimSpace(f.Get("name")), Description: f.Get("description"), Project: f.Get("project"),
		DefaultBranch: f.Get("default_branch"), Public: f.Get("public") == "on"}
	res := o.Resource()
	if req.Project != "" {
		p, err := c.IDs().Project(ctx, o.ID, req.Project)
		if err != nil {
			return err
		}
		res = p.Resource(o)
	}
	if err := c.Check(authz.RepoCreate, res); err != nil {
		return err
	}
	r, err := s.CreateRepo(ctx, o, NewRepo{Name: req.Name, Description: req.Description, Project: req.Project,
		DefaultBranch: req.DefaultBranch, Public: req.Public})
	if err != nil {
		v, verr := s.orgRepoList(c, o, req)
		if verr != nil {
			return verr
		}
		return c.RenderForm("repos", o.Name+": repositories", v, err)
	}
	return c.Redirect(s.repoView(c, r, "").Base, "Repository "+r.FullName()+" created.")
}

// Crumb is one part of a path shown as links.
type Crumb struct {
	Name, Path string
}

func crumbs(path string) []Crumb {
	var out []Crumb
	acc := ""
	for part := range strings.SplitSeq(path, "/") {
		if part == "" {
			continue
		}
		if acc != "" {
			acc += "/"
		}
		acc += part
		out = append(out, Crumb{Name: part, Path: acc})
	}
	return out
}

type codeView struct {
	repoView
	Ref      string
	Path     string
	Crumbs   []Crumb
	Entries  []TreeEntry
	Commit   string
	Empty    bool
	Branches []Branch
	Readme   []template.HTML
}

func (s *Service) codePage(c *web.Ctx, r Repo) error {
	ctx := c.R.Context()
	q := c.R.URL.Query()
	v := codeView{repoView: s.repoView(c, r, "code"), Ref: q.Get("ref"), Path: q.Get("path")}
	if v.Ref == "" {
		v.Ref = r.DefaultBranch
	}
	empty, err := s.Empty(ctx, r)
	if err != nil {
		return err
	}
	if empty {
		v.Empty = true
		return c.Render(http.StatusOK, "repo_code", r.FullName(), v)
	}
	if v.Branches, err = s.Branches(ctx, r); err != nil {
		return err
	}
	if v.Entries, v.Commit, err = s.Tree(ctx, r, v.Ref, v.Path); err != nil {
		return err
	}
	v.Path = strings.Trim(v.Path, "/")
	v.Crumbs = crumbs(v.Path)
	for _, e := range v.Entries {
		if e.Type == "blob" && strings.EqualFold(e.Name, "README.md") && e.Size < 64<<10 {
			if data, _, _, err := s.Blob(ctx, r, v.Commit, e.Path); err == nil {
				v.Readme = highlightLines(e.Name, strings.Split(strings.TrimRight(string(data), "\n"), "\n"))
			}
		}
	}
	return c.Render(http.StatusOK, "repo_code", r.FullName(), v)
}

// codeLine is one highlighted line of a file.
type codeLine struct {
	N    int
	HTML template.HTML
}

type blobView struct {
	repoView
	Ref       string
	Path      string
	Crumbs    []Crumb
	Lines     []codeLine
	Binary    bool
	Truncated bool
	Size      int
}

func (s *Service) blobPage(c *web.Ctx, r Repo) error {
	q := c.R.URL.Query()
	v := blobView{repoView: s.repoView(c, r, "code"), Ref: q.Get("ref"), Path: strings.Trim(q.Get("path"), "/")}
	if v.Ref == "" {
		v.Ref = r.DefaultBranch
	}
	data, _, truncated, err := s.Blob(c.R.Context(), r, v.Ref, v.Path)
	if err != nil {
		return err
	}
	v.Crumbs, v.Truncated, v.Size = crumbs(v.Path), truncated, len(data)
	switch {
	case truncated:
	case isBinary(data):
		v.Binary = true
	default:
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		for i, h := range highlightLines(v.Path, lines) {
			v.Lines = append(v.Lines, codeLine{N: i + 1, HTML: h})
		}
	}
	return c.Render(http.StatusOK, "repo_blob", v.Path+" · "+r.FullName(), v)
}

func isBinary(b []byte) bool {
	n := min(len(b), 8000)
	return strings.IndexByte(string(b[:n]), 0) >= 0
}

type commitsView struct {
	repoView
	Ref     string
	Commits []Commit
}

func (s *Service) commitsPage(c *web.Ctx, r Repo) error {
	v := commitsView{repoView: s.repoView(c, r, "commits"), Ref: c.R.URL.Query().Get("ref")}
	if v.Ref == "" {
		v.Ref = r.DefaultBranch
	}
	empty, err := s.Empty(c.R.Context(), r)
	if err != nil {
		return err
	}
	if !empty {
		if v.Commits, err = s.Log(c.R.Context(), r, v.Ref, 100); err != nil {
			return err
		}
	}
	return c.Render(http.StatusOK, "repo_commits", "Commits · "+r.FullName(), v)
}

type pullsView struct {
	repoView
	State string
	Pulls []PullRequest
}

func (s *Service) pullsPage(c *web.Ctx, r Repo) error {
	state := c.R.URL.Query().Get("state")
	if state == "" {
		state = PullOpen
	}
	if state == "all" {
		state = ""
	}
	prs, err := s.Pulls(c.R.Context(), r, state, 200)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "pulls", "Pull requests · "+r.FullName(), pullsView{repoView: s.repoView(c, r, "pulls"), State: state, Pulls: prs})
}

type newPullView struct {
	repoView
	Branches []Branch
	Form     CreatePullRequest
}

func (s *Service) newPullData(c *web.Ctx, r Repo, form CreatePullRequest) (newPullView, error) {
	bs, err := s.Branches(c.R.Context(), r)
	if form.Base == "" {
		form.Base = r.DefaultBranch
	}
	return newPullView{repoView: s.repoView(c, r, "pulls"), Branches: bs, Form: form}, err
}

func (s *Service) newPullPage(c *web.Ctx, r Repo) error {
	head := c.R.URL.Query().Get("head")
	v, err := s.newPullData(c, r, CreatePullRequest{Head: head, Title: head})
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "pull_new", "New pull request · "+r.FullName(), v)
}

func (s *Service) openPullSubmit(c *web.Ctx, r Repo) error {
	f := c.R.PostForm
	req := CreatePullRequest{Title: f.Get("title"), Body: f.Get("body"), Head: f.Get("head"), Base: f.Get("base")}
	pr, err := s.OpenPull(c.R.Context(), r, NewPull(req))
	if err != nil {
		v, verr := s.newPullData(c, r, req)
		if verr != nil {
			return verr
		}
		return c.RenderForm("pull_new", "New pull request · "+r.FullName(), v, err)
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/pulls/"+strconv.FormatInt(pr.Number, 10), "")
}

// diffRow is one line of a rendered diff.
type diffRow struct {
	Kind     string // add, del, ctx, hunk
	Old, New int
	HTML     template.HTML
	Anchor   string // id of the line, for comments
	Comments []Comment
	Form     bool // the comment form opens under this line
	Side     string
	Line     int
}

type diffFile struct {
	FileDiff
	Index int
	Rows  []diffRow
}

type timelineItem struct {
	At      time.Time
	Comment *Comment
	Review  *Review
}

type pullView struct {
	repoView
	Pull      PullRequest
	Status    MergeStatus
	Files     []diffFile
	Truncated bool
	Timeline  []timelineItem
	Findings  []report.Finding
	Added     int
	Deleted   int
	IsAuthor  bool
}

func (s *Service) pullOfPage(c *web.Ctx, r Repo) (PullRequest, error) {
	n, err := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	if err != nil || n <= 0 {
		return PullRequest{}, apperr.E(apperr.NotFound, "no such pull request")
	}
	return s.Pull(c.R.Context(), r, n)
}

func (s *Service) pullPage(c *web.Ctx, r Repo) error {
	pr, err := s.pullOfPage(c, r)
	if err != nil {
		return err
	}
	v, err := s.pullData(c, r, pr)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "pull", pr.Title+" · #"+strconv.FormatInt(pr.Number, 10), v)
}

func (s *Service) pullData(c *web.Ctx, r Repo, pr PullRequest) (pullView, error) {
	ctx := c.R.Context()
	v := pullView{repoView: s.repoView(c, r, "pulls"), Pull: pr, IsAuthor: c.P.User.Username == pr.Author}
	var err error
	if v.Status, err = s.MergeStatus(ctx, r, pr); err != nil {
		return v, err
	}
	comments, err := s.Comments(ctx, pr)
	if err != nil {
		return v, err
	}
	reviews, err := s.Reviews(ctx, pr)
	if err != nil {
		return v, err
	}
	byLine := map[string][]Comment{}
	for i := range comments {
		cm := comments[i]
		if cm.Path != "" {
			byLine[cm.Path+"\x00"+cm.Side+"\x00"+strconv.Itoa(cm.Line)] = append(byLine[cm.Path+"\x00"+cm.Side+"\x00"+strconv.Itoa(cm.Line)], cm)
		}
		v.Timeline = append(v.Timeline, timelineItem{At: cm.CreatedAt, Comment: &comments[i]})
	}
	for i := range reviews {
		v.Timeline = append(v.Timeline, timelineItem{At: reviews[i].CreatedAt, Review: &reviews[i]})
	}
	sortTimeline(v.Timeline)
	d, err := s.PullDiff(ctx, r, pr)
	if err != nil {
		return v, err
	}
	v.Truncated = d.Truncated
	open := c.R.URL.Query().Get("line") // FILE-SIDE-LINE: the line whose comment form is open
	for i, f := range d.Files {
		df := diffFile{FileDiff: f, Index: i}
		v.Added += f.Added
		v.Deleted += f.Deleted
		for _, h := range f.Hunks {
			df.Rows = append(df.Rows, diffRow{Kind: "hunk", HTML: template.HTML(template.HTMLEscapeString(h.Header))})
			texts := make([]string, len(h.Lines))
			for j, l := range h.Lines {
				texts[j] = l.Text
			}
			hl := highlightLines(f.Path(), texts)
			for j, l := range h.Lines {
				row := diffRow{Old: l.Old, New: l.New, HTML: hl[j], Side: "new", Line: l.New}
				switch l.Kind {
				case '+':
					row.Kind = "add"
				case '-':
					row.Kind, row.Side, row.Line = "del", "old", l.Old
				default:
					row.Kind = "ctx"
				}
				row.Anchor = fmt.Sprintf("f%d-%s-%d", i, row.Side, row.Line)
				row.Comments = byLine[f.Path()+"\x00"+row.Side+"\x00"+strconv.Itoa(row.Line)]
				row.Form = open == row.Anchor
				df.Rows = append(df.Rows, row)
			}
		}
		v.Files = append(v.Files, df)
	}
	if v.Findings, err = s.PullFindings(ctx, r, pr); err != nil {
		s.log.WarnContext(ctx, "pull request findings", "repo", r.FullName(), "err", err)
	}
	return v, nil
}

func sortTimeline(t []timelineItem) {
	for i := 1; i < len(t); i++ {
		for j := i; j > 0 && t[j].At.Before(t[j-1].At); j-- {
			t[j], t[j-1] = t[j-1], t[j]
		}
	}
}

func (s *Service) pullBack(c *web.Ctx, r Repo, pr PullRequest, anchor, flash string) error {
	p := s.repoView(c, r, "").Base + "/pulls/" + strconv.FormatInt(pr.Number, 10)
	if flash != "" {
		p += "?flash=" + url.QueryEscape(flash)
	}
	if anchor != "" {
		p += "#" + anchor
	}
	http.Redirect(c.W, c.R, p, http.StatusSeeOther)
	return nil
}

// pullFormError shows the pull request page again with an error.
func (s *Service) pullFormError(c *web.Ctx, r Repo, pr PullRequest, err error) error {
	k := apperr.KindOf(err)
	if k == apperr.Internal || k == apperr.Unavailable {
		return err
	}
	v, verr := s.pullData(c, r, pr)
	if verr != nil {
		return verr
	}
	return c.RenderForm("pull", pr.Title, v, err)
}

func (s *Service) commentSubmit(c *web.Ctx, r Repo) error {
	pr, err := s.pullOfPage(c, r)
	if err != nil {
		return err
	}
	f := c.R.PostForm
	line, _ := strconv.Atoi(f.Get("line"))
	cm, err := s.AddComment(c.R.Context(), r, pr, Comment{Body: f.Get("body"), Path: f.Get("path"), Line: line, Side: f.Get("side")})
	if err != nil {
		return s.pullFormError(c, r, pr, err)
	}
	return s.pullBack(c, r, pr, "comment-"+strconv.FormatInt(cm.ID, 10), "")
}

func (s *Service) reviewSubmit(c *web.Ctx, r Repo) error {
	pr, err := s.pullOfPage(c, r)
	if err != nil {
		return err
	}
	f := c.R.PostForm
	if _, err := s.AddReview(c.R.Context(), r, pr, f.Get("state"), f.Get("body")); err != nil {
		return s.pullFormError(c, r, pr, err)
	}
	return s.pullBack(c, r, pr, "merge-box", "Review submitted.")
}

func (s *Service) mergeSubmit(c *web.Ctx, r Repo) error {
	pr, err := s.pullOfPage(c, r)
	if err != nil {
		return err
	}
	f := c.R.PostForm
	if pr, err = s.Merge(c.R.Context(), r, pr, c.P.User, MergeOptions{Strategy: f.Get("strategy"), Message: f.Get("message")}); err != nil {
		return s.pullFormError(c, r, pr, err)
	}
	return s.pullBack(c, r, pr, "", "Merged into "+pr.Base+" as "+short(pr.MergeCommit)+".")
}

func (s *Service) pullStateSubmit(c *web.Ctx, r Repo) error {
	pr, err := s.pullOfPage(c, r)
	if err != nil {
		return err
	}
	switch c.R.PostForm.Get("state") {
	case PullClosed:
		pr, err = s.ClosePull(c.R.Context(), r, pr)
	case PullOpen:
		pr, err = s.ReopenPull(c.R.Context(), r, pr)
	default:
		err = apperr.E(apperr.Invalid, "state must be open or closed")
	}
	if err != nil {
		return s.pullFormError(c, r, pr, err)
	}
	return s.pullBack(c, r, pr, "", "Pull request "+pr.State+".")
}

type settingsView struct {
	repoView
	Protections []Protection
	Hooks       []hookView
}

type hookView struct {
	Webhook
	Deliveries []Delivery
}

func (s *Service) settingsData(c *web.Ctx, r Repo) (settingsView, error) {
	ctx := c.R.Context()
	v := settingsView{repoView: s.repoView(c, r, "settings")}
	var err error
	if v.Protections, err = s.Protections(ctx, r); err != nil {
		return v, err
	}
	o, err := c.IDs().OrgByID(ctx, r.OrgID)
	if err != nil {
		return v, err
	}
	hs, err := s.Webhooks(ctx, o, &r)
	if err != nil {
		return v, err
	}
	for _, h := range hs {
		ds, err := s.Deliveries(ctx, h, 10)
		if err != nil {
			return v, err
		}
		v.Hooks = append(v.Hooks, hookView{Webhook: h, Deliveries: ds})
	}
	return v, nil
}

func (s *Service) settingsPage(c *web.Ctx, r Repo) error {
	v, err := s.settingsData(c, r)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "repo_settings", "Settings · "+r.FullName(), v)
}

func (s *Service) settingsError(c *web.Ctx, r Repo, err error) error {
	v, verr := s.settingsData(c, r)
	if verr != nil {
		return verr
	}
	return c.RenderForm("repo_settings", "Settings · "+r.FullName(), v, err)
}

func (s *Service) settingsSubmit(c *web.Ctx, r Repo) error {
	f := c.R.PostForm
	desc, branch, public := f.Get("description"), f.Get("default_branch"), f.Get("public") == "on"
	u := RepoUpdate{Description: &desc, Public: &public}
	if branch != r.DefaultBranch {
		u.DefaultBranch = &branch
	}
	if _, err := s.UpdateRepo(c.R.Context(), r, u); err != nil {
		return s.settingsError(c, r, err)
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/settings", "Settings saved.")
}

func (s *Service) protectionSubmit(c *web.Ctx, r Repo) error {
	f := c.R.PostForm
	approvals, _ := strconv.Atoi(f.Get("required_approvals"))
	p := Protection{Pattern: strings.TrimSpace(f.Get("pattern")), RequirePR: f.Get("require_pr") == "on",
		RequiredChecks: strings.Split(f.Get("required_checks"), ","), RequiredApprovals: approvals,
		DismissStale: f.Get("dismiss_stale") == "on", AllowForcePush: f.Get("allow_force_push") == "on",
		AllowDeletion: f.Get("allow_deletion") == "on", RequireSigned: f.Get("require_signed") == "on"}
	if _, err := s.SetProtection(c.R.Context(), r, p); err != nil {
		return s.settingsError(c, r, err)
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/settings", "Protection of "+p.Pattern+" saved.")
}

func (s *Service) protectionDelete(c *web.Ctx, r Repo) error {
	if err := s.DeleteProtection(c.R.Context(), r, c.R.PostForm.Get("pattern")); err != nil {
		return s.settingsError(c, r, err)
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/settings", "Protection rule deleted.")
}

func (s *Service) hookSubmit(c *web.Ctx, r Repo) error {
	f := c.R.PostForm
	o, err := c.IDs().OrgByID(c.R.Context(), r.OrgID)
	if err != nil {
		return err
	}
	var evs []string
	for _, e := range []string{HookPush, HookPullRequest} {
		if f.Get("event_"+e) == "on" {
			evs = append(evs, e)
		}
	}
	if _, err := s.CreateWebhook(c.R.Context(), o, &r, NewWebhook{URL: strings.TrimSpace(f.Get("url")), Secret: f.Get("secret"), Events: evs}); err != nil {
		return s.settingsError(c, r, err)
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/settings", "Webhook added.")
}

func (s *Service) hookFromPath(c *web.Ctx, r Repo) (Webhook, error) {
	o, err := c.IDs().OrgByID(c.R.Context(), r.OrgID)
	if err != nil {
		return Webhook{}, err
	}
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil {
		return Webhook{}, apperr.E(apperr.NotFound, "no such webhook")
	}
	return s.Webhook(c.R.Context(), o, &r, id)
}

func (s *Service) hookDelete(c *web.Ctx, r Repo) error {
	h, err := s.hookFromPath(c, r)
	if err != nil {
		return err
	}
	if err := s.DeleteWebhook(c.R.Context(), h); err != nil {
		return err
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/settings", "Webhook deleted.")
}

func (s *Service) hookRedeliver(c *web.Ctx, r Repo) error {
	h, err := s.hookFromPath(c, r)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.R.PathValue("delivery"), 10, 64)
	if err != nil {
		return apperr.E(apperr.NotFound, "no such delivery")
	}
	d, err := s.Delivery(c.R.Context(), h, id)
	if err != nil {
		return err
	}
	if _, err := s.Redeliver(c.R.Context(), h, d); err != nil {
		return err
	}
	return c.Redirect(s.repoView(c, r, "").Base+"/settings", "Delivery queued again.")
}

type keysView struct {
	Keys []SSHKey
	Form SSHKeyRequest
}

func (s *Service) sshKeysPage(c *web.Ctx) error {
	if err := c.Check(authz.SelfRead, authz.Resource{OwnerID: c.P.User.ID}); err != nil {
		return err
	}
	ks, err := s.SSHKeys(c.R.Context(), c.P.User.ID)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "ssh_keys", "SSH keys", keysView{Keys: ks})
}

func (s *Service) sshKeySubmit(c *web.Ctx) error {
	if err := c.Check(authz.SelfWrite, authz.Resource{OwnerID: c.P.User.ID}); err != nil {
		return err
	}
	req := SSHKeyRequest{Name: c.R.PostForm.Get("name"), Key: c.R.PostForm.Get("key")}
	if _, err := s.AddSSHKey(c.R.Context(), c.P.User, req.Name, req.Key); err != nil {
		ks, kerr := s.SSHKeys(c.R.Context(), c.P.User.ID)
		if kerr != nil {
			return kerr
		}
		return c.RenderForm("ssh_keys", "SSH keys", keysView{Keys: ks, Form: req}, err)
	}
	return c.Redirect("/account/ssh-keys", "SSH key added.")
}

func (s *Service) sshKeyRemove(c *web.Ctx) error {
	if err := c.Check(authz.SelfWrite, authz.Resource{OwnerID: c.P.User.ID}); err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil {
		return apperr.E(apperr.NotFound, "no such key")
	}
	if err := s.RemoveSSHKey(c.R.Context(), c.P.User, id); err != nil {
		return err
	}
	return c.Redirect("/account/ssh-keys", "SSH key removed.")
}

// scmCSS styles scm's pages (the layout's stylesheet does the rest).
const scmCSS = `/* scm pages */
.repo-head { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
.repo-head h1 { margin-bottom: .3rem; }
.clone { display: flex; gap: .5rem; flex-wrap: wrap; margin: .3rem 0 1rem; }
.clone code { background: #fff; border: 1px solid var(--line); padding: .2rem .5rem; border-radius: var(--radius); }
table.code, table.diff { font-family: var(--mono); font-size: .85rem; border: 1px solid var(--line); }
table.code td, table.diff td { padding: 0 .5rem; border: 0; white-space: pre-wrap; word-break: break-all; }
td.num { color: var(--muted); text-align: right; user-select: none; width: 1%; white-space: nowrap; }
td.num a { color: var(--muted); }
tr.add { background: #e6ffec; } tr.del { background: #ffebe9; } tr.hunk td { background: #ddf4ff; color: var(--muted); }
tr.comments td { background: #f6f8fa; white-space: normal; font-family: system-ui, sans-serif; padding: .5rem; }
.diff-file { margin-bottom: 1.2rem; }
.diff-file h3 { font-family: var(--mono); font-size: .95rem; margin: .4rem 0; }
.comment { border: 1px solid var(--line); border-radius: var(--radius); background: #fff; padding: .5rem .8rem; margin: .4rem 0; }
.comment .who { font-weight: 600; }
.state-open { color: var(--ok); } .state-merged { color: #6f42c1; } .state-closed { color: var(--danger); }
.blockers li { color: var(--danger); }
textarea { width: 100%; min-height: 5rem; }
`

// Header renders the repository's title, clone URLs and tabs.
func (v repoView) Header() template.HTML {
	e := template.HTMLEscapeString
	var b strings.Builder
	vis := "private"
	if v.Repo.Public {
		vis = "public"
	}
	fmt.Fprintf(&b, `<div class="repo-head"><h1 id="repo-name"><a href="/orgs/%s/repos">%s</a> / <a href="%s">%s</a></h1><span class="badge">%s</span></div>`,
		e(v.Repo.Org), e(v.Repo.Org), e(v.Base), e(v.Repo.Name), vis)
	if v.Repo.Description != "" {
		fmt.Fprintf(&b, `<p class="muted">%s</p>`, e(v.Repo.Description))
	}
	fmt.Fprintf(&b, `<div class="clone"><span class="muted small">Clone</span> <code id="clone-https">%s</code>`, e(v.CloneURL))
	if v.SSHURL != "" {
		fmt.Fprintf(&b, ` <code id="clone-ssh">%s</code>`, e(v.SSHURL))
	}
	b.WriteString(`</div><nav class="tabs">`)
	tab := func(id, label, href string) {
		cls := ""
		if v.Tab == id {
			cls = ` class="active"`
		}
		fmt.Fprintf(&b, `<a id="tab-%s" href="%s"%s>%s</a>`, id, e(href), cls, label)
	}
	tab("code", "Code", v.Base)
	tab("commits", "Commits", v.Base+"/commits")
	tab("pulls", fmt.Sprintf("Pull requests (%d)", v.OpenPulls), v.Base+"/pulls")
	if v.CanAdmin {
		tab("settings", "Settings", v.Base+"/settings")
	}
	b.WriteString(`</nav>`)
	return template.HTML(b.String())
}

// Short abbreviates a commit id.
func (v repoView) Short(id string) string { return short(id) }

// Subject is the first line of a commit message.
func (v repoView) Subject(msg string) string {
	first, _, _ := strings.Cut(msg, "\n")
	return first
}
