package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
)

// Load replaces the routing table with routes (specs normalised; two
// routes may not claim the same host and path). It compiles the rule sets
// the routes need first, so a bad table changes nothing. Backends keep
// their health state across loads, and a route whose rate-limit settings
// are unchanged keeps its limiters' buckets: a load (any route's change,
// a config-file reload, a change made on another replica) does not reset
// the limits.
func (g *Gateway) Load(ctx context.Context, routes []Route) error {
	lives := make([]*live, 0, len(routes))
	var inUse []waf.Settings
	g.mu.Lock()
	defer g.mu.Unlock()
	old := map[string]*live{}
	for _, l := range g.tbl.Load().all {
		old[routeKey(l.route)] = l
	}
	keep := map[string]*backend{}
	var retired []*backend // backends of the old table this one drops
	for i := range routes {
		rt := routes[i]
		spec, err := rt.Spec.Normalize()
		if err != nil {
			return fmt.Errorf("route %s: %w", rt.Name, err)
		}
		rt.Spec = spec
		for _, other := range lives {
			if overlaps(other.route.Spec, spec) {
				return fmt.Errorf("routes %s and %s both claim host %q path %s", other.route.Name, rt.Name, spec.Host, spec.Path)
			}
		}
		l := &live{route: rt, info: RouteInfo{ID: rt.ID, Name: rt.Name, OrgID: rt.OrgID, ProjectID: rt.ProjectID, Host: spec.Host, Path: spec.Path,
			AuthProvider: spec.AuthProvider}}
		if l.waf, err = g.opt.WAF.For(spec.WAF); err != nil {
			return fmt.Errorf("route %s: %w", rt.Name, err)
		}
		inUse = append(inUse, spec.WAF)
		bs := make([]*backend, len(spec.Backends))
		l.versions = map[string]*versionMetrics{}
		for j, sb := range spec.Backends {
			u, _ := ParseBackendURL(sb.URL)
			version := sb.Version
			if version == "" {
				version = "default"
			}
			key := routeKey(rt) + "|" + u.String()
			b := g.backends[key]
			if b == nil || b.version != version || b.weight != sb.W() {
				nb := newBackend(u, key, version, sb.W())
				nb.conns.total = &g.idleConns
				if b != nil { // keep the health it had, not its connections
					retired = append(retired, b)
					if b.version != version {
						g.m.healthy.DeleteLabelValues(rt.Name, u.String(), b.version)
					}
					nb.down.Store(b.down.Load())
					nb.ejectedUntil.Store(b.ejectedUntil.Load())
					nb.fails.Store(b.fails.Load())
				}
				b = nb
			}
			keep[key] = b
			bs[j] = b
			if l.versions[version] == nil {
				l.versions[version] = g.m.forVersion(rt.Name, version)
			}
			up := 1.0
			if b.down.Load() {
				up = 0
			}
			g.m.healthy.WithLabelValues(rt.Name, u.String(), version).Set(up)
		}
		l.none = g.m.forVersion(rt.Name, "none")
		l.pool = newPool(bs, spec.Balance, spec.HealthCheck.Unhealthy)
		var prevIP, prevUser *limiter
		if prev := old[routeKey(rt)]; prev != nil {
			prevIP, prevUser = prev.ipLimit, prev.userLimit
		}
		l.ipLimit = prevIP.reuse(spec.RateLimit.PerIP, spec.RateLimit.Burst)
		l.userLimit = prevUser.reuse(spec.RateLimit.PerUser, spec.RateLimit.Burst)
		l.rp = g.newProxy(l)
		l.proxy = &forwarder{g: g, l: l}
		l.direct = len(bs) > 0
		for _, b := range bs {
			l.direct = l.direct && b.url.Scheme == "http"
		}
		lives = append(lives, l)
	}
	for key, b := range g.backends {
		if keep[key] == nil {
			retired = append(retired, b)
			g.m.healthy.DeleteLabelValues(routeOfKey(key), b.url.String(), b.version)
		}
	}
	g.backends = keep
	g.tbl.Store(newTable(lives))
	g.forgetSeries(old, lives)
	for _, b := range retired {
		b.conns.close()
	}
	g.opt.WAF.Forget(inUse)
	g.restartChecksLocked()
	return nil
}

