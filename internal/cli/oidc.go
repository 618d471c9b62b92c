package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
)

func (ce *cmdEnv) oidcCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "oidc", Short: "Manage the OpenID provider: clients and signing keys (site administrators)"}
	cmd.AddCommand(ce.oidcClientCmd(), ce.oidcKeysCmd())
	return cmd
}

func (ce *cmdEnv) oidcClientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register, list and delete OAuth/OpenID clients"}
	var req oidcop.CreateClientRequest
	create := &cobra.Command{
		Use: "create NAME", Short: "Register a client (a confidential client's secret is printed once)", Args: cobra.ExactArgs(1),
		Example: `  rampart oidc client create wiki --redirect-uri https://wiki.example.com/callback --scope user:read
  rampart oidc client create my-cli --public --redirect-uri http://127.0.0.1/callback --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			c, err := ce.client()
			if err != nil {
				return err
			}
			var cl oidcop.CreatedClient
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/oidc/clients", req, &cl); err != nil {
				return err
			}
			return ce.print(cl, func(t *tabwriterW) {
				row(t, "CLIENT ID", cl.ClientID)
				row(t, "NAME", cl.Name)
				row(t, "TYPE", clientType(cl.Public))
				row(t, "GRANTS", cl.GrantTypes)
				row(t, "REDIRECT URIS", cl.RedirectURIs)
				row(t, "SCOPES", cl.Scopes)
				if cl.ClientSecret != "" {
					row(t, "CLIENT SECRET", cl.ClientSecret)
					fmt.Fprintln(ce.Stderr, "Copy the client secret now: it is not shown again.")
				}
			})
		},
	}
	f := create.Flags()
	f.StringArrayVar(&req.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable; https, or http for localhost only)")
	f.BoolVar(&req.Public, "public", false, "a public client: no secret, PKCE required (CLIs, native and browser apps)")
	f.StringSliceVar(&req.GrantTypes, "grant", nil, "grant type (repeatable): authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code")
	f.StringSliceVar(&req.Scopes, "scope", nil, "API scope the client may request (repeatable; see 'rampart token scopes')")

	list := &cobra.Command{
		Use: "list", Short: "List registered clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var cs []oidcop.ClientJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/oidc/clients", nil, &cs); err != nil {
				return err
			}
			return ce.print(cs, func(t *tabwriterW) {
				row(t, "CLIENT ID", "NAME", "TYPE", "GRANTS", "REDIRECT URIS", "SCOPES", "CREATED")
				for _, cl := range cs {
					row(t, cl.ClientID, cl.Name, clientType(cl.Public), cl.GrantTypes, cl.RedirectURIs, cl.Scopes, cl.CreatedAt)
				}
			})
		},
	}
	del := &cobra.Command{
		Use: "delete CLIENT_ID", Short: "Delete a client; its tokens stop working", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/oidc/clients/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Deleted client %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func clientType(public bool) string {
	if public {
		return "public"
	}
	return "confidential"
}

func (ce *cmdEnv) oidcKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "List and rotate the ID token signing keys"}
	list := &cobra.Command{
		Use: "list", Short: "List the published signing keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ks []oidcop.SigningKeyJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/oidc/keys", nil, &ks); err != nil {
				return err
			}
			return ce.print(ks, func(t *tabwriterW) {
				row(t, "KID", "ALG", "CREATED", "CURRENT", "RETIRE AFTER")
				for _, k := range ks {
					row(t, k.KeyID, k.Algorithm, k.CreatedAt, k.Current, k.RetireAfter)
				}
			})
		},
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Replace the signing key now; the old key stays published until its ID tokens expire", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var k oidcop.SigningKeyJSON
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/oidc/keys/rotate", nil, &k); err != nil {
				return err
			}
			return ce.print(k, func(t *tabwriterW) { row(t, "New signing key", k.KeyID) })
		},
	}
	cmd.AddCommand(list, rotate)
	return cmd
}
