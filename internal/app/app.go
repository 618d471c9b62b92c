// Package app is the composition root: the only place that knows which
// implementations exist. It builds backends, then services, then servers,
// wires the HTTP middleware chain in one visible order, and runs everything
// until its context ends.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/httpmw"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/pki"
	"github.com/rampartsec/rampart/internal/problem"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/keyring"
	"github.com/rampartsec/rampart/internal/vault/transitkms"
	"github.com/rampartsec/rampart/internal/web"
)

// Options are what the caller of New provides besides configuration.
type Options struct {
	Logger *slog.Logger
	// Listener, when set, is used instead of listening on cfg.Addr (tests
	// listen on :0 first to learn the port).
	Listener net.Listener
	// Clock, when set, replaces time.Now for identity (sessions, tokens,
	// TOTP, sign-in throttling) and the audit log, so end-to-end tests can
	// move time forward.
	Clock func() time.Time
}

// App is a running Rampart.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	db      *store.DB
	ln      net.Listener
	srv     *http.Server
	url     string
	caFile  string
	adminPW string
	Audit   *audit.Log
	IDs     *identity.Service
	OIDC    *oidcop.Provider
	// Federation runs sign-ins through orgs' upstream identity providers.
	Federation *federation.Service
	API        *httpapi.Server
	Registry   *prometheus.Registry
	// Vault keeps secrets and signing keys.
	Vault *vault.Service
}

// New builds a Rampart from cfg: it opens (and migrates) the store,
// creates keys and TLS material on first start, and prepares the listener.
// Call Run to serve, or Close to release everything.
func New(ctx context.Context, cfg config.Config, opt Options) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "invalid configuration: "+err.Error())
	}
	log := opt.Logger
	if log == nil {
		log = logging.New(os.Stderr, cfg.LogLevel)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	a := &App{cfg: cfg, log: log, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	a.ln = opt.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, apperr.Wrap(err, apperr.Unavailable, "listen on "+cfg.Addr)
		}
	}
	a.url = cfg.PublicURL(a.ln.Addr().String())

	if a.db, err = store.Open(ctx, cfg.StoreURL()); err != nil {
		return nil, err
	}
	if err := a.db.Migrate(ctx, audit.Migrations, identity.Migrations, oidcop.Migrations, federation.Migrations, vault.Migrations); err != nil {
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	keys, kek, err := openKeyring(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Audit = audit.New(a.db, opt.Clock)
	if a.IDs, err = identity.New(identity.Deps{DB: a.db, Audit: a.Audit, Sealer: keys, Logger: log, Clock: opt.Clock,
		SessionIdle: cfg.Session.IdleTimeout, SessionAbsolute: cfg.Session.AbsoluteTimeout, PublicURL: a.url}); err != nil {
		return nil, err
	}
	created, pw, err := a.IDs.EnsureAdmin(ctx, cfg.AdminPassword)
	if err != nil {
		return nil, err
	}
	if created && cfg.AdminPassword == "" {
		a.adminPW = pw
	}

	if a.OIDC, err = oidcop.New(oidcop.Deps{IDs: a.IDs, Logger: log, Issuer: a.url,
		AccessTokenLifetime: cfg.OIDC.AccessTokenLifetime, RefreshTokenLifetime: cfg.OIDC.RefreshTokenLifetime,
		IDTokenLifetime: cfg.OIDC.IDTokenLifetime, KeyRotation: cfg.OIDC.KeyRotation,
		DevicePollInterval: cfg.OIDC.DevicePollInterval}); err != nil {
		return nil, err
	}
	if err := a.OIDC.EnsureCLIClient(ctx); err != nil {
		return nil, err
	}

	if a.Federation, err = federation.New(federation.Deps{IDs: a.IDs, Logger: log, PublicURL: a.url}); err != nil {
		return nil, err
	}

	if a.Vault, err = vault.New(ctx, vault.Deps{DB: a.db, Audit: a.Audit, IDs: a.IDs, KEK: kek, Logger: log, Clock: opt.Clock}); err != nil {
		return nil, err
	}

	if a.API, err = httpapi.New(httpapi.Deps{IDs: a.IDs, Audit: a.Audit, Logger: log, MaxBody: cfg.Limits.MaxBodyBytes,
		Extra: slices.Concat(a.OIDC.Routes(), a.Federation.Routes(), a.Vault.Routes())}); err != nil {
		return nil, err
	}
	ui, err := web.New(web.Deps{IDs: a.IDs, Audit: a.Audit, Logger: log, PublicURL: a.url, Secure: cfg.TLS,
		MaxBody: cfg.Limits.MaxBodyBytes, Pages: slices.Concat(a.OIDC.Pages(), a.Federation.Pages(), a.Vault.Pages()),
		Nav: slices.Concat(a.OIDC.Nav(), a.Vault.Nav()), Templates: []fs.FS{oidcop.Templates(), federation.Templates(), vault.Templates()},
		LoginSources: a.Federation.LoginSources})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	a.API.Register(mux)
	ui.Register(mux)
	a.OIDC.Register(mux)
	a.registerOps(mux)

	// The middleware chain, outermost first.
	authenticator := &authn.Authenticator{IDs: a.IDs, OAuth: a.OIDC}
	// The Vault-compatible API has its own router and Vault-style errors.
	mux.Handle("/v1/", a.Vault.KVHandler(authenticator, cfg.Vault.KVMount, cfg.Limits.MaxBodyBytes, log))
	metrics := httpmw.NewMetrics(a.Registry)
	var h http.Handler = httpmw.Route(mux)
	// OAuth endpoints authenticate their callers (client secrets, access
	// tokens) themselves; everything else goes through Authenticate.
	h = oidcop.SkipAuthn(h, httpmw.Authenticate(authenticator, log, h))
	h = httpmw.SecurityHeaders(cfg.TLS, h)
	h = httpmw.Observe(log, metrics, h)
	h = httpmw.RequestID(h)
	h = httpmw.Recover(log, h)

	a.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.TLS {
		ca, err := pki.EnsureCA(filepath.Join(cfg.DataDir, "tls"))
		if err != nil {
			return nil, err
		}
		a.caFile = ca.CertFile()
		if abs, err := filepath.Abs(a.caFile); err == nil {
			a.caFile = abs
		}
		cert, err := ca.ServerCert(certHosts(a.url, a.ln.Addr()))
		if err != nil {
			return nil, err
		}
		a.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return a, nil
}

// openKeyring opens the keyring of cfg: the sealer identity uses for its
// small secrets, and the vault's key-encryption key.
func openKeyring(ctx context.Context, cfg config.Config) (identity.Sealer, keyring.KEK, error) {
	dir := filepath.Join(cfg.DataDir, "keys")
	switch cfg.Vault.Keyring {
	case "passphrase":
		r, err := keyring.OpenPassphraseRing(dir, []byte(cfg.Vault.Passphrase), keyring.DefaultArgon2)
		if err != nil {
			return nil, nil, err
		}
		return r.Primary(), r, nil
	case "transit":
		local, err := keyring.OpenLocal(filepath.Join(dir, "master.key"))
		if err != nil {
			return nil, nil, err
		}
		t := cfg.Vault.Transit
		kek, err := transitkms.New(ctx, transitkms.Config{Address: t.Address, Token: t.Token, Mount: t.Mount, Key: t.Key, CACert: t.CACert, Create: true})
		if err != nil {
			return nil, nil, err
		}
		return local, kek, nil
	}
	r, err := keyring.OpenFileRing(dir)
	if err != nil {
		return nil, nil, err
	}
	return r.Primary(), r, nil
}

// certHosts lists the names the server certificate must cover.
func certHosts(publicURL string, addr net.Addr) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		hosts = append(hosts, ta.IP.String())
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

// registerOps adds the operational endpoints. /healthz and /readyz are
// public (load balancers probe them); /metrics needs the metrics:read scope.
func (a *App) registerOps(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.db.Ping(ctx); err != nil {
			problem.Write(w, r, a.log, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ready\n")
	})
	prom := promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if err := authz.Check(authn.From(r.Context()).Subject, authz.MetricsRead, authz.Site); err != nil {
			problem.Write(w, r, a.log, err)
			return
		}
		prom.ServeHTTP(w, r)
	})
}

