package realm

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// AuthPrefix is where the realm's pages live on every gateway host that
// requires sign-in.
const AuthPrefix = gateway.AuthPrefix

// Cookie names. With TLS they carry the __Host- prefix, which browsers
// accept only from a secure origin, for the exact host, with path / —
// so a sibling host cannot plant them.
const (
	// Every cookie of the realm is named rampart_realm…: the gateway
	// strips those from requests it forwards to backends.
	sessionCookie = "rampart_realm"
	csrfCookie    = "rampart_realm_csrf"
	maxFormBytes  = 16 << 10
	maxNext       = 2048
)

// pageCSP is the policy of every realm page: nothing inline, nothing from
// elsewhere, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/pages.html templates/style.css templates/webauthn.js
var templateFS embed.FS

var (
	pages     = template.Must(template.ParseFS(templateFS, "templates/pages.html"))
	style, _  = templateFS.ReadFile("templates/style.css")   // embedded: cannot fail
	script, _ = templateFS.ReadFile("templates/webauthn.js") // embedded: cannot fail
)

// Authenticator signs end users in on the gateway's routes whose auth is
// "required", with the realm of the route's org.
type Authenticator struct{ s *Service }

var _ gateway.Authenticator = Authenticator{}

// Authenticator returns the gateway.Authenticator of the realms.
func (s *Service) Authenticator() Authenticator { return Authenticator{s} }

// page is what a template shows.
type page struct {
	Realm, Title, Error, Notice, RequestID string
	CSRF, Next, Email, Token               string
	AllowSignup                            bool
	QR                                     template.URL
	Secret                                 string
	Codes                                  []string
	// KeyOptions are WebAuthn options for the page's script; KeyKind
	// is register or login.
	KeyOptions, KeyKind string
}

