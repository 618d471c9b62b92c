package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

type usersView struct {
	Users []identity.User
	Query string
}

func (s *Server) usersPage(c *Ctx) error {
	if err := c.Check(authz.UsersAdmin, authz.Site); err != nil {
		return err
	}
	q := c.R.URL.Query().Get("q")
	us, err := s.ids.ListUsers(c.R.Context(), q, 500)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "admin_users", "Users", usersView{Users: us, Query: q})
}

func (s *Server) userCreate(c *Ctx) error {
	if err := c.Check(authz.UsersAdmin, authz.Site); err != nil {
		return err
	}
	_, err := s.ids.CreateUser(c.R.Context(), identity.NewUser{
		Username: strings.TrimSpace(c.R.PostFormValue("username")), Email: c.R.PostFormValue("email"),
		DisplayName: c.R.PostFormValue("display_name"), Password: c.R.PostFormValue("password"),
		SiteAdmin: c.R.PostFormValue("site_admin") == "on",
	})
	if err != nil {
		us, lerr := s.ids.ListUsers(c.R.Context(), "", 500)
		if lerr != nil {
			return lerr
		}
		return c.RenderForm("admin_users", "Users", usersView{Users: us}, err)
	}
	return c.Redirect("/admin/users", "User created.")
}

func (s *Server) userDisable(disabled bool) func(c *Ctx) error {
	return func(c *Ctx) error {
		if err := c.Check(authz.UsersAdmin, authz.Site); err != nil {
			return err
		}
		u, err := s.ids.UserByName(c.R.Context(), c.R.PathValue("username"))
		if err != nil {
			return err
		}
		if err := s.ids.SetDisabled(c.R.Context(), u.ID, disabled); err != nil {
			us, lerr := s.ids.ListUsers(c.R.Context(), "", 500)
			if lerr != nil {
				return lerr
			}
			return c.RenderForm("admin_users", "Users", usersView{Users: us}, err)
		}
		msg := u.Username + " enabled."
		if disabled {
			msg = u.Username + " disabled; their sessions ended and tokens stopped working."
		}
		return c.Redirect("/admin/users", msg)
	}
}

type auditView struct {
	Entries []audit.Entry
	Filter  audit.Filter
	Report  *audit.Report
	Next    int64
}

func (s *Server) auditPage(c *Ctx) error {
	if err := c.Check(authz.AuditRead, authz.Site); err != nil {
		return err
	}
	v, err := s.auditData(c)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "audit", "Audit log", v)
}

func (s *Server) auditData(c *Ctx) (auditView, error) {
	q := c.R.URL.Query()
	f := audit.Filter{ActorName: trim(q.Get("actor"), 100), Action: trim(q.Get("action"), 100), Outcome: trim(q.Get("outcome"), 20), Limit: 100}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		f.BeforeSeq = b
	}
	es, err := s.audit.List(c.R.Context(), f)
	v := auditView{Entries: es, Filter: f}
	if len(es) == f.Limit {
		v.Next = es[len(es)-1].Seq
	}
	return v, err
}

func (s *Server) auditVerify(c *Ctx) error {
	if err := c.Check(authz.AuditRead, authz.Site); err != nil {
		return err
	}
	rep, err := s.audit.Verify(c.R.Context())
	if err != nil {
		return err
	}
	v, err := s.auditData(c)
	if err != nil {
		return err
	}
	v.Report = &rep
	return c.Render(http.StatusOK, "audit", "Audit log", v)
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type homeView struct {
	Orgs []orgRow
	MFA  identity.MFAStatus
}

func (s *Server) homePage(c *Ctx) error {
	ctx := c.R.Context()
	orgs, err := s.ids.OrgsOf(ctx, c.P.User.ID)
	if err != nil {
		return err
	}
	v := homeView{}
	for _, o := range orgs {
		v.Orgs = append(v.Orgs, orgRow{Org: o, Role: c.P.Subject.OrgRole(o.ID).String()})
	}
	if v.MFA, err = s.ids.MFAStatus(ctx, c.P.User.ID); err != nil {
		return err
	}
	return c.Render(http.StatusOK, "home", "Home", v)
}
