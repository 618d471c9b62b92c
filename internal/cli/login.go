package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/httpapi"
)

func (ce *cmdEnv) loginCmd() *cobra.Command {
	var (
		token, username, otp, caCert string
		passwordStdin                bool
		scopes                       []string
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a Rampart server and save the credential",
		Long: `Sign in to a Rampart server. Three ways:

  rampart login --server URL                       a browser approves this device (OAuth device flow)
  rampart login --server URL --token TOKEN         use an existing token
  echo PASS | rampart login --server URL --username U --password-stdin [--otp CODE]
                                                   for scripts, like docker login

The credential is saved (mode 0600) for later commands.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			server := normalizeServer(ce.server)
			if server == "" {
				server = normalizeServer(ce.Getenv("RAMPART_SERVER"))
			}
			if server == "" {
				return usagef("--server is required")
			}
			hc, err := newHTTPClient(caCert)
			if err != nil {
				return err
			}
			c := &client{base: server, http: hc}
			entry := &serverEntry{CACert: absPath(caCert)}
			ctx := cmd.Context()
			switch {
			case token != "":
				c.token = token
				entry.Token = token
			case username != "":
				if !passwordStdin {
					return usagef("with --username, pass the password on standard input with --password-stdin")
				}
				pw, err := readPassword(ce.Stdin)
				if err != nil {
					return err
				}
				host, _ := os.Hostname()
				var res httpapi.LoginResponse
				err = c.do(ctx, "POST", httpapi.Prefix+"/auth/login", httpapi.LoginRequest{Username: username, Password: pw, OTP: otp,
					TokenName: "rampart login on " + host, Scopes: scopes}, &res)
				if err != nil {
					return err
				}
				c.token = res.Token.Secret
				entry.Token, entry.TokenID = res.Token.Secret, res.Token.ID
				if res.Token.ExpiresAt != nil {
					entry.Expiry = *res.Token.ExpiresAt
				}
			default:
				if passwordStdin {
					return usagef("--password-stdin needs --username")
				}
				if err := ce.deviceLogin(cmd, c, entry); err != nil {
					return err
				}
			}
			var me httpapi.Me
			if err := c.do(ctx, "GET", httpapi.Prefix+"/user", nil, &me); err != nil {
				return err
			}
			entry.Username = me.Username
			creds, path, err := ce.loadCredentials()
			if err != nil {
				return err
			}
			creds.Servers[server] = entry
			creds.Current = server
			if err := creds.save(path); err != nil {
				return fmt.Errorf("save credentials: %w", err)
			}
			fmt.Fprintf(ce.Stderr, "Logged in to %s as %s.\n", server, me.Username)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&token, "token", "", "an existing token")
	f.StringVarP(&username, "username", "u", "", "user name (with --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	f.StringVar(&otp, "otp", "", "a code from your authenticator app, or a recovery code")
	f.StringVar(&caCert, "ca-cert", "", "CA certificate to trust for the server (its tls/ca.crt)")
	f.StringSliceVar(&scopes, "scope", nil, "scopes of the saved token (default admin)")
	cmd.MarkFlagsMutuallyExclusive("token", "username")
	return cmd
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", usagef("no standard input to read the password from")
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("empty password on standard input")
	}
	return pw, nil
}

func (ce *cmdEnv) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved credential of the current server, revoking the token if login created it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			creds, path, err := ce.loadCredentials()
			if err != nil {
				return err
			}
			server := normalizeServer(ce.server)
			if server == "" {
				server = creds.Current
			}
			entry := creds.Servers[server]
			if entry == nil {
				if server == "" {
					return apperr.E(apperr.NotFound, "not logged in")
				}
				return apperr.E(apperr.NotFound, "not logged in to %s", server)
			}
			if entry.RefreshToken != "" {
				if hc, err := newHTTPClient(entry.CACert); err == nil {
					if err := revokeRefresh(cmd.Context(), hc, server, entry.RefreshToken); err != nil {
						fmt.Fprintf(ce.Stderr, "warning: could not end the sign-in on the server: %s\n", apperr.Message(err))
					}
				}
			}
			if entry.TokenID != 0 {
				if c, err := ce.client(); err == nil {
					if err := c.do(cmd.Context(), "DELETE", fmt.Sprintf("%s/user/tokens/%d", httpapi.Prefix, entry.TokenID), nil, nil); err != nil {
						fmt.Fprintf(ce.Stderr, "warning: could not revoke the token on the server: %s\n", apperr.Message(err))
					}
				}
			}
			delete(creds.Servers, server)
			if creds.Current == server {
				creds.Current = ""
			}
			if err := creds.save(path); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Logged out of %s.\n", server)
			return nil
		},
	}
}

func (ce *cmdEnv) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are signed in as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var me httpapi.Me
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/user", nil, &me); err != nil {
				return err
			}
			return ce.print(me, func(t *tabwriterW) {
				row(t, "USER", me.Username)
				row(t, "SERVER", c.base)
				row(t, "SITE ADMIN", me.SiteAdmin)
				row(t, "CREDENTIAL", me.Credential)
				row(t, "SCOPES", me.Scopes)
				row(t, "MFA", fmt.Sprintf("totp=%v security-keys=%d recovery-codes=%d", me.MFA.TOTP, me.MFA.SecurityKeys, me.MFA.RecoveryCodes))
				for _, o := range me.Orgs {
					row(t, "ORG", o.Org+" ("+o.Role+")")
				}
			})
		},
	}
}
