package cli

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
)

// repoPath returns the API path of ORG/NAME.
func repoPath(s string) (string, error) {
	o, n, err := splitPair(strings.TrimSuffix(s, ".git"), "ORG/NAME")
	if err != nil {
		return "", err
	}
	return httpapi.Prefix + "/orgs/" + esc(o) + "/repos/" + esc(n), nil
}

func (ce *cmdEnv) repoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Manage git repositories, branch protection, status checks and webhooks"}
	var req scm.CreateRepoRequest
	create := &cobra.Command{
		Use: "create ORG/NAME", Short: "Create a repository (--output json shows its clone URLs)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, n, err := splitPair(args[0], "ORG/NAME")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			req.Name = n
			var r scm.RepoJSON
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/orgs/"+esc(o)+"/repos", req, &r); err != nil {
				return err
			}
			return ce.print(r, func(t *tabwriterW) {
				row(t, "Created repository", r.FullName)
				row(t, "HTTPS", r.CloneURL)
				row(t, "SSH", r.SSHURL)
			})
		},
	}
	create.Flags().StringVar(&req.Description, "description", "", "what the repository holds")
	create.Flags().StringVar(&req.Project, "project", "", "put the repository in a project of the org")
	create.Flags().StringVar(&req.DefaultBranch, "default-branch", "main", "name of the default branch")
	create.Flags().BoolVar(&req.Public, "public", false, "let anyone clone and read it")
	list := &cobra.Command{
		Use: "list ORG", Short: "List an org's repositories", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var rs []scm.RepoJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/repos", nil, &rs); err != nil {
				return err
			}
			return ce.print(rs, func(t *tabwriterW) {
				row(t, "REPOSITORY", "VISIBILITY", "DEFAULT BRANCH", "CLONE URL")
				for _, r := range rs {
					vis := "private"
					if r.Public {
						vis = "public"
					}
					row(t, r.FullName, vis, r.DefaultBranch, r.CloneURL)
				}
			})
		},
	}
	get := &cobra.Command{
		Use: "get ORG/NAME", Short: "Show a repository and its clone URLs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var r scm.RepoJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &r); err != nil {
				return err
			}
			return ce.print(r, func(t *tabwriterW) {
				row(t, "REPOSITORY", r.FullName)
				row(t, "DESCRIPTION", r.Description)
				row(t, "PUBLIC", r.Public)
				row(t, "DEFAULT BRANCH", r.DefaultBranch)
				row(t, "HTTPS", r.CloneURL)
				row(t, "SSH", r.SSHURL)
				row(t, "WEB", r.HTMLURL)
			})
		},
	}
	var (
		setDesc, setBranch, setPublic string
	)
	set := &cobra.Command{
		Use: "set ORG/NAME", Short: "Change a repository's description, default branch or visibility", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			var u scm.UpdateRepoRequest
			if cmd.Flags().Changed("description") {
				u.Description = &setDesc
			}
			if cmd.Flags().Changed("default-branch") {
				u.DefaultBranch = &setBranch
			}
			if setPublic != "" {
				var b bool
				if err := (onOff{&b}).Set(setPublic); err != nil {
					return usagef("--public: %v", err)
				}
				u.Public = &b
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var r scm.RepoJSON
			if err := c.do(cmd.Context(), "PATCH", p, u, &r); err != nil {
				return err
			}
			return ce.print(r, func(t *tabwriterW) { row(t, "Updated repository", r.FullName) })
		},
	}
	set.Flags().StringVar(&setDesc, "description", "", "description")
	set.Flags().StringVar(&setBranch, "default-branch", "", "default branch")
	set.Flags().StringVar(&setPublic, "public", "", "on or off")
	var yes bool
	del := &cobra.Command{
		Use: "delete ORG/NAME", Short: "Delete a repository with its history", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usagef("deleting %s removes its history, pull requests and webhooks; pass --yes to confirm", args[0])
			}
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", p, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Deleted repository %s.\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm")
	cmd.AddCommand(create, list, get, set, del, ce.protectCmd(), ce.protectionsCmd(), ce.unprotectCmd(), ce.statusCmd(), ce.hookCmd())
	return cmd
}

func (ce *cmdEnv) protectCmd() *cobra.Command {
	var p scm.ProtectionJSON
	dismiss := "on"
	cmd := &cobra.Command{
		Use: "protect ORG/NAME PATTERN", Short: "Protect branches matching PATTERN (replaces the pattern's rule)", Args: cobra.ExactArgs(2),
		Example: "  rampart repo protect acme/app main --require-pr --approvals 1 --check ci/build",
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			if err := (onOff{&p.DismissStale}).Set(dismiss); err != nil {
				return usagef("--dismiss-stale: %v", err)
			}
			p.Pattern = args[1]
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out scm.ProtectionJSON
			if err := c.do(cmd.Context(), "PUT", path+"/protections", p, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { row(t, "Protected", out.Pattern, describeProtection(out)) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&p.RequirePR, "require-pr", false, "refuse direct pushes: changes arrive through pull requests")
	f.IntVar(&p.RequiredApprovals, "approvals", 0, "approving reviews a pull request needs (implies --require-pr)")
	f.StringSliceVar(&p.RequiredChecks, "check", nil, "status check context that must pass (repeatable)")
	f.StringVar(&dismiss, "dismiss-stale", "on", "dismiss approvals when new commits are pushed (on|off)")
	f.BoolVar(&p.AllowForcePush, "allow-force-push", false, "allow non-fast-forward pushes")
	f.BoolVar(&p.AllowDeletion, "allow-deletion", false, "allow deleting the branch")
	f.BoolVar(&p.RequireSigned, "require-signed", false, "accept only commits signed with a registered SSH key")
	return cmd
}

func describeProtection(p scm.ProtectionJSON) string {
	var parts []string
	if p.RequirePR {
		parts = append(parts, "pull request required")
	}
	if p.RequiredApprovals > 0 {
		parts = append(parts, strconv.Itoa(p.RequiredApprovals)+" approval(s)")
	}
	if len(p.RequiredChecks) > 0 {
		parts = append(parts, "checks "+strings.Join(p.RequiredChecks, ","))
	}
	if !p.AllowForcePush {
		parts = append(parts, "no force push")
	}
	if !p.AllowDeletion {
		parts = append(parts, "no deletion")
	}
	if p.RequireSigned {
		parts = append(parts, "signed commits")
	}
	return strings.Join(parts, "; ")
}

func (ce *cmdEnv) protectionsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "protections ORG/NAME", Short: "List branch protection rules", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ps []scm.ProtectionJSON
			if err := c.do(cmd.Context(), "GET", path+"/protections", nil, &ps); err != nil {
				return err
			}
			return ce.print(ps, func(t *tabwriterW) {
				row(t, "PATTERN", "RULES")
				for _, p := range ps {
					row(t, p.Pattern, describeProtection(p))
				}
			})
		},
	}
}

