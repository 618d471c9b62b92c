package cli

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/httpapi"
)

func (ce *cmdEnv) gatewayCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "gateway", Short: "Manage the gateway: routes to backends, the WAF, security events"}
	route := &cobra.Command{Use: "route", Short: "Manage gateway routes (site routes, or a project's with --project ORG/PROJECT)"}
	route.AddCommand(ce.gatewayRouteAddCmd(), ce.gatewayRouteListCmd(), ce.gatewayRouteRmCmd())
	cmd.AddCommand(route, ce.gatewayEventsCmd())
	return cmd
}

// routesPath is the API path of a scope's routes (site when project is "").
func routesPath(project, name string) (string, error) {
	p := httpapi.Prefix + "/gateway/routes"
	if project != "" {
		org, proj, ok := strings.Cut(project, "/")
		if !ok || org == "" || proj == "" || strings.Contains(proj, "/") {
			return "", usagef("--project must be ORG/PROJECT")
		}
		p = httpapi.Prefix + "/orgs/" + esc(org) + "/projects/" + esc(proj) + "/gateway/routes"
	}
	if name != "" {
		p += "/" + esc(name)
	}
	return p, nil
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// defaultRouteName derives a route name from host and path.
func defaultRouteName(host, path string) string {
	s := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(strings.TrimPrefix(host, "*.")+" "+path), "-"), "-")
	if s == "" {
		s = "default"
	}
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// parseBackend reads URL[,weight=N][,version=V].
func parseBackend(s string) (gateway.Backend, error) {
	parts := strings.Split(s, ",")
	b := gateway.Backend{URL: parts[0]}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case ok && k == "weight":
			w, err := strconv.Atoi(v)
			if err != nil {
				return b, usagef("--backend %s: weight must be a number", s)
			}
			b.Weight = &w
		case ok && k == "version":
			b.Version = v
		default:
			return b, usagef("--backend %s: want URL[,weight=N][,version=V]", s)
		}
	}
	return b, nil
}

