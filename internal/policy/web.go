package policy

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Templates are the policy pages' templates, for web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates") // cannot fail: the directory is embedded
	return sub
}

// Pages are the policy pages, for web.Deps.Pages.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/policy", Handler: s.overviewPage},
		{Method: "GET", Path: "/orgs/{org}/policy/decisions", Handler: s.decisionsPage},
		{Method: "GET", Path: "/orgs/{org}/policy/decisions/{id}", Handler: s.decisionPage},
		{Method: "GET", Path: "/orgs/{org}/exceptions", Handler: s.exceptionsPage},
		{Method: "POST", Path: "/orgs/{org}/exceptions", Handler: s.addExceptionSubmit},
		{Method: "POST", Path: "/orgs/{org}/exceptions/{number}/delete", Handler: s.deleteExceptionSubmit},
	}
}

// Nav is the policy entry of the navigation bar, for web.Deps.Nav.
func (s *Service) Nav() []web.NavItem {
	return []web.NavItem{{Label: "Policy", Path: "/policy", Order: 60}}
}

type overviewView struct {
	Status   Status
	Gates    []gateView
	Modes    []ModeRule
	Orgs     []identity.Org
	Settings string
}

type gateView struct {
	GateInfo
	Policies []Policy
}

func (s *Service) overviewPage(c *web.Ctx) error {
	if err := c.Check(authz.PolicyRead, authz.Site); err != nil {
		return err
	}
	e := s.Engine()
	v := overviewView{Status: s.Status(), Modes: e.Modes()}
	for _, gi := range GateInfos() {
		gv := gateView{GateInfo: gi}
		for _, p := range e.Policies() {
			if p.Gate == gi.Gate {
				gv.Policies = append(gv.Policies, p)
			}
		}
		v.Gates = append(v.Gates, gv)
	}
	orgs, err := c.IDs().OrgsOf(c.R.Context(), c.P.User.ID)
	if err != nil {
		return err
	}
	v.Orgs = orgs
	return c.Render(http.StatusOK, "policy", "Policy", v)
}

type decisionsView struct {
	Org       identity.Org
	Decisions []Decision
	Filter    DecisionFilter
	Gates     []Gate
}

func (s *Service) decisionsPage(c *web.Ctx) error {
	o, err := c.Org(authz.PolicyDecisionsRead)
	if err != nil {
		return err
	}
	q := c.R.URL.Query()
	f := DecisionFilter{Subject: q.Get("subject"), Gate: Gate(q.Get("gate")), Outcome: q.Get("outcome"), Limit: 100}
	ds, err := s.Decisions(c.R.Context(), o.ID, f)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "policy_decisions", o.Name+": policy decisions", decisionsView{Org: o, Decisions: ds, Filter: f, Gates: Gates()})
}

type decisionView struct {
	Org      identity.Org
	Decision Decision
}

func (s *Service) decisionPage(c *web.Ctx) error {
	o, err := c.Org(authz.PolicyDecisionsRead)
	if err != nil {
		return err
	}
	d, err := s.DecisionByID(c.R.Context(), o.ID, c.R.PathValue("id"))
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "policy_decision", o.Name+": decision "+d.ID, decisionView{Org: o, Decision: d})
}

type exceptionsView struct {
	Org      identity.Org
	InForce  []ExceptionState
	Expired  []ExceptionState
	CanWrite bool
	Form     ExceptionRequest
	MaxDays  int
}

func (s *Service) exceptionsData(c *web.Ctx, o identity.Org, form ExceptionRequest) (exceptionsView, error) {
	list, err := s.Exceptions(c.R.Context(), o.ID)
	if err != nil {
		return exceptionsView{}, err
	}
	v := exceptionsView{Org: o, Form: form, MaxDays: MaxExceptionDays,
		CanWrite: c.Check(authz.PolicyExceptionWrite, o.Resource()) == nil}
	for _, e := range list {
		if e.Expired {
			v.Expired = append(v.Expired, e)
		} else {
			v.InForce = append(v.InForce, e)
		}
	}
	if v.Form.Expires == "" {
		v.Form.Expires = s.today().AddDate(0, 0, 30).Format("2006-01-02")
	}
	return v, nil
}

func (s *Service) exceptionsPage(c *web.Ctx) error {
	o, err := c.Org(authz.PolicyExceptionRead)
	if err != nil {
		return err
	}
	v, err := s.exceptionsData(c, o, ExceptionRequest{})
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "policy_exceptions", o.Name+": exceptions", v)
}

func (s *Service) addExceptionSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.PolicyExceptionWrite)
	if err != nil {
		return err
	}
	f := c.R.PostForm
	req := ExceptionRequest{ID: f.Get("id"), Fingerprint: f.Get("fingerprint"), Paths: strings.Fields(f.Get("paths")),
		Repository: f.Get("repository"), Image: f.Get("image"), Environment: f.Get("environment"), Reason: f.Get("reason"),
		Owner: f.Get("owner"), Expires: f.Get("expires")}
	e, err := exceptionOf(req)
	if err == nil {
		e, err = s.AddException(c.R.Context(), o, e)
	}
	if err != nil {
		v, verr := s.exceptionsData(c, o, req)
		if verr != nil {
			return verr
		}
		return c.RenderForm("policy_exceptions", o.Name+": exceptions", v, err)
	}
	return c.Redirect("/orgs/"+url.PathEscape(o.Name)+"/exceptions",
		"Exception #"+strconv.FormatInt(e.Number, 10)+" for "+e.What()+" is in force until "+e.Expires.String()+".")
}

func (s *Service) deleteExceptionSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.PolicyExceptionWrite)
	if err != nil {
		return err
	}
	n, perr := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	err = perr
	if err == nil {
		err = s.DeleteException(c.R.Context(), o, n)
	}
	if err != nil {
		v, verr := s.exceptionsData(c, o, ExceptionRequest{})
		if verr != nil {
			return verr
		}
		return c.RenderForm("policy_exceptions", o.Name+": exceptions", v, err)
	}
	return c.Redirect("/orgs/"+url.PathEscape(o.Name)+"/exceptions", "Exception #"+strconv.FormatInt(n, 10)+" deleted; it no longer applies.")
}
