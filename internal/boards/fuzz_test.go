package boards_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/boards"
)

// FuzzParseNumber checks that any text is a number in range or a clear
// error, never a panic.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"12", "AB#12", "ab#0", "-1", "999999999", "1e3", " 7 ", "AB#", "０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := boards.ParseNumber(s)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || n != 0 {
				t.Fatalf("ParseNumber(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n <= 0 || n > 999999999 {
			t.Fatalf("ParseNumber(%q) = %d, out of range", s, n)
		}
	})
}

// FuzzParseFilter feeds one query value to every filter parameter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"active", "bug", "3", "none", "AB#2", "../x", "a\x00b", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, key := range []string{"state", "type", "priority", "assignee", "project", "parent", "q", "limit"} {
			flt, err := boards.ParseFilter(func(k string) string {
				if k == key {
					return v
				}
				return ""
			})
			if err != nil {
				if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != key {
					t.Fatalf("%s=%q: %v (field %q)", key, v, err, apperr.FieldOf(err))
				}
				continue
			}
			if !utf8.ValidString(flt.Assignee+flt.Project+flt.Query) || len(flt.Query) > 200 {
				t.Fatalf("%s=%q accepted into %+v", key, v, flt)
			}
		}
	})
}

// FuzzSplitRepo checks that an accepted repository name is ORG/NAME with
// a valid org and nothing that walks paths.
func FuzzSplitRepo(f *testing.F) {
	for _, s := range []string{"acme/shop", "acme", "../x/y", "acme/..", "a/b/c", "acme/sh\nop", "Acme/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		org, name, err := boards.SplitRepo(s)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid {
				t.Fatalf("SplitRepo(%q): %v", s, err)
			}
			return
		}
		if org+"/"+name != s || strings.Contains(name, "/") || name == ".." || name == "." || strings.ContainsAny(s, "\x00\n\r") {
			t.Fatalf("SplitRepo(%q) = %q, %q", s, org, name)
		}
	})
}
