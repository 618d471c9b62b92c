package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// projectPath is the API path of a project (--project ORG/PROJECT).
func projectPath(project string) (string, error) {
	org, proj, ok := strings.Cut(project, "/")
	if !ok || org == "" || proj == "" || strings.Contains(proj, "/") {
		return "", usagef("--project ORG/PROJECT is required")
	}
	return httpapi.Prefix + "/orgs/" + esc(org) + "/projects/" + esc(proj), nil
}

func (ce *cmdEnv) envCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage a project's deployment environments: rules, targets, service connections"}
	cmd.AddCommand(ce.envListCmd(), ce.envShowCmd(), ce.envSetCmd(), ce.envRmCmd(), ce.envConnectCmd(), ce.envInstancesCmd(), ce.envRollbackCmd())
	return cmd
}

func (ce *cmdEnv) envListCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "list", Short: "List environments with the release each runs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var es []deploy.EnvironmentJSON
			if err := c.do(cmd.Context(), "GET", p+"/environments", nil, &es); err != nil {
				return err
			}
			return ce.print(es, func(t *tabwriterW) {
				row(t, "NAME", "TARGET", "STRATEGY", "RELEASE", "COMMIT", "STATUS", "APPROVALS")
				for _, e := range es {
					rel, commit := "-", ""
					if e.Current != nil {
						rel, commit = "#"+strconv.FormatInt(e.Current.Number, 10), shortSHA(e.Current.SourceCommit)
					}
					row(t, e.Name, e.Target.Kind, e.Target.Strategy.Kind, rel, commit, e.Status, e.Protection.RequiredApprovals)
				}
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	return cmd
}

func (ce *cmdEnv) envShowCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "show NAME", Short: "Show an environment: its rules, target and what runs there", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var e deploy.EnvironmentJSON
			if err := c.do(cmd.Context(), "GET", p+"/environments/"+esc(args[0]), nil, &e); err != nil {
				return err
			}
			return ce.print(e, func(t *tabwriterW) { printEnv(t, e) })
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	return cmd
}

func printEnv(t *tabwriterW, e deploy.EnvironmentJSON) {
	row(t, "NAME", e.Name)
	row(t, "STATUS", e.Status+" "+e.StatusMessage)
	if e.Current != nil {
		row(t, "RELEASE", fmt.Sprintf("#%d %s@%s", e.Current.Number, e.Current.Image, e.Current.Digest))
		row(t, "SOURCE", fmt.Sprintf("%s %s PR %s work items %s", e.Current.SourceBranch, shortSHA(e.Current.SourceCommit),
			prOrDash(e.Current.PullRequest), strings.Join(e.Current.WorkItems, ",")))
	}
	if e.Previous != nil {
		row(t, "PREVIOUS", fmt.Sprintf("#%d", e.Previous.Number))
	}
	row(t, "TARGET", fmt.Sprintf("%s, %d replica(s), port %d, health %s", e.Target.Kind, e.Target.Replicas, e.Target.Port, e.Target.HealthPath))
	st := e.Target.Strategy.Kind
	if len(e.Target.Strategy.Steps) > 0 {
		st += " " + joinInts(e.Target.Strategy.Steps)
	}
	if e.Target.Strategy.Pause > 0 {
		st += " pause " + e.Target.Strategy.Pause.D().String()
	}
	if e.Target.Strategy.Preview {
		st += " with preview"
	}
	row(t, "STRATEGY", st)
	row(t, "HOST", e.Target.Host)
	pr := e.Protection
	row(t, "APPROVALS", fmt.Sprintf("%d by %s (timeout %s)", pr.RequiredApprovals, orAny(pr.Approvers), pr.ApprovalTimeout.D()))
	row(t, "GATES", append([]string{deploy.GatePreDeploy}, pr.RequiredGates...))
	row(t, "BRANCHES", orAny(pr.AllowedBranches))
	var ws []string
	for _, w := range pr.Windows {
		ws = append(ws, strings.Join(w.Days, ",")+" "+w.Start+"-"+w.End)
	}
	row(t, "WINDOWS", orAny(ws))
	if e.Connection != nil {
		row(t, "CONNECTION", fmt.Sprintf("%s namespace %s (credential set: %t)", e.Connection.Server, e.Connection.Namespace, e.Connection.HasCredential))
	}
}

func prOrDash(n int64) string {
	if n == 0 {
		return "-"
	}
	return "#" + strconv.FormatInt(n, 10)
}

