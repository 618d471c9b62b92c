package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/advisory"
)

// registryDriver chooses the registry's storage driver by URL: the
// filesystem under the data directory by default, a directory given as
// file:///PATH, or S3 (s3://BUCKET/PREFIX?region=R&endpoint=URL&secure=false).
// root is the filesystem driver's directory ("" for S3).
func registryDriver(ctx context.Context, cfg config.Config) (d storagedriver.StorageDriver, root string, err error) {
	raw := cfg.Registry.Storage
	if raw == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "registry"))
		if err != nil {
			return nil, "", err
		}
		return filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 100}), dir, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", apperr.E(apperr.Invalid, "registry storage URL is malformed")
	}
	switch u.Scheme {
	case "file":
		dir := filepath.Clean(u.Path)
		return filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 100}), dir, nil
	case "s3":
		q := u.Query()
		params := map[string]any{
			"bucket":         u.Host,
			"region":         q.Get("region"),
			"rootdirectory":  "/" + strings.Trim(u.Path, "/"),
			"forcepathstyle": q.Get("endpoint") != "",
		}
		if params["region"] == "" {
			params["region"] = "us-east-1"
		}
		if e := q.Get("endpoint"); e != "" {
			params["regionendpoint"] = e
		}
		if q.Get("secure") == "false" {
			params["secure"] = false
		}
		d, err := s3.FromParameters(ctx, params)
		if err != nil {
			return nil, "", apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("registry S3 storage: %v", err))
		}
		return d, "", nil
	}
	return nil, "", apperr.E(apperr.Invalid, "registry storage must be file:///PATH or s3://BUCKET/PREFIX")
}

// newRegistry opens the advisory database under the data directory
// (`rampart db import --db DATA/advisories.db` fills it), builds the
// scanner and the registry.
func (a *App) newRegistry(ctx context.Context, cfg config.Config, log *slog.Logger, keys identity.Sealer, authenticator *authn.Authenticator, clock func() time.Time) error {
	var err error
	if a.Advisories, err = advisory.Open(ctx, filepath.Join(cfg.DataDir, "advisories.db")); err != nil {
		return fmt.Errorf("open advisory database: %w", err)
	}
	scanner, err := scan.New(ctx, scan.Config{Advisories: a.Advisories})
	if err != nil {
		return err
	}
	driver, root, err := registryDriver(ctx, cfg)
	if err != nil {
		return err
	}
	// Images are signed with the vault's site key.
	signer, err := a.Vault.SiteSigner(ctx)
	if err != nil {
		return err
	}
	a.OCI, err = registry.New(ctx, registry.Deps{DB: a.db, Audit: a.Audit, IDs: a.IDs, Authn: authenticator, Driver: driver, LocalRoot: root,
		Sealer: keys, Logger: log, PublicURL: a.url, Scanner: scanner, Advisories: registry.AdvisoryDBVersion{DB: a.Advisories},
		Clock: clock, Signer: signer, Policy: imageGate{policy: a.Policy, host: registryHost(a.url), orgID: a.repositoryOrg}})
	return err
}

// repositoryOrg is the id of the org an image repository (ORG/…)
// belongs to.
func (a *App) repositoryOrg(ctx context.Context, repository string) (int64, error) {
	org, _, _ := strings.Cut(repository, "/")
	o, err := a.IDs.Org(ctx, org)
	if err != nil {
		return 0, err
	}
	return o.ID, nil
}
