// Package cli is the rampart command line: cobra commands, one file per
// noun. Main is the whole program behind cmd/rampart, testable with
// injected arguments, environment and streams.
//
// Commands that talk to a server use the credential saved by
// `rampart login` (in $RAMPART_CONFIG_DIR, else the user's config
// directory), or RAMPART_SERVER and RAMPART_TOKEN from the environment.
// Every command that prints data takes --output json.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Exit codes.
const (
	ExitOK              = 0
	ExitError           = 1
	ExitUsage           = 2
	ExitUnauthenticated = 3
	ExitForbidden       = 4
	ExitNotFound        = 5
	ExitConflict        = 6
	ExitUnavailable     = 7
)

// Env is the environment the CLI runs in.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// cmdEnv is shared by every command of one invocation.
type cmdEnv struct {
	Env
	output string
	server string
}

// Main runs the rampart command and returns its exit code.
func Main(ctx context.Context, e Env) int {
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	ce := &cmdEnv{Env: e}
	root := ce.root()
	root.SetArgs(e.Args)
	root.SetIn(e.Stdin)
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		switch {
		case ec.err != nil:
			fmt.Fprintf(e.Stderr, "rampart: %s\n", apperr.Message(ec.err))
			if apperr.KindOf(ec.err) == apperr.Internal {
				fmt.Fprintf(e.Stderr, "  (%v)\n", ec.err)
			}
		case ec.msg != "":
			fmt.Fprintf(e.Stderr, "rampart: %s\n", ec.msg)
		}
		return ec.code
	}
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(e.Stderr, "rampart: %v\nRun 'rampart --help' for usage.\n", err)
		return ExitUsage
	}
	fmt.Fprintf(e.Stderr, "rampart: %s\n", apperr.Message(err))
	if apperr.KindOf(err) == apperr.Internal {
		fmt.Fprintf(e.Stderr, "  (%v)\n", err)
	}
	return exitCode(err)
}

func exitCode(err error) int {
	switch apperr.KindOf(err) {
	case apperr.Invalid, apperr.TooLarge:
		return ExitUsage
	case apperr.Unauthenticated:
		return ExitUnauthenticated
	case apperr.Forbidden:
		return ExitForbidden
	case apperr.NotFound:
		return ExitNotFound
	case apperr.Conflict:
		return ExitConflict
	case apperr.Unavailable, apperr.TooManyRequests:
		return ExitUnavailable
	}
	return ExitError
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least",
		"invalid argument", "flag needs an argument", "required flag", "if any flags in the group"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func (ce *cmdEnv) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "rampart",
		Short: "Rampart: a self-hosted DevSecOps platform in one binary",
		Long: `Rampart runs the secure delivery loop — identity with MFA, source hosting,
scanning, CI, registry, policy, secrets, delivery, gateway and monitoring — in
one process. Start a server with 'rampart up', then sign in with
'rampart login'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&ce.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&ce.server, "server", "", "server URL (default: the one you logged in to, or $RAMPART_SERVER)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if ce.output != "table" && ce.output != "json" {
			return usagef("--output must be table or json")
		}
		return nil
	}
	root.AddCommand(
		ce.upCmd(),
		ce.loginCmd(),
		ce.logoutCmd(),
		ce.whoamiCmd(),
		ce.orgCmd(),
		ce.teamCmd(),
		ce.projectCmd(),
		ce.userCmd(),
		ce.tokenCmd(),
		ce.serviceAccountCmd(),
		ce.auditCmd(),
		ce.scanCmd(),
		ce.workItemCmd(),
		ce.alertCmd(),
		ce.policyCmd(),
		ce.exceptionCmd(),
		ce.imageCmd(),
		ce.dbCmd(),
		ce.oidcCmd(),
		ce.gatewayCmd(),
		ce.realmCmd(),
		ce.envCmd(),
		ce.releaseCmd(),
		ce.deployCmd(),
		ce.repoCmd(),
		ce.prCmd(),
		ce.pipelineCmd(),
		ce.runnerCmd(),
		ce.sshKeyCmd(),
		ce.secretCmd(),
		ce.vaultCmd(),
		ce.versionCmd(),
	)
	strictGroups(root)
	return root
}
