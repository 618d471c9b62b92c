package authz

import (
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
)

// FuzzParseScopes: scopes come from API requests and CLI flags. What is
// accepted is a non-empty, sorted set of known scopes holding every name
// given (commas and spaces around names allowed); anything else is an
// invalid "scopes" field.
func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"admin", "repo:read,org:read", "repo:read|repo:read", " audit:read , metrics:read ", "",
		",", "repo:delete", "ADMIN", "repo:read|nope", "org:write|", "\x00"} {
		f.Add(s)
	}
	known := map[Scope]bool{}
	for _, s := range Scopes() {
		known[s.Name] = true
	}
	f.Fuzz(func(t *testing.T, in string) {
		names := strings.Split(in, "|") // several --scope flags
		got, err := ParseScopes(names)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "scopes" {
				t.Fatalf("ParseScopes(%q) = %v: kind %v field %q", names, err, apperr.KindOf(err), apperr.FieldOf(err))
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseScopes(%q) accepted no scope", names)
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("ParseScopes(%q) = %q: not a sorted set", names, got)
		}
		for _, s := range got {
			if !known[s] {
				t.Fatalf("ParseScopes(%q) accepted unknown scope %q", names, s)
			}
		}
		for _, n := range names {
			for part := range strings.SplitSeq(n, ",") {
				if p := strings.TrimSpace(part); p != "" && !slices.Contains(got, Scope(p)) {
					t.Fatalf("ParseScopes(%q) = %q dropped %q", names, got, p)
				}
			}
		}
	})
}
