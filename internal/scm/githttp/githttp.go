// Package githttp serves git's smart HTTP protocol for Rampart's
// repositories, as git-http-backend does: GET info/refs advertises refs,
// POST git-upload-pack serves clones and fetches, POST git-receive-pack
// pushes. The git binary does the protocol work (scm runs upload-pack and
// receive-pack with --stateless-rpc); this package authenticates (the
// principal authn put in the request: a token as the Basic password, a
// bearer token or a session), authorises through scm.Authorize, and frames
// the responses.
//
// Clone URLs are https://HOST/ORG/NAME.git. Anonymous requests to a
// repository that is not public get 401 with a Basic challenge, so git
// asks its credential helper and tries again.
package githttp

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/scm"
)

// Handler serves the smart HTTP protocol.
type Handler struct {
	SCM *scm.Service
	Log *slog.Logger
}

// Register adds the protocol's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{org}/{repo}/info/refs", h.infoRefs)
	mux.HandleFunc("POST /{org}/{repo}/git-upload-pack", h.rpc("upload-pack"))
	mux.HandleFunc("POST /{org}/{repo}/git-receive-pack", h.rpc("receive-pack"))
}

// PktLine frames s as one git pkt-line.
func PktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func (h *Handler) infoRefs(w http.ResponseWriter, r *http.Request) {
	service := r.URL.Query().Get("service")
	if service != "git-upload-pack" && service != "git-receive-pack" {
		h.fail(w, r, apperr.E(apperr.Forbidden, "only the smart HTTP protocol is served: use a git client of version 1.6.6 or later"))
		return
	}
	c, err := h.command(r, strings.TrimPrefix(service, "git-"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(c, strings.TrimPrefix(service, "git-")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
	noCache(w)
	c.AdvertiseRefs, c.Stdout = true, w
	if !(service == "git-upload-pack" && strings.Contains(c.Protocol, "version=2")) {
		_, _ = io.WriteString(w, PktLine("# service="+service+"\n")+"0000")
	}
	if err := h.serve(r, c, service); err != nil {
		h.logFailure(r, err)
	}
}

func (h *Handler) rpc(service string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-git-"+service+"-request" {
			h.fail(w, r, apperr.E(apperr.Invalid, "expected Content-Type application/x-git-%s-request", service))
			return
		}
		c, err := h.command(r, service)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if err := h.authorize(c, service); err != nil {
			h.fail(w, r, err)
			return
		}
		body := io.Reader(r.Body)
		switch r.Header.Get("Content-Encoding") {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				h.fail(w, r, apperr.E(apperr.Invalid, "request body is not valid gzip"))
				return
			}
			defer zr.Close()
			body = zr
		case "", "identity":
		default:
			h.fail(w, r, apperr.E(apperr.Invalid, "unsupported Content-Encoding"))
			return
		}
		// Both directions stream at once (git reads results while sending).
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/x-git-"+service+"-result")
		noCache(w)
		c.Stateless, c.Stdin, c.Stdout = true, body, flushWriter{w}
		if err := h.serve(r, c, "git-"+service); err != nil {
			h.logFailure(r, err)
		}
	}
}

func (h *Handler) serve(r *http.Request, c scm.GitCommand, service string) error {
	if service == "git-upload-pack" {
		return h.SCM.ServeUploadPack(r.Context(), c)
	}
	return h.SCM.ServeReceivePack(r.Context(), c)
}

// command resolves the repository and the caller.
func (h *Handler) command(r *http.Request, service string) (scm.GitCommand, error) {
	p := authn.From(r.Context())
	org, name := r.PathValue("org"), r.PathValue("repo")
	repo, err := h.SCM.Repo(r.Context(), org, name)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) && !p.Subject.Authenticated() {
			// Do not tell anonymous callers what exists.
			return scm.GitCommand{}, apperr.E(apperr.Unauthenticated, "authentication required")
		}
		return scm.GitCommand{}, err
	}
	return scm.GitCommand{Repo: repo, Who: scm.Pusher{User: p.User, Subject: p.Subject, Via: "http"},
		Protocol: r.Header.Get("Git-Protocol")}, nil
}

func (h *Handler) authorize(c scm.GitCommand, service string) error {
	a := authz.RepoRead
	if service == "receive-pack" {
		a = authz.RepoWrite
	}
	return h.SCM.Authorize(c.Who.Subject, a, c.Repo)
}

func noCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	w.Header().Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	w.Header().Set("Pragma", "no-cache")
}

// fail answers a request git has not yet read a protocol response for:
// plain text, which git shows to the user, and a Basic challenge when
// credentials would help.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch apperr.KindOf(err) {
	case apperr.Invalid:
		status = http.StatusBadRequest
	case apperr.NotFound:
		status = http.StatusNotFound
	case apperr.Unauthenticated:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="Rampart", charset="UTF-8"`)
	case apperr.Forbidden:
		status = http.StatusForbidden
	case apperr.TooLarge:
		status = http.StatusRequestEntityTooLarge
	case apperr.Unavailable:
		status = http.StatusServiceUnavailable
	}
	msg := apperr.Message(err)
	if status == http.StatusInternalServerError {
		h.Log.ErrorContext(r.Context(), "git http", logging.KeyErr, err, logging.KeyPath, r.URL.Path)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func (h *Handler) logFailure(r *http.Request, err error) {
	if apperr.KindOf(err) == apperr.Internal && !errors.Is(err, r.Context().Err()) {
		h.Log.ErrorContext(r.Context(), "git http", logging.KeyErr, err, logging.KeyPath, r.URL.Path)
		return
	}
	h.Log.DebugContext(r.Context(), "git http", logging.KeyErr, err, logging.KeyPath, r.URL.Path)
}

// flushWriter flushes after every write so git sees progress as it comes.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		_ = http.NewResponseController(f.w).Flush()
	}
	return n, err
}

// Dispatch serves git's requests from git (a mux holding only Register's
// routes) and everything else from rest. The protocol's routes have a
// wildcard first segment (/ORG/NAME.git/…) that would clash with the
// application's prefix routes in one mux.
func Dispatch(git, rest *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := git.Handler(r); pattern != "" {
			git.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
