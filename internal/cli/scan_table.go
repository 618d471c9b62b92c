package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampartsec/rampart/internal/scan/report"
)

func writeJSON(w io.Writer, rep *report.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// ANSI colours per severity.
var sevColor = map[report.Severity]string{
	report.SeverityCritical: "\x1b[1;31m",
	report.SeverityHigh:     "\x1b[31m",
	report.SeverityMedium:   "\x1b[33m",
	report.SeverityLow:      "\x1b[36m",
	report.SeverityInfo:     "\x1b[2m",
	report.SeverityUnknown:  "\x1b[2m",
}

const colorReset = "\x1b[0m"

// writeTable prints findings grouped by severity, worst first, then the
// notes and a summary line.
func writeTable(w io.Writer, rep *report.Report, color bool, took time.Duration) {
	paint := func(s report.Severity, text string) string {
		if !color {
			return text
		}
		return sevColor[s] + text + colorReset
	}
	counts := map[report.Severity]int{}
	suppressed := 0
	for _, f := range rep.Findings {
		if f.Suppressed != nil {
			suppressed++
			continue
		}
		counts[f.Severity]++
	}
	for s := report.SeverityCritical; s >= report.SeverityUnknown; s-- {
		if counts[s] == 0 {
			continue
		}
		fmt.Fprintf(w, "%s\n", paint(s, fmt.Sprintf("%s (%d)", strings.ToUpper(s.String()), counts[s])))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range rep.Findings {
			if f.Severity != s || f.Suppressed != nil {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Kind, cell(f.RuleID), cell(where(f)), cell(what(f)))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if suppressed > 0 {
		fmt.Fprintf(w, "SUPPRESSED (%d)\n", suppressed)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range rep.Findings {
			if f.Suppressed != nil {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Kind, cell(f.RuleID), cell(where(f)), cell(f.Suppressed.Reason))
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintf(w, "NOTES (%d)\n", len(rep.Notes))
		for _, n := range rep.Notes {
			if n.Path != "" {
				fmt.Fprintf(w, "  %s: %s\n", cell(n.Path), cell(n.Message))
			} else {
				fmt.Fprintf(w, "  %s\n", cell(n.Message))
			}
		}
		fmt.Fprintln(w)
	}
	var parts []string
	for s := report.SeverityCritical; s >= report.SeverityUnknown; s-- {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	summary := "no findings"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	if suppressed > 0 {
		summary += fmt.Sprintf(" (%d suppressed)", suppressed)
	}
	what := fmt.Sprintf("%d files, %s", rep.Stats.Files, humanBytes(rep.Stats.Bytes))
	if rep.Stats.Commits > 0 {
		what = fmt.Sprintf("%d commits, %d blobs, %s", rep.Stats.Commits, rep.Stats.Blobs, humanBytes(rep.Stats.Bytes))
	}
	if len(rep.Packages) > 0 {
		what += fmt.Sprintf(", %d package%s", len(rep.Packages), plural(len(rep.Packages)))
	}
	fmt.Fprintf(w, "%s: %s · %s in %s\n", rep.Target, summary, what, took.Round(time.Millisecond))
}

// where locates a finding for a human: path:line, and the commit or layer.
func where(f report.Finding) string {
	s := f.Location.Path
	if f.Location.StartLine > 0 {
		s += fmt.Sprintf(":%d", f.Location.StartLine)
	}
	switch {
	case f.Location.Commit != "":
		c := f.Location.Commit
		if len(c) > 10 {
			c = c[:10]
		}
		s += " @" + c
		if f.Location.Author != "" {
			s += " (" + f.Location.Author + ")"
		}
	case f.Location.Layer != "":
		l := strings.TrimPrefix(f.Location.Layer, "sha256:")
		if len(l) > 12 {
			l = l[:12]
		}
		s += " [layer " + l + "]"
	}
	return s
}

// what says what is wrong, without the secret.
func what(f report.Finding) string {
	switch {
	case f.Secret != nil:
		return f.Title + ": " + f.Secret.Redacted
	case f.Vuln != nil:
		s := f.Vuln.Package.Name + " " + f.Vuln.Package.Version
		if f.Vuln.FixedVersion != "" {
			s += " → " + f.Vuln.FixedVersion
		}
		if f.Title != "" {
			s += ": " + f.Title
		}
		return s
	case f.Description != "":
		return f.Description
	}
	return f.Title
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
