package federation

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are federation's page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// stateCookie binds a sign-in in progress to the browser that started it.
const stateCookie = "rampart_idp"

// Pages are federation's browser pages, for web.Deps.Pages.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/login/idp/{org}/{name}", Anonymous: true, Handler: s.startPage},
		{Method: "GET", Path: CallbackPath, Anonymous: true, Handler: s.callbackPage},
		{Method: "GET", Path: "/orgs/{org}/idps", Handler: s.settingsPage},
		{Method: "POST", Path: "/orgs/{org}/idps", Handler: s.createSubmit},
		{Method: "POST", Path: "/orgs/{org}/idps/{name}/delete", Handler: s.deleteSubmit},
	}
}

// LoginSources lists a button per provider for the sign-in page (for
// web.Deps.LoginSources).
func (s *Service) LoginSources(ctx context.Context, next string) []web.LoginSource {
	ps, err := s.All(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "list identity providers", logging.KeyErr, err)
		return nil
	}
	orgs := map[int64]string{}
	var out []web.LoginSource
	for _, p := range ps {
		name, ok := orgs[p.OrgID]
		if !ok {
			o, err := s.ids.OrgByID(ctx, p.OrgID)
			if err != nil {
				continue
			}
			name, orgs[p.OrgID] = o.Name, o.Name
		}
		u := "/login/idp/" + url.PathEscape(name) + "/" + url.PathEscape(p.Name)
		if next != "" && next != "/" {
			u += "?next=" + url.QueryEscape(next)
		}
		out = append(out, web.LoginSource{Label: p.Label + " (" + name + ")", URL: u})
	}
	return out
}

// startPage sends the browser to the upstream provider.
func (s *Service) startPage(c *web.Ctx) error {
	ctx := c.R.Context()
	next := web.SafeNext(c.R.URL.Query().Get("next"))
	org, err := c.IDs().Org(ctx, c.R.PathValue("org"))
	if err != nil {
		return c.LoginFailed(next, err)
	}
	target, binding, err := s.Start(ctx, org, c.R.PathValue("name"), next)
	if err != nil {
		if apperr.Is(err, apperr.Unavailable) {
			s.log.WarnContext(ctx, "identity provider unavailable", "org", org.Name, "idp", c.R.PathValue("name"), logging.KeyErr, err)
		}
		return c.LoginFailed(next, err)
	}
	http.SetCookie(c.W, &http.Cookie{Name: stateCookie, Value: binding, Path: "/login/idp/", MaxAge: int(stateLifetime.Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	// A link, not a form, led here: no form-action applies to the redirect.
	http.Redirect(c.W, c.R, target, http.StatusSeeOther)
	return nil
}

// callbackPage finishes the sign-in the upstream sent the browser back
// from, then continues like a password sign-in.
func (s *Service) callbackPage(c *web.Ctx) error {
	q := c.R.URL.Query()
	cb := Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	if ck, err := c.R.Cookie(stateCookie); err == nil {
		cb.Binding = ck.Value
	}
	http.SetCookie(c.W, &http.Cookie{Name: stateCookie, Path: "/login/idp/", MaxAge: -1, HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode})
	res, err := s.Finish(c.R.Context(), cb)
	if err != nil {
		return c.LoginFailed("/", err)
	}
	return c.FirstFactorDone(res.Login, res.AMR, res.Next, res.Via())
}

// settingsView is the data of the org's identity provider page.
type settingsView struct {
	Org         identity.Org
	Providers   []Provider
	CallbackURL string
	Roles       []string
	Form        NewProvider
}

func (s *Service) settingsData(c *web.Ctx, o identity.Org, form NewProvider) (settingsView, error) {
	ps, err := s.List(c.R.Context(), o.ID)
	if form.Role == "" {
		form.Role = DefaultRole.String()
	}
	return settingsView{Org: o, Providers: ps, CallbackURL: s.callback, Roles: []string{"reader", "developer", "maintainer"}, Form: form}, err
}

func (s *Service) settingsPage(c *web.Ctx) error {
	o, err := c.Org(authz.OrgIdPWrite)
	if err != nil {
		return err
	}
	v, err := s.settingsData(c, o, NewProvider{MatchEmail: false, CreateUsers: true})
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "org_idps", o.Name+": sign-in providers", v)
}

func (s *Service) createSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.OrgIdPWrite)
	if err != nil {
		return err
	}
	f := c.R.PostForm
	np := NewProvider{Name: f.Get("name"), Label: f.Get("label"), Issuer: f.Get("issuer"), ClientID: f.Get("client_id"),
		ClientSecret: f.Get("client_secret"), Scopes: strings.Fields(f.Get("scopes")), UsernameClaim: f.Get("username_claim"),
		MatchEmail: f.Get("match_email") == "on", CreateUsers: f.Get("create_users") == "on", Role: f.Get("role")}
	p, err := s.Create(c.R.Context(), o, np)
	if err != nil {
		np.ClientSecret = "" // never echoed back into the page
		v, verr := s.settingsData(c, o, np)
		if verr != nil {
			return verr
		}
		return c.RenderForm("org_idps", o.Name+": sign-in providers", v, err)
	}
	return c.Redirect("/orgs/"+o.Name+"/idps", "Identity provider "+p.Name+" added. Members can now sign in with "+p.Label+".")
}

func (s *Service) deleteSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.OrgIdPWrite)
	if err != nil {
		return err
	}
	name := c.R.PathValue("name")
	if err := s.Delete(c.R.Context(), o, name); err != nil {
		v, verr := s.settingsData(c, o, NewProvider{CreateUsers: true})
		if verr != nil {
			return verr
		}
		return c.RenderForm("org_idps", o.Name+": sign-in providers", v, err)
	}
	return c.Redirect("/orgs/"+o.Name+"/idps", "Identity provider "+name+" removed.")
}
