package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/deps"
	"github.com/rampartsec/rampart/internal/scan/iac"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// Config sets a Scanner up once: its rules, checks and advisory database.
type Config struct {
	// RuleFiles are extra secret rules in gitleaks' TOML format. A file
	// with `[extend] useDefault = true` adds to Rampart's rules; without it
	// the file's rules are used alongside ours all the same (Rampart never
	// scans with fewer rules than its own).
	RuleFiles []string
	// ChecksDir holds extra Rego checks for IaC files.
	ChecksDir string
	// Advisories is the advisory database for dependency findings; nil
	// leaves dependencies unmatched, with a note saying so.
	Advisories *advisory.DB
}

// Scanner runs every kind of scan. Build it once; it is safe for
// concurrent use.
type Scanner struct {
	secrets *secrets.Engine
	iac     *iac.Scanner
	db      *advisory.DB
}

// New compiles the rules and checks of cfg.
func New(ctx context.Context, cfg Config) (*Scanner, error) {
	rules := secrets.DefaultRules()
	for _, f := range cfg.RuleFiles {
		extra, err := loadRules(f)
		if err != nil {
			return nil, err
		}
		rules = mergeRules(rules, extra)
	}
	eng, err := secrets.New(rules)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "secret rules: "+err.Error())
	}
	ic, err := iac.New(ctx, iac.Options{ExtraChecksDir: cfg.ChecksDir})
	if err != nil {
		return nil, err
	}
	return &Scanner{secrets: eng, iac: ic, db: cfg.Advisories}, nil
}

func loadRules(path string) ([]secrets.Rule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "open rule file "+path)
	}
	defer f.Close()
	rules, err := secrets.ParseGitleaksTOML(f)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, path+": "+err.Error())
	}
	return rules, nil
}

// mergeRules adds extra to base; an extra rule replaces a base rule of the
// same id.
func mergeRules(base, extra []secrets.Rule) []secrets.Rule {
	ids := map[string]int{}
	out := slices.Clone(base)
	for i, r := range out {
		ids[r.ID] = i
	}
	for _, r := range extra {
		if i, ok := ids[r.ID]; ok {
			out[i] = r
			continue
		}
		ids[r.ID] = len(out)
		out = append(out, r)
	}
	return out
}

// Kinds selects scanners.
type Kinds struct {
	Secrets, Deps, IaC bool
}

// AllKinds runs every scanner.
var AllKinds = Kinds{Secrets: true, Deps: true, IaC: true}

// ParseKinds reads a comma-separated list: secrets, deps, iac (or all).
func ParseKinds(s string) (Kinds, error) {
	var k Kinds
	for part := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(strings.ToLower(part)) {
		case "all":
			k = AllKinds
		case "secrets", "secret":
			k.Secrets = true
		case "deps", "dependencies", "sca", "vulns":
			k.Deps = true
		case "iac", "misconfig":
			k.IaC = true
		case "":
		default:
			return k, apperr.E(apperr.Invalid, "unknown scan kind %q (want secrets, deps, iac or all)", part)
		}
	}
	if k == (Kinds{}) {
		return k, apperr.E(apperr.Invalid, "no scan kind selected")
	}
	return k, nil
}

// Options tune one scan.
type Options struct {
	Kinds Kinds
	// MaxFileSize skips larger files with a note (0: 10 MiB).
	MaxFileSize int64
	// Exclude are path globs (doublestar syntax, relative to the target's
	// root) left out of a directory scan entirely: build outputs, caches.
	Exclude []string
	// Workers scanning content (0: one per core).
	Workers int
	// Progress, when set, is called about ten times a second with what
	// has been covered so far, and once at the end.
	Progress func(report.Stats)
	// Now stamps the report (default time.Now).
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// progress counts what a walk has handed over and reports it periodically.
type progress struct {
	files, bytes atomic.Int64
	stop         chan struct{}
	done         sync.WaitGroup
}

func startProgress(fn func(report.Stats)) *progress {
	p := &progress{stop: make(chan struct{})}
	if fn == nil {
		return p
	}
	p.done.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				fn(report.Stats{Files: p.files.Load(), Bytes: p.bytes.Load()})
			}
		}
	})
	return p
}

func (p *progress) finish() {
	close(p.stop)
	p.done.Wait()
}

