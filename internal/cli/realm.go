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
	cmd.AddCommand(ce.realmSetCmd(), ce.realmShowCmd(), ce.realmRmCmd(), ce.realmUsersCmd(), ce.realmUserCmd(), ce.realmProviderCmd(), ce.realmRotateKeyCmd())
	return cmd
}

func (ce *cmdEnv) realmProviderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "provider", Short: "Manage the realm's external OpenID providers (routes with --auth-provider sign in there)"}
	var (
		req         realm.ProviderRequest
		secretStdin bool
		requireMFA  bool
	)
	set := &cobra.Command{
		Use: "set ORG NAME", Short: "Add or change an external OpenID provider of the realm (owners)", Args: cobra.ExactArgs(2),
		Long: `Add or change an external OpenID provider of an organisation's realm. Gateway
routes with --auth required --auth-provider NAME send their visitors to it
instead of the realm's own sign-in, and pass them on with the realm's JWT
(sub PROVIDER:SUBJECT, idp NAME). Register the client at the provider with
the redirect URI https://HOST/.rampart/auth/oidc/callback for every route
host. By default the provider must report a second factor in the ID token's
amr claim (--require-mfa=false accepts any sign-in).

The client secret is read from standard input with --client-secret-stdin.`,
		Example: `  printf '%s' "$SECRET" | rampart realm provider set acme corp --issuer https://login.example.com \
      --client-id shop --client-secret-stdin
  rampart gateway route add --project acme/web --host staff.acme.test --backend http://127.0.0.1:9001 \
      --auth required --auth-provider corp`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if secretStdin {
				b, err := io.ReadAll(io.LimitReader(ce.Stdin, maxSecretInput+1))
				if err != nil {
					return fmt.Errorf("read client secret: %w", err)
				}
				if len(b) > maxSecretInput {
					return usagef("the client secret on standard input is longer than %d bytes", maxSecretInput)
				}
				secret := string(bytes.TrimRight(b, "\r\n"))
				if secret == "" {
					return usagef("--client-secret-stdin: standard input is empty")
				}
				req.ClientSecret = &secret
			}
			if cmd.Flags().Changed("require-mfa") {
				req.RequireMFA = &requireMFA
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var p realm.ProviderJSON
			if err := c.do(cmd.Context(), "PUT", realmPath(args[0])+"/providers/"+esc(args[1]), req, &p); err != nil {
				return err
			}
			return ce.print(p, func(t *tabwriterW) { printRealmProvider(t, p) })
		},
	}
	f := set.Flags()
	f.StringVar(&req.Issuer, "issuer", "", "the provider's issuer URL (https, or http on loopback only)")
	f.StringVar(&req.ClientID, "client-id", "", "the client id registered at the provider")
	f.BoolVar(&secretStdin, "client-secret-stdin", false, "read the client secret from standard input")
	f.StringSliceVar(&req.Scopes, "scope", nil, "scope to request besides openid (repeatable; default email)")
	f.BoolVar(&requireMFA, "require-mfa", true, "refuse sign-ins whose ID token does not report a second factor (amr)")

	list := &cobra.Command{
		Use: "list ORG", Short: "List the realm's external providers (owners)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ps []realm.ProviderJSON
			if err := c.do(cmd.Context(), "GET", realmPath(args[0])+"/providers", nil, &ps); err != nil {
				return err
			}
			return ce.print(ps, func(t *tabwriterW) {
				row(t, "NAME", "ISSUER", "CLIENT ID", "REQUIRE MFA")
				for _, p := range ps {
					row(t, p.Name, p.Issuer, p.ClientID, p.RequireMFA)
				}
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm ORG NAME", Aliases: []string{"remove"}, Short: "Remove an external provider and end its sessions (owners)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", realmPath(args[0])+"/providers/"+esc(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Removed provider %s of the realm of %s.\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(set, list, rm)
	return cmd
}

func printRealmProvider(t *tabwriterW, p realm.ProviderJSON) {
	row(t, "NAME", p.Name)
	row(t, "ISSUER", p.Issuer)
	row(t, "CLIENT ID", p.ClientID)
	secret := "none (public client, PKCE)"
	if p.HasSecret {
		secret = "set (never shown)"
	}
	row(t, "CLIENT SECRET", secret)
	row(t, "SCOPES", p.Scopes)
	row(t, "REQUIRE MFA", p.RequireMFA)
	row(t, "REDIRECT PATH", p.RedirectPath)
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

func (ce *cmdEnv) realmRotateKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rotate-key ORG", Short: "Replace the realm's signing key; the old one stays published until its tokens expire (owners)",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out realm.RealmJSON
			if err := c.do(cmd.Context(), "POST", realmPath(args[0])+"/rotate-key", nil, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { printRealm(t, out) })
		},
	}
}

func (ce *cmdEnv) realmUserCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Act on one end user of the realm (owners)"}
	act := func(use, short, method, suffix, done string) *cobra.Command {
		return &cobra.Command{
			Use: use + " ORG ID", Short: short, Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := ce.client()
				if err != nil {
					return err
				}
				if err := c.do(cmd.Context(), method, realmPath(args[0])+"/users/"+esc(args[1])+suffix, nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(ce.Stderr, done+"\n", args[1])
				return nil
			},
		}
	}
	cmd.AddCommand(
		act("rm", "Remove an end user with their sessions and factors", "DELETE", "", "Removed end user %s."),
		act("reset-mfa", "Remove an end user's second factors and sessions: they enrol again at the next sign-in", "POST", "/reset-mfa",
			"End user %s will enrol a second factor at the next sign-in."),
	)
	return cmd
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
