package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/httpmw"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// pendingLogin is the state of a sign-in between its password and its
// second factor, kept (server-side) on the pending session.
type pendingLogin struct {
	Next      string `json:"next"`
	MustEnrol bool   `json:"must_enrol,omitempty"`
	// WebAuthn holds the challenge of a security-key ceremony in progress.
	WebAuthn json.RawMessage `json:"webauthn,omitempty"`
	// Via names how the first factor was proven ("password", or an
	// upstream identity provider).
	Via string `json:"via,omitempty"`
}

func decodePending(s identity.Session) pendingLogin {
	var p pendingLogin
	_ = json.Unmarshal([]byte(s.Pending), &p)
	p.Next = SafeNext(p.Next)
	return p
}

// loginView is the data of the sign-in pages.
type loginView struct {
	Username  string
	Next      string
	Factors   []string
	MustEnrol bool
	TOTP      *identity.TOTPEnrolment
	Codes     []string
	Sources   []LoginSource
}

// LoginSource is an extra way to sign in offered on the sign-in page (an
// upstream identity provider).
type LoginSource struct {
	Label string
	URL   string
}

func (s *Server) loginPage(c *Ctx) error {
	next := SafeNext(c.R.URL.Query().Get("next"))
	if c.P.Subject.Authenticated() && c.R.URL.Query().Get("prompt") != "login" {
		return c.Redirect(next, "")
	}
	return c.Render(http.StatusOK, "login", "Sign in", loginView{Next: next, Sources: s.loginSources(c)})
}

func (s *Server) loginSources(c *Ctx) []LoginSource {
	if s.sources == nil {
		return nil
	}
	return s.sources(c.R.Context(), SafeNext(c.R.URL.Query().Get("next")))
}

func (s *Server) loginSubmit(c *Ctx) error {
	ctx := c.R.Context()
	username := strings.TrimSpace(c.R.PostFormValue("username"))
	next := SafeNext(c.R.PostFormValue("next"))
	lv := loginView{Username: username, Next: next, Sources: s.loginSources(c)}
	res, err := s.ids.PasswordLogin(ctx, username, c.R.PostFormValue("password"), httpmw.ClientIP(c.R))
	if err != nil {
		return c.RenderForm("login", "Sign in", lv, err)
	}
	return s.firstFactorDone(c, res, []string{identity.AMRPassword}, next, "password")
}

// firstFactorDone continues a sign-in whose first factor (a password, or an
// upstream identity provider) was proven: straight in, or on to the second
// factor or its enrolment.
func (s *Server) firstFactorDone(c *Ctx, res identity.LoginResult, amr []string, next, via string) error {
	ctx := c.R.Context()
	ip, ua := httpmw.ClientIP(c.R), c.R.UserAgent()
	if !res.NeedSecondFactor() {
		sess, err := s.ids.StartSession(ctx, res.User.ID, identity.SessionActive, amr, ip, ua)
		if err != nil {
			return err
		}
		if err := s.ids.LoginSucceeded(ctx, res.User, amr, "web:"+via); err != nil {
			return err
		}
		s.setSessionCookie(c.W, sess.Raw, sess.ExpiresAt)
		return c.Redirect(next, "")
	}
	sess, err := s.ids.StartSession(ctx, res.User.ID, identity.SessionPending, amr, ip, ua)
	if err != nil {
		return err
	}
	p, _ := json.Marshal(pendingLogin{Next: next, MustEnrol: res.MustEnrol, Via: via})
	if err := s.ids.SetSessionPending(ctx, sess, string(p)); err != nil {
		return err
	}
	s.setSessionCookie(c.W, sess.Raw, sess.ExpiresAt)
	if res.MustEnrol {
		return c.Redirect("/login/enrol", "")
	}
	return c.Redirect("/login/verify", "")
}

// FirstFactorDone continues a sign-in whose first factor another component
// proved (an upstream identity provider, named in via): the user is signed
// in at once, or goes on to the second factor or its enrolment that res
// asks for. amr lists the methods already proven.
func (c *Ctx) FirstFactorDone(res identity.LoginResult, amr []string, next, via string) error {
	return c.s.firstFactorDone(c, res, amr, SafeNext(next), via)
}

// LoginFailed shows the sign-in page with err's user-safe message, for a
// sign-in through another login source that failed. Internal errors are
// logged and shown only as a request id.
func (c *Ctx) LoginFailed(next string, err error) error {
	k := apperr.KindOf(err)
	msg := apperr.Message(err)
	if k == apperr.Internal {
		c.s.log.ErrorContext(c.R.Context(), "sign-in failed", logging.KeyErr, err)
		msg = "Sign-in failed on our side. Quote request id " + reqinfo.From(c.R.Context()).RequestID + " to your administrator."
	}
	lv := loginView{Next: SafeNext(next), Sources: c.s.loginSources(c)}
	return c.render(statusOf(k), "login", view{Title: "Sign in", Error: msg, Data: lv})
}