// URL is where users reach this Rampart.
func (a *App) URL() string { return a.url }

// Addr is the listener's address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// CAFile is the CA certificate clients should trust ("" without TLS).
func (a *App) CAFile() string { return a.caFile }

// GeneratedAdminPassword is the admin password generated at first start,
// or "" when the admin existed already or the password was given.
func (a *App) GeneratedAdminPassword() string { return a.adminPW }

// Run serves until ctx is cancelled, then shuts down gracefully: the
// listener closes, in-flight requests get cfg.Limits.ShutdownGrace to
// finish, and the store is closed.
func (a *App) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if a.srv.TLSConfig != nil {
			err = a.srv.ServeTLS(a.ln, "", "")
		} else {
			err = a.srv.Serve(a.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	g.Go(func() error { return a.housekeeping(gctx) })
	g.Go(func() error { return a.Vault.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		a.log.Info("shutting down", logging.KeyAddr, a.Addr())
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Limits.ShutdownGrace)
		defer cancel()
		if err := a.srv.Shutdown(sctx); err != nil {
			a.log.Warn("in-flight requests cut off at shutdown", logging.KeyErr, err)
			_ = a.srv.Close()
		}
		return nil
	})
	err := g.Wait()
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	return err
}

// housekeeping runs periodic clean-ups until ctx ends.
func (a *App) housekeeping(ctx context.Context) error {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := a.IDs.PurgeExpiredSessions(ctx); err != nil {
				a.log.Warn("purge expired sessions", logging.KeyErr, err)
			} else if n > 0 {
				a.log.Debug("purged expired sessions", "count", n)
			}
			if _, err := a.OIDC.Purge(ctx); err != nil {
				a.log.Warn("purge expired oidc grants", logging.KeyErr, err)
			}
		}
	}
}

// Close releases the listener and the store.
func (a *App) Close() error {
	var errs []error
	if a.ln != nil {
		if err := a.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
		a.db = nil
	}
	return errors.Join(errs...)
}
