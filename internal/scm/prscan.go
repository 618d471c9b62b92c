package scm

import (
	"context"
	"fmt"
	"sync"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// findingsCache remembers the findings of recent pull request heads: the
// pull request page asks for them on every view.
type findingsCache struct {
	mu    sync.Mutex
	order []string
	byKey map[string][]report.Finding
}

const findingsCacheSize = 256

func (c *findingsCache) get(k string) ([]report.Finding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.byKey[k]
	return f, ok
}

func (c *findingsCache) put(k string, f []report.Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string][]report.Finding{}
	}
	if _, ok := c.byKey[k]; !ok {
		c.order = append(c.order, k)
		if len(c.order) > findingsCacheSize {
			delete(c.byKey, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.byKey[k] = f
}

// PullFindings returns what the scanner finds in the content a pull
// request introduces: secrets in every blob its commits add that the base
// branch does not have (new against the base, so secrets already on the
// base branch are not blamed on the pull request).
func (s *Service) PullFindings(ctx context.Context, r Repo, pr PullRequest) ([]report.Finding, error) {
	base := pr.BaseSHA
	if pr.State == PullOpen {
		if cur, err := s.resolveCommit(ctx, s.Path(r), nil, "refs/heads/"+pr.Base); err == nil {
			base = cur
		}
	}
	key := fmt.Sprintf("%d:%s:%s", r.ID, base, pr.HeadSHA)
	if f, ok := s.findings.get(key); ok {
		return f, nil
	}
	src := source.Git(s.Path(r), source.GitOptions{Include: []string{pr.HeadSHA}, Exclude: []string{base}})
	fs, _, _, err := s.engine.ScanSource(ctx, src, 0)
	if err != nil {
		return nil, fmt.Errorf("scan pull request: %w", err)
	}
	var out []report.Finding
	for _, f := range fs {
		if f.Suppressed == nil {
			out = append(out, f)
		}
	}
	s.findings.put(key, out)
	return out, nil
}
