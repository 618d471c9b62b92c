// Package httpapi is Rampart's JSON API under /api/v1. Every route is listed
// in routes.go with the permission it needs; the adapter in this file
// authorises each request through authz before the handler runs, decodes
// bodies strictly, and writes every error as RFC 9457 problem details.
// The OpenAPI document at /api/v1/openapi.json is generated from the same
// table, so it cannot drift from what is served.
package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/problem"
)

// Prefix is the path prefix of the API.
const Prefix = "/api/v1"

// Deps are the API's collaborators.
type Deps struct {
	IDs    *identity.Service
	Audit  *audit.Log
	Logger *slog.Logger
	// MaxBody caps request bodies in bytes.
	MaxBody int64
	// Extra routes contributed by other components (OIDC clients, IdPs, …).
	Extra []Route
}

// Server serves the API.
type Server struct {
	ids     *identity.Service
	audit   *audit.Log
	log     *slog.Logger
	maxBody int64
	routes  []Route
}

// New returns the API server.
func New(d Deps) (*Server, error) {
	if d.IDs == nil || d.Audit == nil || d.Logger == nil {
		return nil, errors.New("httpapi: IDs, Audit and Logger are required")
	}
	if d.MaxBody <= 0 {
		d.MaxBody = 1 << 20
	}
	s := &Server{ids: d.IDs, audit: d.Audit, log: d.Logger.With("component", "httpapi"), maxBody: d.MaxBody}
	s.routes = append(s.coreRoutes(), d.Extra...)
	for _, rt := range s.routes {
		if rt.Action.Level == 0 {
			return nil, fmt.Errorf("httpapi: route %s %s has no action", rt.Method, rt.Path)
		}
	}
	return s, nil
}

// Routes returns every API route (for the OpenAPI document and tests).
func (s *Server) Routes() []Route { return s.routes }

// Register adds every route to mux.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes {
		mux.Handle(rt.Method+" "+rt.Path, s.adapt(rt))
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, s.log, apperr.E(apperr.NotFound, "no API route %s %s", r.Method, r.URL.Path))
	})
}

// Target says which resource a route's action is checked against.
type Target uint8

// Route targets.
const (
	OnSite    Target = iota // authz.Site
	OnSelf                  // the caller's own account
	OnOrg                   // the org named by {org}
	OnProject               // the project named by {org}/{project}
)

// Route is one API endpoint.
type Route struct {
	Method  string
	Path    string // ServeMux pattern with {wildcards}
	Summary string
	Tag     string
	Action  authz.Action
	On      Target
	// Request and Response are wire types for the OpenAPI document (nil
	// when there is no body).
	Request, Response any
	// Status is the success status (200 when zero).
	Status  int
	Handler func(c *Call) error
}

// Call is one request being served, with what the adapter resolved.
type Call struct {
	W       http.ResponseWriter
	R       *http.Request
	P       *authn.Principal
	Org     identity.Org
	Project identity.Project
	s       *Server
	route   *Route
}

func (s *Server) adapt(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Call{W: w, R: r, P: authn.From(r.Context()), s: s, route: &rt}
		if err := s.serve(c); err != nil {
			problem.Write(w, r, s.log, err)
		}
	})
}

func (s *Server) serve(c *Call) error {
	r := c.R
	if c.P.Session != nil && unsafeMethod(r.Method) && !authn.HasCredential(r) {
		// A browser calling the API with its cookie must prove the call
		// came from our own pages.
		if got := r.Header.Get("X-CSRF-Token"); got == "" || got != c.P.Session.CSRF {
			return apperr.E(apperr.Forbidden, "missing or wrong X-CSRF-Token header")
		}
	}
	res, err := s.resolve(c)
	if err != nil {
		return err
	}
	if err := authz.Check(c.P.Subject, c.route.Action, res); err != nil {
		return err
	}
	return c.route.Handler(c)
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// resolve loads the org and project a route names and returns the resource
// its action is checked against.
func (s *Server) resolve(c *Call) (authz.Resource, error) {
	switch c.route.On {
	case OnSelf:
		return authz.Resource{OwnerID: c.P.User.ID}, nil
	case OnOrg, OnProject:
		if !c.P.Subject.Authenticated() {
			// Do not tell anonymous callers which orgs exist.
			return authz.Resource{}, apperr.E(apperr.Unauthenticated, "sign in first")
		}
		o, err := s.ids.Org(c.R.Context(), c.R.PathValue("org"))
		if err != nil {
			return authz.Resource{}, err
		}
		c.Org = o
		if c.route.On == OnOrg {
			return o.Resource(), nil
		}
		p, err := s.ids.Project(c.R.Context(), o.ID, c.R.PathValue("project"))
		if err != nil {
			return authz.Resource{}, err
		}
		c.Project = p
		return p.Resource(o), nil
	}
	return authz.Site, nil
}

// Decode reads a JSON request body into v strictly: the media type must be
// JSON, unknown fields and trailing data are refused, the size is capped.
func (c *Call) Decode(v any) error {
	if ct := c.R.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apperr.E(apperr.Invalid, "request body must be application/json")
		}
	}
	body := bufio.NewReader(http.MaxBytesReader(c.W, c.R.Body, c.s.maxBody))
	if err := expectObject(body); err != nil {
		return err
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return apperr.E(apperr.Invalid, "request body must hold a single JSON value")
	}
	return nil
}

// expectObject checks, without consuming anything, that the body holds a
// JSON object: encoding/json would take null for an empty request, and
// report an array as a type error naming Go types.
func expectObject(r *bufio.Reader) error {
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if errors.Is(err, bufio.ErrBufferFull) {
			break
		}
		if err != nil {
			return decodeError(err)
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return nil
		}
		break
	}
	return apperr.E(apperr.Invalid, "request body must be a JSON object")
}

func decodeError(err error) error {
	var (
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		tooB *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooB):
		return apperr.E(apperr.TooLarge, "request body exceeds %d bytes", tooB.Limit)
	case errors.Is(err, io.EOF):
		return apperr.E(apperr.Invalid, "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.E(apperr.Invalid, "request body is truncated JSON")
	case errors.As(err, &syn):
		return apperr.E(apperr.Invalid, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return apperr.E(apperr.Invalid, "request body must be %s", jsonKind(typ.Type))
		}
		return &apperr.Error{Kind: apperr.Invalid, Field: typ.Field, Msg: fmt.Sprintf("field %q must be %s", typ.Field, jsonKind(typ.Type))}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = strings.Trim(quoted, `"`)
		}
		if len(name) > 64 {
			name = strings.ToValidUTF8(name[:64], "")
		}
		// The message shows the name as sent (escaped); the field holds
		// only its printable characters.
		field := strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return -1
		}, name)
		return &apperr.Error{Kind: apperr.Invalid, Field: field, Msg: fmt.Sprintf("unknown field %q", name)}
	}
	return apperr.Wrap(err, apperr.Invalid, "invalid JSON body")
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a different JSON value"
}

// JSON writes v with the route's success status.
func (c *Call) JSON(v any) error {
	status := c.route.Status
	if status == 0 {
		status = http.StatusOK
	}
	return writeJSON(c.W, status, v)
}

// NoContent answers 204.
func (c *Call) NoContent() error {
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// IDs returns the identity service (for routes contributed by other
// packages).
func (c *Call) IDs() *identity.Service { return c.s.ids }
