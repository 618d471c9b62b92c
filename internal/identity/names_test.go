package identity_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means valid
	}{
		{"single letter", "a", ""},
		{"single digit", "7", ""},
		{"dots dashes underscores inside", "a.b-c_d", ""},
		{"40 characters", strings.Repeat("a", 40), ""},
		{"empty", "", "must not be empty"},
		{"41 characters", strings.Repeat("a", 41), "1-40 lowercase"},
		{"uppercase", "Acme", "1-40 lowercase"},
		{"leading dash", "-acme", "starting and ending"},
		{"trailing dot", "acme.", "starting and ending"},
		{"leading underscore", "_acme", "starting and ending"},
		{"double dot", "a..b", "1-40 lowercase"},
		{"slash", "a/b", "1-40 lowercase"},
		{"backslash", `a\b`, "1-40 lowercase"},
		{"space", "a b", "1-40 lowercase"},
		{"percent", "a%2fb", "1-40 lowercase"},
		{"non-ASCII letter", "café", "1-40 lowercase"},
		{"newline", "acme\n", "control characters"},
		{"NUL", "ac\x00me", "control characters"},
		{"escape", "\x1b[31macme", "control characters"},
		{"DEL", "acme\x7f", "control characters"},
		{"C1 control", "acme\u0085", "control characters"},
		{"invalid UTF-8", "acme\xff", "control characters"},
		{"reserved api", "api", `"api" is reserved`},
		{"reserved admin route", "settings", "reserved"},
		{"reserved system actor", "system", "reserved"},
		{"reserved anonymous", "anonymous", "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := identity.ValidateName("name", tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateName(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateName(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "name" {
				t.Errorf("kind %v field %q, want invalid on field name", apperr.KindOf(err), apperr.FieldOf(err))
			}
		})
	}
}

var validNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

// FuzzValidateName: a name that passes is safe in URLs, paths and the
// terminal; one that fails gets a classified error naming the field.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"acme", "a", "a..b", "-x", "Acme", "api", "a/b", "a\x00", strings.Repeat("z", 41), "ü", "a.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := identity.ValidateName("org", name)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "org" {
				t.Fatalf("ValidateName(%q) = %v: kind %v field %q", name, err, apperr.KindOf(err), apperr.FieldOf(err))
			}
			if msg := apperr.Message(err); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\r\n\x1b") {
				t.Fatalf("unsafe message %q", msg)
			}
			return
		}
		switch {
		case len(name) < 1 || len(name) > 40:
			t.Fatalf("accepted %q of length %d", name, len(name))
		case !validNameRE.MatchString(name):
			t.Fatalf("accepted %q with characters outside [a-z0-9._-] or at the ends", name)
		case strings.Contains(name, ".."):
			t.Fatalf("accepted %q with ..", name)
		case name == "api" || name == "system" || name == "login":
			t.Fatalf("accepted reserved %q", name)
		}
	})
}