// Authenticate implements gateway.Authenticator: requests under
// AuthPrefix are the realm's own pages; others pass with the signed-in
// user's JWT, or are sent to the sign-in page (browsers) or refused with
// 401 (other clients).
func (a Authenticator) Authenticate(w http.ResponseWriter, r *http.Request, route gateway.RouteInfo) (gateway.User, bool) {
	s := a.s
	ctx := r.Context()
	host := requestHost(r)
	rlm, err := s.cached(ctx, route.OrgID)
	if err != nil {
		status := http.StatusServiceUnavailable
		msg := "this site requires sign-in, but its owners have not set up an end-user realm"
		if !apperr.Is(err, apperr.NotFound) {
			s.log.ErrorContext(ctx, "load realm", logging.KeyErr, err)
			status, msg = http.StatusInternalServerError, "internal error; quote the request id to the site's administrators"
		}
		s.render(w, r, status, "error", page{Realm: host, Title: "Unavailable", Error: msg})
		return gateway.User{}, true
	}
	if strings.HasPrefix(r.URL.Path, AuthPrefix) {
		s.serveAuth(w, r, rlm, host)
		return gateway.User{}, true
	}
	if c, err := r.Cookie(cookieName(r, sessionCookie)); err == nil {
		ses, err := s.Session(ctx, rlm, c.Value, host)
		// A route that names an external provider takes only its
		// sign-ins; other routes only the realm's own users.
		if err == nil && ses.Stage == StageFull && ses.Provider == route.AuthProvider {
			tok, err := s.token(ctx, rlm, ses, hashToken(c.Value), host)
			if apperr.Is(err, apperr.NotFound) {
				// The key was rotated (by another replica) since the
				// realm was cached: sign with the new one.
				s.forget(rlm.OrgID)
				if rlm, err = s.cached(ctx, route.OrgID); err == nil {
					tok, err = s.token(ctx, rlm, ses, hashToken(c.Value), host)
				}
			}
			if err != nil {
				s.log.ErrorContext(ctx, "mint realm token", logging.KeyErr, err)
				s.render(w, r, http.StatusInternalServerError, "error", page{Realm: rlm.DisplayName, Title: "Error",
					Error: "internal error; quote the request id to the site's administrators"})
				return gateway.User{}, true
			}
			return gateway.User{Subject: "realm:" + strconv.FormatInt(rlm.OrgID, 10) + ":" + ses.sub(), Name: ses.Email, Token: tok}, false
		}
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") {
		to := AuthPrefix + "signin?next=" + url.QueryEscape(r.URL.RequestURI())
		if route.AuthProvider != "" {
			to = AuthPrefix + "oidc/start?provider=" + url.QueryEscape(route.AuthProvider) + "&next=" + url.QueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return gateway.User{}, true
	}
	w.Header().Set("WWW-Authenticate", `Cookie realm="`+strings.ReplaceAll(rlm.DisplayName, `"`, "'")+`"`)
	writeProblem(w, r, http.StatusUnauthorized, "sign in first: "+AuthPrefix+"signin")
	return gateway.User{}, true
}

// serveAuth serves the pages under AuthPrefix.
func (s *Service) serveAuth(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	name := strings.TrimPrefix(r.URL.Path, AuthPrefix)
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case name == "style.css" && get:
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(style)
		return
	case name == "webauthn.js" && get:
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(script)
		return
	case name == "jwks.json" && get:
		set, err := s.JWKS(r.Context(), rlm)
		if err != nil {
			s.fail(w, r, rlm, err)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(set)
		return
	}
	switch {
	case name == "oidc/start" && get:
		s.oidcStart(w, r, rlm, host)
		return
	case name == "oidc/callback" && get:
		s.oidcCallback(w, r, rlm, host)
		return
	}
	h := map[string]func(http.ResponseWriter, *http.Request, Realm, string){
		"signin": s.signin, "register": s.register, "verify": s.verify, "mfa": s.mfa, "signout": s.signout,
		"webauthn/register": s.keySubmit, "webauthn/login": s.keySubmit, "forgot": s.forgot, "reset": s.reset,
	}[name]
	if h == nil || !get && r.Method != http.MethodPost {
		if h != nil {
			w.Header().Set("Allow", "GET, POST")
			s.render(w, r, http.StatusMethodNotAllowed, "error", page{Realm: rlm.DisplayName, Title: "Not allowed", Error: "method not allowed"})
			return
		}
		s.render(w, r, http.StatusNotFound, "error", page{Realm: rlm.DisplayName, Title: "Not found", Error: "no such page"})
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.render(w, r, http.StatusBadRequest, "error", page{Realm: rlm.DisplayName, Title: "Bad request", Error: "the form could not be read"})
			return
		}
		if !s.checkCSRF(r) {
			s.render(w, r, http.StatusForbidden, "error", page{Realm: rlm.DisplayName, Title: "Form expired",
				Error: "the form expired or did not come from this site; go back, reload the page and try again"})
			return
		}
	}
	h(w, r, rlm, host)
}

func (s *Service) signin(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	p := s.newPage(w, r, rlm, "Sign in")
	if r.Method != http.MethodPost {
		s.render(w, r, http.StatusOK, "signin", p)
		return
	}
	p.Email = limit(r.PostForm.Get("email"), maxEmail)
	u, err := s.Login(r.Context(), rlm, r.PostForm.Get("email"), r.PostForm.Get("password"))
	if err != nil {
		s.formError(w, r, rlm, "signin", p, err)
		return
	}
	stage := StageMFA
	if !u.TOTP {
		if has, err := s.HasKeys(r.Context(), u); err != nil {
			s.fail(w, r, rlm, err)
			return
		} else if !has {
			stage = StageEnrol
		}
	}
	tok, err := s.NewSession(r.Context(), u, host, stage)
	if err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	s.setCookie(w, r, sessionCookie, tok, 0)
	http.Redirect(w, r, AuthPrefix+"mfa?next="+url.QueryEscape(p.Next), http.StatusSeeOther)
}

func (s *Service) register(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	p := s.newPage(w, r, rlm, "Register")
	if !rlm.AllowSignup {
		p.Error = "this site does not accept new registrations"
		s.render(w, r, http.StatusForbidden, "error", p)
		return
	}
	if r.Method != http.MethodPost {
		s.render(w, r, http.StatusOK, "register", p)
		return
	}
	p.Email = limit(r.PostForm.Get("email"), maxEmail)
	if _, err := s.Register(r.Context(), rlm, baseURL(r, host), r.PostForm.Get("email"), r.PostForm.Get("password")); err != nil {
		s.formError(w, r, rlm, "register", p, err)
		return
	}
	p.Title = "Check your inbox"
	s.render(w, r, http.StatusOK, "registered", p)
}

