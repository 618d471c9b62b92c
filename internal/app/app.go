// Package app is the composition root: the only place that knows which
// implementations exist. It builds backends, then services, then servers,
// wires the HTTP middleware chain in one visible order, and runs everything
// until its context ends.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/events"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/blob/fileblob"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/kubetarget"
	"github.com/rampartsec/rampart/internal/deploy/noderuntime"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/httpmw"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
	"github.com/rampartsec/rampart/internal/identity/realm"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/pipeline/containerexec"
	"github.com/rampartsec/rampart/internal/pipeline/hostexec"
	"github.com/rampartsec/rampart/internal/pipeline/imagesteps"
	"github.com/rampartsec/rampart/internal/pki"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/problem"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/scm/githttp"
	"github.com/rampartsec/rampart/internal/scm/gitssh"
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
	// GatewayListener, when set, is used instead of listening on
	// cfg.Gateway.Addr.
	GatewayListener net.Listener
	// GatewayAccessLog, when set, receives the gateway's access log lines
	// (the JSON records Logger would write, in batches) instead of Logger:
	// give it Logger's destination.
	GatewayAccessLog io.Writer
	// Clock, when set, replaces time.Now for identity (sessions, tokens,
	// TOTP, sign-in throttling) and the audit log, so end-to-end tests can
	// move time forward.
	Clock func() time.Time
	// Repos, when set, tells boards and alerts where a repository lives
	// on disk and which branch is its default, instead of scm: for tests
	// that build repositories with git and publish scm's events themselves.
	Repos interface {
		RepoPath(ctx context.Context, repoID int64) (path, defaultBranch string, err error)
	}
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
	// Events carries durable typed events between components.
	Events *events.Bus
	IDs    *identity.Service
	OIDC   *oidcop.Provider
	// Federation runs sign-ins through orgs' upstream identity providers.
	Federation *federation.Service
	// Realms are the orgs' end-user realms (gateway sign-in).
	Realms   *realm.Service
	API      *httpapi.Server
	Registry *prometheus.Registry

	// Boards keeps work items and links them to commits and pull requests.
	Boards *boards.Service
	// Alerts keeps the security alerts of repositories' default branches.
	Alerts   *alerts.Service
	scanners *alerts.LocalScanner
	// Gateway is the layer-7 gateway (nil when turned off) and Routes
	// the service managing its routes.
	Gateway  *gateway.Gateway
	Routes   *gateway.Service
	gwLn     net.Listener
	gwURL    string
	matchLog *os.File
	// SCM hosts git repositories and pull requests.
	SCM    *scm.Service
	sshLn  net.Listener
	sshSrv *gitssh.Server
	// Policy runs the policy gates and keeps the decision log.
	Policy *policy.Service
	// OCI is the container registry at /v2/; Advisories the advisory
	// database under the data directory it scans against.
	OCI        *registry.Service
	Advisories *advisory.DB
	// Pipelines runs CI pipelines.
	Pipelines *pipeline.Service
	// Deploy runs environments, releases and deployments; NodeRuntime
	// is its runc target (nil when runc or root is missing).
	Deploy      *deploy.Service
	NodeRuntime *noderuntime.Runtime
	// Vault keeps secrets and serves them to jobs, workloads and the KV API.
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
	if err := a.db.Migrate(ctx, events.Migrations, audit.Migrations, identity.Migrations, oidcop.Migrations, federation.Migrations,
		gateway.Migrations, scm.Migrations, boards.Migrations, alerts.Migrations, policy.Migrations, registry.Migrations, realm.Migrations, pipeline.Migrations, deploy.Migrations, vault.Migrations); err != nil {
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	keys, kek, err := openKeyring(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Audit = audit.New(a.db, opt.Clock)
	a.Events = events.New(a.db, log, opt.Clock)
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

	if a.Vault, err = vault.New(ctx, vault.Deps{DB: a.db, Audit: a.Audit, IDs: a.IDs, KEK: kek, Logger: log, Clock: opt.Clock,
		Restarter: vaultRestarts{a}, ReadAuditJournal: filepath.Join(cfg.DataDir, "vault", "read-audit.journal")}); err != nil {
		return nil, err
	}
	if a.Realms, err = realm.New(realm.Deps{IDs: a.IDs, Logger: log, PublicURL: a.url}); err != nil {
		return nil, err
	}

	var gatewayRoutes []httpapi.Route
	if cfg.Gateway.Addr != "" {
		if err := a.newGateway(ctx, opt); err != nil {
			return nil, err
		}
		gatewayRoutes = a.Routes.Routes()
	}

	sshURL := ""
	if cfg.SCM.SSHAddr != "" {
		if a.sshLn, err = net.Listen("tcp", cfg.SCM.SSHAddr); err != nil {
			return nil, apperr.Wrap(err, apperr.Unavailable, "listen on "+cfg.SCM.SSHAddr)
		}
		sshURL = sshBaseURL(a.url, a.sshLn.Addr())
	}
	if a.SCM, err = scm.New(scm.Deps{DB: a.db, IDs: a.IDs, Audit: a.Audit, Events: a.Events, Logger: log, Clock: opt.Clock,
		Root: filepath.Join(cfg.DataDir, "git"), PublicURL: a.url, SSHURL: sshURL, MaxPushBytes: cfg.SCM.MaxPushBytes,
		HookTimeout: cfg.SCM.HookTimeout, Leaks: vaultLeaks{vault: a.Vault, repos: scmPaths{a}}, Webhooks: scm.WebhookOptions{Timeout: cfg.SCM.WebhookTimeout,
			Backoff: cfg.SCM.WebhookBackoff, Attempts: cfg.SCM.WebhookAttempts}}); err != nil {
		return nil, err
	}
	a.SCM.Subscribe(a.Events)
	if a.sshLn != nil {
		if a.sshSrv, err = gitssh.New(gitssh.Deps{SCM: a.SCM, IDs: a.IDs, Log: log,
			HostKeyFile: filepath.Join(cfg.DataDir, "ssh", "host_ed25519_key")}); err != nil {
			return nil, err
		}
	}

	// Boards and alerts find repositories through scm, unless a test
	// brings repositories of its own.
	var repos interface {
		RepoPath(ctx context.Context, repoID int64) (path, defaultBranch string, err error)
	} = scmRepos{a.SCM}
	if opt.Repos != nil {
		repos = opt.Repos
	}
	if a.Boards, err = boards.New(boards.Deps{DB: a.db, IDs: a.IDs, Audit: a.Audit, Events: a.Events, Logger: log,
		Clock: opt.Clock, PublicURL: a.url, Repos: repos}); err != nil {
		return nil, err
	}
	// The server's scanner; dependency alerts need the OSV advisory
	// database at DATA/advisories.db (rampart db import --db …).
	a.scanners = &alerts.LocalScanner{AdvisoryPath: filepath.Join(cfg.DataDir, "advisories.db")}
	if a.Alerts, err = alerts.New(alerts.Deps{DB: a.db, IDs: a.IDs, Audit: a.Audit, Events: a.Events, Logger: log,
		Scanner: a.scanners.Scanner, WorkItems: a.Boards, Repos: repos, Clock: opt.Clock, PublicURL: a.url,
		TempDir: filepath.Join(cfg.DataDir, "tmp")}); err != nil {
		return nil, err
	}
	if a.Policy, err = policy.New(ctx, policy.Deps{DB: a.db, Audit: a.Audit, IDs: a.IDs, Logger: log, Clock: opt.Clock,
		Sources: policySources(cfg.Policy), Settings: map[string]any{"rampart_registry": registryHost(a.url)},
		Timeout: cfg.Policy.Timeout, ReloadInterval: cfg.Policy.ReloadInterval, Retention: cfg.Policy.Retention,
		Registerer: a.Registry}); err != nil {
		return nil, err
	}
	// Pull requests merge only when the pre-merge policy gate allows it,
	// on top of branch protection.
	a.SCM.SetGates(preMergeGate{scm: a.SCM, policy: a.Policy})

	authenticator := &authn.Authenticator{IDs: a.IDs, OAuth: a.OIDC}
	if err := a.newRegistry(ctx, cfg, log, keys, authenticator, opt.Clock); err != nil {
		return nil, err
	}
	if err := a.newPipelines(opt); err != nil {
		return nil, err
	}
	a.wireVault()
	if err := a.newDeploy(keys, opt); err != nil {
		return nil, err
	}

	if a.API, err = httpapi.New(httpapi.Deps{IDs: a.IDs, Audit: a.Audit, Logger: log, MaxBody: cfg.Limits.MaxBodyBytes,
		Extra: slices.Concat(a.OIDC.Routes(), a.Federation.Routes(), a.SCM.Routes(), gatewayRoutes, a.Boards.Routes(), a.Alerts.Routes(), a.Policy.Routes(), a.OCI.Routes(), a.Realms.Routes(), a.Pipelines.AllRoutes(), a.Deploy.Routes(), a.Vault.Routes())}); err != nil {
		return nil, err
	}
	ui, err := web.New(web.Deps{IDs: a.IDs, Audit: a.Audit, Logger: log, PublicURL: a.url, Secure: cfg.TLS,
		MaxBody: cfg.Limits.MaxBodyBytes, Pages: slices.Concat(a.OIDC.Pages(), a.Federation.Pages(), a.SCM.Pages(), a.Boards.Pages(), a.Alerts.Pages(), a.Policy.Pages(), a.OCI.Pages(), a.Realms.Pages(), a.Pipelines.Pages(), a.Deploy.Pages(), a.Vault.Pages()),
		Nav:          slices.Concat(a.OIDC.Nav(), a.SCM.Nav(), a.Boards.Nav(), a.Alerts.Nav(), a.Policy.Nav(), a.OCI.Nav(), a.Pipelines.Nav(), a.Deploy.Nav(), a.Vault.Nav()),
		Templates:    []fs.FS{oidcop.Templates(), federation.Templates(), scm.Templates(), boards.Templates(), alerts.Templates(), policy.Templates(), registry.Templates(), realm.Templates(), pipeline.Templates(), deploy.Templates(), vault.Templates()},
		LoginSources: a.Federation.LoginSources})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	a.API.Register(mux)
	ui.Register(mux)
	a.OIDC.Register(mux)
	mux.Handle("/v2/", a.OCI)
	mux.Handle("/v2", a.OCI)
	a.registerOps(mux)

	// The middleware chain, outermost first.
	// The Vault-compatible API has its own router and Vault-style errors.
	mux.Handle("/v1/", a.Vault.KVHandler(authenticator, cfg.Vault.KVMount, cfg.Limits.MaxBodyBytes, log))
	metrics := httpmw.NewMetrics(a.Registry)
	gitMux := http.NewServeMux()
	(&githttp.Handler{SCM: a.SCM, Log: log}).Register(gitMux)
	var h http.Handler = httpmw.Route(githttp.Dispatch(gitMux, mux))
	// OAuth endpoints authenticate their callers (client secrets, access
	// tokens) themselves; everything else goes through Authenticate.
	// The registry (/v2/) authenticates its own tokens.
	h = oidcop.SkipAuthn(h, registry.SkipAuthn(h, httpmw.Authenticate(authenticator, log, h)))
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

// newGateway builds the gateway: its listener, the WAF engine writing
// match lines to the match log, TLS from the data directory's CA, and the
// route service with the config file and the stored routes loaded.
func (a *App) newGateway(ctx context.Context, opt Options) error {
	cfg := a.cfg.Gateway
	a.gwLn = opt.GatewayListener
	if a.gwLn == nil {
		var err error
		if a.gwLn, err = net.Listen("tcp", cfg.Addr); err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "listen on "+cfg.Addr+" (gateway)")
		}
	}
	scheme := "http"
	if cfg.TLS {
		scheme = "https"
	}
	a.gwURL = a.cfg.PublicURL(a.gwLn.Addr().String())
	a.gwURL = scheme + a.gwURL[strings.Index(a.gwURL, "://"):]
	var matchLog io.Writer
	if cfg.MatchLog != "off" {
		path := cfg.MatchLog
		if path == "" {
			path = filepath.Join(a.cfg.DataDir, "gateway", "waf-matches.log")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("create gateway directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open waf match log: %w", err)
		}
		a.matchLog, matchLog = f, f
	}
	gopt := gateway.Options{Listener: a.gwLn, TLS: cfg.TLS, Logger: a.log, Registry: a.Registry,
		WAF:       waf.NewEngine(waf.Options{MatchLog: matchLog, Logger: a.log, NoRuleFilter: !cfg.WAFRuleFilter}),
		Events:    gateway.NewEventStore(a.db),
		Auth:      a.Realms.Authenticator(),
		AccessLog: cfg.AccessLog, AccessLogWriter: opt.GatewayAccessLog, MaxHeaderBytes: cfg.MaxHeaderBytes}
	deny, err := gateway.ParseBackendDeny(cfg.BackendDeny)
	if err != nil {
		return apperr.E(apperr.Invalid, "gateway-backend-deny: %v", err)
	}
	gopt.BackendDeny = deny
	if cfg.ConfigFile != "" {
		fc, err := gateway.LoadConfigFile(cfg.ConfigFile)
		if err != nil {
			return err
		}
		if gopt.Certs, err = fc.LoadCertificates(); err != nil {
			return err
		}
	}
	if cfg.TLS {
		ca, err := pki.EnsureCA(filepath.Join(a.cfg.DataDir, "tls"))
		if err != nil {
			return err
		}
		gopt.Issuer = ca
		if pool, err := x509.SystemCertPool(); err == nil && pool != nil {
			pool.AddCert(ca.Cert)
			gopt.BackendRoots = pool
		}
		if gopt.ACME, err = acmeOptions(cfg.ACME, filepath.Join(a.cfg.DataDir, "gateway", "acme")); err != nil {
			return err
		}
		if _, port, _ := net.SplitHostPort(a.gwLn.Addr().String()); gopt.ACME != nil && port != "443" {
			a.log.Warn("the ACME CA validates each host on port 443 of its address: forward that port to the gateway",
				logging.KeyAddr, a.gwLn.Addr().String())
		}
	}
	if a.Gateway, err = gateway.New(gopt); err != nil {
		return err
	}
	if a.Routes, err = gateway.NewService(gateway.ServiceDeps{DB: a.db, Audit: a.Audit, Gateway: a.Gateway, Logger: a.log,
		ConfigFile: cfg.ConfigFile, Now: opt.Clock}); err != nil {
		return err
	}
	// A deleted project's (or org's) routes go with it, in its
	// transaction: identity calls the gateway back, it does not import it.
	a.IDs.OnDelete(a.Routes.DeleteOwnerRoutes)
	return a.Routes.Start(ctx)
}