func (ce *cmdEnv) gatewayRouteAddCmd() *cobra.Command {
	var (
		name, project, wafMode string
		backends, excludes     []string
		spec                   gateway.Spec
		retries                int
		timeout, hcInterval    string
	)
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a route, or replace the route of the same name",
		Long: `Add a gateway route: requests for --host (an exact name, *.domain for one
label, or empty for any host no other route claims) under --path go to the
backends, balanced by weight (round_robin) or by fewest requests in flight
(least_conn), through the WAF in the mode given.

Backends are URL[,weight=N][,version=V]: a weight of 0 drains a backend,
the version labels its metrics (canary releases run two versions side by
side with weights such as 95 and 5).

Site routes need a site administrator; --project ORG/PROJECT adds a route
of that project, which its org's owners manage.`,
		Example: `  rampart gateway route add --host app.example.com --backend http://10.0.0.5:8080 --waf block
  rampart gateway route add --project acme/web --name api --host api.acme.test --path /v1 \
      --backend http://127.0.0.1:9001,weight=95,version=v1 --backend http://127.0.0.1:9002,weight=5,version=v2 \
      --waf block --paranoia 2 --health-path /healthz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range backends {
				b, err := parseBackend(s)
				if err != nil {
					return err
				}
				spec.Backends = append(spec.Backends, b)
			}
			if len(spec.Backends) == 0 {
				return usagef("at least one --backend is required")
			}
			m, err := waf.ParseMode(wafMode)
			if err != nil {
				return usagef("--waf: want off, detect or block")
			}
			spec.WAF.Mode = m
			spec.WAF.ExcludeRules = excludes
			if cmd.Flags().Changed("retries") {
				spec.Retries = &retries
			}
			for _, d := range []struct {
				flag string
				v    string
				dst  *gateway.Duration
			}{{"timeout", timeout, &spec.Timeout}, {"health-interval", hcInterval, &spec.HealthCheck.Interval}} {
				if d.v == "" {
					continue
				}
				if err := d.dst.UnmarshalText([]byte(d.v)); err != nil {
					return usagef("--%s: %v", d.flag, err)
				}
			}
			if name == "" {
				name = defaultRouteName(spec.Host, spec.Path)
			}
			p, err := routesPath(project, name)
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var out gateway.RouteJSON
			if err := c.do(cmd.Context(), "PUT", p, spec, &out); err != nil {
				return err
			}
			return ce.print(out, func(t *tabwriterW) { printRoute(t, out) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "route name (default: derived from host and path)")
	f.StringVar(&project, "project", "", "ORG/PROJECT owning the route (default: a site route)")
	f.StringVar(&spec.Host, "host", "", "host name the route answers for (exact, *.domain, or empty for any)")
	f.StringVar(&spec.Path, "path", "/", "path prefix, matched on segment boundaries")
	f.BoolVar(&spec.StripPrefix, "strip-prefix", false, "remove the path prefix before forwarding")
	f.StringArrayVar(&backends, "backend", nil, "backend URL[,weight=N][,version=V] (repeatable)")
	f.StringVar(&spec.Balance, "balance", "round_robin", "round_robin or least_conn")
	f.StringVar(&wafMode, "waf", "block", "WAF mode: off, detect or block")
	f.IntVar(&spec.WAF.Paranoia, "paranoia", 1, "CRS paranoia level 1-4")
	f.IntVar(&spec.WAF.InboundThreshold, "inbound-threshold", 5, "inbound anomaly score that blocks a request")
	f.IntVar(&spec.WAF.OutboundThreshold, "outbound-threshold", 4, "outbound anomaly score that blocks a response")
	f.StringArrayVar(&excludes, "exclude-rule", nil, "CRS rule id or range (A-B) to leave out on this route (repeatable)")
	f.BoolVar(&spec.WAF.InspectResponses, "inspect-responses", false, "run the CRS response rules on text response bodies (buffers them)")
	f.StringVar(&spec.Auth, "auth", "none", "none, or required (end users sign in through the realm first)")
	f.StringVar(&spec.AuthProvider, "auth-provider", "", "with --auth required: the realm's external OpenID provider to sign in with instead of the realm's users")
	f.StringVar(&timeout, "timeout", "", "time a backend may take to answer with headers (default 30s)")
	f.IntVar(&retries, "retries", 2, "other backends an idempotent request without a body is tried on")
	f.Int64Var(&spec.MaxBody, "max-body", 0, "largest request body in bytes (default 10 MiB)")
	f.StringVar(&spec.HealthCheck.Path, "health-path", "", "path to GET on each backend for active health checks")
	f.StringVar(&hcInterval, "health-interval", "", "time between health checks (default 5s)")
	f.Float64Var(&spec.RateLimit.PerIP, "rate-per-ip", 0, "requests per second per client address (0: unlimited)")
	f.Float64Var(&spec.RateLimit.PerUser, "rate-per-user", 0, "requests per second per signed-in user (0: unlimited)")
	f.IntVar(&spec.RateLimit.Burst, "rate-burst", 0, "bursts allowed above the rates (default twice the rate)")
	return cmd
}

func (ce *cmdEnv) gatewayRouteListCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use: "list", Short: "List routes: every route (site administrators) or a project's with --project", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := routesPath(project, "")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var rs []gateway.RouteJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &rs); err != nil {
				return err
			}
			return ce.print(rs, func(t *tabwriterW) {
				row(t, "ID", "NAME", "SCOPE", "HOST", "PATH", "BACKENDS", "WAF", "AUTH", "SOURCE")
				for _, r := range rs {
					host := r.Spec.Host
					if host == "" {
						host = "*"
					}
					up := 0
					for _, b := range r.Backends {
						if b.Up && !b.Ejected {
							up++
						}
					}
					wafCol := string(r.Spec.WAF.Mode)
					if r.Spec.WAF.Mode != waf.Off {
						wafCol += " pl" + strconv.Itoa(r.Spec.WAF.Paranoia)
					}
					id := "-" // the config file's routes have none
					if r.ID != 0 {
						id = strconv.FormatInt(r.ID, 10)
					}
					row(t, id, r.Name, r.Scope, host, r.Spec.Path, fmt.Sprintf("%d/%d up", up, len(r.Spec.Backends)), wafCol, r.Spec.Auth, r.Source)
				}
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT whose routes to list")
	return cmd
}

func (ce *cmdEnv) gatewayRouteRmCmd() *cobra.Command {
	var (
		project string
		id      int64
	)
	cmd := &cobra.Command{
		Use: "rm NAME | rm --id ID", Aliases: []string{"remove"}, Short: "Remove a route: by name, or any stored route by its id (site administrators)",
		Long: `Remove a route by name: a site route, or a project's with --project.

Site administrators can remove any stored route, a project's or the site's,
by the id "rampart gateway route list" shows (--id). Routes from the config
file have no id: change the file instead.`,
		Example: `  rampart gateway route rm api --project acme/web
  rampart gateway route rm --id 7`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("id") {
				if len(args) > 0 {
					return usagef("give a route NAME or --id, not both")
				}
				return nil
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var p, what string
			if cmd.Flags().Changed("id") {
				if project != "" {
					return usagef("--id names a route of any scope: leave out --project")
				}
				if id <= 0 {
					return usagef("--id must be a route id from \"rampart gateway route list\"")
				}
				p, what = httpapi.Prefix+"/gateway/routes/by-id/"+strconv.FormatInt(id, 10), "route with id "+strconv.FormatInt(id, 10)
			} else {
				var err error
				if p, err = routesPath(project, args[0]); err != nil {
					return err
				}
				what = "route " + args[0]
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", p, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Removed %s.\n", what)
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "ORG/PROJECT owning the route")
	cmd.Flags().Int64Var(&id, "id", 0, "remove the stored route with this id, of any scope (site administrators)")
	return cmd
}

func (ce *cmdEnv) gatewayEventsCmd() *cobra.Command {
	var (
		requestID, route, outcome string
		limit                     int
	)
	cmd := &cobra.Command{
		Use: "events", Short: "Show security events: requests the WAF blocked or flagged, stalled bodies on WAF routes (site administrators)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"request_id": requestID, "route": route, "outcome": outcome} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			c, err := ce.client()
			if err != nil {
				return err
			}
			var es []gateway.Event
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/gateway/events?"+q.Encode(), nil, &es); err != nil {
				return err
			}
			return ce.print(es, func(t *tabwriterW) {
				row(t, "AT", "REQUEST ID", "ROUTE", "OUTCOME", "RULE", "CLIENT", "REQUEST")
				for _, e := range es {
					row(t, e.At, e.RequestID, e.Route, e.Outcome, e.RuleID, e.ClientIP, e.Method+" "+e.Host+e.Path)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&requestID, "request-id", "", "only the event of this request id")
	f.StringVar(&route, "route", "", "only events of this route")
	f.StringVar(&outcome, "outcome", "", "blocked or detected")
	f.IntVar(&limit, "limit", 50, "at most this many events (1-1000)")
	return cmd
}

func printRoute(t *tabwriterW, r gateway.RouteJSON) {
	host := r.Spec.Host
	if host == "" {
		host = "* (any host)"
	}
	if r.ID != 0 {
		row(t, "ID", strconv.FormatInt(r.ID, 10))
	}
	row(t, "NAME", r.Name)
	row(t, "SCOPE", r.Scope)
	row(t, "HOST", host)
	row(t, "PATH", r.Spec.Path)
	for _, b := range r.Spec.Backends {
		row(t, "BACKEND", fmt.Sprintf("%s weight=%d version=%s", b.URL, b.W(), b.Version))
	}
	row(t, "BALANCE", r.Spec.Balance)
	w := string(r.Spec.WAF.Mode)
	if r.Spec.WAF.Mode != waf.Off {
		w += fmt.Sprintf(" (paranoia %d, thresholds %d/%d)", r.Spec.WAF.Paranoia, r.Spec.WAF.InboundThreshold, r.Spec.WAF.OutboundThreshold)
	}
	row(t, "WAF", w)
	row(t, "AUTH", r.Spec.Auth)
}
