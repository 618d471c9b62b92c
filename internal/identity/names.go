package identity

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
)

var nameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,38}[a-z0-9])?$`)

// reservedNames cannot be used for orgs or users: they collide with routes
// or mislead people.
var reservedNames = map[string]bool{
	"api": true, "login": true, "logout": true, "static": true, "oauth": true, "oidc": true,
	"settings": true, "new": true, "healthz": true, "readyz": true, "metrics": true,
	"v2": true, "well-known": true, "rampart": true, "system": true, "anonymous": true,
}

// ValidateName checks an org, team, project or user name: 1–40 lowercase
// letters, digits, '.', '_' or '-', starting and ending with a letter or
// digit, no "..".
func ValidateName(field, name string) error {
	if name == "" {
		return apperr.InvalidField(field, "%s must not be empty", field)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return apperr.InvalidField(field, "%s must not contain control characters", field)
	}
	if !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return apperr.InvalidField(field, "%s must be 1-40 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", field)
	}
	if reservedNames[name] {
		return apperr.InvalidField(field, "%s %q is reserved", field, name)
	}
	return nil
}

// validateText checks a free-text field: bounded length, no control
// characters (tabs and newlines allowed only when multiline).
func validateText(field, s string, max int, multiline bool) error {
	if len(s) > max {
		return apperr.InvalidField(field, "%s must be at most %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return apperr.InvalidField(field, "%s must be valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return apperr.InvalidField(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// normalizeEmail validates an optional e-mail address and lowercases it.
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if err := validateText("email", s, 254, false); err != nil {
		return "", err
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", apperr.InvalidField("email", "email %q is not a valid address", s)
	}
	return strings.ToLower(s), nil
}
