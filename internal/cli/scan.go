package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/ignore"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/sarif"
	"github.com/rampartsec/rampart/internal/scan/sbom"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// Exit codes of rampart scan (as a pre-commit hook expects them).
const (
	scanClean    = 0
	scanFindings = 1
	scanError    = 2
)

// exitCodeError ends the program with a specific exit code; msg (if any)
// is printed to stderr.
type exitCodeError struct {
	code int
	msg  string
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}

func (e *exitCodeError) Unwrap() error { return e.err }

// scanFlags are shared by the three scan commands.
type scanFlags struct {
	format     string
	out        string
	failOn     string
	kinds      string
	rules      []string
	checks     string
	db         string
	ignoreFile string
	maxSize    int64
	exclude    []string
	noProgress bool
	noColor    bool
}

func (f *scanFlags) register(cmd *cobra.Command, kinds string) {
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "", "table, json, sarif, cyclonedx or spdx (default table; --output json also selects json)")
	fl.StringVar(&f.out, "out", "", "write the report to this file instead of standard output")
	fl.StringVar(&f.failOn, "fail-on", "high", "exit 1 when an unsuppressed finding is at or above this severity (info, low, medium, high, critical, or none)")
	fl.StringVar(&f.kinds, "kinds", kinds, "what to look for: secrets, deps, iac, or all")
	fl.StringArrayVar(&f.rules, "rules", nil, "extra secret rules in gitleaks TOML format (repeatable)")
	fl.StringVar(&f.checks, "checks", "", "directory of extra Rego checks for IaC files")
	fl.StringVar(&f.db, "db", "", "advisory database (default $"+advisory.EnvPath+", else the user cache directory)")
	fl.StringVar(&f.ignoreFile, "ignore", "", "suppressions file (default TARGET/"+ignore.DefaultPath+")")
	fl.Int64Var(&f.maxSize, "max-file-size", source.DefaultMaxFileSize, "skip larger files with a note")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "leave out paths matching this glob, e.g. 'build/**' (repeatable; directory scans)")
	fl.BoolVar(&f.noProgress, "no-progress", false, "never show a progress line")
	fl.BoolVar(&f.noColor, "no-color", false, "never colour the table ($NO_COLOR also turns colour off)")
}

func (ce *cmdEnv) scanCmd() *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan [PATH]",
		Short: "Scan a directory, a git history or an OCI image for secrets, vulnerable dependencies and IaC misconfiguration",
		Long: `Scan works offline and without a server.

  rampart scan [PATH]                      a directory (default .): secrets, dependencies, IaC
  rampart scan git [PATH] [--since REV]    every commit of a repository's history: secrets
  rampart scan image PATH                  an OCI layout directory or image tarball: secrets and packages

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 error. Suppressions
come from .rampart/ignore.yaml; an expired one stops suppressing and is
reported. Dependencies are matched against the local advisory database
('rampart db update' fills it).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "."
			if len(args) == 1 {
				root = args[0]
			}
			return ce.runScan(cmd, &f, root, func(ctx context.Context, s *scan.Scanner, o scan.Options) (*report.Report, error) {
				return s.Dir(ctx, root, o)
			})
		},
	}
	f.register(cmd, "all")

	var gf scanFlags
	var since string
	var revs []string
	gitCmd := &cobra.Command{
		Use:   "git [PATH]",
		Short: "Scan every commit of a git repository for secrets",
		Long: `Reads each distinct blob of the history once, straight from the object store,
and names the commit, author and path that introduced each secret.
--since REV scans only commits not reachable from REV.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo := "."
			if len(args) == 1 {
				repo = args[0]
			}
			kinds, err := scan.ParseKinds(gf.kinds)
			if err != nil {
				return err
			}
			if kinds.Deps || kinds.IaC {
				return usagef("a git history scan looks for secrets only; scan a checkout for dependencies and IaC")
			}
			return ce.runScan(cmd, &gf, repo, func(ctx context.Context, s *scan.Scanner, o scan.Options) (*report.Report, error) {
				g := source.GitOptions{Include: revs}
				if since != "" {
					g.Exclude = []string{since}
				}
				return s.Git(ctx, repo, g, o)
			})
		},
	}
	gf.register(gitCmd, "secrets")
	gitCmd.Flags().StringVar(&since, "since", "", "scan only commits not reachable from this revision")
	gitCmd.Flags().StringArrayVar(&revs, "rev", nil, "revisions to walk instead of all refs (repeatable; git rev-list syntax)")

	var imf scanFlags
	imageCmd := &cobra.Command{
		Use:   "image PATH",
		Short: "Scan an OCI image (layout directory or tarball) for secrets and vulnerable packages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := scan.ParseKinds(imf.kinds)
			if err != nil {
				return err
			}
			if kinds.IaC {
				return usagef("images are scanned for secrets and packages (--kinds secrets,deps)")
			}
			return ce.runScan(cmd, &imf, args[0], func(ctx context.Context, s *scan.Scanner, o scan.Options) (*report.Report, error) {
				return s.Image(ctx, args[0], o)
			})
		},
	}
	imf.register(imageCmd, "secrets,deps")
	cmd.AddCommand(gitCmd, imageCmd)
	return cmd
}