// teeSource hands every file of a source to also (IaC scanning, progress)
// before the secret engine gets it.
type teeSource struct {
	source.Source
	also func(source.File)
}

func (t teeSource) Walk(ctx context.Context, fn func(source.File) error) (report.Stats, []report.Note, error) {
	return t.Source.Walk(ctx, func(f source.File) error {
		t.also(f)
		return fn(f)
	})
}

// iacPool scans IaC files on its own goroutines while the walk goes on.
type iacPool struct {
	jobs     chan source.File
	wg       sync.WaitGroup
	mu       sync.Mutex
	findings []report.Finding
	notes    []report.Note
}

func (s *Scanner) startIaC(ctx context.Context, workers int) *iacPool {
	p := &iacPool{jobs: make(chan source.File, 4*workers)}
	for range workers {
		p.wg.Go(func() {
			for f := range p.jobs {
				found, ns := s.iac.Scan(ctx, f.Path, f.Data)
				p.mu.Lock()
				p.findings = append(p.findings, found...)
				p.notes = append(p.notes, ns...)
				p.mu.Unlock()
			}
		})
	}
	return p
}

func (p *iacPool) wait() { close(p.jobs); p.wg.Wait() }

// Dir scans a directory: secrets and IaC misconfiguration in every file
// (one walk feeds both), and dependencies from its lockfiles and
// manifests.
func (s *Scanner) Dir(ctx context.Context, root string, o Options) (*report.Report, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "cannot scan "+root+": "+strings.TrimPrefix(err.Error(), "stat "+root+": "))
	}
	if !fi.IsDir() {
		return nil, apperr.E(apperr.Invalid, "%s is not a directory", root)
	}
	abs, _ := filepath.Abs(root)
	r := &report.Report{Target: abs, TargetKind: "dir", StartedAt: o.now()}
	prog := startProgress(o.Progress)
	var pool *iacPool
	if o.Kinds.IaC {
		pool = s.startIaC(ctx, max(1, o.workers()/2))
	}
	skip, err := excluder(o.Exclude)
	if err != nil {
		return nil, err
	}
	src := teeSource{Source: source.Dir(root, source.Options{MaxFileSize: o.MaxFileSize, Skip: skip}), also: func(f source.File) {
		prog.files.Add(1)
		prog.bytes.Add(int64(len(f.Data)))
		if pool != nil && s.iac.Applies(f.Path) {
			select {
			case pool.jobs <- f:
			case <-ctx.Done():
			}
		}
	}}
	var walkErr error
	if o.Kinds.Secrets {
		var found []report.Finding
		found, r.Notes, r.Stats, walkErr = s.secrets.ScanSource(ctx, src, o.workers())
		r.Findings = append(r.Findings, found...)
	} else if o.Kinds.IaC {
		r.Stats, r.Notes, walkErr = src.Walk(ctx, func(source.File) error { return nil })
	}
	if pool != nil {
		pool.wait()
		r.Findings = append(r.Findings, pool.findings...)
		r.Notes = append(r.Notes, pool.notes...)
	}
	prog.finish()
	if walkErr != nil {
		return nil, walkErr
	}
	if o.Kinds.Deps {
		if err := s.dependencies(ctx, r, os.DirFS(root), deps.Options{Root: root, MaxFileSize: o.MaxFileSize, Skip: skip}); err != nil {
			return nil, err
		}
	}
	return s.finish(r, o), nil
}

// excluder turns exclusion globs into a skip function (nil for none). A
// directory matching a glob, or whose "DIR/**" matches, is not entered.
func excluder(globs []string) (func(string, bool) bool, error) {
	if len(globs) == 0 {
		return nil, nil
	}
	clean := make([]string, len(globs))
	for i, g := range globs {
		g = strings.TrimPrefix(filepath.ToSlash(g), "./")
		if !doublestar.ValidatePattern(g) {
			return nil, apperr.E(apperr.Invalid, "invalid exclude pattern %q", globs[i])
		}
		clean[i] = g
	}
	return func(p string, dir bool) bool {
		for _, g := range clean {
			if ok, _ := doublestar.Match(g, p); ok {
				return true
			}
			if dir {
				if ok, _ := doublestar.Match(g, p+"/x"); ok && strings.HasSuffix(g, "/**") {
					return true
				}
			}
		}
		return false
	}, nil
}

