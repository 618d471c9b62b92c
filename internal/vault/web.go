package vault

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are the vault's page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// Nav is the vault's navigation entry, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Vault", Path: "/vault", Order: 300}}
}

// Pages are the vault's browser pages, for web.Deps.Pages. A value shows
// only on the page answering an explicit Reveal (a POST with the CSRF
// token), which is audited like any read and needs a vault policy.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/vault", Handler: s.homePage},
		{Method: "GET", Path: "/vault/scope/{scope...}", Handler: s.scopePage},
		{Method: "POST", Path: "/vault/set/{scope...}", Handler: s.setSubmit},
		{Method: "GET", Path: "/vault/secret/{ref...}", Handler: s.secretPage},
		{Method: "POST", Path: "/vault/reveal/{ref...}", Handler: s.revealSubmit},
		{Method: "POST", Path: "/vault/rotate/{ref...}", Handler: s.rotateSubmit},
		{Method: "POST", Path: "/vault/rollback/{ref...}", Handler: s.rollbackSubmit},
	}
}

type orgView struct {
	Name     string
	Projects []string
}

func (s *Service) homePage(c *web.Ctx) error {
	ctx := c.R.Context()
	orgs, err := c.IDs().OrgsOf(ctx, c.P.User.ID)
	if err != nil {
		return err
	}
	var out []orgView
	for _, o := range orgs {
		if c.Check(authz.VaultSecretList, o.Resource()) != nil {
			continue
		}
		ov := orgView{Name: o.Name}
		ps, err := c.IDs().Projects(ctx, o.ID)
		if err != nil {
			return err
		}
		for _, p := range ps {
			ov.Projects = append(ov.Projects, p.Name)
		}
		out = append(out, ov)
	}
	return c.Render(http.StatusOK, "vault_home", "Vault", map[string]any{"Orgs": out})
}

// authorise checks action a on scope sc for the page's user.
func (s *Service) authorise(c *web.Ctx, sc Scope, a authz.Action) error {
	p, err := s.resolve(c.R.Context(), sc)
	if err != nil {
		return err
	}
	res := p.org.Resource()
	if p.project.ID != 0 {
		res = p.project.Resource(p.org)
	}
	return c.Check(a, res)
}

type scopeView struct {
	Scope     string
	Parent    string
	Secrets   []SecretJSON
	Children  []string
	ChildKind string
	Leaks     []LeakJSON
	CanWrite  bool
}

func (s *Service) scopeData(c *web.Ctx, sc Scope) (scopeView, error) {
	ctx := c.R.Context()
	if err := s.authorise(c, sc, authz.VaultSecretList); err != nil {
		return scopeView{}, err
	}
	v := scopeView{Scope: sc.String(), CanWrite: s.authorise(c, sc, authz.VaultSecretWrite) == nil}
	if i := strings.LastIndexByte(v.Scope, '/'); i > 0 {
		v.Parent = v.Scope[:i]
	}
	secs, err := s.List(ctx, sc)
	if err != nil {
		return v, err
	}
	now := s.now()
	for _, sec := range secs {
		v.Secrets = append(v.Secrets, SecretOf(sec, now))
	}
	switch {
	case sc.Project == "":
		o, err := c.IDs().Org(ctx, sc.Org)
		if err != nil {
			return v, err
		}
		ps, err := c.IDs().Projects(ctx, o.ID)
		if err != nil {
			return v, err
		}
		for _, p := range ps {
			v.Children = append(v.Children, p.Name)
		}
		v.ChildKind = "Projects"
		manage := c.Check(authz.VaultPolicyWrite, o.Resource()) == nil
		leaks, err := s.LeaksFor(ctx, sc.Org, true, Reader{UserID: c.P.User.ID, Username: c.P.User.Username, Via: "ui"}, manage)
		if err != nil {
			return v, err
		}
		for _, l := range leaks {
			v.Leaks = append(v.Leaks, LeakOf(l))
		}
	case sc.Env == "":
		if v.Children, err = s.Environments(ctx, sc); err != nil {
			return v, err
		}
		v.ChildKind = "Environments"
	}
	return v, nil
}

func (s *Service) scopePage(c *web.Ctx) error {
	sc, err := ParseScope(c.R.PathValue("scope"))
	if err != nil {
		return err
	}
	v, err := s.scopeData(c, sc)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "vault_scope", sc.String()+": secrets", v)
}