// acmeOptions are the gateway's ACME settings (nil without a directory):
// the system's roots plus those of cfg.CAFile for the CA's own HTTPS.
func acmeOptions(cfg config.ACME, cacheDir string) (*gateway.ACME, error) {
	if cfg.Directory == "" {
		return nil, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, apperr.E(apperr.Invalid, "gateway-acme-ca: %v", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, apperr.E(apperr.Invalid, "gateway-acme-ca: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return &gateway.ACME{Directory: cfg.Directory, Email: cfg.Email, Roots: roots, CacheDir: cacheDir}, nil
}

// newPipelines builds the pipeline service: logs and artifacts in a blob
// store under the data directory, the container executor (runc) when
// runc is installed and Rampart runs as root, the host executor otherwise
// (and for jobs asking for it).
func (a *App) newPipelines(opt Options) error {
	dir := filepath.Join(a.cfg.DataDir, "pipeline")
	blobs, err := fileblob.New(filepath.Join(a.cfg.DataDir, "blobs"))
	if err != nil {
		return err
	}
	pc := a.cfg.Pipeline
	var execs []pipeline.Executor
	if pc.Executor == "container" && (!container.Available() || os.Geteuid() != 0) {
		return apperr.E(apperr.Invalid, "pipeline.executor is container but runc is not installed or Rampart does not run as root")
	}
	if pc.Executor != "host" && container.Available() && os.Geteuid() == 0 {
		ce, err := containerexec.New(filepath.Join(dir, "containers"))
		if err != nil {
			return err
		}
		execs = append(execs, ce)
	}
	execs = append(execs, hostexec.New())
	dataDir, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.Pipelines, err = pipeline.New(pipeline.Deps{DB: a.db, Audit: a.Audit, Events: a.Events, Repos: a.SCM, Blobs: blobs,
		Logger: a.log, Clock: opt.Clock, Executors: execs, WorkDir: filepath.Join(dir, "work"), PublicURL: a.url,
		MaskPaths: []string{dataDir}, LocalWorkers: pc.Workers, RemoteRunners: pc.Workers < 0, MaxPerProject: pc.MaxPerProject, DefaultLogLimit: pc.LogLimit, DefaultDisk: pc.Disk,
		Scanner: &pipeline.ScanAdapter{New: func(ctx context.Context) (*scan.Scanner, error) { return scan.New(ctx, scan.Config{}) }}})
	if err != nil {
		return err
	}
	a.Pipelines.Subscribe(a.Events)
	// Image steps build with package image and push to this registry with
	// job tokens; SBOMs come from a scanner made on first use.
	var inv struct {
		once sync.Once
		s    *scan.Scanner
		err  error
	}
	images, err := imagesteps.New(imagesteps.Deps{Registry: a.OCI, Users: a.IDs, PublicURL: a.url, Logger: a.log, Clock: opt.Clock, Deployer: deployStep{a},
		Inventory: func(ctx context.Context) (image.Inventory, error) {
			inv.once.Do(func() { inv.s, inv.err = scan.New(context.WithoutCancel(ctx), scan.Config{}) })
			return inv.s, inv.err
		}})
	if err != nil {
		return err
	}
	a.Pipelines.SetImages(images)
	return nil
}

// newDeploy builds the delivery service and its targets: the node
// runtime (runc containers on this machine, when runc and root are
// available) with the gateway's routes following releases. Deployments
// ask the policy engine's pre-deploy gate (preDeployGate).
func (a *App) newDeploy(keys identity.Sealer, opt Options) error {
	// Releases pass the policy engine's pre-deploy gate with their
	// images' evidence from the registry; targets pull from the registry
	// with pull-only tokens minted for the deployer.
	host := registryHost(a.url)
	pulls := deployPulls{oci: a.OCI, ids: a.IDs, host: host, log: a.log}
	kt := &kubetarget.Target{Logger: a.log, PullAuth: pulls.PullAuth}
	if a.Routes != nil {
		kt.Router = a.Routes // canary steps on Kubernetes become route weights
	}
	targets := map[string]deploy.Target{deploy.KindKubernetes: kt}
	d := deploy.Deps{DB: a.db, Audit: a.Audit, Sealer: keys, Logger: a.log, Targets: targets, Now: opt.Clock, Events: a.Events,
		Gate: preDeployGate{policy: a.Policy, oci: a.OCI, scm: a.SCM, host: host, url: a.url, log: a.log}}
	if noderuntime.Available() {
		rt, err := noderuntime.Open(noderuntime.Options{Dir: filepath.Join(a.cfg.DataDir, "deploy"), Logger: a.log, Keychain: pulls})
		if err != nil {
			return err
		}
		a.NodeRuntime = rt
		nt := &deploy.NodeTarget{Runtime: rt, Logger: a.log}
		if a.Routes != nil {
			nt.Router = a.Routes
		}
		targets[deploy.KindNode] = nt
		d.Runtime = rt
	}
	d.Secrets = deploySecrets{vault: a.Vault}
	var err error
	a.Deploy, err = deploy.New(d)
	return err
}

// GatewayURL is where the gateway listens ("" when it is off).
func (a *App) GatewayURL() string { return a.gwURL }

// policySources are the policy bundles loaded after the built-in library.
func policySources(c config.Policy) []policy.Source {
	var out []policy.Source
	if c.Dir != "" {
		out = append(out, policy.Dir{Path: c.Dir})
	}
	if c.Repository != "" {
		out = append(out, policy.Git{Repo: c.Repository, Ref: c.Ref})
	}
	return out
}

// registryHost is the host (and port) images in this Rampart's registry
// are named with.
func registryHost(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil {
		return u.Host
	}
	return ""
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

// sshBaseURL is the ssh:// base of clone URLs: the public host name and
// the SSH listener's port.
func sshBaseURL(publicURL string, addr net.Addr) string {
	host := "localhost"
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	port := "22"
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	return "ssh://git@" + net.JoinHostPort(host, port)
}

// SSHAddr is the address of the git SSH listener ("" when SSH is off).
func (a *App) SSHAddr() string {
	if a.sshLn == nil {
		return ""
	}
	return a.sshLn.Addr().String()
}

// SSHHostKey is the SSH server's host key in authorized_keys form ("" when
// SSH is off).
func (a *App) SSHHostKey() string {
	if a.sshSrv == nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.sshSrv.HostKey())))
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
	g.Go(func() error { return a.Events.Run(gctx) })
	if a.Gateway != nil {
		g.Go(func() error { return a.Gateway.Run(gctx, a.cfg.Limits.ShutdownGrace) })
		g.Go(func() error { return a.Routes.Run(gctx) })
	}
	g.Go(func() error { return a.SCM.Run(gctx) })
	g.Go(func() error { return a.Pipelines.Run(gctx) })
	g.Go(func() error { return a.Deploy.Run(gctx) })
	if a.sshSrv != nil {
		g.Go(func() error { return a.sshSrv.Serve(gctx, a.sshLn) })
	}
	g.Go(func() error { return a.Policy.Run(gctx) })
	g.Go(func() error { return a.OCI.Run(gctx) })
	g.Go(func() error { return a.OCI.Housekeeping(gctx, a.cfg.Registry.GCInterval) })
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
			if _, err := a.Realms.PurgeSessions(ctx); err != nil {
				a.log.Warn("purge expired realm sessions", logging.KeyErr, err)
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
	if a.gwLn != nil {
		if err := a.gwLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if a.matchLog != nil {
		errs = append(errs, a.matchLog.Close())
		a.matchLog = nil
	}
	if a.sshLn != nil {
		if err := a.sshLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if a.scanners != nil {
		errs = append(errs, a.scanners.Close())
	}
	if a.Policy != nil {
		a.Policy.Close() // writes the decisions it holds
	}
	if a.Advisories != nil {
		errs = append(errs, a.Advisories.Close())
		a.Advisories = nil
	}
	if a.NodeRuntime != nil {
		// The containers keep running: the next start reattaches.
		errs = append(errs, a.NodeRuntime.Close())
		a.NodeRuntime = nil
	}
	if a.Vault != nil {
		// Commits the audit entries of the last reads (those it cannot
		// commit are appended at the next start).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, a.Vault.Close(ctx))
		cancel()
		a.Vault = nil
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
		a.db = nil
	}
	return errors.Join(errs...)
}
