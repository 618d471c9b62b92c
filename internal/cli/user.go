package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
)

func (ce *cmdEnv) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (creating and disabling needs a site administrator)"}
	var (
		email, display string
		passwordStdin  bool
		siteAdmin      bool
	)
	create := &cobra.Command{
		Use: "create USER", Short: "Create a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := httpapi.CreateUserRequest{Username: args[0], Email: email, DisplayName: display, SiteAdmin: siteAdmin}
			if passwordStdin {
				pw, err := readPassword(ce.Stdin)
				if err != nil {
					return err
				}
				req.Password = pw
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var u httpapi.User
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/users", req, &u); err != nil {
				return err
			}
			return ce.print(u, func(t *tabwriterW) { row(t, "Created user", u.Username) })
		},
	}
	create.Flags().StringVar(&email, "email", "", "e-mail address")
	create.Flags().StringVar(&display, "display-name", "", "display name")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read an initial password from standard input")
	create.Flags().BoolVar(&siteAdmin, "site-admin", false, "make the user a site administrator")
	var query string
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var us []httpapi.User
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/users?q="+url.QueryEscape(query), nil, &us); err != nil {
				return err
			}
			return ce.print(us, func(t *tabwriterW) {
				row(t, "USER", "KIND", "EMAIL", "ADMIN", "DISABLED", "CREATED")
				for _, u := range us {
					row(t, u.Username, u.Kind, u.Email, u.SiteAdmin, u.Disabled, u.CreatedAt)
				}
			})
		},
	}
	list.Flags().StringVarP(&query, "query", "q", "", "filter by part of the name or e-mail")
	get := &cobra.Command{
		Use: "get USER", Short: "Show a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var u httpapi.User
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/users/"+esc(args[0]), nil, &u); err != nil {
				return err
			}
			return ce.print(u, func(t *tabwriterW) {
				row(t, "USER", u.Username)
				row(t, "KIND", u.Kind)
				row(t, "EMAIL", u.Email)
				row(t, "SITE ADMIN", u.SiteAdmin)
				row(t, "DISABLED", u.Disabled)
				row(t, "CREATED", u.CreatedAt)
			})
		},
	}
	setDisabled := func(use, short string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " USER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := ce.client()
				if err != nil {
					return err
				}
				var u httpapi.User
				if err := c.do(cmd.Context(), "PATCH", httpapi.Prefix+"/users/"+esc(args[0]), httpapi.UpdateUserRequest{Disabled: &disabled}, &u); err != nil {
					return err
				}
				return ce.print(u, func(t *tabwriterW) { row(t, u.Username, fmt.Sprintf("disabled=%v", u.Disabled)) })
			},
		}
	}
	cmd.AddCommand(create, list, get,
		setDisabled("disable", "Disable a user: ends their sessions, stops their tokens", true),
		setDisabled("enable", "Enable a disabled user", false))
	return cmd
}

func (ce *cmdEnv) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage your personal access tokens"}
	var (
		name      string
		scopes    []string
		expiresIn string
	)
	create := &cobra.Command{
		Use: "create", Short: "Create a token (its secret is printed once)", Args: cobra.NoArgs,
		Example: "  rampart token create --name ci --scope repo:read --scope registry:pull --expires-in 30d --output json",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(scopes) == 0 {
				return usagef("at least one --scope is required; see 'rampart token scopes'")
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var t httpapi.CreatedToken
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/user/tokens", httpapi.CreateTokenRequest{Name: name, Scopes: scopes, ExpiresIn: expiresIn}, &t); err != nil {
				return err
			}
			return ce.print(t, func(w *tabwriterW) {
				row(w, "TOKEN", t.Secret)
				row(w, "ID", t.ID)
				row(w, "SCOPES", t.Scopes)
				row(w, "EXPIRES", t.ExpiresAt)
				fmt.Fprintln(ce.Stderr, "Copy the token now: it is not shown again.")
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for")
	create.Flags().StringSliceVar(&scopes, "scope", nil, "a scope (repeat, or comma-separate)")
	create.Flags().StringVar(&expiresIn, "expires-in", "30d", "lifetime: days (30d) or a duration (720h); at most 366d")
	_ = create.MarkFlagRequired("name")
	list := &cobra.Command{
		Use: "list", Short: "List your tokens", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ts []httpapi.Token
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/user/tokens", nil, &ts); err != nil {
				return err
			}
			return ce.print(ts, func(w *tabwriterW) {
				row(w, "ID", "NAME", "KIND", "SCOPES", "EXPIRES", "LAST USED", "ACTIVE")
				for _, t := range ts {
					row(w, t.ID, t.Name+" "+t.Hint, t.Kind, t.Scopes, t.ExpiresAt, t.LastUsedAt, t.Active)
				}
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke one of your tokens", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/user/tokens/"+esc(args[0]), nil, nil)
		},
	}
	scopesCmd := &cobra.Command{
		Use: "scopes", Short: "List the scopes a token can carry", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.anonClient()
			if err != nil {
				return err
			}
			var ss []httpapi.Scope
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/scopes", nil, &ss); err != nil {
				return err
			}
			return ce.print(ss, func(w *tabwriterW) {
				row(w, "SCOPE", "ALLOWS")
				for _, s := range ss {
					row(w, s.Name, s.Description)
				}
			})
		},
	}
	cmd.AddCommand(create, list, revoke, scopesCmd)
	return cmd
}

