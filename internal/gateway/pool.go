package gateway

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// backend is one upstream server with its live state. The state outlives
// route table reloads: a route whose spec changes keeps the health of the
// backends it still lists.
type backend struct {
	url     *url.URL
	key     string // route id + URL: identity across reloads
	version string
	weight  int
	// addr is host:port to dial and escapedPath the URL's base path,
	// escaped (the direct path's).
	addr, escapedPath string
	// conns are idle keep-alive connections of the direct path.
	conns connPool

	inflight atomic.Int64
	// down is set by active health checks.
	down atomic.Bool
	// ejectedUntil (unix nanoseconds) is set by passive ejection.
	ejectedUntil atomic.Int64
	// fails counts consecutive failed exchanges (passive).
	fails atomic.Int32

	// active health check streaks, owned by the checker goroutine.
	okStreak, failStreak int
}

func newBackend(u *url.URL, key, version string, weight int) *backend {
	b := &backend{url: u, key: key, version: version, weight: weight, addr: u.Host, escapedPath: u.EscapedPath()}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		b.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return b
}

// available reports whether the backend may take requests now.
func (b *backend) available(now int64) bool {
	return b.weight > 0 && !b.down.Load() && b.ejectedUntil.Load() <= now
}

// passive ejection: after ejectAfter consecutive failures a backend is
// taken out for ejectFor, doubled for every further failure up to
// maxEject.
const (
	ejectFor = 5 * time.Second
	maxEject = time.Minute
)

func (b *backend) failed(threshold int, now time.Time) {
	n := b.fails.Add(1)
	if int(n) >= threshold {
		d := ejectFor << min(int(n)-threshold, 4)
		b.ejectedUntil.Store(now.Add(min(d, maxEject)).UnixNano())
	}
}

func (b *backend) succeeded() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
}

// pool balances over a route's backends.
type pool struct {
	backends []*backend
	policy   string
	// schedule is a smooth weighted round-robin sequence of backend
	// indices, so weights hold for every window of len(schedule).
	schedule           []uint16
	next               atomic.Uint64
	unhealthyThreshold int
}

func newPool(bs []*backend, policy string, unhealthy int) *pool {
	p := &pool{backends: bs, policy: policy, unhealthyThreshold: unhealthy}
	p.schedule = smoothSchedule(bs)
	return p
}

// smoothSchedule returns nginx's smooth weighted round-robin order over
// one full cycle (the sum of the weights), with weights reduced by their
// greatest common divisor.
func smoothSchedule(bs []*backend) []uint16 {
	g := 0
	for _, b := range bs {
		g = gcd(g, b.weight)
	}
	if g == 0 {
		return nil
	}
	total := 0
	w := make([]int, len(bs))
	for i, b := range bs {
		w[i] = b.weight / g
		total += w[i]
	}
	cur := make([]int, len(bs))
	out := make([]uint16, 0, total)
	for range total {
		best := -1
		for i := range bs {
			cur[i] += w[i]
			if w[i] > 0 && (best < 0 || cur[i] > cur[best]) {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, uint16(best))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick chooses a backend not in tried, or nil when none is available.
func (p *pool) pick(tried []*backend, now int64) *backend {
	skip := func(b *backend) bool {
		for _, t := range tried {
			if t == b {
				return true
			}
		}
		return !b.available(now)
	}
	if p.policy == LeastConn {
		var best *backend
		var bestLoad float64
		start := int(p.next.Add(1) % uint64(len(p.backends)))
		for k := range p.backends {
			b := p.backends[(start+k)%len(p.backends)]
			if skip(b) {
				continue
			}
			load := float64(b.inflight.Load()+1) / float64(b.weight)
			if best == nil || load < bestLoad {
				best, bestLoad = b, load
			}
		}
		return best
	}
	n := len(p.schedule)
	if n == 0 {
		return nil
	}
	start := p.next.Add(1)
	for k := range n {
		b := p.backends[p.schedule[(start+uint64(k))%uint64(n)]]
		if !skip(b) {
			return b
		}
	}
	return nil
}

// healthChecker probes backends actively until its context ends.
type healthChecker struct {
	client *http.Client
	spec   HealthCheck
	host   string
}

func (h *healthChecker) run(ctx context.Context, b *backend, wg *sync.WaitGroup, onChange func(b *backend, up bool)) {
	defer wg.Done()
	t := time.NewTicker(h.spec.Interval.D())
	defer t.Stop()
	h.probe(ctx, b, onChange)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.probe(ctx, b, onChange)
		}
	}
}

func (h *healthChecker) probe(ctx context.Context, b *backend, onChange func(b *backend, up bool)) {
	ctx, cancel := context.WithTimeout(ctx, h.spec.Timeout.D())
	defer cancel()
	u := *b.url
	u.Path = joinPath(u.Path, h.spec.Path)
	ok := false
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err == nil {
		req.Header.Set("User-Agent", "rampart-gateway-healthcheck")
		if h.host != "" && h.host[0] != '*' {
			req.Host = h.host
		}
		if resp, err := h.client.Do(req); err == nil {
			_ = resp.Body.Close()
			ok = resp.StatusCode >= 200 && resp.StatusCode < 400
		}
	}
	if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
		return // shutting down
	}
	if ok {
		b.failStreak = 0
		b.okStreak++
		if b.down.Load() && b.okStreak >= h.spec.Healthy {
			b.down.Store(false)
			b.fails.Store(0)
			b.ejectedUntil.Store(0)
			onChange(b, true)
		}
		return
	}
	b.okStreak = 0
	b.failStreak++
	if !b.down.Load() && b.failStreak >= h.spec.Unhealthy {
		b.down.Store(true)
		onChange(b, false)
	}
}

func joinPath(base, p string) string {
	if base == "" {
		return p
	}
	if p == "/" || p == "" {
		return base
	}
	return base + p
}