// pending returns the mid-sign-in session and user of the request, or an
// error sending the browser back to the start.
func (s *Server) pending(c *Ctx) (identity.Session, identity.User, pendingLogin, error) {
	ck, err := c.R.Cookie(authn.SessionCookie)
	if err != nil {
		return identity.Session{}, identity.User{}, pendingLogin{}, apperr.E(apperr.Unauthenticated, "sign in first")
	}
	sess, u, err := s.ids.Session(c.R.Context(), ck.Value)
	if err != nil || sess.State != identity.SessionPending {
		return identity.Session{}, identity.User{}, pendingLogin{}, apperr.E(apperr.Unauthenticated, "your sign-in expired; start again")
	}
	return sess, u, decodePending(sess), nil
}

func (s *Server) verifyPage(c *Ctx) error {
	_, u, p, err := s.pending(c)
	if err != nil {
		return err
	}
	if p.MustEnrol {
		return c.Redirect("/login/enrol", "")
	}
	res, err := s.ids.SecondFactorsFor(c.R.Context(), u)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "login_verify", "Two-factor authentication", loginView{Username: u.Username, Factors: res.Factors, Next: p.Next})
}

func (s *Server) verifySubmit(c *Ctx) error {
	sess, u, p, err := s.pending(c)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	amr, err := s.ids.VerifyOneTimeCode(ctx, u, c.R.PostFormValue("code"), httpmw.ClientIP(c.R))
	if err != nil {
		res, ferr := s.ids.SecondFactorsFor(ctx, u)
		if ferr != nil {
			return ferr
		}
		return c.RenderForm("login_verify", "Two-factor authentication", loginView{Username: u.Username, Factors: res.Factors, Next: p.Next}, err)
	}
	return s.completeLogin(c, sess, u, p, amr)
}

// completeLogin activates a pending session after its second factor.
func (s *Server) completeLogin(c *Ctx, sess identity.Session, u identity.User, p pendingLogin, amr ...string) error {
	if err := s.activateLogin(c, sess, u, p, amr...); err != nil {
		return err
	}
	return c.Redirect(p.Next, "")
}

// activateLogin activates a pending session after its second factor and
// sets the new session cookie.
func (s *Server) activateLogin(c *Ctx, sess identity.Session, u identity.User, p pendingLogin, amr ...string) error {
	ctx := c.R.Context()
	active, err := s.ids.ActivateSession(ctx, sess, amr...)
	if err != nil {
		return err
	}
	via := p.Via
	if via == "" {
		via = "password"
	}
	if err := s.ids.LoginSucceeded(ctx, u, active.AMR, "web:"+via); err != nil {
		return err
	}
	s.setSessionCookie(c.W, active.Raw, active.ExpiresAt)
	return nil
}

// enrolPage is where a user whose org requires a second factor enrols one
// before the sign-in completes.
func (s *Server) enrolPage(c *Ctx) error {
	_, u, p, err := s.pending(c)
	if err != nil {
		return err
	}
	if !p.MustEnrol {
		return c.Redirect("/login/verify", "")
	}
	en, err := s.ids.BeginTOTP(c.R.Context(), u.ID, s.issuer())
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "login_enrol", "Set up two-factor authentication", loginView{Username: u.Username, MustEnrol: true, TOTP: &en, Next: p.Next})
}

func (s *Server) enrolSubmit(c *Ctx) error {
	sess, u, p, err := s.pending(c)
	if err != nil {
		return err
	}
	if !p.MustEnrol {
		return c.Redirect("/login/verify", "")
	}
	ctx := c.R.Context()
	codes, err := s.ids.ConfirmTOTP(ctx, u.ID, c.R.PostFormValue("code"))
	if err != nil {
		en, berr := s.ids.BeginTOTP(ctx, u.ID, s.issuer())
		if berr != nil {
			return berr
		}
		return c.RenderForm("login_enrol", "Set up two-factor authentication", loginView{Username: u.Username, MustEnrol: true, TOTP: &en, Next: p.Next}, err)
	}
	active, err := s.ids.ActivateSession(ctx, sess, identity.AMROTP)
	if err != nil {
		return err
	}
	if err := s.ids.LoginSucceeded(ctx, u, active.AMR, "web:enrol"); err != nil {
		return err
	}
	s.setSessionCookie(c.W, active.Raw, active.ExpiresAt)
	c.P = &authn.Principal{User: u, Session: &active}
	if sub, err := s.ids.Subject(ctx, u, nil, authn.ViaSession); err == nil {
		c.P.Subject = sub
	}
	return c.Render(http.StatusOK, "recovery_codes", "Save your recovery codes", recoveryView{Codes: codes, Next: p.Next})
}

func (s *Server) issuer() string {
	return "Rampart (" + strings.TrimPrefix(strings.TrimPrefix(s.publicURL, "https://"), "http://") + ")"
}

func (s *Server) logout(c *Ctx) error {
	if c.P.Session != nil {
		if err := s.ids.EndSession(c.R.Context(), *c.P.Session); err != nil {
			return err
		}
	} else if sess, ok := s.pendingSession(c.R); ok {
		_ = s.ids.EndSession(c.R.Context(), sess)
	}
	s.setSessionCookie(c.W, "", identity.Session{}.ExpiresAt)
	return c.Redirect("/login", "You are signed out.")
}
