package gateway

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// limiter is a set of token buckets keyed by client address or user, one
// per route and kind. It holds at most max buckets, in order of last use:
// buckets that have refilled (they carry no state worth keeping) are
// dropped first, then, at the cap, the least recently used. A limiter
// outlives table loads that leave its route's settings alone (load.go).
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	mu    sync.Mutex
	m     map[string]*bucket
	lru   bucket // sentinel of the use list: lru.next is the most recent
	sweep time.Time
}

type bucket struct {
	tokens     float64
	last       time.Time
	key        string
	prev, next *bucket
}

const maxLimiterKeys = 100_000

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	l := &limiter{rate: rate, burst: burstOf(rate, burst), max: maxLimiterKeys, m: map[string]*bucket{}}
	l.lru.prev, l.lru.next = &l.lru, &l.lru
	return l
}

// burstOf is the bucket size for rate and the configured burst (default
// 2×rate, at least 1).
func burstOf(rate float64, burst int) float64 {
	if burst <= 0 {
		return math.Max(1, math.Ceil(2*rate))
	}
	return float64(burst)
}

// reuse returns l when it limits as newLimiter(rate, burst) would, so its
// buckets carry over; else a new limiter.
func (l *limiter) reuse(rate float64, burst int) *limiter {
	if l != nil && rate > 0 && l.rate == rate && l.burst == burstOf(rate, burst) {
		return l
	}
	return newLimiter(rate, burst)
}

// allow takes a token for key, or returns how long until one is free.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		b = l.add(key, now)
	}
	return l.take(b, now)
}

// allowIP is allow for the client address ip, keyed by its network: an
// IPv4 address by itself, an IPv6 one by its /64 (the least a site gets,
// so its addresses share one bucket). It does not allocate for a known
// key.
func (l *limiter) allowIP(ip string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	var buf [9]byte
	k := ipKey(buf[:0], ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if k != nil {
		b = l.m[string(k)]
	} else {
		b = l.m[ip]
	}
	if b == nil {
		if k != nil {
			b = l.add(string(k), now)
		} else {
			b = l.add(ip, now)
		}
	}
	return l.take(b, now)
}

// ipKey appends the rate-limit key of address ip to dst: a zero byte,
// then the IPv4 address or the IPv6 /64 prefix (an IPv4-mapped IPv6
// address counts as IPv4). It returns nil when ip is no IP address (its
// text is the key then; no text starts with a zero byte).
func ipKey(dst []byte, ip string) []byte {
	if i := strings.IndexByte(ip, '%'); i >= 0 {
		ip = ip[:i] // the zone names an interface of ours, not the client
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return nil
	}
	a = a.Unmap()
	dst = append(dst, 0)
	if a.Is4() {
		v4 := a.As4()
		return append(dst, v4[:]...)
	}
	v6 := a.As16()
	return append(dst, v6[:8]...)
}

// take refills b and takes a token from it, moving it to the front of the
// use list.
func (l *limiter) take(b *bucket, now time.Time) (bool, time.Duration) {
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	l.unlink(b)
	l.pushFront(b)
	if now.Sub(l.sweep) > time.Minute {
		l.sweep = now
		l.dropFull(now)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// add makes a full bucket for key, first making room for it.
func (l *limiter) add(key string, now time.Time) *bucket {
	if len(l.m) >= l.max {
		l.dropFull(now)
		for len(l.m) >= l.max {
			l.drop(l.lru.prev) // the least recently used
		}
	}
	b := &bucket{tokens: l.burst, last: now, key: key}
	l.m[key] = b
	l.pushFront(b)
	return b
}

// dropFull drops the buckets unused long enough to have refilled: their
// key is as good as new. They sit at the back of the use list.
func (l *limiter) dropFull(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for b := l.lru.prev; b != &l.lru && now.Sub(b.last) >= full; b = l.lru.prev {
		l.drop(b)
	}
}

func (l *limiter) drop(b *bucket) {
	l.unlink(b)
	delete(l.m, b.key)
}

func (l *limiter) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next, b.next.prev = b.next, b.prev
		b.prev, b.next = nil, nil
	}
}

func (l *limiter) pushFront(b *bucket) {
	b.prev, b.next = &l.lru, l.lru.next
	l.lru.next.prev = b
	l.lru.next = b
}
