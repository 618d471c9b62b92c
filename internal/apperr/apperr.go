// Package apperr classifies errors by kind so that each edge of Rampart (HTTP,
// OCI, CLI) can map them to its own status codes without knowing where they
// came from.
//
// An *Error carries a Kind, a message that is safe to show to users, and an
// optional wrapped error meant only for logs. Anything that is not an *Error
// is treated as Internal: users see a request id, never the text.
//
// This package imports only the standard library (enforced by a test in
// internal/app).
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the class of an error.
type Kind uint8

// Kinds, in the order edges usually test them.
const (
	Internal        Kind = iota // a bug or an unexpected failure; details only in logs
	Invalid                     // the request is malformed or violates a rule
	NotFound                    // the target does not exist (or is hidden from the caller)
	Conflict                    // the target already exists or changed concurrently
	Unauthenticated             // no valid credential was presented
	Forbidden                   // the caller may not do this
	TooManyRequests             // throttled; try again later
	Unavailable                 // a dependency is down; try again later
	TooLarge                    // the request body or an input exceeds a limit
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	TooManyRequests: "too_many_requests",
	Unavailable:     "unavailable",
	TooLarge:        "too_large",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is a classified error. Msg is shown to users; Err is for logs only.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
	// Field optionally names the input field at fault (JSON path style).
	Field string
	// RetryAfter tells a throttled client when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Msg != "":
		return e.Msg + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Msg
	}
}

func (e *Error) Unwrap() error { return e.Err }

// E returns an error of kind k with a user-safe message.
func E(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap classifies err as kind k with a user-safe message; err stays for logs.
func Wrap(err error, k Kind, msg string) error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// InvalidField reports an invalid input field.
func InvalidField(field, format string, args ...any) error {
	return &Error{Kind: Invalid, Msg: fmt.Sprintf(format, args...), Field: field}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is classified as kind k.
func Is(err error, k Kind) bool {
	if err == nil {
		return false
	}
	return KindOf(err) == k
}

// Message returns the user-safe message of err. Internal errors yield a
// generic text so that nothing unclassified leaks to users.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal && e.Msg != "" {
		return e.Msg
	}
	if e != nil && e.Kind != Internal {
		return e.Kind.String()
	}
	return "internal error"
}

// FieldOf returns the input field named by err, if any.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// RetryAfterOf returns how long a throttled caller should wait, if err says.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
