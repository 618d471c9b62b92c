package secrets

import (
	"context"
	"crypto/sha256"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// job is a file handed to a worker, numbered in the order the source
// produced it (for a git history: the order commits introduced blobs).
type job struct {
	seq  int64
	file source.File
}

// result is what a worker found in one file.
type result struct {
	seq      int64
	findings []report.Finding
	keys     []string // per finding: rule, path and a hash of the secret
	baseline bool
}

// ScanSource scans every file of src on workers goroutines (GOMAXPROCS
// when workers < 1), attaching each file's origin (commit, author, date,
// layer) to its findings. The same secret found under the same path in
// several versions of a file (one per commit that changed the file) is
// reported once, for the version the source produced first: in a git
// history, the commit that introduced it. Secrets in baseline files are
// not reported, nor are the same secrets in later versions.
//
// Findings are sorted by path, line and column. Notes say what the source
// skipped. The error is the source's (a bad revision, a corrupt image) or
// the context's; findings so far are returned with it.
func (e *Engine) ScanSource(ctx context.Context, src source.Source, workers int) ([]report.Finding, []report.Note, report.Stats, error) {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan job, 2*workers)
	results := make(chan result, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				fs, keys := e.scan(j.file.Path, j.file.Data, j.file.Loc)
				if len(fs) > 0 {
					results <- result{seq: j.seq, findings: fs, keys: keys, baseline: j.file.Baseline}
				}
			}
		})
	}
	// Collect while the source walks.
	collected := make(chan []result, 1)
	go func() {
		var all []result
		for r := range results {
			all = append(all, r)
		}
		collected <- all
	}()

	var seq int64
	stats, notes, err := src.Walk(ctx, func(f source.File) error {
		if f.Loc.Path == "" {
			f.Loc.Path = f.Path
		}
		select {
		case jobs <- job{seq: seq, file: f}:
			seq++
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	close(results)
	all := <-collected

	// Keep, for every key, the findings of the earliest file.
	slices.SortFunc(all, func(a, b result) int { return int(a.seq - b.seq) })
	first := map[string]int64{}
	var findings []report.Finding
	for _, r := range all {
		for i, f := range r.findings {
			k := r.keys[i]
			if s, ok := first[k]; ok && s != r.seq {
				continue
			}
			first[k] = r.seq
			if !r.baseline {
				findings = append(findings, f)
			}
		}
	}
	slices.SortStableFunc(findings, func(a, b report.Finding) int {
		if c := strings.Compare(a.Location.Path, b.Location.Path); c != 0 {
			return c
		}
		if a.Location.StartLine != b.Location.StartLine {
			return a.Location.StartLine - b.Location.StartLine
		}
		if a.Location.StartCol != b.Location.StartCol {
			return a.Location.StartCol - b.Location.StartCol
		}
		return strings.Compare(a.RuleID, b.RuleID)
	})
	return findings, notes, stats, err
}

// dedupKey identifies a secret under a path for one rule, across versions
// of a file. It stays in memory: it hashes the secret.
func dedupKey(ruleID, path string, secret []byte) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(secret)
	return string(h.Sum(nil))
}
