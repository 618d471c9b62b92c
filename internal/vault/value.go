package vault

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Value is a secret value. It never prints: String, GoString, LogValue,
// MarshalJSON and MarshalText all give "[redacted]", so a Value that slips
// into a log line, an error or a JSON document shows nothing. Reveal is the
// one way to the bytes; every call site of it hands a value to its rightful
// reader.
type Value struct{ b []byte }

const redacted = "[redacted]"

// NewValue copies b into a Value.
func NewValue(b []byte) Value { return Value{b: append([]byte(nil), b...)} }

// Reveal returns the secret bytes (a copy).
func (v Value) Reveal() []byte { return append([]byte(nil), v.b...) }

// Len is the value's length in bytes.
func (v Value) Len() int { return len(v.b) }

// Equal compares two values in constant time.
func (v Value) Equal(o Value) bool { return subtle.ConstantTimeCompare(v.b, o.b) == 1 }

// String implements fmt.Stringer.
func (Value) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Value) GoString() string { return redacted }

// Format implements fmt.Formatter: every verb prints "[redacted]".
func (Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }
