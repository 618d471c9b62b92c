package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/report"
)

// ScanAdapter runs the scan step with package scan. The scanner is built
// on first use (compiling its rules takes a moment) by New.
type ScanAdapter struct {
	New  func(ctx context.Context) (*scan.Scanner, error)
	once sync.Once
	s    *scan.Scanner
	err  error
}

var _ Scanner = (*ScanAdapter)(nil)

// ScanDir implements Scanner: a directory scan (secrets, dependencies,
// IaC) of the workspace, rendered as a table for the log and the pull
// request. Secrets are never printed, only where they are.
func (a *ScanAdapter) ScanDir(ctx context.Context, dir, failOn string) (string, bool, error) {
	a.once.Do(func() { a.s, a.err = a.New(ctx) })
	if a.err != nil {
		return "", false, a.err
	}
	rep, err := a.s.Dir(ctx, dir, scan.Options{Kinds: scan.AllKinds, Exclude: []string{".git/**"}, Workers: 1})
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	var open []report.Finding
	for _, f := range rep.Findings {
		if f.Suppressed == nil {
			open = append(open, f)
		}
	}
	sort.SliceStable(open, func(i, j int) bool { return open[i].Severity > open[j].Severity })
	fmt.Fprintf(&b, "scan: %d files, %d findings\n", rep.Stats.Files, len(open))
	for _, f := range open {
		loc := f.Location.Path
		if f.Location.StartLine > 0 {
			loc = fmt.Sprintf("%s:%d", loc, f.Location.StartLine)
		}
		fmt.Fprintf(&b, "  %-8s %-16s %-40s %s\n", f.Severity, f.Kind, loc, f.Title)
	}
	failed := false
	if failOn != "" && failOn != "none" {
		threshold, err := report.ParseSeverity(failOn)
		if err == nil && len(open) > 0 && rep.Worst() >= threshold {
			failed = true
			fmt.Fprintf(&b, "scan: failing: a finding is at or above %s\n", failOn)
		}
	}
	return b.String(), failed, nil
}
