package oidcop

import (
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// Wire types of the provider's API.

// ClientJSON is a registered client as the API shows it.
type ClientJSON struct {
	ClientID     string    `json:"client_id"`
	Name         string    `json:"name"`
	Public       bool      `json:"public"`
	RedirectURIs []string  `json:"redirect_uris"`
	GrantTypes   []string  `json:"grant_types"`
	Scopes       []string  `json:"scopes"`
	BuiltIn      bool      `json:"builtin,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	CreatedBy    string    `json:"created_by,omitempty"`
}

// ClientOf converts a Client.
func ClientOf(c Client) ClientJSON {
	sc := make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		sc[i] = string(s)
	}
	uris := c.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	return ClientJSON{ClientID: c.ID, Name: c.Name, Public: c.Public, RedirectURIs: uris, GrantTypes: c.GrantTypes,
		Scopes: sc, BuiltIn: c.BuiltIn, CreatedAt: c.CreatedAt, CreatedBy: c.CreatedBy}
}

// CreateClientRequest registers a client.
type CreateClientRequest struct {
	Name         string   `json:"name"`
	Public       bool     `json:"public,omitempty"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	GrantTypes   []string `json:"grant_types,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

// CreatedClient is a new client with its secret (shown once; empty for
// public clients).
type CreatedClient struct {
	ClientJSON
	ClientSecret string `json:"client_secret,omitempty"`
}

// SigningKeyJSON is a published signing key.
type SigningKeyJSON struct {
	KeyID       string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	CreatedAt   time.Time  `json:"created_at"`
	RetireAfter *time.Time `json:"retire_after,omitempty"`
	Current     bool       `json:"current"`
}

func keyOf(k KeyInfo) SigningKeyJSON {
	out := SigningKeyJSON{KeyID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, Current: k.Current}
	if !k.RetireAfter.IsZero() {
		t := k.RetireAfter
		out.RetireAfter = &t
	}
	return out
}

// Routes are the provider's API routes, for httpapi.Deps.Extra.
func (p *Provider) Routes() []httpapi.Route {
	const prefix = httpapi.Prefix + "/oidc"
	return []httpapi.Route{
		{Method: "GET", Path: prefix + "/clients", Tag: "oidc", Summary: "List OAuth/OpenID clients (site administrators)",
			Action: authz.ClientsAdmin, Response: []ClientJSON{}, Handler: p.apiListClients},
		{Method: "POST", Path: prefix + "/clients", Tag: "oidc", Summary: "Register a client (its secret is shown once)",
			Action: authz.ClientsAdmin, Request: CreateClientRequest{}, Response: CreatedClient{}, Status: http.StatusCreated, Handler: p.apiCreateClient},
		{Method: "GET", Path: prefix + "/clients/{id}", Tag: "oidc", Summary: "Show a client",
			Action: authz.ClientsAdmin, Response: ClientJSON{}, Handler: p.apiGetClient},
		{Method: "DELETE", Path: prefix + "/clients/{id}", Tag: "oidc", Summary: "Delete a client and every token it holds",
			Action: authz.ClientsAdmin, Status: http.StatusNoContent, Handler: p.apiDeleteClient},
		{Method: "GET", Path: prefix + "/keys", Tag: "oidc", Summary: "List the published signing keys",
			Action: authz.OIDCKeysAdmin, Response: []SigningKeyJSON{}, Handler: p.apiListKeys},
		{Method: "POST", Path: prefix + "/keys/rotate", Tag: "oidc", Summary: "Replace the signing key now (the old one stays published until its ID tokens expire)",
			Action: authz.OIDCKeysAdmin, Response: SigningKeyJSON{}, Status: http.StatusCreated, Handler: p.apiRotateKeys},
	}
}

func (p *Provider) apiListClients(c *httpapi.Call) error {
	cs, err := p.Clients(c.R.Context())
	if err != nil {
		return err
	}
	out := make([]ClientJSON, len(cs))
	for i, cl := range cs {
		out[i] = ClientOf(cl)
	}
	return c.JSON(out)
}

func (p *Provider) apiCreateClient(c *httpapi.Call) error {
	var req CreateClientRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	cl, secret, err := p.CreateClient(c.R.Context(), NewClient{Name: req.Name, Public: req.Public, RedirectURIs: req.RedirectURIs,
		GrantTypes: req.GrantTypes, Scopes: req.Scopes})
	if err != nil {
		return err
	}
	return c.JSON(CreatedClient{ClientJSON: ClientOf(cl), ClientSecret: secret})
}

func (p *Provider) apiGetClient(c *httpapi.Call) error {
	cl, err := p.Client(c.R.Context(), c.R.PathValue("id"))
	if err != nil {
		return err
	}
	return c.JSON(ClientOf(cl))
}

func (p *Provider) apiDeleteClient(c *httpapi.Call) error {
	if err := p.DeleteClient(c.R.Context(), c.R.PathValue("id")); err != nil {
		return err
	}
	return c.NoContent()
}

func (p *Provider) apiListKeys(c *httpapi.Call) error {
	ks, err := p.Keys(c.R.Context())
	if err != nil {
		return err
	}
	out := make([]SigningKeyJSON, len(ks))
	for i, k := range ks {
		out[i] = keyOf(k)
	}
	return c.JSON(out)
}

func (p *Provider) apiRotateKeys(c *httpapi.Call) error {
	k, err := p.RotateKeys(c.R.Context())
	if err != nil {
		return err
	}
	return c.JSON(keyOf(k))
}
