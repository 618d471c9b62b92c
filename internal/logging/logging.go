// Package logging builds Rampart's structured JSON logger and names every
// attribute key in one place, so logs stay greppable across components.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/rampartsec/rampart/internal/reqinfo"
)

// Attribute keys, snake_case, shared by every component.
const (
	KeyComponent  = "component"
	KeyRequestID  = "request_id"
	KeyRemoteIP   = "remote_ip"
	KeyMethod     = "method"
	KeyPath       = "path"
	KeyRoute      = "route"
	KeyStatus     = "status"
	KeyDuration   = "duration_ms"
	KeyBytes      = "bytes"
	KeyUser       = "user"
	KeyErr        = "err"
	KeyKind       = "kind"
	KeyStack      = "stack"
	KeyAddr       = "addr"
	KeyURL        = "url"
	KeyDataDir    = "data_dir"
	KeyStore      = "store"
	KeyMigrations = "migrations"
)

// New returns a JSON logger writing to w at the given level (debug, info,
// warn, error). Every record made with a request context carries the
// request id.
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(requestIDHandler{h})
}

// requestIDHandler adds the request id from the context to each record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := reqinfo.From(ctx).RequestID; id != "" {
		r.AddAttrs(slog.String(KeyRequestID, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// Discard returns a logger that drops everything (for tests of our own logic).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
