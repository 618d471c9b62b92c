package gateway

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// Limits on what a route may hold.
const (
	MaxBackends     = 64
	maxNameLen      = 63
	maxHostLen      = 253
	maxPathLen      = 1024
	maxVersionLen   = 64
	maxWeight       = 1000
	maxRetries      = 5
	maxTimeout      = time.Hour
	maxHealthPeriod = time.Hour
)

// Balance policies: how a request picks among a route's healthy backends.
const (
	RoundRobin = "round_robin"
	LeastConn  = "least_conn"
)

// Auth settings of a route.
const (
	// AuthNone lets every request through to the WAF and the backend.
	AuthNone = "none"
	// AuthRequired asks the configured Authenticator (an end-user realm)
	// to sign the user in before the request goes on.
	AuthRequired = "required"
)

// Spec is what an operator says about a route: everything but its
// identity and bookkeeping. It is the JSON of the API, the YAML of the
// config file and the stored form.
type Spec struct {
	// Host is the host name the route answers for: an exact name
	// (app.example.com), a wildcard for one label (*.example.com) or ""
	// for any host not claimed by another route.
	Host string `json:"host" yaml:"host"`
	// Path is a path prefix matched on segment boundaries: /api matches
	// /api and /api/x, not /apix. Default "/".
	Path string `json:"path" yaml:"path"`
	// StripPrefix removes Path from the request path before it goes to
	// the backend.
	StripPrefix bool `json:"strip_prefix,omitempty" yaml:"strip_prefix,omitempty"`
	// Backends are the pool the route balances over.
	Backends []Backend `json:"backends" yaml:"backends"`
	// Balance is round_robin (default, weighted) or least_conn.
	Balance string `json:"balance,omitempty" yaml:"balance,omitempty"`
	// WAF holds the route's WAF settings.
	WAF waf.Settings `json:"waf" yaml:"waf"`
	// Auth is none (default) or required (end users sign in first).
	Auth string `json:"auth,omitempty" yaml:"auth,omitempty"`
	// AuthProvider, with auth required, names an external OpenID
	// provider of the org's realm that signs end users in on this route
	// instead of the realm's own users.
	AuthProvider string `json:"auth_provider,omitempty" yaml:"auth_provider,omitempty"`
	// Timeout bounds a whole backend exchange up to the response headers
	// (default 30s).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Retries is how many other backends an idempotent request without a
	// body is tried on when a backend cannot be reached (default 2).
	Retries *int `json:"retries,omitempty" yaml:"retries,omitempty"`
	// MaxBody caps request bodies in bytes (default 10 MiB).
	MaxBody int64 `json:"max_body,omitempty" yaml:"max_body,omitempty"`
	// HealthCheck configures active health checks of the backends.
	HealthCheck HealthCheck `json:"health_check" yaml:"health_check"`
	// RateLimit limits requests per client address and per signed-in user.
	RateLimit RateLimit `json:"rate_limit" yaml:"rate_limit"`
}

// Backend is one upstream server of a route.
type Backend struct {
	// URL is http:// or https:// host[:port], optionally with a base path.
	URL string `json:"url" yaml:"url"`
	// Weight is the backend's share of requests (default 1; 0 drains it).
	Weight *int `json:"weight,omitempty" yaml:"weight,omitempty"`
	// Version labels the backend's release in metrics (canary analysis
	// compares versions).
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// W returns the backend's weight.
func (b Backend) W() int {
	if b.Weight == nil {
		return 1
	}
	return *b.Weight
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	// Path is requested with GET on each backend; empty disables active
	// checks (passive ejection still applies).
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Interval between checks (default 5s).
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Timeout of one check (default 2s).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Unhealthy is how many consecutive failures take a backend out
	// (default 2); Healthy how many successes bring it back (default 2).
	Unhealthy int `json:"unhealthy_threshold,omitempty" yaml:"unhealthy_threshold,omitempty"`
	Healthy   int `json:"healthy_threshold,omitempty" yaml:"healthy_threshold,omitempty"`
}

// RateLimit limits request rates; zero disables a limit.
type RateLimit struct {
	// PerIP is requests per second allowed from one client address,
	// with bursts up to Burst (default 2×PerIP).
	PerIP float64 `json:"per_ip,omitempty" yaml:"per_ip,omitempty"`
	// PerUser is requests per second allowed for one signed-in user.
	PerUser float64 `json:"per_user,omitempty" yaml:"per_user,omitempty"`
	Burst   int     `json:"burst,omitempty" yaml:"burst,omitempty"`
}

// Duration is a time.Duration written as "5s", "250ms".
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes the duration as Go's duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses Go's duration syntax ("5s").
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) > 32 {
		return fmt.Errorf("duration too long")
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 5s or 250ms)", b)
	}
	*d = Duration(v)
	return nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a route name: 1-63 lowercase letters, digits and
