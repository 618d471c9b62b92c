package alerts_test

import (
	"testing"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apperr"
)

// FuzzParseReason checks that any text is one of the three reasons or a
// clear error.
func FuzzParseReason(f *testing.F) {
	for _, s := range []string{"false_positive", "won't fix", "Used In Tests", "wont-fix", "", "fixed"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := alerts.ParseReason(s)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "reason" {
				t.Fatalf("ParseReason(%q): %v", s, err)
			}
			return
		}
		if r != alerts.FalsePositive && r != alerts.WontFix && r != alerts.UsedInTests {
			t.Fatalf("ParseReason(%q) = %q", s, r)
		}
	})
}

// FuzzParseFilter feeds one query value to every filter parameter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"open", "all", "secret", "high", "shop", "acme/shop", "5", "x\x00", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, key := range []string{"state", "kind", "severity", "repo", "limit"} {
			_, err := alerts.ParseFilter(func(k string) string {
				if k == key {
					return v
				}
				return ""
			})
			if err != nil && (apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != key) {
				t.Fatalf("%s=%q: %v (field %q)", key, v, err, apperr.FieldOf(err))
			}
		}
	})
}
