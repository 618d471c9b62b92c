package cli

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/realm"
)

func (ce *cmdEnv) realmCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "realm", Short: "Manage an organisation's end-user realm (sign-in with MFA for gateway routes)"}
	cmd.AddCommand(ce.realmSetCmd(), ce.realmShowCmd(), ce.realmRmCmd(), ce.realmUsersCmd())
	return cmd
}

func realmPath(org string) string { return httpapi.Prefix + "/orgs/" + esc(org) + "/realm" }

func (ce *cmdEnv) realmSetCmd() *cobra.Command {
	var (
		req                  realm.RealmRequest
		signup               bool
		passStdin, clearPass bool
	)
	cmd := &cobra.Command{
		Use: "set ORG", Short: "Create or change the org's end-user realm (owners)", Args: cobra.ExactArgs(1),
		Long: `Create or change the end-user realm of an organisation. Gateway routes of the
org's projects with --auth required send their visitors through it: they
register with an e-mail address (verified by a link mailed through the SMTP
server given here), sign in with a password and an authenticator app, and
reach the application with their identity in a signed JWT.

Creating a realm needs --smtp-host and --smtp-from. The SMTP password is read
from standard input with --smtp-password-stdin, never from an argument; it is
stored encrypted and never shown again. Flags left out keep their values.`,
		Example: `  printf '%s' "$SMTP_PASSWORD" | rampart realm set acme --display-name "Acme Shop" \
      --smtp-host smtp.example.com --smtp-from "Acme <noreply@acme.test>" --smtp-user acme --smtp-password-stdin
  rampart realm set acme --signup=false --session-idle 15m`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("signup") {
				req.AllowSignup = &signup
			}
			if passStdin && clearPass {
				return usagef("--smtp-password-stdin and --clear-smtp-password exclude each other")
			}
			if clearPass {
				empty := ""
				req.SMTP.Password = &empty
			}
			if passStdin {
				b, err := io.ReadAll(io.LimitReader(ce.Stdin, maxSecretInput+1))
				if err != nil {
					return fmt.Errorf("read smtp password: %w", err)
				}
				if len(b) > maxSecretInput {
					return usagef("the SMTP password on standard input is longer than %d bytes", maxSecretInput)
				}
				pw := string(bytes.TrimRight(b, "\r\n"))
				if pw == "" {
					return usagef("--smtp-password-stdin: standard input is empty")
				}
				req.SMTP.Password = &pw
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out realm.RealmJSON
			if err := c.do(cmd.Context(), "PUT", realmPath(args[0]), req, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { printRealm(t, out) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.DisplayName, "display-name", "", "name shown on the sign-in pages and in mails (default: the org's)")
	f.BoolVar(&signup, "signup", true, "let visitors register themselves")
	f.StringVar(&req.SMTP.Host, "smtp-host", "", "SMTP server for verification mail")
	f.IntVar(&req.SMTP.Port, "smtp-port", 0, "SMTP port (default 587 for starttls, 465 for tls, 25 for none)")
	f.StringVar(&req.SMTP.From, "smtp-from", "", `sender address, like "Shop <noreply@shop.example>"`)
	f.StringVar(&req.SMTP.TLS, "smtp-tls", "", "starttls (default), tls, or none (trusted relays only)")
	f.StringVar(&req.SMTP.Username, "smtp-user", "", "SMTP user name (with the password from --smtp-password-stdin)")
	f.BoolVar(&passStdin, "smtp-password-stdin", false, "read the SMTP password from standard input")
	f.BoolVar(&clearPass, "clear-smtp-password", false, "remove the stored SMTP password")
	f.StringVar(&req.SessionIdle, "session-idle", "", "sign end users out after this idle time (default 30m)")
	f.StringVar(&req.SessionAbsolute, "session-lifetime", "", "sign end users out this long after signing in (default 12h)")
	return cmd
}

func (ce *cmdEnv) realmShowCmd() *cobra.Command {
	return &cobra.Command{
		Use: "show ORG", Aliases: []string{"get"}, Short: "Show the org's end-user realm (owners)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out realm.RealmJSON
			if err := c.do(cmd.Context(), "GET", realmPath(args[0]), nil, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { printRealm(t, out) })
		},
	}
}

func (ce *cmdEnv) realmRmCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rm ORG", Aliases: []string{"remove"}, Short: "Remove the org's end-user realm with all its users (owners)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", realmPath(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Removed the end-user realm of %s; its routes with sign-in now answer 503.\n", args[0])
			return nil
		},
	}
}

func (ce *cmdEnv) realmUsersCmd() *cobra.Command {
	return &cobra.Command{
		Use: "users ORG", Short: "List the end users of the org's realm (owners)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var us []realm.UserJSON
			if err := c.do(cmd.Context(), "GET", realmPath(args[0])+"/users", nil, &us); err != nil {
				return err
			}
			return ce.print(us, func(t *tabwriterW) {
				row(t, "ID", "EMAIL", "VERIFIED", "TOTP", "RECOVERY CODES", "LAST SIGN-IN")
				for _, u := range us {
					last := "never"
					if !u.LastLoginAt.IsZero() {
						last = u.LastLoginAt.Format("2006-01-02 15:04")
					}
					row(t, u.ID, u.Email, u.EmailVerified, u.TOTP, strconv.Itoa(u.RecoveryLeft), last)
				}
			})
		},
	}
}

func printRealm(t *tabwriterW, r realm.RealmJSON) {
	if !r.Configured {
		row(t, "ORG", r.Org)
		row(t, "REALM", "none (routes with --auth required answer 503)")
		return
	}
	row(t, "ORG", r.Org)
	row(t, "DISPLAY NAME", r.DisplayName)
	row(t, "SIGN-UP", r.AllowSignup)
	if r.SMTP != nil {
		row(t, "SMTP", fmt.Sprintf("%s:%d (%s)", r.SMTP.Host, r.SMTP.Port, r.SMTP.TLS))
		row(t, "SMTP FROM", r.SMTP.From)
		pass := "none"
		if r.SMTP.HasPassword {
			pass = "set (never shown)"
		}
		row(t, "SMTP USER", r.SMTP.Username)
		row(t, "SMTP PASSWORD", pass)
	}
	row(t, "SESSION IDLE", r.SessionIdle)
	row(t, "SESSION LIFETIME", r.SessionAbsolute)
	row(t, "ISSUER", r.Issuer)
	row(t, "JWKS", r.JWKSURL)
	row(t, "KEY ID", r.KeyID)
	row(t, "USERS", r.Users)
}
