package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/pipeline"
)

func runPath(repo, number string) (string, error) {
	p, err := repoPath(repo)
	if err != nil {
		return "", err
	}
	if n, err := strconv.ParseInt(number, 10, 64); err != nil || n <= 0 {
		return "", usagef("run number must be a positive number, not %q", number)
	}
	return p + "/pipelines/runs/" + number, nil
}

func (ce *cmdEnv) printRun(r pipeline.RunJSON) error {
	return ce.print(r, func(t *tabwriterW) {
		row(t, "RUN", "#"+strconv.FormatInt(r.Number, 10), r.Repo)
		row(t, "STATUS", r.Status)
		if r.Reason != "" {
			row(t, "REASON", strings.ReplaceAll(r.Reason, "\n", "; "))
		}
		row(t, "EVENT", r.Event)
		row(t, "REF", r.Ref)
		row(t, "COMMIT", r.SHA)
		row(t, "ACTOR", r.Actor)
		for _, j := range r.Jobs {
			extra := j.Executor
			if j.Executor == pipeline.ExecutorHost {
				extra += " (unisolated)"
			}
			if j.Reason != "" {
				extra += " " + j.Reason
			}
			row(t, "JOB", strconv.FormatInt(j.ID, 10), j.Name, j.Status, extra)
		}
		if r.URL != "" {
			row(t, "WEB", r.URL)
		}
	})
}

func (ce *cmdEnv) pipelineCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Run pipelines and follow their logs"}
	var ref string
	var wait bool
	run := &cobra.Command{
		Use: "run ORG/NAME [--ref REF] [--wait]", Short: "Start a run of the repository's pipeline (the default branch unless --ref)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var r pipeline.RunJSON
			if err := c.do(cmd.Context(), "POST", p+"/pipelines/runs", pipeline.StartRunRequest{Ref: ref}, &r); err != nil {
				return err
			}
			if wait {
				path := p + "/pipelines/runs/" + strconv.FormatInt(r.Number, 10)
				for r.Status == pipeline.StatusQueued || r.Status == pipeline.StatusRunning {
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(500 * time.Millisecond):
					}
					if err := c.do(cmd.Context(), "GET", path, nil, &r); err != nil {
						return err
					}
				}
			}
			if err := ce.printRun(r); err != nil {
				return err
			}
			if wait && r.Status != pipeline.StatusSuccess {
				return apperr.E(apperr.Conflict, "run #%d %s", r.Number, r.Status)
			}
			return nil
		},
	}
	run.Flags().StringVar(&ref, "ref", "", "branch, tag or commit to run (default: the default branch)")
	run.Flags().BoolVar(&wait, "wait", false, "wait for the run to finish; exit non-zero unless it succeeded")

	var limit int
	list := &cobra.Command{
		Use: "list ORG/NAME", Short: "List runs, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var runs []pipeline.RunJSON
			if err := c.do(cmd.Context(), "GET", p+"/pipelines/runs?limit="+strconv.Itoa(limit), nil, &runs); err != nil {
				return err
			}
			return ce.print(runs, func(t *tabwriterW) {
				for _, r := range runs {
					row(t, "#"+strconv.FormatInt(r.Number, 10), r.Status, r.Event, r.Ref, shortSHA(r.SHA), r.Actor, r.CreatedAt.Format(time.RFC3339))
				}
			})
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many runs (1-500)")

	view := &cobra.Command{
		Use: "view ORG/NAME NUMBER", Short: "Show a run with its jobs", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ce.runAction(cmd, args, "GET", "")
		},
	}
	cancel := &cobra.Command{
		Use: "cancel ORG/NAME NUMBER", Short: "Cancel a queued or running run", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ce.runAction(cmd, args, "POST", "/cancel")
		},
	}
	rerun := &cobra.Command{
		Use: "rerun ORG/NAME NUMBER", Short: "Run a finished run's commit again", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ce.runAction(cmd, args, "POST", "/rerun")
		},
	}

	var follow bool
	logs := &cobra.Command{
		Use: "logs ORG/NAME NUMBER [JOB]", Short: "Print a run's logs (every job, or the job named or numbered); -f follows them live",
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := runPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var r pipeline.RunJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &r); err != nil {
				return err
			}
			var jobs []pipeline.JobJSON
			for _, j := range r.Jobs {
				if len(args) < 3 || args[2] == j.Name || args[2] == strconv.FormatInt(j.ID, 10) {
					jobs = append(jobs, j)
				}
			}
			if len(jobs) == 0 {
				if len(args) == 3 {
					return apperr.E(apperr.NotFound, "run #%s has no job %q", args[1], args[2])
				}
				return apperr.E(apperr.NotFound, "run #%s has no jobs (%s)", args[1], r.Reason)
			}
			for _, j := range jobs {
				if len(jobs) > 1 {
					fmt.Fprintf(ce.Stdout, "==> %s <==\n", j.Name)
				}
				path := p + "/jobs/" + strconv.FormatInt(j.ID, 10) + "/log"
				if follow {
					if err := followLog(cmd, c, path, ce.Stdout); err != nil {
						return err
					}
					continue
				}
				if err := c.do(cmd.Context(), "GET", path, nil, ce.Stdout); err != nil {
					return err
				}
			}
			return nil
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "follow the logs until the jobs end")

	validate := &cobra.Command{
		Use: "validate [FILE]", Short: "Check a pipeline definition (default " + pipeline.DefinitionPath + ") without a server", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := pipeline.DefinitionPath
			if len(args) == 1 {
				file = args[0]
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return apperr.Wrap(err, apperr.NotFound, "read "+file)
			}
			def, err := pipeline.Parse(data)
			if err != nil {
				return apperr.E(apperr.Invalid, "%s", strings.ReplaceAll(err.Error(), pipeline.DefinitionPath, file))
			}
			names := make([]string, len(def.Jobs))
			for i, j := range def.Jobs {
				names[i] = j.Name
			}
			return ce.print(map[string]any{"valid": true, "jobs": names}, func(t *tabwriterW) {
				row(t, "VALID", file)
				for _, j := range def.Jobs {
					row(t, "JOB", j.Name, strings.Join(j.Needs, ", "))
				}
			})
		},
	}
	cmd.AddCommand(run, list, view, logs, cancel, rerun, validate)
	return cmd
}

// shortSHA shortens a commit id for tables.
func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func (ce *cmdEnv) runAction(cmd *cobra.Command, args []string, method, suffix string) error {
	p, err := runPath(args[0], args[1])
	if err != nil {
		return err
	}
	c, err := ce.client()
	if err != nil {
		return err
	}
	var r pipeline.RunJSON
	if err := c.do(cmd.Context(), method, p+suffix, nil, &r); err != nil {
		return err
	}
	return ce.printRun(r)
}

// followLog prints a job's log as the server streams it (server-sent
// events), until the job ends.
func followLog(cmd *cobra.Command, c *client, path string, out io.Writer) error {
	resp, err := c.send(cmd.Context(), "GET", path+"?follow=1", false, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return responseError(resp)
	}
	if resp.StatusCode != http.StatusOK {
		return apperr.E(apperr.Unavailable, "log stream answered %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "log":
			var chunk string
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &chunk); err != nil {
				return apperr.E(apperr.Unavailable, "malformed log stream")
			}
			if _, err := io.WriteString(out, chunk); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data: ") && event == "end":
			return nil
		}
	}
	if err := sc.Err(); err != nil && cmd.Context().Err() == nil {
		return apperr.Wrap(err, apperr.Unavailable, "log stream interrupted")
	}
	return cmd.Context().Err()
}