func (s *Service) forgot(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	p := s.newPage(w, r, rlm, "Forgot your password?")
	if r.Method != http.MethodPost {
		s.render(w, r, http.StatusOK, "forgot", p)
		return
	}
	p.Email = limit(r.PostForm.Get("email"), maxEmail)
	if err := s.RequestReset(r.Context(), rlm, baseURL(r, host), r.PostForm.Get("email")); err != nil {
		s.formError(w, r, rlm, "forgot", p, err)
		return
	}
	p.Title = "Check your inbox"
	s.render(w, r, http.StatusOK, "reset-sent", p)
}

func (s *Service) reset(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	p := s.newPage(w, r, rlm, "Choose a new password")
	if r.Method != http.MethodPost {
		p.Token = limit(r.URL.Query().Get("token"), 128)
		s.render(w, r, http.StatusOK, "reset", p)
		return
	}
	p.Token = limit(r.PostForm.Get("token"), 128)
	u, err := s.ResetPassword(r.Context(), rlm, r.PostForm.Get("token"), r.PostForm.Get("password"))
	if err != nil {
		s.formError(w, r, rlm, "reset", p, err)
		return
	}
	p.Title, p.Email = "Password changed", u.Email
	s.render(w, r, http.StatusOK, "password-changed", p)
}

func (s *Service) verify(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	p := s.newPage(w, r, rlm, "Confirm your e-mail address")
	if r.Method != http.MethodPost {
		// A GET changes nothing: mail scanners that fetch links must not
		// use the token up.
		p.Token = limit(r.URL.Query().Get("token"), 128)
		s.render(w, r, http.StatusOK, "verify", p)
		return
	}
	u, err := s.Verify(r.Context(), rlm, r.PostForm.Get("token"), r.PostForm.Get("password"))
	if apperr.Is(err, apperr.Invalid) && apperr.FieldOf(err) == "password" || apperr.Is(err, apperr.TooManyRequests) {
		// The link is good (locked for a while, perhaps): ask again on
		// the same form.
		p.Token = limit(r.PostForm.Get("token"), 128)
		s.formError(w, r, rlm, "verify", p, err)
		return
	}
	if err != nil {
		s.formError(w, r, rlm, "error", p, err)
		return
	}
	p.Title, p.Email = "E-mail address confirmed", u.Email
	s.render(w, r, http.StatusOK, "verified", p)
}

func (s *Service) mfa(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	ctx := r.Context()
	p := s.newPage(w, r, rlm, "Two-factor authentication")
	c, err := r.Cookie(cookieName(r, sessionCookie))
	var ses Session
	if err == nil {
		ses, err = s.Session(ctx, rlm, c.Value, host)
	}
	if err != nil || ses.Stage == StageFull {
		http.Redirect(w, r, AuthPrefix+"signin?next="+url.QueryEscape(p.Next), http.StatusSeeOther)
		return
	}
	if ses.Stage == StageEnrol {
		p.Title = "Set up two-factor authentication"
		if r.Method == http.MethodPost {
			codes, err := s.ConfirmTOTP(ctx, rlm, ses.User, r.PostForm.Get("code"))
			if err == nil {
				tok, err := s.Complete(ctx, c.Value, "pwd otp")
				if err != nil {
					s.fail(w, r, rlm, err)
					return
				}
				s.setCookie(w, r, sessionCookie, tok, 0)
				p.Title = "Recovery codes"
				for _, code := range codes {
					p.Codes = append(p.Codes, FormatRecovery(code))
				}
				s.render(w, r, http.StatusOK, "recovery", p)
				return
			}
			if !apperr.Is(err, apperr.Invalid) {
				s.formError(w, r, rlm, "error", p, err)
				return
			}
			p.Error = apperr.Message(err)
		}
		enr, err := s.BeginTOTP(ctx, rlm, ses.User)
		if err != nil {
			s.fail(w, r, rlm, err)
			return
		}
		s.keyOptions(w, r, rlm, &p, ses.User, c.Value, host, "register")
		p.Secret = enr.Secret
		p.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(enr.QRCode))
		status := http.StatusOK
		if p.Error != "" {
			status = http.StatusBadRequest
		}
		s.render(w, r, status, "enrol", p)
		return
	}
	if has, err := s.HasKeys(ctx, ses.User); err != nil {
		s.fail(w, r, rlm, err)
		return
	} else if has && r.Method != http.MethodPost {
		s.keyOptions(w, r, rlm, &p, ses.User, c.Value, host, "login")
	}
	if r.Method != http.MethodPost {
		s.render(w, r, http.StatusOK, "mfa", p)
		return
	}
	method, err := s.SecondFactor(ctx, rlm, ses.User, r.PostForm.Get("code"))
	if err != nil {
		s.formError(w, r, rlm, "mfa", p, err)
		return
	}
	amr := "pwd otp"
	if method == "rec" {
		amr = "pwd otp rec"
	}
	tok, err := s.Complete(ctx, c.Value, amr)
	if err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	s.setCookie(w, r, sessionCookie, tok, 0)
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

