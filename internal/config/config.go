// Package config holds Rampart's typed configuration: one tree with
// defaults, filled from flags and environment by the CLI, validated with
// field paths before anything starts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole configuration of a Rampart server.
type Config struct {
	// DataDir holds the SQLite database, keys, TLS material and blobs.
	DataDir string
	// Store is the database URL: empty means SQLite in DataDir,
	// or postgres://… for PostgreSQL.
	Store string
	// Addr is the listen address of the main HTTP(S) listener.
	Addr string
	// URL is the public base URL users and clients reach Rampart at. Empty
	// means derived from Addr (https://localhost:PORT).
	URL string
	// TLS serves HTTPS with a certificate issued by a CA generated in
	// DataDir. Off serves plain HTTP (local use and tests).
	TLS bool
	// AdminPassword is the password of the admin user created at first
	// start; empty generates one and prints it once.
	AdminPassword string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	Session  Session
	Limits   Limits
	OIDC     OIDC
	Gateway  Gateway
	SCM      SCM
	Policy   Policy
	Registry Registry
	Pipeline Pipeline
	Vault    Vault
}

// Gateway configures the gateway: its own listener in front of the
// applications, with routes, a WAF and limits.
type Gateway struct {
	// Addr is the gateway's listen address; "" turns the gateway off.
	Addr string
	// TLS serves HTTPS with a certificate per route host from the CA in
	// DataDir (or the config file's certificates).
	TLS bool
	// ConfigFile holds site routes and certificates; re-read on change.
	ConfigFile string
	// MatchLog is the file the WAF writes its ModSecurity-style match
	// lines to ("" for DataDir/gateway/waf-matches.log, "off" for none).
	MatchLog string
	// AccessLog writes a JSON line per gateway request.
	AccessLog bool
	// WAFRuleFilter prunes and filters WAF rules that cannot match
	// (package waf); off runs every rule on every request.
	WAFRuleFilter bool
	// MaxHeaderBytes caps request lines and headers (431 above).
	MaxHeaderBytes int
	// BackendDeny lists the networks the gateway never connects to as a
	// backend (comma-separated CIDRs or addresses; "default" for the
	// cloud-metadata and link-local networks of gateway.DefaultBackendDeny,
	// "none" for no limit).
	BackendDeny string
	// ACME gets route hosts' certificates from an ACME CA instead of the
	// local one (needs TLS).
	ACME ACME
}

// ACME names the CA the gateway gets certificates from (package gateway,
// ACME): its directory URL ("" for none), the account's contact and a PEM
// file of roots to trust for the CA's own HTTPS (a private CA).
type ACME struct {
	Directory string
	Email     string
	CAFile    string
}

// SCM tunes source hosting (package scm).
type SCM struct {
	// SSHAddr is the listen address of git over SSH; empty turns SSH off
	// (`rampart up` listens on 127.0.0.1:2222 unless told otherwise).
	SSHAddr string
	// MaxPushBytes caps the pack data of one push (0: 512 MiB).
	MaxPushBytes int64
	// HookTimeout bounds a push's checks (0: 2 minutes).
	HookTimeout time.Duration
	// Webhook delivery: the timeout of one attempt, the first retry's
	// wait (tripled for each later one) and the number of attempts
	// (zero values: 10s, 10s, 5).
	WebhookTimeout  time.Duration
	WebhookBackoff  time.Duration
	WebhookAttempts int
}

// Policy configures the policy gates. The built-in library is always
// loaded; Dir and Repository add bundles after it.
type Policy struct {
	// Dir is a directory of policies (policy as code on disk).
	Dir string
	// Repository is a git repository on disk holding policies (the org's
	// policy repository in Rampart's git hosting), read at Ref (default
	// HEAD) without a checkout.
	Repository string
	Ref        string
	// Timeout bounds one evaluation; zero takes the default (2 s).
	Timeout time.Duration
	// ReloadInterval is how often the bundles are reloaded; zero takes
	// the default (30 s).
	ReloadInterval time.Duration
	// Retention is how long decisions are kept; zero takes the default
	// (90 days).
	Retention time.Duration
}

// Registry configures the OCI registry at /v2/.
type Registry struct {
	// Storage is where blobs live: empty means the filesystem under
	// DataDir/registry, file:///abs/path a directory, and
	// s3://BUCKET/PREFIX?region=R&endpoint=URL the S3 driver (credentials
	// from the AWS environment variables).
	Storage string
	// GCInterval is how often retention rules run and unreferenced blobs
	// are collected (0: hourly).
	GCInterval time.Duration
}

