package iac

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSlowSeeds(t *testing.T) {
	s, _ := SharedScanner()
	files, _ := filepath.Glob("testdata/fuzz/*/*")
	more, _ := filepath.Glob("testdata/bad/*")
	for _, p := range append(files, more...) {
		b, _ := os.ReadFile(p)
		for _, name := range []string{"Dockerfile", "x.tf", "x.yaml"} {
			start := time.Now()
			s.Scan(t.Context(), name, b)
			if d := time.Since(start); d > 20*time.Millisecond {
				t.Logf("%s as %s: %v", p, name, d)
			}
		}
	}
}
