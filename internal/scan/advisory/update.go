package advisory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// DefaultEcosystems are the ecosystems Update downloads when it is given
// none: every ecosystem package deps inventories.
var DefaultEcosystems = []string{
	"Go", "npm", "PyPI", "Maven", "crates.io", "RubyGems", "Packagist", "NuGet",
	"Debian", "Alpine", "Red Hat",
}

// maxArchiveSize caps one downloaded archive (OSV's largest, npm, is well
// under it).
const maxArchiveSize = 8 << 30

// Update downloads BASE/ECOSYSTEM/all.zip for each ecosystem (all of
// DefaultEcosystems when none are given) and imports it. baseURL defaults
// to DefaultBaseURL. An ecosystem whose download or archive fails does not
// stop the others: the returned result covers what was imported and the
// error names every ecosystem that failed.
func (db *DB) Update(ctx context.Context, baseURL string, ecosystems []string) (*ImportResult, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, apperr.E(apperr.Invalid, "advisory source %q is not an http(s) URL", baseURL)
	}
	if len(ecosystems) == 0 {
		ecosystems = DefaultEcosystems
	}
	total := &ImportResult{}
	var errs []error
	for _, eco := range ecosystems {
		if eco == "" || strings.ContainsAny(eco, "/\\") {
			errs = append(errs, fmt.Errorf("%q is not an ecosystem name", eco))
			continue
		}
		src := strings.TrimSuffix(baseURL, "/") + "/" + url.PathEscape(eco) + "/all.zip"
		res, err := db.updateOne(ctx, src)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %s", eco, apperr.Message(err)))
			continue
		}
		total.add(res)
	}
	if len(errs) > 0 {
		return total, apperr.Wrap(errors.Join(errs...), apperr.Unavailable, "update failed: "+errors.Join(errs...).Error())
	}
	return total, nil
}

func (db *DB) updateOne(ctx context.Context, src string) (*ImportResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "bad URL "+src)
	}
	resp, err := db.client().Do(req)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("download %s: %v", src, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, apperr.E(apperr.Unavailable, "download %s: %s", src, resp.Status)
	}
	tmp, err := os.CreateTemp("", "rampart-osv-*.zip")
	if err != nil {
		return nil, fmt.Errorf("temporary file: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, maxArchiveSize+1))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("download %s: %v", src, err))
	}
	if n > maxArchiveSize {
		return nil, apperr.E(apperr.TooLarge, "download %s: archive is over %d bytes", src, int64(maxArchiveSize))
	}
	zs, err := zipSource(tmp, n)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("%s is not a valid zip archive: %v", src, err))
	}
	return db.importFrom(ctx, zs, src, true)
}