func (s *Service) setSubmit(c *web.Ctx) error {
	sc, err := ParseScope(c.R.PathValue("scope"))
	if err != nil {
		return err
	}
	if err := s.authorise(c, sc, authz.VaultSecretWrite); err != nil {
		return err
	}
	f := c.R.PostForm
	ref := Ref{Scope: sc, Name: strings.TrimSpace(f.Get("name"))}
	w := Write{Value: NewValue([]byte(f.Get("value")))}
	if d := strings.TrimSpace(f.Get("description")); d != "" {
		w.Description = &d
	}
	_, v, err := s.Set(c.R.Context(), ref, w)
	if err != nil {
		data, derr := s.scopeData(c, sc)
		if derr != nil {
			return derr
		}
		return c.RenderForm("vault_scope", sc.String()+": secrets", data, err)
	}
	return c.Redirect("/vault/secret/"+ref.String(), "Saved version "+strconv.Itoa(v.Version)+" of "+ref.Name+".")
}

type secretView struct {
	Secret          Secret
	Versions        []Version
	CanWrite        bool
	Value           string
	RevealedVersion int
}

func (s *Service) secretData(c *web.Ctx) (secretView, Ref, error) {
	ref, err := ParseRef(c.R.PathValue("ref"))
	if err != nil {
		return secretView{}, ref, err
	}
	if err := s.authorise(c, ref.Scope, authz.VaultSecretList); err != nil {
		return secretView{}, ref, err
	}
	sec, vs, err := s.History(c.R.Context(), ref)
	if err != nil {
		return secretView{}, ref, err
	}
	return secretView{Secret: sec, Versions: vs, CanWrite: s.authorise(c, ref.Scope, authz.VaultSecretWrite) == nil}, ref, nil
}

func (s *Service) secretPage(c *web.Ctx) error {
	v, ref, err := s.secretData(c)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "vault_secret", ref.String(), v)
}

func (s *Service) revealSubmit(c *web.Ctx) error {
	v, ref, err := s.secretData(c)
	if err != nil {
		return err
	}
	if err := s.authorise(c, ref.Scope, authz.VaultSecretRead); err != nil {
		return err
	}
	version, err := strconv.Atoi(c.R.PostForm.Get("version"))
	if err != nil || version < 0 {
		return apperr.InvalidField("version", "version must be a number")
	}
	val, _, ver, err := s.Read(c.R.Context(), Reader{UserID: c.P.User.ID, Username: c.P.User.Username, Via: "ui"}, ref, version)
	if err != nil {
		return err
	}
	v.Value, v.RevealedVersion = string(val.Reveal()), ver.Version
	return c.Render(http.StatusOK, "vault_secret", ref.String(), v)
}

func (s *Service) rotateSubmit(c *web.Ctx) error {
	ref, err := ParseRef(c.R.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := s.authorise(c, ref.Scope, authz.VaultSecretWrite); err != nil {
		return err
	}
	var val *Value
	if raw := c.R.PostForm.Get("value"); raw != "" {
		v := NewValue([]byte(raw))
		val = &v
	}
	_, ver, err := s.Rotate(c.R.Context(), ref, val)
	if err != nil {
		if apperr.KindOf(err) == apperr.Invalid {
			return c.Redirect("/vault/secret/"+ref.String(), apperr.Message(err))
		}
		return err
	}
	return c.Redirect("/vault/secret/"+ref.String(), "Rotated: version "+strconv.Itoa(ver.Version)+" is current.")
}

func (s *Service) rollbackSubmit(c *web.Ctx) error {
	ref, err := ParseRef(c.R.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := s.authorise(c, ref.Scope, authz.VaultSecretWrite); err != nil {
		return err
	}
	version, err := strconv.Atoi(c.R.PostForm.Get("version"))
	if err != nil {
		return apperr.InvalidField("version", "version must be a number")
	}
	_, ver, err := s.Rollback(c.R.Context(), ref, version)
	if err != nil {
		return err
	}
	return c.Redirect("/vault/secret/"+ref.String(), "Rolled back: version "+strconv.Itoa(ver.Version)+" holds version "+strconv.Itoa(version)+"'s value.")
}
