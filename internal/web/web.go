// Package web is Rampart's browser interface: server-rendered HTML pages
// (html/template), a small stylesheet and one script for WebAuthn, no build
// step. Pages authorise through authz exactly like the API does.
//
// Every state-changing form carries a CSRF token: the session's own token
// once signed in, or a random token in a cookie (double submit) on the
// sign-in pages. Cross-origin form posts are also refused by Fetch metadata
// (net/http's CrossOriginProtection).
//
// Components add pages by contributing Page routes and navigation entries
// (NavItem); the layout shows the entries the signed-in user may use.
package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// csrfCookie holds the pre-session CSRF token (double submit).
const csrfCookie = "rampart_csrf"

// Deps are the web UI's collaborators.
type Deps struct {
	IDs    *identity.Service
	Audit  *audit.Log
	Logger *slog.Logger
	// PublicURL is where users reach Rampart (for links and the TOTP issuer).
	PublicURL string
	// Secure marks cookies Secure (TLS).
	Secure bool
	// MaxBody caps form bodies.
	MaxBody int64
	// Pages and Nav contributed by other components.
	Pages []Page
	Nav   []NavItem
	// Templates contributed by other components: NAME.html files, each
	// defining "content" (and optionally "scripts"), rendered in the layout.
	Templates []fs.FS
	// LoginSources lists extra sign-in options (upstream identity
	// providers) for the sign-in page; next is where to go afterwards.
	LoginSources func(ctx context.Context, next string) []LoginSource
}

// Server serves the web UI.
type Server struct {
	ids       *identity.Service
	audit     *audit.Log
	log       *slog.Logger
	publicURL string
	secure    bool
	maxBody   int64
	pages     []Page
	nav       []NavItem
	tmpl      map[string]*template.Template
	static    http.Handler
	cop       *http.CrossOriginProtection
	sources   func(ctx context.Context, next string) []LoginSource
	// securityKeys lists the signed-in user's WebAuthn credentials for the
	// account page (set by the WebAuthn pages).
	securityKeys func(c *Ctx) ([]SecurityKey, error)
}

// Page is one UI route.
type Page struct {
	Method string // GET or POST
	Path   string
	// Anonymous pages are served without a signed-in user (sign-in pages).
	Anonymous bool
	Handler   func(c *Ctx) error
}

// NavItem is an entry of the navigation bar.
type NavItem struct {
	Label string
	Path  string
	Order int
	// Show decides whether the signed-in subject sees the entry.
	Show func(s authz.Subject) bool
}

// New returns the web UI.
func New(d Deps) (*Server, error) {
	if d.IDs == nil || d.Audit == nil || d.Logger == nil {
		return nil, errors.New("web: IDs, Audit and Logger are required")
	}
	if d.MaxBody <= 0 {
		d.MaxBody = 1 << 20
	}
	st, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s := &Server{ids: d.IDs, audit: d.Audit, log: d.Logger.With("component", "web"), publicURL: d.PublicURL,
		secure: d.Secure, maxBody: d.MaxBody, static: http.StripPrefix("/static/", http.FileServerFS(st)),
		cop: http.NewCrossOriginProtection(), sources: d.LoginSources}
	s.securityKeys = s.securityKeyList
	if err := s.parseTemplates(d.Templates); err != nil {
		return nil, err
	}
	s.pages = append(s.corePages(), d.Pages...)
	s.nav = append(s.coreNav(), d.Nav...)
	sort.SliceStable(s.nav, func(i, j int) bool { return s.nav[i].Order < s.nav[j].Order })
	return s, nil
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join": strings.Join,
	"dataURI": func(mime string, b []byte) template.URL {
		return template.URL("data:" + mime + ";base64," + base64Std(b))
	},
}

