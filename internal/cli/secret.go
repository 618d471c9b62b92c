package cli

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/vault"
)

// secretsPath is the API path of the secrets of scope (ORG, ORG/PROJECT
// or ORG/PROJECT/ENV), with name appended when given.
func secretsPath(scope, name string) (string, error) {
	sc, err := vault.ParseScope(scope)
	if err != nil {
		return "", usagef("SCOPE %q must be ORG, ORG/PROJECT or ORG/PROJECT/ENV", scope)
	}
	p := httpapi.Prefix + "/orgs/" + esc(sc.Org)
	if sc.Project != "" {
		p += "/projects/" + esc(sc.Project)
	}
	if sc.Env != "" {
		p += "/envs/" + esc(sc.Env)
	}
	p += "/secrets"
	if name != "" {
		if err := vault.ValidateName(name); err != nil {
			return "", err
		}
		p += "/" + esc(name)
	}
	return p, nil
}

// readValue reads a secret value from standard input: never from an
// argument, which would show in the process list and shell history. One
// trailing newline (what echo adds) is dropped.
func (ce *cmdEnv) readValue() (string, error) {
	b, err := io.ReadAll(io.LimitReader(ce.Stdin, vault.MaxValue+2))
	if err != nil {
		return "", fmt.Errorf("read the value: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > vault.MaxValue {
		return "", usagef("the value on standard input is longer than %d bytes", vault.MaxValue)
	}
	if len(b) == 0 {
		return "", usagef("standard input is empty: pipe the secret value in, e.g. printf %%s \"$VALUE\" | rampart secret set …")
	}
	return string(b), nil
}

func printSecret(t *tabwriterW, s vault.SecretJSON) {
	row(t, "SECRET", s.Ref)
	row(t, "VERSION", strconv.Itoa(s.CurrentVersion))
	row(t, "OWNER", s.Owner)
	if s.Description != "" {
		row(t, "DESCRIPTION", s.Description)
	}
	if s.Generator != "" {
		row(t, "GENERATOR", s.Generator)
	}
	row(t, "CREATED", s.CreatedAt)
	row(t, "UPDATED", s.UpdatedAt)
	row(t, "ROTATED", s.RotatedAt)
	if !s.ExpiresAt.IsZero() {
		row(t, "EXPIRES", s.ExpiresAt)
	}
	if !s.LeakedAt.IsZero() {
		row(t, "LEAKED", s.LeakedAt)
	}
}

func (ce *cmdEnv) secretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage vault secrets: set, get, list, rotate, history, rollback",
		Long: `Secrets live in a SCOPE: ORG, ORG/PROJECT or ORG/PROJECT/ENV. Values are read
from standard input, never from arguments. Reading a value needs a vault
policy that grants it to you (see 'rampart secret policy'); every read is
audited.`,
	}
	var (
		desc, generator, expiresIn string
		cas                        int
	)
	set := &cobra.Command{
		Use: "set SCOPE NAME", Short: "Write a new version of a secret (value on standard input)", Args: cobra.ExactArgs(2),
		Example: "  printf %s \"$DB_PASSWORD\" | rampart secret set acme/web/prod DB_PASSWORD",
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			value, err := ce.readValue()
			if err != nil {
				return err
			}
			req := vault.SetSecretRequest{Value: value}
			fl := cmd.Flags()
			if fl.Changed("description") {
				req.Description = &desc
			}
			if fl.Changed("generator") {
				req.Generator = &generator
			}
			if fl.Changed("cas") {
				req.CAS = &cas
			}
			if expiresIn != "" {
				d, err := parseDays(expiresIn)
				if err != nil {
					return usagef("--expires-in: %v", err)
				}
				at := time.Now().Add(d).UTC()
				req.ExpiresAt = &at
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res vault.WriteResponse
			if err := c.do(cmd.Context(), "PUT", path, req, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) { row(t, "Wrote", res.Secret.Ref, "version "+strconv.Itoa(res.Version.Version)) })
		},
	}
	set.Flags().StringVar(&desc, "description", "", "what the secret is for")
	set.Flags().StringVar(&generator, "generator", "", "how rotations make new values: random:LENGTH[:alnum|hex|base64url]")
	set.Flags().StringVar(&expiresIn, "expires-in", "", "expiry, e.g. 90d or 2160h (metadata; expired secrets are not injected)")
	set.Flags().IntVar(&cas, "cas", 0, "write only if the current version is this (0: only if the secret is new)")

	var version int
	get := &cobra.Command{
		Use: "get SCOPE NAME", Short: "Print a secret's value (needs a vault policy; audited)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res vault.RevealResponse
			if err := c.do(cmd.Context(), "POST", path+"/reveal", vault.RevealRequest{Version: version}, &res); err != nil {
				return err
			}
			if ce.output == "json" {
				return ce.print(res, nil)
			}
			_, err = io.WriteString(ce.Stdout, res.Value+"\n")
			return err
		},
	}
	get.Flags().IntVar(&version, "version", 0, "version to read (default: the current one)")

	list := &cobra.Command{
		Use: "list SCOPE", Aliases: []string{"ls"}, Short: "List the secrets of a scope (never their values)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], "")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ss []vault.SecretJSON
			if err := c.do(cmd.Context(), "GET", path, nil, &ss); err != nil {
				return err
			}
			return ce.print(ss, func(t *tabwriterW) {
				row(t, "NAME", "VERSION", "OWNER", "UPDATED", "ROTATED", "EXPIRES", "LEAKED")
				for _, s := range ss {
					leaked := "-"
					if !s.LeakedAt.IsZero() {
						leaked = "LEAKED"
					}
					row(t, s.Name, strconv.Itoa(s.CurrentVersion), s.Owner, s.UpdatedAt, s.RotatedAt, s.ExpiresAt, leaked)
				}
			})
		},
	}

	var generate bool
	rotate := &cobra.Command{
		Use: "rotate SCOPE NAME", Short: "Rotate a secret: new value on standard input, or --generate", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			var req vault.RotateRequest
			if !generate {
				v, err := ce.readValue()
				if err != nil {
					return err
				}
				req.Value = &v
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res vault.WriteResponse
			if err := c.do(cmd.Context(), "POST", path+"/rotate", req, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) { row(t, "Rotated", res.Secret.Ref, "version "+strconv.Itoa(res.Version.Version)) })
		},
	}
	rotate.Flags().BoolVar(&generate, "generate", false, "make the new value with the secret's generator instead of reading it")

	history := &cobra.Command{
		Use: "history SCOPE NAME", Short: "List a secret's versions", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res vault.HistoryResponse
			if err := c.do(cmd.Context(), "GET", path+"/versions", nil, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) {
				row(t, "VERSION", "CREATED", "BY", "REASON", "STATE")
				for _, v := range res.Versions {
					var state []string
					if v.Current {
						state = append(state, "current")
					}
					if !v.DeletedAt.IsZero() {
						state = append(state, "deleted")
					}
					if v.Destroyed {
						state = append(state, "destroyed")
					}
					if !v.LeakedAt.IsZero() {
						state = append(state, "leaked")
					}
					row(t, strconv.Itoa(v.Version), v.CreatedAt, v.CreatedBy, v.Reason, state)
				}
			})
		},
	}

	rollback := &cobra.Command{
		Use: "rollback SCOPE NAME VERSION", Short: "Make an earlier version's value current (as a new version)", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(args[2])
			if err != nil || v < 1 {
				return usagef("VERSION must be a positive number")
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res vault.WriteResponse
			if err := c.do(cmd.Context(), "POST", path+"/rollback", vault.RollbackRequest{Version: v}, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) {
				row(t, "Rolled back", res.Secret.Ref, "to version "+args[2]+" as version "+strconv.Itoa(res.Version.Version))
			})
		},
	}

	del := &cobra.Command{
		Use: "delete SCOPE NAME", Aliases: []string{"rm"}, Short: "Delete a secret with every version", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", path, nil, nil)
		},
	}

	show := &cobra.Command{
		Use: "show SCOPE NAME", Short: "Show a secret's metadata (never its value)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretsPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var s vault.SecretJSON
			if err := c.do(cmd.Context(), "GET", path, nil, &s); err != nil {
				return err
			}
			return ce.print(s, func(t *tabwriterW) { printSecret(t, s) })
		},
	}

	cmd.AddCommand(set, get, list, rotate, history, rollback, del, show, ce.secretPolicyCmd(), ce.secretLeaksCmd())
	return cmd
}

