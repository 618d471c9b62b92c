package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// RouteJSON is a route as the API shows it, with its backends' live state.
type RouteJSON struct {
	// ID is a stored route's id (none for the config file's routes).
	ID        int64           `json:"id,omitempty"`
	Name      string          `json:"name"`
	Scope     string          `json:"scope"`
	Source    string          `json:"source"`
	Spec      Spec            `json:"spec"`
	Backends  []BackendStatus `json:"backends,omitempty"`
	CreatedAt *time.Time      `json:"created_at,omitempty"`
	UpdatedAt *time.Time      `json:"updated_at,omitempty"`
	CreatedBy string          `json:"created_by,omitempty"`
}

func (s *Service) routeJSON(sr StoredRoute) RouteJSON {
	c, u := sr.CreatedAt, sr.UpdatedAt
	return RouteJSON{ID: sr.ID, Name: sr.Name, Scope: sr.Scope.String(), Source: "api", Spec: sr.Spec,
		Backends: s.d.Gateway.Status(sr.ID, sr.Scope.key(sr.Name)), CreatedAt: &c, UpdatedAt: &u, CreatedBy: sr.CreatedBy}
}

// Routes are the gateway's API routes, for httpapi.Deps.Extra.
//
// Site routes (the catch-all host, shared hosts) and the security events
// are for site administrators; a project's routes are read by its readers
// and changed by the owners of its org (a route exposes a host to the
// internet: it is an owner's decision).
func (s *Service) Routes() []httpapi.Route {
	const site = httpapi.Prefix + "/gateway/routes"
	const proj = httpapi.Prefix + "/orgs/{org}/projects/{project}/gateway/routes"
	return []httpapi.Route{
		{Method: "GET", Path: site, Tag: "gateway", Summary: "List every gateway route: the config file's, the site's and every project's (site administrators)",
			Action: authz.GatewayAdmin, Response: []RouteJSON{}, Handler: s.apiListAll},
		{Method: "GET", Path: site + "/{name}", Tag: "gateway", Summary: "Show a site route",
			Action: authz.GatewayAdmin, Response: RouteJSON{}, Handler: s.apiGet},
		{Method: "PUT", Path: site + "/{name}", Tag: "gateway", Summary: "Create or replace a site route (site administrators)",
			Action: authz.GatewayAdmin, Request: Spec{}, Response: RouteJSON{}, Handler: s.apiPut},
		{Method: "DELETE", Path: site + "/{name}", Tag: "gateway", Summary: "Remove a site route",
			Action: authz.GatewayAdmin, Status: http.StatusNoContent, Handler: s.apiDelete},
		{Method: "DELETE", Path: site + "/by-id/{id}", Tag: "gateway", Summary: "Remove any stored route, a project's or the site's, by its id (site administrators)",
			Action: authz.GatewayAdmin, Status: http.StatusNoContent, Handler: s.apiDeleteByID},
		{Method: "GET", Path: httpapi.Prefix + "/gateway/events", Tag: "gateway", Summary: "Security events: requests the WAF blocked or flagged and stalled bodies on WAF routes, newest first (filters: request_id, route, outcome, limit)",
			Action: authz.GatewayEventsRead, Response: []Event{}, Handler: s.apiEvents},

		{Method: "GET", Path: proj, Tag: "gateway", Summary: "List a project's gateway routes",
			Action: authz.GatewayRoutesRead, On: httpapi.OnProject, Response: []RouteJSON{}, Handler: s.apiList},
		{Method: "GET", Path: proj + "/{name}", Tag: "gateway", Summary: "Show a project's gateway route",
			Action: authz.GatewayRoutesRead, On: httpapi.OnProject, Response: RouteJSON{}, Handler: s.apiGet},
		{Method: "PUT", Path: proj + "/{name}", Tag: "gateway", Summary: "Create or replace a project's gateway route (org owners)",
			Action: authz.GatewayRoutesWrite, On: httpapi.OnProject, Request: Spec{}, Response: RouteJSON{}, Handler: s.apiPut},
		{Method: "DELETE", Path: proj + "/{name}", Tag: "gateway", Summary: "Remove a project's gateway route (org owners)",
			Action: authz.GatewayRoutesWrite, On: httpapi.OnProject, Status: http.StatusNoContent, Handler: s.apiDelete},
	}
}

func scopeOf(c *httpapi.Call) Scope {
	if c.Project.ID == 0 {
		return Site
	}
	return Scope{OrgID: c.Org.ID, ProjectID: c.Project.ID, OrgName: c.Org.Name, ProjectName: c.Project.Name}
}

func (s *Service) apiListAll(c *httpapi.Call) error {
	out := []RouteJSON{}
	for _, fr := range s.FileRoutes() {
		out = append(out, RouteJSON{Name: fr.Name, Scope: "site", Source: "file", Spec: fr.Spec, Backends: s.d.Gateway.Status(0, fr.Name)})
	}
	rs, err := s.List(c.R.Context(), Site, true)
	if err != nil {
		return err
	}
	for _, sr := range rs {
		out = append(out, s.routeJSON(sr))
	}
	return c.JSON(out)
}

func (s *Service) apiList(c *httpapi.Call) error {
	rs, err := s.List(c.R.Context(), scopeOf(c), false)
	if err != nil {
		return err
	}
	out := make([]RouteJSON, 0, len(rs))
	for _, sr := range rs {
		out = append(out, s.routeJSON(sr))
	}
	return c.JSON(out)
}

func (s *Service) apiGet(c *httpapi.Call) error {
	sr, err := s.Get(c.R.Context(), scopeOf(c), c.R.PathValue("name"))
	if err != nil {
		return err
	}
	return c.JSON(s.routeJSON(sr))
}

func (s *Service) apiPut(c *httpapi.Call) error {
	var spec Spec
	if err := c.Decode(&spec); err != nil {
		return err
	}
	sr, created, err := s.Put(c.R.Context(), scopeOf(c), c.R.PathValue("name"), spec)
	if err != nil {
		return err
	}
	if created {
		c.W.Header().Set("Location", c.R.URL.Path)
	}
	return c.JSON(s.routeJSON(sr))
}

func (s *Service) apiDelete(c *httpapi.Call) error {
	if err := s.Delete(c.R.Context(), scopeOf(c), c.R.PathValue("name")); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiDeleteByID(c *httpapi.Call) error {
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return apperr.E(apperr.NotFound, "route %.20q not found", c.R.PathValue("id"))
	}
	if err := s.DeleteByID(c.R.Context(), id); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiEvents(c *httpapi.Call) error {
	q := c.R.URL.Query()
	f := EventFilter{RequestID: q.Get("request_id"), Route: q.Get("route"), Outcome: q.Get("outcome")}
	for _, v := range []string{f.RequestID, f.Route, f.Outcome} {
		if len(v) > 200 {
			return apperr.E(apperr.Invalid, "filter values must be at most 200 bytes")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return apperr.InvalidField("limit", "limit must be 1 to 1000")
		}
		f.Limit = n
	}
	es, err := s.events.Events(c.R.Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(es)
}

// reqActor names the user acting in ctx (for created_by).
func reqActor(ctx context.Context) string { return reqinfo.From(ctx).ActorName }