func (s *Server) parseTemplates(extra []fs.FS) error {
	layout, err := fs.ReadFile(templateFS, "templates/layout.html")
	if err != nil {
		return err
	}
	// Partials (_NAME.html) are shared by every page.
	partials, err := fs.Glob(templateFS, "templates/_*.html")
	if err != nil {
		return err
	}
	base := template.New("layout").Funcs(funcs)
	if _, err := base.Parse(string(layout)); err != nil {
		return fmt.Errorf("parse layout: %w", err)
	}
	for _, p := range partials {
		body, err := fs.ReadFile(templateFS, p)
		if err != nil {
			return err
		}
		if _, err := base.New(p).Parse(string(body)); err != nil {
			return fmt.Errorf("parse %s: %w", p, err)
		}
	}
	s.tmpl = map[string]*template.Template{}
	add := func(fsys fs.FS, dir string) error {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if name == "layout.html" || strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".html") {
				continue
			}
			body, err := fs.ReadFile(fsys, path.Join(dir, name))
			if err != nil {
				return err
			}
			t, err := base.Clone()
			if err != nil {
				return err
			}
			if _, err := t.New(name).Parse(string(body)); err != nil {
				return fmt.Errorf("parse %s: %w", name, err)
			}
			s.tmpl[strings.TrimSuffix(name, ".html")] = t
		}
		return nil
	}
	if err := add(templateFS, "templates"); err != nil {
		return err
	}
	for _, fsys := range extra {
		if err := add(fsys, "."); err != nil {
			return err
		}
	}
	return nil
}

// Register adds every page to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("GET /static/", s.static)
	for _, p := range s.pages {
		mux.Handle(p.Method+" "+p.Path, s.adapt(p))
	}
}

// Ctx is one page request.
type Ctx struct {
	W http.ResponseWriter
	R *http.Request
	P *authn.Principal
	s *Server
	// Data is merged into the template data.
	flash string
}

// IDs returns the identity service.
func (c *Ctx) IDs() *identity.Service { return c.s.ids }

func (s *Server) adapt(p Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c := &Ctx{W: w, R: r, P: authn.From(r.Context()), s: s}
		err := s.serve(c, p)
		if err != nil {
			s.fail(c, err)
		}
	})
}

func (s *Server) serve(c *Ctx, p Page) error {
	r := c.R
	if r.Method == http.MethodPost {
		if err := s.cop.Check(r); err != nil {
			return apperr.E(apperr.Forbidden, "cross-origin form submission refused")
		}
		r.Body = http.MaxBytesReader(c.W, r.Body, s.maxBody)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return apperr.E(apperr.TooLarge, "form too large")
			}
			return apperr.E(apperr.Invalid, "malformed form")
		}
		if !s.checkCSRF(c) {
			return apperr.E(apperr.Forbidden, "the form expired or did not come from this site (CSRF check failed); reload the page and try again")
		}
	}
	if !p.Anonymous && !c.P.Subject.Authenticated() {
		return apperr.E(apperr.Unauthenticated, "sign in first")
	}
	return p.Handler(c)
}

// CSRFToken returns the token forms must carry: the session's when signed
// in (or mid-sign-in), else a per-browser random cookie value.
func (c *Ctx) CSRFToken() string {
	if c.P.Session != nil {
		return c.P.Session.CSRF
	}
	if sess, ok := c.s.pendingSession(c.R); ok {
		return sess.CSRF
	}
	if ck, err := c.R.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	tok, _ := randomToken()
	http.SetCookie(c.W, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, Secure: c.s.secure,
		SameSite: http.SameSiteStrictMode})
	// Make it visible to checkCSRF within this same request, too.
	c.R.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	return tok
}

