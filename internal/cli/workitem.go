package cli

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// workItemPath is the API path of an org's work items, or of one of them.
func workItemPath(org string, number ...string) (string, error) {
	p := httpapi.Prefix + "/orgs/" + esc(org) + "/workitems"
	if len(number) == 0 {
		return p, nil
	}
	n, err := boards.ParseNumber(number[0])
	if err != nil {
		return "", usagef("%q is not a work item number (12 or AB#12)", number[0])
	}
	return p + "/" + strconv.FormatInt(n, 10), nil
}

// readText returns the value of a --description flag, or the contents of
// the file a --description-file flag names ("-" for standard input).
func (ce *cmdEnv) readText(text, file string) (string, error) {
	if file == "" {
		return text, nil
	}
	var r io.Reader = ce.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", usagef("--description-file: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, boards.MaxDescription+1))
	if err != nil {
		return "", err
	}
	if len(b) > boards.MaxDescription {
		return "", usagef("the description is over %d bytes", boards.MaxDescription)
	}
	return string(b), nil
}

func (ce *cmdEnv) workItemCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "workitem", Aliases: []string{"wi"}, Short: "Plan work: epics, stories, bugs and tasks on an org's board"}
	var in boards.CreateWorkItemRequest
	var descFile string
	create := &cobra.Command{
		Use: "create ORG", Short: "Create a work item", Args: cobra.ExactArgs(1),
		Example: "  rampart workitem create acme --type bug --title 'Login fails on Safari' --priority 1 --assignee bob",
		RunE: func(cmd *cobra.Command, args []string) error {
			if descFile != "" && cmd.Flags().Changed("description") {
				return usagef("give --description or --description-file, not both")
			}
			var err error
			if in.Description, err = ce.readText(in.Description, descFile); err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			p, _ := workItemPath(args[0])
			var w boards.WorkItemJSON
			if err := c.do(cmd.Context(), "POST", p, in, &w); err != nil {
				return err
			}
			return ce.print(w, func(t *tabwriterW) { row(t, "Created", args[0], w.Ref, w.Title) })
		},
	}
	create.Flags().StringVar(&in.Type, "type", "", "epic, story, bug or task (required)")
	create.Flags().StringVar(&in.Title, "title", "", "title (required)")
	create.Flags().StringVar(&in.Description, "description", "", "description")
	create.Flags().StringVar(&descFile, "description-file", "", "read the description from a file (- for standard input)")
	create.Flags().StringVar(&in.State, "state", "", "new (default), active, resolved or closed")
	create.Flags().IntVar(&in.Priority, "priority", 0, "1 (highest) to 4 (default 2)")
	create.Flags().StringVar(&in.Assignee, "assignee", "", "user name of an org member")
	create.Flags().StringVar(&in.Project, "project", "", "project of the org")
	create.Flags().Int64Var(&in.Parent, "parent", 0, "number of the parent item")
	_ = create.MarkFlagRequired("type")
	_ = create.MarkFlagRequired("title")

	var filter struct {
		state, typ, assignee, project, parent, query string
		priority, limit                              int
	}
	list := &cobra.Command{
		Use: "list ORG", Short: "List work items in board order", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"state": filter.state, "type": filter.typ, "assignee": filter.assignee,
				"project": filter.project, "parent": filter.parent, "q": filter.query} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if filter.priority != 0 {
				q.Set("priority", strconv.Itoa(filter.priority))
			}
			if filter.limit != 0 {
				q.Set("limit", strconv.Itoa(filter.limit))
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			p, _ := workItemPath(args[0])
			if len(q) > 0 {
				p += "?" + q.Encode()
			}
			var ws []boards.WorkItemJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &ws); err != nil {
				return err
			}
			return ce.print(ws, func(t *tabwriterW) {
				row(t, "ITEM", "TYPE", "STATE", "PRIORITY", "ASSIGNEE", "TITLE")
				for _, w := range ws {
					row(t, w.Ref, w.Type, w.State, w.Priority, w.Assignee, w.Title)
				}
			})
		},
	}
	list.Flags().StringVar(&filter.state, "state", "", "new, active, resolved or closed")
	list.Flags().StringVar(&filter.typ, "type", "", "epic, story, bug or task")
	list.Flags().StringVar(&filter.assignee, "assignee", "", "user name, or none for unassigned items")
	list.Flags().StringVar(&filter.project, "project", "", "project of the org")
	list.Flags().StringVar(&filter.parent, "parent", "", "children of this item")
	list.Flags().StringVarP(&filter.query, "query", "q", "", "words in the title")
	list.Flags().IntVar(&filter.priority, "priority", 0, "priority 1 to 4")
	list.Flags().IntVar(&filter.limit, "limit", 0, "at most this many items")

	get := &cobra.Command{
		Use: "get ORG NUMBER", Short: "Show a work item with its links", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := workItemPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var w boards.WorkItemJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &w); err != nil {
				return err
			}
			return ce.print(w, func(t *tabwriterW) { ce.workItemTable(t, w) })
		},
	}

	var up boards.UpdateWorkItemRequest
	var upDescFile string
	update := &cobra.Command{
		Use: "update ORG NUMBER", Short: "Change a work item (only the flags given)", Args: cobra.ExactArgs(2),
		Example: "  rampart workitem update acme AB#12 --state active --assignee bob\n  rampart workitem update acme 12 --assignee '' --parent 0",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := workItemPath(args[0], args[1])
			if err != nil {
				return err
			}
			var req boards.UpdateWorkItemRequest
			f := cmd.Flags()
			if f.Changed("type") {
				req.Type = up.Type
			}
			if f.Changed("title") {
				req.Title = up.Title
			}
			if f.Changed("state") {
				req.State = up.State
			}
			if f.Changed("priority") {
				req.Priority = up.Priority
			}
			if f.Changed("assignee") {
				req.Assignee = up.Assignee
			}
			if f.Changed("project") {
				req.Project = up.Project
			}
			if f.Changed("parent") {
				req.Parent = up.Parent
			}
			if f.Changed("description") && upDescFile != "" {
				return usagef("give --description or --description-file, not both")
			}
			if f.Changed("description") {
				req.Description = up.Description
			}
			if upDescFile != "" {
				d, err := ce.readText("", upDescFile)
				if err != nil {
					return err
				}
				req.Description = &d
			}
			if req == (boards.UpdateWorkItemRequest{}) {
				return usagef("nothing to change: give at least one of --title, --type, --state, --priority, --assignee, --project, --parent, --description")
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var w boards.WorkItemJSON
			if err := c.do(cmd.Context(), "PATCH", p, req, &w); err != nil {
				return err
			}
			return ce.print(w, func(t *tabwriterW) { row(t, "Updated", args[0], w.Ref, w.State, w.Title) })
		},
	}
	up.Type, up.Title, up.State, up.Assignee, up.Project, up.Description = new(string), new(string), new(string), new(string), new(string), new(string)
	up.Priority, up.Parent = new(int), new(int64)
	update.Flags().StringVar(up.Type, "type", "", "epic, story, bug or task")
	update.Flags().StringVar(up.Title, "title", "", "title")
	update.Flags().StringVar(up.State, "state", "", "new, active, resolved or closed")
	update.Flags().IntVar(up.Priority, "priority", 0, "1 (highest) to 4")
	update.Flags().StringVar(up.Assignee, "assignee", "", "user name ('' to unassign)")
	update.Flags().StringVar(up.Project, "project", "", "project ('' for none)")
	update.Flags().Int64Var(up.Parent, "parent", 0, "number of the parent item (0 for none)")
	update.Flags().StringVar(up.Description, "description", "", "description")
	update.Flags().StringVar(&upDescFile, "description-file", "", "read the description from a file (- for standard input)")

	move := &cobra.Command{
		Use: "move ORG NUMBER STATE", Short: "Move a work item to another column: new, active, resolved or closed", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := workItemPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var w boards.WorkItemJSON
			if err := c.do(cmd.Context(), "PATCH", p, boards.UpdateWorkItemRequest{State: &args[2]}, &w); err != nil {
				return err
			}
			return ce.print(w, func(t *tabwriterW) { row(t, "Moved", args[0], w.Ref, "to", w.State) })
		},
	}

	var yes bool
	del := &cobra.Command{
		Use: "delete ORG NUMBER", Short: "Delete a work item (maintainers); its number is not reused", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := workItemPath(args[0], args[1])
			if err != nil {
				return err
			}
			if !yes {
				return usagef("deleting %s %s cannot be undone; pass --yes to confirm", args[0], args[1])
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", p, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Deleted %s %s.\n", args[0], args[1])
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm")
	cmd.AddCommand(create, list, get, update, move, del)
	return cmd
}

func (ce *cmdEnv) workItemTable(t *tabwriterW, w boards.WorkItemJSON) {
	row(t, "ITEM", w.Org+" "+w.Ref)
	row(t, "TYPE", w.Type)
	row(t, "TITLE", w.Title)
	row(t, "STATE", w.State)
	row(t, "PRIORITY", w.Priority)
	row(t, "ASSIGNEE", w.Assignee)
	row(t, "PROJECT", w.Project)
	if w.Parent != 0 {
		row(t, "PARENT", "AB#"+strconv.FormatInt(w.Parent, 10))
	}
	for _, k := range w.Children {
		row(t, "CHILD", "AB#"+strconv.FormatInt(k, 10))
	}
	row(t, "CREATED", w.CreatedAt)
	row(t, "UPDATED", w.UpdatedAt)
	for _, l := range w.Links {
		what := l.Kind + " " + l.Repo + " " + l.Ref
		if l.Fixes {
			what += " (fixes)"
		}
		row(t, "LINK", what+" "+l.Title)
	}
	row(t, "URL", w.URL)
}
