package cli

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// alertPath is the API path of an org's alerts, or of one of them (and
// what follows it).
func alertPath(org string, idAndMore ...string) (string, error) {
	p := httpapi.Prefix + "/orgs/" + esc(org) + "/alerts"
	if len(idAndMore) == 0 {
		return p, nil
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(idAndMore[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return "", usagef("%q is not an alert id", idAndMore[0])
	}
	p += "/" + strconv.FormatInt(id, 10)
	for _, more := range idAndMore[1:] {
		p += "/" + more
	}
	return p, nil
}

func (ce *cmdEnv) alertCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "Security alerts of repositories' default branches: secrets, dependencies, IaC"}
	var f struct{ repo, state, kind, severity string }
	var limit int
	list := &cobra.Command{
		Use: "list ORG", Short: "List alerts, worst first (open ones unless --state says otherwise)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"repo": f.repo, "state": f.state, "kind": f.kind, "severity": f.severity} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			p, _ := alertPath(args[0])
			if len(q) > 0 {
				p += "?" + q.Encode()
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var as []alerts.AlertJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &as); err != nil {
				return err
			}
			return ce.print(as, func(t *tabwriterW) {
				row(t, "ID", "SEVERITY", "KIND", "STATE", "REPO", "WHERE", "RULE")
				for _, a := range as {
					row(t, a.ID, a.Severity, a.Kind, a.State, a.Repo, alertWhere(a), a.Rule)
				}
			})
		},
	}
	list.Flags().StringVar(&f.repo, "repo", "", "only this repository (NAME or ORG/NAME)")
	list.Flags().StringVar(&f.state, "state", "", "open (default), dismissed, fixed or all")
	list.Flags().StringVar(&f.kind, "kind", "", "secret, vulnerability or misconfiguration")
	list.Flags().StringVar(&f.severity, "severity", "", "at least this severity: low, medium, high or critical")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many alerts")

	get := &cobra.Command{
		Use: "get ORG ID", Short: "Show an alert", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ce.alertCall(cmd, "GET", args, nil)
		},
	}
	var reason, comment string
	dismiss := &cobra.Command{
		Use: "dismiss ORG ID", Short: "Dismiss an open alert with a reason and a comment (maintainers)", Args: cobra.ExactArgs(2),
		Example: "  rampart alert dismiss acme 42 --reason used_in_tests --comment 'fixture key, never valid'",
		RunE: func(cmd *cobra.Command, args []string) error {
			return ce.alertCall(cmd, "POST", append(args, "dismiss"), alerts.DismissRequest{Reason: reason, Comment: comment})
		},
	}
	dismiss.Flags().StringVar(&reason, "reason", "", "false_positive, wont_fix or used_in_tests (required)")
	dismiss.Flags().StringVar(&comment, "comment", "", "why (required)")
	_ = dismiss.MarkFlagRequired("reason")
	_ = dismiss.MarkFlagRequired("comment")
	reopen := &cobra.Command{
		Use: "reopen ORG ID", Short: "Reopen a dismissed alert (maintainers)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ce.alertCall(cmd, "POST", append(args, "reopen"), nil)
		},
	}
	var wi alerts.WorkItemRequest
	workitem := &cobra.Command{
		Use: "workitem ORG ID", Short: "Create a work item from an alert, linked both ways", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := alertPath(args[0], args[1], "workitem")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res alerts.WorkItemResponse
			if err := c.do(cmd.Context(), "POST", p, wi, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) {
				row(t, "Created", args[0], res.WorkItem.Ref, res.WorkItem.Title)
				row(t, "URL", res.WorkItem.URL)
			})
		},
	}
	workitem.Flags().StringVar(&wi.Type, "type", "", "epic, story, bug (default) or task")
	workitem.Flags().StringVar(&wi.Assignee, "assignee", "", "user name of an org member")
	workitem.Flags().StringVar(&wi.Project, "project", "", "project of the org")
	workitem.Flags().IntVar(&wi.Priority, "priority", 0, "1 to 4 (default: from the severity)")

	overview := &cobra.Command{
		Use: "overview ORG", Short: "The org's security overview: open alerts by severity and age", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var o alerts.OverviewJSON
			p, _ := alertPath(args[0])
			if err := c.do(cmd.Context(), "GET", p+"/overview", nil, &o); err != nil {
				return err
			}
			return ce.print(o, func(t *tabwriterW) {
				sevs := []string{"critical", "high", "medium", "low"}
				row(t, "OPEN", o.Open, "DISMISSED", o.Dismissed, "FIXED", o.Fixed)
				row(t)
				row(t, "AGE", "CRITICAL", "HIGH", "MEDIUM", "LOW", "TOTAL")
				for _, a := range o.ByAge {
					cols := []any{a.Age}
					for _, s := range sevs {
						cols = append(cols, a.BySeverity[s])
					}
					row(t, append(cols, a.Total)...)
				}
				if len(o.Oldest) > 0 {
					row(t)
					row(t, "OLDEST", "SEVERITY", "REPO", "WHERE", "OPENED")
					for _, a := range o.Oldest {
						row(t, a.ID, a.Severity, a.Repo, alertWhere(a), a.OpenedAt)
					}
				}
			})
		},
	}
	scanCmd := &cobra.Command{
		Use: "scan ORG/REPO", Short: "Rescan a repository's default branch now (maintainers)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			org, repo, err := splitPair(args[0], "ORG/REPO")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res alerts.Result
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(org)+"/alerts/scan", alerts.ScanRequest{Repo: repo}, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) {
				row(t, "Scanned", res.Repo, "at", res.Commit)
				row(t, "FINDINGS", res.Findings)
				row(t, "OPENED", res.Opened)
				row(t, "REOPENED", res.Reopened)
				row(t, "FIXED", res.Fixed)
				for _, n := range res.Notes {
					row(t, "NOTE", n)
				}
			})
		},
	}
	cmd.AddCommand(list, get, dismiss, reopen, workitem, overview, scanCmd)
	return cmd
}