// anonClient returns a client for public endpoints: logged in or not.
func (ce *cmdEnv) anonClient() (*client, error) {
	if c, err := ce.client(); err == nil {
		return c, nil
	}
	server := normalizeServer(ce.server)
	if server == "" {
		server = normalizeServer(ce.Getenv("RAMPART_SERVER"))
	}
	if server == "" {
		return nil, usagef("--server is required")
	}
	hc, err := newHTTPClient(ce.Getenv("RAMPART_CA_CERT"))
	if err != nil {
		return nil, err
	}
	return &client{base: server, http: hc}, nil
}

func (ce *cmdEnv) serviceAccountCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "service-account", Aliases: []string{"sa"}, Short: "Manage an organisation's service accounts"}
	var (
		desc, role string
	)
	create := &cobra.Command{
		Use: "create ORG NAME", Short: "Create a service account (named ORG-bot-NAME)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var sa httpapi.ServiceAccount
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(args[0])+"/service-accounts",
				httpapi.CreateServiceAccountRequest{Name: args[1], Description: desc, Role: role}, &sa); err != nil {
				return err
			}
			return ce.print(sa, func(w *tabwriterW) { row(w, "Created service account", sa.Username, sa.Role) })
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what it is for")
	create.Flags().StringVar(&role, "role", "developer", "maintainer, developer or reader")
	list := &cobra.Command{
		Use: "list ORG", Short: "List service accounts", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var sas []httpapi.ServiceAccount
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/service-accounts", nil, &sas); err != nil {
				return err
			}
			return ce.print(sas, func(w *tabwriterW) {
				row(w, "ACCOUNT", "ROLE", "DESCRIPTION", "CREATED")
				for _, s := range sas {
					row(w, s.Username, s.Role, s.Description, s.CreatedAt)
				}
			})
		},
	}
	del := &cobra.Command{
		Use: "delete ORG ACCOUNT", Short: "Delete a service account and its tokens", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0])+"/service-accounts/"+esc(args[1]), nil, nil)
		},
	}
	var (
		name      string
		scopes    []string
		expiresIn string
	)
	tok := &cobra.Command{
		Use: "token ORG ACCOUNT", Short: "Create a token for a service account (printed once)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(scopes) == 0 {
				return usagef("at least one --scope is required")
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var t httpapi.CreatedToken
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(args[0])+"/service-accounts/"+esc(args[1])+"/tokens",
				httpapi.CreateTokenRequest{Name: name, Scopes: scopes, ExpiresIn: expiresIn}, &t); err != nil {
				return err
			}
			return ce.print(t, func(w *tabwriterW) {
				row(w, "TOKEN", t.Secret)
				row(w, "ID", t.ID)
				row(w, "SCOPES", t.Scopes)
				row(w, "EXPIRES", t.ExpiresAt)
			})
		},
	}
	tok.Flags().StringVar(&name, "name", "token", "what the token is for")
	tok.Flags().StringSliceVar(&scopes, "scope", nil, "a scope (repeat, or comma-separate)")
	tok.Flags().StringVar(&expiresIn, "expires-in", "90d", "lifetime, at most 366d")
	cmd.AddCommand(create, list, del, tok)
	return cmd
}