// inner hyphens.
func ValidateName(name string) error {
	if len(name) > maxNameLen || !nameRE.MatchString(name) {
		return apperr.InvalidField("name", "route name must be 1-63 lowercase letters, digits and inner hyphens")
	}
	return nil
}

// NormalizeHost returns the canonical form of a route or request host:
// lower case, without port or trailing dot. ok is false when h is not a
// valid DNS name, a wildcard (*.example.com, in route specs only), an IP
// address or "".
func NormalizeHost(h string, wildcard bool) (string, bool) {
	if len(h) > maxHostLen+6 {
		return "", false
	}
	h = strings.ToLower(h)
	if strings.HasPrefix(h, "[") {
		// [v6]:port or [v6]
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		rest := h[end+1:]
		if rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return "", false
		}
		ip := net.ParseIP(h[1:end])
		if ip == nil || ip.To4() != nil {
			return "", false
		}
		return ip.String(), true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i+1:]) {
			return "", false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", true
	}
	if looksIPv4(h) {
		if ip := net.ParseIP(h); ip != nil && ip.To4() != nil {
			return ip.String(), true
		}
	}
	if len(h) > maxHostLen {
		return "", false
	}
	for i, rest := 0, h; ; i++ {
		l, more, found := strings.Cut(rest, ".")
		if !(i == 0 && wildcard && l == "*" && found) && !validLabel(l) {
			return "", false
		}
		if !found {
			break
		}
		rest = more
	}
	return h, true
}

// looksIPv4 reports whether h has only digits and dots (what an IPv4
// address needs), sparing host names a parse that fails.
func looksIPv4(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// validLabel reports whether l is a DNS label: 1-63 lowercase letters,
// digits, hyphens and underscores (seen in real host names), not starting
// or ending with a hyphen.
func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	if p == "" {
		return true // "host:" is tolerated by browsers and net/http
	}
	if len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cleanPath returns the canonical route path prefix.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if len(p) > maxPathLen || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\\ \t\r\n") {
		return "", apperr.InvalidField("path", "path must be an absolute path prefix like /api (no query, fragment or spaces), at most %d bytes", maxPathLen)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return "", apperr.InvalidField("path", "path must not contain . or .. segments")
		}
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] == 0x7f {
			return "", apperr.InvalidField("path", "path must not contain control characters")
		}
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if strings.Contains(p, "//") {
		return "", apperr.InvalidField("path", "path must not contain empty segments")
	}
	return p, nil
}