func orAny(s []string) string {
	if len(s) == 0 {
		return "any"
	}
	return strings.Join(s, ",")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseWindow reads "mon,tue,wed 09:00-17:00" or "09:00-17:00".
func parseWindow(s string) (deploy.Window, error) {
	f := strings.Fields(s)
	var w deploy.Window
	switch len(f) {
	case 1:
	case 2:
		w.Days = strings.Split(f[0], ",")
		f = f[1:]
	default:
		return w, usagef("--window %q: want [DAYS] HH:MM-HH:MM, e.g. \"mon,tue,wed,thu 09:00-16:00\"", s)
	}
	start, end, ok := strings.Cut(f[0], "-")
	if !ok {
		return w, usagef("--window %q: want HH:MM-HH:MM", s)
	}
	w.Start, w.End = start, end
	return w, nil
}

func (ce *cmdEnv) envSetCmd() *cobra.Command {
	var (
		project, kind, strategy, pause, healthTimeout, approvalTimeout, steps string
		spec                                                                  deploy.EnvironmentSpec
		windows                                                               []string
	)
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create an environment or change its rules and target (project owners)",
		Long: `Create or replace an environment. Protection rules: --approvals N (from
--approver users, or any project maintainer; never the requester),
--gate for policy gates besides pre-deploy, --branch for the source
branches releases may come from (patterns like release/*), --window for
the times deployments may start (UTC). The target: node (runc on the
Rampart machine) or kubernetes (needs 'rampart env connect'), replicas,
port, health path, strategy (recreate, rolling, blue_green with
--preview, canary with --steps) and --host, the gateway host routed to
the environment.`,
		Example: `  rampart env set staging --project acme/web --replicas 2 --strategy rolling --host staging.acme.test
  rampart env set production --project acme/web --replicas 2 --strategy canary --steps 10,50,100 --pause 5m \
      --approvals 1 --branch main --window "mon,tue,wed,thu 09:00-16:00" --host www.acme.test`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			spec.Target.Kind, spec.Target.Strategy.Kind = kind, strategy
			if steps != "" {
				for _, s := range strings.Split(steps, ",") {
					n, err := strconv.Atoi(strings.TrimSpace(s))
					if err != nil {
						return usagef("--steps: want percentages like 10,50,100")
					}
					spec.Target.Strategy.Steps = append(spec.Target.Strategy.Steps, n)
				}
			}
			for _, d := range []struct {
				flag, v string
				dst     *deploy.Duration
			}{{"pause", pause, &spec.Target.Strategy.Pause}, {"health-timeout", healthTimeout, &spec.Target.HealthTimeout},
				{"approval-timeout", approvalTimeout, &spec.Protection.ApprovalTimeout}} {
				if d.v != "" {
					if err := d.dst.UnmarshalText([]byte(d.v)); err != nil {
						return usagef("--%s: %v", d.flag, err)
					}
				}
			}
			for _, s := range windows {
				w, err := parseWindow(s)
				if err != nil {
					return err
				}
				spec.Protection.Windows = append(spec.Protection.Windows, w)
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var e deploy.EnvironmentJSON
			if err := c.do(cmd.Context(), "PUT", p+"/environments/"+esc(args[0]), spec, &e); err != nil {
				return err
			}
			return ce.print(e, func(t *tabwriterW) { printEnv(t, e) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&project, "project", "", "ORG/PROJECT")
	f.IntVar(&spec.Position, "position", 0, "order in promotion (dev 0, staging 1, production 2, …)")
	f.StringVar(&kind, "target", "node", "node or kubernetes")
	f.IntVar(&spec.Target.Replicas, "replicas", 1, "instances to run")
	f.IntVar(&spec.Target.Port, "port", 8080, "port the application listens on (given to it as $PORT)")
	f.StringVar(&spec.Target.HealthPath, "health-path", "/healthz", "path answering 2xx when an instance is healthy")
	f.StringVar(&healthTimeout, "health-timeout", "", "time a new instance may take to become healthy (default 30s)")
	f.StringVar(&strategy, "strategy", "rolling", "recreate, rolling, blue_green or canary")
	f.StringVar(&steps, "steps", "", "canary traffic percentages, e.g. 10,50,100")
	f.StringVar(&pause, "pause", "", "time between canary steps or rolling replicas; on Kubernetes, how long blue_green keeps the old colour after the switch")
	f.BoolVar(&spec.Target.Strategy.Preview, "preview", false, "blue_green on Kubernetes: a preview Service selects the new colour before the switch")
	f.StringVar(&spec.Target.Host, "host", "", "gateway host routed to the environment's instances")
	f.Int64Var(&spec.Target.MemoryBytes, "memory", 0, "memory limit per instance in bytes (default 256 MiB)")
	f.Int64Var(&spec.Target.CPUMillis, "cpu-millis", 0, "CPU limit per instance in millicores (default 1000)")
	f.IntVar(&spec.Protection.RequiredApprovals, "approvals", 0, "approvals a deployment needs")
	f.StringArrayVar(&spec.Protection.Approvers, "approver", nil, "user whose approval counts (repeatable; default any maintainer)")
	f.StringArrayVar(&spec.Protection.RequiredGates, "gate", nil, "policy gate to pass besides pre-deploy (repeatable)")
	f.StringArrayVar(&spec.Protection.AllowedBranches, "branch", nil, "source branch pattern releases may come from (repeatable)")
	f.StringArrayVar(&windows, "window", nil, `deployment window "[DAYS] HH:MM-HH:MM" in UTC (repeatable)`)
	f.StringVar(&approvalTimeout, "approval-timeout", "", "time a deployment waits for approvals (default 24h)")
	return cmd
}

func (ce *cmdEnv) envRmCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "rm NAME", Short: "Delete an environment that runs nothing", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", p+"/environments/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Deleted environment %s.\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	return cmd
}

func (ce *cmdEnv) envConnectCmd() *cobra.Command {
	var (
		project, caFile, tokenFile string
		spec                       deploy.ConnectionSpec
	)
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Set a Kubernetes environment's service connection (a namespaced service account token)",
		Long: `Give Rampart the API server, the one namespace the environment deploys
to and a token of a service account allowed only in that namespace (not a
cluster-admin kubeconfig). The token is read from --token-file or, with
"-", from standard input; it is sealed at rest and never shown again.`,
		Example: `  kubectl -n web-prod create token rampart-deployer | rampart env connect production --project acme/web \
      --server https://k8s.example.com:6443 --namespace web-prod --ca-file ca.crt --token-file -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			spec.Kind = deploy.KindKubernetes
			var r io.Reader
			switch tokenFile {
			case "":
				return usagef("--token-file is required (use - for standard input)")
			case "-":
				r = ce.Stdin
			default:
				f, err := os.Open(tokenFile)
				if err != nil {
					return usagef("--token-file: %v", err)
				}
				defer f.Close()
				r = f
			}
			b, err := io.ReadAll(io.LimitReader(r, 16<<10+1))
			if err != nil {
				return err
			}
			spec.Token = strings.TrimSpace(string(b))
			if caFile != "" {
				ca, err := os.ReadFile(caFile)
				if err != nil {
					return usagef("--ca-file: %v", err)
				}
				spec.CACert = string(ca)
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out deploy.Connection
			if err := c.do(cmd.Context(), "PUT", p+"/environments/"+esc(args[0])+"/connection", spec, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) {
				row(t, "SERVER", out.Server)
				row(t, "NAMESPACE", out.Namespace)
				row(t, "CREDENTIAL", "sealed")
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&project, "project", "", "ORG/PROJECT")
	f.StringVar(&spec.Server, "server", "", "https URL of the Kubernetes API server")
	f.StringVar(&spec.Namespace, "namespace", "", "the namespace the environment deploys to")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA the API server's certificate is checked with")
	f.StringVar(&tokenFile, "token-file", "", "file holding the service account token (- for standard input)")
	return cmd
}

func (ce *cmdEnv) envInstancesCmd() *cobra.Command {
	var (
		project string
		logs    int
	)
	cmd := &cobra.Command{
		Use: "instances NAME", Short: "List a node environment's instances (with --logs, the end of their output)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ins []deploy.InstanceJSON
			if err := c.do(cmd.Context(), "GET", p+"/environments/"+esc(args[0])+"/instances?logs="+strconv.Itoa(logs), nil, &ins); err != nil {
				return err
			}
			if ce.output == "json" {
				return ce.print(ins, nil)
			}
			if err := ce.print(ins, func(t *tabwriterW) {
				row(t, "INSTANCE", "RELEASE", "STATE", "RESTARTS", "ADDRESS", "STARTED")
				for _, in := range ins {
					row(t, in.ID, "#"+strconv.FormatInt(in.ReleaseNumber, 10), in.State, in.Restarts, in.Addr, in.StartedAt)
				}
			}); err != nil {
				return err
			}
			for _, in := range ins {
				if in.Logs != "" {
					fmt.Fprintf(ce.Stdout, "\n--- %s\n%s", in.ID, sanitizeLog(in.Logs))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	cmd.Flags().IntVar(&logs, "logs", 0, "show this many bytes from the end of each instance's output")
	return cmd
}

// sanitizeLog keeps newlines and tabs but no other control characters
// (an application's output must not drive the terminal).
func sanitizeLog(s string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func (ce *cmdEnv) envRollbackCmd() *cobra.Command {
	var (
		project, reason string
		wait            bool
	)
	cmd := &cobra.Command{
		Use: "rollback NAME", Short: "Deploy the environment's previous release again", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var d deploy.Deployment
			if err := c.do(cmd.Context(), "POST", p+"/environments/"+esc(args[0])+"/rollback", deploy.RollbackRequest{Reason: reason}, &d); err != nil {
				return err
			}
			return ce.finishDeploy(cmd.Context(), c, p, d, wait)
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the rollback ends")
	return cmd
}

func (ce *cmdEnv) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Record and inspect releases: an image digest with its configuration and source"}
	cmd.AddCommand(ce.releaseCreateCmd(), ce.releaseListCmd(), ce.releaseShowCmd(), ce.releaseDiffCmd())
	return cmd
}

func (ce *cmdEnv) releaseCreateCmd() *cobra.Command {
	var (
		project, manifests string
		r                  deploy.Release
		envs, refs         []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Record a release (immutable): image by digest, configuration, secret references, source",
		Example: `  rampart release create --project acme/web --image registry.acme.test/acme/web --digest sha256:… \
      --env MODE=production --secret DB_PASSWORD=web/db#password --commit 3f2a… --branch main --pr 12 --work-item WEB-7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			for _, e := range envs {
				k, v, ok := strings.Cut(e, "=")
				if !ok {
					return usagef("--env %q: want KEY=VALUE", e)
				}
				if r.Config.Env == nil {
					r.Config.Env = map[string]string{}
				}
				r.Config.Env[k] = v
			}
			if manifests != "" {
				b, err := os.ReadFile(manifests)
				if err != nil {
					return usagef("--manifests: %v", err)
				}
				r.Config.Manifests = string(b)
			}
			for _, s := range refs {
				k, v, ok := strings.Cut(s, "=")
				if !ok {
					return usagef("--secret %q: want VARIABLE=vault/path[#key]", s)
				}
				r.SecretRefs = append(r.SecretRefs, deploy.SecretRef{Env: k, Ref: v})
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out deploy.Release
			if err := c.do(cmd.Context(), "POST", p+"/releases", r, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { printRelease(t, out) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&project, "project", "", "ORG/PROJECT")
	f.StringVar(&r.Image, "image", "", "image repository (registry/org/name, no tag)")
	f.StringVar(&r.Digest, "digest", "", "image digest (sha256:…)")
	f.StringArrayVar(&envs, "env", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringArrayVar(&refs, "secret", nil, "secret reference VARIABLE=vault/path[#key] (repeatable; never a value)")
	f.StringArrayVar(&r.Config.Command, "arg", nil, "command and arguments replacing the image's (repeatable, in order)")
	f.StringVar(&r.SourceCommit, "commit", "", "source commit")
	f.StringVar(&r.SourceBranch, "branch", "", "source branch")
	f.StringVar(&r.Repository, "repo", "", "source repository ORG/NAME")
	f.Int64Var(&r.PullRequest, "pr", 0, "pull request number")
	f.StringArrayVar(&r.WorkItems, "work-item", nil, "work item (repeatable)")
	f.StringVar(&r.Reason, "reason", "", "why")
	f.StringVar(&manifests, "manifests", "", "YAML file of the project's own Kubernetes manifests (${IMAGE} becomes the image by digest)")
	return cmd
}

func printRelease(t *tabwriterW, r deploy.Release) {
	row(t, "RELEASE", "#"+strconv.FormatInt(r.Number, 10))
	row(t, "IMAGE", r.Ref())
	row(t, "SOURCE", fmt.Sprintf("%s %s %s", r.Repository, r.SourceBranch, r.SourceCommit))
	row(t, "PR", prOrDash(r.PullRequest))
	row(t, "WORK ITEMS", r.WorkItems)
	var refs []string
	for _, s := range r.SecretRefs {
		refs = append(refs, s.Env+"="+s.Ref)
	}
	row(t, "SECRETS", refs)
	row(t, "BY", r.CreatedBy+" "+r.CreatedAt.Local().Format(time.RFC3339))
	row(t, "REASON", r.Reason)
}

func (ce *cmdEnv) releaseListCmd() *cobra.Command {
	var (
		project string
		limit   int
	)
	cmd := &cobra.Command{
		Use: "list", Short: "List releases, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var rs []deploy.Release
			if err := c.do(cmd.Context(), "GET", p+"/releases?limit="+strconv.Itoa(limit), nil, &rs); err != nil {
				return err
			}
			return ce.print(rs, func(t *tabwriterW) {
				row(t, "RELEASE", "DIGEST", "BRANCH", "COMMIT", "PR", "BY", "CREATED")
				for _, r := range rs {
					row(t, "#"+strconv.FormatInt(r.Number, 10), shortSHA(strings.TrimPrefix(r.Digest, "sha256:")), r.SourceBranch, shortSHA(r.SourceCommit),
						prOrDash(r.PullRequest), r.CreatedBy, r.CreatedAt)
				}
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (1-500)")
	return cmd
}

func releaseNumberArg(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || n < 1 {
		return 0, usagef("%q is not a release number", s)
	}
	return n, nil
}

func (ce *cmdEnv) releaseShowCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "show NUMBER", Short: "Show a release", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			n, err := releaseNumberArg(args[0])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var r deploy.Release
			if err := c.do(cmd.Context(), "GET", p+"/releases/"+strconv.FormatInt(n, 10), nil, &r); err != nil {
				return err
			}
			return ce.print(r, func(t *tabwriterW) { printRelease(t, r) })
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	return cmd
}

func (ce *cmdEnv) releaseDiffCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "diff FROM TO", Short: "Show what changed between two releases", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			a, err := releaseNumberArg(args[0])
			if err != nil {
				return err
			}
			b, err := releaseNumberArg(args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var d deploy.DiffJSON
			if err := c.do(cmd.Context(), "GET", fmt.Sprintf("%s/releases/%d/diff?to=%d", p, a, b), nil, &d); err != nil {
				return err
			}
			return ce.print(d, func(t *tabwriterW) {
				row(t, "FIELD", "#"+strconv.FormatInt(a, 10), "#"+strconv.FormatInt(b, 10))
				for _, ch := range d.Changes {
					row(t, ch.Field, ch.From, ch.To)
				}
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	return cmd
}

func (ce *cmdEnv) deployCmd() *cobra.Command {
	var (
		project string
		req     deploy.DeployRequest
		wait    bool
	)
	cmd := &cobra.Command{
		Use:   "deploy [RELEASE] --to ENV",
		Short: "Deploy or promote a release; list, show, approve and reject deployments",
		Long: `Deploy release RELEASE to the environment --to, or promote with --from ENV
the release running there (the same digest: nothing is rebuilt). The
environment's rules apply: branches, windows, the pre-deploy policy gate
and its required gates, approvals. --wait follows the deployment until
it ends and fails unless it succeeded.`,
		Example: `  rampart deploy 12 --to staging --project acme/web --wait
  rampart deploy --from staging --to production --project acme/web --reason "weekly release"
  rampart deploy approve 31 --project acme/web`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			if req.Environment == "" {
				return usagef("--to ENV is required")
			}
			if len(args) == 1 {
				if req.Release, err = releaseNumberArg(args[0]); err != nil {
					return err
				}
			}
			if (req.Release == 0) == (req.FromEnvironment == "") {
				return usagef("give a RELEASE number or --from ENV")
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var d deploy.Deployment
			if err := c.do(cmd.Context(), "POST", p+"/deployments", req, &d); err != nil {
				return err
			}
			return ce.finishDeploy(cmd.Context(), c, p, d, wait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&project, "project", "", "ORG/PROJECT")
	f.StringVar(&req.Environment, "to", "", "environment to deploy to")
	f.StringVar(&req.FromEnvironment, "from", "", "promote the release running in this environment")
	f.StringVar(&req.Strategy, "strategy", "", "override the environment's strategy for this deployment")
	f.StringVar(&req.Reason, "reason", "", "why")
	f.BoolVar(&wait, "wait", false, "wait until the deployment ends; fail unless it succeeded")
	cmd.AddCommand(ce.deployListCmd(), ce.deployShowCmd(), ce.deployAnswerCmd(true), ce.deployAnswerCmd(false))
	return cmd
}

// finishDeploy prints a deployment, following it to its end with wait.
func (ce *cmdEnv) finishDeploy(ctx context.Context, c *client, p string, d deploy.Deployment, wait bool) error {
	for wait && (d.State == deploy.StateQueued || d.State == deploy.StateRunning || d.State == deploy.StateAwaitingApproval) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.do(ctx, "GET", p+"/deployments/"+strconv.FormatInt(d.ID, 10), nil, &d); err != nil {
			return err
		}
	}
	if err := ce.print(d, func(t *tabwriterW) { printDeployment(t, d) }); err != nil {
		return err
	}
	if wait && d.State != deploy.StateSucceeded {
		kind := apperr.Unavailable // failed, rolled back
		switch d.State {
		case deploy.StateDenied, deploy.StateRejected:
			kind = apperr.Forbidden
		case deploy.StateExpired:
			kind = apperr.Conflict
		}
		return apperr.E(kind, "deployment %d %s: %s", d.ID, d.State, d.Message)
	}
	return nil
}

func printDeployment(t *tabwriterW, d deploy.Deployment) {
	row(t, "DEPLOYMENT", d.ID)
	row(t, "ENVIRONMENT", d.Environment)
	row(t, "RELEASE", "#"+strconv.FormatInt(d.ReleaseNumber, 10))
	row(t, "STRATEGY", d.Strategy)
	row(t, "STATE", d.State)
	row(t, "MESSAGE", d.Message)
	if d.Step != "" {
		row(t, "STEP", d.Step)
	}
	for _, g := range d.Decisions {
		verdict := "allow"
		if !g.Allow {
			verdict = "deny"
		}
		row(t, "GATE "+g.Gate, verdict+" "+strings.Join(g.Reasons, "; "))
	}
	for _, a := range d.Approvals {
		verdict := "approved"
		if !a.Approve {
			verdict = "rejected"
		}
		row(t, "APPROVAL", a.User+" "+verdict+" "+a.Comment)
	}
	for _, j := range d.Journal {
		row(t, "JOURNAL", j.At.Format(time.RFC3339)+" "+j.Kind+" "+j.Detail)
	}
	row(t, "BY", d.CreatedBy)
}

func (ce *cmdEnv) deployListCmd() *cobra.Command {
	var (
		project, env string
		limit        int
	)
	cmd := &cobra.Command{
		Use: "list", Short: "List deployments, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if env != "" {
				q.Set("environment", env)
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ds []deploy.Deployment
			if err := c.do(cmd.Context(), "GET", p+"/deployments?"+q.Encode(), nil, &ds); err != nil {
				return err
			}
			return ce.print(ds, func(t *tabwriterW) {
				row(t, "ID", "ENVIRONMENT", "RELEASE", "STRATEGY", "STATE", "BY", "CREATED", "MESSAGE")
				for _, d := range ds {
					row(t, d.ID, d.Environment, "#"+strconv.FormatInt(d.ReleaseNumber, 10), d.Strategy, d.State, d.CreatedBy, d.CreatedAt, truncateCell(d.Message, 60))
				}
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	cmd.Flags().StringVar(&env, "env", "", "only this environment's")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (1-500)")
	return cmd
}

func truncateCell(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func (ce *cmdEnv) deployShowCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "show ID", Short: "Show a deployment with its gate decisions and approvals", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return usagef("%q is not a deployment id", args[0])
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var d deploy.Deployment
			if err := c.do(cmd.Context(), "GET", p+"/deployments/"+strconv.FormatInt(id, 10), nil, &d); err != nil {
				return err
			}
			return ce.print(d, func(t *tabwriterW) { printDeployment(t, d) })
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	return cmd
}

func (ce *cmdEnv) deployAnswerCmd(approve bool) *cobra.Command {
	var project, comment string
	use, short := "approve ID", "Approve a deployment waiting for approval"
	if !approve {
		use, short = "reject ID", "Reject a deployment waiting for approval"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := projectPath(project)
			if err != nil {
				return err
			}
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return usagef("%q is not a deployment id", args[0])
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var d deploy.Deployment
			if err := c.do(cmd.Context(), "POST", p+"/deployments/"+strconv.FormatInt(id, 10)+"/approvals",
				deploy.ApproveRequest{Approve: approve, Comment: comment}, &d); err != nil {
				return err
			}
			return ce.print(d, func(t *tabwriterW) { printDeployment(t, d) })
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT")
	cmd.Flags().StringVar(&comment, "comment", "", "a word for the record")
	return cmd
}
