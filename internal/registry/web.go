package registry

import (
	"embed"
	"encoding/json"
	"io/fs"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are the registry's page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// Pages are the registry's browser pages, for web.Deps.Pages.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/registry", Handler: s.pageList},
		{Method: "GET", Path: "/registry/{org}/{repo...}", Handler: s.pageRepo},
	}
}

// Nav is the registry's navigation entry, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Registry", Path: "/registry", Order: 300}}
}

type orgRepos struct {
	Org   string
	Repos []Repository
}

func (s *Service) pageList(c *web.Ctx) error {
	ctx := c.R.Context()
	var out []orgRepos
	for id, role := range c.P.Subject.OrgRoles {
		if role == authz.NoRole || c.Check(authz.RegistryRead, authz.Resource{OrgID: id}) != nil {
			continue
		}
		o, err := c.IDs().OrgByID(ctx, id)
		if err != nil {
			continue
		}
		rs, err := s.Repositories(ctx, id)
		if err != nil {
			return err
		}
		out = append(out, orgRepos{Org: o.Name, Repos: rs})
	}
	return c.Render(200, "registry", "Registry", map[string]any{"Orgs": out})
}

type imageView struct {
	ManifestJSON
	Signed     bool
	Signatures int
	Findings   []report.Finding
}

func (s *Service) pageRepo(c *web.Ctx) error {
	ctx := c.R.Context()
	o, err := c.IDs().Org(ctx, c.R.PathValue("org"))
	if err != nil {
		return err
	}
	if err := c.Check(authz.RegistryRead, o.Resource()); err != nil {
		return err
	}
	path := c.R.PathValue("repo")
	r, err := s.Repository(ctx, o.Name+"/"+path)
	if err != nil {
		return err
	}
	if r.OrgID != o.ID {
		return apperr.E(apperr.NotFound, "repository not found")
	}
	d, err := s.Detail(ctx, r)
	if err != nil {
		return err
	}
	var images, artifacts []ManifestJSON
	for _, m := range d.Manifests {
		if m.Image {
			images = append(images, m)
		} else {
			artifacts = append(artifacts, m)
		}
	}
	var views []imageView
	for _, m := range images {
		v := imageView{ManifestJSON: m}
		if ver, err := s.VerifyImage(ctx, r.Name, m.Digest); err == nil {
			v.Signed, v.Signatures = ver.Signed, ver.Signatures
		}
		if m.Summary != nil {
			if b, err := s.Report(ctx, r, m.Digest); err == nil {
				var rep report.Report
				if json.Unmarshal(b, &rep) == nil {
					v.Findings = rep.Findings[:min(len(rep.Findings), 20)]
				}
			}
		}
		views = append(views, v)
	}
	return c.Render(200, "registry_repo", r.Name, map[string]any{"Repo": r, "Tags": d.Tags, "Images": views,
		"Artifacts": artifacts, "Org": o.Name, "Path": strings.ReplaceAll(path, "/", "%2F")})
}
