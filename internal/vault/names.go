package vault

import (
	"regexp"
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Scope is where a secret lives: an org, a project of it, or an
// environment of a project.
type Scope struct {
	Org     string
	Project string // "" for org-level secrets
	Env     string // "" for org- and project-level secrets
}

// Ref names a secret: its scope and name. Its text form is
// ORG/NAME, ORG/PROJECT/NAME or ORG/PROJECT/ENV/NAME.
type Ref struct {
	Scope
	Name string
}

// Limits on names and values.
const (
	MaxValue      = 64 << 10 // bytes of a secret value
	MaxNameLen    = 128
	MaxRefLen     = 512
	maxDescLen    = 500
	maxVersions   = 10000 // versions per secret that are not destroyed
	maxListResult = 5000
)

var (
	orgRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,38}$`)
	projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)
	envRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

func (s Scope) String() string {
	switch {
	case s.Env != "":
		return s.Org + "/" + s.Project + "/" + s.Env
	case s.Project != "":
		return s.Org + "/" + s.Project
	}
	return s.Org
}

func (r Ref) String() string { return r.Scope.String() + "/" + r.Name }

// Relative is the ref without its org: NAME, PROJECT/NAME or
// PROJECT/ENV/NAME (what policies match).
func (r Ref) Relative() string {
	_, rel, _ := strings.Cut(r.String(), "/")
	return rel
}

// ParseScope parses ORG, ORG/PROJECT or ORG/PROJECT/ENV.
func ParseScope(s string) (Scope, error) {
	if len(s) > MaxRefLen {
		return Scope{}, apperr.InvalidField("scope", "scope is longer than %d characters", MaxRefLen)
	}
	parts := strings.Split(s, "/")
	if slices.Contains(parts, "") {
		return Scope{}, apperr.InvalidField("scope", "a scope is ORG, ORG/PROJECT or ORG/PROJECT/ENV, without empty parts")
	}
	var sc Scope
	switch len(parts) {
	case 1:
		sc = Scope{Org: parts[0]}
	case 2:
		sc = Scope{Org: parts[0], Project: parts[1]}
	case 3:
		sc = Scope{Org: parts[0], Project: parts[1], Env: parts[2]}
	default:
		return Scope{}, apperr.InvalidField("scope", "a scope is ORG, ORG/PROJECT or ORG/PROJECT/ENV")
	}
	return sc, sc.Validate()
}

// Validate checks every part of the scope.
func (s Scope) Validate() error {
	if !orgRE.MatchString(s.Org) {
		return apperr.InvalidField("scope", "%q is not an org name", s.Org)
	}
	if s.Project != "" && !projectRE.MatchString(s.Project) {
		return apperr.InvalidField("scope", "%q is not a project name", s.Project)
	}
	if s.Env != "" {
		if s.Project == "" {
			return apperr.InvalidField("scope", "an environment belongs to a project")
		}
		if !envRE.MatchString(s.Env) {
			return apperr.InvalidField("scope", "%q is not an environment name (lower-case letters, digits, '-' and '_', at most 40)", s.Env)
		}
	}
	return nil
}

// ValidateName checks a secret or key name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return apperr.InvalidField("name", "%q is not a secret name: letters, digits, '_', '.' and '-', at most %d, not starting with '.' or '-'", clip(name), MaxNameLen)
	}
	return nil
}

// ParseRef parses ORG/NAME, ORG/PROJECT/NAME or ORG/PROJECT/ENV/NAME.
func ParseRef(s string) (Ref, error) {
	if len(s) > MaxRefLen {
		return Ref{}, apperr.InvalidField("ref", "secret reference is longer than %d characters", MaxRefLen)
	}
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return Ref{}, apperr.InvalidField("ref", "a secret reference is ORG/NAME, ORG/PROJECT/NAME or ORG/PROJECT/ENV/NAME")
	}
	sc, err := ParseScope(s[:i])
	if err != nil {
		return Ref{}, err
	}
	r := Ref{Scope: sc, Name: s[i+1:]}
	return r, ValidateName(r.Name)
}

// clip shortens user input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
