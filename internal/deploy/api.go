package deploy

import (
	"context"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// InstanceJSON is a running instance of an environment, with the end of
// its logs when asked.
type InstanceJSON struct {
	Instance
	ReleaseNumber int64  `json:"release_number"`
	Logs          string `json:"logs,omitempty"`
}

// EnvironmentJSON is an environment as the API shows it: its rules, what
// runs there and where it came from.
type EnvironmentJSON struct {
	Environment
	Current  *Release `json:"current,omitempty"`
	Previous *Release `json:"previous,omitempty"`
	// Connection is the service connection (never its credential).
	Connection *Connection `json:"connection,omitempty"`
}

// DiffJSON is the difference between two releases.
type DiffJSON struct {
	From    int64    `json:"from"`
	To      int64    `json:"to"`
	Changes []Change `json:"changes"`
}

// RollbackRequest rolls an environment back to its previous release.
type RollbackRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Routes are the deploy component's API routes, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const p = httpapi.Prefix + "/orgs/{org}/projects/{project}"
	return []httpapi.Route{
		{Method: "GET", Path: p + "/environments", Tag: "deploy", Summary: "List a project's environments with what runs in each",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: []EnvironmentJSON{}, Handler: s.apiEnvs},
		{Method: "GET", Path: p + "/environments/{env}", Tag: "deploy", Summary: "Show an environment",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: EnvironmentJSON{}, Handler: s.apiEnv},
		{Method: "PUT", Path: p + "/environments/{env}", Tag: "deploy", Summary: "Create or change an environment: protection rules and target (project owners)",
			Action: authz.DeployEnvAdmin, On: httpapi.OnProject, Request: EnvironmentSpec{}, Response: EnvironmentJSON{}, Handler: s.apiPutEnv},
		{Method: "DELETE", Path: p + "/environments/{env}", Tag: "deploy", Summary: "Delete an environment that runs nothing (project owners)",
			Action: authz.DeployEnvAdmin, On: httpapi.OnProject, Status: http.StatusNoContent, Handler: s.apiDeleteEnv},
		{Method: "PUT", Path: p + "/environments/{env}/connection", Tag: "deploy", Summary: "Set the environment's service connection; the token is sealed and never shown again (project owners)",
			Action: authz.DeployEnvAdmin, On: httpapi.OnProject, Request: ConnectionSpec{}, Response: Connection{}, Handler: s.apiPutConn},
		{Method: "DELETE", Path: p + "/environments/{env}/connection", Tag: "deploy", Summary: "Remove the environment's service connection (project owners)",
			Action: authz.DeployEnvAdmin, On: httpapi.OnProject, Status: http.StatusNoContent, Handler: s.apiDeleteConn},
		{Method: "GET", Path: p + "/environments/{env}/instances", Tag: "deploy", Summary: "List the environment's instances on the node runtime (logs=N adds the last N bytes of output)",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: []InstanceJSON{}, Handler: s.apiInstances},
		{Method: "POST", Path: p + "/environments/{env}/rollback", Tag: "deploy", Summary: "Deploy the environment's previous release again",
			Action: authz.DeployCreate, On: httpapi.OnProject, Request: RollbackRequest{}, Response: Deployment{}, Status: http.StatusCreated, Handler: s.apiRollback},

		{Method: "GET", Path: p + "/releases", Tag: "deploy", Summary: "List a project's releases, newest first (limit)",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: []Release{}, Handler: s.apiReleases},
		{Method: "POST", Path: p + "/releases", Tag: "deploy", Summary: "Record a release: an image digest with its configuration, secret references and source",
			Action: authz.DeployRelease, On: httpapi.OnProject, Request: Release{}, Response: Release{}, Status: http.StatusCreated, Handler: s.apiCreateRelease},
		{Method: "GET", Path: p + "/releases/{number}", Tag: "deploy", Summary: "Show a release",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: Release{}, Handler: s.apiRelease},
		{Method: "GET", Path: p + "/releases/{number}/diff", Tag: "deploy", Summary: "What changed from release {number} to release ?to=",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: DiffJSON{}, Handler: s.apiDiff},

		{Method: "GET", Path: p + "/deployments", Tag: "deploy", Summary: "List deployments, newest first (environment, limit)",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: []Deployment{}, Handler: s.apiDeployments},
		{Method: "POST", Path: p + "/deployments", Tag: "deploy", Summary: "Deploy or promote a release to an environment (checked against its rules and the pre-deploy gate)",
			Action: authz.DeployCreate, On: httpapi.OnProject, Request: DeployRequest{}, Response: Deployment{}, Status: http.StatusCreated, Handler: s.apiDeploy},
		{Method: "GET", Path: p + "/deployments/{id}", Tag: "deploy", Summary: "Show a deployment with its decisions, approvals and step",
			Action: authz.DeployRead, On: httpapi.OnProject, Response: Deployment{}, Handler: s.apiDeployment},
		{Method: "POST", Path: p + "/deployments/{id}/approvals", Tag: "deploy", Summary: "Approve or reject a deployment waiting for approval (maintainers; not the requester)",
			Action: authz.DeployApprove, On: httpapi.OnProject, Request: ApproveRequest{}, Response: Deployment{}, Handler: s.apiApprove},
	}
}