// Git scans a repository's history for secrets: every blob once, each
// finding attributed to the commit that introduced it.
func (s *Scanner) Git(ctx context.Context, repo string, g source.GitOptions, o Options) (*report.Report, error) {
	abs, _ := filepath.Abs(repo)
	r := &report.Report{Target: abs, TargetKind: "git", StartedAt: o.now()}
	prog := startProgress(o.Progress)
	if g.MaxFileSize == 0 {
		g.MaxFileSize = o.MaxFileSize
	}
	src := teeSource{Source: source.Git(repo, g), also: func(f source.File) {
		prog.files.Add(1)
		prog.bytes.Add(int64(len(f.Data)))
	}}
	found, notes, stats, err := s.secrets.ScanSource(ctx, src, o.workers())
	prog.finish()
	if err != nil {
		return nil, err
	}
	r.Findings, r.Notes, r.Stats = found, notes, stats
	return s.finish(r, o), nil
}

// Image scans an OCI image (a layout directory or a tarball): secrets in
// every file of its layers, and the OS and language packages of its
// flattened filesystem.
func (s *Scanner) Image(ctx context.Context, path string, o Options) (*report.Report, error) {
	img, err := source.OpenImage(path, source.ImageOptions{MaxFileSize: o.MaxFileSize})
	if err != nil {
		return nil, err
	}
	return s.ScanImage(ctx, path, img, o)
}

// ScanImage scans an image already opened (the registry scans images it
// holds); target names it in the report.
func (s *Scanner) ScanImage(ctx context.Context, target string, img *source.ImageSource, o Options) (*report.Report, error) {
	r := &report.Report{Target: target, TargetKind: "image", StartedAt: o.now()}
	prog := startProgress(o.Progress)
	if o.Kinds.Secrets {
		src := teeSource{Source: img, also: func(f source.File) {
			prog.files.Add(1)
			prog.bytes.Add(int64(len(f.Data)))
		}}
		found, notes, stats, err := s.secrets.ScanSource(ctx, src, o.workers())
		if err != nil {
			prog.finish()
			return nil, err
		}
		r.Findings, r.Notes, r.Stats = found, notes, stats
	}
	prog.finish()
	if o.Kinds.Deps {
		fsys, notes, err := img.FS(ctx)
		if err != nil {
			return nil, err
		}
		r.Notes = append(r.Notes, notes...)
		if err := s.dependencies(ctx, r, fsys, deps.Options{MaxFileSize: o.MaxFileSize}); err != nil {
			return nil, err
		}
	}
	return s.finish(r, o), nil
}

// dependencies inventories fsys and matches the packages against the
// advisory database.
func (s *Scanner) dependencies(ctx context.Context, r *report.Report, fsys fs.FS, opts deps.Options) error {
	pkgs, notes, err := deps.Inventory(ctx, fsys, opts)
	if err != nil {
		return err
	}
	r.Packages = pkgs
	r.Notes = append(r.Notes, notes...)
	if len(pkgs) == 0 {
		return nil
	}
	if s.db == nil {
		r.Notes = append(r.Notes, report.Note{Message: fmt.Sprintf(
			"%d packages found but no advisory database is open: run 'rampart db update' (or 'rampart db import PATH' offline)", len(pkgs))})
		return nil
	}
	found, err := s.db.Match(ctx, pkgs)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("match advisories: %w", err)
	}
	for i := range found {
		if found[i].Severity == report.SeverityUnknown {
			// A gate must fail closed: an advisory that publishes no
			// severity (the Go database never does) counts as high.
			found[i].Severity = report.SeverityHigh
			found[i].Description = strings.TrimSpace(found[i].Description + " The advisory publishes no severity; Rampart treats it as high.")
		}
	}
	r.Findings = append(r.Findings, found...)
	return nil
}

// finish sorts the report: worst first, then by path, line and rule.
func (s *Scanner) finish(r *report.Report, o Options) *report.Report {
	r.FinishedAt = o.now()
	slices.SortStableFunc(r.Findings, func(a, b report.Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.Location.Path, b.Location.Path),
			cmp.Compare(a.Location.StartLine, b.Location.StartLine),
			cmp.Compare(a.RuleID, b.RuleID),
			cmp.Compare(a.Fingerprint, b.Fingerprint),
		)
	})
	if r.Findings == nil {
		r.Findings = []report.Finding{}
	}
	if o.Progress != nil {
		o.Progress(r.Stats)
	}
	return r
}