func (s *Server) checkCSRF(c *Ctx) bool {
	got := c.R.PostFormValue("csrf_token")
	if got == "" {
		got = c.R.Header.Get("X-CSRF-Token")
	}
	if got == "" {
		return false
	}
	var want string
	switch {
	case c.P.Session != nil:
		want = c.P.Session.CSRF
	default:
		if sess, ok := s.pendingSession(c.R); ok {
			want = sess.CSRF
		} else if ck, err := c.R.Cookie(csrfCookie); err == nil {
			want = ck.Value
		}
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// pendingSession returns a mid-sign-in session from the cookie, if any.
func (s *Server) pendingSession(r *http.Request) (identity.Session, bool) {
	ck, err := r.Cookie(authn.SessionCookie)
	if err != nil {
		return identity.Session{}, false
	}
	sess, _, err := s.ids.Session(r.Context(), ck.Value)
	if err != nil || sess.State != identity.SessionPending {
		return identity.Session{}, false
	}
	return sess, true
}

// view is what every template receives.
type view struct {
	Title     string
	User      *identity.User
	Nav       []NavItem
	CSRF      string
	Flash     string
	Error     string
	RequestID string
	Data      any
	Path      string
}

// Render writes a page.
func (c *Ctx) Render(status int, name, title string, data any) error {
	flash := c.flash
	if f := c.R.URL.Query().Get("flash"); f != "" && flash == "" && len(f) < 200 {
		flash = f
	}
	return c.render(status, name, view{Title: title, Flash: flash, Data: data})
}

// RenderForm re-renders a form page after a validation error, showing the
// error's user-safe message. Internal errors go to the error page instead.
func (c *Ctx) RenderForm(name, title string, data any, err error) error {
	k := apperr.KindOf(err)
	if k == apperr.Internal || k == apperr.Unavailable {
		return err
	}
	return c.render(statusOf(k), name, view{Title: title, Error: apperr.Message(err), Data: data})
}

func (c *Ctx) render(status int, name string, v view) error {
	t, ok := c.s.tmpl[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	v.CSRF, v.Path = c.CSRFToken(), c.R.URL.Path
	v.RequestID = reqinfo.From(c.R.Context()).RequestID
	if c.P.Subject.Authenticated() {
		u := c.P.User
		v.User = &u
		for _, n := range c.s.nav {
			if n.Show == nil || n.Show(c.P.Subject) {
				v.Nav = append(v.Nav, n)
			}
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	c.W.Header().Set("Content-Type", "text/html; charset=utf-8")
	c.W.WriteHeader(status)
	_, err := c.W.Write(buf.Bytes())
	return err
}

func statusOf(k apperr.Kind) int {
	switch k {
	case apperr.Invalid:
		return http.StatusUnprocessableEntity
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.TooManyRequests:
		return http.StatusTooManyRequests
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Redirect sends the browser to a local path, with an optional message.
func (c *Ctx) Redirect(path, flash string) error {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "flash=" + url.QueryEscape(flash)
	}
	http.Redirect(c.W, c.R, path, http.StatusSeeOther)
	return nil
}

// Check authorises the signed-in subject.
func (c *Ctx) Check(a authz.Action, r authz.Resource) error {
	return authz.Check(c.P.Subject, a, r)
}

// Org loads the org named by the page's {org} path value and checks a on
// it: the start of every org page.
func (c *Ctx) Org(a authz.Action) (identity.Org, error) {
	o, err := c.s.ids.Org(c.R.Context(), c.R.PathValue("org"))
	if err != nil {
		return o, err
	}
	return o, c.Check(a, o.Resource())
}

// StaticFiles serves the file named by the page's {file} path value from
// dir of fsys (a component's embedded script and stylesheet: the strict
// CSP allows scripts and styles from Rampart itself only, never inline).
// Only .js and .css files in dir itself are served.
func StaticFiles(fsys fs.FS, dir string) func(*Ctx) error {
	return func(c *Ctx) error {
		name := c.R.PathValue("file")
		ctype := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(name)]
		if ctype == "" || strings.Contains(name, "/") {
			return apperr.E(apperr.NotFound, "no such file")
		}
		body, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return apperr.E(apperr.NotFound, "no such file")
		}
		c.W.Header().Set("Content-Type", ctype)
		c.W.Header().Set("Cache-Control", "public, max-age=300")
		_, err = c.W.Write(body)
		return err
	}
}

func (s *Server) fail(c *Ctx, err error) {
	k := apperr.KindOf(err)
	if k == apperr.Unauthenticated && c.R.Method == http.MethodGet {
		http.Redirect(c.W, c.R, "/login?next="+url.QueryEscape(c.R.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if k == apperr.Internal || k == apperr.Unavailable {
		s.log.ErrorContext(c.R.Context(), "page failed", "err", err, "path", c.R.URL.Path)
	}
	msg := apperr.Message(err)
	if k == apperr.Internal {
		msg = "Something went wrong on our side. Quote request id " + reqinfo.From(c.R.Context()).RequestID + " to your administrator."
	}
	if rerr := c.Render(statusOf(k), "error", http.StatusText(statusOf(k)), msg); rerr != nil {
		s.log.ErrorContext(c.R.Context(), "render error page", "err", rerr)
		http.Error(c.W, msg, statusOf(k))
	}
}

// SafeNext returns next if it is a local path, else "/".
func SafeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

// setSessionCookie stores the session cookie; an empty value deletes it.
func (s *Server) setSessionCookie(w http.ResponseWriter, raw string, expires time.Time) {
	c := &http.Cookie{Name: authn.SessionCookie, Value: raw, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode}
	if raw == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}
