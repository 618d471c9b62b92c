package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/logging"
)

// onOff is a boolean flag that also accepts on/off.
type onOff struct{ v *bool }

func (o onOff) String() string {
	if o.v != nil && *o.v {
		return "on"
	}
	return "off"
}

func (o onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		*o.v = true
	case "off", "false", "0", "no":
		*o.v = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

func (o onOff) Type() string { return "on|off" }

func (ce *cmdEnv) upCmd() *cobra.Command {
	cfg := config.Default()
	gcPercent := defaultGCPercent
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run Rampart: every component in one process",
		Long: `Run Rampart with its data in a directory (default ./rampart-data, or
$RAMPART_DATA). On first start it creates an 'admin' user with the password
in $RAMPART_ADMIN_PASSWORD, or a generated one printed once. SIGINT or
SIGTERM stops it gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if !fl.Changed("data") {
				if d := ce.Getenv("RAMPART_DATA"); d != "" {
					cfg.DataDir = d
				}
			}
			if !fl.Changed("store") {
				if s := ce.Getenv("RAMPART_STORE"); s != "" {
					cfg.Store = s
				}
			}
			if !fl.Changed("registry-storage") {
				if s := ce.Getenv("RAMPART_REGISTRY_STORAGE"); s != "" {
					cfg.Registry.Storage = s
				}
			}
			cfg.AdminPassword = ce.Getenv("RAMPART_ADMIN_PASSWORD")
			if err := applyGCPercent(fl.Changed("gc-percent"), gcPercent, ce.Getenv, memoryAvailable); err != nil {
				return err
			}
			if err := ce.vaultConfig(&cfg); err != nil {
				return err
			}
			log := logging.New(ce.Stderr, cfg.LogLevel)
			a, err := app.New(cmd.Context(), cfg, app.Options{Logger: log, GatewayAccessLog: ce.Stderr})
			if err != nil {
				return err
			}
			fmt.Fprintf(ce.Stdout, "Rampart is running at %s\n", a.URL())
			if gw := a.GatewayURL(); gw != "" {
				fmt.Fprintf(ce.Stdout, "  The gateway listens at %s (add routes with 'rampart gateway route add')\n", gw)
			}
			if ca := a.CAFile(); ca != "" {
				fmt.Fprintf(ce.Stdout, "  TLS certificates are issued by the CA in %s\n", ca)
				fmt.Fprintf(ce.Stdout, "  (trust it in your browser, or pass --ca-cert %s to rampart login)\n", ca)
			}
			if pw := a.GeneratedAdminPassword(); pw != "" {
				fmt.Fprintf(ce.Stdout, "  First start: sign in as 'admin' with password %s\n", pw)
				fmt.Fprintln(ce.Stdout, "  This password is shown only once; change it under Account.")
			}
			log.Info("rampart started", logging.KeyURL, a.URL(), logging.KeyAddr, a.Addr(), logging.KeyDataDir, cfg.DataDir)
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory ($RAMPART_DATA)")
	f.StringVar(&cfg.Store, "store", "", "database URL: empty for SQLite in the data directory, or postgres://… ($RAMPART_STORE)")
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	f.StringVar(&cfg.URL, "url", "", "public URL users reach Rampart at (default https://localhost:PORT)")
	f.Var(onOff{&cfg.TLS}, "tls", "serve HTTPS with a certificate from a CA in the data directory (on|off)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.IntVar(&gcPercent, "gc-percent", gcPercent, "heap growth in percent that starts a garbage collection, as $GOGC (which applies when this flag is not given): lower uses less memory, higher less CPU")
	f.DurationVar(&cfg.Session.IdleTimeout, "session-idle", cfg.Session.IdleTimeout, "sign browsers out after this long without activity")
	f.DurationVar(&cfg.Session.AbsoluteTimeout, "session-max", cfg.Session.AbsoluteTimeout, "sign browsers out this long after sign-in")
	f.Int64Var(&cfg.Limits.MaxBodyBytes, "max-body", cfg.Limits.MaxBodyBytes, "largest accepted JSON or form body in bytes")
	f.DurationVar(&cfg.Limits.ShutdownGrace, "shutdown-grace", 15*time.Second, "how long in-flight requests may run at shutdown")
	f.StringVar(&cfg.Gateway.Addr, "gateway-addr", cfg.Gateway.Addr, "gateway listen address (empty turns the gateway off)")
	f.Var(onOff{&cfg.Gateway.TLS}, "gateway-tls", "serve the gateway over HTTPS with a certificate per route host (on|off)")
	f.StringVar(&cfg.Gateway.ConfigFile, "gateway-config", "", "gateway config file with site routes and certificates (YAML, re-read on change)")
	f.StringVar(&cfg.Gateway.MatchLog, "gateway-waf-log", "", "file for the WAF's match lines (default DATA/gateway/waf-matches.log; off for none)")
	f.Var(onOff{&cfg.Gateway.AccessLog}, "gateway-access-log", "log one JSON line per gateway request (on|off)")
	f.Var(onOff{&cfg.Gateway.WAFRuleFilter}, "gateway-waf-filter", "skip the WAF rules a request cannot match (on|off; off runs every rule, as plain Coraza)")
	f.StringVar(&cfg.Gateway.ACME.Directory, "gateway-acme", "", "ACME directory URL the gateway gets route hosts' certificates from, answering TLS-ALPN-01 on its listener (e.g. https://acme-v02.api.letsencrypt.org/directory; needs --gateway-tls)")
	f.StringVar(&cfg.Gateway.ACME.Email, "gateway-acme-email", "", "contact address of the ACME account")
	f.StringVar(&cfg.Gateway.ACME.CAFile, "gateway-acme-ca", "", "PEM file of roots trusted for the ACME server's own HTTPS (a private ACME CA)")
	f.StringVar(&cfg.Gateway.BackendDeny, "gateway-backend-deny", cfg.Gateway.BackendDeny, "networks the gateway never connects to as a backend: comma-separated CIDRs or addresses, \"default\" (link-local and cloud-metadata addresses; may be combined with others; also what an empty value means) or \"none\"")
	f.IntVar(&cfg.Gateway.MaxHeaderBytes, "gateway-max-header", cfg.Gateway.MaxHeaderBytes, "largest request line and headers the gateway accepts, in bytes")
	f.StringVar(&cfg.SCM.SSHAddr, "ssh-addr", "127.0.0.1:2222", "listen address of git over SSH (empty turns SSH off)")
	f.Int64Var(&cfg.SCM.MaxPushBytes, "max-push", 512<<20, "largest accepted git push (pack data) in bytes")
	f.StringVar(&cfg.Policy.Dir, "policy-dir", "", "directory of policies loaded after the built-in library")
	f.StringVar(&cfg.Policy.Repository, "policy-repo", "", "git repository (path on disk) of policies loaded after the built-in library")
	f.StringVar(&cfg.Policy.Ref, "policy-ref", "", "branch, tag or commit of --policy-repo (default HEAD)")
	f.StringVar(&cfg.Registry.Storage, "registry-storage", "", "registry blob storage: empty for the data directory, file:///PATH or s3://BUCKET/PREFIX?region=R&endpoint=URL ($RAMPART_REGISTRY_STORAGE)")
	f.IntVar(&cfg.Pipeline.Workers, "pipeline-workers", 0, "pipeline jobs this server runs at once (0: 2; -1: none)")
	f.IntVar(&cfg.Pipeline.MaxPerProject, "pipeline-max-per-project", 0, "running pipeline jobs per project (0: 4)")
	f.StringVar(&cfg.Pipeline.Executor, "pipeline-executor", "", "default executor of pipeline jobs: container (runc) or host (default: container where runc runs as root)")
	f.StringVar(&cfg.Vault.Keyring, "keyring", "file", "the vault's key-encryption key: file (keys in the data directory), passphrase ($RAMPART_VAULT_PASSPHRASE) or transit ($RAMPART_VAULT_TRANSIT_ADDR, _TOKEN, _MOUNT, _KEY, _CACERT)")
	f.StringVar(&cfg.Vault.KVMount, "kv-mount", "secret", "mount of the Vault-compatible KV v2 API under /v1/")
	f.Lookup("tls").NoOptDefVal = "on"
	f.Lookup("gateway-tls").NoOptDefVal = "on"
	f.Lookup("gateway-access-log").NoOptDefVal = "on"
	return cmd
}

// vaultConfig reads the keyring's secrets from the environment, never
// from flags (they would show in the process list).
func (ce *cmdEnv) vaultConfig(cfg *config.Config) error {
	switch cfg.Vault.Keyring {
	case "passphrase":
		cfg.Vault.Passphrase = ce.Getenv("RAMPART_VAULT_PASSPHRASE")
		if cfg.Vault.Passphrase == "" {
			return usagef("--keyring passphrase: set RAMPART_VAULT_PASSPHRASE")
		}
	case "transit":
		t := &cfg.Vault.Transit
		t.Address, t.Token = ce.Getenv("RAMPART_VAULT_TRANSIT_ADDR"), ce.Getenv("RAMPART_VAULT_TRANSIT_TOKEN")
		t.Mount, t.Key, t.CACert = ce.Getenv("RAMPART_VAULT_TRANSIT_MOUNT"), ce.Getenv("RAMPART_VAULT_TRANSIT_KEY"), ce.Getenv("RAMPART_VAULT_TRANSIT_CACERT")
		if t.Address == "" || t.Token == "" {
			return usagef("--keyring transit: set RAMPART_VAULT_TRANSIT_ADDR and RAMPART_VAULT_TRANSIT_TOKEN")
		}
	}
	return nil
}