// keyOptions puts WebAuthn options for kind (register or login) on the
// page; failing that, the page goes without the security key button.
func (s *Service) keyOptions(w http.ResponseWriter, r *http.Request, rlm Realm, p *page, u User, tok, host, kind string) {
	begin := s.BeginKeyRegistration
	if kind == "login" {
		begin = s.BeginKeyLogin
	}
	opts, err := begin(r.Context(), rlm, u, tok, host, baseURL(r, host))
	if err != nil {
		s.log.WarnContext(r.Context(), "security keys unavailable on this page", "host", host, logging.KeyErr, err)
		return
	}
	p.KeyOptions, p.KeyKind = string(opts), kind
}

// keySubmit takes the browser's answer to a security key ceremony:
// registration at enrolment (then the recovery codes), or the second
// factor.
func (s *Service) keySubmit(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	ctx := r.Context()
	p := s.newPage(w, r, rlm, "Two-factor authentication")
	c, err := r.Cookie(cookieName(r, sessionCookie))
	var ses Session
	if err == nil {
		ses, err = s.Session(ctx, rlm, c.Value, host)
	}
	if err != nil || ses.Stage == StageFull || r.Method != http.MethodPost {
		http.Redirect(w, r, AuthPrefix+"signin?next="+url.QueryEscape(p.Next), http.StatusSeeOther)
		return
	}
	response := []byte(r.PostForm.Get("credential"))
	origin := baseURL(r, host)
	if strings.HasSuffix(r.URL.Path, "/register") {
		if ses.Stage != StageEnrol {
			http.Redirect(w, r, AuthPrefix+"mfa?next="+url.QueryEscape(p.Next), http.StatusSeeOther)
			return
		}
		codes, err := s.FinishKeyRegistration(ctx, rlm, ses.User, c.Value, host, origin, response)
		if err != nil {
			s.formError(w, r, rlm, "error", p, err)
			return
		}
		tok, err := s.Complete(ctx, c.Value, "pwd hwk")
		if err != nil {
			s.fail(w, r, rlm, err)
			return
		}
		s.setCookie(w, r, sessionCookie, tok, 0)
		p.Title = "Recovery codes"
		for _, code := range codes {
			p.Codes = append(p.Codes, FormatRecovery(code))
		}
		s.render(w, r, http.StatusOK, "recovery", p)
		return
	}
	if ses.Stage != StageMFA {
		http.Redirect(w, r, AuthPrefix+"mfa?next="+url.QueryEscape(p.Next), http.StatusSeeOther)
		return
	}
	if err := s.FinishKeyLogin(ctx, rlm, ses.User, c.Value, host, origin, response); err != nil {
		s.formError(w, r, rlm, "error", p, err)
		return
	}
	tok, err := s.Complete(ctx, c.Value, "pwd hwk")
	if err != nil {
		s.fail(w, r, rlm, err)
		return
	}
	s.setCookie(w, r, sessionCookie, tok, 0)
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

func (s *Service) signout(w http.ResponseWriter, r *http.Request, rlm Realm, host string) {
	p := s.newPage(w, r, rlm, "Sign out")
	if r.Method != http.MethodPost {
		s.render(w, r, http.StatusOK, "signout", p)
		return
	}
	if c, err := r.Cookie(cookieName(r, sessionCookie)); err == nil {
		if err := s.EndSession(r.Context(), rlm, c.Value, host); err != nil {
			s.fail(w, r, rlm, err)
			return
		}
	}
	s.setCookie(w, r, sessionCookie, "", -1)
	p.Title = "Signed out"
	s.render(w, r, http.StatusOK, "signedout", p)
}

// newPage starts a page: the realm's name, the request id, the form's
// CSRF token (set as a cookie when the browser has none) and where to go
// after signing in.
func (s *Service) newPage(w http.ResponseWriter, r *http.Request, rlm Realm, title string) page {
	p := page{Realm: rlm.DisplayName, Title: title, AllowSignup: rlm.AllowSignup, Next: SafeNext(r.FormValue("next"))}
	if c, err := r.Cookie(cookieName(r, csrfCookie)); err == nil && validCSRF(c.Value) {
		p.CSRF = c.Value
	} else if tok, err := randomToken(32); err == nil {
		p.CSRF = tok
		s.setCookie(w, r, csrfCookie, tok, 0)
	}
	return p
}

// checkCSRF compares the form's csrf_token with the browser's CSRF cookie
// (double submit; the cookie is SameSite=Strict and, over TLS, __Host-).
func (s *Service) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(cookieName(r, csrfCookie))
	if err != nil || !validCSRF(c.Value) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf_token"))) == 1
}

