package cli

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/federation"
)

// maxSecretInput caps a client secret read from standard input.
const maxSecretInput = 4096

func (ce *cmdEnv) orgIdPCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "idp", Short: "Manage an organisation's upstream identity providers (sign-in sources)"}
	var (
		req         federation.CreateProviderRequest
		secretStdin bool
	)
	add := &cobra.Command{
		Use: "add ORG NAME", Short: "Add an upstream OpenID Connect provider members can sign in with (owners)", Args: cobra.ExactArgs(2),
		Long: `Add an upstream OpenID Connect provider (Azure AD, Keycloak, Google, …) as a
sign-in source of an organisation. Register Rampart there first with the
redirect URI this command prints (the public URL + /login/idp/callback).

The client secret is read from standard input with --client-secret-stdin,
never from an argument (arguments end up in shell history and process
lists). Without it the client is public and relies on PKCE alone.`,
		Example: `  printf '%s' "$SECRET" | rampart org idp add acme corp --label "Corp SSO" \
      --issuer https://login.example.com/realms/corp --client-id rampart --client-secret-stdin \
      --create-users --role developer`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[1]
			if secretStdin {
				b, err := io.ReadAll(io.LimitReader(ce.Stdin, maxSecretInput+1))
				if err != nil {
					return fmt.Errorf("read client secret: %w", err)
				}
				if len(b) > maxSecretInput {
					return usagef("the client secret on standard input is longer than %d bytes", maxSecretInput)
				}
				req.ClientSecret = string(bytes.TrimRight(b, "\r\n"))
				if req.ClientSecret == "" {
					return usagef("--client-secret-stdin: standard input is empty")
				}
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var p federation.ProviderJSON
			if err := c.do(cmd.Context(), "POST", idpPath(args[0], ""), req, &p); err != nil {
				return err
			}
			return ce.print(p, func(t *tabwriterW) {
				printProvider(t, p)
				fmt.Fprintf(ce.Stderr, "Register this redirect URI with the provider: %s\n", p.CallbackURL)
			})
		},
	}
	f := add.Flags()
	f.StringVar(&req.Label, "label", "", "text of the sign-in button (default: the name)")
	f.StringVar(&req.Issuer, "issuer", "", "the provider's issuer URL (https, or http on localhost only)")
	f.StringVar(&req.ClientID, "client-id", "", "the client id Rampart was registered with at the provider")
	f.BoolVar(&secretStdin, "client-secret-stdin", false, "read the client secret from standard input")
	f.StringSliceVar(&req.Scopes, "scope", nil, "scope to request (repeatable; default openid, profile, email)")
	f.StringVar(&req.UsernameClaim, "username-claim", "", "claim new users take their user name from (default preferred_username)")
	f.BoolVar(&req.MatchEmail, "match-email", false, "link org members whose verified e-mail address matches")
	f.BoolVar(&req.CreateUsers, "create-users", false, "create a user on first sign-in when no account matches")
	f.StringVar(&req.Role, "role", "reader", "role of people joining the org through the provider: reader, developer or maintainer")
	_ = add.MarkFlagRequired("issuer")
	_ = add.MarkFlagRequired("client-id")

	list := &cobra.Command{
		Use: "list ORG", Short: "List an organisation's identity providers", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ps []federation.ProviderJSON
			if err := c.do(cmd.Context(), "GET", idpPath(args[0], ""), nil, &ps); err != nil {
				return err
			}
			return ce.print(ps, func(t *tabwriterW) {
				row(t, "NAME", "LABEL", "ISSUER", "CLIENT ID", "ROLE", "MATCH EMAIL", "CREATE USERS")
				for _, p := range ps {
					row(t, p.Name, p.Label, p.Issuer, p.ClientID, p.Role, p.MatchEmail, p.CreateUsers)
				}
			})
		},
	}
	get := &cobra.Command{
		Use: "get ORG NAME", Short: "Show an identity provider", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var p federation.ProviderJSON
			if err := c.do(cmd.Context(), "GET", idpPath(args[0], args[1]), nil, &p); err != nil {
				return err
			}
			return ce.print(p, func(t *tabwriterW) { printProvider(t, p) })
		},
	}
	remove := &cobra.Command{
		Use: "remove ORG NAME", Aliases: []string{"rm"}, Short: "Remove an identity provider (owners)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", idpPath(args[0], args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Removed identity provider %s of %s.\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, get, remove)
	return cmd
}

func idpPath(org, name string) string {
	p := httpapi.Prefix + "/orgs/" + esc(org) + "/idps"
	if name != "" {
		p += "/" + esc(name)
	}
	return p
}

func printProvider(t *tabwriterW, p federation.ProviderJSON) {
	row(t, "NAME", p.Name)
	row(t, "LABEL", p.Label)
	row(t, "ISSUER", p.Issuer)
	row(t, "CLIENT ID", p.ClientID)
	secret := "none (public client)"
	if p.HasSecret {
		secret = "set (never shown)"
	}
	row(t, "CLIENT SECRET", secret)
	row(t, "SCOPES", p.Scopes)
	row(t, "USERNAME CLAIM", p.UsernameClaim)
	row(t, "MATCH EMAIL", p.MatchEmail)
	row(t, "CREATE USERS", p.CreateUsers)
	row(t, "ROLE", p.Role)
	row(t, "REDIRECT URI", p.CallbackURL)
	row(t, "CREATED", p.CreatedAt)
	if p.CreatedBy != "" {
		row(t, "CREATED BY", p.CreatedBy)
	}
}