// forgetSeries deletes the metric series of the routes and backend
// versions of the old table that the new one, lives, no longer has.
// Series are labelled by route name; a name the new table still has keeps
// the series of its remaining versions.
func (g *Gateway) forgetSeries(old map[string]*live, lives []*live) {
	versions := map[string]map[string]*versionMetrics{}
	for _, l := range lives {
		vs := versions[l.route.Name]
		if vs == nil {
			vs = map[string]*versionMetrics{"none": l.none}
			versions[l.route.Name] = vs
		}
		for v, vm := range l.versions {
			vs[v] = vm
		}
	}
	for _, l := range old {
		vs, ok := versions[l.route.Name]
		if !ok {
			g.m.forgetRoute(l.route.Name)
			continue
		}
		for v := range l.versions {
			if vs[v] == nil {
				g.m.forgetVersion(l.route.Name, v)
			}
		}
	}
}

// routeKey identifies a route across loads: its ID, and its name (routes
// of the config file have no ID).
func routeKey(rt Route) string {
	return strconv.FormatInt(rt.ID, 10) + "|" + rt.Name
}

func routeOfKey(key string) string {
	// key is id|name|url
	start := -1
	for i := 0; i < len(key); i++ {
		if key[i] == '|' {
			if start < 0 {
				start = i + 1
			} else {
				return key[start:i]
			}
		}
	}
	return ""
}

// Routes returns the routes being served.
func (g *Gateway) Routes() []Route {
	t := g.tbl.Load()
	out := make([]Route, len(t.all))
	for i, l := range t.all {
		out[i] = l.route
	}
	return out
}

// BackendStatus is one backend's live state.
type BackendStatus struct {
	URL      string `json:"url"`
	Version  string `json:"version"`
	Weight   int    `json:"weight"`
	Up       bool   `json:"up"`
	Ejected  bool   `json:"ejected"`
	InFlight int64  `json:"in_flight"`
}

// Status returns the live state of a route's backends (nil for an
// unknown route).
func (g *Gateway) Status(routeID int64, name string) []BackendStatus {
	now := g.opt.Now().UnixNano()
	for _, l := range g.tbl.Load().all {
		if l.route.ID != routeID || l.route.Name != name {
			continue
		}
		out := make([]BackendStatus, len(l.pool.backends))
		for i, b := range l.pool.backends {
			out[i] = BackendStatus{URL: b.url.String(), Version: b.version, Weight: b.weight, Up: !b.down.Load(),
				Ejected: b.ejectedUntil.Load() > now, InFlight: b.inflight.Load()}
		}
		return out
	}
	return nil
}

func (g *Gateway) restartChecks() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.restartChecksLocked()
}

// restartChecksLocked stops the health checks of the previous table and
// starts those of the current one (when the gateway runs).
func (g *Gateway) restartChecksLocked() {
	if g.checks != nil {
		g.checks()
		g.checks = nil
	}
	if g.runCtx == nil || g.runCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(g.runCtx)
	g.checks = cancel
	client := &http.Client{Transport: g.transport, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, l := range g.tbl.Load().all {
		hc := l.route.Spec.HealthCheck
		if hc.Path == "" {
			continue
		}
		checker := &healthChecker{client: client, spec: hc, host: l.route.Spec.Host}
		name := l.route.Name
		for _, b := range l.pool.backends {
			g.checksWG.Add(1)
			go checker.run(ctx, b, &g.checksWG, func(b *backend, up bool) {
				v := 0.0
				if up {
					v = 1
				}
				g.m.healthy.WithLabelValues(name, b.url.String(), b.version).Set(v)
				g.log.Warn("backend health changed", logging.KeyRoute, name, "backend", b.url.String(), "up", up)
			})
		}
	}
}
