package oidcop

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are the provider's page templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// Pages are the provider's browser pages, for web.Deps.Pages.
func (p *Provider) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: LoginPath, Anonymous: true, Handler: p.loginPage},
		{Method: "GET", Path: DevicePath, Handler: p.devicePage},
		{Method: "POST", Path: DevicePath, Handler: p.deviceSubmit},
		{Method: "GET", Path: "/admin/oidc/clients", Handler: p.clientsPage},
		{Method: "POST", Path: "/admin/oidc/clients", Handler: p.clientCreate},
		{Method: "POST", Path: "/admin/oidc/clients/{id}/delete", Handler: p.clientDelete},
		{Method: "POST", Path: "/admin/oidc/keys/rotate", Handler: p.keysRotate},
	}
}

// Nav is the provider's navigation entry, for web.Deps.Nav.
func (p *Provider) Nav() []web.NavItem {
	return []web.NavItem{{Label: "OAuth clients", Path: "/admin/oidc/clients", Order: 905,
		Show: func(s authz.Subject) bool { return s.SiteAdmin }}}
}

// loginPage completes an authorization request from the browser session
// (the library sends the browser here, see opClient.LoginURL). Without a
// session, or when the relying party wants a fresh sign-in (prompt=login,
// max_age), it goes through the sign-in form and comes back.
//
// There is no consent step: clients are registered by site administrators,
// so every client is first-party, and the API scopes it can obtain are
// capped at registration.
func (p *Provider) loginPage(c *web.Ctx) error {
	ctx := c.R.Context()
	id := c.R.URL.Query().Get("authRequest")
	ar, err := p.PendingAuthRequest(ctx, id)
	if err != nil {
		return err
	}
	back := LoginPath + "?authRequest=" + url.QueryEscape(ar.ID)
	sess := c.P.Session
	switch {
	case sess == nil && ar.PromptNone():
		return p.authError(c, ar.ID, oidc.ErrLoginRequired())
	case sess == nil:
		return c.Redirect("/login?next="+url.QueryEscape(back), "")
	case ar.NeedsLogin(sess.AuthTime):
		if ar.PromptNone() {
			return p.authError(c, ar.ID, oidc.ErrLoginRequired())
		}
		return c.Redirect("/login?prompt=login&next="+url.QueryEscape(back), "Sign in again to continue to "+ar.ClientName+".")
	}
	if err := p.CompleteAuthRequest(ctx, ar.ID, c.P.User, *sess); err != nil {
		return err
	}
	a, err := p.authRequestByID(ctx, ar.ID)
	if err != nil {
		return err
	}
	target, err := op.BuildAuthResponseCallbackURL(op.ContextWithIssuer(ctx, p.issuer), a, p.op)
	if err != nil {
		return err
	}
	// Browsers apply the sign-in form's CSP form-action 'self' to every
	// redirect that follows its submission, so an HTTP redirect to the
	// client would be blocked right after a sign-in. A page that navigates
	// on its own (meta refresh, plus a link) is not a form submission.
	return c.Render(http.StatusOK, "oidc_continue", "Signing in to "+ar.ClientName, continueView{Client: ar.ClientName, URL: target})
}

// continueView is the page that hands the browser back to the client.
type continueView struct {
	Client string
	URL    string
}

// authError sends the browser back to the relying party with an OAuth
// error.
func (p *Provider) authError(c *web.Ctx, id string, e *oidc.Error) error {
	a, err := p.authRequestByID(c.R.Context(), id)
	if err != nil {
		return err
	}
	if _, err := p.db.Exec(c.R.Context(), "DELETE FROM oidc_auth_requests WHERE id = ?", id); err != nil {
		return err
	}
	op.AuthRequestError(c.W, c.R, a, e, p.op)
	return nil
}

type deviceView struct {
	UserCode string
	Request  *DeviceRequest
	Scopes   []scopeView
	Done     string
}

type scopeView struct {
	Name, Description string
}

// describeScopes explains each scope on the approval page.
func describeScopes(scopes []string) []scopeView {
	desc := map[string]string{
		oidc.ScopeOpenID:        "confirm who you are",
		oidc.ScopeProfile:       "read your user name and display name",
		oidc.ScopeEmail:         "read your e-mail address",
		oidc.ScopeOfflineAccess: "stay signed in until you sign out or revoke it",
	}
	for _, s := range authz.Scopes() {
		desc[string(s.Name)] = s.Description
	}
	out := make([]scopeView, 0, len(scopes))
	for _, s := range scopes {
		out = append(out, scopeView{Name: s, Description: desc[s]})
	}
	return out
}