// alertCall sends method to an alert's path (args: ORG ID [ACTION]) and
// prints the alert it answers.
func (ce *cmdEnv) alertCall(cmd *cobra.Command, method string, args []string, body any) error {
	p, err := alertPath(args[0], args[1:]...)
	if err != nil {
		return err
	}
	c, err := ce.client()
	if err != nil {
		return err
	}
	var a alerts.AlertJSON
	if err := c.do(cmd.Context(), method, p, body, &a); err != nil {
		return err
	}
	return ce.print(a, func(t *tabwriterW) {
		row(t, "ALERT", a.ID)
		row(t, "STATE", a.State)
		row(t, "SEVERITY", a.Severity)
		row(t, "KIND", a.Kind)
		row(t, "RULE", a.Rule)
		row(t, "TITLE", a.Title)
		row(t, "REPO", a.Repo)
		row(t, "WHERE", alertWhere(a))
		if a.Secret != "" {
			row(t, "SECRET", a.Secret)
		}
		if a.Package != nil {
			row(t, "PACKAGE", a.Package.Name+" "+a.Package.Version+" (fixed in "+a.Package.FixedVersion+")")
		}
		row(t, "FIRST SEEN", a.FirstSeenAt)
		row(t, "LAST SEEN", a.LastSeenAt)
		if a.Dismissal != nil {
			row(t, "DISMISSED", a.Dismissal.Reason+" by "+a.Dismissal.By+": "+a.Dismissal.Comment)
		}
		if a.FixedAt != nil {
			row(t, "FIXED", a.FixedCommit)
		}
		if a.WorkItem != "" {
			row(t, "WORK ITEM", a.WorkItem)
		}
		row(t, "URL", a.URL)
	})
}

func alertWhere(a alerts.AlertJSON) string {
	if a.Line > 0 {
		return a.Path + ":" + strconv.Itoa(a.Line)
	}
	return a.Path
}
