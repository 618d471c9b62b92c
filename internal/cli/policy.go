package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/policy"
)

// policyDenied is the exit code of a gate's denial (like scan findings).
const policyDenied = 1

// bundleFlags select the bundles loaded after the built-in library.
type bundleFlags struct {
	dirs []string
	repo string
	ref  string
}

func (f *bundleFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.dirs, "bundle", nil, "directory of policies loaded after the built-in library (repeatable)")
	cmd.Flags().StringVar(&f.repo, "repo", "", "git repository of policies (a path on disk), loaded after the built-in library")
	cmd.Flags().StringVar(&f.ref, "ref", "", "branch, tag or commit of --repo (default HEAD)")
}

func (f *bundleFlags) load(cmd *cobra.Command, extraDirs []string) ([]*policy.Bundle, error) {
	ctx := cmd.Context()
	lib, err := policy.Builtin{}.Load(ctx)
	if err != nil {
		return nil, err
	}
	bundles := []*policy.Bundle{lib}
	for _, d := range append(append([]string(nil), f.dirs...), extraDirs...) {
		b, err := policy.Dir{Path: d}.Load(ctx)
		if err != nil {
			return nil, err
		}
		bundles = append(bundles, b)
	}
	if f.repo != "" {
		b, err := policy.Git{Repo: f.repo, Ref: f.ref}.Load(ctx)
		if err != nil {
			return nil, err
		}
		bundles = append(bundles, b)
	} else if f.ref != "" {
		return nil, usagef("--ref needs --repo")
	}
	return bundles, nil
}

func (ce *cmdEnv) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Policy as code: test policies, dry-run gates, read decisions",
		Long: `Rampart's gates — pre-merge, image, pre-deploy, iac-plan, admission and
runtime — are Rego v1 policies run by embedded OPA: a built-in library, plus
a policy directory or repository. 'test' and 'eval' work offline on this
machine; the other commands talk to a server. See docs/policy.md.`}
	cmd.AddCommand(ce.policyTestCmd(), ce.policyEvalCmd(), ce.policyListCmd(), ce.policyStatusCmd(), ce.policyReloadCmd(),
		ce.policyDecideCmd(), ce.policyDecisionsCmd())
	return cmd
}

func (ce *cmdEnv) policyTestCmd() *cobra.Command {
	var (
		bf      bundleFlags
		run     string
		verbose bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "Run the Rego unit tests (test_* rules in *_test.rego) of the library and of DIRs",
		Long: `Run Rego unit tests as 'opa test' does, against the built-in library and
the policies of each DIR (and --bundle, --repo): every module is compiled
together with the merged settings of policy.yaml. Exits 1 when a test fails.`,
		Example: "  rampart policy test ./policies\n  rampart policy test --run pre_deploy -v",
		RunE: func(cmd *cobra.Command, args []string) error {
			bundles, err := bf.load(cmd, args)
			if err != nil {
				return err
			}
			// With bundles given, their tests run, not the library's.
			res, err := policy.RunTests(cmd.Context(), bundles, policy.TestOptions{Run: run, Timeout: timeout, SkipLibraryTests: len(bundles) > 1})
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range res {
				if !r.Pass && !r.Skipped {
					failed++
				}
			}
			if ce.output == "json" {
				if err := ce.print(res, nil); err != nil {
					return err
				}
			} else {
				for _, r := range res {
					switch {
					case r.Skipped:
						if verbose {
							fmt.Fprintf(ce.Stdout, "SKIP  %s\n", r.Name)
						}
					case r.Pass:
						if verbose {
							fmt.Fprintf(ce.Stdout, "PASS  %s (%s)\n", r.Name, r.Duration.Round(time.Microsecond))
						}
					default:
						fmt.Fprintf(ce.Stdout, "FAIL  %s (%s:%d)\n      %s\n", r.Name, r.File, r.Line, r.Error)
						if r.Output != "" {
							fmt.Fprintf(ce.Stdout, "      output: %s\n", strings.TrimSpace(r.Output))
						}
					}
				}
				fmt.Fprintf(ce.Stdout, "%d passed, %d failed\n", len(res)-failed, failed)
			}
			if len(res) == 0 {
				return &exitCodeError{code: ExitUsage, msg: "no test matched"}
			}
			if failed > 0 {
				return &exitCodeError{code: policyDenied, msg: fmt.Sprintf("%d policy test(s) failed", failed)}
			}
			return nil
		},
	}
	bf.add(cmd)
	cmd.Flags().StringVar(&run, "run", "", "only tests whose name matches this regular expression")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing tests too")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "time limit of each test (default 2s)")
	return cmd
}

// readInput reads a gate's input document from a file or - (stdin).
func (ce *cmdEnv) readInput(path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("--input is required (a JSON file, or - for standard input)")
	}
	var r io.Reader = ce.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "cannot read the input: "+err.Error())
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, policy.MaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > policy.MaxInput {
		return nil, apperr.E(apperr.TooLarge, "the input is over the %d-byte limit", policy.MaxInput)
	}
	return b, nil
}