// Vault configures the vault: where its key-encryption key comes from and
// the mount of its Vault-compatible API.
type Vault struct {
	// Keyring is "file" (default: key files in DataDir/keys), "passphrase"
	// (keys derived by argon2id from Passphrase) or "transit" (HashiCorp
	// Vault's Transit engine).
	Keyring string
	// Passphrase derives the keyring in passphrase mode (never logged).
	Passphrase string
	Transit    Transit
	// KVMount is the mount of the KV v2 API under /v1/ (default "secret").
	KVMount string
}

// Transit names a Transit key on a HashiCorp Vault server.
type Transit struct {
	Address string
	Token   string
	Mount   string
	Key     string
	CACert  string
}

// OIDC tunes the built-in OpenID provider; zero values take its defaults.
type OIDC struct {
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	IDTokenLifetime      time.Duration
	// KeyRotation is how long a signing key signs before it is replaced.
	KeyRotation time.Duration
	// DevicePollInterval is how often device-flow clients may poll.
	DevicePollInterval time.Duration
}

// Session bounds the lifetime of a browser session.
type Session struct {
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
}

// Limits bound what clients may send.
type Limits struct {
	// MaxBodyBytes caps JSON and form request bodies.
	MaxBodyBytes int64
	// ShutdownGrace is how long in-flight requests get at shutdown.
	ShutdownGrace time.Duration
}

// Default returns the configuration `rampart up` uses with no flags.
func Default() Config {
	return Config{
		DataDir:  "rampart-data",
		Addr:     "127.0.0.1:8080",
		TLS:      true,
		LogLevel: "info",
		Session: Session{
			IdleTimeout:     2 * time.Hour,
			AbsoluteTimeout: 24 * time.Hour,
		},
		Limits: Limits{
			MaxBodyBytes:  1 << 20,
			ShutdownGrace: 15 * time.Second,
		},
		Gateway: Gateway{
			Addr:           "127.0.0.1:8443",
			TLS:            true,
			AccessLog:      true,
			WAFRuleFilter:  true,
			MaxHeaderBytes: 32 << 10,
			BackendDeny:    "default",
		},
	}
}

