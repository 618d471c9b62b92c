package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/policy"
)

func (ce *cmdEnv) exceptionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "exception", Short: "Manage an organisation's policy exceptions",
		Long: `An exception sets one policy, rule or advisory aside in a scope (repository,
image, environment), with an owner, a reason and an expiry; the gates and
the scanner honour it until it expires, then report it. The same object
lives in .rampart/ignore.yaml and in a policy repository's exceptions.yaml.`}
	list := &cobra.Command{
		Use: "list ORG", Short: "List every exception that applies to the org: in force, then expired", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var es []policy.ExceptionState
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/exceptions", nil, &es); err != nil {
				return err
			}
			return ce.print(es, func(t *tabwriterW) {
				row(t, "WHERE", "SETS ASIDE", "OWNER", "EXPIRES", "STATE", "REASON")
				for _, e := range es {
					state := "in force"
					if e.Expired {
						state = "EXPIRED, not applied"
					}
					row(t, e.Where(), e.What(), e.Owner, dateText(e.Expires), state, e.Reason)
				}
			})
		},
	}
	var req policy.ExceptionRequest
	add := &cobra.Command{
		Use:   "add ORG --id ID --reason TEXT --expires YYYY-MM-DD",
		Short: "Add an org exception (owners)",
		Long: `Add an exception for the org: it names a policy, rule or advisory id (or a
finding's fingerprint), may narrow it to an image, repository or
environment (globs), and needs a reason and an expiry at most a year ahead;
the owner defaults to you.`,
		Example: `  rampart exception add acme --id CVE-2025-1111 --image registry.example.com/acme/web \
      --environment staging --reason "parser not reachable, see SEC-12" --expires 2026-12-31`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var e exception.Exception
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(args[0])+"/exceptions", req, &e); err != nil {
				return err
			}
			return ce.print(e, func(t *tabwriterW) {
				row(t, "Added exception", fmt.Sprintf("#%d", e.Number), e.What(), "until "+e.Expires.String())
			})
		},
	}
	f := add.Flags()
	f.StringVar(&req.ID, "id", "", "the policy, rule or advisory id to set aside")
	f.StringVar(&req.Fingerprint, "fingerprint", "", "one finding's fingerprint")
	f.StringArrayVar(&req.Paths, "path", nil, "a path glob the exception is limited to (repeatable)")
	f.StringVar(&req.Repository, "repository", "", "limit to repositories matching this glob (org/name)")
	f.StringVar(&req.Image, "image", "", "limit to images matching this glob (without tag: every tag)")
	f.StringVar(&req.Environment, "environment", "", "limit to environments matching this glob")
	f.StringVar(&req.Reason, "reason", "", "why the rule may be set aside")
	f.StringVar(&req.Owner, "owner", "", "who answers for it (default: you)")
	f.StringVar(&req.Expires, "expires", "", "last day it applies, YYYY-MM-DD")
	del := &cobra.Command{
		Use: "delete ORG NUMBER", Short: "Delete an org exception (owners); the gates stop honouring it at once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			n := strings.TrimPrefix(args[1], "#")
			if err := c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0])+"/exceptions/"+esc(n), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Deleted exception #%s.\n", n)
			return nil
		},
	}
	cmd.AddCommand(list, add, del)
	return cmd
}