func (ce *cmdEnv) policyEvalCmd() *cobra.Command {
	var (
		bf                                           bundleFlags
		gate, input, env, repo, exceptions, registry string
	)
	cmd := &cobra.Command{
		Use:   "eval --gate GATE --input FILE",
		Short: "Dry-run a gate on an input document, offline, and print the decision",
		Long: `Evaluate a gate — pre-merge, image, pre-deploy, iac-plan, admission or
runtime — on an input document (a JSON file, or - for standard input) with
the built-in library and the given bundles, as the server would, and print
the decision: every denial with what to change, warnings, exceptions that
applied or expired. Nothing is recorded. Exits 0 when the gate allows, 1
when it denies, 2 on bad input.`,
		Example: `  rampart policy eval --gate pre-deploy --input release.json --environment production
  tofu show -json plan.out | jq '{plan: .}' | rampart policy eval --gate iac-plan --input -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := policy.ParseGate(gate)
			if err != nil {
				return err
			}
			doc, err := ce.readInput(input)
			if err != nil {
				return err
			}
			bundles, err := bf.load(cmd, nil)
			if err != nil {
				return err
			}
			var settings map[string]any
			if registry != "" {
				settings = map[string]any{"rampart_registry": registry}
			}
			e, err := policy.NewEngine(cmd.Context(), bundles, policy.EngineOptions{Settings: settings})
			if err != nil {
				return err
			}
			var extra []exception.Exception
			if exceptions != "" {
				f, err := os.Open(exceptions)
				if err != nil {
					return apperr.Wrap(err, apperr.Invalid, "cannot read the exceptions: "+err.Error())
				}
				defer f.Close()
				key := exception.KeyExceptions
				if strings.HasSuffix(exceptions, "ignore.yaml") {
					key = exception.KeySuppressions
				}
				if extra, err = exception.Parse(exceptions, f, key); err != nil {
					return apperr.Wrap(err, apperr.Invalid, err.Error())
				}
			}
			d, err := e.Decide(cmd.Context(), g, policy.Input{Subject: input, Environment: env, Repository: repo, Document: doc}, extra, time.Now())
			if err != nil {
				return err
			}
			d.DryRun = true
			if err := ce.print(d, func(t *tabwriterW) { printDecision(t, d) }); err != nil {
				return err
			}
			if !d.Allow {
				return &exitCodeError{code: policyDenied}
			}
			return nil
		},
	}
	bf.add(cmd)
	cmd.Flags().StringVar(&gate, "gate", "", "pre-merge, image, pre-deploy, iac-plan, admission or runtime")
	cmd.Flags().StringVar(&input, "input", "", "the gate's input document: a JSON file, or - for standard input")
	cmd.Flags().StringVar(&env, "environment", "", "target environment (mode rules and exceptions may name it)")
	cmd.Flags().StringVar(&repo, "repository", "", "source repository, org/name (exceptions may name it)")
	cmd.Flags().StringVar(&exceptions, "exceptions", "", "a file of exceptions (exceptions.yaml, or a .rampart/ignore.yaml)")
	cmd.Flags().StringVar(&registry, "registry", "", "this Rampart's registry host (the server fills it in from its URL)")
	_ = cmd.MarkFlagRequired("gate")
	return cmd
}

// printDecision writes a decision for people.
func printDecision(t *tabwriter.Writer, d policy.Decision) {
	outcome := "ALLOWED"
	switch {
	case !d.Allow:
		outcome = "DENIED"
	case len(d.Warnings) > 0:
		outcome = "ALLOWED WITH WARNINGS"
	}
	row(t, "DECISION", outcome)
	row(t, "GATE", string(d.Gate))
	if d.ID != "" {
		row(t, "ID", d.ID)
	}
	row(t, "REVISION", d.Revision)
	row(t, "INPUT", d.InputDigest)
	for _, v := range d.Deny {
		row(t, "DENY", v.Policy+": "+v.Message)
		row(t, "  FIX", v.Fix)
	}
	for _, v := range d.Warnings {
		row(t, "WARN", v.Policy+": "+v.Message)
		row(t, "  FIX", v.Fix)
	}
	for _, v := range d.Excepted {
		row(t, "EXCEPTED", v.Policy+": "+v.Message)
		row(t, "  BY", fmt.Sprintf("%s (%s, owner %s, until %s)", v.Exception.Where(), v.Exception.Reason, v.Exception.Owner, dateText(v.Exception.Expires)))
	}
	for _, v := range d.Expired {
		row(t, "EXPIRED", fmt.Sprintf("exception %s for %s expired on %s and no longer applies", v.Exception.Where(), v.Exception.What(), v.Exception.Expires))
	}
	for _, v := range d.Audited {
		row(t, "AUDIT", v.Policy+": "+v.Message)
	}
}

func dateText(d exception.Date) string {
	if d.IsZero() {
		return "no expiry"
	}
	return d.String()
}

func (ce *cmdEnv) policyListCmd() *cobra.Command {
	var bf bundleFlags
	cmd := &cobra.Command{
		Use: "list", Short: "List the policies of the built-in library (and of --bundle, --repo), offline", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bundles, err := bf.load(cmd, nil)
			if err != nil {
				return err
			}
			e, err := policy.NewEngine(cmd.Context(), bundles, policy.EngineOptions{})
			if err != nil {
				return err
			}
			ps := e.Policies()
			return ce.print(ps, func(t *tabwriterW) {
				row(t, "ID", "GATE", "MODE", "TITLE")
				for _, p := range ps {
					row(t, p.ID, string(p.Gate), string(p.Mode), p.Title)
				}
			})
		},
	}
	bf.add(cmd)
	return cmd
}

func (ce *cmdEnv) policyStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "Show the server's policy revision, bundles and last reload error", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var st policy.StatusJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/policy", nil, &st); err != nil {
				return err
			}
			return ce.print(st, func(t *tabwriterW) {
				row(t, "REVISION", st.Revision)
				row(t, "LOADED", st.LoadedAt)
				row(t, "POLICIES", st.Status.Policies)
				for _, b := range st.Bundles {
					row(t, "BUNDLE", b.Name, b.Revision)
				}
				if st.Error != "" {
					row(t, "RELOAD REFUSED", st.ErrorAt, strings.ReplaceAll(st.Error, "\n", " | "))
				}
			})
		},
	}
}

func (ce *cmdEnv) policyReloadCmd() *cobra.Command {
	return &cobra.Command{
		Use: "reload", Short: "Reload the server's policy bundles now (site administrators)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var st policy.Status
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/policy/reload", nil, &st); err != nil {
				return err
			}
			return ce.print(st, func(t *tabwriterW) { row(t, "REVISION", st.Revision) })
		},
	}
}

func (ce *cmdEnv) policyDecideCmd() *cobra.Command {
	var gate, input, subject, env, repo string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "decide ORG --gate GATE --input FILE --subject SUBJECT",
		Short: "Ask the server's gate for a decision, recorded in the org's decision log",
		Long: `Ask a gate of the server for a decision on an input document, with the org's
exceptions; the decision is recorded under SUBJECT (what it is for, e.g.
release:web@1.4.0) unless --dry-run. Exits 0 when allowed, 1 when denied.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := policy.ParseGate(gate); err != nil {
				return err
			}
			doc, err := ce.readInput(input)
			if err != nil {
				return err
			}
			if !json.Valid(doc) {
				return apperr.InvalidField("input", "%s is not valid JSON", input)
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			path := httpapi.Prefix + "/orgs/" + esc(args[0]) + "/policy/decisions"
			if dryRun {
				path = httpapi.Prefix + "/orgs/" + esc(args[0]) + "/policy/evaluate"
			}
			var d policy.Decision
			req := policy.DecideRequest{Gate: gate, Subject: subject, Environment: env, Repository: repo, Input: doc}
			if err := c.do(cmd.Context(), "POST", path, req, &d); err != nil {
				return err
			}
			if err := ce.print(d, func(t *tabwriterW) { printDecision(t, d) }); err != nil {
				return err
			}
			if !d.Allow {
				return &exitCodeError{code: policyDenied}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&gate, "gate", "", "pre-merge, image, pre-deploy, iac-plan, admission or runtime")
	cmd.Flags().StringVar(&input, "input", "", "the gate's input document: a JSON file, or - for standard input")
	cmd.Flags().StringVar(&subject, "subject", "", "what the decision is for, e.g. release:web@1.4.0")
	cmd.Flags().StringVar(&env, "environment", "", "target environment")
	cmd.Flags().StringVar(&repo, "repository", "", "source repository, org/name")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "evaluate without recording")
	_ = cmd.MarkFlagRequired("gate")
	return cmd
}

func (ce *cmdEnv) policyDecisionsCmd() *cobra.Command {
	var subject, gate, outcome string
	var limit int
	cmd := &cobra.Command{
		Use: "decisions ORG", Short: "List an org's policy decisions, newest first", Args: cobra.ExactArgs(1),
		Example: "  rampart policy decisions acme --subject 'pr:acme/web#12'",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"subject": subject, "gate": gate, "outcome": outcome} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			path := httpapi.Prefix + "/orgs/" + esc(args[0]) + "/policy/decisions"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var ds []policy.Decision
			if err := c.do(cmd.Context(), "GET", path, nil, &ds); err != nil {
				return err
			}
			return ce.print(ds, func(t *tabwriterW) {
				row(t, "ID", "TIME", "GATE", "SUBJECT", "OUTCOME", "REASONS")
				for _, d := range ds {
					var reasons []string
					for _, v := range d.Deny {
						reasons = append(reasons, v.Policy)
					}
					row(t, d.ID, d.At, string(d.Gate), d.Subject, d.Outcome(), reasons)
				}
			})
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "only decisions for this subject")
	cmd.Flags().StringVar(&gate, "gate", "", "only decisions of this gate")
	cmd.Flags().StringVar(&outcome, "outcome", "", "allow, warn or deny")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (default 50, at most 500)")
	return cmd
}