// parseDays parses a duration that may be given in days (30d).
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 3660 {
			return 0, fmt.Errorf("%q must be 1d to 3660d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q must be a duration like 2160h or 90d", s)
	}
	return d, nil
}

func (ce *cmdEnv) secretPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage who may read which secrets (org owners)",
		Long: `A policy grants reading the secrets its patterns name (NAME, PROJECT/NAME,
PROJECT/ENV/NAME, with * and ?) to subjects: user:NAME, team:NAME,
pipeline:PROJECT:BRANCH:ENV and deployment:PROJECT:ENV.`,
	}
	var (
		secrets, subjects []string
		desc              string
	)
	put := &cobra.Command{
		Use: "put ORG NAME", Short: "Create or replace a policy", Args: cobra.ExactArgs(2),
		Example: "  rampart secret policy put acme web-prod --secret 'web/prod/*' --subject pipeline:web:main:prod --subject deployment:web:prod",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var p vault.PolicyJSON
			if err := c.do(cmd.Context(), "PUT", httpapi.Prefix+"/orgs/"+esc(args[0])+"/vault/policies/"+esc(args[1]),
				vault.PutPolicyRequest{Description: desc, Secrets: secrets, Subjects: subjects}, &p); err != nil {
				return err
			}
			return ce.print(p, func(t *tabwriterW) {
				row(t, "Policy", p.Name, strings.Join(p.Secrets, ","), strings.Join(p.Subjects, ","))
			})
		},
	}
	put.Flags().StringSliceVar(&secrets, "secret", nil, "secret pattern (repeatable)")
	put.Flags().StringSliceVar(&subjects, "subject", nil, "who may read them (repeatable)")
	put.Flags().StringVar(&desc, "description", "", "what the policy is for")
	_ = put.MarkFlagRequired("secret")
	_ = put.MarkFlagRequired("subject")
	list := &cobra.Command{
		Use: "list ORG", Short: "List an org's policies", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ps []vault.PolicyJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/vault/policies", nil, &ps); err != nil {
				return err
			}
			return ce.print(ps, func(t *tabwriterW) {
				row(t, "POLICY", "SECRETS", "SUBJECTS", "BY")
				for _, p := range ps {
					row(t, p.Name, p.Secrets, p.Subjects, p.CreatedBy)
				}
			})
		},
	}
	del := &cobra.Command{
		Use: "delete ORG NAME", Short: "Delete a policy", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/orgs/"+esc(args[0])+"/vault/policies/"+esc(args[1]), nil, nil)
		},
	}
	cmd.AddCommand(put, list, del)
	return cmd
}

func (ce *cmdEnv) secretLeaksCmd() *cobra.Command {
	var open bool
	cmd := &cobra.Command{
		Use: "leaks ORG", Short: "List where secrets leaked (found by push protection or scans)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ls []vault.LeakJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/orgs/"+esc(args[0])+"/vault/leaks?open="+strconv.FormatBool(open), nil, &ls); err != nil {
				return err
			}
			return ce.print(ls, func(t *tabwriterW) {
				row(t, "SECRET", "VERSION", "FOUND", "SOURCE", "WHERE", "ROTATED")
				for _, l := range ls {
					rotated := "no: run rampart secret rotate"
					if l.RotatedVersion > 0 {
						rotated = "version " + strconv.Itoa(l.RotatedVersion)
					}
					row(t, l.Ref, strconv.Itoa(l.Version), l.FoundAt, l.Source, l.Location, rotated)
				}
			})
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "only leaks not yet rotated")
	return cmd
}
