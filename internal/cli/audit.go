package cli

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/httpapi"
)

func (ce *cmdEnv) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read, export and verify the audit log"}
	var (
		actor, action, outcome, org, since, until string
		limit                                     int
	)
	filters := func(c *cobra.Command) {
		c.Flags().StringVar(&actor, "actor", "", "only this actor")
		c.Flags().StringVar(&action, "action", "", "only this action or its children (user.login)")
		c.Flags().StringVar(&outcome, "outcome", "", "success, failure or denied")
		c.Flags().StringVar(&org, "org", "", "only this org's entries")
		c.Flags().StringVar(&since, "since", "", "from this RFC 3339 time")
		c.Flags().StringVar(&until, "until", "", "before this RFC 3339 time")
	}
	query := func() url.Values {
		q := url.Values{}
		for k, v := range map[string]string{"actor": actor, "action": action, "outcome": outcome, "org": org, "since": since, "until": until} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return q
	}
	list := &cobra.Command{
		Use: "list", Short: "Show recent entries, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			q := query()
			q.Set("limit", strconv.Itoa(limit))
			path := httpapi.Prefix + "/audit?" + q.Encode()
			if org != "" {
				q.Del("org")
				path = httpapi.Prefix + "/orgs/" + esc(org) + "/audit?" + q.Encode()
			}
			var es []httpapi.AuditEntry
			if err := c.do(cmd.Context(), "GET", path, nil, &es); err != nil {
				return err
			}
			return ce.print(es, func(t *tabwriterW) {
				row(t, "SEQ", "TIME", "ACTOR", "ACTION", "OUTCOME", "TARGET", "FROM")
				for _, e := range es {
					row(t, e.Seq, e.At, e.ActorName, e.Action, e.Outcome, e.TargetType+" "+e.TargetName, e.SourceIP)
				}
			})
		},
	}
	filters(list)
	list.Flags().IntVar(&limit, "limit", 50, "how many entries (at most 500)")
	export := &cobra.Command{
		Use: "export", Short: "Write the audit log as JSON lines to standard output, oldest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "GET", httpapi.Prefix+"/audit/export?"+query().Encode(), nil, ce.Stdout)
		},
	}
	filters(export)
	verify := &cobra.Command{
		Use: "verify", Short: "Check the hash chain; names every edited or deleted entry and exits 6 if there is one", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var rep httpapi.AuditReport
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/audit/verify", nil, &rep); err != nil {
				return err
			}
			if err := ce.print(rep, func(t *tabwriterW) {
				if rep.OK() {
					row(t, "OK", fmt.Sprintf("%d entries, chain intact", rep.Entries))
				}
				for _, p := range rep.Problems {
					row(t, "TAMPERED", fmt.Sprintf("entry %d", p.Seq), p.Kind, p.Detail)
				}
				row(t, "HEAD", fmt.Sprintf("#%d %s", rep.HeadSeq, rep.HeadHash))
			}); err != nil {
				return err
			}
			if !rep.OK() {
				return apperr.E(apperr.Conflict, "the audit log was tampered with: %d problem(s)", len(rep.Problems))
			}
			return nil
		},
	}
	cmd.AddCommand(list, export, verify)
	return cmd
}
