package iac_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/format"
)

// TestChecks_Formatted keeps the built-in checks in opa fmt's layout, the
// one users see in OPA's documentation and editors.
func TestChecks_Formatted(t *testing.T) {
	err := filepath.WalkDir("checks", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".rego" {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		want, err := format.Source(p, src)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if string(want) != string(src) {
			if os.Getenv("RAMPART_FORMAT_REGO") == "1" {
				return os.WriteFile(p, want, 0o644)
			}
			t.Errorf("%s is not formatted as opa fmt would (set RAMPART_FORMAT_REGO=1 to rewrite)", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