func (ce *cmdEnv) unprotectCmd() *cobra.Command {
	return &cobra.Command{
		Use: "unprotect ORG/NAME PATTERN", Short: "Delete the protection rule of PATTERN", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", path+"/protections?pattern="+url.QueryEscape(args[1]), nil, nil)
		},
	}
}

func (ce *cmdEnv) statusCmd() *cobra.Command {
	var req scm.StatusRequest
	cmd := &cobra.Command{
		Use: "status ORG/NAME SHA", Short: "Post the state of a status check on a commit (for CI)", Args: cobra.ExactArgs(2),
		Example: "  rampart repo status acme/app $GIT_COMMIT --state success --context ci/build --url https://ci/runs/7",
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var st scm.StatusJSON
			if err := c.do(cmd.Context(), "POST", path+"/statuses/"+esc(args[1]), req, &st); err != nil {
				return err
			}
			return ce.print(st, func(t *tabwriterW) { row(t, st.Context, st.State, st.SHA) })
		},
	}
	cmd.Flags().StringVar(&req.State, "state", "", "pending, success, failure or error")
	cmd.Flags().StringVar(&req.Context, "context", "default", "the check's name")
	cmd.Flags().StringVar(&req.Description, "description", "", "a short summary")
	cmd.Flags().StringVar(&req.TargetURL, "url", "", "link to the check's details")
	_ = cmd.MarkFlagRequired("state")
	return cmd
}

func (ce *cmdEnv) hookCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hook", Short: "Manage a repository's webhooks"}
	var (
		events      []string
		secretStdin bool
	)
	add := &cobra.Command{
		Use: "add ORG/NAME URL", Short: "Add a webhook (GitHub-compatible push and pull_request payloads)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			req := scm.WebhookRequest{URL: args[1], Events: events}
			if secretStdin {
				b, err := io.ReadAll(io.LimitReader(ce.Stdin, 4096))
				if err != nil {
					return err
				}
				req.Secret = strings.TrimSpace(string(b))
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var h scm.WebhookJSON
			if err := c.do(cmd.Context(), "POST", path+"/hooks", req, &h); err != nil {
				return err
			}
			return ce.print(h, func(t *tabwriterW) { row(t, "Added webhook", h.ID, h.URL, h.Events) })
		},
	}
	add.Flags().StringSliceVar(&events, "event", nil, "push or pull_request (repeatable; default both)")
	add.Flags().BoolVar(&secretStdin, "secret-stdin", false, "read the signing secret from standard input")
	list := &cobra.Command{
		Use: "list ORG/NAME", Short: "List webhooks", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var hs []scm.WebhookJSON
			if err := c.do(cmd.Context(), "GET", path+"/hooks", nil, &hs); err != nil {
				return err
			}
			return ce.print(hs, func(t *tabwriterW) {
				row(t, "ID", "URL", "EVENTS", "SIGNED")
				for _, h := range hs {
					row(t, h.ID, h.URL, h.Events, h.HasSecret)
				}
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm ORG/NAME ID", Short: "Delete a webhook", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", path+"/hooks/"+esc(args[1]), nil, nil)
		},
	}
	deliveries := &cobra.Command{
		Use: "deliveries ORG/NAME ID", Short: "Show a webhook's delivery log, newest first", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ds []scm.DeliveryJSON
			if err := c.do(cmd.Context(), "GET", path+"/hooks/"+esc(args[1])+"/deliveries", nil, &ds); err != nil {
				return err
			}
			return ce.print(ds, func(t *tabwriterW) {
				row(t, "ID", "EVENT", "STATE", "ATTEMPTS", "STATUS", "ERROR", "CREATED")
				for _, d := range ds {
					row(t, d.ID, d.Event, d.State, d.Attempts, d.StatusCode, d.Error, d.CreatedAt)
				}
			})
		},
	}
	redeliver := &cobra.Command{
		Use: "redeliver ORG/NAME ID DELIVERY", Short: "Send a delivery again", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var d scm.DeliveryJSON
			if err := c.do(cmd.Context(), "POST", path+"/hooks/"+esc(args[1])+"/deliveries/"+esc(args[2])+"/redeliver", nil, &d); err != nil {
				return err
			}
			return ce.print(d, func(t *tabwriterW) { row(t, "Queued delivery", d.ID, d.GUID) })
		},
	}
	cmd.AddCommand(add, list, rm, deliveries, redeliver)
	return cmd
}