// runScan builds the scanner, runs do, applies suppressions, writes the
// report and turns the outcome into scan's exit codes.
func (ce *cmdEnv) runScan(cmd *cobra.Command, f *scanFlags, target string, do func(context.Context, *scan.Scanner, scan.Options) (*report.Report, error)) error {
	err := ce.scanOnce(cmd, f, target, do)
	var ec *exitCodeError
	if err == nil || errors.As(err, &ec) {
		return err
	}
	return &exitCodeError{code: scanError, err: err}
}

func (ce *cmdEnv) scanOnce(cmd *cobra.Command, f *scanFlags, target string, do func(context.Context, *scan.Scanner, scan.Options) (*report.Report, error)) error {
	ctx := cmd.Context()
	format := f.format
	if format == "" {
		format = "table"
		if ce.output == "json" {
			format = "json"
		}
	}
	switch format {
	case "table", "json", "sarif", "cyclonedx", "spdx":
	default:
		return usagef("--format must be table, json, sarif, cyclonedx or spdx")
	}
	failOn := report.SeverityUnknown
	if f.failOn != "none" {
		s, err := report.ParseSeverity(f.failOn)
		if err != nil || s == report.SeverityUnknown {
			return usagef("--fail-on: %v", err)
		}
		failOn = s
	}
	kinds, err := scan.ParseKinds(f.kinds)
	if err != nil {
		return err
	}
	ignorePath := f.ignoreFile
	if ignorePath == "" {
		if fi, err := os.Stat(target); err == nil && fi.IsDir() {
			ignorePath = filepath.Join(target, filepath.FromSlash(ignore.DefaultPath))
		}
	}
	var sup *ignore.File
	if ignorePath != "" {
		if sup, err = ignore.Load(ignorePath); err != nil {
			return apperr.Wrap(err, apperr.Invalid, err.Error())
		}
	}
	var db *advisory.DB
	if kinds.Deps {
		if db, err = ce.openAdvisories(ctx, f.db); err != nil {
			return err
		}
		if db != nil {
			defer db.Close()
		}
	}
	s, err := scan.New(ctx, scan.Config{RuleFiles: f.rules, ChecksDir: f.checks, Advisories: db})
	if err != nil {
		return err
	}
	opts := scan.Options{Kinds: kinds, MaxFileSize: f.maxSize, Exclude: f.exclude}
	bar := ce.progressLine(f)
	if bar != nil {
		opts.Progress = bar.update
	}
	started := time.Now()
	rep, err := do(ctx, s, opts)
	if bar != nil {
		bar.clear()
	}
	if err != nil {
		return err
	}
	if sup != nil {
		sup.Apply(rep, time.Now())
	}
	if err := ce.writeReport(rep, format, f, time.Since(started)); err != nil {
		return err
	}
	if failOn != report.SeverityUnknown {
		if n := rep.CountAtLeast(failOn); n > 0 {
			return &exitCodeError{code: scanFindings, msg: fmt.Sprintf("%d finding(s) at or above %s", n, failOn)}
		}
	}
	return nil
}

// openAdvisories opens the advisory database if it exists; a missing one
// is not an error (the report then says so).
func (ce *cmdEnv) openAdvisories(ctx context.Context, path string) (*advisory.DB, error) {
	if path == "" {
		var err error
		if path, err = advisory.DefaultPath(ce.Getenv); err != nil {
			return nil, nil
		}
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return advisory.Open(ctx, path)
}

func (ce *cmdEnv) writeReport(rep *report.Report, format string, f *scanFlags, took time.Duration) error {
	var buf bytes.Buffer
	var err error
	name := filepath.Base(rep.Target)
	switch format {
	case "json":
		err = writeJSON(&buf, rep)
	case "sarif":
		err = sarif.Write(&buf, rep, sarif.Tool{Name: "Rampart", Version: version(), InformationURI: "https://github.com/rampartsec/rampart"})
	case "cyclonedx":
		err = sbom.CycloneDX(&buf, rep, sbom.Options{Name: name, ToolVersion: version()})
	case "spdx":
		err = sbom.SPDX(&buf, rep, sbom.Options{Name: name, ToolVersion: version()})
	default:
		color := f.out == "" && !f.noColor && ce.Getenv("NO_COLOR") == "" && isTerminal(ce.Stdout)
		writeTable(&buf, rep, color, took)
	}
	if err != nil {
		return err
	}
	if f.out == "" {
		_, err := ce.Stdout.Write(buf.Bytes())
		return err
	}
	tmp := f.out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.out)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar shows one updating line on a terminal's stderr.
type progressBar struct {
	w     io.Writer
	start time.Time
	shown bool
}

func (ce *cmdEnv) progressLine(f *scanFlags) *progressBar {
	if f.noProgress || !isTerminal(ce.Stderr) {
		return nil
	}
	return &progressBar{w: ce.Stderr, start: time.Now()}
}

func (p *progressBar) update(s report.Stats) {
	if time.Since(p.start) < 500*time.Millisecond {
		return // short scans show nothing
	}
	p.shown = true
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "\r\x1b[Kscanning: %d files, %s, %s/s", s.Files, humanBytes(s.Bytes), humanBytes(int64(float64(s.Bytes)/el)))
}

func (p *progressBar) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "devel"
}
