package cli

import (
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
)

func (ce *cmdEnv) teamCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "team", Short: "Manage teams of an organisation"}
	var desc string
	create := &cobra.Command{
		Use: "create ORG TEAM", Short: "Create a team", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var t httpapi.Team
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(args[0])+"/teams", httpapi.CreateTeamRequest{Name: args[1], Description: desc}, &t); err != nil {
				return err
			}
			return ce.print(t, func(w *tabwriterW) { row(w, "Created team", t.Name) })
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the team is for")
	list := &cobra.Command{
		Use: "list ORG", Short: "List teams", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ts []httpapi.Team
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/teams", nil, &ts); err != nil {
				return err
			}
			return ce.print(ts, func(w *tabwriterW) {
				row(w, "TEAM", "DESCRIPTION", "CREATED")
				for _, t := range ts {
					row(w, t.Name, t.Description, t.CreatedAt)
				}
			})
		},
	}
	del := &cobra.Command{
		Use: "delete ORG TEAM", Short: "Delete a team", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0])+"/teams/"+esc(args[1]), nil, nil)
		},
	}
	members := &cobra.Command{Use: "member", Short: "Manage team members"}
	madd := &cobra.Command{
		Use: "add ORG TEAM USER", Short: "Add an org member to a team", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "PUT", httpapi.Prefix+"/orgs/"+esc(args[0])+"/teams/"+esc(args[1])+"/members/"+esc(args[2]), nil, nil)
		},
	}
	mrm := &cobra.Command{
		Use: "remove ORG TEAM USER", Aliases: []string{"rm"}, Short: "Remove a user from a team", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0])+"/teams/"+esc(args[1])+"/members/"+esc(args[2]), nil, nil)
		},
	}
	mlist := &cobra.Command{
		Use: "list ORG TEAM", Short: "List team members", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var us []httpapi.User
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/teams/"+esc(args[1])+"/members", nil, &us); err != nil {
				return err
			}
			return ce.print(us, func(w *tabwriterW) {
				row(w, "USER", "KIND")
				for _, u := range us {
					row(w, u.Username, u.Kind)
				}
			})
		},
	}
	members.AddCommand(madd, mrm, mlist)
	cmd.AddCommand(create, list, del, members)
	return cmd
}

func (ce *cmdEnv) projectCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Manage projects of an organisation"}
	var desc string
	create := &cobra.Command{
		Use: "create ORG/PROJECT", Short: "Create a project", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			org, name, err := splitPair(args[0], "ORG/PROJECT")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var p httpapi.Project
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(org)+"/projects", httpapi.CreateProjectRequest{Name: name, Description: desc}, &p); err != nil {
				return err
			}
			return ce.print(p, func(w *tabwriterW) { row(w, "Created project", p.Org+"/"+p.Name) })
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the project is")
	list := &cobra.Command{
		Use: "list ORG", Short: "List projects", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ps []httpapi.Project
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/projects", nil, &ps); err != nil {
				return err
			}
			return ce.print(ps, func(w *tabwriterW) {
				row(w, "PROJECT", "DESCRIPTION", "CREATED")
				for _, p := range ps {
					row(w, p.Org+"/"+p.Name, p.Description, p.CreatedAt)
				}
			})
		},
	}
	del := &cobra.Command{
		Use: "delete ORG/PROJECT", Short: "Delete a project", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			org, name, err := splitPair(args[0], "ORG/PROJECT")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(org)+"/projects/"+esc(name), nil, nil)
		},
	}
	var role string
	grant := &cobra.Command{
		Use: "grant ORG/PROJECT USER|team:TEAM", Short: "Give a user or a team a role on a project (--role none revokes)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			org, name, err := splitPair(args[0], "ORG/PROJECT")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			path := httpapi.Prefix + "/orgs/" + esc(org) + "/projects/" + esc(name) + "/grants/"
			if team, ok := cutPrefix(args[1], "team:"); ok {
				path += "teams/" + esc(team)
			} else {
				path += "users/" + esc(args[1])
			}
			if role == "none" {
				return c.do(cmd.Context(), "DELETE", path, nil, nil)
			}
			return c.do(cmd.Context(), "PUT", path, httpapi.RoleRequest{Role: role}, nil)
		},
	}
	grant.Flags().StringVar(&role, "role", "developer", "owner, maintainer, developer, reader or none")
	grants := &cobra.Command{
		Use: "grants ORG/PROJECT", Short: "List project grants", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			org, name, err := splitPair(args[0], "ORG/PROJECT")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var gs []httpapi.Grant
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(org)+"/projects/"+esc(name)+"/grants", nil, &gs); err != nil {
				return err
			}
			return ce.print(gs, func(w *tabwriterW) {
				row(w, "WHO", "ROLE")
				for _, g := range gs {
					who := g.User
					if g.Team != "" {
						who = "team:" + g.Team
					}
					row(w, who, g.Role)
				}
			})
		},
	}
	cmd.AddCommand(create, list, del, grant, grants)
	return cmd
}
