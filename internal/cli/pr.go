package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/scm"
)

func pullPath(repo, number string) (string, error) {
	p, err := repoPath(repo)
	if err != nil {
		return "", err
	}
	if n, err := strconv.ParseInt(number, 10, 64); err != nil || n <= 0 {
		return "", usagef("pull request number must be a positive number, not %q", number)
	}
	return p + "/pulls/" + number, nil
}

func (ce *cmdEnv) printPull(p scm.PullJSON) error {
	return ce.print(p, func(t *tabwriterW) {
		row(t, "PULL REQUEST", "#"+strconv.FormatInt(p.Number, 10), p.Title)
		row(t, "STATE", p.State)
		row(t, "BRANCHES", p.Head+" -> "+p.Base)
		row(t, "AUTHOR", p.Author)
		row(t, "HEAD", p.HeadSHA)
		if p.Mergeable != nil {
			row(t, "MERGEABLE", *p.Mergeable)
		}
		for _, c := range p.Conflicts {
			row(t, "CONFLICT", c)
		}
		for _, b := range p.Blockers {
			row(t, "BLOCKED", b)
		}
		if p.MergeCommit != "" {
			row(t, "MERGE COMMIT", p.MergeCommit)
		}
		row(t, "WEB", p.HTMLURL)
	})
}

func (ce *cmdEnv) prCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pr", Short: "Open, review and merge pull requests"}
	var req scm.CreatePullRequest
	create := &cobra.Command{
		Use: "create ORG/NAME --head BRANCH --title TITLE", Short: "Open a pull request", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var pr scm.PullJSON
			if err := c.do(cmd.Context(), "POST", p+"/pulls", req, &pr); err != nil {
				return err
			}
			return ce.printPull(pr)
		},
	}
	create.Flags().StringVar(&req.Head, "head", "", "the branch with the changes")
	create.Flags().StringVar(&req.Base, "base", "", "the branch to merge into (default: the default branch)")
	create.Flags().StringVar(&req.Title, "title", "", "title")
	create.Flags().StringVar(&req.Body, "body", "", "description")
	_ = create.MarkFlagRequired("head")
	_ = create.MarkFlagRequired("title")
	var state string
	list := &cobra.Command{
		Use: "list ORG/NAME", Short: "List pull requests", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			q := ""
			if state != "all" {
				q = "?state=" + esc(state)
			}
			var prs []scm.PullJSON
			if err := c.do(cmd.Context(), "GET", p+"/pulls"+q, nil, &prs); err != nil {
				return err
			}
			return ce.print(prs, func(t *tabwriterW) {
				row(t, "#", "TITLE", "BRANCHES", "AUTHOR", "STATE", "UPDATED")
				for _, pr := range prs {
					row(t, pr.Number, pr.Title, pr.Head+" -> "+pr.Base, pr.Author, pr.State, pr.UpdatedAt)
				}
			})
		},
	}
	list.Flags().StringVar(&state, "state", "open", "open, closed, merged or all")
	view := &cobra.Command{
		Use: "view ORG/NAME NUMBER", Short: "Show a pull request and what keeps it from merging", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pullPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var pr scm.PullJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &pr); err != nil {
				return err
			}
			return ce.printPull(pr)
		},
	}
	var (
		approve, requestChanges bool
		reviewBody              string
	)
	review := &cobra.Command{
		Use: "review ORG/NAME NUMBER (--approve | --request-changes | -m COMMENT)", Short: "Review a pull request", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pullPath(args[0], args[1])
			if err != nil {
				return err
			}
			rq := scm.ReviewRequest{State: scm.ReviewCommented, Body: reviewBody}
			switch {
			case approve && requestChanges:
				return usagef("--approve and --request-changes exclude each other")
			case approve:
				rq.State = scm.ReviewApproved
			case requestChanges:
				rq.State = scm.ReviewChangesRequested
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var rv scm.ReviewJSON
			if err := c.do(cmd.Context(), "POST", p+"/reviews", rq, &rv); err != nil {
				return err
			}
			return ce.print(rv, func(t *tabwriterW) { row(t, "Reviewed", "#"+args[1], rv.State) })
		},
	}
	review.Flags().BoolVar(&approve, "approve", false, "approve")
	review.Flags().BoolVar(&requestChanges, "request-changes", false, "request changes (say which with -m)")
	review.Flags().StringVarP(&reviewBody, "message", "m", "", "review comment")
	var cm scm.CommentRequest
	comment := &cobra.Command{
		Use: "comment ORG/NAME NUMBER -m TEXT [--path FILE --line N]", Short: "Comment on a pull request or a line of its diff", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pullPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out scm.CommentJSON
			if err := c.do(cmd.Context(), "POST", p+"/comments", cm, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { row(t, "Commented", "#"+args[1], out.ID) })
		},
	}
	comment.Flags().StringVarP(&cm.Body, "message", "m", "", "the comment")
	comment.Flags().StringVar(&cm.Path, "path", "", "file of the diff")
	comment.Flags().IntVar(&cm.Line, "line", 0, "line of the file")
	comment.Flags().StringVar(&cm.Side, "side", "", "new (default) or old")
	var mr scm.MergeRequest
	merge := &cobra.Command{
		Use: "merge ORG/NAME NUMBER", Short: "Merge a pull request once its branch protection allows", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pullPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var pr scm.PullJSON
			if err := c.do(cmd.Context(), "PUT", p+"/merge", mr, &pr); err != nil {
				return err
			}
			return ce.printPull(pr)
		},
	}
	merge.Flags().StringVar(&mr.Strategy, "strategy", "merge", "merge, squash or rebase")
	merge.Flags().StringVarP(&mr.Message, "message", "m", "", "commit message (merge and squash)")
	setState := func(use, short, to string) *cobra.Command {
		return &cobra.Command{
			Use: use + " ORG/NAME NUMBER", Short: short, Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := pullPath(args[0], args[1])
				if err != nil {
					return err
				}
				c, err := ce.client()
				if err != nil {
					return err
				}
				var pr scm.PullJSON
				if err := c.do(cmd.Context(), "PATCH", p, scm.UpdatePullRequest{State: &to}, &pr); err != nil {
					return err
				}
				return ce.printPull(pr)
			},
		}
	}
	files := &cobra.Command{
		Use: "files ORG/NAME NUMBER", Short: "List the files a pull request changes", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pullPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var fs []scm.FileJSON
			if err := c.do(cmd.Context(), "GET", p+"/files", nil, &fs); err != nil {
				return err
			}
			return ce.print(fs, func(t *tabwriterW) {
				row(t, "FILE", "STATUS", "+", "-")
				for _, f := range fs {
					row(t, f.Path, f.Status, f.Additions, f.Deletions)
				}
			})
		},
	}
	cmd.AddCommand(create, list, view, review, comment, merge, files,
		setState("close", "Close a pull request without merging", scm.PullClosed),
		setState("reopen", "Reopen a closed pull request", scm.PullOpen))
	return cmd
}
