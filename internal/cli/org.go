package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
)

func esc(s string) string { return url.PathEscape(s) }

func (ce *cmdEnv) orgCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "org", Short: "Manage organisations and their members"}
	var displayName string
	create := &cobra.Command{
		Use: "create ORG", Short: "Create an organisation (you become its owner)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var o httpapi.Org
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: args[0], DisplayName: displayName}, &o); err != nil {
				return err
			}
			return ce.print(o, func(t *tabwriterW) { row(t, "Created org", o.Name) })
		},
	}
	create.Flags().StringVar(&displayName, "display-name", "", "human-readable name")
	var all bool
	list := &cobra.Command{
		Use: "list", Short: "List your organisations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			path := httpapi.Prefix + "/orgs"
			if all {
				path += "?all=true"
			}
			var orgs []httpapi.Org
			if err := c.do(cmd.Context(), "GET", path, nil, &orgs); err != nil {
				return err
			}
			return ce.print(orgs, func(t *tabwriterW) {
				row(t, "NAME", "ROLE", "REQUIRE MFA", "CREATED")
				for _, o := range orgs {
					row(t, o.Name, o.Role, o.RequireMFA, o.CreatedAt)
				}
			})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "every org (site administrators)")
	get := &cobra.Command{
		Use: "get ORG", Short: "Show an organisation", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var o httpapi.Org
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0]), nil, &o); err != nil {
				return err
			}
			return ce.print(o, func(t *tabwriterW) {
				row(t, "NAME", o.Name)
				row(t, "DISPLAY NAME", o.DisplayName)
				row(t, "REQUIRE MFA", o.RequireMFA)
				row(t, "YOUR ROLE", o.Role)
				row(t, "CREATED", o.CreatedAt)
			})
		},
	}
	var requireMFA string
	var newDisplay string
	set := &cobra.Command{
		Use: "set ORG", Short: "Change organisation settings", Args: cobra.ExactArgs(1),
		Example: "  rampart org set acme --require-mfa=on",
		RunE: func(cmd *cobra.Command, args []string) error {
			var req httpapi.UpdateOrgRequest
			if cmd.Flags().Changed("display-name") {
				req.DisplayName = &newDisplay
			}
			if requireMFA != "" {
				var b bool
				if err := (onOff{&b}).Set(requireMFA); err != nil {
					return usagef("--require-mfa: %v", err)
				}
				req.RequireMFA = &b
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var o httpapi.Org
			if err := c.do(cmd.Context(), "PATCH", httpapi.Prefix+"/orgs/"+esc(args[0]), req, &o); err != nil {
				return err
			}
			return ce.print(o, func(t *tabwriterW) { row(t, "Updated org", o.Name, "require-mfa="+fmt.Sprint(o.RequireMFA)) })
		},
	}
	set.Flags().StringVar(&requireMFA, "require-mfa", "", "require two-factor authentication of every member (on|off)")
	set.Flags().StringVar(&newDisplay, "display-name", "", "human-readable name")
	var yes bool
	del := &cobra.Command{
		Use: "delete ORG", Short: "Delete an organisation with everything in it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usagef("deleting %s removes all its teams, projects and service accounts; pass --yes to confirm", args[0])
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Deleted org %s.\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm")
	cmd.AddCommand(create, list, get, set, del, ce.memberCmd(), ce.orgIdPCmd())
	return cmd
}

func (ce *cmdEnv) memberCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "Manage organisation members"}
	var role string
	add := &cobra.Command{
		Use: "add ORG USER", Short: "Add a member or change their role", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var m httpapi.Member
			if err := c.do(cmd.Context(), "PUT", httpapi.Prefix+"/orgs/"+esc(args[0])+"/members/"+esc(args[1]), httpapi.RoleRequest{Role: role}, &m); err != nil {
				return err
			}
			return ce.print(m, func(t *tabwriterW) { row(t, m.Username, "is", m.Role, "of", args[0]) })
		},
	}
	add.Flags().StringVar(&role, "role", "developer", "owner, maintainer, developer or reader")
	rm := &cobra.Command{
		Use: "remove ORG USER", Aliases: []string{"rm"}, Short: "Remove a member", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0])+"/members/"+esc(args[1]), nil, nil)
		},
	}
	list := &cobra.Command{
		Use: "list ORG", Short: "List members", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ms []httpapi.Member
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/members", nil, &ms); err != nil {
				return err
			}
			return ce.print(ms, func(t *tabwriterW) {
				row(t, "USER", "KIND", "ROLE")
				for _, m := range ms {
					row(t, m.Username, m.Kind, m.Role)
				}
			})
		},
	}
	cmd.AddCommand(add, rm, list)
	return cmd
}
