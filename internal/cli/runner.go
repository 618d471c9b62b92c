package cli

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/pipeline/containerexec"
	"github.com/rampartsec/rampart/internal/pipeline/hostexec"
	"github.com/rampartsec/rampart/internal/pipeline/runner"
)

func (ce *cmdEnv) runnerCmd() *cobra.Command {
	var server, token, name, executor, work, caFile string
	var once bool
	cmd := &cobra.Command{
		Use:   "runner --server URL --token T",
		Short: "Run pipeline jobs for a Rampart server (a remote runner; the token is a site administrator's, scoped to runner)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == "" {
				token = ce.Getenv("RAMPART_RUNNER_TOKEN")
			}
			if server == "" || token == "" {
				return usagef("--server and --token (or RAMPART_RUNNER_TOKEN) are required")
			}
			if !strings.HasPrefix(server, "https://") && !strings.HasPrefix(server, "http://") {
				return usagef("--server must be an http(s) URL")
			}
			var ex pipeline.Executor
			switch {
			case executor == "host" || (executor == "" && (!container.Available() || os.Geteuid() != 0)):
				ex = hostexec.New()
			case executor == "container" || executor == "":
				c, err := containerexec.New(work + "/containers")
				if err != nil {
					return apperr.Wrap(err, apperr.Unavailable, "container executor: "+err.Error())
				}
				ex = c
			default:
				return usagef("--executor must be container or host")
			}
			client := &http.Client{}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return apperr.Wrap(err, apperr.NotFound, "read --ca file")
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return usagef("--ca %s holds no PEM certificate", caFile)
				}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
			log := slog.New(slog.NewTextHandler(ce.Stderr, nil))
			fmtExec := ex.Name()
			if !ex.Isolated() {
				fmtExec += " (jobs are not isolated)"
			}
			log.Info("runner started", "server", server, "executor", fmtExec)
			return runner.Run(cmd.Context(), runner.Options{Server: strings.TrimSuffix(server, "/"), Token: token, Name: name,
				Executor: ex, WorkDir: work, HTTP: client, Logger: log, Once: once})
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "Rampart's URL")
	f.StringVar(&token, "token", "", "a site administrator's token with the runner scope (or RAMPART_RUNNER_TOKEN)")
	f.StringVar(&name, "name", "", "the runner's name (default: the host name)")
	f.StringVar(&executor, "executor", "", "container (runc, needs root) or host (default: container where possible)")
	f.StringVar(&work, "work", "rampart-runner", "directory for workspaces")
	f.StringVar(&caFile, "ca", "", "CA certificate to trust for the server (PEM)")
	f.BoolVar(&once, "once", false, "exit after one job")
	return cmd
}
