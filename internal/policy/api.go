package policy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// Wire types of the policy API. Decisions travel in their own stable
// format (Decision).

// StatusJSON is what is loaded.
type StatusJSON struct {
	Status
	Gates    []GateInfo   `json:"gates"`
	Policies []PolicyJSON `json:"policy_list"`
	Modes    []ModeRule   `json:"modes"`
}

// PolicyJSON is a loaded policy with its default mode.
type PolicyJSON struct {
	Policy
}

// DecideRequest asks a gate for a decision.
type DecideRequest struct {
	Gate string `json:"gate"`
	// Subject names what the decision is for (see GateInfo.Subject).
	Subject     string `json:"subject"`
	Environment string `json:"environment,omitempty"`
	Repository  string `json:"repository,omitempty"`
	// Input is the gate's input document.
	Input json.RawMessage `json:"input"`
}

// ExceptionRequest adds an org exception.
type ExceptionRequest struct {
	ID          string   `json:"id,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	Paths       []string `json:"paths,omitempty"`
	Repository  string   `json:"repository,omitempty"`
	Image       string   `json:"image,omitempty"`
	Environment string   `json:"environment,omitempty"`
	Reason      string   `json:"reason"`
	Owner       string   `json:"owner,omitempty"`
	// Expires is a date, YYYY-MM-DD.
	Expires string `json:"expires"`
}

// Routes are the policy API's routes, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const org = httpapi.Prefix + "/orgs/{org}"
	return []httpapi.Route{
		{Method: "GET", Path: httpapi.Prefix + "/policy", Tag: "policy", Summary: "Show the loaded policy bundles, policies, modes and gates",
			Action: authz.PolicyRead, Response: StatusJSON{}, Handler: s.apiStatus},
		{Method: "POST", Path: httpapi.Prefix + "/policy/reload", Tag: "policy", Summary: "Reload the policy bundles now (site administrators); a bundle that does not compile is refused",
			Action: authz.PolicyReload, Response: Status{}, Handler: s.apiReload},
		{Method: "GET", Path: httpapi.Prefix + "/policy/gates/{gate}/schema", Tag: "policy", Summary: "The JSON Schema of a gate's input document",
			Action: authz.PolicyRead, Handler: s.apiSchema},
		{Method: "POST", Path: org + "/policy/decisions", Tag: "policy", Summary: "Ask a gate for a decision, recorded in the org's decision log",
			Action: authz.PolicyDecide, On: httpapi.OnOrg, Request: DecideRequest{}, Response: Decision{}, Status: http.StatusCreated, Handler: s.apiDecide},
		{Method: "POST", Path: org + "/policy/evaluate", Tag: "policy", Summary: "Dry-run a gate: the decision is returned, not recorded",
			Action: authz.PolicyEvaluate, On: httpapi.OnOrg, Request: DecideRequest{}, Response: Decision{}, Handler: s.apiEvaluate},
		{Method: "GET", Path: org + "/policy/decisions", Tag: "policy", Summary: "List the org's decisions, newest first (?subject=, ?gate=, ?outcome=, ?limit=)",
			Action: authz.PolicyDecisionsRead, On: httpapi.OnOrg, Response: []Decision{}, Handler: s.apiDecisions},
		{Method: "GET", Path: org + "/policy/decisions/{id}", Tag: "policy", Summary: "Show one decision",
			Action: authz.PolicyDecisionsRead, On: httpapi.OnOrg, Response: Decision{}, Handler: s.apiDecision},
		{Method: "POST", Path: org + "/admission/{environment}", Tag: "policy", Summary: "Kubernetes validating admission webhook (AdmissionReview v1) for the org's cluster in an environment",
			Action: authz.PolicyDecide, On: httpapi.OnOrg, Request: AdmissionReview{}, Response: AdmissionReview{}, Handler: s.apiAdmission},
		{Method: "GET", Path: org + "/exceptions", Tag: "policy", Summary: "List every exception that applies to the org: in force first, then expired (no longer applied)",
			Action: authz.PolicyExceptionRead, On: httpapi.OnOrg, Response: []ExceptionState{}, Handler: s.apiExceptions},
		{Method: "POST", Path: org + "/exceptions", Tag: "policy", Summary: "Add an org exception: a policy, rule or advisory id in a scope, with owner, reason and expiry (owners)",
			Action: authz.PolicyExceptionWrite, On: httpapi.OnOrg, Request: ExceptionRequest{}, Response: exception.Exception{}, Status: http.StatusCreated, Handler: s.apiAddException},
		{Method: "DELETE", Path: org + "/exceptions/{number}", Tag: "policy", Summary: "Delete an org exception (owners)",
			Action: authz.PolicyExceptionWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDeleteException},
	}
}

func (s *Service) statusJSON() StatusJSON {
	e := s.Engine()
	st := StatusJSON{Status: s.Status(), Gates: GateInfos(), Modes: e.Modes()}
	for _, p := range e.Policies() {
		st.Policies = append(st.Policies, PolicyJSON{p})
	}
	if st.Modes == nil {
		st.Modes = []ModeRule{}
	}
	return st
}

func (s *Service) apiStatus(c *httpapi.Call) error { return c.JSON(s.statusJSON()) }

func (s *Service) apiReload(c *httpapi.Call) error {
	if _, err := s.Reload(c.R.Context()); err != nil {
		return err
	}
	return c.JSON(s.Status())
}

func (s *Service) apiSchema(c *httpapi.Call) error {
	g, err := ParseGate(c.R.PathValue("gate"))
	if err != nil {
		return apperr.E(apperr.NotFound, "%s", apperr.Message(err))
	}
	b, err := InputSchema(g)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", "application/schema+json")
	c.W.Header().Set("Cache-Control", "no-store")
	_, err = c.W.Write(b)
	return err
}

func (s *Service) decideRequest(c *httpapi.Call) (Gate, Input, error) {
	var req DecideRequest
	if err := c.Decode(&req); err != nil {
		return "", Input{}, err
	}
	g, err := ParseGate(req.Gate)
	if err != nil {
		return "", Input{}, err
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return "", Input{}, apperr.InvalidField("input", "input is required: the %s gate's input document", g)
	}
	if strings.TrimSpace(req.Subject) == "" {
		return "", Input{}, apperr.InvalidField("subject", "subject is required: it names what the decision is for, e.g. %s", gateSubject(g))
	}
	return g, Input{OrgID: c.Org.ID, Subject: strings.TrimSpace(req.Subject), Environment: req.Environment,
		Repository: req.Repository, Document: []byte(req.Input)}, nil
}

func gateSubject(g Gate) string {
	for _, gi := range GateInfos() {
		if gi.Gate == g {
			return gi.Subject
		}
	}
	return ""
}

func (s *Service) apiDecide(c *httpapi.Call) error {
	g, in, err := s.decideRequest(c)
	if err != nil {
		return err
	}
	d, err := s.Decide(c.R.Context(), g, in)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Service) apiEvaluate(c *httpapi.Call) error {
	g, in, err := s.decideRequest(c)
	if err != nil {
		return err
	}
	d, err := s.Evaluate(c.R.Context(), g, in)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Service) apiDecisions(c *httpapi.Call) error {
	q := c.R.URL.Query()
	f := DecisionFilter{Subject: q.Get("subject"), Gate: Gate(q.Get("gate")), Outcome: q.Get("outcome")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return apperr.InvalidField("limit", "limit must be a positive number")
		}
		f.Limit = n
	}
	ds, err := s.Decisions(c.R.Context(), c.Org.ID, f)
	if err != nil {
		return err
	}
	return c.JSON(ds)
}

func (s *Service) apiDecision(c *httpapi.Call) error {
	d, err := s.DecisionByID(c.R.Context(), c.Org.ID, c.R.PathValue("id"))
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Service) apiAdmission(c *httpapi.Call) error {
	body, err := readAdmission(c.R)
	if err != nil {
		return err
	}
	review, err := s.Admit(c.R.Context(), c.Org, c.R.PathValue("environment"), body)
	if err != nil {
		return err
	}
	return c.JSON(review)
}

func (s *Service) apiExceptions(c *httpapi.Call) error {
	list, err := s.Exceptions(c.R.Context(), c.Org.ID)
	if err != nil {
		return err
	}
	if list == nil {
		list = []ExceptionState{}
	}
	return c.JSON(list)
}

// exceptionOf reads a request into an exception.
func exceptionOf(r ExceptionRequest) (exception.Exception, error) {
	e := exception.Exception{ID: r.ID, Fingerprint: r.Fingerprint, Paths: r.Paths, Repository: r.Repository, Image: r.Image,
		Environment: r.Environment, Reason: r.Reason, Owner: r.Owner}
	if strings.TrimSpace(r.Expires) == "" {
		return e, apperr.InvalidField("expires", "an org exception needs an expiry date (YYYY-MM-DD, at most %d days ahead)", MaxExceptionDays)
	}
	d, err := exception.ParseDate(r.Expires)
	if err != nil {
		return e, apperr.InvalidField("expires", "expires %s", err.Error())
	}
	e.Expires = d
	return e, nil
}

func (s *Service) apiAddException(c *httpapi.Call) error {
	var req ExceptionRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	e, err := exceptionOf(req)
	if err != nil {
		return err
	}
	if e, err = s.AddException(c.R.Context(), c.Org, e); err != nil {
		return err
	}
	return c.JSON(e)
}

func (s *Service) apiDeleteException(c *httpapi.Call) error {
	n, err := strconv.ParseInt(strings.TrimPrefix(c.R.PathValue("number"), "#"), 10, 64)
	if err != nil || n < 1 {
		return apperr.E(apperr.NotFound, "no exception %q", c.R.PathValue("number"))
	}
	if err := s.DeleteException(c.R.Context(), c.Org, n); err != nil {
		return err
	}
	return c.NoContent()
}

// now is used by pages for expiry defaults.
func (s *Service) today() time.Time { return s.now().UTC() }