// FieldError names the configuration field at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks the configuration and fills derived values (StoreURL,
// PublicURL). Every problem is reported with its field path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data", "must not be empty")
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") && !strings.HasPrefix(c.Store, "sqlite:") {
		bad("store", "must be empty (SQLite in the data directory), sqlite:PATH or postgres://…")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "must be host:port: %v", err)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil:
			// Not the *url.Error itself: it quotes the URL, password included.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			bad("url", "invalid URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("url", "scheme must be http or https")
		case u.Host == "":
			bad("url", "must include a host")
		case u.EscapedPath() != "" && u.EscapedPath() != "/":
			bad("url", "must not have a path")
		case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(c.URL, "#"):
			bad("url", "must be only scheme://host[:port], without user, query or fragment")
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "must be debug, info, warn or error")
	}
	if c.Session.IdleTimeout <= 0 || c.Session.AbsoluteTimeout <= 0 {
		bad("session", "timeouts must be positive")
	} else if c.Session.IdleTimeout > c.Session.AbsoluteTimeout {
		bad("session.idle-timeout", "must not exceed the absolute timeout")
	}
	if c.OIDC.AccessTokenLifetime < 0 || c.OIDC.RefreshTokenLifetime < 0 || c.OIDC.IDTokenLifetime < 0 ||
		c.OIDC.KeyRotation < 0 || c.OIDC.DevicePollInterval < 0 {
		bad("oidc", "lifetimes and intervals must not be negative")
	}
	if c.Policy.Timeout < 0 || c.Policy.ReloadInterval < 0 || c.Policy.Retention < 0 {
		bad("policy", "timeout, reload interval and retention must not be negative")
	}
	if c.Policy.Ref != "" && c.Policy.Repository == "" {
		bad("policy.ref", "needs policy.repository")
	}
	if st := c.Registry.Storage; st != "" && !strings.HasPrefix(st, "file:///") && !strings.HasPrefix(st, "s3://") {
		bad("registry.storage", "must be empty (the data directory), file:///ABSOLUTE/PATH or s3://BUCKET/PREFIX")
	}
	if c.Registry.GCInterval < 0 {
		bad("registry.gc-interval", "must not be negative")
	}
	if c.Limits.MaxBodyBytes < 1024 {
		bad("limits.max-body", "must be at least 1024 bytes")
	}
	if c.Gateway.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Gateway.Addr); err != nil {
			bad("gateway-addr", "must be host:port, or empty to turn the gateway off: %v", err)
		} else if c.Gateway.Addr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			bad("gateway-addr", "must differ from addr")
		}
	}
	if c.Gateway.MaxHeaderBytes < 1024 || c.Gateway.MaxHeaderBytes > 1<<20 {
		bad("gateway-max-header", "must be 1 KiB to 1 MiB")
	}
	if a := c.Gateway.ACME; a.Directory != "" {
		if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("gateway-acme", "must be the https URL of an ACME directory")
		} else if c.Gateway.Addr == "" {
			bad("gateway-acme", "needs the gateway (--gateway-addr)")
		} else if !c.Gateway.TLS {
			bad("gateway-acme", "needs --gateway-tls=on")
		}
	} else if a.Email != "" || a.CAFile != "" {
		bad("gateway-acme", "is needed by --gateway-acme-email and --gateway-acme-ca")
	}
	if c.SCM.SSHAddr != "" {
		if _, _, err := net.SplitHostPort(c.SCM.SSHAddr); err != nil {
			bad("ssh-addr", "must be host:port: %v", err)
		}
	}
	if c.Pipeline.Workers < -1 || c.Pipeline.MaxPerProject < 0 || c.Pipeline.LogLimit < 0 || c.Pipeline.Disk < 0 {
		bad("pipeline", "workers must be -1 or more; limits must not be negative")
	}
	if e := c.Pipeline.Executor; e != "" && e != "container" && e != "host" {
		bad("pipeline.executor", "must be empty, container or host")
	}
	if c.SCM.MaxPushBytes < 0 || c.SCM.HookTimeout < 0 || c.SCM.WebhookTimeout < 0 || c.SCM.WebhookBackoff < 0 || c.SCM.WebhookAttempts < 0 {
		bad("scm", "limits, timeouts and attempts must not be negative")
	}
	switch c.Vault.Keyring {
	case "", "file":
	case "passphrase":
		if len(c.Vault.Passphrase) < 12 {
			bad("vault.passphrase", "the keyring passphrase must have at least 12 characters")
		}
	case "transit":
		if c.Vault.Transit.Address == "" || c.Vault.Transit.Token == "" {
			bad("vault.transit", "the transit keyring needs an address and a token")
		}
	default:
		bad("vault.keyring", "must be file, passphrase or transit")
	}
	if m := c.Vault.KVMount; m != "" && (strings.ContainsAny(m, "/ ") || len(m) > 64) {
		bad("vault.kv-mount", "must be one path segment")
	}
	if c.Limits.ShutdownGrace <= 0 {
		bad("limits.shutdown-grace", "must be positive: in-flight requests get this long at shutdown")
	}
	return errors.Join(errs...)
}

// StoreURL returns the database URL, defaulting to SQLite in the data
// directory.
func (c *Config) StoreURL() string {
	if c.Store != "" {
		return c.Store
	}
	p, err := filepath.Abs(filepath.Join(c.DataDir, "rampart.db"))
	if err != nil {
		p = filepath.Join(c.DataDir, "rampart.db")
	}
	return "sqlite:" + p
}

// PublicURL returns the base URL users reach Rampart at, without a trailing
// slash. When unset it uses "localhost" and the listen port: WebAuthn needs
// a host name, not an IP address.
func (c *Config) PublicURL(listenAddr string) string {
	if c.URL != "" {
		return strings.TrimSuffix(c.URL, "/")
	}
	scheme := "http"
	if c.TLS {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return scheme + "://localhost"
	}
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1", "::1":
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Pipeline tunes CI pipelines (package pipeline); zero values take the
// defaults.
type Pipeline struct {
	// Workers is how many jobs this server runs at once (0: 2; -1: none,
	// only remote runners take jobs).
	Workers int
	// MaxPerProject bounds the running jobs of one project (0: 4).
	MaxPerProject int
	// Executor is the default executor: "" picks container when runc is
	// installed and Rampart runs as root, else host; "container" or
	// "host" force one.
	Executor string
	// LogLimit is a job's log size limit unless it sets one (0: 16 MiB).
	LogLimit int64
	// Disk is a job's workspace size unless it sets one (0: 1 GiB).
	Disk int64
}