const deviceTitle = "Connect a device"

// devicePage asks for the code a device shows, or (with ?user_code=)
// shows what the device asks for.
func (p *Provider) devicePage(c *web.Ctx) error {
	code := c.R.URL.Query().Get("user_code")
	if code == "" {
		return c.Render(http.StatusOK, "device", deviceTitle, deviceView{})
	}
	return p.deviceLookup(c, code)
}

func (p *Provider) deviceLookup(c *web.Ctx, code string) error {
	v := deviceView{UserCode: code}
	d, err := p.PendingDevice(c.R.Context(), code)
	if err != nil {
		return c.RenderForm("device", deviceTitle, v, err)
	}
	v.Request, v.UserCode, v.Scopes = &d, d.UserCode, describeScopes(d.Scopes)
	return c.Render(http.StatusOK, "device", deviceTitle, v)
}

// deviceSubmit looks a code up (no decision yet) or records the user's
// decision.
func (p *Provider) deviceSubmit(c *web.Ctx) error {
	code := c.R.PostFormValue("user_code")
	decision := c.R.PostFormValue("decision")
	if decision == "" {
		return p.deviceLookup(c, code)
	}
	if decision != "approve" && decision != "deny" {
		return apperr.E(apperr.Invalid, "unknown decision")
	}
	if c.P.Session == nil {
		return apperr.E(apperr.Forbidden, "approve devices from a signed-in browser")
	}
	if err := p.DecideDevice(c.R.Context(), code, decision == "approve", c.P.User, *c.P.Session); err != nil {
		return c.RenderForm("device", deviceTitle, deviceView{UserCode: code}, err)
	}
	msg := "Access denied. The device was not connected."
	if decision == "approve" {
		msg = "Device connected. You can return to it now."
	}
	return c.Render(http.StatusOK, "device", deviceTitle, deviceView{Done: msg})
}

type clientsView struct {
	Clients []Client
	Keys    []KeyInfo
	Scopes  []authz.ScopeInfo
	Created *Client
	Secret  string
}

func (p *Provider) clientsData(c *web.Ctx) (clientsView, error) {
	ctx := c.R.Context()
	cs, err := p.Clients(ctx)
	if err != nil {
		return clientsView{}, err
	}
	ks, err := p.Keys(ctx)
	if err != nil {
		return clientsView{}, err
	}
	return clientsView{Clients: cs, Keys: ks, Scopes: authz.Scopes()}, nil
}

func (p *Provider) clientsPage(c *web.Ctx) error {
	if err := c.Check(authz.ClientsAdmin, authz.Site); err != nil {
		return err
	}
	v, err := p.clientsData(c)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "oidc_clients", "OAuth clients", v)
}

func (p *Provider) clientCreate(c *web.Ctx) error {
	if err := c.Check(authz.ClientsAdmin, authz.Site); err != nil {
		return err
	}
	f := c.R.PostForm
	nc := NewClient{Name: f.Get("name"), Public: f.Get("type") == "public", RedirectURIs: strings.Fields(f.Get("redirect_uris")),
		GrantTypes: f["grant_types"], Scopes: f["scopes"]}
	cl, secret, err := p.CreateClient(c.R.Context(), nc)
	if err != nil {
		v, verr := p.clientsData(c)
		if verr != nil {
			return verr
		}
		return c.RenderForm("oidc_clients", "OAuth clients", v, err)
	}
	return c.Render(http.StatusCreated, "oidc_client_created", "Client registered", clientsView{Created: &cl, Secret: secret})
}

func (p *Provider) clientDelete(c *web.Ctx) error {
	if err := c.Check(authz.ClientsAdmin, authz.Site); err != nil {
		return err
	}
	id := c.R.PathValue("id")
	if err := p.DeleteClient(c.R.Context(), id); err != nil {
		v, verr := p.clientsData(c)
		if verr != nil {
			return verr
		}
		return c.RenderForm("oidc_clients", "OAuth clients", v, err)
	}
	return c.Redirect("/admin/oidc/clients", "Client deleted; its tokens no longer work.")
}

func (p *Provider) keysRotate(c *web.Ctx) error {
	if err := c.Check(authz.OIDCKeysAdmin, authz.Site); err != nil {
		return err
	}
	k, err := p.RotateKeys(c.R.Context())
	if err != nil {
		return err
	}
	return c.Redirect("/admin/oidc/clients", "Signing key rotated; new tokens are signed with key "+k.ID+".")
}
