// Package problem writes errors as RFC 9457 problem details
// (application/problem+json), the one error format of Rampart's HTTP API.
//
// The status comes from the error's apperr kind; the detail is the error's
// user-safe message. Internal errors show only the request id, and are
// logged in full.
package problem

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem document with Rampart's extensions.
type Details struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Kind      string `json:"kind"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Status maps an error kind to an HTTP status.
func Status(k apperr.Kind) int {
	switch k {
	case apperr.Invalid:
		return http.StatusBadRequest
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
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// From builds the problem document for err.
func From(ctx context.Context, err error, instance string) Details {
	k := apperr.KindOf(err)
	status := Status(k)
	d := Details{
		Type:      "urn:rampart:problem:" + k.String(),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    apperr.Message(err),
		Instance:  instance,
		Kind:      k.String(),
		Field:     apperr.FieldOf(err),
		RequestID: reqinfo.From(ctx).RequestID,
	}
	if k == apperr.Internal {
		d.Detail = "internal error; quote request id " + d.RequestID + " to your administrator"
	}
	return d
}

// Write writes err as a problem document. Internal errors and unavailable
// dependencies are logged with their full text.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	d := From(r.Context(), err, r.URL.Path)
	if d.Status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "err", err, "kind", d.Kind, "path", r.URL.Path)
	}
	if ra := apperr.RetryAfterOf(err); ra > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ra.Seconds()+0.999)))
	}
	if d.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}
