package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// ociError is an error with an OCI distribution error code. The registry
// keeps its own protocol: errors are {"errors":[{code,message,detail}]},
// never problem details.
type ociError struct {
	Status int
	Code   string
	Msg    string
	Detail any
	// challenge asks the client to authenticate (401).
	challenge string
}

func (e *ociError) Error() string { return e.Code + ": " + e.Msg }

// OCI error codes.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeRangeInvalid        = "RANGE_INVALID" // distribution's code for 416 on uploads
)

func oci(status int, code, format string, args ...any) *ociError {
	return &ociError{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

func errBlobUnknown(d string) *ociError {
	return oci(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry: %s", d)
}

func errManifestUnknown(ref string) *ociError {
	return oci(http.StatusNotFound, codeManifestUnknown, "manifest unknown: %s", ref)
}

func errNameUnknown(name string) *ociError {
	return oci(http.StatusNotFound, codeNameUnknown, "repository name not known to registry: %s", name)
}

func errDigestInvalid(format string, args ...any) *ociError {
	return oci(http.StatusBadRequest, codeDigestInvalid, format, args...)
}

func errDenied(format string, args ...any) *ociError {
	return oci(http.StatusForbidden, codeDenied, format, args...)
}

// toOCI maps any error to an OCI error: apperr kinds at the edge, as
// STYLE.md asks, and unclassified errors as a 500 that shows only the
// request id.
func toOCI(r *http.Request, err error) *ociError {
	var oe *ociError
	if errors.As(err, &oe) {
		return oe
	}
	msg := apperr.Message(err)
	switch apperr.KindOf(err) {
	case apperr.Invalid:
		return oci(http.StatusBadRequest, codeManifestInvalid, "%s", msg)
	case apperr.NotFound:
		return oci(http.StatusNotFound, codeNameUnknown, "%s", msg)
	case apperr.Conflict:
		return oci(http.StatusConflict, codeDenied, "%s", msg)
	case apperr.Unauthenticated:
		return oci(http.StatusUnauthorized, codeUnauthorized, "%s", msg)
	case apperr.Forbidden:
		return oci(http.StatusForbidden, codeDenied, "%s", msg)
	case apperr.TooManyRequests:
		return oci(http.StatusTooManyRequests, codeTooManyRequests, "%s", msg)
	case apperr.TooLarge:
		return oci(http.StatusRequestEntityTooLarge, codeSizeInvalid, "%s", msg)
	case apperr.Unavailable:
		return oci(http.StatusServiceUnavailable, codeUnsupported, "%s; try again", msg)
	}
	return oci(http.StatusInternalServerError, "UNKNOWN", "internal error; quote request id %s to your administrator",
		reqinfo.From(r.Context()).RequestID)
}

// writeError writes err in the OCI error format, logging internal errors.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	oe := toOCI(r, err)
	if oe.Status >= 500 {
		log.ErrorContext(r.Context(), "registry request failed", "err", err, "path", r.URL.Path, "method", r.Method)
	}
	if oe.challenge != "" {
		w.Header().Set("WWW-Authenticate", oe.challenge)
	}
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	w.WriteHeader(oe.Status)
	if r.Method == http.MethodHead {
		return
	}
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	_ = json.NewEncoder(w).Encode(map[string][]item{"errors": {{Code: oe.Code, Message: oe.Msg, Detail: oe.Detail}}})
}
