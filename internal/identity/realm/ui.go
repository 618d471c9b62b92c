package realm

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/web"
)

//go:embed ui/*.html
var uiFS embed.FS

// Templates are the realm's pages in Rampart's web UI, for
// web.Deps.Templates.
func Templates() fs.FS {
	sub, _ := fs.Sub(uiFS, "ui") // cannot fail: the directory is embedded
	return sub
}

// Pages are the org owners' realm settings pages in Rampart's web UI, for
// web.Deps.Pages.
func (s *Service) Pages() []web.Page {
	return []web.Page{
		{Method: "GET", Path: "/orgs/{org}/realm", Handler: s.settingsPage},
		{Method: "POST", Path: "/orgs/{org}/realm", Handler: s.settingsSubmit},
		{Method: "POST", Path: "/orgs/{org}/realm/delete", Handler: s.deleteSubmit},
	}
}

// settingsView is the data of the realm settings page.
type settingsView struct {
	Org            identity.Org
	Realm          Realm
	Configured     bool
	Issuer         string
	Idle, Absolute string
	Users          []User
	TLSModes       []string
}

func (s *Service) settingsData(c *web.Ctx, o identity.Org) (settingsView, error) {
	v := settingsView{Org: o, Issuer: s.Issuer(o.Name), TLSModes: []string{TLSStartTLS, TLSImplicit, TLSNone}}
	r, err := s.Get(c.R.Context(), o.ID)
	switch {
	case apperr.Is(err, apperr.NotFound):
		v.Realm = Realm{DisplayName: o.DisplayName, AllowSignup: true, SMTP: SMTP{TLS: TLSStartTLS}}
		return v, nil
	case err != nil:
		return v, err
	}
	v.Realm, v.Configured, v.Idle, v.Absolute = r, true, shortDuration(r.SessionIdle), shortDuration(r.SessionAbsolute)
	v.Users, err = s.Users(c.R.Context(), r)
	return v, err
}

// shortDuration writes 12h0m0s as 12h and 20m0s as 20m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (s *Service) settingsPage(c *web.Ctx) error {
	o, err := c.Org(authz.RealmRead)
	if err != nil {
		return err
	}
	v, err := s.settingsData(c, o)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "org_realm", o.Name+": end-user realm", v)
}

func (s *Service) settingsSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.RealmWrite)
	if err != nil {
		return err
	}
	f := c.R.PostForm
	signup := f.Get("allow_signup") == "on"
	in := Settings{DisplayName: f.Get("display_name"), AllowSignup: &signup, SMTPHost: strings.TrimSpace(f.Get("smtp_host")),
		SMTPFrom: f.Get("smtp_from"), SMTPTLS: f.Get("smtp_tls"), SMTPUser: f.Get("smtp_username")}
	// The user name field is always sent: emptying it also removes a
	// stored password.
	empty := ""
	if pw := f.Get("smtp_password"); pw != "" {
		in.SMTPPassword = &pw
	} else if cur, gerr := s.Get(c.R.Context(), o.ID); in.SMTPUser == "" && gerr == nil && cur.SMTP.HasPassword {
		in.SMTPPassword = &empty
	}
	if p := f.Get("smtp_port"); p != "" {
		if in.SMTPPort, err = strconv.Atoi(p); err != nil || in.SMTPPort == 0 {
			err = apperr.InvalidField("smtp.port", "smtp port must be between 1 and 65535")
		}
	}
	if err == nil {
		in.SessionIdle, err = parseDuration("session_idle", f.Get("session_idle"))
	}
	if err == nil {
		in.SessionAbsolute, err = parseDuration("session_absolute", f.Get("session_absolute"))
	}
	if err == nil {
		_, err = s.Set(c.R.Context(), o, in)
	}
	if err != nil {
		v, verr := s.settingsData(c, o)
		if verr != nil {
			return verr
		}
		return c.RenderForm("org_realm", o.Name+": end-user realm", v, err)
	}
	return c.Redirect("/orgs/"+o.Name+"/realm", "Realm saved.")
}

func (s *Service) deleteSubmit(c *web.Ctx) error {
	o, err := c.Org(authz.RealmWrite)
	if err != nil {
		return err
	}
	if _, err := s.Delete(c.R.Context(), o); err != nil {
		return err
	}
	return c.Redirect("/orgs/"+o.Name+"/realm", "Realm removed with its users.")
}