// Normalize validates s and fills its defaults; the result is what the
// gateway runs. Errors name the field at fault.
func (s Spec) Normalize() (Spec, error) {
	h, ok := NormalizeHost(strings.TrimSpace(s.Host), true)
	if !ok {
		return s, apperr.InvalidField("host", "host %q is not a valid host name, *.wildcard or IP address", truncate(s.Host, 80))
	}
	s.Host = h
	p, err := cleanPath(s.Path)
	if err != nil {
		return s, err
	}
	s.Path = p
	if len(s.Backends) == 0 {
		return s, apperr.InvalidField("backends", "a route needs at least one backend")
	}
	if len(s.Backends) > MaxBackends {
		return s, apperr.InvalidField("backends", "a route may have at most %d backends", MaxBackends)
	}
	total := 0
	seen := map[string]bool{}
	bs := make([]Backend, len(s.Backends))
	for i, b := range s.Backends {
		u, err := ParseBackendURL(b.URL)
		if err != nil {
			return s, err
		}
		b.URL = u.String()
		if seen[b.URL] {
			return s, apperr.InvalidField("backends", "backend %s is listed twice", b.URL)
		}
		seen[b.URL] = true
		w := b.W()
		if w < 0 || w > maxWeight {
			return s, apperr.InvalidField("backends", "backend weight must be 0 to %d", maxWeight)
		}
		b.Weight = &w
		total += w
		if len(b.Version) > maxVersionLen || strings.ContainsFunc(b.Version, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return s, apperr.InvalidField("backends", "backend version must be at most %d printable characters without spaces", maxVersionLen)
		}
		bs[i] = b
	}
	if total == 0 {
		return s, apperr.InvalidField("backends", "at least one backend needs a weight above 0")
	}
	s.Backends = bs
	switch s.Balance {
	case "", RoundRobin:
		s.Balance = RoundRobin
	case LeastConn:
	default:
		return s, apperr.InvalidField("balance", "balance must be round_robin or least_conn")
	}
	if s.WAF, err = s.WAF.Normalize(); err != nil {
		return s, err
	}
	switch s.Auth {
	case "":
		s.Auth = AuthNone
	case AuthNone, AuthRequired:
	default:
		return s, apperr.InvalidField("auth", "auth must be none or required")
	}
	if s.AuthProvider != "" && (s.Auth != AuthRequired || len(s.AuthProvider) > maxNameLen || !nameRE.MatchString(s.AuthProvider)) {
		return s, apperr.InvalidField("auth_provider", "auth_provider needs auth required and a provider name (lower-case letters, digits, dashes)")
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(30 * time.Second)
	}
	if s.Timeout < Duration(time.Millisecond) || s.Timeout.D() > maxTimeout {
		return s, apperr.InvalidField("timeout", "timeout must be 1ms to 1h")
	}
	if s.Retries == nil {
		two := 2
		s.Retries = &two
	}
	if *s.Retries < 0 || *s.Retries > maxRetries {
		return s, apperr.InvalidField("retries", "retries must be 0 to %d", maxRetries)
	}
	if s.MaxBody == 0 {
		s.MaxBody = 10 << 20
	}
	if s.MaxBody < 0 || s.MaxBody > 1<<30 {
		return s, apperr.InvalidField("max_body", "max_body must be 0 to 1 GiB")
	}
	hc := &s.HealthCheck
	if hc.Path != "" {
		if hp, err := cleanPath(hc.Path); err != nil {
			return s, apperr.InvalidField("health_check.path", "health check path must be an absolute path")
		} else {
			hc.Path = hp
		}
		if hc.Interval == 0 {
			hc.Interval = Duration(5 * time.Second)
		}
		if hc.Timeout == 0 {
			hc.Timeout = Duration(2 * time.Second)
		}
		if hc.Interval < Duration(100*time.Millisecond) || hc.Interval.D() > maxHealthPeriod || hc.Timeout < Duration(10*time.Millisecond) || hc.Timeout > hc.Interval {
			return s, apperr.InvalidField("health_check.interval", "health check interval must be 100ms to 1h, timeout 10ms up to the interval")
		}
	} else if hc.Interval != 0 || hc.Timeout != 0 {
		return s, apperr.InvalidField("health_check.path", "health checks need a path")
	}
	if hc.Unhealthy == 0 {
		hc.Unhealthy = 2
	}
	if hc.Healthy == 0 {
		hc.Healthy = 2
	}
	if hc.Unhealthy < 1 || hc.Unhealthy > 100 || hc.Healthy < 1 || hc.Healthy > 100 {
		return s, apperr.InvalidField("health_check.unhealthy_threshold", "health thresholds must be 1 to 100")
	}
	rl := &s.RateLimit
	if rl.PerIP < 0 || rl.PerUser < 0 || rl.PerIP > 1e6 || rl.PerUser > 1e6 || rl.Burst < 0 || rl.Burst > 1e6 {
		return s, apperr.InvalidField("rate_limit", "rate limits must be 0 to 1,000,000 per second")
	}
	return s, nil
}

// ParseBackendURL parses and checks a backend URL: http or https, a host,
// no user info, query or fragment.
func ParseBackendURL(raw string) (*url.URL, error) {
	bad := func(why string) error {
		return apperr.InvalidField("backends", "backend URL %q %s", truncate(raw, 100), why)
	}
	if len(raw) > 2048 {
		return nil, bad("is too long")
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, bad("is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("must start with http:// or https://")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, bad("has no host")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, bad("must not have user info, a query or a fragment")
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return nil, bad("has an invalid port")
	}
	if u.Path == "/" {
		u.Path = ""
	}
	u.RawPath = ""
	return u, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// Route is a route as the gateway knows it: a spec with its identity.
type Route struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// OrgID and ProjectID own the route; 0 for site routes (managed by
	// site administrators and the config file).
	OrgID     int64 `json:"-"`
	ProjectID int64 `json:"-"`
	// Source is "api" (stored) or "file" (from the config file).
	Source    string    `json:"source"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}