func validCSRF(v string) bool { return len(v) == 43 }

// formError shows a refused form again with the reason.
func (s *Service) formError(w http.ResponseWriter, r *http.Request, rlm Realm, tmpl string, p page, err error) {
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Kind == apperr.Internal {
		s.fail(w, r, rlm, err)
		return
	}
	status := map[apperr.Kind]int{apperr.Invalid: 400, apperr.Unauthenticated: 401, apperr.Forbidden: 403, apperr.NotFound: 404,
		apperr.Conflict: 409, apperr.TooManyRequests: 429, apperr.Unavailable: 503, apperr.TooLarge: 413}[ae.Kind]
	if status == 0 {
		status = http.StatusBadRequest
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Seconds())+1))
	}
	p.Error = apperr.Message(err)
	s.render(w, r, status, tmpl, p)
}

// fail answers an unexpected error: logged, and only the request id shown.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, rlm Realm, err error) {
	s.log.ErrorContext(r.Context(), "realm page", logging.KeyErr, err)
	s.render(w, r, http.StatusInternalServerError, "error", page{Realm: rlm.DisplayName, Title: "Error",
		Error: "internal error; quote the request id to the site's administrators"})
}

// render writes a page with the realm pages' security headers.
func (s *Service) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.RequestID = reqinfo.From(r.Context()).RequestID
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, p); err != nil {
		s.log.ErrorContext(r.Context(), "render realm page", "page", name, logging.KeyErr, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// cookieName adds the __Host- prefix over TLS.
func cookieName(r *http.Request, name string) string {
	if r.TLS != nil {
		return "__Host-" + name
	}
	return name
}

// setCookie sets a host-only, HttpOnly cookie (Secure over TLS); maxAge
// -1 deletes it. The session cookie is SameSite=Lax so that following a
// link to the application keeps the user signed in; the CSRF cookie is
// Strict.
func (s *Service) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	same := http.SameSiteLaxMode
	if name == csrfCookie {
		same = http.SameSiteStrictMode
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: same})
}

// SafeNext returns where to send the browser after signing in: a path on
// this host (never another host, a scheme-relative URL or a realm page),
// "/" otherwise.
func SafeNext(next string) string {
	if next == "" || len(next) > maxNext || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, AuthPrefix) {
		return "/"
	}
	for _, c := range next {
		if c == '\\' || unicode.IsControl(c) || unicode.IsSpace(c) {
			return "/"
		}
	}
	return next
}

// requestHost is the request's host name in lower case, without port.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// baseURL is the scheme and host (with port) links in mails point at.
func baseURL(r *http.Request, host string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	hp := host
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" {
		hp = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	return scheme + "://" + hp
}

func limit(s string, n int) string { return truncate(s, n) }

// writeProblem answers an API client with RFC 9457 problem details.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status,
		"detail": detail, "request_id": reqinfo.From(r.Context()).RequestID})
}