func scopeOf(c *httpapi.Call) Scope {
	return Scope{OrgID: c.Org.ID, ProjectID: c.Project.ID, Org: c.Org.Name, Project: c.Project.Name}
}

func (s *Service) envJSON(ctx context.Context, e Environment) (EnvironmentJSON, error) {
	out := EnvironmentJSON{Environment: e}
	for _, x := range []struct {
		id  int64
		dst **Release
	}{{e.CurrentReleaseID, &out.Current}, {e.PreviousReleaseID, &out.Previous}} {
		if x.id == 0 {
			continue
		}
		r, err := s.releaseByID(ctx, s.d.DB, x.id)
		if err != nil {
			return out, err
		}
		*x.dst = &r
	}
	if c, err := s.connection(ctx, s.d.DB, e.ID, false); err == nil {
		out.Connection = &c
	} else if !apperr.Is(err, apperr.NotFound) {
		return out, err
	}
	return out, nil
}

func (s *Service) apiEnvs(c *httpapi.Call) error {
	es, err := s.Environments(c.R.Context(), scopeOf(c))
	if err != nil {
		return err
	}
	out := make([]EnvironmentJSON, 0, len(es))
	for _, e := range es {
		j, err := s.envJSON(c.R.Context(), e)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(out)
}

func (s *Service) apiEnv(c *httpapi.Call) error {
	e, err := s.Environment(c.R.Context(), scopeOf(c), c.R.PathValue("env"))
	if err != nil {
		return err
	}
	j, err := s.envJSON(c.R.Context(), e)
	if err != nil {
		return err
	}
	return c.JSON(j)
}

func (s *Service) apiPutEnv(c *httpapi.Call) error {
	var spec EnvironmentSpec
	if err := c.Decode(&spec); err != nil {
		return err
	}
	e, created, err := s.PutEnvironment(c.R.Context(), scopeOf(c), c.R.PathValue("env"), spec)
	if err != nil {
		return err
	}
	if created {
		c.W.Header().Set("Location", c.R.URL.Path)
	}
	j, err := s.envJSON(c.R.Context(), e)
	if err != nil {
		return err
	}
	return c.JSON(j)
}

func (s *Service) apiDeleteEnv(c *httpapi.Call) error {
	if err := s.DeleteEnvironment(c.R.Context(), scopeOf(c), c.R.PathValue("env")); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiPutConn(c *httpapi.Call) error {
	var spec ConnectionSpec
	if err := c.Decode(&spec); err != nil {
		return err
	}
	conn, err := s.PutConnection(c.R.Context(), scopeOf(c), c.R.PathValue("env"), spec)
	if err != nil {
		return err
	}
	return c.JSON(conn)
}

func (s *Service) apiDeleteConn(c *httpapi.Call) error {
	if err := s.DeleteConnection(c.R.Context(), scopeOf(c), c.R.PathValue("env")); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiInstances(c *httpapi.Call) error {
	logBytes := 0
	if v := c.R.URL.Query().Get("logs"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<20 {
			return apperr.InvalidField("logs", "logs must be 0 to 1048576 bytes")
		}
		logBytes = n
	}
	out, err := s.Instances(c.R.Context(), scopeOf(c), c.R.PathValue("env"), logBytes)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Service) apiRollback(c *httpapi.Call) error {
	var req RollbackRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	if len(req.Reason) > maxReason {
		return apperr.InvalidField("reason", "reason must be at most %d bytes", maxReason)
	}
	d, err := s.Rollback(c.R.Context(), scopeOf(c), c.R.PathValue("env"), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func limitOf(c *httpapi.Call) (int, error) {
	v := c.R.URL.Query().Get("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, apperr.InvalidField("limit", "limit must be 1 to 500")
	}
	return n, nil
}

func numberOf(c *httpapi.Call, key string) (int64, error) {
	n, err := strconv.ParseInt(c.R.PathValue(key), 10, 64)
	if err != nil || n < 1 {
		return 0, apperr.E(apperr.NotFound, "no %s %q", key, truncate(c.R.PathValue(key), 32))
	}
	return n, nil
}

func (s *Service) apiReleases(c *httpapi.Call) error {
	n, err := limitOf(c)
	if err != nil {
		return err
	}
	rs, err := s.Releases(c.R.Context(), scopeOf(c), n)
	if err != nil {
		return err
	}
	return c.JSON(rs)
}

func (s *Service) apiCreateRelease(c *httpapi.Call) error {
	var r Release
	if err := c.Decode(&r); err != nil {
		return err
	}
	if r.ID != 0 || r.Number != 0 || r.CreatedBy != "" || !r.CreatedAt.IsZero() {
		return apperr.E(apperr.Invalid, "id, number, created_by and created_at are set by Rampart")
	}
	out, err := s.CreateRelease(c.R.Context(), scopeOf(c), r)
	if err != nil {
		return err
	}
	c.W.Header().Set("Location", c.R.URL.Path+"/"+strconv.FormatInt(out.Number, 10))
	return c.JSON(out)
}

func (s *Service) apiRelease(c *httpapi.Call) error {
	n, err := numberOf(c, "number")
	if err != nil {
		return err
	}
	r, err := s.Release(c.R.Context(), scopeOf(c), n)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *Service) apiDiff(c *httpapi.Call) error {
	n, err := numberOf(c, "number")
	if err != nil {
		return err
	}
	to, err := strconv.ParseInt(c.R.URL.Query().Get("to"), 10, 64)
	if err != nil || to < 1 {
		return apperr.InvalidField("to", "to must be a release number")
	}
	a, err := s.Release(c.R.Context(), scopeOf(c), n)
	if err != nil {
		return err
	}
	b, err := s.Release(c.R.Context(), scopeOf(c), to)
	if err != nil {
		return err
	}
	return c.JSON(DiffJSON{From: n, To: to, Changes: Diff(a, b)})
}

func (s *Service) apiDeployments(c *httpapi.Call) error {
	n, err := limitOf(c)
	if err != nil {
		return err
	}
	env := c.R.URL.Query().Get("environment")
	if len(env) > 64 {
		return apperr.InvalidField("environment", "no such environment")
	}
	ds, err := s.Deployments(c.R.Context(), scopeOf(c), env, n)
	if err != nil {
		return err
	}
	return c.JSON(ds)
}

func (s *Service) apiDeploy(c *httpapi.Call) error {
	var req DeployRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	d, err := s.Deploy(c.R.Context(), scopeOf(c), req)
	if err != nil {
		return err
	}
	c.W.Header().Set("Location", c.R.URL.Path+"/"+strconv.FormatInt(d.ID, 10))
	return c.JSON(d)
}

func (s *Service) apiDeployment(c *httpapi.Call) error {
	id, err := numberOf(c, "id")
	if err != nil {
		return err
	}
	d, err := s.Deployment(c.R.Context(), scopeOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Service) apiApprove(c *httpapi.Call) error {
	var req ApproveRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	id, err := numberOf(c, "id")
	if err != nil {
		return err
	}
	d, err := s.Approve(c.R.Context(), scopeOf(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(d)
}
