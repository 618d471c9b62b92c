package federation

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// Wire types of federation's API.

// ProviderJSON is an identity provider as the API shows it. It never
// carries the client secret, only whether there is one.
type ProviderJSON struct {
	Name          string    `json:"name"`
	Label         string    `json:"label"`
	Issuer        string    `json:"issuer"`
	ClientID      string    `json:"client_id"`
	HasSecret     bool      `json:"has_client_secret"`
	Scopes        []string  `json:"scopes"`
	UsernameClaim string    `json:"username_claim"`
	MatchEmail    bool      `json:"match_email"`
	CreateUsers   bool      `json:"create_users"`
	Role          string    `json:"role"`
	CallbackURL   string    `json:"callback_url"`
	CreatedAt     time.Time `json:"created_at"`
	CreatedBy     string    `json:"created_by,omitempty"`
}

// CreateProviderRequest adds an identity provider to an org.
type CreateProviderRequest struct {
	Name          string   `json:"name"`
	Label         string   `json:"label,omitempty"`
	Issuer        string   `json:"issuer"`
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	UsernameClaim string   `json:"username_claim,omitempty"`
	MatchEmail    bool     `json:"match_email,omitempty"`
	CreateUsers   bool     `json:"create_users,omitempty"`
	Role          string   `json:"role,omitempty"`
}

func (s *Service) providerJSON(p Provider) ProviderJSON {
	return ProviderJSON{Name: p.Name, Label: p.Label, Issuer: p.Issuer, ClientID: p.ClientID, HasSecret: p.HasSecret,
		Scopes: p.Scopes, UsernameClaim: p.UsernameClaim, MatchEmail: p.MatchEmail, CreateUsers: p.CreateUsers,
		Role: p.Role.String(), CallbackURL: s.callback, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}
}

// Routes are federation's API routes, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const prefix = httpapi.Prefix + "/orgs/{org}/idps"
	return []httpapi.Route{
		{Method: "GET", Path: prefix, Tag: "orgs", Summary: "List the org's upstream identity providers (never their secrets)",
			Action: authz.OrgRead, On: httpapi.OnOrg, Response: []ProviderJSON{}, Handler: s.apiList},
		{Method: "POST", Path: prefix, Tag: "orgs", Summary: "Add an upstream OpenID Connect identity provider as a sign-in source (owners)",
			Action: authz.OrgIdPWrite, On: httpapi.OnOrg, Request: CreateProviderRequest{}, Response: ProviderJSON{}, Status: http.StatusCreated, Handler: s.apiCreate},
		{Method: "GET", Path: prefix + "/{name}", Tag: "orgs", Summary: "Show an identity provider (never its secret)",
			Action: authz.OrgRead, On: httpapi.OnOrg, Response: ProviderJSON{}, Handler: s.apiGet},
		{Method: "DELETE", Path: prefix + "/{name}", Tag: "orgs", Summary: "Remove an identity provider (owners)",
			Action: authz.OrgIdPWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDelete},
	}
}

func (s *Service) apiList(c *httpapi.Call) error {
	ps, err := s.List(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	out := make([]ProviderJSON, len(ps))
	for i, p := range ps {
		out[i] = s.providerJSON(p)
	}
	return c.JSON(out)
}

func (s *Service) apiCreate(c *httpapi.Call) error {
	var req CreateProviderRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	p, err := s.Create(c.R.Context(), c.Org, NewProvider{Name: req.Name, Label: req.Label, Issuer: req.Issuer, ClientID: req.ClientID,
		ClientSecret: req.ClientSecret, Scopes: req.Scopes, UsernameClaim: req.UsernameClaim, MatchEmail: req.MatchEmail,
		CreateUsers: req.CreateUsers, Role: req.Role})
	if err != nil {
		return err
	}
	return c.JSON(s.providerJSON(p))
}

func (s *Service) apiGet(c *httpapi.Call) error {
	p, err := s.Get(c.R.Context(), c.Org.ID, c.R.PathValue("name"))
	if err != nil {
		return err
	}
	return c.JSON(s.providerJSON(p))
}

func (s *Service) apiDelete(c *httpapi.Call) error {
	if err := s.Delete(c.R.Context(), c.Org, c.R.PathValue("name")); err != nil {
		return err
	}
	return c.NoContent()
}
