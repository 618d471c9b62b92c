package scan_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/report"
)

func TestParseKinds(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want scan.Kinds
		ok   bool
	}{
		{"all", scan.AllKinds, true},
		{"secrets", scan.Kinds{Secrets: true}, true},
		{"secrets, iac", scan.Kinds{Secrets: true, IaC: true}, true},
		{"deps", scan.Kinds{Deps: true}, true},
		{"", scan.Kinds{}, false},
		{"viruses", scan.Kinds{}, false},
	} {
		got, err := scan.ParseKinds(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseKinds(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestScanner_DirWithoutAdvisoriesSaysSo(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.6\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM debian\nRUN apt-get update\n"), 0o644)
	s, err := scan.New(t.Context(), scan.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	r, err := s.Dir(t.Context(), dir, scan.Options{Kinds: scan.AllKinds, Progress: func(report.Stats) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Packages) != 1 || calls.Load() == 0 {
		t.Fatalf("packages %v, progress calls %d", r.Packages, calls.Load())
	}
	var said, iac bool
	for _, n := range r.Notes {
		said = said || strings.Contains(n.Message, "no advisory database")
	}
	for _, f := range r.Findings {
		iac = iac || f.Kind == report.KindMisconfiguration
	}
	if !said || !iac {
		t.Errorf("notes %v, findings %v: want a note about the missing database and Dockerfile findings", r.Notes, r.Findings)
	}
	for i := 1; i < len(r.Findings); i++ {
		if r.Findings[i-1].Severity < r.Findings[i].Severity {
			t.Fatalf("findings not sorted worst first: %v then %v", r.Findings[i-1].Severity, r.Findings[i].Severity)
		}
	}
}

func TestScanner_Cancelled(t *testing.T) {
	s, err := scan.New(t.Context(), scan.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	for i := range 50 {
		os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+".txt"), []byte("x"), 0o644)
	}
	if _, err := s.Dir(ctx, dir, scan.Options{Kinds: scan.AllKinds}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNew_BadRuleFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.toml")
	os.WriteFile(p, []byte("[[rules]]\nid = \"x\"\nregex = \"[\"\n"), 0o644)
	_, err := scan.New(t.Context(), scan.Config{RuleFiles: []string{p}})
	if !apperr.Is(err, apperr.Invalid) || !strings.Contains(err.Error(), "rules.toml") {
		t.Fatalf("err = %v, want Invalid naming the file", err)
	}
}

func TestScanner_Exclude(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "build", "gen"), 0o755)
	os.WriteFile(filepath.Join(dir, "build", "gen", "Dockerfile"), []byte("FROM debian\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "build", "go.mod"), []byte("module x\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.6\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM debian\n"), 0o644)
	s, err := scan.New(t.Context(), scan.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Dir(t.Context(), dir, scan.Options{Kinds: scan.AllKinds, Exclude: []string{"build/**"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Findings {
		if strings.HasPrefix(f.Location.Path, "build/") {
			t.Errorf("excluded path scanned: %s", f.Location.Path)
		}
	}
	if len(r.Packages) != 0 || r.Stats.Files != 1 {
		t.Errorf("packages %v, files %d; want none from build/ and only the top Dockerfile", r.Packages, r.Stats.Files)
	}
	if _, err := s.Dir(t.Context(), dir, scan.Options{Kinds: scan.AllKinds, Exclude: []string{"a/["}}); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("bad glob: err = %v", err)
	}
}
