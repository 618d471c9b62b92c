package registry

import (
	"encoding/json"
	"net/http"
	"strings"
)

// ServeHTTP serves the OCI distribution API under /v2/ and the token
// endpoint /v2/token. It authenticates requests itself (registry tokens
// are not Rampart credentials), so it is mounted before Rampart's
// authentication middleware.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	if r.URL.Path == "/v2/token" {
		s.serveToken(w, r)
		return
	}
	if err := s.serve(w, r); err != nil {
		writeError(w, r, s.log, err)
	}
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) error {
	if r.URL.RawPath != "" {
		return oci(http.StatusBadRequest, codeNameInvalid, "escaped characters are not allowed in registry paths")
	}
	rt, ok := parsePath(r.URL.Path)
	if !ok {
		return oci(http.StatusNotFound, codeUnsupported, "no registry endpoint %s %s", r.Method, r.URL.Path)
	}
	c, err := s.identify(r)
	if err != nil {
		return err
	}
	ctx := withHost(withActor(r.Context(), c), r.Host)
	r = r.WithContext(ctx)
	if rt.kind == "base" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(r)
		}
		if c.anonymous() {
			return &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Msg: "authentication required",
				challenge: s.challenge(r.Host, "", nil)}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}\n"))
		return nil
	}
	action, ok := actionFor(rt.kind, r.Method)
	if !ok {
		return methodNotAllowed(r)
	}
	t, err := s.resolve(ctx, rt.name, false)
	if err != nil {
		return err
	}
	if err := s.repoAccess(ctx, c, t, action); err != nil {
		return err
	}
	h := &call{s: s, w: w, r: r, c: c, t: t, ref: rt.ref}
	switch rt.kind {
	case "blob":
		return h.blob()
	case "uploads":
		return h.startUpload()
	case "upload":
		return h.upload()
	case "manifest":
		return h.manifest()
	case "tags":
		return h.tags()
	case "referrers":
		return h.referrers()
	}
	return methodNotAllowed(r)
}

// actionFor says which registry action an endpoint and method need.
func actionFor(kind, method string) (string, bool) {
	read := method == http.MethodGet || method == http.MethodHead
	switch kind {
	case "blob", "manifest":
		switch {
		case read:
			return actPull, true
		case method == http.MethodDelete:
			return actDelete, true
		case kind == "manifest" && method == http.MethodPut:
			return actPush, true
		}
	case "uploads":
		if method == http.MethodPost {
			return actPush, true
		}
	case "upload":
		switch method {
		case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete:
			return actPush, true
		}
	case "tags", "referrers":
		if method == http.MethodGet {
			return actPull, true
		}
	}
	return "", false
}

func methodNotAllowed(r *http.Request) error {
	return oci(http.StatusMethodNotAllowed, codeUnsupported, "%s is not supported on %s", r.Method, r.URL.Path)
}

// call is one authorised registry request.
type call struct {
	s   *Service
	w   http.ResponseWriter
	r   *http.Request
	c   caller
	t   target
	ref string
}

func (h *call) json(status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.w.Header().Set("Content-Type", contentType)
	h.w.WriteHeader(status)
	if h.r.Method != http.MethodHead {
		_, err = h.w.Write(b)
	}
	return err
}

// isRegistryPath reports whether a request is for the registry (the app
// routes it past Rampart's authentication middleware).
func isRegistryPath(p string) bool { return p == "/v2" || strings.HasPrefix(p, "/v2/") }

// Owns reports whether the registry serves r: the app sends these requests
// to the registry directly, before request authentication.
func Owns(r *http.Request) bool { return isRegistryPath(r.URL.Path) }

// SkipAuthn sends registry requests to direct, past Rampart's request
// authentication (authenticated), which would refuse registry tokens.
func SkipAuthn(direct, authenticated http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Owns(r) {
			direct.ServeHTTP(w, r)
			return
		}
		authenticated.ServeHTTP(w, r)
	})
}
